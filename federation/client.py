"""Outbound federation HTTP: guarded, signed JSON fetches and activity deliveries.

Behaves like Mastodon's ``Request`` (``app/lib/request.rb``): a fixed User-Agent,
every GET signed when a signer is given, at most three redirects, each hop checked
again, a capped body, and the draft-cavage / RFC 9421 "double knock" on delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp
import orjson
from yarl import URL

from federation.httpsig import sign_request, sign_request_rfc9421
from federation.jsonld import contains_nul
from federation.keys import Signer
from federation.netguard import AddressGuard, BlockedAddress, DomainBlocks, GuardedResolver
from federation.offload import Offloader

AP_ACCEPT = (
    "application/activity+json, "
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
)
JRD_ACCEPT = "application/jrd+json, application/json"
AP_CONTENT_TYPE = "application/activity+json"

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5, sock_read=10)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Statuses worth retrying later (Mastodon: 5xx except 501, plus 408 and 429).
TEMPORARY_STATUSES = frozenset({408, 429})
TEMPORARY_REASONS = frozenset({"timeout", "connection", "dns", "tls"})
# Answers that make a delivery try again with an RFC 9421 signature.
RETRY_WITH_RFC9421 = frozenset({400, 401})
CHUNK_SIZE = 65_536


class FetchError(Exception):
    """An outbound request failed.

    ``reason`` is a machine code: ``blocked_address``, ``blocked_domain``, ``bad_url``,
    ``insecure_redirect``, ``too_many_redirects``, ``timeout``, ``dns``, ``tls``,
    ``connection``, ``http_status`` (see ``status``), ``bad_content_type``,
    ``too_large``, ``bad_json``.  ``url`` is the URL the caller asked for; ``detail``
    says more (e.g. which redirect hop was refused).
    """

    def __init__(self, url: str, reason: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(url, reason, status, detail)
        self.url = url
        self.reason = reason
        self.status = status
        self.detail = detail

    @property
    def temporary(self) -> bool:
        """Whether trying again later may succeed."""
        if self.reason == "http_status" and self.status is not None:
            return (self.status >= 500 and self.status != 501) or (
                self.status in TEMPORARY_STATUSES
            )
        return self.reason in TEMPORARY_REASONS

    def __str__(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.reason}{status} for {self.url}{detail}"


# How much of a refusal's answer is kept to tell the admin why (``coopfed status``).
ANSWER_HEAD = 200


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int
    scheme: str  # "cavage" | "rfc9421"
    # The first ANSWER_HEAD bytes of the answer when it is not a 2xx (empty otherwise).
    answer: bytes = field(default=b"", compare=False)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_session(
    *, guard: AddressGuard, limit: int = 200, limit_per_host: int = 8
) -> aiohttp.ClientSession:
    """A session whose connections only reach addresses ``guard`` allows.

    Cookies are never kept and proxy variables are ignored.  Call inside a running loop;
    the caller owns (and closes) the session.
    """
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(guard),
        limit=limit,
        limit_per_host=limit_per_host,
        ttl_dns_cache=300,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=DEFAULT_TIMEOUT,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )


def host_header(url: URL) -> str:
    """The Host aiohttp sends: punycode host, IPv6 in brackets, no default port."""
    host = url.host_port_subcomponent
    if host is None:
        raise ValueError(f"{url} has no host")
    return host


def accepted_types(accept: str) -> frozenset[str]:
    """Media types a response may have for an ``Accept`` value (plus lenient JSON)."""
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    types.add("application/json")
    return frozenset(t for t in types if t and "*" not in t)


@contextmanager
def _network_errors(url: str, hop: URL) -> Iterator[None]:
    """Turn aiohttp's exceptions into :class:`FetchError` (``url`` is the caller's)."""
    where = "" if str(hop) == url else f"at {hop}"
    try:
        yield
    except BlockedAddress as exc:
        raise FetchError(url, "blocked_address", detail=_join(where, exc.detail)) from exc
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, BlockedAddress):
            detail = _join(where, exc.os_error.detail)
            raise FetchError(url, "blocked_address", detail=detail) from exc
        reason = "connection"
        if isinstance(exc, aiohttp.ClientSSLError):
            reason = "tls"
        elif isinstance(exc, aiohttp.ClientConnectorDNSError):
            reason = "dns"
        raise FetchError(url, reason, detail=_join(where, str(exc))) from exc
    except aiohttp.InvalidURL as exc:
        raise FetchError(url, "bad_url", detail=_join(where, str(exc))) from exc
    except TimeoutError as exc:  # also aiohttp's ServerTimeoutError & co.
        raise FetchError(url, "timeout", detail=where) from exc
    except aiohttp.ClientError as exc:
        raise FetchError(url, "connection", detail=_join(where, repr(exc))) from exc


def _join(*parts: str) -> str:
    return ": ".join(part for part in parts if part)


class SignedClient:
    """Fetches JSON documents and delivers activities for one node."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        guard: AddressGuard,
        blocks: DomainBlocks,
        user_agent: str,
        max_body: int = 1_048_576,
        max_redirects: int = 3,
        timeout: aiohttp.ClientTimeout | None = None,
        clock: Callable[[], datetime] = utc_now,
        offload: Offloader | None = None,
    ) -> None:
        self._session = session
        self._guard = guard
        self._blocks = blocks
        self._user_agent = user_agent
        self._max_body = max_body
        self._max_redirects = max_redirects
        # Always explicit: aiohttp reads ``timeout=None`` as "no timeout at all".
        self._timeout = timeout if timeout is not None else session.timeout
        self._clock = clock
        # Signatures are computed there (off the event loop) when given.
        self._offload = offload

    async def _signed(self, sign: Callable[[], dict[str, str]]) -> dict[str, str]:
        return sign() if self._offload is None else await self._offload.run(sign)

    async def fetch_json(
        self, url: str, *, signer: Signer | None, accept: str = AP_ACCEPT
    ) -> dict[str, Any]:
        """GET a JSON object, signed (draft-cavage) when ``signer`` is given."""
        document, _ = await self.fetch_document(url, signer=signer, accept=accept)
        return document

    async def fetch_document(
        self, url: str, *, signer: Signer | None, accept: str = AP_ACCEPT
    ) -> tuple[dict[str, Any], str]:
        """GET a JSON object and the URL it was finally served from (after redirects).

        A document's ``id`` must be compared with that final URL, never with ``url``:
        an open redirect on one host must not let another host speak for it.
        """
        allowed = accepted_types(accept)
        hop = self._checked(url, url)
        for redirects in range(self._max_redirects + 1):
            outcome = await self._get_once(url, hop, signer=signer, accept=accept, allowed=allowed)
            if isinstance(outcome, dict):
                return outcome, str(hop)
            target = outcome
            if redirects == self._max_redirects:
                detail = f"more than {self._max_redirects}, next {target}"
                raise FetchError(url, "too_many_redirects", detail=detail)
            if hop.scheme == "https" and target.scheme == "http":
                raise FetchError(url, "insecure_redirect", detail=f"{hop} -> {target}")
            hop = self._checked(url, str(target))
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def post_activity(
        self,
        url: str,
        body: bytes,
        *,
        signer: Signer,
        content_type: str = AP_CONTENT_TYPE,
    ) -> PostResult:
        """POST ``body`` signed with draft-cavage; on 400/401 once more with RFC 9421.

        Every HTTP status is returned (redirects are not followed); only a refused
        target or a network failure raises :class:`FetchError`.
        """
        target = self._checked(url, url)
        headers = {
            "Host": host_header(target),
            "User-Agent": self._user_agent,
            "Content-Type": content_type,
        }
        signed = await self._signed(
            partial(
                sign_request,
                method="POST",
                url=str(target),
                headers=headers,
                body=body,
                signer=signer,
                now=self._clock(),
            )
        )
        status, answer = await self._post_once(url, target, body, signed)
        if status not in RETRY_WITH_RFC9421:
            return PostResult(status=status, scheme="cavage", answer=answer)
        signed = await self._signed(
            partial(
                sign_request_rfc9421,
                method="POST",
                url=str(target),
                headers=headers,
                body=body,
                signer=signer,
                now=self._clock(),
            )
        )
        status, answer = await self._post_once(url, target, body, signed)
        return PostResult(status=status, scheme="rfc9421", answer=answer)

    def _checked(self, url: str, hop: str) -> URL:
        """``hop`` parsed, without fragment, after the address and domain checks."""
        where = "" if hop == url else f"at {hop}"
        try:
            self._guard.check_url(hop)
        except BlockedAddress as exc:
            detail = _join(where, exc.reason, exc.detail)
            raise FetchError(url, "blocked_address", detail=detail) from exc
        parsed = URL(hop).with_fragment(None)
        if self._blocks.is_blocked(parsed.raw_host or ""):
            raise FetchError(url, "blocked_domain", detail=_join(where, parsed.raw_host or ""))
        return parsed

    async def _get_once(
        self,
        url: str,
        hop: URL,
        *,
        signer: Signer | None,
        accept: str,
        allowed: frozenset[str],
    ) -> dict[str, Any] | URL:
        """One GET: the parsed object, or the next URL when redirected."""
        headers = {"Host": host_header(hop), "User-Agent": self._user_agent, "Accept": accept}
        if signer is not None:
            headers = await self._signed(
                partial(
                    sign_request,
                    method="GET",
                    url=str(hop),
                    headers=headers,
                    body=None,
                    signer=signer,
                    now=self._clock(),
                )
            )
        with _network_errors(url, hop):
            async with self._session.get(
                hop, headers=headers, allow_redirects=False, timeout=self._timeout
            ) as resp:
                if resp.status in REDIRECT_STATUSES:
                    return self._redirect_target(url, hop, resp)
                if resp.status != 200:
                    raise FetchError(url, "http_status", status=resp.status, detail=str(hop))
                if resp.content_type not in allowed:
                    detail = _join(str(hop), resp.content_type)
                    raise FetchError(url, "bad_content_type", status=200, detail=detail)
                body = await self._read_capped(url, resp)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FetchError(url, "bad_json", status=200, detail=str(exc)) from exc
        if not isinstance(document, dict):
            detail = f"top level is {type(document).__name__}, not an object"
            raise FetchError(url, "bad_json", status=200, detail=detail)
        if b"\\u0000" in body and contains_nul(document):
            raise FetchError(url, "bad_json", status=200, detail="\\u0000 cannot be stored")
        return document

    def _redirect_target(self, url: str, hop: URL, resp: aiohttp.ClientResponse) -> URL:
        location = resp.headers.get("Location")
        if not location:
            raise FetchError(url, "http_status", status=resp.status, detail="no Location")
        try:
            return hop.join(URL(location))
        except ValueError as exc:
            raise FetchError(url, "bad_url", status=resp.status, detail=location) from exc

    async def _read_capped(self, url: str, resp: aiohttp.ClientResponse) -> bytes:
        """The (decompressed) body, refusing more than ``max_body`` bytes."""
        limit = self._max_body
        if resp.content_length is not None and resp.content_length > limit:
            detail = f"Content-Length {resp.content_length} > {limit}"
            raise FetchError(url, "too_large", status=resp.status, detail=detail)
        buffer = bytearray()
        async for chunk in resp.content.iter_chunked(CHUNK_SIZE):
            buffer += chunk
            if len(buffer) > limit:
                raise FetchError(url, "too_large", status=resp.status, detail=f"> {limit} bytes")
        return bytes(buffer)

    async def _post_once(
        self, url: str, target: URL, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """The status, and the head of the answer when it refuses (not a 2xx)."""
        with _network_errors(url, target):
            async with self._session.post(
                target,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                head = b""
                if not 200 <= resp.status < 300:
                    while len(head) < ANSWER_HEAD:
                        chunk = await resp.content.read(ANSWER_HEAD - len(head))
                        if not chunk:
                            break
                        head += chunk
                return resp.status, head
