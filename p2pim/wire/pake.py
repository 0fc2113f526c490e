"""Pairing codes run through SPAKE2, turned into a Noise PSK.

This is the only module of p2pim that imports `spake2`.  It is synchronous and does no
I/O: callers move the bytes.

A short one-time code (6 digits shown on one screen, typed on the other) is never used as
a key itself: both sides run it through SPAKE2 and the shared SPAKE2 key becomes the 32-byte
PSK of a `Noise_XXpsk2` handshake, whose prologue binds `PAIRING_MAGIC + transcript()`.  An
eavesdropper learns nothing it could test a guess against offline; a man in the middle gets
one online guess per pairing attempt.  A wrong code does not raise here (SPAKE2 cannot
tell): it yields a different PSK, and the Noise handshake fails.

Errors carry blame (see `p2pim.wire.errors`): a malformed peer message raises
`RemoteProtocolError`, misuse by our own code raises `LocalProtocolError`, and no `spake2`
or `ValueError` exception escapes `finish`.
"""

from __future__ import annotations

import hashlib
import secrets

from spake2 import SPAKE2_A, SPAKE2_B, SPAKEError  # type: ignore[import-untyped]
from spake2.ed25519_basic import (  # type: ignore[import-untyped]
    NotOnCurve,
    bytes_to_unknown_group_element,
)

from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError

PAIRING_MAGIC = b"p2pim-pair/1"
CODE_DIGITS = 6
MIN_CODE_DIGITS = 6
ID_INITIATOR = b"p2pim-initiator"
ID_RESPONDER = b"p2pim-responder"
PSK_LEN = 32
# spake2's Ed25519 parameters: one side byte (b"A" or b"B") and a 32-byte group element.
MESSAGE_LEN = 33
_SIDE_INITIATOR = b"A"
_SIDE_RESPONDER = b"B"
_PSK_PERSON = b"p2pim-psk"
_DIGITS = "0123456789"
_SEPARATORS = " \t-"


def generate_code(digits: int = CODE_DIGITS) -> str:
    """A fresh random code of `digits` decimal digits, e.g. `"493027"`."""
    if digits < MIN_CODE_DIGITS:
        raise ValueError(f"a pairing code has at least {MIN_CODE_DIGITS} digits")
    return "".join(secrets.choice(_DIGITS) for _ in range(digits))


def format_code(code: str) -> str:
    """A code for display in two halves, `"493-027"`; `normalize_code` accepts it back."""
    half = (len(code) + 1) // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_code(code: str, *, digits: int = CODE_DIGITS) -> bytes:
    """The code as ASCII digits, spaces and dashes removed; `ValueError` if not a code."""
    stripped = "".join(c for c in code if c not in _SEPARATORS)
    if len(stripped) != digits or any(c not in _DIGITS for c in stripped):
        raise ValueError(f"a pairing code is {digits} digits")
    return stripped.encode("ascii")


class Pairing:
    """One side of a SPAKE2 exchange: send `message()`, `finish()` with the peer's."""

    def __init__(self, code: str, *, initiator: bool, digits: int = CODE_DIGITS) -> None:
        password = normalize_code(code, digits=digits)
        side = SPAKE2_A if initiator else SPAKE2_B
        self._initiator = initiator
        self._spake = side(password, idA=ID_INITIATOR, idB=ID_RESPONDER)
        self._message: bytes = self._spake.start()
        self._peer_side = _SIDE_RESPONDER if initiator else _SIDE_INITIATOR
        self._peer_message: bytes | None = None
        self._used = False

    def message(self) -> bytes:
        """This side's SPAKE2 message, to send to the peer (the same bytes on every call)."""
        return self._message

    def finish(self, peer_message: bytes) -> bytes:
        """The 32-byte Noise PSK from the peer's message; callable once, even on failure."""
        if self._used:
            raise LocalProtocolError("finish() may be called only once per pairing")
        self._used = True
        if len(peer_message) != MESSAGE_LEN:
            raise RemoteProtocolError(
                f"a pairing message is {MESSAGE_LEN} bytes, got {len(peer_message)}"
            )
        if peer_message[:1] != self._peer_side:
            raise RemoteProtocolError("the pairing message is not from the other side")
        try:
            # spake2 decodes y modulo p and ignores a sign bit on x = 0, so it accepts
            # non-canonical encodings, among them one of the neutral element that slips
            # past its own zero check.  Only the canonical encoding of a point is valid.
            body = bytes(peer_message[1:])
            if bytes_to_unknown_group_element(body).to_bytes() != body:
                raise RemoteProtocolError("non-canonical group element in pairing message")
            key: bytes = self._spake.finish(bytes(peer_message))
        except (SPAKEError, NotOnCurve, ValueError) as exc:
            raise RemoteProtocolError(f"bad pairing message: {exc!r}") from exc
        self._peer_message = bytes(peer_message)
        return hashlib.blake2b(key, digest_size=PSK_LEN, person=_PSK_PERSON).digest()

    def transcript(self) -> bytes:
        """Both SPAKE2 messages, initiator's first, for the Noise prologue (after `finish`)."""
        if self._peer_message is None:
            raise LocalProtocolError("transcript() needs a successful finish()")
        if self._initiator:
            return self._message + self._peer_message
        return self._peer_message + self._message
