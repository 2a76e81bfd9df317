"""HTTP signatures as the fediverse speaks them: draft-cavage and RFC 9421. Pure, no I/O.

Signing follows Mastodon 4.x: cavage ``rsa-sha256`` over ``(request-target) host date digest
[content-type]``, or RFC 9421 ``sig1=("@method" "@target-uri" ["content-digest"])``.
Verification is generic: any header order, ``hs2019``, ``(created)``/``(expires)``, the
request-target tried with then without its query, ``Authorization: Signature``, and RFC 9421
signature bases for the common derived components. Only RSA PKCS#1 v1.5 / SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from enum import StrEnum
from typing import Literal, NoReturn
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from federation.digests import compute_content_digest as compute_content_digest
from federation.digests import compute_digest as compute_digest
from federation.digests import digest_matches
from federation.errors import ReasonError
from federation.keys import Signer
from federation.rfc9421 import (
    ComponentError,
    Params,
    StructuredFieldError,
    authority,
    first_signature,
    request_target,
    serialize_inner_list,
    signature_base,
)

CLOCK_SKEW = timedelta(hours=1)
MAX_SIGNATURE_AGE = timedelta(minutes=65)
RFC9421_LABEL = "sig1"
RFC9421_ALGORITHM = "rsa-v1_5-sha256"
CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_BODYLESS_METHODS = frozenset({"GET", "HEAD"})


class SignatureReason(StrEnum):
    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    MISSING_DATE = "missing_date"
    DATE_EXPIRED = "date_expired"
    DATE_IN_FUTURE = "date_in_future"
    MISSING_DIGEST = "missing_digest"
    DIGEST_MISMATCH = "digest_mismatch"
    HEADERS_NOT_COVERED = "headers_not_covered"
    WRONG_HOST = "wrong_host"
    BAD_SIGNATURE = "bad_signature"


class SignatureError(ReasonError):
    """Verification failed. ``reason`` is a `SignatureReason` value, ``detail`` human text."""


def _fail(reason: SignatureReason, detail: str) -> NoReturn:
    raise SignatureError(reason, detail)


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    scheme: Literal["cavage", "rfc9421"]
    key_id: str
    algorithm: str
    covered: tuple[str, ...]
    signature: bytes
    signing_strings: tuple[bytes, ...]
    created: datetime | None
    expires: datetime | None = None
    digest: str | None = None  # cavage: the `Digest` header value, only when covered
    content_digest: str | None = None  # rfc9421: the `Content-Digest` value, only when covered


def key_owner_id(key_id: str) -> str:
    """The keyId without its ``#fragment`` (``…/users/a#main-key`` -> ``…/users/a``)."""
    return key_id.partition("#")[0]


def format_http_date(now: datetime) -> str:
    """RFC 7231 IMF-fixdate, e.g. ``Wed, 26 Nov 2025 10:00:00 GMT``."""
    return format_datetime(_as_utc(now).replace(microsecond=0), usegmt=True)


def sign_request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    signer: Signer,
    now: datetime,
) -> dict[str, str]:
    """Sign draft-cavage ``rsa-sha256``; returns a new dict with Host, Date, [Digest], Signature."""
    parts = urlsplit(url)
    out = _without(headers, {"host", "date", "digest", "signature", "authorization"})
    out["Host"] = authority(parts)
    out["Date"] = format_http_date(now)
    covered = ["(request-target)", "host", "date"]
    if body is not None:
        out["Digest"] = compute_digest(body)
        covered.append("digest")
    values = _lower_headers(out)
    if "content-type" in values:
        covered.append("content-type")
    values["(request-target)"] = f"{method.lower()} {request_target(parts)}"
    signing_string = "\n".join(f"{name}: {values[name]}" for name in covered)
    signature = _b64(_rsa_sign(signer, _encode(signing_string)))
    key_id = signer.key_id.replace("\\", "\\\\").replace('"', '\\"')
    out["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",'
        f'headers="{" ".join(covered)}",signature="{signature}"'
    )
    return out


def sign_request_rfc9421(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    signer: Signer,
    now: datetime,
) -> dict[str, str]:
    """Sign RFC 9421 ``rsa-v1_5-sha256`` as label ``sig1``; returns a new dict of headers."""
    parts = urlsplit(url)
    drop = {"host", "date", "content-digest", "signature", "signature-input", "authorization"}
    out = _without(headers, drop)
    out["Host"] = authority(parts)
    out["Date"] = format_http_date(now)
    components = ["@method", "@target-uri"]
    if body is not None:
        out["Content-Digest"] = compute_content_digest(body)
        components.append("content-digest")
    params: Params = {
        "created": int(_as_utc(now).timestamp()),
        "keyid": signer.key_id,
        "alg": RFC9421_ALGORITHM,
    }
    sig_params = serialize_inner_list(components, params)
    base = signature_base(
        components, sig_params, method=method, target_uri=url, headers=_lower_headers(out)
    )
    out["Signature-Input"] = f"{RFC9421_LABEL}={sig_params}"
    out["Signature"] = f"{RFC9421_LABEL}=:{_b64(_rsa_sign(signer, base))}:"
    return out


def parse_signature(*, method: str, target_uri: str, headers: Mapping[str, str]) -> ParsedSignature:
    """Parse the request's signature and build its candidate signing strings.

    ``target_uri`` is the absolute URL the server sees itself at (origin + path?query).
    Raises `SignatureError`.
    """
    values = _lower_headers(headers)
    if "signature-input" in values:
        return _parse_rfc9421(method, target_uri, values)
    return _parse_cavage(method, target_uri, values)


# A quoted value is ``[^"\\]*(?:\\.[^"\\]*)*`` (the unrolled form of
# ``(?:[^"\\]|\\.)*``): the same strings, matched 3x faster on a 344-character signature.
_CAVAGE_PARAM = re.compile(
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^",\s]*))\s*(?:,|\Z)'
)
_UNESCAPE = re.compile(r"\\(.)")


def _cavage_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    value = value.strip()
    pos = 0
    while pos < len(value):
        match = _CAVAGE_PARAM.match(value, pos)
        if match is None or match.end() == pos:
            _fail(SignatureReason.MALFORMED_SIGNATURE, f"cannot parse Signature at {pos}")
        name = match.group(1).lower()
        quoted = match.group(2)
        raw = _UNESCAPE.sub(r"\1", quoted) if quoted is not None else match.group(3)
        if name in params:
            _fail(SignatureReason.MALFORMED_SIGNATURE, f"duplicate parameter {name!r}")
        params[name] = raw
        pos = match.end()
    return params


def _parse_cavage(method: str, target_uri: str, values: dict[str, str]) -> ParsedSignature:
    raw = values.get("signature")
    if raw is None:
        scheme, _, rest = values.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "signature":
            _fail(SignatureReason.MISSING_SIGNATURE, "no Signature or Signature-Input header")
        raw = rest
    params = _cavage_params(raw)
    key_id, signature_b64 = params.get("keyid"), params.get("signature")
    if not key_id or not signature_b64:
        _fail(SignatureReason.MALFORMED_SIGNATURE, "keyId and signature are required")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in CAVAGE_ALGORITHMS:
        _fail(SignatureReason.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    covered = tuple(params.get("headers", "date").lower().split())
    if "date" not in covered and "(created)" not in covered:
        _fail(SignatureReason.HEADERS_NOT_COVERED, "must sign date or (created)")
    for needed in ("(request-target)", "host"):
        if needed not in covered:
            # Without them a signature made for another server or path replays here.
            _fail(SignatureReason.HEADERS_NOT_COVERED, f"must sign {needed}")
    _check_host(values, target_uri)

    parts = urlsplit(target_uri)
    targets = [request_target(parts)]
    if parts.query:
        targets.append(parts.path or "/")
    lines: list[list[str]] = [[] for _ in targets]
    for name in covered:
        if name == "(request-target)":
            for line, target in zip(lines, targets, strict=True):
                line.append(f"(request-target): {method.lower()} {target}")
            continue
        if name in ("(created)", "(expires)"):
            value = params.get(name[1:-1])
            if value is None:
                _fail(SignatureReason.MALFORMED_SIGNATURE, f"{name} signed but not given")
        elif name.startswith("("):
            _fail(SignatureReason.MALFORMED_SIGNATURE, f"unknown pseudo-header {name}")
        else:
            value = _required_header(values, name)
        for line in lines:
            line.append(f"{name}: {value}")

    if "(created)" in covered:
        created = _timestamp("created", params["created"])  # present: checked above
    else:
        created = _http_date(values["date"])  # covered and present: checked above
    return ParsedSignature(
        scheme="cavage",
        key_id=key_id,
        algorithm=algorithm,
        covered=covered,
        signature=_b64decode(signature_b64),
        signing_strings=tuple(_encode("\n".join(line)) for line in lines),
        created=created,
        expires=_timestamp("expires", params["expires"]) if "(expires)" in covered else None,
        digest=values.get("digest") if "digest" in covered else None,
    )


def _parse_rfc9421(method: str, target_uri: str, values: dict[str, str]) -> ParsedSignature:
    if "signature" not in values:
        _fail(SignatureReason.MISSING_SIGNATURE, "Signature-Input without Signature")
    try:
        found = first_signature(values["signature-input"], values["signature"])
    except StructuredFieldError as exc:
        _fail(SignatureReason.MALFORMED_SIGNATURE, str(exc))
    params = found.params
    algorithm = params.get("alg", RFC9421_ALGORITHM)
    if algorithm != RFC9421_ALGORITHM:
        _fail(SignatureReason.UNSUPPORTED_ALGORITHM, f"alg {algorithm!r}")
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        _fail(SignatureReason.MALFORMED_SIGNATURE, "keyid is required")
    if "created" not in params:
        _fail(SignatureReason.MISSING_DATE, "created is required")
    for name in ("created", "expires"):
        if name in params and type(params[name]) is not int:
            _fail(SignatureReason.MALFORMED_SIGNATURE, f"{name} must be an integer")
    components = {name.lower() for name in found.components}
    where = "@target-uri" in components or {"@authority", "@path"} <= components
    if "@method" not in components or not where:
        _fail(
            SignatureReason.HEADERS_NOT_COVERED,
            "must sign @method and @target-uri (or @authority and @path)",
        )
    if "host" in components:
        _check_host(values, target_uri)
    try:
        base = signature_base(
            found.components,
            found.serialized_params,
            method=method,
            target_uri=target_uri,
            headers=values,
        )
    except ComponentError as exc:
        if exc.missing:
            _missing_header(exc.name)
        _fail(SignatureReason.MALFORMED_SIGNATURE, str(exc))
    expires = params.get("expires")
    return ParsedSignature(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=RFC9421_ALGORITHM,
        covered=tuple(name.lower() for name in found.components),
        signature=found.signature,
        signing_strings=(base,),
        created=_timestamp("created", params["created"]),
        expires=None if expires is None else _timestamp("expires", expires),
        content_digest=values.get("content-digest")
        if "content-digest" in found.components
        else None,
    )


def _check_host(values: dict[str, str], target_uri: str) -> None:
    """The signed ``Host`` must name us (``target_uri`` is our own origin + path)."""
    ours = urlsplit(target_uri)
    signed = values.get("host")
    if signed is None:
        _missing_header("host")
    try:
        theirs = authority(urlsplit(f"{ours.scheme}://{signed}"))
        expected = authority(ours)
    except ValueError:
        _fail(SignatureReason.MALFORMED_SIGNATURE, f"invalid Host {signed!r}")
    if theirs != expected:
        _fail(SignatureReason.WRONG_HOST, f"signed for {signed!r}, this is {expected!r}")


def verify_signature(
    parsed: ParsedSignature, public_key: RSAPublicKey, *, method: str, body: bytes, now: datetime
) -> None:
    """Check time window, body digest and the RSA signature. Raises `SignatureError`."""
    now = _as_utc(now)
    if parsed.created is None:
        _fail(SignatureReason.MISSING_DATE, "no Date header or created parameter")
    if parsed.created > now + CLOCK_SKEW:
        _fail(SignatureReason.DATE_IN_FUTURE, f"signed at {parsed.created.isoformat()}")
    if parsed.created < now - MAX_SIGNATURE_AGE:
        _fail(SignatureReason.DATE_EXPIRED, f"signed at {parsed.created.isoformat()}")
    if parsed.expires is not None and parsed.expires < now - CLOCK_SKEW:
        _fail(SignatureReason.DATE_EXPIRED, f"expired at {parsed.expires.isoformat()}")
    _check_digest(parsed, method, body)
    for candidate in parsed.signing_strings:
        try:
            public_key.verify(parsed.signature, candidate, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            continue
        return
    _fail(SignatureReason.BAD_SIGNATURE, f"signature does not verify with {parsed.key_id}")


def _check_digest(parsed: ParsedSignature, method: str, body: bytes) -> None:
    cavage = parsed.scheme == "cavage"
    header = parsed.digest if cavage else parsed.content_digest
    name = "Digest" if cavage else "Content-Digest"
    if header is None:
        if method.upper() not in _BODYLESS_METHODS or body:
            _fail(SignatureReason.MISSING_DIGEST, f"a signed {name} header is required")
        return
    try:
        matches = digest_matches(header, body, structured=not cavage)
    except StructuredFieldError as exc:
        _fail(SignatureReason.MALFORMED_SIGNATURE, f"{name}: {exc}")
    if matches is None:
        _fail(SignatureReason.MISSING_DIGEST, f"no SHA-256 entry in {name} {header!r}")
    if not matches:
        _fail(SignatureReason.DIGEST_MISMATCH, f"{name} does not match the body")


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lowercased names -> trimmed values; repeated fields (multidicts) joined with ", "."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value.strip()}" if key in out else value.strip()
    return out


def _without(headers: Mapping[str, str], names: set[str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in names}


def _required_header(values: dict[str, str], name: str) -> str:
    value = values.get(name)
    if value is None:
        _missing_header(name)
    return value


def _missing_header(name: str) -> NoReturn:
    if name == "date":
        _fail(SignatureReason.MISSING_DATE, "date is signed but absent")
    if name in ("digest", "content-digest"):
        _fail(SignatureReason.MISSING_DIGEST, f"{name} is signed but absent")
    _fail(SignatureReason.MALFORMED_SIGNATURE, f"signed header {name!r} is absent")


def _http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        _fail(SignatureReason.MALFORMED_SIGNATURE, f"invalid Date {value!r}: {exc}")
    return _as_utc(parsed)


def _timestamp(name: str, value: object) -> datetime:
    """A Unix time from a cavage parameter (text) or an RFC 9421 parameter (number)."""
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise TypeError(name)
        return datetime.fromtimestamp(number, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        _fail(SignatureReason.MALFORMED_SIGNATURE, f"invalid {name}={value!r}")


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rsa_sign(signer: Signer, data: bytes) -> bytes:
    return signer.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: str) -> bytes:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        _fail(SignatureReason.MALFORMED_SIGNATURE, "invalid base64")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")
