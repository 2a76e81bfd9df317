"""Data stewardship: ``coopfed export``, ``coopfed import`` and ``coopfed delete-coop``.

The archive is one JSON file (UTF-8, written with mode 0600 because it holds
the coop's private keys)::

    {"format": "coopfed-archive", "version": 1, "exported_at": "...",
     "software": "coopfed 0.1.0", "schema_version": 4,
     "node": {"origin": "https://coop.example", "domain": "coop.example",
              "username": "coop"},
     "local_actors": [...],    # coop, members, instance actor: WITH private keys
     "objects": [...],         # our posts and proposals as published (tombstones too)
     "outbox": [...],          # every activity we sent, in order
     "proposals": [...],       # our offers, needs and solidarity requests
     "follows": [...],         # followers (inbound) and following (outbound)
     "remote_actors": [...],   # their actor documents, as last fetched
     "interactions": [...],    # likes and boosts of our posts
     "exchanges": [...],       # each with its "events"
     "domain_blocks": [...], "rules": [...],
     "admin_passwords": [...], "member_passwords": [...]}   # scrypt hashes

Each section is a list of rows keyed by column name; timestamps are RFC 3339
strings, decimals are strings, local actors are named by ``local_actor``
(username).  Not exported: received posts of others, the inbox log, queued
jobs, API and OAuth tokens (log in again), matches and host health.

``import`` restores an archive into a database with no content (the node must
not be running on it), under the archive's origin and username: serve it at
the same origin and peers see the same actor with the same key.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from coopfed.cli.base import add_settings, run_async
from coopfed.database import database_for
from coopfed.state_file import load_identity, save_identity
from federation.context import NodeContext
from federation.settings import Settings
from federation.store import ArchiveRefused, Store, applied_versions, apply_migrations, create_pool
from federation.version import software_version
from outbox.lifecycle import AlreadyDeleted, delete_actor
from outbox.market import CLOSE_PROPOSAL

FORMAT = "coopfed-archive"
VERSION = 1
Adder = Any


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, readable by its owner only (0600), even if it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)


def archive_problem(archive: Any) -> str | None:
    """Why ``archive`` cannot be imported by this version, or None."""
    if not isinstance(archive, dict) or archive.get("format") != FORMAT:
        return "this is not a coopfed archive"
    if archive.get("version") != VERSION:
        return f"archive version {archive.get('version')!r} is not supported (this reads {VERSION})"
    node = archive.get("node")
    if not (
        isinstance(node, dict)
        and isinstance(node.get("origin"), str)
        and isinstance(node.get("username"), str)
    ):
        return "the archive does not name its node (origin, username)"
    return None


# -- export ---------------------------------------------------------------------


async def build_archive(store: Any, settings: Settings) -> dict[str, Any] | str:
    """The archive of the node in ``store``; a string says why there is none."""
    coop = await store.get_local_actor_by_kind("coop")
    if coop is None:
        return "this database holds no coop: nothing to export"
    sections = await store.export_archive()
    expected = f"{settings.base_url}/users/{coop.username}"
    ours = [row for row in sections["outbox"] if row["local_actor"] == coop.username]
    if any(row["body"].get("actor") != expected for row in ours[:50]):
        return (
            f"the coop's activities were not published as {expected}: pass the --origin "
            "the node runs with"
        )
    versions = await applied_versions(store.pool)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "software": f"coopfed {software_version()}",
        "schema_version": max(versions),
        "node": {"origin": settings.base_url, "domain": settings.domain, "username": coop.username},
        **sections,
    }


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.origin and not load_identity(settings.data_dir):
        print(
            f"coopfed: {settings.data_dir} has no node identity (node.json): give the "
            "--data-dir of the node, or its --origin",
            file=sys.stderr,
        )
        return 2

    async def main(dsn: str) -> dict[str, Any] | str:
        pool = await create_pool(dsn, max_size=2)
        try:
            await apply_migrations(pool)
            return await build_archive(Store(pool), settings)
        finally:
            await pool.close()

    with database_for(settings) as dsn:
        archive = asyncio.run(main(dsn))
    if isinstance(archive, str):
        print(f"coopfed: {archive}", file=sys.stderr)
        return 1
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = Path(args.output or f"coopfed-export-{archive['node']['username']}-{stamp}.json")
    write_private(output, orjson.dumps(archive, default=_encode, option=orjson.OPT_INDENT_2))
    handle = f"@{archive['node']['username']}@{archive['node']['domain']}"
    print(
        f"exported {handle} to {output}: {len(archive['follows'])} follows, "
        f"{len(archive['objects'])} objects, {len(archive['proposals'])} proposals, "
        f"{len(archive['exchanges'])} exchanges"
    )
    print(
        f"{output} holds the coop's private keys (mode 0600): whoever has it can speak as "
        f"{handle}. Keep it safe.",
        file=sys.stderr,
    )
    return 0


# -- import ---------------------------------------------------------------------


def close_jobs(archive: dict[str, Any]) -> list[tuple[str, dict[str, Any], datetime | None, int]]:
    """The deadline jobs of our open proposals (queued jobs are not exported)."""
    jobs: list[tuple[str, dict[str, Any], datetime | None, int]] = []
    for row in archive.get("proposals") or []:
        if row.get("local") and row.get("status") == "open" and row.get("deadline"):
            deadline = datetime.fromisoformat(str(row["deadline"]).replace("Z", "+00:00"))
            jobs.append((CLOSE_PROPOSAL, {"uri": row["uri"]}, deadline, 5))
    return jobs


async def restore(store: Any, archive: dict[str, Any]) -> dict[str, int]:
    """Import ``archive`` (checked with ``archive_problem``) into the node of ``store``."""
    return dict(
        await store.import_archive(
            archive, coop_username=archive["node"]["username"], jobs=close_jobs(archive)
        )
    )


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        archive = orjson.loads(Path(args.file).read_bytes())
    except OSError as exc:
        print(f"coopfed: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except orjson.JSONDecodeError as exc:
        print(f"coopfed: {args.file} is not JSON: {exc}", file=sys.stderr)
        return 1
    problem = archive_problem(archive)
    if problem is not None:
        print(f"coopfed: {args.file}: {problem}", file=sys.stderr)
        return 1
    origin, username = archive["node"]["origin"], archive["node"]["username"]
    target = settings.with_overrides(origin=origin, username=username)

    async def main(dsn: str) -> dict[str, int]:
        pool = await create_pool(dsn, max_size=2)
        try:
            await apply_migrations(pool)
            return await restore(Store(pool), archive)
        finally:
            await pool.close()

    try:
        with database_for(target) as dsn:
            counts = asyncio.run(main(dsn))
    except ArchiveRefused as exc:
        print(f"coopfed: cannot import: {exc}", file=sys.stderr)
        return 1
    save_identity(target)
    print(
        f"imported @{username}@{target.domain}: {counts['follows']} follows, "
        f"{counts['objects']} objects, {counts['proposals']} proposals, "
        f"{counts['exchanges']} exchanges"
    )
    print(
        f"serve it at {origin}: coopfed run --data-dir {target.data_dir} "
        f"--origin {origin} --username {username}"
    )
    return 0


# -- delete the coop ---------------------------------------------------------------


def cmd_delete_coop(args: argparse.Namespace, settings: Settings) -> int:
    handle = f"@{settings.username}@{settings.domain}"
    if not args.yes:
        print(
            f"coopfed: delete-coop deletes {handle} for good: every follower is told, the "
            "actor answers 410 Gone and the handle cannot come back. Export it first "
            "(coopfed export), then run again with --yes.",
            file=sys.stderr,
        )
        return 2

    async def action(node: NodeContext) -> int:
        coop = await node.coop_actor()
        try:
            activity, queued = await delete_actor(node, coop)
        except AlreadyDeleted:
            print(f"coopfed: {handle} was already deleted", file=sys.stderr)
            return 1
        print(
            f"deleted {handle}: Delete {activity['id']} queued for {queued} inbox(es). "
            "Keep the node running until `coopfed status` shows no deliveries queued."
        )
        return 0

    return run_async(settings, action)


def add_commands(add: Adder) -> None:

    p = add(
        "export",
        cmd_export,
        "write the coop (profile, PRIVATE KEYS, posts, proposals, follows, exchanges, "
        "blocks, rules) to one JSON file, mode 0600: keep it as safe as the keys",
    )
    add_settings(p, ["origin"])
    p.add_argument("--output", "-o", metavar="FILE", help="where to write it")
    p = add(
        "import",
        cmd_import,
        "restore an export into a new node's empty database (the node not running); "
        "serve it at the same origin afterwards",
    )
    p.add_argument("file", metavar="FILE")
    p = add(
        "delete-coop",
        cmd_delete_coop,
        "delete the coop for good: send Delete to its followers, then answer 410 Gone",
    )
    p.add_argument("--yes", action="store_true", help="yes, delete it for good")
