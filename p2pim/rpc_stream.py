"""JSON-RPC over a byte stream, one JSON object per line: requests read and answered in
order, notifications written beside them.  The transport for `p2pim.rpc.RpcServer` on
the control socket (p2pim.control) and on stdio (p2pim.daemon)."""

from __future__ import annotations

import json
from typing import Any

import trio

from p2pim import events as ev
from p2pim.rpc import (
    INVALID_REQUEST,
    MAX_REQUEST_BYTES,
    RpcServer,
    error_response,
    event_to_json,
)


class LineSplitter:
    """Splits a byte stream into lines of at most `limit` bytes, holding no more than that.
    A longer line is reported once, as None, and skipped up to its end."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes | bytearray) -> list[bytes | None]:
        lines: list[bytes | None] = []
        self._buffer += data
        start = 0
        while (end := self._buffer.find(b"\n", start)) != -1:
            if self._skipping:
                self._skipping = False
            else:
                too_long = end - start > self.limit
                lines.append(None if too_long else bytes(self._buffer[start:end]))
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > self.limit:
            if not self._skipping:
                lines.append(None)
            self._skipping = True
            self._buffer.clear()
        return lines


class JsonLineWriter:
    def __init__(self, stream: trio.abc.SendStream) -> None:
        self._stream = stream
        self._lock = trio.Lock()

    async def write(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        async with self._lock:
            await self._stream.send_all(data)


def notification(event: ev.NodeEvent) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "event", "params": event_to_json(event)}


async def forward_events(
    events: trio.MemoryReceiveChannel[ev.NodeEvent], writer: JsonLineWriter
) -> None:
    async for event in events:
        await writer.write(notification(event))


async def serve_lines(
    server: RpcServer, stream: trio.abc.ReceiveStream, writer: JsonLineWriter
) -> None:
    """Answer the requests read from `stream`, one per line, in order, until it ends."""
    lines = LineSplitter(MAX_REQUEST_BYTES)
    while chunk := await stream.receive_some(65536):
        for line in lines.feed(chunk):
            response: dict[str, Any] | None
            if line is None:
                response = error_response(None, INVALID_REQUEST, "request line too long")
            elif line.strip():
                response = await server.handle_line(line)
            else:
                continue
            if response is not None:
                await writer.write(response)
