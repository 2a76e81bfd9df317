from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from federation.keys import (
    KeyFormatError,
    Signer,
    dump_private_key_pem,
    dump_public_key_pem,
    generate_private_key,
    load_private_key,
    load_public_key,
)


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    return generate_private_key()


def test_generated_key_is_rsa_2048_e65537(key: RSAPrivateKey) -> None:
    assert key.key_size == 2048
    assert key.public_key().public_numbers().e == 65537


def test_private_pem_round_trip(key: RSAPrivateKey) -> None:
    pem = dump_private_key_pem(key)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS8, unencrypted
    loaded = load_private_key(pem)
    assert loaded.private_numbers() == key.private_numbers()


def test_public_pem_round_trip_from_private_or_public(key: RSAPrivateKey) -> None:
    pem = dump_public_key_pem(key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")  # SubjectPublicKeyInfo
    assert dump_public_key_pem(key.public_key()) == pem
    assert load_public_key(pem).public_numbers() == key.public_key().public_numbers()


def test_loaders_cache_by_pem(key: RSAPrivateKey) -> None:
    private_pem = dump_private_key_pem(key)
    public_pem = dump_public_key_pem(key)
    assert load_private_key(private_pem) is load_private_key(private_pem)
    assert load_public_key(public_pem) is load_public_key(public_pem)


def test_public_key_accepts_surrounding_whitespace(key: RSAPrivateKey) -> None:
    pem = dump_public_key_pem(key)
    assert load_public_key(f"\n  {pem}\n\n").public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a pem",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nnon-ascii ✗\n-----END PUBLIC KEY-----\n",
    ],
)
def test_malformed_public_pem(pem: str) -> None:
    with pytest.raises(KeyFormatError) as info:
        load_public_key(pem)
    assert info.value.reason == "malformed"
    assert str(info.value).startswith("malformed: ")


def test_malformed_private_pem(key: RSAPrivateKey) -> None:
    with pytest.raises(KeyFormatError) as info:
        load_private_key(dump_public_key_pem(key))
    assert info.value.reason == "malformed"


def test_non_rsa_keys_are_rejected() -> None:
    other = ed25519.Ed25519PrivateKey.generate()
    public_pem = (
        other.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private_pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(KeyFormatError) as info:
        load_public_key(public_pem)
    assert info.value.reason == "not_rsa"
    with pytest.raises(KeyFormatError) as info:
        load_private_key(private_pem)
    assert info.value.reason == "not_rsa"


def test_signer_is_frozen_and_hides_the_key(key: RSAPrivateKey) -> None:
    signer = Signer(key_id="https://coop.example/users/a#main-key", private_key=key)
    assert "private_key" not in repr(signer)
    with pytest.raises(AttributeError):
        signer.key_id = "other"  # type: ignore[misc]
