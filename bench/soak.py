"""Load soak: minutes of mixed inbox traffic, deliveries and C2S publishing on one node.

    python3 dev.py bench soak [--minutes 3] [--actors 300] [--followers 150] [--rate 30]

One ``coopfed run`` (subprocess; embedded PostgreSQL in a temporary data dir, or
``--database-url``) receives, for ``--minutes``:

- signed inbox traffic at ``--rate`` requests/s from ``--actors`` remote actors
  (keys fetched by the node on first use): Creates mentioning the coop (stored),
  Follows (the node answers each with a delivered Accept), Undos of those Follows,
  Likes of nothing (ignored), replays (answered ``duplicate``) and forged requests
  signed by the wrong actor (answered 401: expected, not an error);
- a C2S post (``coopfed token create``; alternately a Note and a proposal) every
  ``--post-every`` seconds, each fanned out to ``--followers`` followers whose
  personal inboxes live on a local receiver (one delivery per follower per post).

Every 10 s it samples the node's RSS (``/proc/PID/status`` VmRSS), its PostgreSQL's
PSS, the job queue and the answers so far.  After the traffic it waits for the
queue to drain, then prints a table and a JSON summary: requests sent, accepted,
answers by status, errors (5xx, connection errors, unexpected statuses), deliveries
received (and duplicates), queue depth at the end, RSS at start/max/end and its
growth against ``--rss-bound-mb`` (measured from the first sample, after warm-up).

Everything runs on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import orjson
from aiohttp import web
from common import AS, LOCALHOST, base_parser, emit, free_port, header, load_average, say
from node import NodeProcess
from peers import ActorPool, RemoteActor, note_create

from federation.httpsig import sign_request

SAMPLE_EVERY = 10.0
DRAIN_TIMEOUT = 180.0
MAX_IN_FLIGHT = 32
# Answers that are the expected outcome of a request kind (not errors).
EXPECTED = {
    "create": {202},
    "follow": {202},
    "undo": {202},
    "like": {202},
    "replay": {202},
    "forged": {401},
    "c2s": {201},
}
MIX = [("create", 55), ("follow", 10), ("undo", 5), ("like", 15), ("replay", 10), ("forged", 5)]


class Remote:
    """One 127.0.0.1 server for every remote actor: documents, inboxes, counts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://{LOCALHOST}:{self.port}"
        self.pools: dict[str, ActorPool] = {}
        self.deliveries: Counter[str] = Counter()  # "inbox activity-id" -> times received
        self.delivered_to: Counter[str] = Counter()  # inbox path -> deliveries
        self.by_type: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None

    def pool(self, prefix: str, count: int) -> ActorPool:
        pool = ActorPool(self.base_url, count, keys=4, prefix=prefix)
        self.pools[prefix] = pool
        return pool

    def _find(self, name: str) -> tuple[ActorPool, RemoteActor] | None:
        for pool in self.pools.values():
            actor = pool.by_name.get(name)
            if actor is not None:
                return pool, actor
        return None

    async def _actor(self, request: web.Request) -> web.Response:
        found = self._find(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        pool, actor = found
        document = pool.document(actor)
        if actor.uri.rsplit("/", 1)[1].startswith("f"):
            del document["endpoints"]  # followers: personal inboxes only
        return web.Response(body=orjson.dumps(document), content_type="application/activity+json")

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            activity = orjson.loads(body)
        except orjson.JSONDecodeError:
            return web.Response(status=400)
        self.deliveries[f"{request.path} {activity.get('id')}"] += 1
        self.delivered_to[request.path] += 1
        self.by_type[str(activity.get("type"))] += 1
        return web.Response(status=202)

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOCALHOST, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Load:
    """The traffic generator and its tallies."""

    def __init__(
        self, node: NodeProcess, senders: ActorPool, session: aiohttp.ClientSession, token: str
    ) -> None:
        self.node = node
        self.senders = senders
        self.session = session
        self.token = token
        self.inbox = f"{node.base_url}/inbox"
        self.rng = random.Random(7)
        self.sent: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()  # "kind status"
        self.errors: Counter[str] = Counter()  # "kind status" or "kind exception"
        self.follows: list[tuple[RemoteActor, dict[str, Any]]] = []
        self.accepted: list[tuple[RemoteActor, bytes]] = []
        self.c2s_posts = 0
        self.serial = 0

    def _signed(self, actor: RemoteActor, body: bytes) -> dict[str, str]:
        headers = {
            "Content-Type": "application/activity+json",
            "Host": f"{LOCALHOST}:{self.node.port}",
        }
        return sign_request(
            method="POST",
            url=self.inbox,
            headers=headers,
            body=body,
            signer=self.senders.signer(actor),
            now=datetime.now(UTC),
        )

    def _activity(self, kind: str) -> tuple[RemoteActor, dict[str, Any] | bytes]:
        actor = self.rng.choice(self.senders.actors)
        self.serial += 1
        serial = f"{self.serial}-{uuid.uuid4().hex[:8]}"
        base = {"@context": AS, "id": f"{actor.uri}/activities/{serial}", "actor": actor.uri}
        if kind == "follow":
            follow = {**base, "type": "Follow", "object": self.node.actor_url}
            self.follows.append((actor, follow))
            return actor, follow
        if kind == "undo" and self.follows:
            who, follow = self.follows.pop(self.rng.randrange(len(self.follows)))
            inner = {k: follow[k] for k in ("id", "type", "actor", "object")}
            undo = {"@context": AS, "id": f"{who.uri}/undo/{serial}", "type": "Undo"}
            return who, {**undo, "actor": who.uri, "object": inner}
        if kind == "like":
            return actor, {**base, "type": "Like", "object": f"{actor.uri}/statuses/none"}
        if kind == "replay" and self.accepted:
            return self.rng.choice(self.accepted[-500:])
        return actor, note_create(actor, serial, self.node.actor_url, size=600)

    async def inbox_request(self, kind: str) -> None:
        actor, activity = self._activity(kind)
        body = activity if isinstance(activity, bytes) else orjson.dumps(activity)
        signer = actor
        if kind == "forged":
            signer = self.rng.choice([a for a in self.senders.actors[:20] if a is not actor])
        if kind == "replay" and not isinstance(activity, bytes):
            kind = "create"
        headers = self._signed(signer, body)
        self.sent[kind] += 1
        try:
            async with asyncio.timeout(30):
                async with self.session.post(self.inbox, data=body, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[f"{kind} {type(exc).__name__}"] += 1
            return
        self.statuses[f"{kind} {status}"] += 1
        if status not in EXPECTED[kind]:
            self.errors[f"{kind} {status}"] += 1
        elif kind == "create" and status == 202:
            self.accepted.append((actor, body))

    async def c2s_request(self) -> None:
        self.c2s_posts += 1
        if self.c2s_posts % 2:
            body: dict[str, Any] = {"type": "Note", "content": f"Soak post {self.c2s_posts}"}
        else:
            body = {
                "type": "Proposal",
                "kind": "offer",
                "title": f"Seedlings batch {self.c2s_posts}",
                "quantity": 10,
                "unit": "one",
                "tags": ["seedlings"],
            }
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        url = f"{self.node.base_url}/users/coop/outbox"
        self.sent["c2s"] += 1
        try:
            async with asyncio.timeout(30):
                async with self.session.post(url, data=orjson.dumps(body), headers=headers) as resp:
                    await resp.read()
                    status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[f"c2s {type(exc).__name__}"] += 1
            return
        self.statuses[f"c2s {status}"] += 1
        if status not in EXPECTED["c2s"]:
            self.errors[f"c2s {status}"] += 1

    def pick(self) -> str:
        return self.rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]


async def seed_followers(node: NodeProcess, followers: ActorPool) -> None:
    """Accepted followers of the coop, whose documents (personal inbox only) are cached."""
    now = datetime.now(UTC)
    async with node.db() as conn:
        coop_id = await conn.fetchval("SELECT id FROM local_actors WHERE kind = 'coop'")
        rows, follows = [], []
        for actor in followers.actors:
            document = followers.document(actor)
            del document["endpoints"]
            host = followers.base_url.split("//", 1)[1]
            rows.append(
                (
                    actor.uri,
                    host,
                    "Person",
                    document["preferredUsername"],
                    document["name"],
                    document["inbox"],
                    document["followers"],
                    actor.key_id,
                    followers.public_pems[actor.key_index],
                    orjson.dumps(document).decode(),
                    now,
                )
            )
            follows.append((coop_id, actor.uri, f"{actor.uri}/follows/soak"))
        await conn.executemany(
            """INSERT INTO remote_actors (uri, host, type, username, name, inbox, shared_inbox,
                   followers_url, key_id, public_key_pem, document, fetched_at)
               VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $10::jsonb, $11)""",
            rows,
        )
        await conn.executemany(
            """INSERT INTO follows (local_actor_id, remote_actor, direction, state, activity_id,
                   accepted_at)
               VALUES ($1, $2, 'inbound', 'accepted', $3, now())""",
            follows,
        )


async def sample(node: NodeProcess, load: Load, remote: Remote, started: float) -> dict[str, Any]:
    memory = node.memory()
    async with node.db() as conn:
        depth = {
            r[0]: int(r[1])
            for r in await conn.fetch("SELECT kind, count(*) FROM jobs GROUP BY kind")
        }
        failed = int(await conn.fetchval("SELECT count(*) FROM failed_jobs"))
        waiting = int(
            await conn.fetchval("SELECT count(*) FROM inbox_activities WHERE processed_at IS NULL")
        )
    return {
        "t": round(time.monotonic() - started),
        "node_rss_mb": round(memory.node_rss_mb, 1),
        "postgres_pss_mb": round(memory.postgres_pss_mb, 1),
        "sent": sum(load.sent.values()),
        "errors": sum(load.errors.values()),
        "queue": sum(depth.values()),
        "queue_by_kind": depth,
        "inbox_waiting": waiting,
        "failed_jobs": failed,
        "deliveries": sum(remote.deliveries.values()),
        "load": load_average(),
    }


async def drive(load: Load, minutes: float, rate: float, post_every: float, on_tick: Any) -> None:
    """Send at ``rate`` requests/s (and a C2S post every ``post_every`` s) for ``minutes``."""
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    deadline = started + minutes * 60
    next_post = started
    next_sample = started + SAMPLE_EVERY
    count = 0
    limit = int(minutes * 60 * rate) + 1  # a hard cap on requests, whatever the clock does

    async def guarded(job: Any) -> None:
        async with slots:
            await job

    while time.monotonic() < deadline and count < limit:
        now = time.monotonic()
        if now >= next_post:
            task = asyncio.create_task(guarded(load.c2s_request()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_post += post_every
        if now >= next_sample:
            await on_tick()
            next_sample += SAMPLE_EVERY
        task = asyncio.create_task(guarded(load.inbox_request(load.pick())))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        count += 1
        await asyncio.sleep(max(0.0, started + count / rate - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks, timeout=60)


async def run(args: Any) -> dict[str, Any]:
    result = header("soak: mixed inbox traffic, deliveries and C2S publishing")
    remote = Remote()
    await remote.start()
    senders = remote.pool("s", args.actors)
    followers = remote.pool("f", args.followers)
    env = {
        # Every soak actor is on 127.0.0.1: the per-host limit would refuse the run.
        "COOPFED_INBOX_RATE": "1000000",
        "COOPFED_INBOX_BURST": "1000000",
        # ... and so would the per-host limit on the key fetches of 300 new actors.
        "COOPFED_KEY_FETCH_RATE": "1000000",
        "COOPFED_KEY_FETCH_BURST": "1000000",
        "COOPFED_WORKER_CONCURRENCY": "32",
    }
    node = NodeProcess("soak", database_url=args.database_url, env=env)
    samples: list[dict[str, Any]] = []
    try:
        await node.start()
        await seed_followers(node, followers)
        token = await node.create_token()
        connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as session:
            load = Load(node, senders, session, token)
            started = time.monotonic()
            print(
                f"{'t s':>5} {'sent':>7} {'errors':>6} {'queue':>6} {'inbox wait':>10} "
                f"{'failed':>6} {'delivered':>9} {'node RSS MB':>11} {'pg PSS MB':>9} {'load':>5}",
                flush=True,
            )

            async def tick() -> None:
                row = await sample(node, load, remote, started)
                samples.append(row)
                print(
                    f"{row['t']:>5} {row['sent']:>7} {row['errors']:>6} {row['queue']:>6} "
                    f"{row['inbox_waiting']:>10} {row['failed_jobs']:>6} {row['deliveries']:>9} "
                    f"{row['node_rss_mb']:>11} {row['postgres_pss_mb']:>9} {row['load']:>5}",
                    flush=True,
                )

            await drive(load, args.minutes, args.rate, args.post_every, tick)
            traffic_seconds = time.monotonic() - started
            # Drain: wait until no job is left (bounded).
            drain_started = time.monotonic()
            drained = False
            while time.monotonic() - drain_started < DRAIN_TIMEOUT:
                async with node.db() as conn:
                    left = int(await conn.fetchval("SELECT count(*) FROM jobs"))
                if left == 0:
                    drained = True
                    break
                await asyncio.sleep(1)
            drain_seconds = time.monotonic() - drain_started
            await tick()
        log_text = node.log_path.read_text(errors="replace") if node.log_path.exists() else ""
    finally:
        node.cleanup()
        await remote.stop()

    rss = [s["node_rss_mb"] for s in samples]
    baseline = rss[0] if rss else 0.0
    growth = round(rss[-1] - baseline, 1) if rss else 0.0
    error_counts = [s["errors"] for s in samples]
    duplicates = sum(n - 1 for n in remote.deliveries.values() if n > 1)
    c2s_ok = load.statuses.get("c2s 201", 0)
    expected_fanout = c2s_ok * args.followers
    fanout_received = sum(
        n for path, n in remote.delivered_to.items() if path.startswith("/users/f")
    )
    summary = {
        "minutes": args.minutes,
        "traffic_seconds": round(traffic_seconds, 1),
        "requests_sent": dict(load.sent) | {"total": sum(load.sent.values())},
        "accepted_202": sum(n for k, n in load.statuses.items() if k.endswith(" 202")),
        "answers": dict(sorted(load.statuses.items())),
        "errors": dict(load.errors) | {"total": sum(load.errors.values())},
        "error_growth": error_counts[-1] - error_counts[0] if error_counts else 0,
        "deliveries_received": sum(remote.deliveries.values()),
        "deliveries_by_type": dict(remote.by_type),
        "fanout": {
            "c2s_posts": c2s_ok,
            "followers": args.followers,
            "expected": expected_fanout,
            "received": fanout_received,
        },
        "duplicate_deliveries": duplicates,
        "queue_drained": drained,
        "drain_seconds": round(drain_seconds, 1),
        "queue_depth_end": samples[-1]["queue"] if samples else None,
        "inbox_waiting_end": samples[-1]["inbox_waiting"] if samples else None,
        "failed_jobs_end": samples[-1]["failed_jobs"] if samples else None,
        "node_rss_mb": {
            "start": baseline,
            "max": max(rss) if rss else 0.0,
            "end": rss[-1] if rss else 0.0,
            "growth": growth,
            "bound": args.rss_bound_mb,
            "within_bound": growth <= args.rss_bound_mb,
        },
        "postgres_pss_mb_end": samples[-1]["postgres_pss_mb"] if samples else None,
        "node_log_tracebacks": log_text.count("Traceback"),
        "load_after": load_average(),
    }
    result.update(summary=summary, samples=samples, settings=vars(args) | {"json": None})
    return result


def main() -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="traffic duration (default 3)")
    parser.add_argument("--actors", type=int, default=300, help="remote senders (default 300)")
    parser.add_argument("--followers", type=int, default=150, help="followers (default 150)")
    parser.add_argument("--rate", type=float, default=30.0, help="inbox requests/s (default 30)")
    parser.add_argument(
        "--post-every", type=float, default=3.0, help="seconds between C2S posts (default 3)"
    )
    parser.add_argument(
        "--rss-bound-mb",
        type=float,
        default=64.0,
        help="largest acceptable RSS growth of the node after the first sample (default 64)",
    )
    args = parser.parse_args()
    if args.minutes <= 0 or args.minutes > 60 or args.rate <= 0 or args.rate > 2000:
        parser.error("--minutes must be in (0, 60] and --rate in (0, 2000]")
    result = asyncio.run(run(args))
    s = result["summary"]
    lines = [
        f"traffic: {s['traffic_seconds']} s, requests sent {s['requests_sent']['total']}, "
        f"accepted (202) {s['accepted_202']}",
        f"answers: {s['answers']}",
        f"errors: {s['errors']} (growth over the run {s['error_growth']})",
        f"deliveries received: {s['deliveries_received']} {s['deliveries_by_type']}; "
        f"fan-out {s['fanout']['received']}/{s['fanout']['expected']}; "
        f"duplicates {s['duplicate_deliveries']}",
        f"queue drained: {s['queue_drained']} in {s['drain_seconds']} s; depth at end "
        f"{s['queue_depth_end']}; inbox waiting {s['inbox_waiting_end']}; "
        f"failed jobs {s['failed_jobs_end']}",
        f"node RSS MB: start {s['node_rss_mb']['start']}, max {s['node_rss_mb']['max']}, end "
        f"{s['node_rss_mb']['end']}, growth {s['node_rss_mb']['growth']} "
        f"(bound {s['node_rss_mb']['bound']}: "
        f"{'ok' if s['node_rss_mb']['within_bound'] else 'EXCEEDED'})",
        f"node log tracebacks: {s['node_log_tracebacks']}; load before {result['load_before']}, "
        f"after {s['load_after']}",
    ]
    emit("soak", result, lines, args.json)
    ok = (
        s["errors"]["total"] == 0
        and s["queue_drained"]
        and s["node_rss_mb"]["within_bound"]
        and s["duplicate_deliveries"] == 0
    )
    with contextlib.suppress(Exception):
        say("soak " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
