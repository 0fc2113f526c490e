"""A profile directory's lock and control socket path: standard library only, so that a
one-shot command can find out whether a node runs, and where to reach it, without loading
the node (p2pim.control serves the socket; it re-exports these names)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

SOCKET_NAME = "control.sock"
LOCK_NAME = "node.lock"
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes, the last a NUL


class ProfileInUse(Exception):
    """Another node already runs on this profile."""


def socket_path(profile: Path) -> Path:
    return profile / SOCKET_NAME


@contextlib.contextmanager
def hold_profile(profile: Path) -> Iterator[None]:
    """Hold the profile's lock for the duration of the block (ProfileInUse if taken).
    The kernel drops the lock when the process dies, so a crash never leaves it held."""
    profile.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(profile / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ProfileInUse(f"a p2pim node already runs on the profile {profile}") from None
    try:
        yield
    finally:
        os.close(fd)


def node_running(profile: Path) -> bool:
    """Is a node running on this profile (holding its lock) right now?"""
    try:
        with hold_profile(profile):
            return False
    except ProfileInUse:
        return True
