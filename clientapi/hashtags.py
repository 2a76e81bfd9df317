"""Hashtag names as Mastodon reads them (its ``Tag::HASHTAG_NAME_RE``), written anew.

A name is letters, digits, ``_`` and the separators Mastodon allows inside a
name (middle dot, katakana middle dot, zero-width non-joiner), and not digits
only; names compare case-insensitively.  Python's ``\\w`` is Ruby's
``[[:word:]]``; ``[^\\W\\d_]`` is ``[[:alpha:]]``.
"""

from __future__ import annotations

import re

SEPARATORS = "_\u00b7\u30fb\u200c"
_ALPHA = r"[^\W\d_]"
# Separators may sit inside a name (not first or last), with a letter somewhere
# before the last character; otherwise: word characters with at least one letter.
_WITH_SEPARATORS = rf"\w[\w{SEPARATORS}]*(?:{_ALPHA}|[{SEPARATORS}])[\w{SEPARATORS}]*\w"
_PLAIN = rf"\w*{_ALPHA}\w*"
NAME = rf"(?:{_WITH_SEPARATORS}|{_PLAIN})"
NAME_RE = re.compile(rf"(?:{NAME})", re.IGNORECASE)
MAX_LENGTH = 100


def valid_name(name: str) -> bool:
    """Whether ``name`` (without its ``#``) is a hashtag name Mastodon accepts."""
    return len(name) <= MAX_LENGTH and NAME_RE.fullmatch(name) is not None


def normal(name: str) -> str:
    """The form names are compared and linked in."""
    return name.lower()
