"""End-to-end latency: from a publish through C2S on node A to the post being stored
on a following node B, idle and under inbox load on B.

    python3 dev.py bench latency [--posts 100] [--interval 0.1] [--load-rate 200]

Two ``coopfed run`` subprocesses (each with its own embedded PostgreSQL); B follows
A with a real Follow/Accept exchange.  A publishes ``--posts`` notes through
``POST /users/coop/outbox``, one every ``--interval`` seconds (open loop); each
latency runs from the moment the request is sent to ``objects.received_at`` of the
note in B's database (one clock: the same machine).  Then the same again while B's
shared inbox receives ``--load-rate`` signed Creates a second from other actors
(keys cached; the per-host rate limit raised to let them in).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    base_parser,
    coopfed_command,
    emit,
    header,
    install_uvloop,
    load_average,
    percentile,
    say,
    wait_for_quiet,
)
from node import MemorySampler, NodeProcess
from peers import ActorHost, ActorPool, LoadResult, note_create, post_all, sign_posts

NODE_ENV = {
    "COOPFED_C2S_RATE": "1000",
    "COOPFED_C2S_BURST": "1000",
    "COOPFED_INBOX_RATE": "1000000",
    "COOPFED_INBOX_BURST": "1000000",
}


def parser() -> Any:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=100, help="posts per run (default 100)")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between posts")
    p.add_argument(
        "--load-rate", type=float, default=200.0, help="inbox requests/s on B under load"
    )
    p.add_argument("--actors", type=int, default=500, help="actors sending the inbox load")
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds to wait per run")
    p.add_argument(
        "--node-arg", action="append", default=[], help="extra `coopfed run` argument (repeat)"
    )
    return p


async def follow(b: NodeProcess, a: NodeProcess, time_limit: float) -> None:
    """B follows A (``coopfed follow`` on B), then wait for A's Accept to reach B."""
    proc = await asyncio.create_subprocess_exec(
        *coopfed_command(),
        "follow",
        a.actor_url,
        "--data-dir",
        str(b.data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=b.env(),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0:
        raise RuntimeError(f"coopfed follow failed: {out.decode()}")
    deadline = time.monotonic() + time_limit
    async with b.db() as conn:
        while time.monotonic() < deadline:
            state = await conn.fetchval(
                "SELECT state FROM follows WHERE direction = 'outbound' AND remote_actor = $1",
                a.actor_url,
            )
            if state == "accepted":
                return
            await asyncio.sleep(0.05)
    raise RuntimeError("B's follow of A was not accepted in time")


async def publish_series(
    a: NodeProcess, b: NodeProcess, token: str, posts: int, interval: float, time_limit: float
) -> dict[str, Any]:
    """Publish on A at a steady pace; latencies from B's ``objects.received_at``."""
    sent: dict[str, float] = {}
    errors = 0
    tag = uuid.uuid4().hex[:6]

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal errors
        t0 = time.time()
        async with session.post(
            a.base_url + "/users/coop/outbox",
            json={"type": "Note", "content": f"latency probe {tag} {n}"},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            body = await resp.json(content_type=None)
        if resp.status != 201:
            errors += 1
            return
        obj = body["object"]
        sent[obj["id"] if isinstance(obj, dict) else str(obj)] = t0

    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        tasks = []
        for n in range(posts):
            delay = start + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, n)))
        await asyncio.gather(*tasks)
    deadline = time.monotonic() + time_limit
    rows: list[Any] = []
    async with b.db() as conn:
        while time.monotonic() < deadline:
            rows = await conn.fetch(
                """SELECT o.uri, extract(epoch FROM o.received_at) AS at,
                          extract(epoch FROM i.received_at) AS arrived
                   FROM objects o
                   LEFT JOIN inbox_activities i ON i.body -> 'object' ->> 'id' = o.uri
                   WHERE o.uri = ANY($1::text[])""",
                list(sent),
            )
            if len(rows) >= len(sent):
                break
            await asyncio.sleep(0.1)
    latencies = [float(r["at"]) - sent[r["uri"]] for r in rows]
    # Where the time goes: publish -> the delivery reaches B's inbox -> stored on B.
    arrivals = [float(r["arrived"]) - sent[r["uri"]] for r in rows if r["arrived"]]
    processing = [float(r["at"]) - float(r["arrived"]) for r in rows if r["arrived"]]
    out: dict[str, Any] = {
        "posts": posts,
        "interval_seconds": interval,
        "publish_errors": errors,
        "stored_on_b": len(rows),
    }
    if latencies:
        out["latency_ms"] = {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p95": round(percentile(latencies, 95) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
        }
    if arrivals:
        out["publish_to_b_inbox_ms_p50"] = round(percentile(arrivals, 50) * 1000, 1)
        out["b_inbox_to_stored_ms_p50"] = round(percentile(processing, 50) * 1000, 1)
    return out


async def run(opts: Any) -> dict[str, Any]:
    result = header("end-to-end latency")
    if opts.wait_idle:
        wait_for_quiet(opts.max_load, opts.wait_idle)
    a = NodeProcess("a", database_url=opts.database_url, env=NODE_ENV, args=opts.node_arg)
    b = NodeProcess("b", database_url=opts.database_url, env=NODE_ENV, args=opts.node_arg)
    host = ActorHost()
    await host.start()
    try:
        await asyncio.gather(a.start(), b.start())
        say(f"A at {a.base_url}, B at {b.base_url}")
        await follow(b, a, opts.time_limit)
        token = await a.create_token()
        # Warm-up: a few posts, not measured.
        await publish_series(a, b, token, 5, 0.05, opts.time_limit)

        load = load_average()
        idle = await publish_series(a, b, token, opts.posts, opts.interval, opts.time_limit)
        idle["load_1min"] = load
        say(f"idle: {idle.get('latency_ms')}")

        # The inbox load on B: signed Creates from other actors, at a steady rate.
        duration = opts.posts * opts.interval + 5
        count = int(opts.load_rate * duration)
        pool = ActorPool(host.base_url, opts.actors, keys=8, prefix="l")
        host.pool = pool
        async with b.db() as conn:
            await pool.seed(conn)
        run_id = uuid.uuid4().hex[:8]
        senders = [pool.actors[i % len(pool.actors)] for i in range(count)]
        items = [(s, note_create(s, f"{run_id}-{i}", b.actor_url)) for i, s in enumerate(senders)]
        say(f"signing {count} inbox requests for the load")
        raw = sign_posts(pool, items, b.base_url + "/inbox")
        load = load_average()
        with MemorySampler(b) as sampler:
            background = asyncio.create_task(
                post_all(
                    b.port,
                    raw,
                    concurrency=32,
                    time_limit=duration + 10,
                    per_second=opts.load_rate,
                )
            )
            await asyncio.sleep(2)  # the load is steady before the first probe
            loaded = await publish_series(a, b, token, opts.posts, opts.interval, opts.time_limit)
            inbox: LoadResult = await background
        loaded["load_1min"] = load
        loaded["inbox_load"] = {
            "target_per_second": opts.load_rate,
            **inbox.as_dict(),
            "accepted_per_second": inbox.per_second(202),
        }
        loaded["memory_peak_b"] = sampler.peak.as_dict()
        say(f"under load: {loaded.get('latency_ms')}")
        result["idle"] = idle
        result["under_inbox_load"] = loaded
    finally:
        a.cleanup()
        b.cleanup()
        await host.stop()
    result["load_after"] = load_average()
    return result


def lines_of(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    lines = [
        f"machine: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}, {m['postgres']}",
        f"{'run':<34} {'posts':>5} {'stored':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'load':>5}",
    ]
    for name, key in (("idle", "idle"), ("under inbox load on B", "under_inbox_load")):
        run = result[key]
        lat = run.get("latency_ms", {})
        label = name
        if key == "under_inbox_load":
            label += f" ({run['inbox_load']['accepted_per_second']}/s)"
        lines.append(
            f"{label:<34} {run['posts']:>5} {run['stored_on_b']:>6} {lat.get('p50', '-'):>7} "
            f"{lat.get('p95', '-'):>7} {lat.get('p99', '-'):>7} {run['load_1min']:>5}"
        )
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    opts = parser().parse_args(argv)
    install_uvloop()
    result = asyncio.run(run(opts))
    emit("latency", result, lines_of(result), opts.json)
    return result


if __name__ == "__main__":
    main()
