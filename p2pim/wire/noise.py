"""The Noise Protocol Framework (revision 34), built on `cryptography` primitives (its
other home is wire/signing.py).  Synchronous, no I/O: callers move the bytes.

Errors carry blame (see `p2pim.wire.errors`): whatever the peer can cause raises
`RemoteProtocolError`, misuse by our own code raises `LocalProtocolError`, and no
`cryptography` or `ValueError` exception escapes a read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x448 import X448PrivateKey, X448PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError

PROTOCOL_NAME = "Noise_XX_25519_AESGCM_SHA256"

MAX_NONCE = 2**64 - 1  # reserved by the spec for rekey, never used for a message
MAX_MESSAGE_LEN = 65535  # spec section 3: the limit of every Noise message
TAG_LEN = 16


# --- DH functions (section 12.1, 12.2) -----------------------------------------------


def _x25519_generate() -> bytes:
    return X25519PrivateKey.generate().private_bytes_raw()


def _x25519_public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _x25519(private: bytes, public: bytes) -> bytes:
    key = X25519PrivateKey.from_private_bytes(private)
    return key.exchange(X25519PublicKey.from_public_bytes(public))


def _x448_generate() -> bytes:
    return X448PrivateKey.generate().private_bytes_raw()


def _x448_public(private: bytes) -> bytes:
    return X448PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _x448(private: bytes, public: bytes) -> bytes:
    key = X448PrivateKey.from_private_bytes(private)
    return key.exchange(X448PublicKey.from_public_bytes(public))


class _DH(NamedTuple):
    dhlen: int
    generate: Callable[[], bytes]
    public: Callable[[bytes], bytes]
    exchange: Callable[[bytes, bytes], bytes]


_DHS = {
    "25519": _DH(32, _x25519_generate, _x25519_public, _x25519),
    "448": _DH(56, _x448_generate, _x448_public, _x448),
}


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair as raw (private, public) bytes, 32 each."""
    private = _x25519_generate()
    return private, _x25519_public(private)


def public_key(private: bytes) -> bytes:
    """The X25519 public key of a raw 32-byte private key."""
    if len(private) != 32:
        raise LocalProtocolError("an X25519 private key is 32 bytes")
    return _x25519_public(private)


# --- Cipher functions (section 12.3, 12.4) -------------------------------------------

_AEAD: TypeAlias = AESGCM | ChaCha20Poly1305


class _Cipher(NamedTuple):
    new: Callable[[bytes], _AEAD]
    # Byte order of the 64-bit counter that follows 4 zero bytes in the 96-bit nonce.
    byteorder: Literal["big", "little"]


_CIPHERS = {
    "AESGCM": _Cipher(AESGCM, "big"),
    "ChaChaPoly": _Cipher(ChaCha20Poly1305, "little"),
}


# --- Hash functions (section 12.5 - 12.8) ---------------------------------------------


class _Hash(NamedTuple):
    name: str  # hashlib name; hmac uses the same block length the spec gives
    hashlen: int

    def hash(self, data: bytes) -> bytes:
        return hashlib.new(self.name, data).digest()

    def hkdf(self, ck: bytes, ikm: bytes, outputs: int) -> list[bytes]:
        """HKDF of section 4.3: two or three hashlen outputs chained from HMAC."""
        temp = hmac.digest(ck, ikm, self.name)
        out = [hmac.digest(temp, b"\x01", self.name)]
        for i in range(2, outputs + 1):
            out.append(hmac.digest(temp, out[-1] + bytes([i]), self.name))
        return out


_HASHES = {
    "SHA256": _Hash("sha256", 32),
    "SHA512": _Hash("sha512", 64),
    "BLAKE2s": _Hash("blake2s", 32),
    "BLAKE2b": _Hash("blake2b", 64),
}


# --- CipherState (section 5.1) --------------------------------------------------------


class CipherState:
    """An AEAD key and its nonce counter `n`.  Without a key it passes data through."""

    def __init__(self, cipher: str = "AESGCM", key: bytes | None = None) -> None:
        if cipher not in _CIPHERS:
            raise LocalProtocolError(f"unknown cipher {cipher!r}")
        self._cipher = _CIPHERS[cipher]
        self._aead: _AEAD | None = None
        self._dead = False
        self.n = 0
        self.initialize_key(key)

    def initialize_key(self, key: bytes | None) -> None:
        if key is not None and len(key) != 32:
            raise LocalProtocolError("a cipher key is 32 bytes")
        # One AEAD object per key, not per message: this is the file-transfer hot path.
        self._aead = None if key is None else self._cipher.new(key)
        self.n = 0

    def has_key(self) -> bool:
        return self._aead is not None

    def _nonce(self, n: int) -> bytes:
        return b"\x00\x00\x00\x00" + n.to_bytes(8, self._cipher.byteorder)

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise LocalProtocolError("nonce space exhausted; rekey or start a new session")
        ciphertext = self._aead.encrypt(self._nonce(self.n), plaintext, ad)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._dead:
            # Fail closed: a stream never legitimately carries a forged frame, so after
            # one nothing from this peer is trusted again.
            raise RemoteProtocolError("cipher state failed earlier; session is dead")
        if self._aead is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            self._dead = True
            raise RemoteProtocolError("peer exhausted the nonce space")
        try:
            plaintext = self._aead.decrypt(self._nonce(self.n), ciphertext, ad)
        except (InvalidTag, ValueError, OverflowError):
            self._dead = True
            raise RemoteProtocolError("decryption failed (bad tag)") from None
        self.n += 1
        return plaintext

    def rekey(self) -> None:
        """Section 4.2: the new key is ENCRYPT(k, maxnonce, "", zeros)[:32]; n is kept."""
        if self._aead is None:
            raise LocalProtocolError("rekey without a key")
        n = self.n
        self.initialize_key(self._aead.encrypt(self._nonce(MAX_NONCE), bytes(32), b"")[:32])
        self.n = n


# --- SymmetricState (section 5.2) -----------------------------------------------------


class SymmetricState:
    def __init__(self, protocol_name: bytes, cipher: str, hash_name: str) -> None:
        self._cipher_name = cipher
        self._hash = _HASHES[hash_name]
        hashlen = self._hash.hashlen
        if len(protocol_name) <= hashlen:
            self.h = protocol_name.ljust(hashlen, b"\x00")
        else:
            self.h = self._hash.hash(protocol_name)
        self.ck = self.h
        self.cipher_state = CipherState(cipher)

    def _key(self, material: bytes) -> bytes:
        return material[:32]  # 64-byte hashes are truncated to the 32-byte cipher key

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = self._hash.hkdf(self.ck, ikm, 2)
        self.cipher_state.initialize_key(self._key(temp_k))

    def mix_hash(self, data: bytes) -> None:
        self.h = self._hash.hash(self.h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, temp_k = self._hash.hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.cipher_state.initialize_key(self._key(temp_k))

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher_state.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher_state.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        temp_k1, temp_k2 = self._hash.hkdf(self.ck, b"", 2)
        return (
            CipherState(self._cipher_name, self._key(temp_k1)),
            CipherState(self._cipher_name, self._key(temp_k2)),
        )


# --- Handshake patterns (sections 7.4, 7.5, 18), as data ------------------------------
# name -> ((initiator pre-message, responder pre-message), messages); messages alternate
# initiator, responder, ... starting with the initiator.

_Pattern = tuple[tuple[str, str], tuple[str, ...]]

_PATTERNS: dict[str, _Pattern] = {
    "N": (("", "s"), ("e, es",)),
    "K": (("s", "s"), ("e, es, ss",)),
    "X": (("", "s"), ("e, es, s, ss",)),
    "NN": (("", ""), ("e", "e, ee")),
    "NK": (("", "s"), ("e, es", "e, ee")),
    "NX": (("", ""), ("e", "e, ee, s, es")),
    "XN": (("", ""), ("e", "e, ee", "s, se")),
    "XK": (("", "s"), ("e, es", "e, ee", "s, se")),
    "XX": (("", ""), ("e", "e, ee, s, es", "s, se")),
    "KN": (("s", ""), ("e", "e, ee, se")),
    "KK": (("s", "s"), ("e, es, ss", "e, ee, se")),
    "KX": (("s", ""), ("e", "e, ee, se, s, es")),
    "IN": (("", ""), ("e, s", "e, ee, se")),
    "IK": (("", "s"), ("e, es, s, ss", "e, ee, se")),
    "IX": (("", ""), ("e, s", "e, ee, se, s, es")),
    "NK1": (("", "s"), ("e", "e, ee, es")),
    "NX1": (("", ""), ("e", "e, ee, s", "es")),
    "X1N": (("", ""), ("e", "e, ee", "s", "se")),
    "X1K": (("", "s"), ("e, es", "e, ee", "s", "se")),
    "XK1": (("", "s"), ("e", "e, ee, es", "s, se")),
    "X1K1": (("", "s"), ("e", "e, ee, es", "s", "se")),
    "X1X": (("", ""), ("e", "e, ee, s, es", "s", "se")),
    "XX1": (("", ""), ("e", "e, ee, s", "es, s, se")),
    "X1X1": (("", ""), ("e", "e, ee, s", "es, s", "se")),
    "K1N": (("s", ""), ("e", "e, ee", "se")),
    "K1K": (("s", "s"), ("e, es", "e, ee", "se")),
    "KK1": (("s", "s"), ("e", "e, ee, se, es")),
    "K1K1": (("s", "s"), ("e", "e, ee, es", "se")),
    "K1X": (("s", ""), ("e", "e, ee, s, es", "se")),
    "KX1": (("s", ""), ("e", "e, ee, se, s", "es")),
    "K1X1": (("s", ""), ("e", "e, ee, s", "se, es")),
    "I1N": (("", ""), ("e, s", "e, ee", "se")),
    "I1K": (("", "s"), ("e, es, s", "e, ee", "se")),
    "IK1": (("", "s"), ("e, s", "e, ee, se, es")),
    "I1K1": (("", "s"), ("e, s", "e, ee, es", "se")),
    "I1X": (("", ""), ("e, s", "e, ee, s, es", "se")),
    "IX1": (("", ""), ("e, s", "e, ee, se, s", "es")),
    "I1X1": (("", ""), ("e, s", "e, ee, s", "se, es")),
}

_PATTERN_NAME = re.compile(r"([NKXI1]+)((?:psk\d+)(?:\+psk\d+)*)?")


def _tokens(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _parse_pattern(name: str) -> tuple[tuple[list[str], list[str]], list[list[str]]]:
    """Pattern with its psk modifiers applied (section 9.2)."""
    match = _PATTERN_NAME.fullmatch(name)
    if match is None or match.group(1) not in _PATTERNS:
        raise LocalProtocolError(f"unsupported handshake pattern {name!r}")
    (pre_i, pre_r), messages = _PATTERNS[match.group(1)]
    msgs = [_tokens(m) for m in messages]
    for modifier in (match.group(2) or "").split("+"):
        if not modifier:
            continue
        n = int(modifier[3:])
        if n > len(msgs):
            raise LocalProtocolError(f"{modifier} is past the last message of {name!r}")
        # psk0 opens the first message; pskN closes message N.
        if n == 0:
            msgs[0].insert(0, "psk")
        else:
            msgs[n - 1].append("psk")
    return (_tokens(pre_i), _tokens(pre_r)), msgs


# --- HandshakeState (section 5.3) -----------------------------------------------------


class HandshakeState:
    """One side of a Noise handshake; `split()` once `complete` for transport ciphers."""

    def __init__(
        self,
        protocol_name: str,
        *,
        initiator: bool,
        prologue: bytes = b"",
        s: bytes | None = None,
        e: bytes | None = None,
        rs: bytes | None = None,
        re: bytes | None = None,
        psks: Sequence[bytes] = (),
    ) -> None:
        parts = protocol_name.split("_")
        if (
            len(parts) != 5
            or parts[0] != "Noise"
            or parts[2] not in _DHS
            or parts[3] not in _CIPHERS
            or parts[4] not in _HASHES
        ):
            raise LocalProtocolError(f"unsupported protocol name {protocol_name!r}")
        (pre_i, pre_r), self._messages = _parse_pattern(parts[1])
        self._dh = _DHS[parts[2]]
        self._initiator = initiator
        self._psk_mode = any("psk" in m for m in self._messages)
        self._psks = list(psks)
        if len(self._psks) != sum(m.count("psk") for m in self._messages):
            raise LocalProtocolError("need exactly one psk per psk token of the pattern")
        if any(len(p) != 32 for p in self._psks):
            raise LocalProtocolError("a psk is 32 bytes")
        for key in (s, e, rs, re):
            if key is not None and len(key) != self._dh.dhlen:
                raise LocalProtocolError(f"{parts[2]} keys are {self._dh.dhlen} bytes")
        self._s = s
        self._s_pub = None if s is None else self._dh.public(s)
        self._e = e
        self._e_pub = None if e is None else self._dh.public(e)
        self._rs = rs
        self._re = re
        self._index = 0  # next message of self._messages
        self._failed = False
        self._split = False

        self._ss = SymmetricState(protocol_name.encode("ascii"), parts[3], parts[4])
        self._ss.mix_hash(prologue)
        for owner_is_initiator, pre in ((True, pre_i), (False, pre_r)):
            local = owner_is_initiator == initiator
            for token in pre:
                if token == "e":
                    key = self._e_pub if local else self._re
                else:
                    key = self._s_pub if local else self._rs
                if key is None:
                    side = "local" if local else "remote"
                    raise LocalProtocolError(f"pattern needs the {side} {token!r} key")
                self._ss.mix_hash(key)
                if token == "e" and self._psk_mode:
                    self._ss.mix_key(key)

    @property
    def complete(self) -> bool:
        return self._index == len(self._messages)

    @property
    def messages_remaining(self) -> int:
        return len(self._messages) - self._index

    @property
    def remote_static(self) -> bytes | None:
        # After a failure the key is unauthenticated: the payload tag vouches for it.
        return None if self._failed else self._rs

    @property
    def handshake_hash(self) -> bytes:
        return self._ss.h

    def _check_turn(self, writing: bool) -> None:
        if self._failed:
            raise LocalProtocolError("handshake failed earlier; start a new one")
        if self.complete:
            raise LocalProtocolError("handshake already complete")
        if (self._index % 2 == 0) != (self._initiator == writing):
            raise LocalProtocolError("it is the other side's turn")

    def _mix_dh(self, token: str) -> None:
        # Tokens name (initiator key, responder key); map them to local/remote by role.
        first, second = token[0], token[1]
        local, remote = (first, second) if self._initiator else (second, first)
        private = self._e if local == "e" else self._s
        public = self._re if remote == "e" else self._rs
        if private is None or public is None:
            raise LocalProtocolError(f"{token!r} needs a key this side does not have")
        try:
            shared = self._dh.exchange(private, public)
        except ValueError:  # low-order point: the shared secret would be all zeros
            raise RemoteProtocolError("invalid public key") from None
        self._ss.mix_key(shared)

    def write_message(self, payload: bytes = b"") -> bytes:
        self._check_turn(writing=True)
        out: list[bytes] = []
        try:
            for token in self._messages[self._index]:
                if token == "e":
                    if self._e is None:
                        self._e = self._dh.generate()
                        self._e_pub = self._dh.public(self._e)
                    assert self._e_pub is not None
                    out.append(self._e_pub)
                    self._ss.mix_hash(self._e_pub)
                    if self._psk_mode:
                        self._ss.mix_key(self._e_pub)
                elif token == "s":
                    if self._s_pub is None:
                        raise LocalProtocolError("pattern needs a local static key")
                    out.append(self._ss.encrypt_and_hash(self._s_pub))
                elif token == "psk":
                    self._ss.mix_key_and_hash(self._psks.pop(0))
                else:
                    self._mix_dh(token)
            out.append(self._ss.encrypt_and_hash(payload))
        except BaseException:
            self._failed = True  # state is half-advanced; it must not be reused
            raise
        message = b"".join(out)
        if len(message) > MAX_MESSAGE_LEN:
            self._failed = True
            raise LocalProtocolError("handshake message over 65535 bytes")
        self._index += 1
        return message

    def read_message(self, message: bytes) -> bytes:
        self._check_turn(writing=False)
        try:
            if len(message) > MAX_MESSAGE_LEN:
                raise RemoteProtocolError("handshake message over 65535 bytes")
            view = bytes(message)
            dhlen = self._dh.dhlen
            for token in self._messages[self._index]:
                if token == "e":
                    if len(view) < dhlen:
                        raise RemoteProtocolError("handshake message truncated")
                    self._re, view = view[:dhlen], view[dhlen:]
                    self._ss.mix_hash(self._re)
                    if self._psk_mode:
                        self._ss.mix_key(self._re)
                elif token == "s":
                    size = dhlen + (TAG_LEN if self._ss.cipher_state.has_key() else 0)
                    if len(view) < size:
                        raise RemoteProtocolError("handshake message truncated")
                    self._rs = self._ss.decrypt_and_hash(view[:size])
                    view = view[size:]
                elif token == "psk":
                    self._ss.mix_key_and_hash(self._psks.pop(0))
                else:
                    self._mix_dh(token)
            payload = self._ss.decrypt_and_hash(view)
        except BaseException:
            self._failed = True  # abort per section 5.3: nothing more is accepted
            raise
        self._index += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """(send, receive) cipher states for this side; allowed once, when complete."""
        if not self.complete or self._failed:
            raise LocalProtocolError("split before the handshake is complete")
        if self._split:
            # A second split would hand out the same keys with nonces reset to zero.
            raise LocalProtocolError("split may be called only once")
        self._split = True
        c1, c2 = self._ss.split()
        return (c1, c2) if self._initiator else (c2, c1)
