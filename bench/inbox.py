"""Inbox throughput: signed ``Create`` activities from many remote actors, posted
concurrently to a node's shared inbox, against a verify-only ceiling in the same run.

    python3 dev.py bench inbox [--actors 1000] [--requests 20000] [--concurrency 64]

1. The ceiling: a bare aiohttp process (uvloop) that answers 202 after checking the
   Digest and one RSA-2048 signature of each request, with the node's own
   ``federation.httpsig`` code; it stores nothing.  It gets the very same bytes.
2. The node (``coopfed run``, subprocess, embedded PostgreSQL with fsync on), by
   default as the Compose file runs it: ``--web-processes 2 --worker-processes 1``
   (``--node-arg`` replaces that; ``--node-arg=--web-processes --node-arg=1`` is one
   process doing everything):
   - cold keys: one request from each of ``--actors`` actors it never saw, so every
     request makes it fetch the actor's key (from a local actor host);
   - cached keys: ``--requests`` requests from ``--actors`` other actors whose keys
     it already holds (seeded in its database), ``--replays`` of them replays.
   Accepted = answered 202 (verified, de-duplicated, stored with its processing job
   in one transaction).  Processed = the worker finished the activity (the note is
   stored for the coop, which each Create mentions).
The node's per-host inbox rate limit is raised for the run (every bench actor is on
127.0.0.1): COOPFED_INBOX_RATE=1000000, COOPFED_INBOX_BURST=1000000.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BusyMeter,
    base_parser,
    cpu_per_item,
    cpu_seconds,
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
from fedify import measure_fedify
from node import MemorySampler, NodeProcess, Profiler
from peers import ActorHost, ActorPool, note_create, post_all, sign_posts
from servers import ServerProcess, write_keys

RATE_LIMIT_ENV = {
    "COOPFED_INBOX_RATE": "1000000",
    "COOPFED_INBOX_BURST": "1000000",
    # Every bench actor is on one host: its key fetches must not be rate-limited.
    "COOPFED_KEY_FETCH_RATE": "1000000",
    "COOPFED_KEY_FETCH_BURST": "1000000",
}
WARMUP = 500
# The Compose topology (deploy/compose.yaml): two web processes and one worker process.
DEFAULT_NODE_ARGS = ["--web-processes", "2", "--worker-processes", "1"]


def parser() -> Any:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--actors", type=int, default=1000, help="actors per phase (default 1000)")
    p.add_argument(
        "--requests", type=int, default=20000, help="requests with cached keys (default 20000)"
    )
    p.add_argument("--replays", type=float, default=0.05, help="share of replays (default 0.05)")
    p.add_argument("--concurrency", type=int, default=64, help="connections (default 64)")
    p.add_argument("--time-limit", type=float, default=90.0, help="seconds per phase at most")
    p.add_argument("--keys", type=int, default=8, help="distinct RSA keys among actors")
    p.add_argument("--workers", type=int, default=0, help="extra `coopfed worker` processes")
    p.add_argument(
        "--fedify-requests",
        type=int,
        default=3000,
        help="requests to the Fedify peer, keys cached (default 3000; 0: no Fedify phase)",
    )
    p.add_argument(
        "--fedify-actors", type=int, default=200, help="actors signing the Fedify load (200)"
    )
    p.add_argument(
        "--node-arg",
        action="append",
        default=None,
        help="`coopfed run` argument (repeat; default: " + " ".join(DEFAULT_NODE_ARGS) + ")",
    )
    return p


async def wait_processed(node: NodeProcess, pattern: str, expected: int, limit: float) -> int:
    """Wait until ``expected`` activities matching ``pattern`` are processed.

    While processing jobs are queued, only the (small) jobs table is polled: counting
    the inbox's rows every 100 ms would cost the node's PostgreSQL ~10% of a core.
    """
    deadline = time.monotonic() + limit
    done = 0
    async with node.db() as conn:
        while time.monotonic() < deadline:
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = 'process_inbox')"
            ):
                done = await conn.fetchval(
                    """SELECT count(*) FROM inbox_activities
                       WHERE activity_id LIKE $1 AND processed_at IS NOT NULL""",
                    pattern,
                )
                if done >= expected:
                    break
            await asyncio.sleep(0.1)
    return int(done)


async def phase_figures(node: NodeProcess, pattern: str, started_at: float) -> dict[str, Any]:
    async with node.db() as conn:
        row = await conn.fetchrow(
            """SELECT count(*) AS stored,
                      count(processed_at) AS processed,
                      extract(epoch FROM max(processed_at)) AS last_processed,
                      extract(epoch FROM max(received_at)) AS last_received
               FROM inbox_activities WHERE activity_id LIKE $1""",
            pattern,
        )
        outcomes = await conn.fetch(
            """SELECT coalesce(outcome, '(pending)') AS outcome, count(*) AS n
               FROM inbox_activities WHERE activity_id LIKE $1 GROUP BY 1 ORDER BY 2 DESC""",
            pattern,
        )
    last = float(row["last_processed"] or started_at)
    return {
        "stored": int(row["stored"]),
        "processed": int(row["processed"]),
        "processed_seconds": round(last - started_at, 3),
        "processed_per_second": rate(int(row["processed"]), last - started_at),
        "outcomes": {r["outcome"]: int(r["n"]) for r in outcomes},
    }


async def measure_ceiling(
    keys_path: Path, warm: list[bytes], requests: list[bytes], opts: Any
) -> dict[str, Any]:
    port = free_port()
    ceiling = ServerProcess("ceiling", ["--port", str(port), "--keys", str(keys_path)])
    await ceiling.start()
    try:
        await post_all(port, warm, concurrency=opts.concurrency, time_limit=30)
        load = load_average()
        assert ceiling.proc is not None
        cpu_before = cpu_seconds(ceiling.proc.pid)
        with BusyMeter() as busy:
            measured = await post_all(
                port, requests, concurrency=opts.concurrency, time_limit=opts.time_limit
            )
        server_cpu = cpu_seconds(ceiling.proc.pid) - cpu_before
    finally:
        ceiling.stop()
    return {
        **measured.as_dict(),
        "accepted_per_second": measured.per_second(202),
        "load_1min": load,
        "cores_busy": busy.cores_busy,
        "client_cpu_seconds": busy.client_cpu_seconds,
        "server_cpu_us_per_request": round(server_cpu / max(1, measured.sent) * 1e6, 1),
    }


async def run(opts: Any) -> dict[str, Any]:
    result = header("inbox throughput")
    if opts.wait_idle:
        wait_for_quiet(opts.max_load, opts.wait_idle)
    run_id = uuid.uuid4().hex[:8]
    host = ActorHost()
    await host.start()
    node = NodeProcess(
        "inbox", database_url=opts.database_url, env=RATE_LIMIT_ENV, args=opts.node_arg
    )
    keys_path: Path | None = None
    try:
        say(f"generating {opts.keys} RSA keys for {3 * opts.actors} actors")
        pool = ActorPool(host.base_url, 3 * opts.actors, keys=opts.keys)
        host.pool = pool
        cold_actors = pool.actors[: opts.actors]
        cached_actors = pool.actors[opts.actors :]
        inbox_url = node.base_url + "/inbox"
        warm = [
            (
                cached_actors[i % len(cached_actors)],
                note_create(
                    cached_actors[i % len(cached_actors)], f"{run_id}-w-{i}", node.actor_url
                ),
            )
            for i in range(WARMUP)
        ]
        cold = [
            (a, note_create(a, f"{run_id}-k-{i}", node.actor_url))
            for i, a in enumerate(cold_actors)
        ]
        fresh_count = round(opts.requests * (1 - opts.replays))
        cached = [
            (
                cached_actors[i % len(cached_actors)],
                note_create(
                    cached_actors[i % len(cached_actors)], f"{run_id}-c-{i}", node.actor_url
                ),
            )
            for i in range(fresh_count)
        ]
        say(f"signing {len(warm) + len(cold) + len(cached)} requests (before any clock starts)")
        t = time.perf_counter()
        warm_raw = sign_posts(pool, warm, inbox_url)
        cold_raw = sign_posts(pool, cold, inbox_url)
        cached_raw = sign_posts(pool, cached, inbox_url)
        rng = random.Random(6)
        replays = [
            cached_raw[rng.randrange(fresh_count)] for _ in range(opts.requests - fresh_count)
        ]
        cached_raw += replays
        rng.shuffle(cached_raw)
        say(f"signed in {time.perf_counter() - t:.1f} s")

        # 1. The verify-only ceiling, same requests, same client, same cores (again
        # after the node, and the mean of both is the ceiling: the machine may be shared).
        keys_path = write_keys(pool.keys_by_key_id())
        ceilings = [await measure_ceiling(keys_path, warm_raw, cached_raw, opts)]
        say(f"ceiling: {ceilings[0]['accepted_per_second']}/s")

        # 2. The node.
        startup = await node.start()
        say(f"node up in {startup:.2f} s at {node.base_url}")
        async with node.db() as conn:
            # "Pre-cached": these actors' keys are in the node's cache, as after a fetch.
            await pool.seed(conn, cached_actors)
        node.start_workers(opts.workers)
        idle = node.memory()
        with MemorySampler(node) as sampler:
            await post_all(node.port, warm_raw, concurrency=opts.concurrency, time_limit=30)
            await wait_processed(node, f"%/statuses/{run_id}-w-%", WARMUP, opts.time_limit)

            load_cold = load_average()
            cold_result = await post_all(
                node.port, cold_raw, concurrency=opts.concurrency, time_limit=opts.time_limit
            )
            await wait_processed(node, f"%/statuses/{run_id}-k-%", len(cold_raw), opts.time_limit)
            cold_figures = await phase_figures(
                node, f"%/statuses/{run_id}-k-%", cold_result.started_at
            )
            say(f"cold keys: {cold_result.per_second(202)}/s 202 ({cold_result.statuses})")

            load_cached = load_average()
            cpu_before = node.cpu()
            with Profiler(node, opts.profile):
                with BusyMeter() as node_busy:
                    cached_result = await post_all(
                        node.port,
                        cached_raw,
                        concurrency=opts.concurrency,
                        time_limit=opts.time_limit,
                    )
                cpu_posting = cpu_per_item(cpu_before, node.cpu(), cached_result.sent)
                say(
                    f"cached keys: {cached_result.per_second(202)}/s 202 ({cached_result.statuses})"
                )
                await wait_processed(node, f"%/statuses/{run_id}-c-%", fresh_count, opts.time_limit)
            cached_figures = await phase_figures(
                node, f"%/statuses/{run_id}-c-%", cached_result.started_at
            )
            # Accepting and processing, per activity stored, from the first request
            # until the last one is processed.
            cached_figures["cpu_us_per_activity"] = cpu_per_item(
                cpu_before, node.cpu(), cached_figures["stored"]
            )
            # Only while the requests were being posted (processing ran meanwhile too,
            # unless it runs in other processes: --node-arg=--workers --node-arg=0).
            cached_figures["cpu_us_per_request_while_posting"] = cpu_posting
            cached_figures["cores_busy_while_posting"] = node_busy.cores_busy
            cached_figures["client_cpu_seconds"] = node_busy.client_cpu_seconds
        node.stop()
        # 3. Fedify, with the same kind of load (a smaller count: it is much slower).
        if opts.fedify_requests:
            fedify_actors = cached_actors[: opts.fedify_actors]
            result["fedify"] = await measure_fedify(pool, fedify_actors, run_id, opts)
        ceilings.append(await measure_ceiling(keys_path, warm_raw, cached_raw, opts))
        say(f"ceiling again: {ceilings[1]['accepted_per_second']}/s")
        ceiling_rate = round(sum(c["accepted_per_second"] for c in ceilings) / len(ceilings), 1)
        result["ceiling"] = {
            "accepted_per_second": ceiling_rate,
            "runs": ceilings,
            "what": "one uvloop aiohttp process: Digest + RSA-2048 verify, 202, nothing stored",
        }
        result["node"] = {
            "startup_seconds": round(startup, 2),
            "extra_worker_processes": opts.workers,
            "node_args": opts.node_arg,
            "env": RATE_LIMIT_ENV,
            "cold_keys": {
                **cold_result.as_dict(),
                **cold_figures,
                "accepted_per_second": cold_result.per_second(202),
                "key_fetches": host.fetches,
                "load_1min": load_cold,
            },
            "cached_keys": {
                **cached_result.as_dict(),
                **cached_figures,
                "duplicates": cached_result.statuses[202] - cached_figures["stored"],
                "accepted_per_second": cached_result.per_second(202),
                "concurrency": opts.concurrency,
                "load_1min": load_cached,
            },
            "memory_idle": idle.as_dict(),
            "memory_peak": sampler.peak.as_dict(),
        }
    finally:
        node.cleanup()
        await host.stop()
        if keys_path is not None:
            keys_path.unlink(missing_ok=True)
    cached_node = result["node"]["cached_keys"]
    ceiling_rate = result["ceiling"]["accepted_per_second"]
    result["ratio_accepted_to_ceiling"] = ratio(cached_node["accepted_per_second"], ceiling_rate)
    result["ratio_processed_to_ceiling"] = ratio(cached_node["processed_per_second"], ceiling_rate)
    fedify = result.get("fedify", {})
    if "accepted_per_second" in fedify:
        result["ratio_fedify_to_ceiling"] = ratio(fedify["accepted_per_second"], ceiling_rate)
        result["node_over_fedify"] = round(
            cached_node["accepted_per_second"] / max(1e-9, fedify["accepted_per_second"]), 2
        )
    result["target"] = ">= 0.5 of the verify-only ceiling (accepted, cached keys)"
    result["load_after"] = load_average()
    return result


def lines_of(result: dict[str, Any]) -> list[str]:
    node = result["node"]
    cold, cached = node["cold_keys"], node["cached_keys"]
    ceiling = result["ceiling"]
    m = result["machine"]
    peak = node["memory_peak"]
    fedify = result.get("fedify", {})
    lines = [
        f"machine: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}, {m['postgres']}",
        f"node: coopfed run {' '.join(node['node_args']) or '(one process)'}"
        + (
            f" + {node['extra_worker_processes']} `coopfed worker`"
            if node["extra_worker_processes"]
            else ""
        ),
        f"ceiling (verify-only aiohttp, 1 process): {ceiling['accepted_per_second']:>8}/s  "
        f"(mean of {' and '.join(str(r['accepted_per_second']) for r in ceiling['runs'])}; "
        f"load {', '.join(str(r['load_1min']) for r in ceiling['runs'])})",
        f"coopfed, cached keys: accepted {cached['accepted_per_second']:>8}/s  "
        f"processed {cached['processed_per_second']:>8}/s  "
        f"({cached['stored']} stored, {cached['duplicates']} replays; load {cached['load_1min']}; "
        f"{cached['cores_busy_while_posting']} cores busy)",
    ]
    if "accepted_per_second" in fedify:
        lines.append(
            f"Fedify, cached keys:  accepted {fedify['accepted_per_second']:>8}/s  "
            f"({fedify['sent']} requests, {fedify['actors']} actors; load {fedify['load_1min']}; "
            f"p99 {fedify.get('response_ms', {}).get('p99')} ms; "
            f"{fedify['server_cpu_us_per_request']} µs CPU/request)"
        )
    elif fedify:
        lines.append(f"Fedify: not measured ({fedify.get('error', '')[:200]})")
    response = cached.get("response_ms", {})
    lines += [
        f"ratio coopfed accepted / ceiling:  {result['ratio_accepted_to_ceiling']:.2f}  "
        "(target >= 0.50)",
        f"ratio coopfed processed / ceiling: {result['ratio_processed_to_ceiling']:.2f}",
    ]
    if "ratio_fedify_to_ceiling" in result:
        lines.append(
            f"ratio Fedify accepted / ceiling:   {result['ratio_fedify_to_ceiling']:.2f}  "
            f"(coopfed = {result['node_over_fedify']}x Fedify)"
        )
    lines += [
        f"coopfed response at {cached.get('concurrency', '?')} connections: "
        f"p50 {response.get('p50')} ms, p99 {response.get('p99')} ms (target p99 < 50 ms)",
        f"CPU µs per request while posting: ceiling server "
        f"{ceiling['runs'][0]['server_cpu_us_per_request']}, node "
        f"{cached['cpu_us_per_request_while_posting']}",
        f"CPU µs per activity, accepted and processed: {cached['cpu_us_per_activity']}",
        f"node, cold keys:   accepted {cold['accepted_per_second']:>8}/s  "
        f"processed {cold['processed_per_second']:>8}/s  "
        f"({cold['key_fetches']} key fetches; load {cold['load_1min']})",
        f"outcomes (cached): {cached['outcomes']}",
        f"node RSS under load (PostgreSQL excluded): {peak['node_rss_mb']} MB in "
        f"{peak['processes']} process(es), largest {peak['largest_process_mb']} MB "
        f"(target < 150 MB); idle {node['memory_idle']['node_rss_mb']} MB",
        f"PostgreSQL PSS under load: {peak['postgres_pss_mb']} MB "
        f"(idle {node['memory_idle']['postgres_pss_mb']} MB)",
    ]
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    opts = parser().parse_args(argv)
    if opts.node_arg is None:
        opts.node_arg = list(DEFAULT_NODE_ARGS)
    install_uvloop()
    result = asyncio.run(run(opts))
    emit("inbox", result, lines_of(result), opts.json)
    return result


if __name__ == "__main__":
    main()
