"""The admin pages without a browser: cookies, CSRF tokens and forms by hand.

``AdminClient`` keeps a cookie jar (unsafe=True: the nodes live on 127.0.0.1),
never follows redirects (tests check the 303s), and reads the CSRF token out of
the page as a browser's form would send it.  ``visible_text`` is what a reader
sees: the page without tags, entities decoded, whitespace collapsed.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from PIL import Image

from admin.auth import set_password
from federation.store import Proposal
from outbox import publish
from tests.support.nodes import RunningNode, eventually

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Page:
    status: int
    text: str
    headers: Any  # CIMultiDictProxy[str]

    @property
    def location(self) -> str:
        return str(self.headers.get("Location", ""))

    @property
    def csrf(self) -> str:
        match = CSRF_RE.search(self.text)
        assert match is not None, "no CSRF field in the page"
        return html.unescape(match[1])

    @property
    def visible(self) -> str:
        return visible_text(self.text)


def visible_text(page: str) -> str:
    without = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", " ", without)
    return " ".join(html.unescape(text).split())


class AdminClient:
    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **kwargs: Any) -> Page:
        async with self.http.get(self.base + path, allow_redirects=False, **kwargs) as resp:
            return Page(resp.status, await resp.text(), resp.headers)

    async def post(self, path: str, data: dict[str, str], **kwargs: Any) -> Page:
        async with self.http.post(
            self.base + path, data=data, allow_redirects=False, **kwargs
        ) as resp:
            return Page(resp.status, await resp.text(), resp.headers)

    async def upload(
        self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
    ) -> Page:
        """Post a multipart form (``files``: input name -> (file name, bytes, type))."""
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        for name, (filename, data, content_type) in files.items():
            form.add_field(name, data, filename=filename, content_type=content_type)
        async with self.http.post(self.base + path, data=form, allow_redirects=False) as resp:
            return Page(resp.status, await resp.text(), resp.headers)

    async def login(self, *, password: str = "", token: str = "") -> Page:
        form = await self.get("/admin/login")
        assert form.status == 200, form.text
        return await self.post(
            "/admin/login", {"csrf": form.csrf, "password": password, "token": token}
        )

    async def dashboard(self, query: str = "") -> Page:
        page = await self.get("/admin" + query)
        assert page.status in (200, 422), (page.status, page.text)
        return page

    async def submit(self, path: str, data: dict[str, str]) -> Page:
        """Post a form as the dashboard would: with the session's CSRF token."""
        token = (await self.dashboard()).csrf
        return await self.post(path, {"csrf": token, **data})

    def cookie(self, name: str) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


def picture(size: tuple[int, int], color: tuple[int, int, int], kind: str = "PNG") -> bytes:
    """An image of one colour, as a camera or an editor would save it."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, kind)
    return out.getvalue()


async def logged_in(node: RunningNode) -> AdminClient:
    """An admin client with a session on ``node`` (its password set first)."""
    await set_password(node.ctx, await node.ctx.coop_actor(), PASSWORD)
    client = AdminClient(node.base_url)
    page = await client.login(password=PASSWORD)
    assert (page.status, page.location) == (303, "/admin"), page.text
    return client


async def follow_each_other(a: RunningNode, b: RunningNode) -> None:
    """A follows B and B follows A, both accepted."""
    for follower, followee in ((a, b), (b, a)):
        coop = await follower.ctx.coop_actor()
        await publish.follow(follower.ctx, coop, followee.handle)

        async def accepted(f: RunningNode = follower, c: int = coop.id) -> bool:
            return bool(await f.ctx.store.list_follows(c, "outbound"))

        await eventually(accepted, message=f"{followee.name} accepts {follower.name}")


OFFER_FORM = {
    "form": "publish-offer",
    "kind": "offer",
    "title": "Organic flour",
    "details": "Stone-ground <wheat> & rye",
    "quantity": "200",
    "unit": "kilogram",
    "price": "1.20",
    "currency": "EUR",
    "deadline": "",
    "tags": "flour bakery",
    "resource": "flour",
}


async def session_rows(node: RunningNode) -> int:
    return int(await node.ctx.store.pool.fetchval("SELECT count(*) FROM admin_sessions"))


async def our_proposals(node: RunningNode) -> list[Proposal]:
    return await node.ctx.store.search_proposals(local=True, now=node.ctx.clock())
