"""``/admin/follows``: who follows the coop, whom it follows, and the requests waiting.

Following starts with a preview: the handle is looked up (its host's WebFinger,
then the actor document, as ``coopfed follow`` does) and the page shows the
actor's name, avatar, summary and handle before the admin confirms.  Removing
a follower sends ``Reject`` of its ``Follow``, as Mastodon does, and drops the
row.  Every action is one of ``outbox.publish`` (the CLI's).

What a remote actor document says reaches the page only through the node's
checks: its summary is sanitised (``sanitized``), its URLs pass ``safe_href``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from admin.auth import ADMIN, FORM, Admin, html_page, see_other
from admin.confirm import Handler, Question, confirm_first
from admin.pages import Forms, render
from federation.client import FetchError
from federation.context import NODE, NodeContext
from federation.jsonld import as_list, get_id
from federation.origins import same_origin
from federation.safehtml import safe_href
from federation.store import Follow, LocalActor, RemoteActor
from outbox import publish
from outbox.errors import ActionError, status_of

DONE = {
    "requested": "Follow request sent. It shows under Following once they accept.",
    "unfollowed": "Unfollowed.",
    "removed": "Follower removed: they were sent a Reject and no longer get our posts.",
    "approved": "Follower approved.",
    "refused": "Follow request rejected.",
}
LIMIT = 500
# (one, many, the actor's collection)
COUNTS = (
    ("post", "posts", "outbox"),
    ("follower", "followers", "followers"),
    ("following", "following", "following"),
)
COUNT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Person:
    """A remote actor as the admin pages show it."""

    uri: str
    handle: str
    name: str
    avatar: str | None
    summary: str
    profile: str | None
    state: str = ""


def image_url(value: Any) -> str | None:
    """The http(s) URL of an ``icon``/``image`` (a link, an Image, or a list of them)."""
    for item in as_list(value):
        url = item.get("url") if isinstance(item, dict) else item
        for candidate in as_list(url):
            href = safe_href(candidate.get("href") if isinstance(candidate, dict) else candidate)
            if href:
                return href
    return None


def person(uri: str, remote: RemoteActor | None, state: str = "") -> Person:
    if remote is None:
        return Person(uri, uri, "", None, "", safe_href(uri), state)
    doc = remote.document
    summary = doc.get("summary")
    url = doc.get("url")
    return Person(
        uri=uri,
        handle=f"@{remote.handle}" if remote.username else uri,
        name=remote.name,
        avatar=image_url(doc.get("icon")),
        summary=summary if isinstance(summary, str) else "",
        profile=safe_href(get_id(url) if isinstance(url, dict) else url) or safe_href(uri),
        state=state,
    )


async def _total(node: NodeContext, url: str) -> int | None:
    try:
        document, _ = await node.client.fetch_document(url, signer=await node.instance_signer())
    except (FetchError, ValueError):
        return None
    total = document.get("totalItems") if isinstance(document, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


async def counts(node: NodeContext, target: RemoteActor) -> list[str]:
    """Posts, followers and following ("1 post", "12 followers"), where the actor's own
    server tells them (``totalItems`` of its collections; Mastodon may hide some)."""
    urls = {
        (one, many): url
        for one, many, key in COUNTS
        if (url := safe_href(get_id(target.document.get(key)))) and same_origin(url, target.uri)
    }
    try:
        async with asyncio.timeout(COUNT_SECONDS):
            totals = await asyncio.gather(*(_total(node, url) for url in urls.values()))
    except TimeoutError:
        return []
    return [
        f"{total:,} {one if total == 1 else many}"
        for (one, many), total in zip(urls, totals, strict=True)
        if total is not None
    ]


async def people(node: NodeContext, follows: list[Follow]) -> list[Person]:
    return [
        person(f.remote_actor, await node.store.get_remote_actor(f.remote_actor), f.state)
        for f in follows
    ]


def follows_page(
    node: NodeContext,
    admin: Admin,
    data: dict[str, list[Person]],
    forms: Forms,
    *,
    flash: str = "",
    error: str = "",
) -> str:
    return render(
        "follows",
        "Follows",
        d=data,
        forms=forms,
        flash=flash,
        error=error,
        handle=f"@{admin.actor.username}@{node.urls.domain}",
    )


async def gather(node: NodeContext, admin: Admin) -> dict[str, list[Person]]:
    store, actor_id = node.store, admin.actor.id
    return {
        "pending": await people(
            node, await store.list_follows(actor_id, "inbound", state="pending", limit=LIMIT)
        ),
        "followers": await people(node, await store.list_follows(actor_id, "inbound", limit=LIMIT)),
        "following": await people(
            node, await store.list_follows(actor_id, "outbound", state=None, limit=LIMIT)
        ),
    }


async def handle_follows(request: web.Request) -> web.Response:
    node, admin = request.config_dict[NODE], request[ADMIN]
    flash = DONE.get(request.query.get("done", ""), "")
    data = await gather(node, admin)
    return html_page(follows_page(node, admin, data, Forms(csrf=admin.session.csrf), flash=flash))


async def _refused(
    request: web.Request, form_id: str, field: str, exc: ActionError
) -> web.Response:
    node, admin = request.config_dict[NODE], request[ADMIN]
    forms = Forms(csrf=admin.session.csrf)
    form: dict[str, str] = request[FORM]
    forms.fail(form_id, {field: exc.detail}, form)
    page = follows_page(
        node, admin, await gather(node, admin), forms, error=f"Not done: {exc.detail}"
    )
    return html_page(page, status_of(exc) if field == "" else 422)


async def do_preview(request: web.Request) -> web.Response:
    """Look the handle up and show who it is, with the button that follows."""
    node, admin, form = request.config_dict[NODE], request[ADMIN], request[FORM]
    handle = form.get("handle", "").strip().removeprefix("acct:")
    try:
        if not handle or len(handle) > 300:
            raise ActionError("invalid_input", "type a handle such as coop@example.org")
        target = await publish.lookup(node, handle)
    except ActionError as exc:
        return await _refused(request, "follow", "handle", exc)
    existing = await node.store.get_follow(admin.actor.id, target.uri, "outbound")
    page = render(
        "follow_preview",
        f"Follow {target.name or target.handle}?",
        p=person(target.uri, target),
        counts=await counts(node, target),
        forms=Forms(csrf=admin.session.csrf),
        existing=existing.state if existing else "",
    )
    return html_page(page)


async def do_follow(request: web.Request) -> web.Response:
    node, admin, form = request.config_dict[NODE], request[ADMIN], request[FORM]
    try:
        await publish.follow(node, admin.actor, form.get("actor", ""))
    except ActionError as exc:
        return await _refused(request, "follow", "", exc)
    raise see_other("/admin/follows?done=requested")


async def _unfollow_question(request: web.Request, node: NodeContext, admin: Admin) -> Question:
    uri = request[FORM].get("actor", "")
    who = person(uri, await node.store.get_remote_actor(uri))
    return Question(
        f"Unfollow {who.name or who.handle}?",
        f"The coop stops following {who.handle}: an Undo of the Follow is sent.",
        "Yes, unfollow",
        "/admin/follows",
    )


async def _remove_question(request: web.Request, node: NodeContext, admin: Admin) -> Question:
    uri = request[FORM].get("actor", "")
    who = person(uri, await node.store.get_remote_actor(uri))
    return Question(
        f"Remove the follower {who.name or who.handle}?",
        f"{who.handle} stops getting the coop's posts: a Reject of their Follow is sent, "
        "as Mastodon does. They may ask to follow again.",
        "Yes, remove",
        "/admin/follows",
    )


def _simple(run: Callable[[NodeContext, LocalActor, str], Awaitable[object]], done: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        node, admin, form = request.config_dict[NODE], request[ADMIN], request[FORM]
        try:
            await run(node, admin.actor, form.get("actor", ""))
        except ActionError as exc:
            return await _refused(request, "", "", exc)
        raise see_other(f"/admin/follows?done={done}")

    return handler


def setup(app: web.Application) -> None:
    app.router.add_get("/follows", handle_follows)
    app.router.add_post("/follows/preview", do_preview)
    app.router.add_post("/follows/follow", do_follow)
    app.router.add_post(
        "/follows/unfollow",
        confirm_first(_unfollow_question)(_simple(publish.unfollow, "unfollowed")),
    )
    app.router.add_post(
        "/follows/remove", confirm_first(_remove_question)(_simple(publish.reject, "removed"))
    )
    app.router.add_post("/follows/approve", _simple(publish.approve, "approved"))
    app.router.add_post("/follows/reject", _simple(publish.reject, "refused"))
