"""Security headers on every answer: a strict CSP on HTML pages, nosniff on all.

Our pages run no script at all and load nothing but their own inline style, so
their policy allows exactly that.  A route that needs more (or less) sets its own
``Content-Security-Policy``; it is kept.
"""

from __future__ import annotations

from aiohttp import web

HTML_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HTML_HEADERS = {
    "Content-Security-Policy": HTML_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: fill in the headers a route did not set itself."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.content_type in ("text/html", "application/xhtml+xml"):
        for name, value in HTML_HEADERS.items():
            response.headers.setdefault(name, value)
