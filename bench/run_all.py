"""Every benchmark, one after the other, then one summary (text and JSON).

    python3 dev.py bench all [--quick] [--repeat 3] [--wait-idle 300] [--max-load 1.5]

Each benchmark runs in its own process, as ``python bench/<name>.py`` would, with
its defaults (``--quick``: smaller counts, a few minutes in all).  Before each one,
with ``--wait-idle``, it waits (at most that many seconds) for the 1-minute load
average to fall below ``--max-load``; the load is recorded next to every figure.
With ``--repeat N`` each benchmark runs N times and the summary gives the median
(and the range) of its key figures: on a shared machine one run can be off.
The summary is also written to ``bench/results/all.json``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout
import footprint
import latency
from common import RESULTS_DIR, base_parser, emit, header, load_average, say

import inbox

BENCHES = {"inbox": inbox, "fanout": fanout, "latency": latency, "footprint": footprint}
QUICK = {
    "inbox": ["--actors", "300", "--requests", "5000"],
    "fanout": ["--followers", "100,1000"],
    "latency": ["--posts", "50"],
    "footprint": ["--restarts", "2", "--inbox-requests", "3000", "--followers", "500"],
}
Getter = Callable[[dict[str, Any]], float]


def _largest_post(r: dict[str, Any]) -> dict[str, Any]:
    post: dict[str, Any] = r["node"]["posts"][-1]
    return post


# The figures summarised over repeats: name -> how to read it from a result.
KEY_FIGURES: dict[str, dict[str, Getter]] = {
    "inbox": {
        "ceiling_per_second": lambda r: r["ceiling"]["accepted_per_second"],
        "accepted_per_second": lambda r: r["node"]["cached_keys"]["accepted_per_second"],
        "processed_per_second": lambda r: r["node"]["cached_keys"]["processed_per_second"],
        "ratio_accepted": lambda r: r["ratio_accepted_to_ceiling"],
        "cold_accepted_per_second": lambda r: r["node"]["cold_keys"]["accepted_per_second"],
    },
    "fanout": {
        "signing_ceiling_per_second": lambda r: r["ceiling"]["signatures_per_second"],
        "deliveries_per_second_largest": lambda r: _largest_post(r)["deliveries_per_second"],
        "seconds_to_deliver_largest": lambda r: _largest_post(r)["seconds_to_deliver_all"],
        "ratio_deliveries": lambda r: r["ratio_deliveries_to_signing_ceiling"],
    },
    "latency": {
        "idle_p50_ms": lambda r: r["idle"]["latency_ms"]["p50"],
        "idle_p95_ms": lambda r: r["idle"]["latency_ms"]["p95"],
        "idle_p99_ms": lambda r: r["idle"]["latency_ms"]["p99"],
        "loaded_p50_ms": lambda r: r["under_inbox_load"]["latency_ms"]["p50"],
        "loaded_p95_ms": lambda r: r["under_inbox_load"]["latency_ms"]["p95"],
        "loaded_p99_ms": lambda r: r["under_inbox_load"]["latency_ms"]["p99"],
    },
    "footprint": {
        "restart_seconds": lambda r: r["startup"]["restart_median_seconds"],
        "idle_mb": lambda r: r["memory"]["idle"]["total_mb"],
        "inbox_load_mb": lambda r: r["memory"]["inbox_load"]["total_mb"],
        "fanout_load_mb": lambda r: r["memory"]["fanout_load"]["total_mb"],
    },
}


def summarise(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for figure, get in KEY_FIGURES[name].items():
        values = []
        for run in runs:
            try:
                values.append(float(get(run)))
            except (KeyError, IndexError, TypeError):
                continue
        if values:
            out[figure] = {
                "median": round(statistics.median(values), 3),
                "min": min(values),
                "max": max(values),
                "runs": values,
            }
    out["load_before"] = [run.get("load_before") for run in runs]
    return out


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller counts (a few minutes)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each benchmark (default 1)")
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
        runs = []
        for n in range(max(1, min(opts.repeat, 10))):
            say(f"running {' '.join(command[1:])} ({n + 1}/{opts.repeat})")
            started = time.perf_counter()
            done = subprocess.run(command, cwd=script.parent.parent)
            if done.returncode != 0:
                failed.append(f"{name}#{n + 1}")
                say(f"{name} failed with exit code {done.returncode}")
                continue
            result = orjson.loads((RESULTS_DIR / f"{name}.json").read_bytes())
            result["bench_seconds"] = round(time.perf_counter() - started, 1)
            runs.append(result)
            lines += [f"-- {name} run {n + 1} ({result['bench_seconds']} s)"]
            lines += module.lines_of(result)
        if runs:
            summary[name] = {"summary": summarise(name, runs), "runs": runs}
            lines.append(f"-- {name}: median of {len(runs)} run(s) [min .. max]")
            for figure, values in summary[name]["summary"].items():
                if isinstance(values, dict):
                    lines.append(
                        f"   {figure:<32} {values['median']:>10}  "
                        f"[{values['min']} .. {values['max']}]"
                    )
    summary["failed"] = failed
    summary["load_after"] = load_average()
    emit("all", summary, lines, opts.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
