"""Origins as the web compares them: scheme, host and port, all three.

``https://a.example`` and ``https://a.example:8443`` are different servers, so are
``http://`` and ``https://`` on one host.  Every "is this on the actor's host?" and
"is this ours?" check of the node goes through :func:`same_origin`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def origin_of(url: object) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL, lowercased, default port filled in."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # an unclosed IPv6 literal, a port out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme]


def same_origin(a: object, b: object) -> bool:
    """Whether two http(s) URLs are on one origin (False if either is not http(s))."""
    first = origin_of(a)
    return first is not None and first == origin_of(b)
