"""A peer that refuses our deliveries is diagnosable: the status and the first 200
bytes of its answer are kept per host, and ``coopfed status`` shows them."""

from __future__ import annotations

import pytest

from federation.store import DeliveryRefusal
from outbox.publish import post_note
from tests.support.cli import coopfed
from tests.support.fakepeer import FakePeer
from tests.support.followers import add_followers, from_document
from tests.support.nodes import NodeFactory, eventually

# A peer's error page: longer than the 200 bytes kept, with a multi-byte character
# that the cut falls inside of.
REASON = b'{"error":"TypeError: Cannot read properties of undefined (reading \'startsWith\')'
ANSWER = REASON + b" at Intent.fromJsonLd " + "é".encode() * 200 + b'"}'


@pytest.mark.parametrize(("status", "retried"), [(500, True), (400, False)])
async def test_refused_delivery_records_status_and_answer_head(
    nodes: NodeFactory, status: int, retried: bool
) -> None:
    node = await nodes("a")
    peer = await FakePeer(hostname="localhost").start()
    try:
        # Given a follower whose server refuses our POSTs with an explanation
        actor = peer.add_actor("alice")
        coop = await node.ctx.coop_actor()
        await add_followers(node.ctx.store, coop.id, [from_document(actor.document())])
        peer.inbox_status = status
        peer.inbox_answer = ANSWER

        # When the coop posts
        create = await post_note(node.ctx, coop, "Offer: jam")

        # Then the refusal is kept: the status and the first 200 bytes of the answer
        async def refused() -> list[DeliveryRefusal]:
            return await node.ctx.store.delivery_failures()

        (refusal,) = await eventually(refused, message="the refusal is recorded")
        assert (refusal.host, refusal.status, refusal.activity_id) == (
            "localhost",
            status,
            create["id"],
        )
        assert refusal.inbox == f"{peer.base}/inbox"
        assert refusal.answer == ANSWER[:200].decode("utf-8", errors="replace")
        assert refusal.answer.startswith(REASON.decode())
        assert len(refusal.answer.encode()) <= 202  # 200 bytes, a cut character replaced

        # And `coopfed status` shows it for that host
        result = await coopfed(node, "status", "--json")
        assert result.code == 0, result.err
        (failing,) = result.json()["failing_hosts"]
        assert failing["host"] == "localhost"
        assert failing["failure_days"] == (1 if retried else 0)
        shown = failing["last_refusal"]
        assert (shown["status"], shown["answer"], shown["activity"]) == (
            status,
            refusal.answer,
            create["id"],
        )
        text = await coopfed(node, "status")
        assert f"'status': {status}" in text.out and "startsWith" in text.out

        # When the peer accepts again and the coop posts once more
        peer.inbox_status = 202
        peer.inbox_answer = b""
        later = await post_note(node.ctx, coop, "Offer: honey")

        # Then the success clears the host's refusal
        async def cleared() -> bool:
            delivered = any(r.body.get("id") == later["id"] for r in peer.received)
            return delivered and await node.ctx.store.delivery_failures() == []

        await eventually(cleared, message="a delivery clears the refusal")
    finally:
        await peer.stop()
