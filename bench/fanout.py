"""Fan-out: one post delivered to N followers on H receiving hosts, against the
RSA-2048 signing ceiling of the same cores, measured in the same run.

    python3 dev.py bench fanout [--followers 100,1000,10000] [--hosts 10]

- The node (``coopfed run``, subprocess, embedded PostgreSQL) gets N followers
  (seeded in its database), spread round-robin over ``--hosts`` receiving hosts.
  Each follower has its own inbox and no shared inbox, so one post is N signed
  deliveries (with shared inboxes it would be H).
- The receiver (one uvloop process, one port per host) verifies the Digest and the
  RSA-2048 signature of every delivery with the node's published key.
- A post is published through C2S (``POST /users/coop/outbox``); the clock runs from
  that request to the last verified delivery.
- The ceiling: RSA-2048 signatures per second with one process per core, nothing
  else (``--ceiling-seconds``), measured before the node's load starts.
- The bare sender, after the node has stopped: the largest count of deliveries to
  the same receiver, from one process per core that only signs (the node's own
  ``sign_request``) and POSTs with aiohttp: no queue, no database, nothing durable.
  No sender built on this stack can beat it on these cores, so it shows how far the
  ceiling is reachable here at all while the receivers verify on the same cores.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    LOCALHOST,
    base_parser,
    cpu_per_item,
    emit,
    free_port,
    header,
    install_uvloop,
    load_average,
    rate,
    ratio,
    say,
    wait_for_quiet,
)
from node import MemorySampler, NodeProcess, Profiler
from servers import ServerProcess, bare_send, removing, sign_ceiling, write_keys

from federation.keys import dump_private_key_pem, dump_public_key_pem, generate_private_key

C2S_ENV = {"COOPFED_C2S_RATE": "1000", "COOPFED_C2S_BURST": "1000"}
BARE_ACTOR = f"http://{LOCALHOST}/bare"
BARE_KEY_ID = BARE_ACTOR + "#main-key"


def parser() -> Any:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument(
        "--followers",
        default="100,1000,10000",
        help="comma-separated follower counts, one post each (default 100,1000,10000)",
    )
    p.add_argument("--hosts", type=int, default=10, help="receiving hosts (default 10)")
    p.add_argument("--time-limit", type=float, default=180.0, help="seconds per post at most")
    p.add_argument("--ceiling-seconds", type=float, default=4.0, help="signing ceiling duration")
    p.add_argument("--workers", type=int, default=0, help="extra `coopfed worker` processes")
    p.add_argument(
        "--node-arg", action="append", default=[], help="extra `coopfed run` argument (repeat)"
    )
    return p


async def seed_followers(node: NodeProcess, ports: list[int], start: int, stop: int) -> None:
    """Followers ``start``..``stop - 1``: remote actors with personal inboxes only."""
    async with node.db() as conn:
        coop_id = await conn.fetchval("SELECT id FROM local_actors WHERE kind = 'coop'")
        actors = []
        follows = []
        for i in range(start, stop):
            port = ports[i % len(ports)]
            uri = f"http://{LOCALHOST}:{port}/users/f{i}"
            document = orjson.dumps(
                {"id": uri, "type": "Person", "inbox": uri + "/inbox", "preferredUsername": f"f{i}"}
            ).decode()
            actors.append(
                (uri, f"{LOCALHOST}:{port}", f"f{i}", uri + "/inbox", uri + "#main-key", document)
            )
            follows.append((coop_id, uri, uri + "/follows/1"))
        await conn.executemany(
            """INSERT INTO remote_actors (uri, host, type, username, inbox, key_id, document)
               VALUES ($1, $2, 'Person', $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING""",
            actors,
        )
        await conn.executemany(
            """INSERT INTO follows (local_actor_id, remote_actor, direction, state, activity_id,
                   accepted_at)
               VALUES ($1, $2, 'inbound', 'accepted', $3, now()) ON CONFLICT DO NOTHING""",
            follows,
        )


async def receiver_stats(session: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    async with session.get(f"http://{LOCALHOST}:{port}/stats") as resp:
        data: dict[str, Any] = await resp.json()
        return data


async def publish(session: aiohttp.ClientSession, node: NodeProcess, token: str, text: str) -> str:
    async with session.post(
        node.base_url + "/users/coop/outbox",
        json={"type": "Note", "content": text},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 201:
            raise RuntimeError(f"publish answered {resp.status}: {body}")
        return str(body["id"])


async def one_post(
    session: aiohttp.ClientSession,
    node: NodeProcess,
    token: str,
    stats_port: int,
    followers: int,
    time_limit: float,
) -> dict[str, Any]:
    async with session.post(f"http://{LOCALHOST}:{stats_port}/reset") as resp:
        assert resp.status == 200
    load = load_average()
    cpu_before = node.cpu()
    with MemorySampler(node) as sampler:
        t0 = time.time()
        await publish(session, node, token, f"Fan-out to {followers} followers {uuid.uuid4()}")
        published = time.time()
        deadline = time.monotonic() + time_limit
        stats = await receiver_stats(session, stats_port)
        while stats["verified"] + stats["failed"] < followers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            stats = await receiver_stats(session, stats_port)
    cpu = cpu_per_item(cpu_before, node.cpu(), max(1, stats["verified"]))
    last = stats["last"] or time.time()
    seconds = last - t0
    return {
        "followers": followers,
        "verified": stats["verified"],
        "failed": stats["failed"],
        "failure_reasons": stats["reasons"],
        "hosts_reached": stats["hosts"],
        "publish_seconds": round(published - t0, 3),
        "first_delivery_seconds": round((stats["first"] or last) - t0, 3),
        "seconds_to_deliver_all": round(seconds, 3),
        "deliveries_per_second": rate(stats["verified"], seconds),
        "cpu_us_per_delivery": cpu,
        "memory_peak": sampler.peak.as_dict(),
        "load_1min": load,
        "complete": stats["verified"] >= followers,
    }


async def bare_phase(
    session: aiohttp.ClientSession, pem: str, ports: list[int], deliveries: int
) -> dict[str, Any]:
    """The same deliveries from a sender that only signs and POSTs (no queue, no database)."""
    async with session.post(f"http://{LOCALHOST}:{ports[0]}/reset") as resp:
        assert resp.status == 200
    urls = [
        f"http://{LOCALHOST}:{ports[i % len(ports)]}/users/f{i}/inbox" for i in range(deliveries)
    ]
    body = orjson.dumps(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"http://{LOCALHOST}/bare/{uuid.uuid4()}/activity",
            "type": "Create",
            "actor": BARE_ACTOR,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": {
                "id": f"http://{LOCALHOST}/bare/{uuid.uuid4()}",
                "type": "Note",
                "attributedTo": BARE_ACTOR,
                "content": "<p>Fan-out to 10000 followers, from a bare sender</p>",
            },
        }
    )
    load = load_average()
    figures = await asyncio.to_thread(bare_send, pem, BARE_KEY_ID, urls, body)
    stats = await receiver_stats(session, ports[0])
    return {**figures, "verified": stats["verified"], "failed": stats["failed"], "load_1min": load}


async def run(opts: Any) -> dict[str, Any]:
    result = header("fan-out")
    if opts.wait_idle:
        wait_for_quiet(opts.max_load, opts.wait_idle)
    counts = sorted(int(n) for n in opts.followers.split(","))
    say(f"signing ceiling: {opts.ceiling_seconds} s on every core")
    ceilings = [{"load_1min": load_average(), **sign_ceiling(opts.ceiling_seconds)}]
    say(f"ceiling: {ceilings[0]['signatures_per_second']} signatures/s")
    node = NodeProcess("fanout", database_url=opts.database_url, env=C2S_ENV, args=opts.node_arg)
    receiver: ServerProcess | None = None
    try:
        startup = await node.start()
        node.start_workers(opts.workers)
        say(f"node up in {startup:.2f} s at {node.base_url}")
        key_id, pem = await node.public_key_pem()
        ports = [free_port() for _ in range(opts.hosts)]
        bare_key = generate_private_key()
        keys_path = write_keys({key_id: pem, BARE_KEY_ID: dump_public_key_pem(bare_key)})
        with removing(keys_path):
            receiver = ServerProcess(
                "receiver", ["--ports", ",".join(map(str, ports)), "--keys", str(keys_path)]
            )
            await receiver.start()
        token = await node.create_token()
        posts = []
        seeded = 0
        async with aiohttp.ClientSession() as session:
            await one_post(session, node, token, ports[0], 0, 5)  # warm-up: no followers
            for count in counts:
                await seed_followers(node, ports, seeded, count)
                seeded = count
                profile = opts.profile if count == counts[-1] else None
                with Profiler(node, profile):
                    figures = await one_post(session, node, token, ports[0], count, opts.time_limit)
                say(
                    f"{count} followers: {figures['seconds_to_deliver_all']} s, "
                    f"{figures['deliveries_per_second']}/s"
                )
                posts.append(figures)
            node.stop()  # the bare sender gets the cores to itself (and the receiver)
            result["bare_sender"] = await bare_phase(
                session, dump_private_key_pem(bare_key), ports, counts[-1]
            )
            say(f"bare sender: {result['bare_sender']['deliveries_per_second']}/s")
        result["node"] = {
            "startup_seconds": round(startup, 2),
            "extra_worker_processes": opts.workers,
            "node_args": opts.node_arg,
            "hosts": opts.hosts,
            "memory_idle": node.memory().as_dict(),
            "posts": posts,
        }
    finally:
        if receiver is not None:
            receiver.stop()
        node.cleanup()
    ceilings.append({"load_1min": load_average(), **sign_ceiling(opts.ceiling_seconds)})
    say(f"ceiling again: {ceilings[1]['signatures_per_second']} signatures/s")
    result["ceiling"] = {
        "signatures_per_second": round(
            sum(c["signatures_per_second"] for c in ceilings) / len(ceilings), 1
        ),
        "processes": ceilings[0]["processes"],
        "runs": ceilings,
        "what": "RSA-2048 PKCS#1 v1.5 SHA-256 signatures, one process per core, nothing else",
    }
    best = posts[-1]
    ceiling = result["ceiling"]["signatures_per_second"]
    result["ratio_deliveries_to_signing_ceiling"] = ratio(best["deliveries_per_second"], ceiling)
    bare = result.get("bare_sender")
    if bare:
        result["ratio_bare_sender_to_signing_ceiling"] = ratio(
            bare["deliveries_per_second"], ceiling
        )
        result["ratio_deliveries_to_bare_sender"] = ratio(
            best["deliveries_per_second"], bare["deliveries_per_second"]
        )
    result["target"] = ">= 0.5 of the signing ceiling (largest fan-out)"
    result["load_after"] = load_average()
    return result


def lines_of(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    ceiling = result["ceiling"]
    lines = [
        f"machine: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}, {m['postgres']}",
        f"ceiling: {ceiling['signatures_per_second']} RSA-2048 signatures/s on "
        f"{ceiling['processes']} processes (mean of "
        f"{' and '.join(str(r['signatures_per_second']) for r in ceiling['runs'])}; "
        f"load {', '.join(str(r['load_1min']) for r in ceiling['runs'])})",
        f"node: coopfed run {' '.join(result['node']['node_args']) or '(one process)'} + "
        f"{result['node']['extra_worker_processes']} `coopfed worker`",
        f"{'followers':>10} {'all delivered':>14} {'deliveries/s':>13} {'ratio':>6} "
        f"{'CPU µs/delivery (node, PG)':>27} {'node RSS MB':>12} {'PG PSS MB':>10} {'load':>5}",
    ]
    for post in result["node"]["posts"]:
        cpu = post["cpu_us_per_delivery"]
        peak = post["memory_peak"]
        lines.append(
            f"{post['followers']:>10} {post['seconds_to_deliver_all']:>12} s "
            f"{post['deliveries_per_second']:>13} "
            f"{ratio(post['deliveries_per_second'], ceiling['signatures_per_second']):>6} "
            f"{cpu.get('node', 0):>18}, {cpu.get('postgres', 0):>7} "
            f"{peak['node_rss_mb']:>12} {peak['postgres_pss_mb']:>10} {post['load_1min']:>5}"
            + ("" if post["complete"] else "  INCOMPLETE")
        )
    lines.append(
        f"ratio deliveries / signing ceiling (largest): "
        f"{result['ratio_deliveries_to_signing_ceiling']:.2f}  (target >= 0.50)"
    )
    bare = result.get("bare_sender")
    if bare:
        lines.append(
            f"bare sender (sign + POST only, {bare['processes']} processes, no queue or "
            f"database): {bare['deliveries_per_second']}/s, "
            f"{result['ratio_bare_sender_to_signing_ceiling']:.2f} of the ceiling "
            f"({bare['verified']} verified, {bare['failed']} failed; load {bare['load_1min']}); "
            f"coopfed = {result['ratio_deliveries_to_bare_sender']:.2f} of it"
        )
    largest = result["node"]["posts"][-1]["memory_peak"]
    lines.append(
        f"node RSS under the largest fan-out (PostgreSQL excluded): {largest['node_rss_mb']} MB "
        f"in {largest['processes']} process(es), largest {largest['largest_process_mb']} MB "
        "(target < 150 MB)"
    )
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    opts = parser().parse_args(argv)
    install_uvloop()
    result = asyncio.run(run(opts))
    emit("fanout", result, lines_of(result), opts.json)
    return result


if __name__ == "__main__":
    main()
