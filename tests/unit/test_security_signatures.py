"""Signature coverage: what a signature must cover so it cannot be replayed elsewhere."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from federation.httpsig import (
    SignatureError,
    compute_content_digest,
    compute_digest,
    format_http_date,
    parse_signature,
    sign_request,
    verify_signature,
)
from federation.keys import Signer, generate_private_key
from federation.rfc9421 import serialize_inner_list, signature_base

NOW = datetime(2025, 11, 26, 10, 0, 0, tzinfo=UTC)
OURS = "https://coop.example/inbox"
KEY_ID = "https://masto.example/users/bob#main-key"
BODY = b'{"type":"Follow","actor":"https://masto.example/users/bob"}'


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    return generate_private_key()


def _cavage(key: RSAPrivateKey, names: list[str], *, host: str = "coop.example") -> dict[str, str]:
    """A cavage POST to our inbox signed over exactly ``names``."""
    headers = {"Host": host, "Date": format_http_date(NOW), "Digest": compute_digest(BODY)}
    values = {"(request-target)": "post /inbox", **{k.lower(): v for k, v in headers.items()}}
    text = "\n".join(f"{name}: {values[name]}" for name in names)
    signature = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256()))
    headers["Signature"] = (
        f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="{" ".join(names)}",'
        f'signature="{signature.decode()}"'
    )
    return headers


def _verify(key: RSAPrivateKey, headers: dict[str, str], *, uri: str = OURS) -> str:
    try:
        parsed = parse_signature(method="POST", target_uri=uri, headers=headers)
        verify_signature(parsed, key.public_key(), method="POST", body=BODY, now=NOW)
    except SignatureError as exc:
        return exc.reason
    return "ok"


def test_cavage_must_cover_request_target_host_and_date(key: RSAPrivateKey) -> None:
    assert _verify(key, _cavage(key, ["(request-target)", "host", "date", "digest"])) == "ok"
    # Digest alone does not bind the signature to this server and path
    assert _verify(key, _cavage(key, ["host", "date", "digest"])) == "headers_not_covered"
    assert _verify(key, _cavage(key, ["(request-target)", "date", "digest"])) == (
        "headers_not_covered"
    )
    assert _verify(key, _cavage(key, ["(request-target)", "host", "digest"])) == (
        "headers_not_covered"
    )
    # And a body needs its digest signed
    assert _verify(key, _cavage(key, ["(request-target)", "host", "date"])) == "missing_digest"


def test_a_signature_made_for_another_server_is_not_ours(key: RSAPrivateKey) -> None:
    # Given a request validly signed for other.example (same path), replayed to us
    replayed = _cavage(key, ["(request-target)", "host", "date", "digest"], host="other.example")
    # Then the signed host is not ours
    assert _verify(key, replayed) == "wrong_host"
    # And behind a proxy our host is the configured origin's, default port or not
    assert _verify(key, _cavage(key, ["(request-target)", "host", "date", "digest"],
                                host="coop.example:443")) == "ok"  # fmt: skip


def _rfc9421(
    key: RSAPrivateKey, components: list[str], host: str = "coop.example"
) -> dict[str, str]:
    headers = {
        "Host": host,
        "Date": format_http_date(NOW),
        "Content-Digest": compute_content_digest(BODY),
    }
    params = {"created": int(NOW.timestamp()), "keyid": KEY_ID, "alg": "rsa-v1_5-sha256"}
    serialized = serialize_inner_list(components, params)  # type: ignore[arg-type]
    target = f"https://{host}/inbox"
    lowered = {k.lower(): v for k, v in headers.items()}
    base = signature_base(components, serialized, method="POST", target_uri=target, headers=lowered)
    signature = base64.b64encode(key.sign(base, padding.PKCS1v15(), hashes.SHA256())).decode()
    return {**headers, "Signature-Input": f"sig1={serialized}", "Signature": f"sig1=:{signature}:"}


def test_rfc9421_components(key: RSAPrivateKey) -> None:
    full = ["@method", "@target-uri", "content-digest"]
    assert _verify(key, _rfc9421(key, full)) == "ok"
    assert _verify(key, _rfc9421(key, ["@method", "@authority", "@path", "content-digest"])) == "ok"
    # Without the body's digest, or without where it was sent
    assert _verify(key, _rfc9421(key, ["@method", "@target-uri"])) == "missing_digest"
    assert _verify(key, _rfc9421(key, ["@method", "@path", "content-digest"])) == (
        "headers_not_covered"
    )
    # Signed for another authority: it does not verify here, or names another host
    assert _verify(key, _rfc9421(key, full, host="other.example")) == "bad_signature"
    assert _verify(key, _rfc9421(key, [*full, "host"], host="other.example")) == "wrong_host"


def test_our_own_signatures_cover_everything(key: RSAPrivateKey) -> None:
    signer = Signer(key_id=KEY_ID, private_key=key)
    headers = sign_request(method="POST", url=OURS, headers={}, body=BODY, signer=signer, now=NOW)
    assert _verify(key, headers) == "ok"
