"""The wall clock: the one place p2pim reads the time of day.

Timestamps that are stored or sent (and shown) come from here; intervals and deadlines
use trio's clock, which never jumps."""

from __future__ import annotations

import os
import time


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def new_message_id() -> bytes:
    """16 bytes: 48-bit milliseconds then 80 random bits, so ids sort by creation time."""
    return now_ms().to_bytes(6, "big") + os.urandom(10)


def parse_message_id(text: str) -> bytes:
    """A message id as faces give it (32 hex digits); ValueError otherwise."""
    try:
        found = bytes.fromhex(text)
    except (TypeError, ValueError):
        found = b""
    if len(found) != 16:
        raise ValueError("a message id is 32 hex digits")
    return found
