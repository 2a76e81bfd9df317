"""Where everything of a node lives: the one place that spells our URLs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from federation.origins import same_origin

INSTANCE_ACTOR_USERNAME = "coopfed.internal"


@dataclass(frozen=True, slots=True)
class Urls:
    base: str  # e.g. https://coop.example, no trailing slash

    @property
    def domain(self) -> str:
        return urlsplit(self.base).netloc

    def actor(self, username: str) -> str:
        return f"{self.base}/users/{username}"

    def key_id(self, username: str) -> str:
        return f"{self.actor(username)}#main-key"

    def inbox(self, username: str) -> str:
        return f"{self.actor(username)}/inbox"

    def outbox(self, username: str) -> str:
        return f"{self.actor(username)}/outbox"

    def followers(self, username: str) -> str:
        return f"{self.actor(username)}/followers"

    def following(self, username: str) -> str:
        return f"{self.actor(username)}/following"

    def media(self, name: str) -> str:
        return f"{self.base}/media/{name}"

    def profile_page(self, username: str) -> str:
        return f"{self.base}/@{username}"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    @property
    def instance_actor(self) -> str:
        return f"{self.base}/actor"

    @property
    def instance_key_id(self) -> str:
        return f"{self.instance_actor}#main-key"

    def activity(self, token: str) -> str:
        return f"{self.base}/activities/{token}"

    def object(self, token: str) -> str:
        return f"{self.base}/objects/{token}"

    def proposal(self, token: str) -> str:
        return f"{self.base}/proposals/{token}"

    def agreement(self, token: str) -> str:
        return f"{self.base}/agreements/{token}"

    def receipt(self, token: str) -> str:
        return f"{self.base}/receipts/{token}"

    @property
    def tag_base(self) -> str:
        return f"{self.base}/tags/"

    def is_local(self, url: str) -> bool:
        """Whether ``url`` is on this node's origin (scheme, host and port)."""
        return same_origin(url, self.base)

    def local_username(self, actor_url: str) -> str | None:
        """The username of a local actor URL, or None."""
        prefix = f"{self.base}/users/"
        if actor_url.startswith(prefix):
            rest = actor_url[len(prefix) :]
            if rest and "/" not in rest and "#" not in rest:
                return rest
        if actor_url == self.instance_actor:
            return INSTANCE_ACTOR_USERNAME
        return None
