"""Where a node's time goes: a py-spy profile (``--profile FILE``, collapsed stacks)
summed into parse, verify, database, HTTP server, HTTP client, signing, processing,
scheduling, the event loop's own C code with the socket calls, and other.

    .venv/bin/python bench/breakdown.py PROFILE [PROFILE ...]

Each sample is put in the category of its innermost frame that a rule below knows
(an ``isinstance`` inside the Digest check counts as verify, a ``json`` call inside
asyncpg as database).  Samples of an idle process (waiting in epoll) are left out.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

# (category, substrings of a frame "function (file:line)"), first match wins per frame.
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("signing", ("sign_request", "_rsa_sign", "signer_for")),
    (
        "verify",
        (
            "verify_signature",
            "(federation/digests.py",
            "parse_signature",
            "(inbox/verify.py",
            "(inbox/keyguard.py",
            "(federation/rfc9421.py",
            "(federation/httpsig.py",
        ),
    ),
    (
        "parse",
        ("orjson", "nesting_depth", "read_capped_body", "contains_nul", "read_head", "loads ("),
    ),
    ("database", ("(asyncpg/", "(federation/store/")),
    ("HTTP client", ("(aiohttp/client", "(aiohttp/connector", "(federation/client.py")),
    (
        "HTTP server",
        (
            "(aiohttp/web",
            "(aiohttp/http_",
            "(aiohttp/streams",
            "(aiohttp/helpers",
            "(multidict/",
            "(yarl/",
            "(coopfed/logs.py",
            "(federation/errors.py",
            "(federation/headers.py",
            "(inbox/routes.py",
            "(coopfed/app.py",
        ),
    ),
    (
        "processing (worker)",
        ("(inbox/dispatch", "(inbox/content", "(inbox/follow", "(inbox/market", "(outbox/"),
    ),
    ("scheduling", ("(asyncio/", "(uvloop", "(federation/jobs.py", "(concurrent/")),
]
# A leaf in the loop itself: uvloop's C code (socket reads and writes, callbacks).
LOOP = ("run_app (aiohttp/web.py", "run_until_complete", "run_forever")
IDLE = ("select (selectors.py", "_run_once", "run_forever (uvloop", "poll (")


def category(stack: str) -> str | None:
    frames = stack.split(";")
    leaf = frames[-1]
    if any(mark in leaf for mark in IDLE) and len(frames) <= 4:
        return None  # waiting for events
    if any(mark in leaf for mark in LOOP):
        return "event loop + sockets"
    for frame in reversed(frames):
        for name, marks in RULES:
            if any(mark in frame for mark in marks):
                return name
    return "other"


def breakdown(paths: list[Path]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    idle = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            found = category(stack)
            if found is None:
                idle += int(count)
            else:
                counts[found] += int(count)
    busy = sum(counts.values())
    shares = {name: round(100 * n / busy, 1) for name, n in counts.most_common()} if busy else {}
    return {"samples_busy": busy, "samples_idle": idle, "percent_of_busy": shares}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    result = breakdown([Path(p) for p in argv])
    print(f"{result['samples_busy']} busy samples ({result['samples_idle']} idle)")
    for name, share in result["percent_of_busy"].items():
        print(f"  {name:<20} {share:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
