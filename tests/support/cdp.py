"""A headless Chromium driven over the DevTools protocol, with aiohttp's websocket client.

No Playwright or Selenium: ``Browser.start`` runs Debian's ``chromium`` with
``--remote-debugging-port=0``, reads the port from ``DevToolsActivePort``,
and attaches to the page target.  Pages are loaded with ``Page.navigate``,
read with ``Runtime.evaluate`` (``document.body.innerText``: what is
rendered), typed into with ``Input.insertText`` and clicked with real mouse
events at the element's position, so a control that is hidden or covered
cannot be clicked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self, proc: asyncio.subprocess.Process, profile: Path) -> None:
        self.proc = proc
        self.profile = profile
        self.http = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 0
        self._calls: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, executable: str, *, timeout: float = 20.0) -> Browser:
        profile = Path(tempfile.mkdtemp(prefix="coopfed-chromium-"))
        with (profile / "stderr.log").open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                executable,
                *FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        browser = cls(proc, profile)
        try:
            await browser._attach(timeout)
        except BaseException:
            await browser.close()
            raise
        return browser

    async def _attach(self, timeout: float) -> None:
        port_file = self.profile / "DevToolsActivePort"
        async with asyncio.timeout(timeout):
            while not port_file.exists() or not port_file.read_text().strip():
                if self.proc.returncode is not None:
                    log = (self.profile / "stderr.log").read_text(errors="replace")
                    raise BrowserError(
                        f"chromium exited with {self.proc.returncode}: {log[-2000:]}"
                    )
                await asyncio.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            page_ws = None
            while page_ws is None:
                async with self.http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json()
                page_ws = next(
                    (t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None
                )
                if page_ws is None:
                    await asyncio.sleep(0.05)
            self.ws = await self.http.ws_connect(page_ws, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        await self.call("Page.enable")
        await self.call("Runtime.enable")

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                future = self._calls.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            for method, waiter in list(self._waiters):
                if method == data.get("method") and not waiter.done():
                    waiter.set_result(data.get("params", {}))
                    self._waiters.remove((method, waiter))
        for future in self._calls.values():
            if not future.done():
                future.set_exception(BrowserError("the DevTools connection closed"))

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.ws is not None
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._calls[self._next_id] = future
        await self.ws.send_str(
            json.dumps({"id": self._next_id, "method": method, "params": params or {}})
        )
        answer = await asyncio.wait_for(future, 15)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def expect(self, method: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the next event ``method``; create it before causing the event."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, future))
        return future

    # -- what a user does -----------------------------------------------------------

    async def goto(self, url: str) -> None:
        loaded = self.expect("Page.loadEventFired")
        result = await self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")
        await asyncio.wait_for(loaded, 15)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]!r} failed: {text}")
        return result["result"].get("value")

    async def text(self, selector: str = "body") -> str:
        """The rendered text of the first element matching ``selector``."""
        value = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            f" if (!el) throw new Error('nothing matches ' + {json.dumps(selector)});"
            " return el.innerText; })()"
        )
        return str(value)

    async def url(self) -> str:
        return str(await self.evaluate("location.href"))

    async def _center(self, selector: str) -> tuple[float, float]:
        box = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            f" if (!el) throw new Error('nothing matches ' + {json.dumps(selector)});"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " const x = r.left + r.width / 2, y = r.top + r.height / 2;"
            " const hit = document.elementFromPoint(x, y);"
            " const reachable = hit === el || el.contains(hit);"
            " return {x, y, w: r.width, h: r.height, reachable}; })()"
        )
        if not box["w"] or not box["h"] or not box["reachable"]:
            raise BrowserError(f"{selector} is not visible or is covered: {box}")
        return float(box["x"]), float(box["y"])

    async def click(self, selector: str) -> None:
        x, y = await self._center(selector)
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    async def click_and_wait(self, selector: str) -> None:
        """Click something that loads a new page (a link, a form's button)."""
        loaded = self.expect("Page.loadEventFired")
        await self.click(selector)
        await asyncio.wait_for(loaded, 15)

    async def type(self, selector: str, text: str) -> None:
        """Focus a field, select what it holds and type ``text`` over it."""
        await self.click(selector)
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        await self.call("Input.insertText", {"text": text})

    async def upload(self, selector: str, path: Path) -> None:
        """Choose ``path`` in the file input ``selector``, as the file dialog would."""
        root = await self.call("DOM.getDocument", {"depth": 0})
        found = await self.call(
            "DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector}
        )
        if not found.get("nodeId"):
            raise BrowserError(f"nothing matches {selector}")
        await self.call("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": found["nodeId"]})

    async def choose(self, selector: str, value: str) -> None:
        chosen = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            f" el.value = {json.dumps(value)};"
            " el.dispatchEvent(new Event('change', {bubbles: true})); return el.value; })()"
        )
        if chosen != value:
            raise BrowserError(f"{selector} has no option {value!r}")

    async def phone(self, width: int = 390, height: int = 844) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
        )

    async def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = (await self.call("Page.getLayoutMetrics"))["cssContentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        shot = await self.call("Page.captureScreenshot", params)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.http.close()
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
