"""Footprint: start-up time with an existing data directory, and memory idle and under
the inbox and fan-out loads.

    python3 dev.py bench footprint [--restarts 3]

One ``coopfed run`` subprocess with its own embedded PostgreSQL (or DATABASE_URL):
1. first start (creates the cluster: initdb), then ``--restarts`` stop/start cycles on
   the existing data directory, each timed from the spawn to ``/health`` = 200;
2. memory idle: RSS of the node's Python process and PSS of its PostgreSQL processes
   (the shared buffers counted once), from /proc;
3. peak memory under ``--inbox-requests`` signed Creates (closed loop, 64
   connections), then under a fan-out to ``--followers`` followers, then idle again.
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
    emit,
    free_port,
    header,
    install_uvloop,
    load_average,
    say,
    wait_for_quiet,
)
from fanout import one_post, seed_followers
from node import MemorySampler, NodeProcess
from peers import ActorHost, ActorPool, note_create, post_all, sign_posts
from servers import ServerProcess, median, removing, write_keys

from inbox import RATE_LIMIT_ENV, wait_processed


def parser() -> Any:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--restarts", type=int, default=3, help="timed restarts (default 3)")
    p.add_argument("--inbox-requests", type=int, default=10000, help="inbox load (default 10000)")
    p.add_argument("--followers", type=int, default=1000, help="fan-out load (default 1000)")
    p.add_argument("--hosts", type=int, default=10, help="receiving hosts for the fan-out")
    p.add_argument("--time-limit", type=float, default=90.0, help="seconds per load at most")
    return p


async def settle(node: NodeProcess, seconds: float = 3.0) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return node.memory().as_dict()


async def run(opts: Any) -> dict[str, Any]:
    result = header("footprint")
    if opts.wait_idle:
        wait_for_quiet(opts.max_load, opts.wait_idle)
    env = {**RATE_LIMIT_ENV, "COOPFED_C2S_RATE": "1000", "COOPFED_C2S_BURST": "1000"}
    node = NodeProcess("footprint", database_url=opts.database_url, env=env)
    host = ActorHost()
    await host.start()
    receiver: ServerProcess | None = None
    try:
        load = load_average()
        first = await node.start()
        say(f"first start (new data directory): {first:.2f} s")
        node.stop()
        restarts = []
        for _ in range(opts.restarts):
            restarts.append(await node.start())
            say(f"restart: {restarts[-1]:.2f} s")
            if len(restarts) < opts.restarts:
                node.stop()
        result["startup"] = {
            "first_start_seconds": round(first, 2),
            "restart_seconds": [round(s, 2) for s in restarts],
            "restart_median_seconds": round(median(restarts), 2),
            "database": "DATABASE_URL" if opts.database_url else "embedded PostgreSQL",
            "load_1min": load,
        }
        memory: dict[str, Any] = {"idle": await settle(node)}
        say(f"idle: {memory['idle']}")

        # Under the inbox load.
        pool = ActorPool(host.base_url, 1000, keys=8)
        host.pool = pool
        async with node.db() as conn:
            await pool.seed(conn)
        run_id = uuid.uuid4().hex[:8]
        senders = [pool.actors[i % 1000] for i in range(opts.inbox_requests)]
        coop = node.actor_url
        items = [(a, note_create(a, f"{run_id}-{i}", coop)) for i, a in enumerate(senders)]
        raw = sign_posts(pool, items, node.base_url + "/inbox")
        load = load_average()
        with MemorySampler(node) as sampler:
            inbox = await post_all(node.port, raw, concurrency=64, time_limit=opts.time_limit)
            await wait_processed(node, f"%/statuses/{run_id}-%", len(raw), opts.time_limit)
        memory["inbox_load"] = {
            **sampler.peak.as_dict(),
            "requests": opts.inbox_requests,
            "accepted_per_second": inbox.per_second(202),
            "load_1min": load,
        }
        say(f"under inbox load: {memory['inbox_load']}")

        # Under a fan-out.
        key_id, pem = await node.public_key_pem()
        ports = [free_port() for _ in range(opts.hosts)]
        keys_path = write_keys({key_id: pem})
        with removing(keys_path):
            receiver = ServerProcess(
                "receiver", ["--ports", ",".join(map(str, ports)), "--keys", str(keys_path)]
            )
            await receiver.start()
        await seed_followers(node, ports, 0, opts.followers)
        token = await node.create_token()
        async with aiohttp.ClientSession() as session:
            post = await one_post(session, node, token, ports[0], opts.followers, opts.time_limit)
        memory["fanout_load"] = {
            **post["memory_peak"],
            "followers": opts.followers,
            "deliveries_per_second": post["deliveries_per_second"],
            "load_1min": post["load_1min"],
        }
        say(f"under fan-out: {memory['fanout_load']}")
        memory["idle_after"] = await settle(node)
        result["memory"] = memory
    finally:
        if receiver is not None:
            receiver.stop()
        node.cleanup()
        await host.stop()
    result["load_after"] = load_average()
    return result


def lines_of(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    s = result["startup"]
    mem = result["memory"]
    lines = [
        f"machine: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}, {m['postgres']}",
        f"start-up, existing data dir ({s['database']}): median {s['restart_median_seconds']} s "
        f"{s['restart_seconds']}; first start (initdb) {s['first_start_seconds']} s "
        f"(load {s['load_1min']})",
        f"{'memory (MB)':<34} {'node RSS':>9} {'PG PSS':>7} {'total':>7}",
    ]
    for label, key in (
        ("idle", "idle"),
        (f"inbox load ({mem['inbox_load']['accepted_per_second']}/s)", "inbox_load"),
        (f"fan-out ({mem['fanout_load']['followers']} followers)", "fanout_load"),
        ("idle after the loads", "idle_after"),
    ):
        row = mem[key]
        lines.append(
            f"{label:<34} {row['node_rss_mb']:>9} {row['postgres_pss_mb']:>7} {row['total_mb']:>7}"
        )
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    opts = parser().parse_args(argv)
    install_uvloop()
    started = time.perf_counter()
    result = asyncio.run(run(opts))
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    emit("footprint", result, lines_of(result), opts.json)
    return result


if __name__ == "__main__":
    main()
