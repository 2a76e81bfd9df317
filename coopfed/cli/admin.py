"""The admin's commands: status, follows, blocks and posts.

Each command opens the node's state, calls the same functions the node uses
(``outbox.publish``), prints the result and exits.  Deliveries are queued in
the database and sent by the running node's workers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from admin.auth import set_password
from coopfed.cli.base import command, print_json, read_new_password, run_async
from federation.context import NodeContext
from federation.credentials import check_new_password
from federation.settings import Settings
from outbox import market, publish
from outbox.marketview import CoopNames

Adder = Callable[..., argparse.ArgumentParser]


async def _failing_hosts(node: NodeContext) -> list[dict[str, Any]]:
    """Hosts whose deliveries fail, each with the last refusal's status and answer."""
    hosts: dict[str, dict[str, Any]] = {
        h.host: {"host": h.host, "failure_days": h.failure_days, "unavailable": h.unavailable}
        for h in await node.store.list_failing_hosts()
    }
    for refusal in await node.store.delivery_failures():
        entry = hosts.setdefault(
            refusal.host, {"host": refusal.host, "failure_days": 0, "unavailable": False}
        )
        entry["last_refusal"] = {
            "status": refusal.status,
            "answer": refusal.answer,
            "inbox": refusal.inbox,
            "activity": refusal.activity_id,
            "at": refusal.at.isoformat(timespec="seconds"),
        }
    return list(hosts.values())


async def status(node: NodeContext, args: argparse.Namespace) -> int:
    coop = await node.coop_actor()
    counts = await node.store.count_remote_rows()
    report = {
        "coop": f"@{coop.username}@{node.urls.domain}",
        "actor": node.urls.actor(coop.username),
        "name": coop.name,
        "manually_approves_followers": coop.manually_approves_followers,
        "followers": counts["followers"],
        "pending_followers": counts["pending_followers"],
        "following": counts["following"],
        "known_remote_actors": counts["remote_actors"],
        "queue": await node.store.queue_depth(),
        "failed_jobs": await node.store.count_failed_jobs(),
        "failing_hosts": await _failing_hosts(node),
        "blocked_domains": await node.store.list_domain_blocks(),
    }
    if args.json:
        print_json(report)
        return 0
    for key, value in report.items():
        print(f"{key.replace('_', ' ')}: {value}")
    return 0


async def follow(node: NodeContext, args: argparse.Namespace) -> int:
    record = await publish.follow(node, await node.coop_actor(), args.target)
    name = await CoopNames(node).of(record.remote_actor)
    if record.state == "accepted":  # an actor of this node: followed at once
        print(f"now following {name}")
    else:
        print(f"follow request sent to {name} (pending until they accept)")
    return 0


async def unfollow(node: NodeContext, args: argparse.Namespace) -> int:
    remote = await publish.unfollow(node, await node.coop_actor(), args.target)
    print(f"unfollowed {remote.handle}")
    return 0


async def _list_follows(node: NodeContext, direction: str, state: str, as_json: bool) -> int:
    coop = await node.coop_actor()
    rows = await node.store.list_follows(coop.id, direction, state=state, limit=10_000)
    items = []
    names = CoopNames(node)
    for row in rows:
        remote = await node.store.get_remote_actor(row.remote_actor)
        username = node.urls.local_username(row.remote_actor)
        here = f"{username}@{node.urls.domain}" if username else row.remote_actor
        items.append(
            {
                "actor": row.remote_actor,
                "handle": remote.handle if remote else here,
                "name": await names.of(row.remote_actor),
                "state": row.state,
                "since": row.created_at.isoformat(),
            }
        )
    if as_json:
        print_json(items)
    elif not items:
        print("none")
    for item in items if not as_json else []:
        print(f"{item['name']}\t{item['actor']}\t{item['state']}")
    return 0


async def followers(node: NodeContext, args: argparse.Namespace) -> int:
    return await _list_follows(
        node, "inbound", "pending" if args.pending else "accepted", args.json
    )


async def following(node: NodeContext, args: argparse.Namespace) -> int:
    state = "pending" if args.pending else "accepted"
    return await _list_follows(node, "outbound", state, args.json)


async def approve(node: NodeContext, args: argparse.Namespace) -> int:
    remote = await publish.approve(node, await node.coop_actor(), args.actor)
    print(f"approved {remote.handle}")
    return 0


async def reject(node: NodeContext, args: argparse.Namespace) -> int:
    if (
        args.actor.isascii() and args.actor.isdigit()
    ):  # an exchange: refuse the offer made on our proposal
        moved = await market.reject(
            node, await node.coop_actor(), int(args.actor), args.reason or ""
        )
        print(f"exchange {moved.id} {moved.state}")
        return 0
    remote = await publish.reject(node, await node.coop_actor(), args.actor)
    print(f"rejected {remote.handle}")
    return 0


async def block(node: NodeContext, args: argparse.Namespace) -> int:
    domain, added = await publish.block_domain(node, args.domain, args.reason or "")
    print(f"blocked {domain}" if added else f"{domain} was already blocked")
    return 0


async def unblock(node: NodeContext, args: argparse.Namespace) -> int:
    domain, removed = await publish.unblock_domain(node, args.domain)
    print(f"unblocked {domain}" if removed else f"{domain} was not blocked")
    return 0


def password(args: argparse.Namespace, settings: Settings) -> int:
    """`coopfed password`: set the password of the admin pages (/admin)."""
    try:
        secret = read_new_password(args.password_stdin, "the admin pages")
    except (ValueError, EOFError, KeyboardInterrupt) as exc:
        print(f"coopfed: {exc or 'no password given'}", file=sys.stderr)
        return 1
    problem = check_new_password(secret)
    if problem is not None:
        print(f"coopfed: {problem}", file=sys.stderr)
        return 1

    async def store(node: Any) -> int:
        coop = await node.coop_actor()
        await set_password(node, coop, secret)
        print(f"admin password set; log in at {node.urls.base}/admin")
        return 0

    return run_async(settings, store)


async def blocks(node: NodeContext, args: argparse.Namespace) -> int:
    domains = await node.store.list_domain_blocks()
    if args.json:
        print_json(domains)
    else:
        print("\n".join(domains) if domains else "none")
    return 0


async def post(node: NodeContext, args: argparse.Namespace) -> int:
    create = await publish.post_note(
        node,
        await node.coop_actor(),
        args.text,
        visibility=args.visibility,
        in_reply_to=args.reply_to,
        mentions=args.mention or [],
    )
    print(create["object"]["id"])
    return 0


async def delete(node: NodeContext, args: argparse.Namespace) -> int:
    coop = await node.coop_actor()
    proposal = await node.store.get_proposal(args.uri)
    if proposal is not None and proposal.local:
        await market.delete_proposal(node, coop, args.uri)
    else:
        await publish.delete_post(node, coop, args.uri)
    print(f"deleted {args.uri}")
    return 0


async def like(node: NodeContext, args: argparse.Namespace) -> int:
    activity = await publish.like(node, await node.coop_actor(), args.uri)
    print(activity["id"])
    return 0


async def announce(node: NodeContext, args: argparse.Namespace) -> int:
    activity = await publish.announce(node, await node.coop_actor(), args.uri)
    print(activity["id"])
    return 0


async def undo(node: NodeContext, args: argparse.Namespace) -> int:
    activity = await publish.undo(node, await node.coop_actor(), args.activity_id)
    print(activity["id"])
    return 0


def add_commands(add: Adder) -> None:
    p = add("status", command(status), "show the coop, followers, queue and failing hosts")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("follow", command(follow), "follow a coop or person: user@host or an actor URL")
    p.add_argument("target", metavar="HANDLE_OR_URL")
    p = add("unfollow", command(unfollow), "stop following: user@host or an actor URL")
    p.add_argument("target", metavar="HANDLE_OR_URL")
    p = add("followers", command(followers), "list followers (or requests with --pending)")
    p.add_argument("--pending", action="store_true", help="requests awaiting approval")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("following", command(following), "list the actors the coop follows")
    p.add_argument("--pending", action="store_true", help="follows not accepted yet")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("approve", command(approve), "accept a pending follow request")
    p.add_argument("actor", metavar="HANDLE_OR_URL")
    p = add(
        "reject",
        command(reject),
        "refuse a follow request, remove a follower, or reject an offer by its exchange ID",
    )
    p.add_argument("actor", metavar="HANDLE_URL_OR_EXCHANGE_ID")
    p.add_argument("--reason", metavar="TEXT", help="why (sent with a rejected offer)")
    p = add("block", command(block), "block a domain: its requests get 403, it gets nothing")
    p.add_argument("domain", metavar="DOMAIN")
    p.add_argument("--reason", help="a note for the admins")
    p = add("unblock", command(unblock), "lift a domain block")
    p.add_argument("domain", metavar="DOMAIN")
    p = add("password", password, "set the password of the admin pages (/admin)")
    p.add_argument(
        "--password-stdin",
        "--stdin",
        dest="password_stdin",
        action="store_true",
        help="read it from one line of standard input",
    )
    p = add("blocks", command(blocks), "list blocked domains")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("post", command(post), "publish a post (a Note) to the coop's followers")
    p.add_argument("text", metavar="TEXT")
    p.add_argument(
        "--visibility", choices=("public", "unlisted", "followers", "direct"), default="public"
    )
    p.add_argument("--reply-to", metavar="URL", help="the post this replies to")
    p.add_argument("--mention", action="append", metavar="HANDLE", help="mention someone")
    p = add("delete", command(delete), "delete a post or proposal of the coop (a Tombstone)")
    p.add_argument("uri", metavar="URL")
    p = add("like", command(like), "like a post the node has received")
    p.add_argument("uri", metavar="URL")
    p = add("announce", command(announce), "boost a post to the coop's followers")
    p.add_argument("uri", metavar="URL")
    p = add("undo", command(undo), "take back a like or boost, by its activity id")
    p.add_argument("activity_id", metavar="ACTIVITY_URL")
