"""Ed25519 signatures bound to the X25519 identity key.

A profile's secret is an Ed25519 seed.  Its X25519 (Noise static) private key is the
first half of SHA-512(seed), the scalar Ed25519 itself signs with, so the X25519 public
key is the Montgomery form of the Ed25519 public key: anyone can check that a signing
key belongs to an identity (`binds`) without having met it.  That lets room messages be
relayed by any member and still be verified (DESIGN §2).  The only other home of
`cryptography`, beside `noise`.
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SEED_SIZE = KEY_SIZE = 32
SIGNATURE_SIZE = 64
_P = 2**255 - 19
# The u-coordinates of Curve25519's points of small order: no real identity has one, and
# a signing key mapping to one could be a forged "nobody" key.
_SMALL_ORDER_U = frozenset(
    (
        0,
        1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
        _P - 1,
    )
)


def generate_seed() -> bytes:
    return secrets.token_bytes(SEED_SIZE)


def static_private(seed: bytes) -> bytes:
    """The X25519 private key (X25519 clamps it exactly as Ed25519 clamps its scalar)."""
    return hashlib.sha512(seed).digest()[:32]


def verify_key(seed: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(seed: bytes, data: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(data)


def verify(key: bytes, data: bytes, signature: bytes) -> bool:
    if len(key) != KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def binds(key: bytes, static_public: bytes) -> bool:
    """Is `key` the Ed25519 key of the identity whose X25519 public key is
    `static_public`?  (u = (1 + y) / (1 - y), the birational map to Montgomery form.)"""
    if len(key) != KEY_SIZE or len(static_public) != KEY_SIZE:
        return False
    y = int.from_bytes(key, "little") & ((1 << 255) - 1)
    if y >= _P or y == 1:
        return False
    u = (1 + y) * pow(1 - y, _P - 2, _P) % _P
    return u not in _SMALL_ORDER_U and u.to_bytes(32, "little") == static_public
