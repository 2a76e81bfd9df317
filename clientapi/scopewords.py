"""What an app may do, in plain words, for the sign-in page a member sees.

Mastodon's scopes are ``read``, ``write``, ``follow``, ``push`` and ``profile``,
and granular ones such as ``read:statuses``.  ``scope_lines`` turns the scopes an
app asks for into short sentences ("read your posts"), without repeating what a
broader scope already says.  Pure.
"""

from __future__ import annotations

READ_WORDS = {
    "accounts": "see your profile and the accounts you look up",
    "blocks": "see whom you block",
    "bookmarks": "see your bookmarks",
    "favourites": "see the posts you liked",
    "filters": "see your filters",
    "follows": "see whom you follow and who follows you",
    "lists": "see your lists",
    "mutes": "see whom you mute",
    "notifications": "read your notifications",
    "search": "search on your behalf",
    "statuses": "read your posts and your home timeline",
}
WRITE_WORDS = {
    "accounts": "change your profile",
    "blocks": "block and unblock accounts",
    "bookmarks": "bookmark posts",
    "conversations": "manage your conversations",
    "favourites": "like posts for you",
    "filters": "change your filters",
    "follows": "follow and unfollow accounts",
    "lists": "change your lists",
    "media": "upload pictures for you",
    "mutes": "mute and unmute accounts",
    "notifications": "dismiss your notifications",
    "reports": "report accounts",
    "statuses": "publish, reply and delete posts as you",
}
TOP_WORDS = {
    "read": "read everything in your account (posts, timelines, notifications, whom you follow)",
    "write": "act as you (publish and delete posts, reply, like, boost, change your profile)",
    "follow": "follow, unfollow, block and mute accounts for you",
    "push": "send you push notifications",
    "profile": "see your name and profile (to know who signed in)",
}
ORDER = ("profile", "read", "write", "follow", "push")


def scope_words(scope: str) -> str:
    """One scope in plain words; an unknown one as it is."""
    if scope in TOP_WORDS:
        return TOP_WORDS[scope]
    top, _, part = scope.partition(":")
    words = {"read": READ_WORDS, "write": WRITE_WORDS}.get(top, {})
    return words.get(part, scope)


def scope_lines(scopes: list[str] | str) -> list[str]:
    """The sentences for what an app asks, broad ones first, none said twice."""
    asked = list(dict.fromkeys(scopes.split() if isinstance(scopes, str) else scopes))
    broad = [s for s in ORDER if s in asked]
    narrow = sorted(s for s in asked if s not in broad and s.partition(":")[0] not in broad)
    lines = [scope_words(s) for s in broad + narrow]
    return list(dict.fromkeys(lines))
