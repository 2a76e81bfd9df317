"""Actions that cannot be undone ask first, without JavaScript (the CSP allows none).

``confirm_first`` wraps an action's handler: a POST without ``confirm=yes``
answers a page that names what will happen, with the same form (same fields,
same CSRF token) plus ``confirm=yes`` behind a "Yes, ..." button, and a link
back.  Only the second POST runs the action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from admin.auth import ADMIN, FORM, Admin, html_page
from admin.pages import render
from federation.context import NODE, NodeContext

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Question:
    title: str
    text: str
    button: str
    back: str = "/admin"


Asker = Callable[[web.Request, NodeContext, Admin], Awaitable[Question]]


def confirm_page(csrf: str, action: str, fields: dict[str, str], question: Question) -> str:
    return render(
        "confirm", question.title, csrf=csrf, action=action, fields=fields, question=question
    )


def confirm_first(ask: Asker) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        async def confirmed(request: web.Request) -> web.StreamResponse:
            form = request[FORM]
            if form.get("confirm") == "yes":
                return await handler(request)
            admin = request[ADMIN]
            question = await ask(request, request.config_dict[NODE], admin)
            fields = {k: v for k, v in form.items() if k not in ("csrf", "confirm")}
            page = confirm_page(admin.session.csrf, request.path, fields, question)
            return html_page(page)

        return confirmed

    return wrap
