"""The sign-in page's words for what an app may do (clientapi.scopewords)."""

from __future__ import annotations

from clientapi.oauth import SCOPES
from clientapi.scopewords import scope_lines, scope_words


def test_every_scope_we_accept_has_plain_words() -> None:
    for scope in SCOPES:
        words = scope_words(scope)
        assert words != scope and ":" not in words, scope


def test_granular_scopes_read_as_sentences() -> None:
    assert scope_lines("read:statuses write:favourites") == [
        "read your posts and your home timeline",
        "like posts for you",
    ]


def test_a_broad_scope_covers_its_granular_ones_and_comes_first() -> None:
    lines = scope_lines(["read:statuses", "push", "read", "write:media", "read"])
    assert lines == [
        "read everything in your account (posts, timelines, notifications, whom you follow)",
        "send you push notifications",
        "upload pictures for you",
    ]
