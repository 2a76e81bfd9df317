"""RSA key handling for HTTP signatures: generation, PEM encoding and cached loading.

Loading a PEM is expensive (a validated RSA-2048 private key costs ~36 ms), so both loaders
are memoised on the exact PEM string with a bounded LRU cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from federation.errors import ReasonError

RSA_KEY_SIZE = 2048
RSA_PUBLIC_EXPONENT = 65537


class KeyFormatError(ReasonError):
    """A PEM could not be loaded as an RSA key.

    ``reason`` is a machine code (``"malformed"`` or ``"not_rsa"``), ``detail`` human text.
    """


@dataclass(frozen=True, slots=True)
class Signer:
    """The identity an outgoing request is signed with."""

    key_id: str
    private_key: RSAPrivateKey = field(repr=False)


def generate_private_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_SIZE)


def dump_private_key_pem(key: RSAPrivateKey) -> str:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")


def dump_public_key_pem(key: RSAPrivateKey | RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, RSAPrivateKey) else key
    return public.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


@lru_cache(maxsize=256)
def load_private_key(pem: str) -> RSAPrivateKey:
    """Load an unencrypted PEM private key (PKCS8 or PKCS1). Cached per PEM string."""
    try:
        key = serialization.load_pem_private_key(pem.strip().encode("ascii"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError("malformed", f"cannot load private key: {exc}") from exc
    if not isinstance(key, RSAPrivateKey):
        raise KeyFormatError("not_rsa", f"expected an RSA private key, got {type(key).__name__}")
    return key


@lru_cache(maxsize=4096)
def load_public_key(pem: str) -> RSAPublicKey:
    """Load a PEM public key (SubjectPublicKeyInfo or PKCS1). Cached per PEM string."""
    try:
        key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError("malformed", f"cannot load public key: {exc}") from exc
    if not isinstance(key, RSAPublicKey):
        raise KeyFormatError("not_rsa", f"expected an RSA public key, got {type(key).__name__}")
    return key
