"""``/admin/members``: the coop's members, who use the node from Mastodon apps.

Adding a member, or resetting a password, shows a one-time password once, on
the answer to the POST (never in a URL, never cached: the admin pages are
``no-store``).  The admin hands it over; the member logs in with it from a
Mastodon app.  A one-time password rather than an invite link: it needs no new
sign-up page nor a table of pending invitations, and it is how ``coopfed member
add`` already works.  Suspending, unsuspending and removing are the CLI's
functions (``outbox.members``); removing asks for confirmation first.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from admin.auth import ADMIN, FORM, Admin, html_page, see_other
from admin.confirm import Handler, Question, confirm_first
from admin.forms import check_length
from admin.pages import Forms, render
from federation.context import NODE, NodeContext
from federation.store import LocalActor
from outbox import members
from outbox.errors import ActionError, status_of

DONE = {
    "suspended": "Suspended: the member's apps were logged out and its logins are refused.",
    "unsuspended": "The member may log in again.",
    "removed": "Removed: a Delete went to the member's followers; its address answers 410.",
}


@dataclass(frozen=True, slots=True)
class Member:
    username: str
    handle: str
    name: str
    state: str  # active, suspended or removed


def new_password() -> str:
    """A one-time password: 16 random characters (96 bits), easy to type."""
    return secrets.token_urlsafe(12)


async def listing(node: NodeContext) -> list[Member]:
    found = []
    for m in await node.store.list_members():
        state = "removed" if m.deleted_at else "suspended" if m.suspended_at else "active"
        found.append(Member(m.username, f"@{m.username}@{node.urls.domain}", m.name, state))
    return found


async def members_page(
    request: web.Request, forms: Forms | None = None, *, flash: str = "", error: str = ""
) -> str:
    node, admin = request.config_dict[NODE], request[ADMIN]
    return render(
        "members",
        "Members",
        members=await listing(node),
        forms=forms or Forms(csrf=admin.session.csrf),
        flash=flash,
        error=error,
        server=node.urls.base,
    )


def secret_page(
    admin: Admin, node: NodeContext, actor: LocalActor, password: str, new: bool
) -> str:
    return render(
        "secret",
        "Member added" if new else "Password reset",
        handle=f"@{actor.username}@{node.urls.domain}",
        display_name=actor.name,
        password=password,
        new=new,
        server=node.urls.base,
    )


async def handle_members(request: web.Request) -> web.Response:
    flash = DONE.get(request.query.get("done", ""), "")
    return html_page(await members_page(request, flash=flash))


async def do_add(request: web.Request) -> web.Response:
    node, admin, form = request.config_dict[NODE], request[ADMIN], request[FORM]
    username = form.get("username", "").strip().lstrip("@")
    name = form.get("name", "").strip()
    errors: dict[str, str] = {}
    problem = members.check_username(username) if username else "is required"
    if problem is not None:
        errors["username"] = problem
    try:
        check_length("name", name, members.MAX_NAME)
    except ActionError as exc:
        errors["name"] = exc.detail.split(": ", 1)[-1]
    password = new_password()
    if not errors:
        try:
            actor = await members.create_member(node, username, password, name=name)
        except ActionError as exc:
            errors["username"] = exc.detail
    if errors:
        forms = Forms(csrf=admin.session.csrf)
        forms.fail("add", errors, form)
        text = f"Not added: {len(errors)} field(s) need a change ({', '.join(errors)})."
        return html_page(await members_page(request, forms, error=text), 422)
    return html_page(secret_page(admin, node, actor, password, new=True))


async def _member(request: web.Request) -> LocalActor:
    return await members.get_member(request.config_dict[NODE], request[FORM].get("member", ""))


async def _refused(request: web.Request, exc: ActionError) -> web.Response:
    page = await members_page(request, error=f"Not done: {exc.detail}")
    return html_page(page, status_of(exc))


async def do_password(request: web.Request) -> web.Response:
    node, admin = request.config_dict[NODE], request[ADMIN]
    password = new_password()
    try:
        actor = await _member(request)
        await members.set_member_password(node, actor, password)
    except ActionError as exc:
        return await _refused(request, exc)
    return html_page(secret_page(admin, node, actor, password, new=False))


def _step(run: Callable[[NodeContext, LocalActor], Awaitable[object]], done: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            actor = await _member(request)
            await run(request.config_dict[NODE], actor)
        except ActionError as exc:
            return await _refused(request, exc)
        raise see_other(f"/admin/members?done={done}")

    return handler


async def _remove_question(request: web.Request, node: NodeContext, admin: Admin) -> Question:
    username = request[FORM].get("member", "")
    return Question(
        f"Remove @{username}?",
        f"@{username}@{node.urls.domain} is deleted: a Delete goes to its followers, its "
        "address answers 410 Gone, its apps are logged out, and the name can never be "
        "used again. This cannot be undone.",
        "Yes, remove the member",
        "/admin/members",
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/members", handle_members)
    app.router.add_post("/members", do_add)
    app.router.add_post("/members/password", do_password)
    app.router.add_post("/members/suspend", _step(members.suspend_member, "suspended"))
    app.router.add_post("/members/unsuspend", _step(members.unsuspend_member, "unsuspended"))
    app.router.add_post(
        "/members/remove",
        confirm_first(_remove_question)(_step(members.remove_member, "removed")),
    )
