"""A peer's long-term identity: its static X25519 key pair, and the fingerprint shown to people.

Identity is the key, never a nick or an address.  The secret lives in the profile
directory, readable by the owner only, created on first use: an Ed25519 seed, from which
the X25519 key derives (`p2pim.wire.signing`), so the same identity also signs room
messages.  A key file from before rooms holds a bare X25519 key: it still works for
everything but signing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from p2pim.wire import noise, signing

KEY_FILE = "identity.key"
SEED_MAGIC = b"p2pim-ed25519-seed\n"  # then the 32-byte seed
SHORT_ID_LEN = 8


FINGERPRINT_HEX = 64  # a fingerprint's length: SHA-256 in lowercase hex


def fingerprint(public_key: bytes) -> str:
    """SHA-256 of the public key, lowercase hex: the canonical printable identity."""
    return hashlib.sha256(public_key).hexdigest()


def format_fingerprint(fp: str) -> str:
    """Group a fingerprint for reading aloud: `1a2b 3c4d ...`."""
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


@dataclass(frozen=True, slots=True)
class Identity:
    private_key: bytes  # X25519, the Noise static key
    public_key: bytes
    seed: bytes | None = None  # Ed25519: None for a key file from before rooms

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    @property
    def short_id(self) -> str:
        return self.fingerprint[:SHORT_ID_LEN]

    @property
    def verify_key(self) -> bytes:
        """The Ed25519 public key (empty if this identity cannot sign)."""
        return signing.verify_key(self.seed) if self.seed else b""

    def sign(self, data: bytes) -> bytes:
        if self.seed is None:
            raise ValueError("this profile's key predates signing: rooms need a new profile")
        return signing.sign(self.seed, data)

    @classmethod
    def generate(cls) -> Identity:
        return cls.from_seed(signing.generate_seed())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        private = signing.static_private(seed)
        return cls(private, noise.public_key(private), seed)

    @classmethod
    def from_private(cls, private_key: bytes) -> Identity:
        return cls(private_key, noise.public_key(private_key))


def load_or_create(profile_dir: Path) -> Identity:
    """Load the profile's key, creating the profile and the key on first run."""
    profile_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if profile_dir.stat().st_mode & 0o077:
        profile_dir.chmod(0o700)  # the key and history are nobody else's business
    path = profile_dir / KEY_FILE
    try:
        private = path.read_bytes()
    except FileNotFoundError:
        identity = Identity.generate()
        assert identity.seed is not None
        try:
            _write_private(path, SEED_MAGIC + identity.seed)
            return identity
        except FileExistsError:  # another process created the profile first: use its key
            private = path.read_bytes()
    if private.startswith(SEED_MAGIC) and len(private) == len(SEED_MAGIC) + signing.SEED_SIZE:
        return Identity.from_seed(private[len(SEED_MAGIC) :])
    if len(private) != 32:
        raise ValueError(f"{path} is not a p2pim identity key")
    return Identity.from_private(private)  # from before rooms: it cannot sign


def _write_private(path: Path, private: bytes) -> None:
    # Write to a temporary name with owner-only permissions from the start, fsync, then
    # link into place: a crash never leaves a half-written key, and a racing second
    # process cannot replace the first one's key (link fails if the name exists; the
    # caller then loads the winner's key).
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, private)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink()


SAFETY_NUMBER_VERSION = 0
SAFETY_NUMBER_ITERATIONS = 5200


def safety_number(key_a: bytes, key_b: bytes) -> str:
    """The Signal-style 60-digit safety number of two public keys, the same on both sides.

    Each key gives 30 digits: h = SHA-512(version || key || key) (the key doubles as the
    stable identifier, as p2pim has no phone numbers), then h = SHA-512(h || key) 5199 more
    times; the first 30 bytes, as six 5-byte big-endian chunks, each modulo 100000 and
    zero-padded, are the digits.  The two halves are sorted, so the order of the arguments
    does not matter.
    """
    halves = []
    for key in (key_a, key_b):
        if len(key) != 32:
            raise ValueError("a public key is 32 bytes")
        h = hashlib.sha512(SAFETY_NUMBER_VERSION.to_bytes(2, "big") + key + key).digest()
        for _ in range(SAFETY_NUMBER_ITERATIONS - 1):
            h = hashlib.sha512(h + key).digest()
        chunks = (int.from_bytes(h[i : i + 5], "big") % 100000 for i in range(0, 30, 5))
        halves.append("".join(f"{chunk:05d}" for chunk in chunks))
    return "".join(sorted(halves))
