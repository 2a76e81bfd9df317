"""The few HTML pages of the OAuth flow: the member's login form, the code to
copy into an app (the out-of-band redirect), and errors.

Rendered from the Jinja2 templates in ``clientapi/templates`` (autoescaped);
the pages refuse to be framed and are never cached.
"""

from __future__ import annotations

from aiohttp import web

from actors.pages import templates
from clientapi.scopewords import scope_lines
from federation.store import OAuthApp

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
        return page("error", "Cannot sign in", status=400, message=self.message)


PAGES = templates("clientapi")


def page(
    name: str,
    title: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: object,
) -> web.Response:
    return web.Response(
        text=PAGES.get_template(f"clientapi/{name}.html").render(
            title=title, alternate=None, **context
        ),
        status=status,
        content_type="text/html",
        headers={**HEADERS, **(headers or {})},
    )


def login_page(
    app: OAuthApp,
    fields: dict[str, str],
    *,
    domain: str,
    coop_name: str = "",
    status: int = 200,
    error: str = "",
    username: str = "",
    headers: dict[str, str] | None = None,
) -> web.Response:
    return page(
        "login",
        f"Sign in to {coop_name or domain}",
        status=status,
        headers=headers,
        app=app,
        fields=fields,
        scopes=scope_lines(fields.get("scope", "")),
        domain=domain,
        coop_name=coop_name or domain,
        error=error,
        username=username,
    )


def code_page(app: OAuthApp, code: str) -> web.Response:
    return page("code", "Authorization code", app=app, code=code)
