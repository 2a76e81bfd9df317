"""The one boundary for incoming shapes (federation/shapes.py): unit tests of
``normalise``, and a node fed single-valued ``to``/``cc``/``tag``/``attachment``
by a JSON-LD-compacting sender, read back through the client API like lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from federation.shapes import normalise
from federation.store import apply_migrations, create_pool, list_migrations
from outbox.proposals import is_proposal, parse_proposal
from tests.support.fakepeer import PUBLIC, FakePeer
from tests.support.mastoflow import api, member_token
from tests.support.nodes import RunningNode, dsn_for_database, eventually

FEDIFY_CREATE = Path(__file__).parents[1] / "fixtures" / "fedify_create_proposal.json"
VF = "https://w3id.org/valueflows/ont/vf#"
ALICE = "https://a.example/users/alice"


# -- normalise -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["to", "cc", "bto", "bcc", "audience"])
def test_addressing_is_a_list_of_iris(name: str) -> None:
    assert normalise({name: PUBLIC})[name] == [PUBLIC]
    assert normalise({name: {"id": ALICE, "type": "Person"}})[name] == [ALICE]
    assert normalise({name: [PUBLIC, {"id": ALICE}]})[name] == [PUBLIC, ALICE]
    assert normalise({name: None})[name] == []


@pytest.mark.parametrize("name", ["tag", "attachment"])
def test_tag_and_attachment_are_lists_of_objects(name: str) -> None:
    one = {"type": "Mention", "href": ALICE}
    assert normalise({name: one})[name] == [one]
    assert normalise({name: [one, one]})[name] == [one, one]


@pytest.mark.parametrize("name", ["items", "orderedItems"])
def test_collection_items_are_lists(name: str) -> None:
    create = {"type": "Create", "id": "https://b.example/a/1"}
    assert normalise({"type": "OrderedCollection", name: create})[name] == [create]
    assert normalise({name: [create, "https://b.example/a/2"]})[name] == [
        create,
        "https://b.example/a/2",
    ]


@pytest.mark.parametrize(
    "value",
    [
        "https://b.example/notes/1",
        {"id": "https://b.example/notes/1", "type": "Note"},
        {"type": "Link", "href": "https://b.example/notes/1"},
        ["https://b.example/notes/1"],
    ],
)
def test_a_reference_is_an_iri_whatever_its_shape(value: Any) -> None:
    assert normalise({"inReplyTo": value})["inReplyTo"] == "https://b.example/notes/1"
    intent = normalise({"publishes": {"resourceConformsTo": value}})["publishes"]
    assert intent["resourceConformsTo"] == "https://b.example/notes/1"


def test_full_and_prefixed_iris_and_keywords_become_compact_terms() -> None:
    document = {
        "@context": ["https://www.w3.org/ns/activitystreams", {"valueflows": VF}],
        "@id": "https://b.example/p/1",
        "@type": ["Note", f"{VF}Proposal"],
        f"{VF}purpose": "offer",
        "valueflows:unitBased": False,
        "vf:publishes": {
            "om2:hasUnit": "hour",
            "http://www.ontology-of-units-of-measure.org/resource/om-2/hasNumericalValue": {
                "@value": "2.5",
                "type": "xsd:decimal",
            },
        },
        "https://www.w3.org/ns/activitystreams#name": "Repairs",
    }
    assert normalise(document) == {
        "@context": document["@context"],
        "id": "https://b.example/p/1",
        "type": ["Note", "Proposal"],
        "purpose": "offer",
        "unitBased": False,
        "publishes": {"hasUnit": "hour", "hasNumericalValue": "2.5"},
        "name": "Repairs",
    }


def test_a_compact_key_wins_over_the_same_term_as_an_iri() -> None:
    assert normalise({"purpose": "request", f"{VF}purpose": "offer"})["purpose"] == "request"


def test_unknown_terms_and_values_are_kept_as_they_are() -> None:
    document = {"https://example.org/ns#rating": 5, "content": "<p>hi</p>", "sensitive": False}
    assert normalise(document) == document
    assert normalise("https://b.example/notes/1") == "https://b.example/notes/1"
    assert normalise(None) is None


def test_deep_documents_are_bounded() -> None:
    deep: dict[str, Any] = {"tag": "x"}
    for _ in range(200):
        deep = {"object": deep}
    normalise(deep)  # no RecursionError


def test_a_proposal_as_fedify_compacts_it_reads_like_ours() -> None:
    # Given a Create(Proposal) exactly as Fedify 2.3.6 sent it: the proposal's terms
    # are not in the Create's context, so they come as full IRIs, the amounts as
    # typed literals and the resource kinds as {"id": ...}
    create = orjson.loads(FEDIFY_CREATE.read_bytes())
    assert not is_proposal(create["object"])
    # When it crosses the boundary
    activity = normalise(create)
    obj = activity["object"]
    # Then it is a proposal we read: 10 hours of bike repair for 30 EUR
    assert is_proposal(obj)
    assert (activity["to"], activity["cc"]) == ([PUBLIC], [create["cc"]])
    spec = parse_proposal(obj)
    assert (spec.kind, spec.title, spec.action) == ("offer", "Bike repairs", "deliverService")
    assert (spec.resource, spec.unit, spec.quantity) == (
        "https://w3id.org/coopfed/resource/bike-repair",
        "hour",
        Decimal(10),
    )
    assert (spec.price, spec.currency) == (Decimal(30), "EUR")


# -- across a node -----------------------------------------------------------------


@pytest.fixture
async def peer() -> AsyncIterator[FakePeer]:
    peer = await FakePeer(hostname="localhost").start()
    try:
        yield peer
    finally:
        await peer.stop()


async def test_single_valued_fields_from_a_compacting_sender_work_like_lists(
    node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession
) -> None:
    # Given a member of our coop
    token = await member_token(http, node, "alice")
    alice = node.ctx.urls.actor("alice")
    bob = peer.add_actor("bob")
    # When a remote server that compacts single values sends a public note that
    # mentions her (one tag object), carries one picture (one attachment object) and
    # has to, cc as plain strings; and a second note with one hashtag, its to an object
    mention = peer.note(bob, "<p>Hi @alice, see the photo</p>")
    mention |= {
        "to": PUBLIC,
        "cc": alice,
        "tag": {"type": "Mention", "href": alice, "name": "@alice"},
        "attachment": {
            "type": "Document",
            "mediaType": "image/png",
            "url": f"{peer.base}/media/1.png",
            "name": "The flooded workshop",
        },
    }
    tagged = peer.note(bob, "<p>Help us rebuild #flood</p>")
    tagged |= {
        "to": {"id": PUBLIC},
        "cc": node.actor_url,  # addressed to our coop, so that we keep it
        "tag": {"type": "Hashtag", "name": "#flood", "href": f"{peer.base}/tags/flood"},
    }
    for note in (mention, tagged):
        create = peer.create(bob, note) | {"to": note["to"], "cc": note["cc"]}
        status, answer = await peer.send(bob, f"{node.base_url}/inbox", create)
        assert status == 202, answer

    async def processed() -> bool:
        outcomes = [
            await node.ctx.store.inbox_outcomes(f"{n['id']}/activity") for n in (mention, tagged)
        ]
        return all(outcomes)

    await eventually(processed, message="both notes are processed")
    # Then alice is notified of the mention
    code, body, _ = await api(http, node, "GET", "/api/v1/notifications", token)
    assert code == 200, body
    (notification,) = [n for n in body if n["type"] == "mention"]
    status_json = notification["status"]
    assert status_json["uri"] == mention["id"]
    assert status_json["visibility"] == "public"
    assert [m["acct"] for m in status_json["mentions"]] == ["alice"], status_json["mentions"]
    # And the picture is an attachment
    (media,) = status_json["media_attachments"]
    assert (media["type"], media["url"], media["description"]) == (
        "image",
        f"{peer.base}/media/1.png",
        "The flooded workshop",
    )
    # And the hashtag timeline finds the second note
    code, timeline, _ = await api(http, node, "GET", "/api/v1/timelines/tag/flood", token)
    assert code == 200, timeline
    assert [s["uri"] for s in timeline] == [tagged["id"]]
    assert [t["name"] for t in timeline[0]["tags"]] == ["flood"]
    # (stored as lists: the queries that look inside stored bodies rely on it)
    stored = await node.ctx.store.get_object(mention["id"])
    assert stored is not None
    assert (stored.body["to"], stored.body["cc"]) == ([PUBLIC], [alice])
    assert [t["href"] for t in stored.body["tag"]] == [alice]
    assert len(stored.body["attachment"]) == 1


async def test_migration_8_wraps_single_values_stored_before_the_boundary(
    pg_admin_dsn: str,
) -> None:
    # Given a database at schema 7 holding bodies stored before the boundary
    conn = await asyncpg.connect(pg_admin_dsn)
    try:
        await conn.execute("DROP DATABASE IF EXISTS shapes_migration")
        await conn.execute("CREATE DATABASE shapes_migration")
    finally:
        await conn.close()
    pool = await create_pool(dsn_for_database(pg_admin_dsn, "shapes_migration"), max_size=1)
    try:
        async with pool.acquire() as db:
            await db.execute(
                """CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            for migration in list_migrations()[:7]:
                await db.execute(migration.sql)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
        single = {
            "id": "https://b.example/n/1",
            "type": "Note",
            "to": PUBLIC,
            "cc": ["https://b.example/users/bob/followers"],
            "tag": {"type": "Mention", "href": ALICE},
            "attachment": {"type": "Document", "url": "https://b.example/1.png"},
            "inReplyTo": None,
        }
        plain = {"id": "https://b.example/n/2", "type": "Note", "to": [PUBLIC], "tag": None}
        for body in (single, plain):
            await pool.execute(
                """INSERT INTO objects (uri, local, type, attributed_to, visibility, body)
                   VALUES ($1, false, 'Note', 'https://b.example/users/bob', 'public', $2)""",
                body["id"],
                body,
            )
        # When migration 8 (and the later ones) are applied
        applied = [m.version for m in await apply_migrations(pool)]
        assert applied == [m.version for m in list_migrations()[7:]] and applied[0] == 8
        # Then the single values are arrays, and nothing else changed
        rows = dict(await pool.fetch("SELECT uri, body FROM objects"))
        assert rows[single["id"]] == single | {
            "to": [PUBLIC],
            "tag": [single["tag"]],
            "attachment": [single["attachment"]],
        }
        assert rows[plain["id"]] == plain
        # And the refusals table is there
        assert await pool.fetchval("SELECT count(*) FROM delivery_refusals") == 0
    finally:
        await pool.close()
