"""Rows as frozen values.  The store returns these, never raw records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class LocalActor:
    id: int
    username: str
    kind: str
    name: str
    summary: str
    avatar_url: str
    manually_approves_followers: bool
    discoverable: bool
    private_key_pem: str
    public_key_pem: str
    created_at: datetime
    updated_at: datetime
    # Set by ``coopfed delete-coop``: the actor answers 410 from then on.
    deleted_at: datetime | None = None
    header_url: str = ""
    # Profile fields: [{"name": ..., "value": ...}] (Mastodon's PropertyValue attachments).
    fields: list[dict[str, str]] | None = None
    # Set while a member is suspended (``coopfed member suspend``).
    suspended_at: datetime | None = None
    # What the settings gave the profile at the last start that applied them.
    settings_profile: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RemoteActor:
    uri: str
    host: str
    type: str
    username: str
    name: str
    inbox: str
    shared_inbox: str | None
    followers_url: str | None
    key_id: str | None
    public_key_pem: str | None
    document: dict[str, Any]
    fetched_at: datetime
    gone: bool

    @property
    def handle(self) -> str:
        return f"{self.username}@{self.host}" if self.username else self.uri

    @property
    def delivery_inbox(self) -> str:
        return self.shared_inbox or self.inbox


@dataclass(frozen=True, slots=True)
class Follow:
    id: int
    local_actor_id: int
    remote_actor: str
    direction: str
    state: str
    activity_id: str
    created_at: datetime
    accepted_at: datetime | None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None


@dataclass(frozen=True, slots=True)
class InboxActivity:
    id: int
    activity_id: str
    actor: str
    type: str
    body: dict[str, Any]
    local_actor_id: int | None


@dataclass(frozen=True, slots=True)
class StoredObject:
    seq: int
    uri: str
    local: bool
    type: str
    attributed_to: str
    in_reply_to: str | None
    visibility: str
    body: dict[str, Any]
    published: datetime | None
    updated: datetime | None
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class HostHealth:
    host: str
    failure_days: int
    last_failure_at: datetime | None
    unavailable: bool


@dataclass(frozen=True, slots=True)
class DeliveryRefusal:
    """The last delivery a host refused: its status (None: no answer) and why."""

    host: str
    status: int | None
    answer: str
    inbox: str
    activity_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Proposal:
    seq: int
    uri: str
    local: bool
    attributed_to: str
    kind: str
    title: str
    details: str
    action: str
    resource: str | None
    unit: str | None
    quantity: Decimal | None
    price: Decimal | None
    currency: str | None
    tags: list[str]
    deadline: datetime | None
    pledged: Decimal
    received: Decimal
    status: str
    body: dict[str, Any]
    published: datetime
    updated: datetime | None


@dataclass(frozen=True, slots=True)
class Exchange:
    id: int
    offer_id: str
    proposal_uri: str
    proposer: str
    responder: str
    role: str
    state: str
    pledge: bool
    quantity: Decimal | None
    unit: str | None
    reciprocal_quantity: Decimal | None
    reciprocal_unit: str | None
    message: str
    agreement_uri: str | None
    offer: dict[str, Any]
    agreement: dict[str, Any] | None
    receipt: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Match:
    id: int
    our_proposal: str
    their_proposal: str
    reason: str
    created_at: datetime
    dismissed: bool
