"""The few HTML pages of the OAuth flow: the member's login form, the code to
copy into an app (the out-of-band redirect), and errors.

Every value shown is escaped; the pages refuse to be framed and are never cached.
"""

from __future__ import annotations

import html

from aiohttp import web

from actors.pages import render_page
from federation.safehtml import safe_href
from federation.store import OAuthApp

SCOPE_WORDS = {
    "read": "read your timelines, notifications and profile",
    "write": "post, reply, like and boost as you",
    "follow": "follow and unfollow for you",
    "push": "receive push notifications",
    "profile": "read your profile",
}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class OAuthPageError(Exception):
    """A request the authorization page refuses: shown, or sent back to the app."""

    def __init__(self, message: str, *, redirect: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.redirect = redirect

    def response(self) -> web.Response:
        if self.redirect is not None:
            raise web.HTTPFound(self.redirect, headers=HEADERS)
        body = f"<h1>Cannot sign in</h1><p>{html.escape(self.message)}</p>"
        return page("Cannot sign in", body, status=400)


def page(
    title: str, body: str, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=render_page(title, body),
        status=status,
        content_type="text/html",
        headers={**HEADERS, **(headers or {})},
    )


def _scopes(scopes: str) -> str:
    words = sorted({SCOPE_WORDS.get(s.split(":")[0], s) for s in scopes.split()})
    return "".join(f"<li>{html.escape(w)}</li>" for w in words)


def login_page(
    app: OAuthApp,
    fields: dict[str, str],
    *,
    domain: str,
    status: int = 200,
    error: str = "",
    username: str = "",
    headers: dict[str, str] | None = None,
) -> web.Response:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    website = (
        f' (<a href="{html.escape(safe_href(app.website) or "")}" rel="noopener noreferrer">'
        f"{html.escape(app.website)}</a>)"
        if app.website
        else ""
    )
    alert = f'<p class="hint" role="alert">{html.escape(error)}</p>' if error else ""
    body = (
        f"<header><h1>Sign in to {html.escape(domain)}</h1></header>"
        f"<p><strong>{html.escape(app.name)}</strong>{website} asks to:</p>"
        f"<ul>{_scopes(fields.get('scope', ''))}</ul>{alert}"
        f'<form method="post" action="/oauth/authorize">{hidden}'
        '<p><label>Username<br><input name="username" autocomplete="username" required '
        f'value="{html.escape(username)}" autocapitalize="none"></label></p>'
        '<p><label>Password<br><input name="password" type="password" required '
        'autocomplete="current-password"></label></p>'
        '<p><button type="submit">Authorize</button></p></form>'
        "<footer>Your coop's admin creates member accounts and their passwords.</footer>"
    )
    return page(f"Sign in to {domain}", body, status=status, headers=headers)


def code_page(app: OAuthApp, code: str) -> web.Response:
    body = (
        "<header><h1>Authorization code</h1></header>"
        f"<p>Copy this code into <strong>{html.escape(app.name)}</strong>:</p>"
        f'<p><input id="code" readonly size="48" value="{html.escape(code)}"></p>'
        "<p>It works once, within ten minutes.</p>"
    )
    return page("Authorization code", body)
