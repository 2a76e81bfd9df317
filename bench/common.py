"""Shared machinery of the coopfed benchmarks (plain Python, 127.0.0.1 only).

- ``NodeProcess``: a real ``coopfed run`` started as a subprocess on a free port,
  with ``--allow-private-addresses`` and a temporary data directory (its own
  embedded PostgreSQL, fsync on) or ``DATABASE_URL``; ``db()`` attaches to its
  database for seeding and reading timestamps.
- ``ActorPool`` / ``ActorHost``: many remote actors (RSA-2048 keys) whose
  documents are served on 127.0.0.1, so the node can fetch their keys.
- ``sign_posts``: pre-signed inbox POSTs (draft-cavage, as Mastodon signs) built
  with ``federation.httpsig`` before the clock starts; ``post_all``: a small raw
  HTTP/1.1 keep-alive client that replays them (the same client for the node and
  for the ceilings, so both pay the same client cost on the same cores).
- ``python bench/common.py ceiling|receiver``: the ceiling server (202 after one
  RSA-2048 verification) and the fan-out receiver (verifies every delivery),
  both run as subprocesses.
- ``sign_ceiling``: RSA-2048 signatures per second on all cores, in subprocesses.
- Memory from ``/proc`` (RSS of the node's Python process, PSS of its
  PostgreSQL), machine facts, load average, text and JSON output.

Every loop here has a count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import orjson  # noqa: E402
from aiohttp import web  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # noqa: E402

from coopfed.embedded_pg import find_bindir, running_dsn  # noqa: E402
from federation.httpsig import (  # noqa: E402
    SignatureError,
    parse_signature,
    sign_request,
    verify_signature,
)
from federation.keys import (  # noqa: E402
    Signer,
    dump_private_key_pem,
    dump_public_key_pem,
    generate_private_key,
    load_private_key,
    load_public_key,
)

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = AS + "#Public"
LOCALHOST = "127.0.0.1"
RESULTS_DIR = ROOT / "bench" / "results"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


# -- machine, load, output ------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def postgres_version() -> str:
    try:
        out = subprocess.run(
            [str(find_bindir() / "postgres"), "--version"], capture_output=True, text=True
        )
        return out.stdout.strip()
    except Exception as exc:
        return f"unknown ({exc})"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cpu_model": cpu_model(),
        "cores": cores(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": postgres_version(),
        "packages": {
            name: package_version(name)
            for name in ("aiohttp", "asyncpg", "cryptography", "orjson", "uvloop")
        },
    }


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def wait_for_quiet(max_load: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until the 1-minute load is below ``max_load``."""
    deadline = time.monotonic() + max_wait
    load = load_average()
    while load >= max_load and time.monotonic() < deadline:
        say(f"1-minute load average {load} >= {max_load}: waiting for a quieter machine")
        time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))
        load = load_average()
    return load


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    parser.add_argument(
        "--max-load",
        type=float,
        default=1.5,
        help="wait until the 1-minute load average is below this (default 1.5)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="seconds to wait at most for --max-load before measuring (default 0: don't wait)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the node during the measured load; collapsed stacks to this file",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", ""),
        help="run nodes on this PostgreSQL (one fresh database each) instead of an embedded "
        "cluster in a temporary data dir [env BENCH_DATABASE_URL]",
    )
    return parser


def emit(name: str, result: dict[str, Any], lines: Sequence[str], json_path: Path | None) -> None:
    """Print the figures as text, then as JSON; keep the JSON in bench/results/."""
    print()
    print(f"== {name} ==")
    for line in lines:
        print(line)
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    print(f"-- {name} JSON --")
    print(text, flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(text + "\n")
    if json_path is not None:
        json_path.write_text(text + "\n")


def header(description: str) -> dict[str, Any]:
    return {
        "benchmark": description,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_before": load_average(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def cpu_per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """Microseconds of CPU per item, by process group, between two ``NodeProcess.cpu()``."""
    if items <= 0:
        return {}
    return {k: round((after[k] - before[k]) / items * 1e6, 1) for k in after}


def ratio(value: float, ceiling: float) -> float:
    return round(value / ceiling, 3) if ceiling > 0 else 0.0


# -- ports and processes ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def coopfed_command() -> list[str]:
    script = Path(sys.executable).parent / "coopfed"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from coopfed.cli.main import main; sys.exit(main())"]


def bench_python() -> list[str]:
    return [sys.executable, str(Path(__file__).resolve())]


def spawn(command: Sequence[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` from the repository root, its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 10_000:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _status_kb(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (PostgreSQL's shared buffers) counted once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return rss_mb(pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return (0.0, 0.0)
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return ((sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick)


class BusyMeter:
    """How busy the machine's cores were while the block ran (all processes, ours too)."""

    def __enter__(self) -> BusyMeter:
        self._start = machine_busy()
        self._self = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = machine_busy()
        self.cores_busy = 0.0
        if total > self._start[1]:
            self.cores_busy = round((busy - self._start[0]) / (total - self._start[1]) * cores(), 2)
        self.client_cpu_seconds = round(time.process_time() - self._self, 2)


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class Memory:
    node_rss_mb: float = 0.0  # the coopfed Python process (web server and in-process workers)
    workers_rss_mb: float = 0.0  # extra `coopfed worker` processes, if any
    postgres_pss_mb: float = 0.0  # the embedded cluster: postmaster and backends (PSS)

    @property
    def total_mb(self) -> float:
        return self.node_rss_mb + self.workers_rss_mb + self.postgres_pss_mb

    def as_dict(self) -> dict[str, float]:
        return {
            "node_rss_mb": round(self.node_rss_mb, 1),
            "workers_rss_mb": round(self.workers_rss_mb, 1),
            "postgres_pss_mb": round(self.postgres_pss_mb, 1),
            "total_mb": round(self.total_mb, 1),
        }

    def peak(self, other: Memory) -> Memory:
        return Memory(
            max(self.node_rss_mb, other.node_rss_mb),
            max(self.workers_rss_mb, other.workers_rss_mb),
            max(self.postgres_pss_mb, other.postgres_pss_mb),
        )


class NodeProcess:
    """``coopfed run`` as a subprocess on a free 127.0.0.1 port."""

    def __init__(
        self,
        name: str,
        *,
        database_url: str = "",
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
        data_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://{LOCALHOST}:{self.port}"
        self.actor_url = f"{self.base_url}/users/coop"
        self._own_dir = data_dir is None
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix=f"coopfed-bench-{name}-"))
            os.chmod(data_dir, 0o711)  # the PostgreSQL user must traverse it when we are root
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.log_path = self.data_dir / "node.log"
        self.startup_seconds = 0.0
        self._db_url = ""

    # -- lifecycle --

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COOPFED_")}
        env.pop("DATABASE_URL", None)
        env.update(self.extra_env)
        # The clone's own packages first, whatever the venv's install knows about.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if self._db_url:
            env["DATABASE_URL"] = self._db_url
        return env

    async def _create_database(self) -> None:
        if not self.database_url or self._db_url:
            return
        dbname = f"bench_{self.name}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(f"CREATE DATABASE {dbname}")
        finally:
            await conn.close()
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.database_url)
        self._db_url = urlunsplit(
            (parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment)
        )

    async def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start and wait until ``/health`` answers 200; returns the seconds it took."""
        await self._create_database()
        command = [
            *coopfed_command(),
            "run",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--allow-private-addresses",
            *self.args,
        ]
        started = time.perf_counter()
        self.proc = spawn(command, self.log_path, self.env())
        deadline = started + timeout
        async with aiohttp.ClientSession() as session:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"node {self.name} exited at start:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.base_url + "/health") as resp:
                        if resp.status == 200:
                            self.startup_seconds = time.perf_counter() - started
                            return self.startup_seconds
                await asyncio.sleep(0.02)
        raise RuntimeError(f"node {self.name} not up after {timeout} s:\n{self.log_tail()}")

    def start_workers(self, count: int) -> None:
        """Extra ``coopfed worker`` processes against the node's database."""
        for _ in range(count):
            command = [*coopfed_command(), "worker", "--data-dir", str(self.data_dir)]
            self.workers.append(spawn(command, self.data_dir / "worker.log", self.env()))

    def stop(self) -> None:
        for proc in [*self.workers, *([self.proc] if self.proc else [])]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in [*self.workers, *([self.proc] if self.proc else [])]:
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.workers = []
        self.proc = None

    def cleanup(self) -> None:
        """Stop the node and remove its data directory (and the database it was given)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._db_url:
            dbname = self._db_url.split("?", 1)[0].rsplit("/", 1)[1]

            async def drop() -> None:
                conn = await asyncpg.connect(self.database_url)
                try:
                    await conn.execute(f"DROP DATABASE IF EXISTS {dbname}")
                finally:
                    await conn.close()

            # A thread of its own: callers may be inside a running event loop.
            with ThreadPoolExecutor(max_workers=1) as executor:
                executor.submit(asyncio.run, drop()).result(timeout=60)
            self._db_url = ""

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- database --

    def dsn(self) -> str:
        if self._db_url:
            return self._db_url
        dsn = running_dsn(self.data_dir / "postgres")
        if dsn is None:
            raise RuntimeError(f"node {self.name}: its PostgreSQL is not running")
        return dsn

    @contextlib.asynccontextmanager
    async def db(self) -> Any:
        conn = await asyncpg.connect(self.dsn())
        try:
            yield conn
        finally:
            await conn.close()

    # -- memory --

    def memory(self) -> Memory:
        if self.proc is None:
            return Memory()
        pid = self.proc.pid
        postgres = [p for p in children_of(pid) if process_name(p).startswith("postgres")]
        return Memory(
            node_rss_mb=rss_mb(pid),
            workers_rss_mb=sum(rss_mb(w.pid) for w in self.workers if w.poll() is None),
            postgres_pss_mb=sum(pss_mb(p) for p in postgres),
        )

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the node's Python process(es) and its PostgreSQL."""
        if self.proc is None:
            return {"node": 0.0, "postgres": 0.0}
        pid = self.proc.pid
        postgres = [p for p in children_of(pid) if process_name(p).startswith("postgres")]
        return {
            "node": cpu_seconds(pid) + sum(cpu_seconds(w.pid) for w in self.workers),
            "postgres": sum(cpu_seconds(p) for p in postgres),
        }

    # -- C2S --

    async def create_token(self) -> str:
        proc = await asyncio.create_subprocess_exec(
            *coopfed_command(),
            "token",
            "create",
            f"bench-{uuid.uuid4().hex[:6]}",
            "--data-dir",
            str(self.data_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(),
            cwd=ROOT,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        if proc.returncode != 0:
            raise RuntimeError(f"coopfed token create failed: {err.decode()}")
        return out.decode().strip().splitlines()[0]

    async def public_key_pem(self) -> tuple[str, str]:
        """The coop actor's (keyId, PEM), read from its actor document."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.actor_url, headers={"Accept": "application/activity+json"}) as resp,
        ):
            document = orjson.loads(await resp.read())
        key = document["publicKey"]
        return str(key["id"]), str(key["publicKeyPem"])


class Profiler:
    """``py-spy record`` of a node's Python process while the block runs (optional:
    ``pip install py-spy``; needs ptrace rights).  Collapsed stacks go to ``path``."""

    def __init__(self, node: NodeProcess, path: Path | None) -> None:
        self.node = node
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if self.path is None or self.node.proc is None:
            return self
        if not Path(spy).exists():
            say("py-spy is not installed (pip install py-spy): not profiling")
            return self
        command = [spy, "record", "--pid", str(self.node.proc.pid), "--rate", "200"]
        command += ["--format", "raw", "--output", str(self.path), "--nonblocking"]
        if os.environ.get("BENCH_PROFILE_NATIVE"):
            command.append("--native")
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            say(f"profile written to {self.path}")


class MemorySampler:
    """The peak memory of a node, sampled every ``interval`` seconds while running."""

    def __init__(self, node: NodeProcess, interval: float = 0.25) -> None:
        self.node = node
        self.interval = interval
        self.peak = Memory()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        for _ in range(100_000):  # bounded: ~7 h at 0.25 s
            self.peak = self.peak.peak(self.node.memory())
            await asyncio.sleep(self.interval)

    def __enter__(self) -> MemorySampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.peak = self.peak.peak(self.node.memory())


# -- remote actors and signed requests -------------------------------------------------


@dataclass
class RemoteActor:
    uri: str
    key_id: str
    key_index: int


class ActorPool:
    """``count`` remote actors on one 127.0.0.1 host, sharing ``keys`` RSA-2048 keys.

    Generating an RSA key costs ~50 ms, so actors share a few keys; each actor
    still has its own URI and keyId (the node looks keys up by keyId).
    """

    def __init__(self, base_url: str, count: int, keys: int = 8, prefix: str = "a") -> None:
        self.base_url = base_url
        self.private_pems = [dump_private_key_pem(generate_private_key()) for _ in range(keys)]
        self.private_keys: list[RSAPrivateKey] = [load_private_key(p) for p in self.private_pems]
        self.public_pems = [dump_public_key_pem(k) for k in self.private_keys]
        self.actors = [
            RemoteActor(
                uri=f"{base_url}/users/{prefix}{i}",
                key_id=f"{base_url}/users/{prefix}{i}#main-key",
                key_index=i % keys,
            )
            for i in range(count)
        ]
        self.by_name = {a.uri.rsplit("/", 1)[1]: a for a in self.actors}

    def document(self, actor: RemoteActor) -> dict[str, Any]:
        name = actor.uri.rsplit("/", 1)[1]
        return {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": actor.uri,
            "type": "Person",
            "preferredUsername": name,
            "name": f"Bench actor {name}",
            "inbox": actor.uri + "/inbox",
            "outbox": actor.uri + "/outbox",
            "followers": actor.uri + "/followers",
            "endpoints": {"sharedInbox": self.base_url + "/inbox"},
            "publicKey": {
                "id": actor.key_id,
                "owner": actor.uri,
                "publicKeyPem": self.public_pems[actor.key_index],
            },
        }

    def keys_by_key_id(self) -> dict[str, str]:
        return {a.key_id: self.public_pems[a.key_index] for a in self.actors}

    def signer(self, actor: RemoteActor) -> Signer:
        return Signer(key_id=actor.key_id, private_key=self.private_keys[actor.key_index])

    async def seed(
        self, conn: asyncpg.Connection, actors: Sequence[RemoteActor] | None = None
    ) -> None:
        """Cache actors (and their keys) in a node's database, as a fetch would."""
        now = datetime.now(UTC)
        rows = []
        for actor in self.actors if actors is None else actors:
            doc = self.document(actor)
            rows.append(
                (
                    actor.uri,
                    f"{LOCALHOST}:{self.base_url.rsplit(':', 1)[1]}",
                    "Person",
                    doc["preferredUsername"],
                    doc["name"],
                    doc["inbox"],
                    doc["endpoints"]["sharedInbox"],
                    doc["followers"],
                    actor.key_id,
                    self.public_pems[actor.key_index],
                    orjson.dumps(doc).decode(),
                    now,
                )
            )
        await conn.executemany(
            """INSERT INTO remote_actors (uri, host, type, username, name, inbox, shared_inbox,
                   followers_url, key_id, public_key_pem, document, fetched_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)
               ON CONFLICT (uri) DO NOTHING""",
            rows,
        )


class ActorHost:
    """Serves an ``ActorPool``'s actor documents (the node fetches unknown keys here)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://{LOCALHOST}:{self.port}"
        self.pool: ActorPool | None = None
        self.fetches = 0
        self._runner: web.AppRunner | None = None

    async def _actor(self, request: web.Request) -> web.Response:
        assert self.pool is not None
        actor = self.pool.by_name.get(request.match_info["name"])
        if actor is None:
            return web.Response(status=404)
        self.fetches += 1
        return web.Response(
            body=orjson.dumps(self.pool.document(actor)),
            content_type="application/activity+json",
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOCALHOST, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def note_create(actor: RemoteActor, serial: str, audience: str, size: int = 1500) -> dict[str, Any]:
    """A Mastodon-shaped ``Create`` of a public ``Note`` that mentions ``audience``."""
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    note_id = f"{actor.uri}/statuses/{serial}"
    words = "Our coop has surplus seedlings and spare van capacity this week. "
    content = "<p>" + (words * (size // len(words) + 1))[:size] + "</p>"
    note = {
        "id": note_id,
        "type": "Note",
        "attributedTo": actor.uri,
        "content": content,
        "published": now,
        "url": note_id,
        "to": [PUBLIC],
        "cc": [actor.uri + "/followers", audience],
        "tag": [{"type": "Mention", "href": audience}],
        "sensitive": False,
    }
    return {
        "@context": [AS, {"sensitive": "as:sensitive"}],
        "id": note_id + "/activity",
        "type": "Create",
        "actor": actor.uri,
        "published": now,
        "to": [PUBLIC],
        "cc": [actor.uri + "/followers", audience],
        "object": note,
    }


def _raw_request(host_port: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sign_posts(
    pool: ActorPool,
    items: Sequence[tuple[RemoteActor, dict[str, Any]]],
    target_url: str,
    threads: int | None = None,
) -> list[bytes]:
    """Raw HTTP/1.1 POSTs of ``items`` to ``target_url``, each signed by its actor.

    Signing happens here, before any clock starts (RSA releases the GIL, so
    threads use every core).  The signed Host is the target's.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(target_url)
    host_port = parts.netloc
    path = parts.path or "/"

    def one(item: tuple[RemoteActor, dict[str, Any]]) -> bytes:
        actor, activity = item
        body = orjson.dumps(activity)
        headers = sign_request(
            method="POST",
            url=target_url,
            headers={
                "User-Agent": "coopfed-bench/1 (+http://127.0.0.1/)",
                "Content-Type": "application/activity+json",
            },
            body=body,
            signer=pool.signer(actor),
            now=datetime.now(UTC),
        )
        return _raw_request(host_port, path, headers, body)

    with ThreadPoolExecutor(max_workers=threads or cores()) as executor:
        return list(executor.map(one, items, chunksize=256))


# -- the load client --------------------------------------------------------------------


@dataclass
class LoadResult:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed: float = 0.0
    started_at: float = 0.0  # time.time() at the first request
    latencies: list[float] = field(default_factory=list)

    def per_second(self, status: int) -> float:
        return rate(self.statuses[status], self.elapsed)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sent": self.sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "seconds": round(self.elapsed, 3),
        }
        if self.latencies:
            out["response_ms"] = {
                "p50": round(percentile(self.latencies, 50) * 1000, 2),
                "p99": round(percentile(self.latencies, 99) * 1000, 2),
            }
        return out


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not expected")
    if length:
        await reader.readexactly(length)
    return status, close


async def post_all(
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    time_limit: float,
    per_second: float | None = None,
    host_header: str | None = None,
) -> LoadResult:
    """Send every request over ``concurrency`` keep-alive connections to ``port``.

    Closed loop by default (each connection sends its next request when the answer
    came); with ``per_second``, request i is not sent before ``i / per_second`` s
    (open loop, for a steady background load).  Stops at ``time_limit`` seconds.
    ``host_header`` replaces the Host line (to replay a node's requests elsewhere).
    """
    result = LoadResult()
    if host_header is not None:
        requests = [_replace_host(r, host_header) for r in requests]
    cursor = 0
    start = time.perf_counter()
    result.started_at = time.time()
    deadline = start + time_limit

    async def connection() -> None:
        nonlocal cursor
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while cursor < len(requests) and time.perf_counter() < deadline:
                index = cursor
                cursor += 1
                if per_second:
                    delay = start + index / per_second - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if writer is None:
                    reader, writer = await asyncio.open_connection(LOCALHOST, port)
                assert reader is not None
                sent_at = time.perf_counter()
                writer.write(requests[index])
                result.sent += 1
                try:
                    status, close = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    result.errors += 1
                    writer.close()
                    writer = None
                    continue
                result.latencies.append(time.perf_counter() - sent_at)
                result.statuses[status] += 1
                if close:
                    writer.close()
                    writer = None
        finally:
            if writer is not None:
                writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


def _replace_host(request: bytes, host: str) -> bytes:
    head, sep, body = request.partition(b"\r\n\r\n")
    lines = [
        b"Host: " + host.encode() if line.lower().startswith(b"host:") else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + sep + body


# -- subprocess servers: the verify-only ceiling and the fan-out receiver ---------------


class ServerProcess:
    """``python bench/common.py <kind> ...`` as a subprocess; ready when it prints READY."""

    def __init__(self, kind: str, args: Sequence[str]) -> None:
        self.kind = kind
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"bench-{kind}-", suffix=".log")

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*bench_python(), self.kind, *self.args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
        )

    async def start(self, timeout: float = 30.0) -> None:
        self.proc = self._spawn()
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(
            loop.run_in_executor(None, self.proc.stdout.readline), timeout
        )
        if not line.startswith(b"READY"):
            self._log.seek(0)
            raise RuntimeError(f"{self.kind} did not start: {self._log.read().decode()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        self._log.close()


def write_keys(keys: dict[str, str]) -> Path:
    handle = tempfile.NamedTemporaryFile("w", prefix="bench-keys-", suffix=".json", delete=False)
    with handle:
        json.dump(keys, handle)
    return Path(handle.name)


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _load_keys(path: str) -> dict[str, Any]:
    return {
        key_id: load_public_key(pem) for key_id, pem in json.loads(Path(path).read_text()).items()
    }


async def _serve(app: web.Application, ports: Sequence[int]) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, LOCALHOST, port, backlog=1024).start()
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), 3600)  # bounded: an hour at most
    await runner.cleanup()


def ceiling_main(port: int, keys_path: str) -> None:
    """The verify-only ceiling: one uvloop aiohttp process that answers 202 after
    checking the Digest and one RSA-2048 signature of each request (the node's own
    parse/verify code), and stores nothing."""
    keys = _load_keys(keys_path)
    accepted = web.json_response({"status": "accepted"}, status=202).body

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            parsed = parse_signature(
                method="POST",
                target_uri=f"http://{request.host}{request.path_qs}",
                headers=request.headers,
            )
            key = keys[parsed.key_id]
            verify_signature(parsed, key, method="POST", body=body, now=datetime.now(UTC))
        except (SignatureError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=401)
        return web.Response(body=accepted, status=202, content_type="application/json")

    app = web.Application(client_max_size=1_048_576)
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/users/{name}/inbox", inbox)
    _install_uvloop()
    asyncio.run(_serve(app, [port]))


def receiver_main(ports: Sequence[int], keys_path: str) -> None:
    """The fan-out receiver: many hosts (one per port) in one uvloop process; each
    delivery's Digest and RSA signature are verified with the sender's key; counts
    and first/last times are served at ``GET /stats`` on any of its ports."""
    keys = _load_keys(keys_path)
    stats: dict[str, Any] = {"verified": 0, "failed": 0, "first": None, "last": None}
    reasons: Counter[str] = Counter()
    per_port: Counter[int] = Counter()

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            parsed = parse_signature(
                method="POST",
                target_uri=f"http://{request.host}{request.path_qs}",
                headers=request.headers,
            )
            key = keys[parsed.key_id]
            verify_signature(parsed, key, method="POST", body=body, now=datetime.now(UTC))
        except (SignatureError, KeyError) as exc:
            stats["failed"] += 1
            reasons[str(getattr(exc, "reason", "unknown_key"))] += 1
            return web.Response(status=401)
        now = time.time()
        stats["verified"] += 1
        stats["first"] = stats["first"] or now
        stats["last"] = now
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if sockname:
            per_port[int(sockname[1])] += 1
        return web.Response(status=202)

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response({**stats, "reasons": reasons, "hosts": len(per_port)})

    async def reset(request: web.Request) -> web.Response:
        stats.update(verified=0, failed=0, first=None, last=None)
        reasons.clear()
        per_port.clear()
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=1_048_576)
    app.router.add_post("/users/{name}/inbox", inbox)
    app.router.add_post("/inbox", inbox)
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/reset", reset)
    _install_uvloop()
    asyncio.run(_serve(app, ports))


# -- the signing ceiling -----------------------------------------------------------------


def _sign_loop(pem: str, seconds: float, start_at: float) -> int:
    key = load_private_key(pem)
    message = os.urandom(300)  # a signing string's size
    while time.time() < start_at:
        time.sleep(0.001)
    count = 0
    end = start_at + seconds
    while time.time() < end and count < 10_000_000:
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count


def sign_ceiling(seconds: float = 3.0, processes: int | None = None) -> dict[str, Any]:
    """RSA-2048 PKCS#1 v1.5 / SHA-256 signatures per second, one process per core."""
    processes = processes or cores()
    pem = dump_private_key_pem(generate_private_key())
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as executor:
        start_at = time.time() + 1.5  # every process loaded and waiting
        futures = [executor.submit(_sign_loop, pem, seconds, start_at) for _ in range(processes)]
        counts = [f.result() for f in futures]
    return {
        "processes": processes,
        "seconds": seconds,
        "signatures_per_second": rate(sum(counts), seconds),
        "per_process": [rate(c, seconds) for c in counts],
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@contextlib.contextmanager
def removing(path: Path) -> Iterator[Path]:
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description="bench helper servers (run by the benchmarks)")
    sub = parser.add_subparsers(dest="kind", required=True)
    ceiling = sub.add_parser("ceiling")
    ceiling.add_argument("--port", type=int, required=True)
    ceiling.add_argument("--keys", required=True)
    receiver = sub.add_parser("receiver")
    receiver.add_argument("--ports", required=True, help="comma-separated")
    receiver.add_argument("--keys", required=True)
    args = parser.parse_args(argv)
    if args.kind == "ceiling":
        ceiling_main(args.port, args.keys)
    else:
        receiver_main([int(p) for p in args.ports.split(",")], args.keys)


if __name__ == "__main__":
    main(sys.argv[1:])
