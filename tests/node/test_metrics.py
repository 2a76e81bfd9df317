"""`GET /metrics` (Prometheus text 0.0.4), its access rule, and structured logs."""

from __future__ import annotations

import hashlib
import io
import logging
import sys
from collections.abc import Iterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from coopfed.cli.main import build_parser, resolve_settings
from coopfed.logs import JsonFormatter, configure_logging, request_log_middleware
from federation.credentials import is_loopback_client
from federation.metrics import CONTENT_TYPE, Gauges, Metrics, render_metrics
from federation.settings import Settings, SettingsError
from outbox.publish import post_note
from tests.support.fakepeer import FakePeer
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import accepted_follower, shared_inbox

EXPECTED = """\
# HELP coopfed_inbox_accepted_total Activities the inbox verified and stored (this process).
# TYPE coopfed_inbox_accepted_total counter
coopfed_inbox_accepted_total 3.0
# HELP coopfed_inbox_rejected_total Requests the inbox or a domain block refused, by reason.
# TYPE coopfed_inbox_rejected_total counter
coopfed_inbox_rejected_total{reason="bad \\"quoted\\"\\\\path\\n"} 1.0
coopfed_inbox_rejected_total{reason="too_large"} 2.0
# HELP coopfed_deliveries_total Delivery attempts by outcome (this process's workers).
# TYPE coopfed_deliveries_total counter
coopfed_deliveries_total{outcome="blocked"} 0.0
coopfed_deliveries_total{outcome="delivered"} 5.0
coopfed_deliveries_total{outcome="permanent"} 0.0
coopfed_deliveries_total{outcome="retry"} 0.0
coopfed_deliveries_total{outcome="skipped"} 0.0
# HELP coopfed_deliveries_queued_total Deliveries queued by this process (one per inbox).
# TYPE coopfed_deliveries_queued_total counter
coopfed_deliveries_queued_total 6.0
# HELP coopfed_jobs_retried_total Failed jobs scheduled again, by kind (this process's workers).
# TYPE coopfed_jobs_retried_total counter
coopfed_jobs_retried_total{kind="close_proposal"} 0.0
coopfed_jobs_retried_total{kind="deliver"} 4.0
coopfed_jobs_retried_total{kind="process_inbox"} 0.0
# HELP coopfed_queue_depth Jobs in the queue (due or waiting to retry), by kind.
# TYPE coopfed_queue_depth gauge
coopfed_queue_depth{kind="close_proposal"} 0.0
coopfed_queue_depth{kind="custom"} 7.0
coopfed_queue_depth{kind="deliver"} 2.0
coopfed_queue_depth{kind="process_inbox"} 0.0
# HELP coopfed_failed_jobs Jobs given up and kept in failed_jobs, by kind.
# TYPE coopfed_failed_jobs gauge
coopfed_failed_jobs{kind="close_proposal"} 0.0
coopfed_failed_jobs{kind="deliver"} 0.0
coopfed_failed_jobs{kind="process_inbox"} 1.0
# HELP coopfed_unavailable_hosts Hosts skipped after failing on too many days, until they revive.
# TYPE coopfed_unavailable_hosts gauge
coopfed_unavailable_hosts 1.0
# HELP coopfed_failing_hosts Hosts failing since their last success (unavailable ones too).
# TYPE coopfed_failing_hosts gauge
coopfed_failing_hosts 2.0
# HELP coopfed_followers Accepted followers of the node's actors.
# TYPE coopfed_followers gauge
coopfed_followers 10.0
# HELP coopfed_following Accepted follows of the node's actors.
# TYPE coopfed_following gauge
coopfed_following 4.0
"""


def test_render_metrics_is_the_prometheus_text_format() -> None:
    # Given counters and gauges
    metrics = Metrics(
        inbox_accepted=3,
        inbox_rejected={"too_large": 2, 'bad "quoted"\\path\n': 1},
        deliveries={"delivered": 5},
        deliveries_queued=6,
        jobs_retried={"deliver": 4},
    )
    gauges = Gauges(
        queue_depth={"deliver": 2, "custom": 7},
        failed_jobs={"process_inbox": 1},
        unavailable_hosts=1,
        failing_hosts=2,
        followers=10,
        following=4,
    )
    # Then every family has HELP and TYPE, labels are sorted, escaped, and the
    # known label values are present at 0
    assert render_metrics(metrics, gauges) == EXPECTED


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample line."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


async def scrape(
    http: aiohttp.ClientSession, node: RunningNode, headers: dict[str, str] | None = None
) -> tuple[int, str, aiohttp.ClientResponse]:
    async with http.get(f"{node.base_url}/metrics", headers=headers or {}) as resp:
        return resp.status, await resp.text(), resp


async def test_metrics_count_inbox_deliveries_retries_and_hosts(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    # Given a node that gives up on a host after one failing day and two attempts
    node = await nodes("a", unavailable_after_days=1, max_delivery_attempts=2)
    peer = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        # And a follower whose Accept is delivered, then whose server fails
        alice = peer.add_actor("alice")
        await accepted_follower(peer, alice, node)
        await node.drain()
        peer.inbox_status = 503
        # And one body the inbox refuses (wrong content type)
        async with http.post(
            shared_inbox(node), data=b"{}", headers={"Content-Type": "text/plain"}
        ) as resp:
            assert resp.status == 415
        # When the coop posts: attempt 1 fails (retry), the host is now unavailable,
        # attempt 2 is skipped and the job fails
        await post_note(node.ctx, await node.ctx.coop_actor(), "Anyone there?")

        async def failed_jobs() -> int:
            return int(await node.ctx.store.pool.fetchval("SELECT count(*) FROM failed_jobs"))

        await eventually(failed_jobs, message="the delivery is given up")
        await node.drain()
        # Then a loopback scrape answers the text format with every count
        status, text, resp = await scrape(http, node)
        assert status == 200
        assert resp.headers["Content-Type"] == CONTENT_TYPE
        values = samples(text)
        expected = {
            "coopfed_inbox_accepted_total": 1,
            'coopfed_inbox_rejected_total{reason="unsupported_media_type"}': 1,
            'coopfed_deliveries_total{outcome="delivered"}': 1,
            'coopfed_deliveries_total{outcome="retry"}': 1,
            'coopfed_deliveries_total{outcome="skipped"}': 1,
            'coopfed_deliveries_total{outcome="permanent"}': 0,
            "coopfed_deliveries_queued_total": 2,
            'coopfed_jobs_retried_total{kind="deliver"}': 1,
            'coopfed_jobs_retried_total{kind="process_inbox"}': 0,
            'coopfed_queue_depth{kind="deliver"}': 0,
            'coopfed_failed_jobs{kind="deliver"}': 1,
            "coopfed_unavailable_hosts": 1,
            "coopfed_failing_hosts": 1,
            "coopfed_followers": 1,
            "coopfed_following": 0,
        }
        assert {k: values.get(k) for k in expected} == expected
    finally:
        await peer.stop()


async def test_metrics_behind_a_proxy_need_an_api_token(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    # Given a request that came through a reverse proxy (on this machine)
    # When it carries no token, or an unknown one
    status, text, resp = await scrape(http, node, proxied)
    # Then 401 with a Bearer challenge, and no metrics
    assert status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="coopfed"'
    assert orjson.loads(text)["reason"] == "missing_token"
    status, text, resp = await scrape(http, node, proxied | {"Authorization": "Bearer nope"})
    assert status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="coopfed", error="invalid_token"'
    assert "coopfed_" not in text
    # When it carries an API token of the coop (as `coopfed token create` stores it)
    coop = await node.ctx.coop_actor()
    await node.ctx.store.add_token(coop.id, "prometheus", hashlib.sha256(b"s3cret").hexdigest())
    status, text, _ = await scrape(http, node, proxied | {"Authorization": "Bearer s3cret"})
    # Then it gets the metrics
    assert status == 200
    assert samples(text)["coopfed_followers"] == 0


@pytest.mark.parametrize(
    ("remote", "headers", "local"),
    [
        ("127.0.0.1", {}, True),
        ("127.8.9.1", {}, True),
        ("::1", {}, True),
        ("::ffff:127.0.0.1", {}, True),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, False),
        ("127.0.0.1", {"Forwarded": "for=198.51.100.1"}, False),
        ("127.0.0.1", {"X-Real-IP": "198.51.100.1"}, False),
        ("10.0.0.5", {}, False),
        ("::ffff:10.0.0.5", {}, False),
        ("2001:db8::1", {}, False),
        (None, {}, False),
        ("not-an-address", {}, False),
    ],
)
def test_loopback_clients(remote: str | None, headers: dict[str, str], local: bool) -> None:
    assert is_loopback_client(remote, headers) is local


# -- structured logs ------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_json_formatter_writes_one_object_a_line() -> None:
    # Given a record with extra fields and an exception
    logger = logging.getLogger("coopfed.test")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord(
            "coopfed.test",
            logging.WARNING,
            __file__,
            1,
            "delivery to %s failed",
            ("inbox",),
            exc_info=sys.exc_info(),
            extra={"host": "example.org", "attempt": 3, "since": object},
        )
    record.created = 0.25
    # When it is formatted as JSON
    line = JsonFormatter().format(record)
    # Then it is one line with time, level, logger, message, extras and the traceback
    assert "\n" not in line
    data = orjson.loads(line)
    assert data.pop("exc").splitlines()[-1] == "ValueError: boom"
    assert data == {
        "time": "1970-01-01T00:00:00.250Z",
        "level": "WARNING",
        "logger": "coopfed.test",
        "message": "delivery to inbox failed",
        "host": "example.org",
        "attempt": 3,
        "since": repr(object),
    }


def test_configure_logging_json_goes_to_stderr(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json")
    logging.getLogger("coopfed.test").info("hello", extra={"n": 1})
    err = capsys.readouterr().err.strip().splitlines()
    assert [{k: v for k, v in orjson.loads(x).items() if k != "time"} for x in err] == [
        {"level": "INFO", "logger": "coopfed.test", "message": "hello", "n": 1}
    ]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["run"], {}, "text"),
        (["run", "--log-format", "json"], {}, "json"),
        (["worker", "--log-format", "json"], {}, "json"),
        (["worker"], {"COOPFED_LOG_FORMAT": "json"}, "json"),
    ],
)
def test_log_format_flag_and_environment(
    argv: list[str], env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COOPFED_LOG_FORMAT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args([*argv, "--data-dir", "/nonexistent-coopfed"])
    assert resolve_settings(args, for_run=args.for_run).log_format == expected


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(SettingsError, match="log_format: 'xml' is not one of text, json"):
        Settings(log_format="xml")


async def test_request_log_middleware_logs_5xx_only(caplog: pytest.LogCaptureFixture) -> None:
    # Given an app whose routes answer 200, 503 and raise a 500
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503)

    async def broken(request: web.Request) -> web.Response:
        raise web.HTTPInternalServerError()

    app = web.Application(middlewares=[request_log_middleware])
    app.router.add_get("/ok", ok)
    app.router.add_get("/unavailable", unavailable)
    app.router.add_get("/broken", broken)
    caplog.set_level(logging.INFO, logger="coopfed.http")
    async with TestClient(TestServer(app)) as client:
        # When each is requested
        for path in ("/ok", "/unavailable", "/broken"):
            async with client.get(path):
                pass
    # Then the two failures are logged, with fields a log search can use
    logged = [r for r in caplog.records if r.name == "coopfed.http"]
    assert [r.getMessage() for r in logged] == [
        "GET /unavailable answered 503",
        "GET /broken answered 500",
    ]
    assert [(r.levelname, r.method, r.path, r.status) for r in logged] == [  # type: ignore[attr-defined]
        ("ERROR", "GET", "/unavailable", 503),
        ("ERROR", "GET", "/broken", 500),
    ]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.emit(logged[0])
    data = orjson.loads(buffer.getvalue())
    assert {k: data[k] for k in ("method", "path", "status", "remote")} == {
        "method": "GET",
        "path": "/unavailable",
        "status": 503,
        "remote": "127.0.0.1",
    }
    assert isinstance(data["duration_ms"], float)
