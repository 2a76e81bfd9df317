"""The marketplace with Fedify 2.3.6, whose FEP-0837 classes (``Proposal``,
``Intent``, ``Measure``, ``Agreement``) read proposals by IRI after JSON-LD
expansion: the strictest reader we can run.

Fedify reads our offers, needs and solidarity requests (Create and Update) and our
``Offer(Agreement)``; a proposal Fedify builds reaches our market and is answered
with ``coopfed respond``; a note whose single ``Mention`` Fedify compacts to one
object notifies our member.  The peer is tests/interop/fedify/peer.mjs (see
tests/interop/fedify_peer.py for how Node.js 22 and Fedify get installed).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coopfed.state_file import save_identity
from federation.display import coop_label
from federation.store.timelines import Paging
from federation.vocab import CURRENCIES, RESOURCE_BASE
from outbox import market
from outbox.members import create_member
from outbox.publish import follow
from tests.interop.fedify_peer import (
    INSTALL_TIMEOUT,
    FedifyPeer,
    ensure_fedify_installed,
    start_fedify_peer,
)
from tests.support.nodes import RunningNode, eventually

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 90)

WAIT = 20.0
EUR = CURRENCIES["EUR"]
COOPFED = str(Path(sys.executable).with_name("coopfed"))


@pytest.fixture(scope="session")
def fedify_install() -> None:
    ensure_fedify_installed()


@pytest.fixture
async def fedify(fedify_install: None) -> AsyncIterator[FedifyPeer]:
    peer = await start_fedify_peer(ready_timeout=WAIT)
    try:
        yield peer
    finally:
        await peer.stop()


async def _fedify_follows_us(node: RunningNode, fedify: FedifyPeer) -> None:
    await fedify.follow(node.actor_url)
    await fedify.wait_following(node.actor_url, "accepted", within=WAIT)


async def _we_follow_fedify(node: RunningNode, fedify: FedifyPeer) -> None:
    coop = await node.ctx.coop_actor()
    await follow(node.ctx, coop, fedify.actor_url)

    async def accepted() -> bool:
        follows = await node.ctx.store.list_follows(coop.id, "outbound")
        return [(f.remote_actor, f.state) for f in follows] == [(fedify.actor_url, "accepted")]

    await eventually(accepted, timeout=WAIT, message="Fedify accepts our Follow")


def _measure(measure: dict[str, Any] | None) -> dict[str, Any] | None:
    """What Fedify's Measure should read from one of our measures."""
    if measure is None:
        return None
    return {"unit": measure["hasUnit"], "amount": measure.get("hasNumericalValue")}


def _intent(intent: dict[str, Any] | None) -> dict[str, Any] | None:
    """What Fedify's Intent should read from one of our intents."""
    if intent is None:
        return None
    return {
        "id": intent["id"],
        "action": intent["action"],
        "resourceConformsTo": intent.get("resourceConformsTo"),
        "resourceQuantity": _measure(intent.get("resourceQuantity")),
        "availableQuantity": _measure(intent.get("availableQuantity")),
        "minimumQuantity": _measure(intent.get("minimumQuantity")),
    }


async def _outcome(node: RunningNode, activity_id: str) -> Any:
    return await node.ctx.store.pool.fetchrow(
        "SELECT outcome, body FROM inbox_activities WHERE activity_id = $1", activity_id
    )


async def _received(fedify: FedifyPeer, activity: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = await fedify.wait_for_activity(
        activity["type"], where=lambda i: i["id"] == activity["id"], within=WAIT
    )
    return item


async def test_fedify_reads_our_offer_need_and_solidarity_request(
    node: RunningNode, fedify: FedifyPeer
) -> None:
    # Given Fedify follows our coop
    await _fedify_follows_us(node, fedify)
    coop = await node.ctx.coop_actor()
    deadline = (datetime.now(UTC) + timedelta(days=30)).isoformat()

    # When we publish an offer and a need (each with a reciprocal price) and a
    # solidarity request (a pledge drive: FEP-0837 with no reciprocal), then update each
    sent: list[dict[str, Any]] = []
    for raw, change in (
        (
            {
                "kind": "offer",
                "title": "Bookkeeping for coops",
                "action": "deliverService",
                "resource": "bookkeeping",
                "unit": "hour",
                "quantity": "40",
                "price": "35",
            },
            {"price": "38"},
        ),
        (
            {
                "kind": "need",
                "title": "Organic flour",
                "resource": "flour",
                "unit": "kilogram",
                "quantity": "200",
                "price": "2.5",
            },
            {"quantity": "250"},
        ),
        (
            {
                "kind": "solidarity",
                "title": "Flood repair fund",
                "unit": "one",
                "quantity": "5000",
                "currency": "EUR",
                "deadline": deadline,
            },
            {"quantity": "6000"},
        ),
        (
            # counted goods with a label: hasUnit stays "one", unitLabel rides beside
            {
                "kind": "offer",
                "title": "Rye bread",
                "quantity": "20",
                "unit_label": "loaf",
                "price": "60",
            },
            {"price": "66"},
        ),
    ):
        create = await market.publish_proposal(node.ctx, coop, raw)
        update = await market.update_proposal(node.ctx, coop, create["object"]["id"], change)
        sent += [create, update]

    # Then Fedify's inbox answers each POST (our Accept of its Follow, then the
    # proposals) with 2xx
    async def answered() -> list[Any]:
        answers = await fedify.inbox_answers()
        return answers if len(answers) >= len(sent) + 1 else []

    answers = await eventually(answered, timeout=WAIT, message="Fedify's inbox answers")
    assert [(a["status"], a["body"]) for a in answers if not 200 <= a["status"] < 300] == []
    # And every Create and Update passes Fedify's verification and its own FEP-0837
    # classes read back every value we sent
    for activity in sent:
        item = await _received(fedify, activity)
        obj = activity["object"]
        assert item["market"] == {
            "class": "Proposal",
            "id": obj["id"],
            "purpose": obj["purpose"],
            "unitBased": obj.get("unitBased"),
            "name": obj["name"],
            "publishes": _intent(obj["publishes"]),
            "reciprocal": _intent(obj.get("reciprocal")),
        }, item["market"]
    # (spelled out: the offer's price per hour after its update, the need's reciprocal,
    # the fund's target in euros)
    readings = [(await _received(fedify, a))["market"] for a in sent]
    offer, need, fund, bread = readings[1], readings[3], readings[5], readings[7]
    assert offer["purpose"] == "offer" and offer["unitBased"] is True
    assert offer["publishes"]["action"] == "deliverService"
    assert offer["publishes"]["resourceConformsTo"] == RESOURCE_BASE + "bookkeeping"
    assert offer["publishes"]["resourceQuantity"] == {"unit": "hour", "amount": "1"}
    assert offer["publishes"]["availableQuantity"] == {"unit": "hour", "amount": "40"}
    assert offer["reciprocal"]["action"] == "transfer"
    assert offer["reciprocal"]["resourceConformsTo"] == EUR
    assert offer["reciprocal"]["resourceQuantity"] == {"unit": "one", "amount": "38"}
    assert need["purpose"] == "request"
    assert need["publishes"]["availableQuantity"] == {"unit": "kilogram", "amount": "250"}
    assert need["reciprocal"]["resourceQuantity"] == {"unit": "one", "amount": "2.5"}
    assert fund["purpose"] == "request"
    assert fund["publishes"]["resourceConformsTo"] == EUR
    assert fund["publishes"]["resourceQuantity"] == {"unit": "one", "amount": "6000"}
    assert bread["publishes"]["resourceQuantity"] == {"unit": "one", "amount": "20"}
    assert bread["reciprocal"]["resourceQuantity"] == {"unit": "one", "amount": "66"}
    # And we recorded no refused delivery
    assert await node.ctx.store.delivery_failures() == []


async def test_fedify_proposal_reaches_our_market_and_we_respond(
    node: RunningNode, fedify: FedifyPeer
) -> None:
    # Given our coop follows Fedify's actor
    save_identity(node.settings)
    await _we_follow_fedify(node, fedify)

    # When Fedify publishes an offer built with its own Proposal/Intent/Measure classes
    sent = await fedify.propose(
        {
            "purpose": "offer",
            "name": "Bike repairs",
            "content": "<p>Bike repairs for coops</p>",
            "publishes": {
                "action": "deliverService",
                "resourceConformsTo": RESOURCE_BASE + "bike-repair",
                "unit": "hour",
                "amount": "10",
            },
            "reciprocal": {
                "action": "transfer",
                "resourceConformsTo": EUR,
                "unit": "one",
                "amount": "30",
            },
        }
    )
    # (compacted by Fedify: its own @context, a single object per value)
    assert sent["json"]["type"] == "Proposal"
    assert isinstance(sent["json"]["@context"], list)

    # Then it reaches our market as an offer of 10 hours at 30 EUR
    async def in_market() -> Any:
        return await node.ctx.store.get_proposal(sent["proposal_id"])

    try:
        proposal = await eventually(in_market, timeout=WAIT, message="Fedify's offer arrives")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {await _outcome(node, sent['create_id'])}") from exc
    assert (proposal.kind, proposal.attributed_to, proposal.title) == (
        "offer",
        fedify.actor_url,
        "Bike repairs",
    )
    assert (proposal.action, proposal.resource, proposal.unit) == (
        "deliverService",
        RESOURCE_BASE + "bike-repair",
        "hour",
    )
    assert (proposal.quantity, proposal.price, proposal.currency) == (10, 30, "EUR")

    # When our admin answers it with `coopfed respond`
    proc = await asyncio.create_subprocess_exec(
        COOPFED,
        "respond",
        sent["proposal_id"],
        "--quantity",
        "4",
        "--price",
        "120",
        "--data-dir",
        str(node.settings.data_dir),
        "--database-url",
        node.dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out, err)
    fedify_actor = await node.ctx.store.get_remote_actor(fedify.actor_url)
    assert fedify_actor is not None and fedify_actor.username
    to = coop_label(fedify_actor.uri, fedify_actor.name, fedify_actor.handle)
    assert out.decode().startswith(f"exchange 1: offer sent to {to} (")

    # Then Fedify verifies our Offer and reads its Agreement with its own classes
    offer = await fedify.wait_for_activity("Offer", actor=node.actor_url, within=WAIT)
    assert offer["market"] == {
        "class": "Agreement",
        "id": None,
        "stipulates": {
            "id": None,
            "satisfies": f"{sent['proposal_id']}#primary",
            "resourceQuantity": {"unit": "hour", "amount": "4"},
        },
        "stipulatesReciprocal": {
            "id": None,
            "satisfies": f"{sent['proposal_id']}#reciprocal",
            "resourceQuantity": {"unit": "one", "amount": "120"},
        },
    }
    answers = await fedify.inbox_answers()
    assert [a for a in answers if not 200 <= a["status"] < 300] == []


async def test_fedify_mention_with_a_single_tag_notifies_our_member(
    node: RunningNode, fedify: FedifyPeer
) -> None:
    # Given our coop follows Fedify, and the coop has a member
    member = await create_member(node.ctx, "alice", "correct horse battery staple")
    member_url = node.ctx.urls.actor(member.username)
    await _we_follow_fedify(node, fedify)

    # When Fedify posts a note that mentions her (its only tag)
    sent = await fedify.post("<p>Hello @alice</p>", mention=member_url)
    # (which Fedify compacts to one object, not a list)
    tag = sent["json"]["object"]["tag"]
    assert isinstance(tag, dict) and tag["href"] == member_url

    # Then our member gets a mention notification for it
    async def notified() -> list[Any]:
        return await node.ctx.store.notifications(
            member.id,
            member_url,
            [member_url],
            types=["mention"],
            account=None,
            paging=Paging(),
        )

    (row,) = await eventually(notified, timeout=WAIT, message="the mention notifies alice")
    assert (row.account, row.status) == (fedify.actor_url, sent["note_id"])


async def test_fedify_offers_and_every_answer_of_ours_reaches_it(
    node: RunningNode, fedify: FedifyPeer
) -> None:
    # Given Fedify follows our coop, which offers bookkeeping at 35 EUR per hour
    await _fedify_follows_us(node, fedify)
    coop = await node.ctx.coop_actor()
    create = await market.publish_proposal(
        node.ctx,
        coop,
        {"kind": "offer", "title": "Bookkeeping", "unit": "hour", "quantity": "40", "price": "35"},
    )
    proposal = create["object"]["id"]

    # When Fedify answers three times with Offer(Agreement), built by its own classes
    offers = [
        await fedify.offer(
            node.actor_url,
            {
                "proposal": proposal,
                "unit": "hour",
                "amount": hours,
                "reciprocal": {"unit": "one", "amount": str(int(hours) * 35)},
            },
        )
        for hours in ("8", "2", "3")
    ]

    # Then our node records each as an exchange it can act on
    async def offered() -> dict[str, Any]:
        found = {x.offer_id: x for x in await node.ctx.store.list_exchanges(state="offered")}
        return found if len(found) == len(offers) else {}

    exchanges = await eventually(offered, timeout=WAIT, message="our node records the offers")
    first, second, third = (exchanges[o["offer_id"]] for o in offers)
    assert (first.quantity, first.unit, first.reciprocal_quantity) == (8, "hour", 280)

    # When we accept the first and confirm it happened, reject the second, accept and
    # cancel the third, then close and delete the proposal
    await market.accept(node.ctx, coop, first.id)
    await market.complete(node.ctx, coop, first.id)
    await market.reject(node.ctx, coop, second.id, "Booked in July")
    await market.accept(node.ctx, coop, third.id)
    await market.cancel(node.ctx, coop, third.id, "Ill")
    await market.close_proposal(node.ctx, coop, proposal)
    await market.delete_proposal(node.ctx, coop, proposal)

    # Then Fedify verified every one: Accept (with the Agreement as its result, read by
    # its own Agreement class), the receipt, Reject, the Agreement's Update, and the
    # proposal's Update and Delete
    accept = await fedify.wait_for_activity(
        "Accept", where=lambda i: i["object_id"] == offers[0]["offer_id"], within=WAIT
    )
    assert accept["market"]["class"] == "Agreement"
    assert accept["market"]["stipulates"]["satisfies"] == f"{proposal}#primary"
    assert accept["market"]["stipulates"]["resourceQuantity"] == {"unit": "hour", "amount": "8"}
    assert accept["market"]["stipulatesReciprocal"]["resourceQuantity"] == {
        "unit": "one",
        "amount": "280",
    }
    await fedify.wait_for_activity(
        "Reject", where=lambda i: i["object_id"] == offers[1]["offer_id"], within=WAIT
    )
    receipt = await fedify.wait_for_activity(
        "Create", where=lambda i: i["object_type"] == "Document", within=WAIT
    )
    assert receipt["object"]["name"] == "Receipt"
    await fedify.wait_for_activity(
        "Update", where=lambda i: i["object_type"] == "Agreement", within=WAIT
    )
    await fedify.wait_for_activity(
        "Delete", where=lambda i: i["object_id"] == proposal, within=WAIT
    )
    # And its inbox answered every POST with 2xx
    answers = await fedify.inbox_answers()
    assert [(a["status"], a["body"]) for a in answers if not 200 <= a["status"] < 300] == []
    assert await node.ctx.store.delivery_failures() == []


async def test_following_fedify_brings_the_proposal_it_published_before(
    node: RunningNode, fedify: FedifyPeer
) -> None:
    # Given Fedify published an offer while nobody followed it (so nothing was delivered)
    sent = await fedify.propose(
        {
            "purpose": "request",
            "name": "Cargo bike loan",
            "publishes": {
                "action": "transfer",
                "resourceConformsTo": RESOURCE_BASE + "cargo-bike",
                "unit": "day",
                "amount": "3",
            },
        }
    )
    assert sent["followers"] == 0
    # When our coop follows Fedify
    await _we_follow_fedify(node, fedify)

    # Then our node reads Fedify's outbox (compacted by Fedify: one item, its terms as
    # full IRIs) and the proposal reaches our market
    async def in_market() -> Any:
        return await node.ctx.store.get_proposal(sent["proposal_id"])

    proposal = await eventually(in_market, timeout=WAIT, message="the outbox is read")
    assert (proposal.kind, proposal.title, proposal.unit, proposal.quantity) == (
        "need",
        "Cargo bike loan",
        "day",
        3,
    )
