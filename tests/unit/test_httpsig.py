"""HTTP signatures: round-trips, hand-built vectors shaped like real servers, tampering."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from multidict import CIMultiDict, CIMultiDictProxy

from federation.httpsig import (
    ParsedSignature,
    SignatureError,
    compute_content_digest,
    compute_digest,
    key_owner_id,
    parse_signature,
    sign_request,
    sign_request_rfc9421,
    verify_signature,
)
from federation.keys import Signer, generate_private_key

NOW = datetime(2025, 11, 26, 10, 0, 0, tzinfo=UTC)
DATE = "Wed, 26 Nov 2025 10:00:00 GMT"
INBOX = "https://coop.example/users/alice/inbox"
MASTO_KEY = "https://masto.example/users/bob#main-key"
GTS_KEY = "https://gts.example/users/u/main-key"
BODY = (
    b'{"@context":"https://www.w3.org/ns/activitystreams","id":"https://masto.example/'
    b'0f9c","type":"Follow","actor":"https://masto.example/users/bob",'
    b'"object":"https://coop.example/users/alice"}'
)


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def other_key() -> RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def signer(key: RSAPrivateKey) -> Signer:
    return Signer(key_id=MASTO_KEY, private_key=key)


def rsa_b64(key: RSAPrivateKey, text: str) -> str:
    signed = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signed).decode()


def sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def check(
    headers: Mapping[str, str],
    key: RSAPrivateKey,
    *,
    method: str = "POST",
    uri: str = INBOX,
    body: bytes = BODY,
    now: datetime = NOW,
) -> ParsedSignature:
    parsed = parse_signature(method=method, target_uri=uri, headers=headers)
    verify_signature(parsed, key.public_key(), method=method, body=body, now=now)
    return parsed


def reason(action: Callable[[], object]) -> str:
    with pytest.raises(SignatureError) as info:
        action()
    return info.value.reason


def mastodon_post(key: RSAPrivateKey, body: bytes = BODY) -> dict[str, str]:
    """What Mastodon 4.x POSTs to an inbox (app/lib/request.rb)."""
    headers = {
        "Host": "coop.example",
        "Date": DATE,
        "Digest": f"SHA-256={sha256_b64(body)}",
        "Content-Type": "application/activity+json",
        "User-Agent": "Mastodon/4.4.0 (http.rb/5.2.0; +https://masto.example/)",
        "Accept-Encoding": "gzip",
    }
    signing_string = (
        f"host: coop.example\ndate: {DATE}\ndigest: {headers['Digest']}\n"
        "content-type: application/activity+json\n(request-target): post /users/alice/inbox"
    )
    headers["Signature"] = (
        f'keyId="{MASTO_KEY}",algorithm="rsa-sha256",'
        'headers="host date digest content-type (request-target)",'
        f'signature="{rsa_b64(key, signing_string)}"'
    )
    return headers


def rfc9421_post(key: RSAPrivateKey, body: bytes = BODY) -> dict[str, str]:
    """What Mastodon 4.7 POSTs on its second knock (RFC 9421)."""
    created = int(NOW.timestamp())
    params = f'("@method" "@target-uri" "content-digest");created={created};keyid="{MASTO_KEY}"'
    content_digest = f"sha-256=:{sha256_b64(body)}:"
    base = (
        f'"@method": POST\n"@target-uri": {INBOX}\n"content-digest": {content_digest}\n'
        f'"@signature-params": {params}'
    )
    return {
        "Host": "coop.example",
        "Date": DATE,
        "Content-Type": "application/activity+json",
        "Content-Digest": content_digest,
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{rsa_b64(key, base)}:",
    }


# --------------------------------------------------------------------------- round-trips


def test_sign_request_post_round_trip(signer: Signer, key: RSAPrivateKey) -> None:
    given = {"Content-Type": "application/activity+json", "Accept": "application/activity+json"}
    headers = sign_request(
        method="POST", url=INBOX, headers=given, body=BODY, signer=signer, now=NOW
    )
    assert given == {
        "Content-Type": "application/activity+json",
        "Accept": "application/activity+json",
    }
    assert headers["Host"] == "coop.example"
    assert headers["Date"] == DATE
    assert headers["Digest"] == f"SHA-256={sha256_b64(BODY)}" == compute_digest(BODY)
    assert headers["Accept"] == "application/activity+json"
    assert headers["Signature"].startswith(
        f'keyId="{MASTO_KEY}",algorithm="rsa-sha256",'
        'headers="(request-target) host date digest content-type",signature="'
    )
    parsed = check(headers, key)
    assert parsed.scheme == "cavage"
    assert parsed.key_id == MASTO_KEY
    assert parsed.created == NOW


def test_sign_request_exact_signing_string(signer: Signer, key: RSAPrivateKey) -> None:
    headers = sign_request(
        method="POST",
        url="https://coop.example:8443/inbox?x=1",
        headers={"content-type": "application/activity+json"},
        body=BODY,
        signer=signer,
        now=NOW + timedelta(microseconds=500),
    )
    assert headers["Host"] == "coop.example:8443"
    expected = (
        "(request-target): post /inbox?x=1\nhost: coop.example:8443\n"
        f"date: {DATE}\ndigest: {compute_digest(BODY)}\n"
        "content-type: application/activity+json"
    )
    signature = headers["Signature"].rsplit('signature="', 1)[1].rstrip('"')
    key.public_key().verify(
        base64.b64decode(signature), expected.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_sign_request_get_round_trip(signer: Signer, key: RSAPrivateKey) -> None:
    url = "https://coop.example/users/alice/outbox?page=true"
    headers = sign_request(
        method="GET", url=url, headers={"Accept": "application/activity+json"},
        body=None, signer=signer, now=NOW,
    )  # fmt: skip
    assert "Digest" not in headers
    assert 'headers="(request-target) host date"' in headers["Signature"]
    check(headers, key, method="GET", uri=url, body=b"")


def test_sign_request_replaces_stale_headers(signer: Signer, key: RSAPrivateKey) -> None:
    stale = {"host": "old.example", "DATE": "yesterday", "signature": "x", "digest": "y"}
    headers = sign_request(
        method="POST", url=INBOX, headers=stale, body=BODY, signer=signer, now=NOW
    )
    assert sorted(headers) == ["Date", "Digest", "Host", "Signature"]
    check(headers, key)


def test_rfc9421_post_round_trip(signer: Signer, key: RSAPrivateKey) -> None:
    headers = sign_request_rfc9421(
        method="POST",
        url=INBOX,
        headers={"Content-Type": "application/activity+json"},
        body=BODY,
        signer=signer,
        now=NOW,
    )
    assert headers["Content-Digest"] == f"sha-256=:{sha256_b64(BODY)}:"
    assert headers["Content-Digest"] == compute_content_digest(BODY)
    assert headers["Signature-Input"] == (
        f'sig1=("@method" "@target-uri" "content-digest");created={int(NOW.timestamp())};'
        f'keyid="{MASTO_KEY}";alg="rsa-v1_5-sha256"'
    )
    assert headers["Signature"].startswith("sig1=:") and headers["Signature"].endswith(":")
    assert (headers["Host"], headers["Date"]) == ("coop.example", DATE)
    parsed = check(headers, key)
    assert parsed.scheme == "rfc9421"
    assert parsed.covered == ("@method", "@target-uri", "content-digest")
    assert parsed.created == NOW


def test_rfc9421_get_round_trip(signer: Signer, key: RSAPrivateKey) -> None:
    url = "https://coop.example/users/alice?x=1"
    headers = sign_request_rfc9421(
        method="GET", url=url, headers={}, body=None, signer=signer, now=NOW
    )
    assert "Content-Digest" not in headers
    assert headers["Signature-Input"].startswith('sig1=("@method" "@target-uri");created=')
    check(headers, key, method="GET", uri=url, body=b"")


# --------------------------------------------------------------------------- real-world shapes


def test_mastodon_post(key: RSAPrivateKey) -> None:
    parsed = check(mastodon_post(key), key)
    assert parsed.covered == ("host", "date", "digest", "content-type", "(request-target)")
    assert parsed.algorithm == "rsa-sha256"
    assert key_owner_id(parsed.key_id) == "https://masto.example/users/bob"


def test_mastodon_post_with_case_insensitive_multidict(key: RSAPrivateKey) -> None:
    headers = CIMultiDictProxy(CIMultiDict({k.lower(): v for k, v in mastodon_post(key).items()}))
    check(headers, key)


def test_mastodon_get(key: RSAPrivateKey) -> None:
    accept = "application/activity+json, application/ld+json"
    signing_string = (
        f"host: coop.example\ndate: {DATE}\naccept: {accept}\n(request-target): get /users/alice"
    )
    headers = {
        "Host": "coop.example",
        "Date": DATE,
        "Accept": accept,
        "Signature": (
            'keyId="https://masto.example/actor#main-key",algorithm="rsa-sha256",'
            'headers="host date accept (request-target)",'
            f'signature="{rsa_b64(key, signing_string)}"'
        ),
    }
    uri = "https://coop.example/users/alice"
    parsed = check(headers, key, method="GET", uri=uri, body=b"")
    assert parsed.key_id == "https://masto.example/actor#main-key"


def test_gotosocial_hs2019_post(key: RSAPrivateKey) -> None:
    digest = f"SHA-256={sha256_b64(BODY)}"
    signing_string = (
        f"(request-target): post /users/alice/inbox\nhost: coop.example\n"
        f"date: {DATE}\ndigest: {digest}"
    )
    headers = {
        "Host": "coop.example",
        "Date": DATE,
        "Digest": digest,
        "Content-Type": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "Signature": (
            f'keyId="{GTS_KEY}",algorithm="hs2019",'
            'headers="(request-target) host date digest",'
            f'signature="{rsa_b64(key, signing_string)}"'
        ),
    }
    parsed = check(headers, key)
    assert parsed.algorithm == "hs2019"
    assert parsed.key_id == key_owner_id(parsed.key_id) == GTS_KEY


def test_rfc9421_post_as_mastodon_47_sends_it(key: RSAPrivateKey) -> None:
    parsed = check(rfc9421_post(key), key)
    assert parsed.key_id == MASTO_KEY
    assert parsed.algorithm == "rsa-v1_5-sha256"


def test_request_target_signed_without_query(key: RSAPrivateKey) -> None:
    signing_string = f"(request-target): get /users/alice/outbox\nhost: coop.example\ndate: {DATE}"
    headers = {
        "Host": "coop.example",
        "Date": DATE,
        "Signature": (
            f'keyId="{GTS_KEY}",algorithm="hs2019",headers="(request-target) host date",'
            f'signature="{rsa_b64(key, signing_string)}"'
        ),
    }
    uri = "https://coop.example/users/alice/outbox?page=true"
    parsed = check(headers, key, method="GET", uri=uri, body=b"")
    assert len(parsed.signing_strings) == 2


def test_authorization_header_and_created_pseudo_header(key: RSAPrivateKey) -> None:
    created = int(NOW.timestamp())
    digest = compute_digest(BODY)
    signing_string = (
        f"(request-target): post /users/alice/inbox\n(created): {created}\n"
        f"host: coop.example\ndigest: {digest}"
    )
    headers = {
        "Host": "coop.example",
        "Digest": digest,
        "Authorization": (
            f'Signature keyId="{GTS_KEY}", algorithm="hs2019", created={created}, '
            'headers="(request-target) (created) host digest", '
            f'signature="{rsa_b64(key, signing_string)}"'
        ),
    }
    assert check(headers, key).created == NOW


def test_rfc9421_other_derived_components(key: RSAPrivateKey) -> None:
    uri = "https://Coop.Example:8443/users/alice/inbox?a=1&b=2"
    content_digest = compute_content_digest(BODY)
    params = (
        '("@method" "@target-uri" "@authority" "@path" "@query" "@scheme" "@request-target" '
        f'"content-digest" "date");created={int(NOW.timestamp())};keyid="{GTS_KEY}";'
        'alg="rsa-v1_5-sha256";expires=' + str(int((NOW + timedelta(minutes=5)).timestamp()))
    )
    base = (
        f'"@method": POST\n"@target-uri": {uri}\n"@authority": coop.example:8443\n'
        '"@path": /users/alice/inbox\n"@query": ?a=1&b=2\n"@scheme": https\n'
        f'"@request-target": /users/alice/inbox?a=1&b=2\n"content-digest": {content_digest}\n'
        f'"date": {DATE}\n"@signature-params": {params}'
    )
    headers = {
        "Date": DATE,
        "Content-Digest": content_digest,
        "Signature-Input": f"sig1={params}, sig2=();created=1",
        "Signature": f"sig2=:AAAA:, sig1=:{rsa_b64(key, base)}:",
    }
    parsed = check(headers, key, uri=uri)
    assert parsed.expires == NOW + timedelta(minutes=5)


# --------------------------------------------------------------------------- tampering


def test_changed_body_byte_is_digest_mismatch(key: RSAPrivateKey) -> None:
    tampered = BODY.replace(b"Follow", b"Fellow")
    assert reason(lambda: check(mastodon_post(key), key, body=tampered)) == "digest_mismatch"
    assert reason(lambda: check(rfc9421_post(key), key, body=tampered)) == "digest_mismatch"


def test_changed_signed_header_is_bad_signature(key: RSAPrivateKey) -> None:
    headers = mastodon_post(key)
    headers["Content-Type"] = "application/json"
    assert reason(lambda: check(headers, key)) == "bad_signature"
    headers = mastodon_post(key)
    headers["Host"] = "evil.example"
    assert reason(lambda: check(headers, key)) == "wrong_host"


def test_changed_target_is_bad_signature(key: RSAPrivateKey) -> None:
    other = "https://coop.example/users/carol/inbox"
    assert reason(lambda: check(mastodon_post(key), key, uri=other)) == "bad_signature"
    assert reason(lambda: check(rfc9421_post(key), key, uri=other)) == "bad_signature"
    assert reason(lambda: check(rfc9421_post(key), key, method="PUT")) == "bad_signature"


def test_wrong_key_is_bad_signature(key: RSAPrivateKey, other_key: RSAPrivateKey) -> None:
    parsed = parse_signature(method="POST", target_uri=INBOX, headers=mastodon_post(key))
    public = other_key.public_key()
    assert reason(
        lambda: verify_signature(parsed, public, method="POST", body=BODY, now=NOW)
    ) == "bad_signature"  # fmt: skip
    assert reason(lambda: check(rfc9421_post(key), other_key)) == "bad_signature"


@pytest.mark.parametrize("build", [mastodon_post, rfc9421_post])
def test_time_window(key: RSAPrivateKey, build: Callable[[RSAPrivateKey], dict[str, str]]) -> None:
    headers = build(key)
    check(headers, key, now=NOW + timedelta(minutes=64))
    check(headers, key, now=NOW - timedelta(minutes=59))
    late, early = NOW + timedelta(minutes=66), NOW - timedelta(minutes=61)
    assert reason(lambda: check(headers, key, now=late)) == "date_expired"
    assert reason(lambda: check(headers, key, now=early)) == "date_in_future"


def test_expires_in_the_past(key: RSAPrivateKey) -> None:
    created = int((NOW - timedelta(minutes=30)).timestamp())
    expires = int((NOW - timedelta(minutes=61)).timestamp())
    digest = compute_digest(BODY)
    signing_string = (
        f"(request-target): post /users/alice/inbox\n(created): {created}\n"
        f"(expires): {expires}\nhost: coop.example\ndigest: {digest}"
    )
    headers = {
        "Host": "coop.example",
        "Digest": digest,
        "Signature": (
            f'keyId="{GTS_KEY}",created={created},expires={expires},'
            'headers="(request-target) (created) (expires) host digest",'
            f'signature="{rsa_b64(key, signing_string)}"'
        ),
    }
    assert reason(lambda: check(headers, key)) == "date_expired"
    check(headers, key, now=NOW - timedelta(minutes=10))


def test_missing_digest_on_post(signer: Signer, key: RSAPrivateKey) -> None:
    unsigned_body = sign_request(
        method="POST", url=INBOX, headers={}, body=None, signer=signer, now=NOW
    )
    assert reason(lambda: check(unsigned_body, key)) == "missing_digest"
    headers = mastodon_post(key)
    del headers["Digest"]
    assert reason(lambda: check(headers, key)) == "missing_digest"
    rfc = sign_request_rfc9421(
        method="POST", url=INBOX, headers={}, body=None, signer=signer, now=NOW
    )
    assert reason(lambda: check(rfc, key)) == "missing_digest"


def test_digest_present_but_not_signed(key: RSAPrivateKey) -> None:
    signing_string = f"(request-target): post /users/alice/inbox\nhost: coop.example\ndate: {DATE}"
    headers = {
        "Host": "coop.example",
        "Date": DATE,
        "Digest": compute_digest(BODY),
        "Signature": (
            f'keyId="{GTS_KEY}",headers="(request-target) host date",'
            f'signature="{rsa_b64(key, signing_string)}"'
        ),
    }
    assert reason(lambda: check(headers, key)) == "missing_digest"


def test_digest_without_sha256_entry(key: RSAPrivateKey) -> None:
    headers = mastodon_post(key)
    headers["Digest"] = "MD5=rL0Y20zC+Fzt72VPzMSk2A=="
    assert reason(lambda: check(headers, key)) == "missing_digest"


def test_unsupported_algorithm(key: RSAPrivateKey) -> None:
    headers = mastodon_post(key)
    headers["Signature"] = headers["Signature"].replace("rsa-sha256", "hmac-sha256")
    assert reason(lambda: check(headers, key)) == "unsupported_algorithm"
    rfc = rfc9421_post(key)
    rfc["Signature-Input"] += ';alg="ed25519"'
    assert reason(lambda: check(rfc, key)) == "unsupported_algorithm"


@pytest.mark.parametrize(
    "signature",
    [
        'keyId="k" garbage',
        'keyId="k",headers="(request-target) date"',  # no signature
        'headers="(request-target) date",signature="AAAA"',  # no keyId
        'keyId="k",keyId="k2",headers="(request-target) date",signature="AAAA"',
        'keyId="k",headers="(request-target) host date",signature="!!notbase64!!"',
        'keyId="k",headers="(request-target) host date (nonsense)",signature="AAAA"',
        'keyId="k",headers="(request-target) host date x-absent",signature="AAAA"',
    ],
)
def test_malformed_cavage(signature: str) -> None:
    headers = {"Host": "coop.example", "Date": DATE, "Signature": signature}
    action = lambda: parse_signature(method="POST", target_uri=INBOX, headers=headers)  # noqa: E731
    assert reason(action) == "malformed_signature"


def test_invalid_date_header_is_malformed(key: RSAPrivateKey) -> None:
    headers = mastodon_post(key)
    headers["Date"] = "yesterday-ish"
    assert reason(lambda: check(headers, key)) == "malformed_signature"


@pytest.mark.parametrize(
    ("signature_input", "signature"),
    [
        ("sig1=(", "sig1=:AAAA:"),
        ('sig1=("@method" "@target-uri");created=1;keyid="k"', "sig1=AAAA"),
        ('sig1=("@method" "@target-uri");created=1;keyid="k"', "other=:AAAA:"),
        ('sig1=("@method" "@target-uri");created=1', "sig1=:AAAA:"),  # no keyid
        ('sig1=("@method" "@target-uri" "@method");created=1;keyid="k"', "sig1=:AAAA:"),
        ('sig1=("@method" "@target-uri" "@status");created=1;keyid="k"', "sig1=:AAAA:"),
        ('sig1=("@method" "@target-uri" "x-absent");created=1;keyid="k"', "sig1=:AAAA:"),
        ('sig1=("@method" "@target-uri" "a";sf);created=1;keyid="k"', "sig1=:AAAA:"),
        ('sig1=("@method" "@target-uri");created=soon;keyid="k"', "sig1=:AAAA:"),
        ('sig1="@method"', "sig1=:AAAA:"),
    ],
)
def test_malformed_rfc9421(signature_input: str, signature: str) -> None:
    headers = {"Signature-Input": signature_input, "Signature": signature}
    action = lambda: parse_signature(method="POST", target_uri=INBOX, headers=headers)  # noqa: E731
    assert reason(action) == "malformed_signature"


def test_no_signature_at_all() -> None:
    for headers in ({}, {"Host": "coop.example", "Authorization": "Bearer abc"}):
        action = lambda h=headers: parse_signature(method="POST", target_uri=INBOX, headers=h)  # noqa: E731
        assert reason(action) == "missing_signature"
    rfc_without_signature = {"Signature-Input": 'sig1=("@method");created=1;keyid="k"'}
    assert reason(
        lambda: parse_signature(method="POST", target_uri=INBOX, headers=rfc_without_signature)
    ) == "missing_signature"  # fmt: skip


@pytest.mark.parametrize(
    ("method", "covered"),
    [
        ("POST", ""),  # absent: defaults to "date"
        ("POST", 'headers="(request-target) host",'),  # no date nor (created)
        ("POST", 'headers="host date",'),  # no (request-target) nor digest
        ("GET", 'headers="(request-target) date",'),  # GET without host
    ],
)
def test_headers_not_covered(method: str, covered: str) -> None:
    headers = {
        "Host": "coop.example",
        "Date": DATE,
        "Signature": f'keyId="k",{covered}signature="AAAA"',
    }
    action = lambda: parse_signature(method=method, target_uri=INBOX, headers=headers)  # noqa: E731
    assert reason(action) == "headers_not_covered"


@pytest.mark.parametrize(
    "components",
    ['"@method" "@authority"', '"@method" "@path"', '"@target-uri"', '"@authority" "@path"'],
)
def test_rfc9421_must_cover_method_and_target_uri(components: str) -> None:
    headers = {
        "Signature-Input": f'sig1=({components});created=1;keyid="k"',
        "Signature": "sig1=:AAAA:",
    }
    action = lambda: parse_signature(method="POST", target_uri=INBOX, headers=headers)  # noqa: E731
    assert reason(action) == "headers_not_covered"


def test_missing_date(key: RSAPrivateKey) -> None:
    headers = mastodon_post(key)
    del headers["Date"]
    assert reason(lambda: check(headers, key)) == "missing_date"
    rfc = {
        "Signature-Input": 'sig1=("@method" "@target-uri");keyid="k"',
        "Signature": "sig1=:AAAA:",
    }
    assert reason(lambda: check(rfc, key)) == "missing_date"


def test_error_carries_reason_and_detail() -> None:
    error = SignatureError("bad_signature", "does not verify")
    assert (error.reason, error.detail) == ("bad_signature", "does not verify")
    assert str(error) == "bad_signature: does not verify"


def test_key_owner_id() -> None:
    assert key_owner_id("https://m.example/users/a#main-key") == "https://m.example/users/a"
    assert key_owner_id(GTS_KEY) == GTS_KEY
