"""The bad-input corpus (``tests/corpus/*.json``) against one real node, case by case.

Each file holds ``{"description": ..., "cases": [...]}``; a case is::

    {"name": "unique_name",
     "target": "inbox" | "shared_inbox" | "webfinger" | "actor" | "c2s" | "collection",
     "method": "POST" | "GET" ...            (default: POST for inbox/c2s, else GET)
     "path": "/users/{...}"                  (overrides the target's default path)
     "query": {"resource": "..."} | "raw=query&string"
     "headers": {"Name": "value" | null | {"$repeat": "a", "times": 9000}}
                                             (applied after signing; null drops one)
     one of  "body": <JSON value>            (serialised with orjson)
             "raw": "<exact text>"
             "gen": [{"text": "..."}, {"repeat": "[", "times": 5000}, ...]
     "sign": true | false | "other_actor" | "wrong_key" | "unknown_key" | "key_5xx"
             | "key_html" | "expired" | "future"           (inbox targets only)
     "signer": "alice" | "bob"               (who signs when sign is true; default alice)
     "signature_keyid": "..." | "signature_replace": [old, new]   (edit the signature)
     "send_twice": true | "resigned"          (a replay: the same bytes again, or re-signed)
     "expect": {"status": 202 | [400, 413] ..., "reason": "...", "json": true,
                "stored": false,              (an inbox_activities row is kept)
                "outcome_prefix": "refused",  (what the worker recorded, for 202s)
                "effects": {"objects": 1},    (rows other tables may gain)
                "field": "content"}}          (the field a 422 names)

Inside JSON bodies, ``{"$repeat": s, "times": n}`` is the string ``s * n`` and
``{"$list": v, "times": n}`` a list of ``n`` copies of ``v``.  Every string may
name fixtures: ``{node}`` (base URL), ``{coop}``, ``{coop_inbox}``, ``{peer}``,
``{alice}``, ``{bob}``, ``{id}``/``{id2}`` (fresh activity ids on alice's host),
``{oid}`` (a fresh object id there), ``{bob_note}`` (a stored note of bob's),
``{alice_note}`` (a stored note of alice's), ``{local_note}`` (one of the coop's
posts), ``{domain}`` (the node's host:port), ``{peer_netloc}``, ``{our_follow}`` (our pending Follow
of bob), ``{now}``, ``{past}``, ``{future}``.

After every case: the status (no 5xx unless a case expects the documented 503 of
a key host that fails temporarily), a JSON ``{"error", "reason"}`` body for any
4xx, the worker's outcome once drained, no row added to inbox_activities,
objects, follows, proposals, interactions or exchanges beyond what the case
allows, and every worker task still alive.  Failures are reported by case name.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
from conftest import NodeFactory, RunningNode
from fakepeer import AS, PUBLIC, FakePeer, PeerActor

from actors.remote import parse_actor
from federation.keys import generate_private_key
from outbox.c2s import issue_token
from outbox.publish import post_note

CORPUS = Path(__file__).parent / "corpus"
TABLES = ("inbox_activities", "objects", "follows", "proposals", "interactions", "exchanges")
TARGET_PATHS = {
    "inbox": "/users/coop/inbox",
    "shared_inbox": "/inbox",
    "webfinger": "/.well-known/webfinger",
    "actor": "/users/coop",
    "collection": "/users/coop/followers",
    "c2s": "/users/coop/outbox",
}
INBOX_TARGETS = frozenset({"inbox", "shared_inbox"})
PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")
SIGN_MODES = frozenset(
    {True, False, "other_actor", "wrong_key", "unknown_key", "key_5xx", "key_html"}
    | {"expired", "future"}
)


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(CORPUS.glob("*.json")):
        document = json.loads(path.read_text("utf-8"))
        cases += [(path.stem, case) for case in document["cases"]]
    return cases


CASES = load_cases()
FILES = sorted({stem for stem, _ in CASES})


def test_the_corpus_is_well_formed() -> None:
    # Given every case file / Then there are at least 200 cases, uniquely named, valid
    names = [case["name"] for _, case in CASES]
    assert len(names) >= 200, len(names)
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for _, case in CASES:
        assert case["target"] in TARGET_PATHS, case["name"]
        assert sum(k in case for k in ("body", "raw", "gen")) <= 1, case["name"]
        assert case.get("sign", True) in SIGN_MODES or case["target"] not in INBOX_TARGETS
        expect = case["expect"]
        assert isinstance(expect["status"], int | list), case["name"]
        if expect.get("outcome_prefix"):
            assert expect.get("stored") is True, case["name"]


# -- the world every case runs in ---------------------------------------------------------


@dataclass
class World:
    node: RunningNode
    http: aiohttp.ClientSession
    peer: FakePeer
    alice: PeerActor  # followed by the coop: her posts concern us
    bob: PeerActor
    ghost: PeerActor  # unknown to its server: its key is 404
    failing: PeerActor  # on a server answering 500 to every GET
    garbage: PeerActor  # on a server answering HTML to every GET
    token: str
    fixtures: dict[str, str]

    def values(self) -> dict[str, str]:
        now = datetime.now(UTC)
        return {
            **self.fixtures,
            "id": self.peer.new_id(self.alice),
            "id2": self.peer.new_id(self.alice),
            "oid": f"{self.peer.base}/objects/{uuid.uuid4().hex}",
            "now": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "past": (now - timedelta(days=400)).isoformat(timespec="seconds"),
            "future": (now + timedelta(days=30)).isoformat(timespec="seconds"),
        }


def fill(value: Any, values: dict[str, str]) -> Any:
    """``value`` with placeholders replaced and generators expanded."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), value)
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, dict):
        if "$repeat" in value:
            return str(fill(value["$repeat"], values)) * int(value["times"])
        if "$list" in value:
            return [fill(value["$list"], values) for _ in range(int(value["times"]))]
        return {k: fill(v, values) for k, v in value.items()}
    return value


def body_bytes(case: dict[str, Any], values: dict[str, str]) -> bytes | None:
    if "raw" in case:
        return str(fill(case["raw"], values)).encode("utf-8", "surrogatepass")
    if "gen" in case:
        parts = []
        for segment in case["gen"]:
            if "text" in segment:
                parts.append(str(fill(segment["text"], values)))
            else:
                parts.append(str(segment["repeat"]) * int(segment["times"]))
        return "".join(parts).encode()
    if "body" in case:
        return orjson.dumps(fill(case["body"], values))
    return None


def actor_of(body: bytes | None, world: World) -> PeerActor:
    """Who the activity says sent it (alice unless the body names bob)."""
    try:
        document = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        return world.alice
    if isinstance(document, dict) and document.get("actor") == world.bob.id:
        return world.bob
    return world.alice


def inbox_headers(
    case: dict[str, Any], world: World, url: str, body: bytes, values: dict[str, str]
) -> dict[str, str]:
    sign = case.get("sign", True)
    named = {"alice": world.alice, "bob": world.bob}
    actor = named[case["signer"]] if "signer" in case else actor_of(body, world)
    peer = world.peer
    if sign is False:
        return {"Content-Type": "application/activity+json"}
    if sign == "other_actor":
        actor = world.bob if actor is world.alice else world.alice
    elif sign == "unknown_key":
        actor = world.ghost
    elif sign == "key_5xx":
        actor = world.failing
    elif sign == "key_html":
        actor = world.garbage
    elif sign == "wrong_key":
        actor = PeerActor(actor.username, actor.base, actor.style, generate_private_key())
    moment = None
    if sign == "expired":
        moment = datetime.now(UTC) - timedelta(hours=2)
    elif sign == "future":
        moment = datetime.now(UTC) + timedelta(hours=2)
    headers = peer.signed_headers(actor, url, body, now=moment)
    if "signature_keyid" in case:
        keyid = str(fill(case["signature_keyid"], values))
        headers["Signature"] = re.sub(
            r'keyId="[^"]*"', lambda _: f'keyId="{keyid}"', headers["Signature"]
        )
    if "signature_replace" in case:
        old, new = case["signature_replace"]
        assert old in headers["Signature"], case["name"]
        headers["Signature"] = headers["Signature"].replace(old, new)
    return headers


def apply_header_overrides(
    headers: dict[str, str], overrides: dict[str, Any], values: dict[str, str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    skip: list[str] = []
    for name, value in overrides.items():
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        if value is None:
            skip.append(name)
        else:
            headers[name] = str(fill(value, values))
    return headers, tuple(skip)


async def counts(node: RunningNode) -> dict[str, int]:
    pool = node.ctx.store.pool
    return {t: int(await pool.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}


def workers_alive() -> list[str]:
    return sorted(
        t.get_name()
        for t in asyncio.all_tasks()
        if re.fullmatch(r"worker-\d+", t.get_name()) and not t.done()
    )


@dataclass
class Answer:
    status: int
    content_type: str
    raw: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        try:
            return orjson.loads(self.raw)
        except orjson.JSONDecodeError:
            return None


async def send(world: World, case: dict[str, Any], values: dict[str, str]) -> Answer:
    target = case["target"]
    method = case.get("method", "POST" if target in ("inbox", "shared_inbox", "c2s") else "GET")
    path = str(fill(case.get("path", TARGET_PATHS[target]), values))
    url = world.node.base_url + path
    query = fill(case.get("query"), values)
    if isinstance(query, str):
        url += "?" + query
    body = body_bytes(case, values)
    if target in INBOX_TARGETS:
        headers = inbox_headers(case, world, url, body or b"", values)
    elif target == "c2s":
        headers = {
            "Content-Type": "application/activity+json",
            "Authorization": f"Bearer {world.token}",
        }
    else:
        headers = {"Accept": "application/activity+json"}
    headers, skip = apply_header_overrides(headers, case.get("headers", {}), values)
    params = query if isinstance(query, dict) else None
    times = 2 if case.get("send_twice") else 1
    answer: Answer | None = None
    for attempt in range(times):
        if attempt and case.get("send_twice") == "resigned":
            headers = inbox_headers(case, world, url, body or b"", values)
        async with world.http.request(
            method,
            url,
            data=body,
            headers=headers,
            params=params,
            skip_auto_headers=skip,
            allow_redirects=False,
        ) as resp:
            answer = Answer(resp.status, resp.content_type, await resp.read(), dict(resp.headers))
    assert answer is not None
    return answer


async def latest_outcome(node: RunningNode) -> str | None:
    value = await node.ctx.store.pool.fetchval(
        "SELECT coalesce(outcome, '<unprocessed>') FROM inbox_activities ORDER BY id DESC LIMIT 1"
    )
    return str(value) if value is not None else None


async def run_case(world: World, case: dict[str, Any]) -> list[str]:
    """Run one case; every way it went wrong (empty when it passed)."""
    expect = case["expect"]
    values = world.values()
    before = await counts(world.node)
    try:
        async with asyncio.timeout(30):
            answer = await send(world, case, values)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [f"no answer: {exc!r}"]
    problems: list[str] = []
    wanted = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
    document = answer.json()
    if answer.status not in wanted:
        problems.append(f"status {answer.status} (want {wanted}): {answer.raw[:300]!r}")
    if answer.status >= 400 and expect.get("json", True):
        error = document.get("error") if isinstance(document, dict) else None
        if answer.content_type != "application/json" or not isinstance(error, str) or not error:
            problems.append(f"not a JSON error: {answer.content_type} {answer.raw[:200]!r}")
        elif "reason" in expect and document.get("reason") != expect["reason"]:
            problems.append(f"reason {document.get('reason')!r} (want {expect['reason']!r})")
        if "field" in expect and document.get("field") != expect["field"]:
            problems.append(f"field {document.get('field')!r} (want {expect['field']!r})")
    elif "reason" in expect and answer.status < 400:
        got = document.get("status") if isinstance(document, dict) else None
        if got != expect["reason"]:
            problems.append(f"answer status {got!r} (want {expect['reason']!r})")
    if answer.status == 429 and "Retry-After" not in answer.headers:
        problems.append("429 without Retry-After")
    await world.node.drain(timeout=20)
    after = await counts(world.node)
    allowed = dict(expect.get("effects", {}))
    allowed["inbox_activities"] = 1 if expect.get("stored") else 0
    for table in TABLES:
        grew = after[table] - before[table]
        if grew != allowed.get(table, 0):
            problems.append(f"{table} changed by {grew} (want {allowed.get(table, 0)})")
    if expect.get("outcome_prefix") and after["inbox_activities"] > before["inbox_activities"]:
        outcome = await latest_outcome(world.node)
        if not (outcome or "").startswith(expect["outcome_prefix"]):
            problems.append(f"outcome {outcome!r} (want {expect['outcome_prefix']}…)")
    if workers_alive() != ["worker-0"]:
        problems.append(f"worker tasks alive: {workers_alive()}")
    return problems


@pytest.fixture
async def world(nodes: NodeFactory, http: aiohttp.ClientSession) -> AsyncIterator[World]:
    # The c2s limit is the subject of test_limits.py; here it must not interfere.
    node = await nodes("corpus", c2s_burst=10_000.0, inbox_burst=10_000.0)
    peer = await FakePeer(style="mastodon").start()
    failing = await FakePeer(style="mastodon").start()
    garbage = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        failing.get_status = 500
        garbage.get_raw = ("text/html", b"<html><body>Welcome!</body></html>")
        alice, bob = peer.add_actor("alice"), peer.add_actor("bob")
        ghost = PeerActor("ghost", peer.base, peer.style)
        store, coop = node.ctx.store, await node.ctx.coop_actor()
        # The coop follows alice (accepted) and asked to follow bob (pending).
        our_follow = f"{node.base_url}/activities/corpus-follow-of-bob"
        await store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=alice.id,
            direction="outbound",
            state="accepted",
            activity_id=f"{node.base_url}/activities/corpus-follow-of-alice",
        )
        await store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=bob.id,
            direction="outbound",
            state="pending",
            activity_id=our_follow,
        )
        bob_note = f"{peer.base}/objects/bob-note"
        await store.save_object(
            uri=bob_note,
            local=False,
            type="Note",
            attributed_to=bob.id,
            in_reply_to=None,
            visibility="public",
            body={"id": bob_note, "type": "Note", "attributedTo": bob.id, "content": "bob's"},
            published=datetime.now(UTC),
            updated=None,
        )
        alice_note = f"{peer.base}/objects/alice-note"
        await store.save_object(
            uri=alice_note,
            local=False,
            type="Note",
            attributed_to=alice.id,
            in_reply_to=None,
            visibility="public",
            body={"id": alice_note, "type": "Note", "attributedTo": alice.id, "content": "hi"},
            published=datetime.now(UTC),
            updated=None,
        )
        local_note = (await post_note(node.ctx, coop, "Our post"))["object"]["id"]
        _, token = await issue_token(node.ctx, coop, "corpus")
        fixtures = {
            "node": node.base_url,
            "coop": node.actor_url,
            "coop_inbox": f"{node.actor_url}/inbox",
            "peer": peer.base,
            "alice": alice.id,
            "bob": bob.id,
            "bob_note": bob_note,
            "alice_note": alice_note,
            "domain": node.settings.domain,
            "peer_netloc": urlsplit(peer.base).netloc,
            "local_note": local_note,
            "our_follow": our_follow,
            "public": PUBLIC,
            "as": AS,
        }
        await node.drain()
        yield World(
            node=node,
            http=http,
            peer=peer,
            alice=alice,
            bob=bob,
            ghost=ghost,
            failing=failing.add_actor("carol"),
            garbage=garbage.add_actor("mallory"),
            token=token,
            fixtures=fixtures,
        )
    finally:
        for server in (peer, failing, garbage):
            await server.stop()


@pytest.mark.parametrize("stem", FILES)
async def test_corpus_file(world: World, stem: str) -> None:
    # Given every case of one corpus file, against one node with its fixtures
    cases = [case for s, case in CASES if s == stem]
    failures: list[str] = []
    for case in cases:
        # When the case is sent / Then it gets exactly what the case expects
        problems = await run_case(world, case)
        failures += [f"{case['name']}: {p}" for p in problems]
    assert failures == [], f"{len(failures)} problem(s) in {stem}.json:\n" + "\n".join(failures)


# -- HTML and script injection: stored as sent, never rendered unescaped ----------------

XSS = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="alert(2)">'
XSS_LINK = '<a href="javascript:alert(3)">x</a>'


@dataclass
class NamedActor(PeerActor):
    """A peer actor whose served document carries a hostile display name."""

    display_name: str = ""

    def document(self) -> dict[str, Any]:
        return {**super().document(), "name": self.display_name, "summary": XSS}


class PageAudit(HTMLParser):
    """Every element and attribute a browser would act on, from served HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dangers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "svg", "img"):
            self.dangers.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.dangers.append(f"{tag} {name}=")
            scheme = (value or "").strip().lower().split(":", 1)[0]
            if name in ("href", "src", "action") and scheme in ("javascript", "data", "vbscript"):
                self.dangers.append(f"{tag} {name}={value}")


async def served_html(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url, headers={"Accept": "text/html"}) as resp:
        assert resp.status == 200, (url, resp.status)
        assert resp.content_type == "text/html", url
        return await resp.text()


def dangers_in(page: str) -> list[str]:
    audit = PageAudit()
    audit.feed(page)
    audit.close()
    return audit.dangers


def hostile_proposal(peer: FakePeer, actor: PeerActor) -> dict[str, Any]:
    object_id = f"{peer.base}/proposals/{uuid.uuid4().hex}"
    return {
        "id": object_id,
        "type": ["Note", "Proposal"],
        "purpose": "offer",
        "proposalKind": "offer",
        "attributedTo": actor.id,
        "name": f"{XSS}Flour",
        "summary": XSS_IMG,
        "content": f"<p>{XSS}{XSS_IMG}{XSS_LINK}</p>",
        "url": "javascript:alert(4)",
        "published": datetime.now(UTC).isoformat(timespec="seconds"),
        "to": [PUBLIC],
        "cc": [actor.followers],
        "tag": [{"type": "Hashtag", "name": "#flour", "href": "javascript:alert(5)"}],
        "publishes": {
            "type": "Intent",
            "action": "transfer",
            "resourceConformsTo": "javascript:alert(6)",
            "resourceQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "5"},
        },
    }


async def test_injected_html_is_stored_but_never_rendered(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given alice, whom the coop follows, with a script in her display name
        alice = NamedActor("alice", peer.base, peer.style, display_name=f"{XSS}Alice")
        peer.actors["alice"] = alice
        store, coop = node.ctx.store, await node.ctx.coop_actor()
        await store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=alice.id,
            direction="outbound",
            state="accepted",
            activity_id=f"{node.base_url}/activities/follow-alice",
        )
        # When she sends a Note and a proposal with scripts, handlers and javascript: URLs
        note = peer.note(alice, f"{XSS}{XSS_IMG}{XSS_LINK}")
        note.update(name=XSS, summary=XSS_IMG, url="javascript:alert(7)")
        proposal = hostile_proposal(peer, alice)
        for obj in (note, proposal):
            status, _ = await peer.send(alice, f"{node.base_url}/inbox", peer.create(alice, obj))
            assert status == 202
        # And the coop itself publishes the same over C2S
        _, token = await issue_token(node.ctx, coop, "xss")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        posted: list[dict[str, Any]] = []
        for body in (
            {"type": "Note", "content": f"{XSS}{XSS_IMG}"},
            {
                "type": "Proposal",
                "kind": "offer",
                "title": f"{XSS}Oil",
                "details": f"{XSS_IMG} {XSS_LINK}",
                "quantity": 3,
                "unit": "litre",
                "tags": ["oil"],
            },
        ):
            async with http.post(
                f"{node.base_url}/users/coop/outbox", data=orjson.dumps(body), headers=headers
            ) as resp:
                assert resp.status == 201, await resp.text()
                posted.append(await resp.json(content_type=None))
        await node.drain()
        # Then the remote objects are stored as sent (nothing is lost)
        stored_note = await store.get_object(note["id"])
        stored_proposal = await store.get_proposal(proposal["id"])
        assert stored_note is not None and stored_note.body["content"] == note["content"]
        assert stored_proposal is not None and stored_proposal.title == f"{XSS}Flour"
        # And no public page renders a script, an event handler or a javascript: link
        own_proposal = posted[1]["object"]["id"]
        pages = {
            "network": f"{node.base_url}/network",
            "profile": f"{node.base_url}/@coop",
            "archive": f"{node.base_url}/@coop/archive",
            "tag": f"{node.base_url}/tags/oil",
            "own proposal": own_proposal,
        }
        found = {name: dangers_in(await served_html(http, url)) for name, url in pages.items()}
        assert found == {name: [] for name in pages}
        # And the hostile texts are shown, escaped, where they belong
        network = await served_html(http, pages["network"])
        assert "&lt;script&gt;alert(1)&lt;/script&gt;Flour" in network
        assert "&lt;script&gt;alert(1)&lt;/script&gt;Alice" in network
        profile = await served_html(http, pages["profile"])
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in profile
        assert "&lt;script&gt;alert(1)&lt;/script&gt;Oil" in profile
    finally:
        await peer.stop()


# -- server-side request forgery: strict mode never reaches loopback ---------------------


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"], ids=["literal_ip", "dns"])
async def test_strict_node_never_fetches_a_loopback_key(nodes: NodeFactory, hostname: str) -> None:
    # Given a node NOT configured for local development, and a peer on loopback
    node = await nodes("strict", allow_private_addresses=False)
    peer = await FakePeer(style="mastodon", hostname=hostname).start()
    try:
        alice = peer.add_actor("alice")
        # When alice's signed Create arrives (its key lives on a loopback address)
        status, answer = await peer.send(
            alice, f"{node.base_url}/inbox", peer.create(alice, peer.note(alice, "hi"))
        )
        # Then the key is refused without any request to the peer, and nothing is stored
        assert (status, answer["reason"]) == (401, "key_fetch_failed")
        assert "blocked_address" not in answer["error"]  # the detail stays in the log
        assert peer.gets == []
        assert await node.ctx.store.pool.fetchval("SELECT count(*) FROM inbox_activities") == 0
    finally:
        await peer.stop()


async def test_strict_node_never_delivers_to_loopback(nodes: NodeFactory) -> None:
    # Given a strict node whose coop has a follower whose inbox is on loopback (by name)
    node = await nodes("strict", allow_private_addresses=False)
    peer = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        coop = await node.ctx.coop_actor()
        follower = peer.add_actor("bob")
        await node.ctx.store.upsert_remote_actor(
            parse_actor(follower.document(), follower.id, datetime.now(UTC))
        )
        await node.ctx.store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=follower.id,
            direction="inbound",
            state="accepted",
            activity_id=f"{peer.base}/follows/1",
        )
        # When the coop posts
        await post_note(node.ctx, coop, "hello")
        await node.drain()
        # Then the delivery ends as blocked, once, and the peer received nothing
        failed = await node.ctx.store.pool.fetch("SELECT kind, last_error FROM failed_jobs")
        assert [(r["kind"], "blocked_address" in r["last_error"]) for r in failed] == [
            ("deliver", True)
        ]
        assert peer.received == []
    finally:
        await peer.stop()
