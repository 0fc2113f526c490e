"""Length-prefixed frames: a 2-byte big-endian length, then that many bytes.

The decoder rejects an oversized length as soon as the 2-byte header arrives, so a
peer can never make us buffer more than one maximum-sized frame.
"""

from __future__ import annotations

from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError

HEADER_SIZE = 2
MAX_FRAME_SIZE = 65535  # the Noise message limit; also what 2 bytes can express


def encode_frame(body: bytes) -> bytes:
    if not 0 < len(body) <= MAX_FRAME_SIZE:
        raise LocalProtocolError(f"frame body of {len(body)} bytes is out of range")
    return len(body).to_bytes(HEADER_SIZE, "big") + body


class FrameDecoder:
    """Turns a byte stream into frame bodies, enforcing a (changeable) size limit."""

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """Return the next complete frame body, or None until more bytes arrive."""
        if len(self._buffer) < HEADER_SIZE:
            return None
        length = int.from_bytes(self._buffer[:HEADER_SIZE], "big")
        if length == 0 or length > self.max_frame_size:
            raise RemoteProtocolError(f"frame length {length} outside 1..{self.max_frame_size}")
        end = HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[HEADER_SIZE:end])
        del self._buffer[:end]
        return body

    @property
    def buffered(self) -> int:
        return len(self._buffer)
