"""Shared machinery of the coopfed benchmarks (plain Python, 127.0.0.1 only):
machine facts, load average, text and JSON output, ports, processes and their
memory (from ``/proc``: RSS of the node's Python process, PSS of its PostgreSQL).

The node under test is in ``node.py``, the remote actors and the load client in
``peers.py``, the helper servers in ``servers.py``.  Every loop has a count and
a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from coopfed.embedded_pg import find_bindir  # noqa: E402

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
    """The command that runs the helper servers of ``bench/servers.py``."""
    return [sys.executable, str(Path(__file__).resolve().with_name("servers.py"))]


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
    largest_process_mb: float = 0.0  # the largest of the node's Python processes
    processes: int = 1  # how many Python processes node_rss_mb adds up

    @property
    def total_mb(self) -> float:
        return self.node_rss_mb + self.workers_rss_mb + self.postgres_pss_mb

    def as_dict(self) -> dict[str, float]:
        return {
            "node_rss_mb": round(self.node_rss_mb, 1),
            "workers_rss_mb": round(self.workers_rss_mb, 1),
            "postgres_pss_mb": round(self.postgres_pss_mb, 1),
            "largest_process_mb": round(self.largest_process_mb, 1),
            "processes": self.processes,
            "total_mb": round(self.total_mb, 1),
        }

    def peak(self, other: Memory) -> Memory:
        return Memory(
            max(self.node_rss_mb, other.node_rss_mb),
            max(self.workers_rss_mb, other.workers_rss_mb),
            max(self.postgres_pss_mb, other.postgres_pss_mb),
            max(self.largest_process_mb, other.largest_process_mb),
            max(self.processes, other.processes),
        )


def install_uvloop() -> None:
    """uvloop for the bench's own processes, when it is installed."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
