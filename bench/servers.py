"""Helper servers the benchmarks run as subprocesses (``python bench/servers.py
ceiling|receiver``): the verify-only ceiling and the fan-out receiver; and the
signing ceiling on all cores."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from common import LOCALHOST, ROOT, bench_python, cores, install_uvloop, rate
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from federation.httpsig import (
    SignatureError,
    parse_signature,
    sign_request,
    verify_signature,
)
from federation.keys import (
    Signer,
    dump_private_key_pem,
    generate_private_key,
    load_private_key,
    load_public_key,
)

# -- subprocess servers: the verify-only ceiling and the fan-out receiver ---------------


class ServerProcess:
    """``python bench/servers.py <kind> ...`` as a subprocess; ready when it prints READY."""

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
    install_uvloop()
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
    install_uvloop()
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


# -- the bare sender: what any sender could do with these receivers on these cores --------


async def _bare_send(signer: Signer, urls: Sequence[str], body: bytes, concurrency: int) -> int:
    import aiohttp

    sent = 0
    queue = list(reversed(urls))
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_lane() -> None:
            nonlocal sent
            while queue:
                url = queue.pop()
                headers = sign_request(
                    method="POST",
                    url=url,
                    headers={"Content-Type": "application/activity+json"},
                    body=body,
                    signer=signer,
                    now=datetime.now(UTC),
                )
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    sent += resp.status == 202

        await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return sent


def _bare_sender(
    pem: str, key_id: str, urls: Sequence[str], body: bytes, concurrency: int, start_at: float
) -> tuple[int, float]:
    signer = Signer(key_id=key_id, private_key=load_private_key(pem))
    install_uvloop()
    while time.time() < start_at:
        time.sleep(0.001)
    sent = asyncio.run(_bare_send(signer, urls, body, concurrency))
    return sent, time.time()


def bare_send(
    pem: str, key_id: str, urls: Sequence[str], body: bytes, concurrency: int = 32
) -> dict[str, Any]:
    """Deliveries per second of a sender that does nothing but sign (the node's own
    ``sign_request``) and POST with aiohttp, one process per core, shared-nothing: no
    queue, no database, nothing durable.  What no real sender can beat here."""
    processes = cores()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as executor:
        start_at = time.time() + 1.5  # every process loaded and waiting
        futures = [
            executor.submit(
                _bare_sender, pem, key_id, urls[i::processes], body, concurrency, start_at
            )
            for i in range(processes)
        ]
        results = [f.result() for f in futures]
    sent = sum(r[0] for r in results)
    seconds = max(r[1] for r in results) - start_at
    return {
        "processes": processes,
        "deliveries": sent,
        "seconds": round(seconds, 3),
        "deliveries_per_second": rate(sent, seconds),
        "what": "sign + POST only, one process per core, no queue or database",
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
