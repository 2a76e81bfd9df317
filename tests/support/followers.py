"""Followers written straight into a node's store (no Follow round trip).

For delivery tests that need many followers: ``remote_follower`` builds the row
a fetched actor document would give, ``add_followers`` records accepted
inbound follows of a local actor for them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from actors.remote import parse_actor
from federation.store import RemoteActor, Store


def remote_follower(base: str, username: str, *, shared_inbox: bool) -> RemoteActor:
    """An actor ``{base}/users/{username}``; its shared inbox is ``{base}/inbox``."""
    uri = f"{base}/users/{username}"
    return RemoteActor(
        uri=uri,
        host=urlsplit(base).netloc,
        type="Person",
        username=username,
        name=username,
        inbox=f"{uri}/inbox",
        shared_inbox=f"{base}/inbox" if shared_inbox else None,
        followers_url=f"{uri}/followers",
        key_id=f"{uri}#main-key",
        public_key_pem=None,
        document={"id": uri, "type": "Person"},
        fetched_at=datetime.now(UTC),
        gone=False,
    )


async def add_followers(
    store: Store, local_actor_id: int, actors: Sequence[RemoteActor], *, batch: int = 50
) -> None:
    """Store ``actors`` and make each an accepted follower of the local actor."""

    async def add(actor: RemoteActor) -> None:
        await store.upsert_remote_actor(actor)
        await store.upsert_follow(
            local_actor_id=local_actor_id,
            remote_actor=actor.uri,
            direction="inbound",
            state="accepted",
            activity_id=f"{actor.uri}/follows/{uuid.uuid4().hex}",
        )

    for start in range(0, len(actors), batch):
        await asyncio.gather(*(add(a) for a in actors[start : start + batch]))


def from_document(document: dict[str, Any]) -> RemoteActor:
    """The row a fetch of this actor document would store."""
    return parse_actor(document, document["id"], datetime.now(UTC))
