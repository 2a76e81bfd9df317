"""The admin pages under ``/admin``: the coop's admin in a browser, behind a login.

Log in with the admin password (``coopfed password``) or an API token
(``coopfed token create``).  Every action posts a form with the session's CSRF
token and calls the functions the CLI and the C2S API call (``outbox.market``,
``outbox.publish``), then redirects to the dashboard (POST-redirect-GET).  A
refused input re-renders the page with the error next to the field (422); a
step the exchange does not allow shows why (409).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from admin import follows, members, profile
from admin.auth import (
    ADMIN,
    FORM,
    LIMITER,
    Admin,
    handle_login,
    handle_login_form,
    handle_logout,
    html_page,
    security_headers,
    see_other,
    session_middleware,
)
from admin.confirm import Question, confirm_first
from admin.dashboard import dashboard, gather
from admin.forms import check_length, collect, errors_of, proposal_errors, raise_errors
from admin.pages import PROPOSAL_INPUTS, Forms, edit_page, message_page
from federation.context import NODE, NodeContext
from federation.credentials import LoginLimiter
from federation.display import unit_label_in
from federation.store import Proposal
from outbox import market, publish
from outbox.c2s import MAX_MESSAGE, amount_text
from outbox.errors import ActionError, InvalidInput, status_of
from outbox.proposals import number

log = logging.getLogger(__name__)

DONE = {
    "published": "Published: it is on the public board and on its way to the followers.",
    "updated": "Saved and sent to the followers.",
    "closed": "Closed.",
    "deleted": "Deleted.",
    "responded": "Your response was sent.",
    "accept": "Exchange accepted.",
    "reject": "Offer rejected.",
    "withdraw": "Offer withdrawn.",
    "cancel": "Exchange cancelled.",
    "complete": "Exchange marked completed.",
    "approved": "Follower approved.",
    "refused": "Follow request rejected.",
    "blocked": "Domain blocked.",
    "unblocked": "Domain unblocked.",
}
Form = Mapping[str, str]


# -- input ------------------------------------------------------------------------


def deadline_value(text: str) -> str | None:
    """A deadline typed in the form: a bare date or time without zone is UTC."""
    if not text:
        return None
    if len(text) == 10:
        text += "T23:59:59"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # validate_spec names the field
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def proposal_raw(form: Form) -> dict[str, Any]:
    """The proposal fields of a form, as ``validate_spec`` names them."""
    raw: dict[str, Any] = {}
    for name in (*PROPOSAL_INPUTS, "tags", "resource"):
        if name not in form:
            continue
        value = form[name].strip()
        if name == "deadline":
            raw[name] = deadline_value(value)
        elif name in ("unit", "currency", "resource"):
            raw[name] = value or None
        else:
            raw[name] = value
    return raw


def _editable(p: Proposal) -> dict[str, Any]:
    """A stored proposal as the edit form shows it."""
    return {
        "uri": p.uri,
        "kind": p.kind,
        "title": p.title,
        "details": p.details,
        "quantity": amount_text(p.quantity),
        "unit": p.unit or "one",
        "unit_label": unit_label_in(p.body) or "",
        "price": amount_text(p.price),
        "currency": p.currency,
        "deadline": p.deadline.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if p.deadline else "",
        "tags": " ".join(p.tags),
        "resource": p.resource,
    }


# -- pages ------------------------------------------------------------------------


async def handle_dashboard(request: web.Request) -> web.Response:
    node = request.config_dict[NODE]
    admin = request[ADMIN]
    forms = Forms(csrf=admin.session.csrf)
    data = await gather(node, admin.actor, request.query, forms)
    flash = DONE.get(request.query.get("done", ""), "")
    return html_page(dashboard(data, forms, flash=flash), 422 if forms.errors else 200)


async def _own_open_proposal(node: NodeContext, admin: Admin, uri: str) -> Proposal | None:
    proposal = await node.store.get_proposal(uri) if uri else None
    if (
        proposal is None
        or not proposal.local
        or proposal.attributed_to != node.urls.actor(admin.actor.username)
        or proposal.status != "open"
    ):
        return None
    return proposal


async def handle_edit(request: web.Request) -> web.Response:
    node = request.config_dict[NODE]
    admin = request[ADMIN]
    proposal = await _own_open_proposal(node, admin, request.query.get("uri", ""))
    if proposal is None:
        return html_page(
            message_page("Not found", "No open proposal of ours at this address."), 404
        )
    return html_page(edit_page(Forms(csrf=admin.session.csrf), _editable(proposal)))


# -- actions ----------------------------------------------------------------------

Action = Callable[[web.Request, NodeContext, Admin, Form], Awaitable[str]]


def action(run: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A POST of the admin (session and CSRF checked by the middleware): errors
    shown, then redirect."""

    async def handler(request: web.Request) -> web.Response:
        node = request.config_dict[NODE]
        admin = request[ADMIN]
        form = request[FORM]
        form_id = form.get("form", "")[:80]
        try:
            target = await run(request, node, admin, form)
        except InvalidInput as exc:
            return await _failed(node, admin, form, form_id, errors_of(exc), status_of(exc))
        except ActionError as exc:
            problem = {"": exc.detail}
            return await _failed(node, admin, form, form_id, problem, status_of(exc), exc.detail)
        raise see_other(target)

    return handler


async def _failed(
    node: NodeContext,
    admin: Admin,
    form: Form,
    form_id: str,
    errors: dict[str, str],
    status: int,
    alert: str = "",
) -> web.Response:
    forms = Forms(csrf=admin.session.csrf)
    forms.fail(form_id, errors, form)
    if not alert and len(errors) > 1:
        alert = f"Not done: {len(errors)} fields need a change: {', '.join(errors)}."
    if form_id == "edit":
        proposal = await _own_open_proposal(node, admin, form.get("uri", ""))
        if proposal is not None:
            return html_page(edit_page(forms, _editable(proposal), alert), status)
    data = await gather(node, admin.actor, {}, forms)
    first = next(iter(errors.values()))
    return html_page(dashboard(data, forms, error=alert or f"Not done: {first}"), status)


@action
async def do_publish(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    raw = {**proposal_raw(form), "kind": form.get("kind")}
    raise_errors(proposal_errors(raw, now=node.clock()))
    await market.publish_proposal(node, admin.actor, raw)
    return "/admin?done=published#ours"


@action
async def do_update(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    raw = proposal_raw(form)
    proposal = await _own_open_proposal(node, admin, form.get("uri", ""))
    if proposal is not None:
        raise_errors(proposal_errors({**raw, "kind": proposal.kind}, now=node.clock()))
    await market.update_proposal(node, admin.actor, form.get("uri", ""), raw)
    return "/admin?done=updated#ours"


async def _close_question(request: web.Request, node: NodeContext, admin: Admin) -> Question:
    proposal = await _own_open_proposal(node, admin, request[FORM].get("uri", ""))
    what = f"“{proposal.title}”" if proposal is not None else "this proposal"
    return Question(
        f"Close {what}?",
        "It stays on the board's archive, marked closed, and the followers get the update. "
        "Nobody can answer it any more.",
        "Yes, close it",
    )


async def _delete_question(request: web.Request, node: NodeContext, admin: Admin) -> Question:
    proposal = await node.store.get_proposal(request[FORM].get("uri", ""))
    what = f"“{proposal.title}”" if proposal is not None else "this proposal"
    return Question(
        f"Delete {what}?",
        "It disappears from the board, and a Delete goes to the followers. This cannot be undone.",
        "Yes, delete it",
    )


@confirm_first(_close_question)
@action
async def do_close(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    await market.close_proposal(node, admin.actor, form.get("uri", ""))
    return "/admin?done=closed#ours"


@confirm_first(_delete_question)
@action
async def do_delete(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    await market.delete_proposal(node, admin.actor, form.get("uri", ""))
    return "/admin?done=deleted#ours"


def _positive_quantity(text: str) -> None:
    quantity = number("quantity", text)
    if quantity is None or quantity == 0:
        raise InvalidInput("quantity", "is required and must be above 0")


@action
async def do_respond(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    message = form.get("message", "").strip()
    raise_errors(
        collect(
            lambda: _positive_quantity(form.get("quantity", "").strip()),
            lambda: number("price", form.get("price", "").strip()),
            lambda: check_length("message", message, MAX_MESSAGE),
        )
    )
    quantity = number("quantity", form.get("quantity", "").strip())
    price = number("price", form.get("price", "").strip())
    assert quantity is not None  # checked above
    await market.respond(
        node,
        admin.actor,
        form.get("proposal", ""),
        quantity=quantity,
        reciprocal=price,
        message=message,
    )
    return "/admin?done=responded#exchanges"


@action
async def do_exchange(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    number_text = request.match_info["id"]
    exchange = (
        await node.store.get_exchange(int(number_text))
        if number_text.isascii() and number_text.isdigit() and len(number_text) < 18
        else None
    )
    actor_url = node.urls.actor(admin.actor.username)
    if exchange is None or actor_url not in (exchange.proposer, exchange.responder):
        raise ActionError("not_found", f"no exchange {number_text}")
    event, reason = form.get("event", ""), form.get("reason", "").strip()[:MAX_MESSAGE]
    if event == "accept":
        await market.accept(node, admin.actor, exchange.id)
    elif event == "reject":
        await market.reject(node, admin.actor, exchange.id, reason)
    elif event == "withdraw":
        await market.withdraw(node, admin.actor, exchange.id)
    elif event == "cancel":
        await market.cancel(node, admin.actor, exchange.id, reason)
    elif event == "complete":
        await market.complete(node, admin.actor, exchange.id)
    else:
        raise ActionError("illegal_transition", f"unknown step {event!r}")
    return f"/admin?done={event}#exchanges"


@action
async def do_approve(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    await publish.approve(node, admin.actor, form.get("actor", ""))
    return "/admin?done=approved#followers"


@action
async def do_refuse(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    await publish.reject(node, admin.actor, form.get("actor", ""))
    return "/admin?done=refused#followers"


@action
async def do_block(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    domain = form.get("domain", "").strip()
    if not domain:
        raise InvalidInput("domain", "is required")
    try:
        await publish.block_domain(node, domain, form.get("reason", "").strip()[:500])
    except ActionError as exc:
        raise InvalidInput("domain", exc.detail) from exc
    return "/admin?done=blocked#blocks"


@action
async def do_unblock(request: web.Request, node: NodeContext, admin: Admin, form: Form) -> str:
    await publish.unblock_domain(node, form.get("domain", ""))
    return "/admin?done=unblocked#blocks"


async def handle_slash(request: web.Request) -> web.Response:
    raise see_other("/admin")


ADMIN_APP = web.AppKey("admin_app", web.Application)


def create_admin_app() -> web.Application:
    """The admin pages, mounted at ``/admin`` with their own middleware."""
    app = web.Application(middlewares=[security_headers, session_middleware])
    app[LIMITER] = LoginLimiter()
    app.router.add_get("", handle_dashboard)
    app.router.add_get("/", handle_slash)
    app.router.add_get("/login", handle_login_form)
    app.router.add_post("/login", handle_login)
    app.router.add_post("/logout", handle_logout)
    app.router.add_get("/edit", handle_edit)
    app.router.add_post("/proposals", do_publish)
    app.router.add_post("/proposals/update", do_update)
    app.router.add_post("/proposals/close", do_close)
    app.router.add_post("/proposals/delete", do_delete)
    app.router.add_post("/respond", do_respond)
    app.router.add_post("/exchanges/{id}", do_exchange)
    app.router.add_post("/followers/approve", do_approve)
    app.router.add_post("/followers/reject", do_refuse)
    app.router.add_post("/blocks", do_block)
    app.router.add_post("/blocks/remove", do_unblock)
    profile.setup(app)
    follows.setup(app)
    members.setup(app)
    return app
