"""A coop's members: Person actors on the coop's node, with their own keys and a
password to log in from Mastodon-compatible apps (``clientapi``).

The coop admin creates them (``coopfed member add``, or the admin pages).  The
password is an scrypt hash in ``member_passwords``, never in
``admin_passwords``: a member's login never opens the admin pages.

A suspended member's tokens are revoked and its logins refused until the
suspension is lifted.  A removed member's ``Delete`` goes to its followers and
the actors it follows, its URL answers 410 (a Tombstone), and its row stays, so
its handle is never given to someone else.
"""

from __future__ import annotations

import asyncio

from federation.context import NodeContext
from federation.credentials import check_new_password, hash_password, verify_password
from federation.keys import dump_private_key_pem, dump_public_key_pem, generate_private_key
from federation.settings import USERNAME_RE
from federation.store import LocalActor
from federation.urls import INSTANCE_ACTOR_USERNAME
from outbox.errors import ActionError
from outbox.lifecycle import AlreadyDeleted, delete_actor

MAX_USERNAME = 30
MAX_NAME = 100


def check_username(username: str) -> str | None:
    """Why ``username`` cannot be a new member's handle, or None."""
    if not USERNAME_RE.match(username) or len(username) > MAX_USERNAME:
        return (
            f"{username!r} is not a valid username: letters, digits and _ "
            f"(with . or - inside), at most {MAX_USERNAME} characters"
        )
    if username.lower() == INSTANCE_ACTOR_USERNAME:
        return f"{username!r} is reserved"
    return None


async def create_member(
    node: NodeContext, username: str, password: str, *, name: str = ""
) -> LocalActor:
    """A new member ``@username@domain`` (a Person with its own key) and its password."""
    problem = check_username(username) or check_new_password(password)
    if problem is not None:
        raise ActionError("invalid", problem)
    if len(name) > MAX_NAME:
        raise ActionError("invalid", f"the name must have at most {MAX_NAME} characters")
    wanted = username.lower()
    for existing in await node.store.list_local_actors():
        if existing.username.lower() != wanted:
            continue
        if existing.deleted_at is not None:
            raise ActionError(
                "taken", f"the username {username} belonged to a removed account: never reused"
            )
        raise ActionError("taken", f"the username {username} is taken on this node")
    key = await asyncio.to_thread(generate_private_key)
    actor = await node.store.create_local_actor(
        username=username,
        kind="member",
        name=name or username,
        summary="",
        avatar_url="",
        manually_approves_followers=False,
        private_key_pem=dump_private_key_pem(key),
        public_key_pem=dump_public_key_pem(key),
    )
    if actor.kind != "member":  # lost a race with another actor of that name
        raise ActionError("taken", f"the username {username} is taken on this node")
    await set_member_password(node, actor, password)
    return actor


async def set_member_password(node: NodeContext, actor: LocalActor, password: str) -> None:
    """Set a member's password; the tokens its apps hold stop working."""
    if actor.kind != "member":
        raise ActionError("not_member", f"@{actor.username} is not a member")
    problem = check_new_password(password)
    if problem is not None:
        raise ActionError("invalid", problem)
    await node.store.set_member_password(actor.id, await asyncio.to_thread(hash_password, password))


async def get_member(node: NodeContext, username: str, *, removed: bool = False) -> LocalActor:
    """The member ``username``; a removed one only with ``removed``."""
    actor = await node.store.get_local_actor(username.strip().lstrip("@"))
    if actor is None or actor.kind != "member":
        raise ActionError("not_found", f"no member @{username} on this node")
    if actor.deleted_at is not None and not removed:
        raise ActionError("not_found", f"@{actor.username} was removed")
    return actor


async def suspend_member(node: NodeContext, actor: LocalActor) -> LocalActor:
    """Refuse the member's logins and revoke the tokens its apps hold."""
    changed = await node.store.set_suspended(actor.id, True)
    if changed is None:
        raise ActionError("already_suspended", f"@{actor.username} is already suspended")
    return changed


async def unsuspend_member(node: NodeContext, actor: LocalActor) -> LocalActor:
    """Let the member log in again (its apps need a new login)."""
    changed = await node.store.set_suspended(actor.id, False)
    if changed is None:
        raise ActionError("not_suspended", f"@{actor.username} is not suspended")
    return changed


async def remove_member(node: NodeContext, actor: LocalActor) -> int:
    """Delete the member's actor (``Delete`` to its followers, then 410); the number
    of inboxes the Delete was queued for."""
    if actor.kind != "member":
        raise ActionError("not_member", f"@{actor.username} is not a member")
    try:
        _, queued = await delete_actor(node, actor)
    except AlreadyDeleted:
        raise ActionError("already_removed", f"@{actor.username} was already removed") from None
    await node.store.end_member_access(actor.id)
    return queued


async def check_login(node: NodeContext, username: str, password: str) -> LocalActor | None:
    """The member whose username (any case) and password these are, else None.

    Costs one scrypt whether or not the member exists, so timing tells nothing.
    """
    actor = await node.store.get_local_actor(username.strip().lstrip("@"))
    if actor is None:
        wanted = username.strip().lstrip("@").lower()
        members = await node.store.list_members()
        actor = next((m for m in members if m.username.lower() == wanted), None)
    member = actor if actor is not None and actor.kind == "member" else None
    if member is not None and (member.deleted_at is not None or member.suspended_at is not None):
        member = None
    stored = await node.store.get_member_password(member.id) if member else None
    ok = await asyncio.to_thread(verify_password, password, stored)
    return member if ok and stored else None
