"""`coopfed export` and `coopfed import`: the coop moves to a new database intact.

The restored node is served at the *same origin* as the exported one: node A is
stopped, and a node on a fresh database (restored from A's archive) is started
on A's port with A's settings.  An actor's identity is its URL, so this is the
move the archive is for (a new server behind the same domain); peers that knew
A (a coopfed node B, a Mastodon-shaped FakePeer) keep talking to the restored
node without being told anything, which is what the test checks.
"""

from __future__ import annotations

import socket
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from actors.local import ensure_local_actors
from coopfed.cli.data import FORMAT, VERSION, _encode, archive_problem, build_archive, restore
from coopfed.state_file import load_identity, save_identity
from federation.store import ArchiveRefused, Store, create_pool
from outbox import market
from outbox.publish import follow, post_note
from tests.support.cli import BARE_ENV, run_coopfed
from tests.support.fakepeer import FakePeer
from tests.support.nodes import (
    NodeFactory,
    RunningNode,
    clean_database,
    database_dsn,
    eventually,
)
from tests.support.peerflow import accepted_follower, followers_page, our_accepted_follow

AP = {"Accept": "application/activity+json"}
NEED: dict[str, Any] = {
    "kind": "need",
    "title": "Organic flour",
    "quantity": "200",
    "unit": "kilogram",
    "tags": ["flour"],
    "resource": "flour",
    "deadline": "2099-01-01T00:00:00+00:00",
}


async def _get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url, headers=AP) as resp:
        assert resp.status == 200, url
        return await resp.json(content_type=None)


async def _following_page(http: aiohttp.ClientSession, node: RunningNode) -> list[str]:
    page = await _get_json(http, f"{node.actor_url}/following?page=1")
    items: list[str] = page["orderedItems"]
    return items


def _without_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


async def _fresh_database(admin_dsn: str, name: str) -> str:
    dsn = await database_dsn(admin_dsn, name)
    await clean_database(dsn)
    return dsn


async def _serve_at_same_origin(old: RunningNode, dsn: str) -> RunningNode:
    """A node on ``dsn`` with ``old``'s settings, listening on ``old``'s port."""
    settings = old.settings.with_overrides(database_url=dsn)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", settings.port))
    restored = RunningNode(f"{old.name}-restored", settings, dsn, sock)
    await restored.start()
    return restored


async def _exchange_with_b(a: RunningNode, b: RunningNode) -> tuple[str, int, int]:
    """B follows A; A needs flour; B offers, A accepts: (need uri, id at A, id at B)."""
    b_coop = await b.ctx.coop_actor()
    await follow(b.ctx, b_coop, a.handle)

    async def b_follows() -> bool:
        return bool(await b.ctx.store.list_follows(b_coop.id, "outbound"))

    await eventually(b_follows, message="A accepts B")
    create = await market.publish_proposal(a.ctx, await a.ctx.coop_actor(), NEED)
    uri = create["object"]["id"]
    await eventually(lambda: b.ctx.store.get_proposal(uri), message="B stores the need")
    at_b = await market.respond(b.ctx, b_coop, uri, quantity=Decimal(50), reciprocal=Decimal(120))

    async def offered() -> Any:
        rows = await a.ctx.store.list_exchanges()
        return rows[0] if rows else None

    at_a = await eventually(offered, message="A records B's offer")
    await market.accept(a.ctx, await a.ctx.coop_actor(), at_a.id)

    async def accepted_at_b() -> bool:
        row = await b.ctx.store.get_exchange(at_b.id)
        return row is not None and row.state == "accepted"

    await eventually(accepted_at_b, message="B sees the acceptance")
    return uri, at_a.id, at_b.id


async def test_export_import_restores_the_coop_at_the_same_origin(
    nodes: NodeFactory, pg_admin_dsn: str, http: aiohttp.ClientSession
) -> None:
    a = await nodes("a")
    b = await nodes("b")
    peer = await FakePeer(style="mastodon").start()
    restored: RunningNode | None = None
    try:
        # Given A with followers (coop B, Mastodon user alice), a follow of bob,
        # a post, a need with an accepted exchange, a domain block and a rule
        alice, bob = peer.add_actor("alice"), peer.add_actor("bob")
        await accepted_follower(peer, alice, a)
        await our_accepted_follow(a, peer, bob)
        need_uri, exchange_id, b_exchange_id = await _exchange_with_b(a, b)
        await post_note(a.ctx, await a.ctx.coop_actor(), "Before the move")
        await a.ctx.store.add_domain_block("spam.example", "spam")
        await a.ctx.store.set_rule("auto_accept_offers", True)
        await a.drain()
        actor_before = await _get_json(http, a.actor_url)
        followers_before = sorted(await followers_page(http, a))
        following_before = await _following_page(http, a)
        outbox_before = await _get_json(http, f"{a.actor_url}/outbox")
        events_before = _without_ids(await a.ctx.store.exchange_events(exchange_id))

        # When A is exported (as the file holds it) and A's server stops
        archive = await build_archive(a.ctx.store, a.settings)
        assert isinstance(archive, dict)
        data = orjson.loads(orjson.dumps(archive, default=_encode))
        await a.stop()
        # And a new server, on which `coopfed init` made a coop with other keys,
        # imports it
        dsn = await _fresh_database(pg_admin_dsn, "node_restored")
        pool = await create_pool(dsn, max_size=2)
        try:
            fresh = await ensure_local_actors(Store(pool), a.settings)
            assert fresh.public_key_pem != actor_before["publicKey"]["publicKeyPem"]
            counts = await restore(Store(pool), data)
        finally:
            await pool.close()
        assert (counts["follows"], counts["exchanges"], counts["proposals"]) == (3, 1, 1)
        restored = await _serve_at_same_origin(a, dsn)

        # Then the same actor is served, with the same key
        assert await _get_json(http, a.actor_url) == actor_before
        # And the same followers, following and outbox
        assert sorted(await followers_page(http, restored)) == followers_before
        assert followers_before == sorted([b.actor_url, alice.id])
        assert await _following_page(http, restored) == following_before == [bob.id]
        assert await _get_json(http, f"{a.actor_url}/outbox") == outbox_before
        # And the need, its deadline job, the exchange with its events, blocks and rules
        store = restored.ctx.store
        proposal = await store.get_proposal(need_uri)
        assert proposal is not None and proposal.local and proposal.quantity == Decimal(200)
        jobs = await store.pool.fetch(
            "SELECT payload, run_at FROM jobs WHERE kind = 'close_proposal' ORDER BY id"
        )
        assert [(j["payload"], j["run_at"]) for j in jobs] == [
            ({"uri": need_uri}, proposal.deadline)
        ]
        exchange = await store.get_exchange(exchange_id)
        assert exchange is not None and exchange.state == "accepted"
        assert exchange.quantity == Decimal(50) and exchange.reciprocal_quantity == Decimal(120)
        assert _without_ids(await store.exchange_events(exchange_id)) == events_before
        assert [e["event"] for e in events_before] == ["accept"]
        assert await store.list_domain_blocks() == ["spam.example"]
        assert await store.get_rule("auto_accept_offers", False) is True

        # When the restored coop posts and completes the exchange
        creates_before = len(peer.of_type("Create"))
        coop = await restored.ctx.coop_actor()
        note = await post_note(restored.ctx, coop, "After the move")
        await market.complete(restored.ctx, coop, exchange_id)
        # Then alice gets the post, signed with the key she knows
        creates = await peer.wait_for("Create", count=creates_before + 1)
        assert creates[-1].verified, creates[-1].reason
        assert creates[-1].signer == a.actor_url
        assert creates[-1].body["object"]["id"] == note["object"]["id"]

        # And coop B, which never heard of a move, stores the post and the completion
        async def b_has_post() -> bool:
            posts = await b.ctx.store.list_objects_by(a.actor_url)
            return any(p.uri == note["object"]["id"] for p in posts)

        await eventually(b_has_post, message="B stores the restored coop's post")

        async def completed_at_b() -> bool:
            row = await b.ctx.store.get_exchange(b_exchange_id)
            return row is not None and row.state == "completed"

        await eventually(completed_at_b, message="B sees the exchange completed")
    finally:
        if restored is not None:
            await restored.stop()
        await peer.stop()


async def _archive_of(node: RunningNode) -> dict[str, Any]:
    archive = await build_archive(node.ctx.store, node.settings)
    assert isinstance(archive, dict)
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(archive, default=_encode))
    return parsed


async def test_import_refuses_a_database_in_use_or_of_another_coop(nodes: NodeFactory) -> None:
    a = await nodes("a")
    archive = await _archive_of(a)
    # Given node B with a post, and node C whose coop is @other (both otherwise fresh)
    b = await nodes("b")
    await post_note(b.ctx, await b.ctx.coop_actor(), "Ours")
    c = await nodes("c", username="other")
    b_key = (await b.ctx.coop_actor()).private_key_pem
    # When A's archive is imported into B, then into C
    with pytest.raises(ArchiveRefused, match=r"not empty \(it has objects, outbox_activities\)"):
        await restore(b.ctx.store, archive)
    with pytest.raises(ArchiveRefused, match="belongs to the coop @other, not @coop"):
        await restore(c.ctx.store, archive)
    # Then neither changed
    assert (await b.ctx.coop_actor()).private_key_pem == b_key
    assert [x.username for x in await c.ctx.store.list_local_actors()] == [
        "other",
        "coopfed.internal",
    ]


async def test_export_refuses_an_origin_the_coop_did_not_publish_under(
    node: RunningNode,
) -> None:
    # Given a coop that has published
    await post_note(node.ctx, await node.ctx.coop_actor(), "Hello")
    # When it is exported with another origin than the node's
    elsewhere = node.settings.with_overrides(origin="https://elsewhere.example")
    archive = await build_archive(node.ctx.store, elsewhere)
    # Then nothing is exported: an archive under a wrong origin is another actor
    assert archive == (
        "the coop's activities were not published as https://elsewhere.example/users/coop: "
        "pass the --origin the node runs with"
    )


async def test_import_is_all_or_nothing(nodes: NodeFactory, pg_admin_dsn: str) -> None:
    a = await nodes("a")
    archive = await _archive_of(a)
    # Given an archive whose last section does not fit the schema
    archive["rules"] = [{"name": None, "value": True}]
    dsn = await _fresh_database(pg_admin_dsn, "node_restored")
    pool = await create_pool(dsn, max_size=1)
    try:
        # When it is imported
        with pytest.raises(ArchiveRefused, match="does not fit the schema"):
            await restore(Store(pool), archive)
        # Then nothing was written
        assert await Store(pool).list_local_actors() == []
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("archive", "problem"),
    [
        ([], "this is not a coopfed archive"),
        ({"format": "other"}, "this is not a coopfed archive"),
        (
            {"format": FORMAT, "version": 2},
            "archive version 2 is not supported (this reads 1)",
        ),
        (
            {"format": FORMAT, "version": VERSION, "node": {"origin": "x"}},
            "the archive does not name its node (origin, username)",
        ),
        ({"format": FORMAT, "version": VERSION, "node": {"origin": "x", "username": "y"}}, None),
    ],
)
def test_archive_problem(archive: Any, problem: str | None) -> None:
    assert archive_problem(archive) == problem


# -- the commands -------------------------------------------------------------------


async def test_export_and_import_commands(
    nodes: NodeFactory, pg_admin_dsn: str, tmp_path: Path
) -> None:
    a = await nodes("a")
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        await accepted_follower(peer, alice, a)
    finally:
        await peer.stop()
    save_identity(a.settings)
    archive_path = tmp_path / "coop.json"
    # When the admin exports the coop
    code, out, err = await run_coopfed(
        "export",
        "--data-dir",
        str(a.settings.data_dir),
        "--database-url",
        a.dsn,
        "--output",
        str(archive_path),
        env=BARE_ENV,
    )
    # Then the file is readable by its owner only, and says what it holds
    assert code == 0, err
    assert out.startswith(f"exported @coop@{a.settings.domain} to {archive_path}: 1 follows")
    assert "private keys" in err
    assert stat.S_IMODE(archive_path.stat().st_mode) == 0o600
    archive = orjson.loads(archive_path.read_bytes())
    assert (archive["format"], archive["version"]) == (FORMAT, VERSION)
    assert archive["node"] == {
        "origin": a.base_url,
        "domain": a.settings.domain,
        "username": "coop",
    }
    coop_row = next(r for r in archive["local_actors"] if r["kind"] == "coop")
    assert coop_row["private_key_pem"] == (await a.ctx.coop_actor()).private_key_pem
    assert [f["remote_actor"] for f in archive["follows"]] == [alice.id]
    assert [r["uri"] for r in archive["remote_actors"]] == [alice.id]

    # When it is imported into an empty database with another data directory
    dsn = await _fresh_database(pg_admin_dsn, "node_restored")
    target = tmp_path / "new"
    code, out, err = await run_coopfed(
        "import", str(archive_path), "--data-dir", str(target), "--database-url", dsn, env=BARE_ENV
    )
    # Then the node there is the same coop, at the same origin
    assert code == 0, err
    assert out.splitlines() == [
        f"imported @coop@{a.settings.domain}: 1 follows, 0 objects, 0 proposals, 0 exchanges",
        f"serve it at {a.base_url}: coopfed run --data-dir {target} "
        f"--origin {a.base_url} --username coop",
    ]
    assert load_identity(target)["origin"] == a.base_url
    # And a second import into it is refused
    code, out, err = await run_coopfed(
        "import", str(archive_path), "--data-dir", str(target), "--database-url", dsn, env=BARE_ENV
    )
    assert code == 1
    assert err.splitlines()[-1] == (
        "coopfed: cannot import: this database is not empty (it has follows, "
        "outbox_activities): restore into a new node's database"
    )
