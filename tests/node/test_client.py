"""SignedClient against real aiohttp servers on 127.0.0.1 (no mocked network)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from federation.client import (
    AP_ACCEPT,
    JRD_ACCEPT,
    FetchError,
    PostResult,
    SignedClient,
    create_session,
    host_header,
)
from federation.httpsig import SignatureError, parse_signature, verify_signature
from federation.keys import Signer
from federation.netguard import AddressGuard, DomainBlocks

UA = "coopfed/0.1 (+https://coop.example/)"
AP_JSON = "application/activity+json"
ACTOR = {"id": "https://coop.example/users/a", "type": "Organization"}
CODES = (401, 404, 410, 429, 500, 501, 503)  # 429 and 5xx but 501 are temporary
STRICT = AddressGuard(allow_private=False)
SHORT = aiohttp.ClientTimeout(total=0.5)


@dataclass
class Remote:
    """A remote server: records every request and how its signature verified."""

    server: TestServer
    requests: list[web.Request] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/doc", /, **query: str | int) -> str:
        return str(self.server.make_url(path).with_query(query))


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def signer(private_key: rsa.RSAPrivateKey) -> Signer:
    return Signer(key_id="https://coop.example/users/a#main-key", private_key=private_key)


def _build_app(remote: Remote, public_key: rsa.RSAPublicKey) -> web.Application:
    """One GET route (/doc) and one POST route (/inbox), steered by query parameters."""

    async def verify(request: web.Request) -> str:
        try:
            parsed = parse_signature(
                method=request.method, target_uri=str(request.url), headers=request.headers
            )
            body = await request.read()
            now = datetime.now(UTC)
            verify_signature(parsed, public_key, method=request.method, body=body, now=now)
        except SignatureError as exc:
            return f"bad:{exc.reason}"
        return f"ok:{parsed.scheme}"

    async def doc(request: web.Request) -> web.StreamResponse:
        remote.requests.append(request)
        if "Signature" in request.headers:
            remote.verdicts.append(await verify(request))
        q = request.query
        if "hops" in q and int(q["hops"]) > 0:
            left = int(q["hops"]) - 1  # alternate relative and absolute Locations
            raise web.HTTPFound(f"/doc?hops={left}" if left % 2 else remote.url(hops=left))
        if "to" in q:
            raise web.HTTPMovedPermanently(q["to"])
        if "slow" in q:
            await remote.release.wait()  # set when the test ends
        headers = {"Content-Type": q.get("ct", AP_JSON)}
        if "stream" in q:  # chunked, no Content-Length
            resp = web.StreamResponse(headers=headers)
            await resp.prepare(request)
            await resp.write(b'{"pad": "' + b"x" * int(q["stream"]) + b'"}')
            await resp.write_eof()
            return resp
        body = orjson.dumps({**ACTOR, "pad": "x" * int(q.get("pad", "0"))} if "pad" in q else ACTOR)
        body = {"array": b"[1]", "garbage": b"{not json"}.get(q.get("raw", ""), body)
        return web.Response(body=body, status=int(q.get("status", "200")), headers=headers)

    async def inbox(request: web.Request) -> web.Response:
        remote.requests.append(request)
        remote.verdicts.append(await verify(request))
        q = request.query
        if "slow" in q:
            await remote.release.wait()  # set when the test ends
        if "status" in q:
            code = int(q["status"])
            return web.Response(status=code, headers={"Location": "/x"} if code < 400 else None)
        return web.Response(status=202 if remote.verdicts[-1] == f"ok:{q['want']}" else 401)

    app = web.Application()
    app.router.add_get("/doc", doc)
    app.router.add_post("/inbox", inbox)
    return app


@pytest.fixture
async def remote(private_key: rsa.RSAPrivateKey) -> AsyncIterator[Remote]:
    remote = Remote(server=None)  # type: ignore[arg-type]
    server = TestServer(_build_app(remote, private_key.public_key()), host="127.0.0.1")
    remote.server = server
    await server.start_server()
    try:
        yield remote
    finally:
        remote.release.set()
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    session = create_session(guard=AddressGuard(allow_private=True))
    try:
        yield session
    finally:
        await session.close()


def make_client(session: aiohttp.ClientSession, **options: Any) -> SignedClient:
    options.setdefault("guard", AddressGuard(allow_private=True))
    options.setdefault("blocks", DomainBlocks())
    return SignedClient(session=session, user_agent=UA, **options)


async def fetch_error(client: SignedClient, url: str, accept: str = AP_ACCEPT) -> FetchError:
    with pytest.raises(FetchError) as info:
        await client.fetch_json(url, signer=None, accept=accept)
    return info.value


# --------------------------------------------------------------------------- fetch_json


async def test_fetch_unsigned(remote: Remote, session: aiohttp.ClientSession) -> None:
    client = make_client(session)
    assert await client.fetch_json(remote.url() + "#main-key", signer=None) == ACTOR
    (request,) = remote.requests
    assert request.headers["User-Agent"] == UA
    assert request.headers["Accept"] == AP_ACCEPT
    assert request.headers["Host"] == f"127.0.0.1:{remote.server.port}"
    assert "Signature" not in request.headers
    assert request.path_qs == "/doc"


async def test_fetch_signed_verifies(
    remote: Remote, session: aiohttp.ClientSession, signer: Signer
) -> None:
    client = make_client(session)
    assert await client.fetch_json(remote.url(page=1, x=" y"), signer=signer) == ACTOR
    assert remote.verdicts == ["ok:cavage"]
    signature = remote.requests[0].headers["Signature"]
    assert 'keyId="https://coop.example/users/a#main-key"' in signature
    assert 'headers="(request-target) host date"' in signature


@pytest.mark.parametrize(
    ("content_type", "accept", "ok"),
    [
        (AP_JSON, AP_ACCEPT, True),
        ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', AP_ACCEPT, True),
        ("application/ld+json", AP_ACCEPT, True),
        ("application/json; charset=utf-8", AP_ACCEPT, True),
        ("Application/Activity+JSON; charset=utf-8", AP_ACCEPT, True),
        ("application/jrd+json", JRD_ACCEPT, True),
        ("application/json", JRD_ACCEPT, True),
        ("text/html", AP_ACCEPT, False),
        ("application/jrd+json", AP_ACCEPT, False),
        ("application/activity+json", JRD_ACCEPT, False),
        ("application/octet-stream", AP_ACCEPT, False),
    ],
)
async def test_fetch_content_types(
    remote: Remote, session: aiohttp.ClientSession, content_type: str, accept: str, ok: bool
) -> None:
    client = make_client(session)
    url = remote.url(ct=content_type)
    if ok:
        assert await client.fetch_json(url, signer=None, accept=accept) == ACTOR
        assert remote.requests[0].headers["Accept"] == accept
    else:
        error = await fetch_error(client, url, accept=accept)
        assert (error.reason, error.status, error.temporary) == ("bad_content_type", 200, False)


@pytest.mark.parametrize("hops", [1, 2, 3])
async def test_redirects_followed_up_to_three(
    remote: Remote, session: aiohttp.ClientSession, signer: Signer, hops: int
) -> None:
    client = make_client(session)
    assert await client.fetch_json(remote.url(hops=hops), signer=signer) == ACTOR
    assert [r.path_qs for r in remote.requests] == [f"/doc?hops={n}" for n in range(hops, -1, -1)]
    assert remote.verdicts == ["ok:cavage"] * (hops + 1)  # each hop signed for its own URL


async def test_redirect_chain_of_four_refused(
    remote: Remote, session: aiohttp.ClientSession
) -> None:
    client = make_client(session)
    url = remote.url(hops=4)
    error = await fetch_error(client, url)
    assert (error.reason, error.url, error.temporary) == ("too_many_redirects", url, False)
    assert [r.path_qs for r in remote.requests] == [f"/doc?hops={n}" for n in (4, 3, 2, 1)]
    error = await fetch_error(make_client(session, max_redirects=0), remote.url(hops=1))
    assert error.reason == "too_many_redirects"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
        ("http://127.0.0.2:{port}/doc", "blocked_address"),
        ("http://[::1]:{port}/doc", "blocked_address"),
        ("http://10.0.0.1/", "blocked_address"),
        ("file:///etc/passwd", "blocked_address"),
        ("http://user@127.0.0.1:{port}/doc", "blocked_address"),
        ("https://a.blocked.example/x", "blocked_domain"),
    ],
)
async def test_redirect_to_blocked_target_refused(
    remote: Remote, session: aiohttp.ClientSession, target: str, reason: str
) -> None:
    # Only our test server's address is allowed; the rest of private space is not.
    guard = AddressGuard(allow_private=False, allow_networks=["127.0.0.1/32"])
    client = make_client(session, guard=guard, blocks=DomainBlocks(["blocked.example"]))
    target = target.format(port=remote.server.port)
    error = await fetch_error(client, remote.url(to=target))
    assert (error.reason, error.url) == (reason, remote.url(to=target))
    assert target in error.detail
    assert len(remote.requests) == 1


@pytest.mark.parametrize(
    ("url", "reason", "strict"),
    [
        # A name resolving to a refused address fails at connect time (GuardedResolver).
        ("http://localhost:{port}/doc", "blocked_address", True),
        # Literal IPs never reach the resolver: check_url refuses them.
        ("http://127.0.0.1:{port}/doc", "blocked_address", True),
        ("http://A.Blocked.Example:{port}/doc", "blocked_domain", False),
        ("file:///etc/passwd", "blocked_address", False),
        ("http://127.0.0.1:{closed}/doc", "connection", False),
    ],
)
async def test_fetch_refused_before_any_request(
    remote: Remote, url: str, reason: str, strict: bool
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    guard = AddressGuard(allow_private=not strict)
    session = create_session(guard=guard)
    try:
        client = make_client(session, guard=guard, blocks=DomainBlocks(["blocked.example"]))
        error = await fetch_error(client, url.format(port=remote.server.port, closed=closed))
    finally:
        await session.close()
    assert (error.reason, error.status, error.temporary) == (reason, None, reason == "connection")
    assert error.detail
    assert remote.requests == []


@pytest.mark.parametrize(
    ("query", "expected"),  # expected: reason, status, temporary
    [
        ({"pad": 2_000_000}, ("too_large", 200, False)),
        ({"stream": 2_000_000}, ("too_large", 200, False)),  # chunked, no Content-Length
        ({"raw": "array"}, ("bad_json", 200, False)),
        ({"raw": "garbage"}, ("bad_json", 200, False)),
        ({"slow": 1}, ("timeout", None, True)),
        *(({"status": code}, ("http_status", code, code in (429, 500, 503))) for code in CODES),
    ],
)
async def test_fetch_errors(
    remote: Remote, session: aiohttp.ClientSession, query: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    client = make_client(session, timeout=SHORT)
    async with asyncio.timeout(2):  # the client's own timeout must fire first
        error = await fetch_error(client, remote.url(**query))
    assert (error.reason, error.status, error.temporary) == expected
    assert error.url == remote.url(**query)


async def test_body_cap_is_configurable(remote: Remote, session: aiohttp.ClientSession) -> None:
    error = await fetch_error(make_client(session, max_body=10), remote.url())
    assert error.reason == "too_large"  # even a small actor
    client = make_client(session, max_body=4_000_000)
    assert len((await client.fetch_json(remote.url(pad=2_000_000), signer=None))["pad"]) > 1e6


def test_host_header_has_no_default_port() -> None:
    cases = {
        "https://Coop.Example:443/x": "coop.example",
        "http://coop.example:80/x": "coop.example",
        "https://coop.example:8443/x": "coop.example:8443",
        "http://[::1]:8080/": "[::1]:8080",
        "https://bücher.example/": "xn--bcher-kva.example",
    }
    assert {url: host_header(URL(url)) for url in cases} == cases


# --------------------------------------------------------------------------- post_activity

BODY = orjson.dumps({"type": "Follow", "actor": ACTOR["id"], "object": "https://b.example/c"})


async def test_post_cavage(remote: Remote, session: aiohttp.ClientSession, signer: Signer) -> None:
    fixed = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    client = make_client(session, clock=lambda: fixed)
    result = await client.post_activity(remote.url("/inbox", want="cavage"), BODY, signer=signer)
    assert result == PostResult(status=202, scheme="cavage")
    assert remote.verdicts == ["ok:cavage"]
    (request,) = remote.requests
    assert request.headers["Content-Type"] == "application/activity+json"
    assert request.headers["User-Agent"] == UA
    assert request.headers["Host"] == f"127.0.0.1:{remote.server.port}"
    assert request.headers["Digest"].startswith("SHA-256=")
    assert request.headers["Date"] == fixed.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert "digest" in request.headers["Signature"]


async def test_post_double_knock(
    remote: Remote, session: aiohttp.ClientSession, signer: Signer
) -> None:
    client = make_client(session)
    result = await client.post_activity(remote.url("/inbox", want="rfc9421"), BODY, signer=signer)
    assert result == PostResult(status=202, scheme="rfc9421")
    assert remote.verdicts == ["ok:cavage", "ok:rfc9421"]  # exactly two requests
    assert "Signature-Input" not in remote.requests[0].headers
    assert "Content-Digest" in remote.requests[1].headers


@pytest.mark.parametrize(
    ("code", "scheme"),
    [
        *((c, "cavage") for c in (200, 202, 308, 403, 404, 410, 413, 429, 500, 503)),
        (400, "rfc9421"),
        (401, "rfc9421"),
    ],
)
async def test_post_returns_status_without_raising(
    remote: Remote, session: aiohttp.ClientSession, signer: Signer, code: int, scheme: str
) -> None:
    client = make_client(session)
    result = await client.post_activity(remote.url("/inbox", status=code), BODY, signer=signer)
    assert result == PostResult(status=code, scheme=scheme)
    # No redirect followed; a second knock only after 400/401.
    assert len(remote.requests) == (2 if scheme == "rfc9421" else 1)


@pytest.mark.parametrize(
    ("url", "reason", "options"),
    [
        ("http://localhost:{port}/inbox", "blocked_domain", {}),
        ("https://relay.blocked.example/inbox", "blocked_domain", {}),
        ("http://169.254.169.254/inbox", "blocked_address", {"guard": STRICT}),
        ("http://127.0.0.1:{port}/inbox", "blocked_address", {"guard": STRICT}),
        ("file:///etc/passwd", "blocked_address", {}),
        ("http://127.0.0.1:{port}/inbox?slow=1", "timeout", {"timeout": SHORT}),
    ],
)
async def test_post_raises(
    remote: Remote,
    session: aiohttp.ClientSession,
    signer: Signer,
    url: str,
    reason: str,
    options: dict[str, Any],
) -> None:
    blocks = DomainBlocks(["localhost", "blocked.example"])
    client = make_client(session, blocks=blocks, **options)
    url = url.format(port=remote.server.port)
    with pytest.raises(FetchError) as info:
        await client.post_activity(url, BODY, signer=signer)
    error = info.value
    assert (error.reason, error.url, error.status) == (reason, url, None)
    assert error.temporary is (reason == "timeout")
    assert len(remote.requests) == (reason == "timeout")  # refused targets: no request
