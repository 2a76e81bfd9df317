"""The node's shared state, as one typed value stored under ``NODE`` in the app."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from federation.client import SignedClient
from federation.keys import Signer, load_private_key
from federation.mediafiles import MediaFiles
from federation.metrics import Metrics
from federation.netguard import AddressGuard, DomainBlocks
from federation.ratelimit import RateLimiter
from federation.settings import Settings
from federation.store import LocalActor, Store
from federation.urls import INSTANCE_ACTOR_USERNAME, Urls


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class NodeContext:
    settings: Settings
    store: Store
    urls: Urls
    client: SignedClient
    guard: AddressGuard
    blocks: DomainBlocks
    clock: Callable[[], datetime] = utc_now
    new_token: Callable[[], str] = new_token
    metrics: Metrics = field(default_factory=Metrics)
    inbox_limiter: RateLimiter | None = None
    # Client-to-server requests, keyed by the bearer token's hash.
    c2s_limiter: RateLimiter | None = None
    _signers: dict[str, Signer] = field(default_factory=dict)

    @property
    def media(self) -> MediaFiles:
        return MediaFiles(self.settings.media_path)

    def signer_for(self, actor: LocalActor) -> Signer:
        """The actor's signing key, parsed once (a validated PEM load costs 36 ms)."""
        signer = self._signers.get(actor.username)
        if signer is None:
            key_id = (
                self.urls.instance_key_id
                if actor.username == INSTANCE_ACTOR_USERNAME
                else self.urls.key_id(actor.username)
            )
            signer = Signer(key_id=key_id, private_key=load_private_key(actor.private_key_pem))
            self._signers[actor.username] = signer
        return signer

    async def instance_signer(self) -> Signer:
        actor = await self.store.get_local_actor(INSTANCE_ACTOR_USERNAME)
        assert actor is not None, "the instance actor is created at start"
        return self.signer_for(actor)

    async def coop_actor(self) -> LocalActor:
        actor = await self.store.get_local_actor(self.settings.username)
        assert actor is not None, "the coop actor is created at start"
        return actor


NODE = web.AppKey("node", NodeContext)
