"""The node under test: ``coopfed run`` as a subprocess (``NodeProcess``), and what
watches it while a benchmark runs (``Profiler``, ``MemorySampler``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from common import (
    LOCALHOST,
    ROOT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Memory,
    children_of,
    coopfed_command,
    cpu_seconds,
    free_port,
    process_name,
    pss_mb,
    rss_mb,
    say,
    spawn,
)

from coopfed.embedded_pg import running_dsn


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

    def _processes(self) -> tuple[list[int], list[int]]:
        """(the node's Python processes, its PostgreSQL processes): with
        ``--web-processes`` / ``--worker-processes`` the parent's children count too."""
        if self.proc is None:
            return [], []
        python, postgres = [self.proc.pid], []
        for pid in children_of(self.proc.pid):
            (postgres if process_name(pid).startswith("postgres") else python).append(pid)
        return python, postgres

    def memory(self) -> Memory:
        if self.proc is None:
            return Memory()
        python, postgres = self._processes()
        sizes = [rss_mb(pid) for pid in python]
        return Memory(
            node_rss_mb=sum(sizes),
            workers_rss_mb=sum(rss_mb(w.pid) for w in self.workers if w.poll() is None),
            postgres_pss_mb=sum(pss_mb(p) for p in postgres),
            largest_process_mb=max([*sizes, 0.0]),
            processes=len(python),
        )

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the node's Python process(es) and its PostgreSQL."""
        if self.proc is None:
            return {"node": 0.0, "postgres": 0.0}
        python, postgres = self._processes()
        return {
            "node": sum(cpu_seconds(p) for p in python)
            + sum(cpu_seconds(w.pid) for w in self.workers),
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
        command.append("--subprocesses")  # the children of --web-processes/--worker-processes
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
