"""Every benchmark, one after the other, then one summary (text and JSON).

    python3 dev.py bench all [--quick] [--wait-idle 300] [--max-load 1.5]

Each benchmark runs in its own process, as ``python bench/<name>.py`` would, with
its defaults (``--quick``: smaller counts, a few minutes in all).  Before each one,
with ``--wait-idle``, it waits (at most that many seconds) for the 1-minute load
average to fall below ``--max-load``; the load is recorded next to every figure.
The summary is also written to ``bench/results/all.json``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout
import footprint
import latency
from common import RESULTS_DIR, base_parser, emit, header, say

import inbox

BENCHES = {"inbox": inbox, "fanout": fanout, "latency": latency, "footprint": footprint}
QUICK = {
    "inbox": ["--actors", "300", "--requests", "5000"],
    "fanout": ["--followers", "100,1000"],
    "latency": ["--posts", "50"],
    "footprint": ["--restarts", "2", "--inbox-requests", "3000", "--followers", "500"],
}


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller counts (a few minutes)")
    p.add_argument(
        "--only", default=",".join(BENCHES), help="comma-separated subset (default: all)"
    )
    opts = p.parse_args(argv)
    common = ["--max-load", str(opts.max_load), "--wait-idle", str(opts.wait_idle)]
    if opts.database_url:
        common += ["--database-url", opts.database_url]
    summary: dict[str, Any] = header("all benchmarks")
    lines: list[str] = []
    failed = []
    for name in opts.only.split(","):
        module = BENCHES[name]
        script = Path(module.__file__ or "").resolve()
        command = [sys.executable, str(script), *common, *(QUICK[name] if opts.quick else [])]
        say(f"running {' '.join(command[1:])}")
        started = time.perf_counter()
        done = subprocess.run(command, cwd=script.parent.parent)
        if done.returncode != 0:
            failed.append(name)
            say(f"{name} failed with exit code {done.returncode}")
            continue
        result = orjson.loads((RESULTS_DIR / f"{name}.json").read_bytes())
        result["bench_seconds"] = round(time.perf_counter() - started, 1)
        summary[name] = result
        lines += [f"-- {name} ({result['bench_seconds']} s)", *module.lines_of(result)]
    summary["failed"] = failed
    emit("all", summary, lines, opts.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
