"""The inbox benchmark's Fedify phase: the Fedify peer of the interop tests
(tests/interop/fedify/peer.mjs, Fedify 2.x on Node.js 22, installed by
tests/interop/fedify_peer.py) gets the same kind of pre-signed load as the node.

Same client, same connections, same 1.5 KB ``Create``s signed draft-cavage by actors
served from the same actor host.  Fedify verifies the Digest and the signature
(fetching each actor's key once: the warm-up requests make it fetch and cache them,
as the node's cached-keys phase has them in its database), runs its inbox listener
and answers 202.  It keeps what it received in memory and stores nothing durably:
it is a peer doing less than the node, not more.
"""

from __future__ import annotations

import time
from typing import Any

from common import BusyMeter, cpu_seconds, load_average, say
from peers import ActorPool, RemoteActor, note_create, post_all, sign_posts

from tests.interop.fedify_peer import FedifyPeerError, start_fedify_peer


async def measure_fedify(
    pool: ActorPool, actors: list[RemoteActor], run_id: str, opts: Any
) -> dict[str, Any]:
    """Fedify's accepted/s under ``opts.fedify_requests`` requests (an error as a dict)."""
    try:
        peer = await start_fedify_peer()
    except FedifyPeerError as exc:
        say(f"Fedify peer unavailable: {exc}")
        return {"error": str(exc)[:500]}
    try:
        audience, inbox_url = peer.actor_url, peer.shared_inbox_url
        warm = [(a, note_create(a, f"{run_id}-fw-{i}", audience)) for i, a in enumerate(actors)]
        load = [
            (
                actors[i % len(actors)],
                note_create(actors[i % len(actors)], f"{run_id}-f-{i}", audience),
            )
            for i in range(opts.fedify_requests)
        ]
        t = time.perf_counter()
        warm_raw = sign_posts(pool, warm, inbox_url)
        load_raw = sign_posts(pool, load, inbox_url)
        say(
            f"Fedify: signed {len(warm_raw) + len(load_raw)} requests in "
            f"{time.perf_counter() - t:.1f} s; warming its key cache"
        )
        warmed = await post_all(peer.port, warm_raw, concurrency=opts.concurrency, time_limit=120)
        load_1min = load_average()
        pid = peer.process.pid
        cpu_before = cpu_seconds(pid)
        with BusyMeter() as busy:
            measured = await post_all(
                peer.port, load_raw, concurrency=opts.concurrency, time_limit=opts.time_limit
            )
        cpu = cpu_seconds(pid) - cpu_before
        say(f"Fedify: {measured.per_second(202)}/s 202 ({measured.statuses})")
        return {
            **measured.as_dict(),
            "accepted_per_second": measured.per_second(202),
            "warm_up_statuses": {str(k): v for k, v in warmed.statuses.items()},
            "actors": len(actors),
            "load_1min": load_1min,
            "cores_busy": busy.cores_busy,
            "server_cpu_us_per_request": round(cpu / max(1, measured.sent) * 1e6, 1),
            "what": "Fedify 2.x peer (tests/interop/fedify/peer.mjs), keys cached, "
            "nothing stored durably",
        }
    finally:
        await peer.stop()
