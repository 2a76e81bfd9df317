"""Body digests: the RFC 3230 ``Digest`` header (draft-cavage) and RFC 9530 ``Content-Digest``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from federation.rfc9421 import parse_dictionary

# Algorithms we check, by lowercased header name -> hashlib name; both headers spell them alike.
_ALGORITHMS = {"sha-256": "sha256", "sha-512": "sha512"}


def compute_digest(body: bytes) -> str:
    """``Digest`` value as Mastodon sends it: ``SHA-256=<base64>``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def compute_content_digest(body: bytes) -> str:
    """``Content-Digest`` value: ``sha-256=:<base64>:``."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def digest_matches(header: str, body: bytes, *, structured: bool) -> bool | None:
    """Whether every SHA-256/SHA-512 entry of the header matches ``body``.

    ``structured`` selects ``Content-Digest`` syntax (raises
    `federation.rfc9421.StructuredFieldError` when unparseable), else ``Digest`` syntax
    (``SHA-256=<b64>[,SHA-512=<b64>]``, names case-insensitive). None when the header has
    no entry in an algorithm we know.
    """
    given = _content_digest_entries(header) if structured else _digest_entries(header)
    known = {name: value for name, value in given.items() if name in _ALGORITHMS}
    if not known:
        return None
    return all(
        hmac.compare_digest(hashlib.new(_ALGORITHMS[name], body).digest(), expected)
        for name, expected in known.items()
    )


def _digest_entries(header: str) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    for entry in header.split(","):
        name, _, value = entry.strip().partition("=")
        value = value.strip()
        try:
            decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""  # undecodable: compares unequal
        entries[name.strip().lower()] = decoded
    return entries


def _content_digest_entries(header: str) -> dict[str, bytes]:
    return {
        name: member.value
        for name, member in parse_dictionary(header).items()
        if isinstance(member.value, bytes)
    }
