"""``coopfed member``: the coop's members, who log in from Mastodon-compatible apps.

- ``coopfed member add USERNAME [--name NAME]`` creates ``@USERNAME@domain``
  (a Person with its own key) and asks for its password twice (or reads one
  line from standard input with ``--password-stdin``).
- ``coopfed member password USERNAME`` sets a new password; the member's apps
  must log in again.
- ``coopfed member list [--json]``.
- ``coopfed member suspend USERNAME``: its apps' tokens are revoked and its logins
  refused; ``coopfed member unsuspend USERNAME`` lets it log in again.
- ``coopfed member remove USERNAME``: sends ``Delete`` of its actor to its
  followers; its URL answers 410 and its handle is never reused.

Repeating one of these (suspending a suspended member, ...) exits 0 and says
there was nothing to do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from coopfed.cli.base import FLAG_HELP, NODE_FLAGS, print_json, read_new_password, run_async
from federation.context import NodeContext
from federation.settings import ENV_NAMES, Settings
from outbox.errors import ActionError
from outbox.members import (
    create_member,
    get_member,
    remove_member,
    set_member_password,
    suspend_member,
    unsuspend_member,
)

Adder = Callable[..., argparse.ArgumentParser]


def _run(args: argparse.Namespace, settings: Settings) -> int:

    try:
        password = (
            read_new_password(args.password_stdin, f"@{args.member}")
            if args.action in ("add", "password")
            else ""
        )
    except (ValueError, EOFError) as exc:
        print(f"coopfed: {exc}", file=sys.stderr)
        return 1

    async def with_node(node: Any) -> int:
        try:
            return await ACTIONS[args.action](node, args, password)
        except ActionError as exc:
            if exc.reason in ActionError.ALREADY_DONE:
                print(f"{exc.detail}: nothing to do")
                return 0
            print(f"coopfed: {exc.detail}", file=sys.stderr)
            return 1

    return run_async(settings, with_node)


async def add(node: NodeContext, args: argparse.Namespace, password: str) -> int:
    actor = await create_member(node, args.member, password, name=args.display_name or "")
    print(f"@{actor.username}@{node.urls.domain} is ready: {node.urls.actor(actor.username)}")
    print(f"log in from a Mastodon app with the server {node.urls.base}")
    return 0


async def password(node: NodeContext, args: argparse.Namespace, password: str) -> int:
    actor = await get_member(node, args.member)
    await set_member_password(node, actor, password)
    print(f"new password set for @{actor.username}; its apps must log in again")
    return 0


async def list_members(node: NodeContext, args: argparse.Namespace, password: str) -> int:
    members = await node.store.list_members()
    items = [
        {
            "username": m.username,
            "handle": f"@{m.username}@{node.urls.domain}",
            "name": m.name,
            "actor": node.urls.actor(m.username),
            "created_at": m.created_at.isoformat(),
            "suspended": m.suspended_at is not None,
        }
        for m in members
        if m.deleted_at is None
    ]
    if args.json:
        print_json(items)
    elif not items:
        print("no members")
    for item in items if not args.json else []:
        state = "\tsuspended" if item["suspended"] else ""
        print(f"{item['handle']}\t{item['name']}\t{item['actor']}{state}")
    return 0


async def suspend(node: NodeContext, args: argparse.Namespace, password: str) -> int:
    actor = await suspend_member(node, await get_member(node, args.member))
    print(f"@{actor.username} is suspended: its apps were logged out and its logins are refused")
    return 0


async def unsuspend(node: NodeContext, args: argparse.Namespace, password: str) -> int:
    actor = await unsuspend_member(node, await get_member(node, args.member))
    print(f"@{actor.username} may log in again")
    return 0


async def remove(node: NodeContext, args: argparse.Namespace, password: str) -> int:
    actor = await get_member(node, args.member, removed=True)
    queued = await remove_member(node, actor)
    print(
        f"@{actor.username} is removed: Delete sent to {queued} inbox(es); "
        f"{node.urls.actor(actor.username)} answers 410 and the name is never reused"
    )
    return 0


ACTIONS = {
    "add": add,
    "password": password,
    "list": list_members,
    "suspend": suspend,
    "unsuspend": unsuspend,
    "remove": remove,
}


def _node_flags(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --database-url after the action too (only set when given)."""
    for name in NODE_FLAGS:
        var, _ = ENV_NAMES[name]
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=argparse.SUPPRESS,
            metavar=name.upper(),
            help=f"{FLAG_HELP[name]} [env {var}]",
        )


def add_commands(add_command: Adder) -> None:
    p = add_command("member", _run, "manage the coop's members (who log in from Mastodon apps)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = sub.add_parser("add", help="create a member account and set its password")
    _node_flags(q)
    q.add_argument("member", metavar="USERNAME")
    q.add_argument("--name", dest="display_name", metavar="NAME", help="the member's display name")
    q.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    q = sub.add_parser("password", help="set a member's password (its apps log in again)")
    _node_flags(q)
    q.add_argument("member", metavar="USERNAME")
    q.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    q = sub.add_parser("list", help="list the members")
    _node_flags(q)
    q.add_argument("--json", action="store_true", help="print JSON")
    for name, text in (
        ("suspend", "refuse a member's logins and revoke its apps' tokens"),
        ("unsuspend", "let a suspended member log in again"),
        ("remove", "delete a member's account: Delete sent, 410 from then on"),
    ):
        q = sub.add_parser(name, help=text)
        _node_flags(q)
        q.add_argument("member", metavar="USERNAME")
