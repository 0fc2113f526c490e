"""A chaos proxy for tests: a trio TCP relay on loopback between a dialler and a peer.

It forwards both directions and can, on demand, flip a byte or cut the connection after
some bytes; it records what the dialler sent, so a test can replay it into a new
connection.  Loopback only: it listens on 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

UP, DOWN = "up", "down"  # dialler -> peer, peer -> dialler
MAX_RECORDED = 1 << 20


@dataclass
class Faults:
    """What to do to one direction's next bytes."""

    flip_next: bool = False  # flip one bit in the next chunk (then forward normally)
    cut_after: int | None = None  # close the connection after this many more bytes


class ChaosProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.faults = {UP: Faults(), DOWN: Faults()}
        self.recorded: list[bytearray] = []  # per connection: what the dialler sent
        self.flipped = 0
        self.connections = 0

    async def run(
        self,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._relay, listeners, task_status=task_status)

    async def _relay(self, client: trio.SocketStream) -> None:
        self.connections += 1
        record = bytearray()
        self.recorded.append(record)
        try:
            server = await trio.open_tcp_stream(*self.target)
        except OSError:
            await trio.aclose_forcefully(client)
            return
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, client, server, UP, record, nursery.cancel_scope)
            nursery.start_soon(self._pump, server, client, DOWN, None, nursery.cancel_scope)

    async def _pump(
        self,
        source: trio.SocketStream,
        sink: trio.SocketStream,
        direction: str,
        record: bytearray | None,
        scope: trio.CancelScope,
    ) -> None:
        faults = self.faults[direction]
        try:
            while data := await source.receive_some(65536):
                if record is not None and len(record) < MAX_RECORDED:
                    record += data
                if faults.flip_next:
                    faults.flip_next = False
                    self.flipped += 1
                    data = data[:-1] + bytes([data[-1] ^ 0x01])
                if faults.cut_after is not None:
                    if len(data) >= faults.cut_after:
                        await sink.send_all(data[: faults.cut_after])
                        faults.cut_after = None
                        break
                    faults.cut_after -= len(data)
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()  # one side is done: so is the connection


async def replay(port: int, data: bytes) -> bytes:
    """Send `data` as a fresh connection to 127.0.0.1:`port`; what came back before the
    peer closed it (the caller bounds the wait)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = bytearray()
    async with stream:
        try:
            await stream.send_all(data)
            while chunk := await stream.receive_some(65536):
                received += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    return bytes(received)
