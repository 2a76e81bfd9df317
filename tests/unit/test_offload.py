"""federation.offload: calls run in a thread, in batches, each caller gets its own outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import pytest

import federation.offload as offload_module
from federation.httpsig import parse_signature, sign_request, verify_signature
from federation.keys import Signer, generate_private_key
from federation.offload import Offloader


async def test_calls_run_off_the_loop_thread_in_batches_with_their_own_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed_over: list[int] = []
    real_run_all = offload_module._run_all

    def counting_run_all(calls: list[Callable[[], object]]) -> list[tuple[bool, object]]:
        handed_over.append(len(calls))
        return real_run_all(calls)

    monkeypatch.setattr(offload_module, "_run_all", counting_run_all)
    offload = Offloader(threads=1)
    loop_thread = threading.get_ident()
    release = threading.Event()
    try:
        # Given a first call that holds the thread, and 49 more asked for meanwhile
        def call(n: int) -> tuple[int, int]:
            if n == 0:
                release.wait(5)
            return n * n, threading.get_ident()

        first = asyncio.ensure_future(offload.run(lambda: call(0)))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(offload.run(partial(call, n))) for n in range(1, 50)]
        await asyncio.sleep(0.05)
        release.set()
        results = [await first, *[await r for r in rest]]
        # Then each caller got its own result, computed in another thread
        assert [r[0] for r in results] == [n * n for n in range(50)]
        assert all(r[1] != loop_thread for r in results)
        # And the 49 waiting calls were handed over together, in one batch
        assert handed_over == [1, 49]
    finally:
        release.set()
        offload.close()


async def test_an_exception_reaches_only_its_caller() -> None:
    offload = Offloader()
    try:

        def boom() -> int:
            raise ValueError("bad key")

        ok, bad = await asyncio.gather(
            offload.run(lambda: 1), offload.run(boom), return_exceptions=True
        )
        assert ok == 1
        assert isinstance(bad, ValueError) and str(bad) == "bad key"
    finally:
        offload.close()


async def test_a_signature_made_in_the_thread_verifies() -> None:
    offload = Offloader()
    key = generate_private_key()
    signer = Signer(key_id="https://a.example/users/coop#main-key", private_key=key)
    now = datetime.now(UTC)
    body = b'{"type": "Create"}'
    try:
        headers = await offload.run(
            lambda: sign_request(
                method="POST",
                url="https://b.example/inbox",
                headers={"Content-Type": "application/activity+json"},
                body=body,
                signer=signer,
                now=now,
            )
        )
    finally:
        offload.close()
    parsed = parse_signature(method="POST", target_uri="https://b.example/inbox", headers=headers)
    verify_signature(parsed, key.public_key(), method="POST", body=body, now=now)
    with pytest.raises(Exception):  # noqa: B017 (any refusal: the body was changed)
        verify_signature(parsed, key.public_key(), method="POST", body=body + b" ", now=now)


async def test_a_call_made_as_the_last_batch_ends_is_still_run() -> None:
    # Given a call that has just been answered: its caller wakes up before the
    # finished flusher's own bookkeeping has run
    offload = Offloader(threads=1)
    try:
        async with asyncio.timeout(5):
            assert await offload.run(lambda: 1) == 1
            # When the caller asks again at once, in the same task (as a delivery job
            # does when it signs the RFC 9421 retry right after the first signature)
            second = await offload.run(lambda: 2)
        # Then that call is run too, not left waiting for a flusher that has ended
        assert second == 2
    finally:
        offload.close()
