"""An authenticated peer link: a trio stream driven by a `wire.Connection`."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Sequence

import trio

from p2pim.identity import fingerprint
from p2pim.wire import pake
from p2pim.wire.connection import Connection, Established, State
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import Bye, Hello, Message

RECEIVE_SIZE = 65536 + 2


GOODBYE_PATIENCE = 1.0  # seconds a goodbye may take before the link is just closed

class LinkClosed(Exception):
    """The link is gone (peer closed it, it failed, or a send was interrupted)."""


class PeerLink:
    """One established session.  `send` is safe from many tasks; one task receives.

    `last_sent` (trio clock) tells when the link has been idle long enough for a heartbeat.
    `reach_port` is where the peer accepts connections: the port we dialled, or the one
    its hello announced (0 if neither is known).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        conn: Connection,
        established: Established,
        address: str,
        dialled_port: int,
        early: list[Message],
    ) -> None:
        self._stream = stream
        self._conn = conn
        self._send_lock = trio.Lock()
        self._pending: deque[Message] = deque(early)
        self.remote_static = established.remote_static
        self.hello: Hello = established.hello
        self.fingerprint = fingerprint(established.remote_static)
        self.initiator = conn.initiator
        self.paired = conn.paired
        self.address = address
        self.reach_port = dialled_port if conn.initiator else established.hello.listen_port
        self.closed = False
        self.goodbye_reason: str | None = None  # set when we end the session
        self.last_sent = trio.current_time()
        self.receive_size = RECEIVE_SIZE  # a transfer reads more per call: fewer wake-ups

    @property
    def remote_nick(self) -> str:
        return self.hello.nick

    async def send(self, message: Message) -> None:
        """Send one message.  A failed or cancelled send poisons the link (nonces moved on)."""
        await self.send_all((message,))

    async def send_quietly(self, message: Message, within: float) -> None:
        """Best effort, bounded: a peer that takes nothing for `within` seconds loses its
        session (the interrupted send poisons it) rather than holding the caller."""
        with contextlib.suppress(LinkClosed), trio.move_on_after(within):
            await self.send(message)

    async def send_all(self, messages: Sequence[Message]) -> None:
        """Send messages in one write (a transfer sends many chunks per system call)."""
        async with self._send_lock:
            if self.closed or self._conn.state is not State.ESTABLISHED:
                raise LinkClosed("link is closed")
            sent = False
            try:
                for message in messages:
                    self._conn.send(message)
                await self._stream.send_all(self._conn.data_to_send())
                sent = True
                self.last_sent = trio.current_time()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise LinkClosed(str(exc) or "connection lost") from exc
            finally:
                if not sent:
                    await self._abort()

    async def receive(self) -> Message:
        """The next message from the peer; `LinkClosed` at end of stream.

        Raises `RemoteProtocolError` if the peer misbehaves (the link is then closed).
        """
        while not self._pending:
            if self._conn.state is not State.ESTABLISHED:
                raise LinkClosed("link is closed")
            try:
                data = await self._stream.receive_some(self.receive_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                await self._abort()
                raise LinkClosed(str(exc) or "connection lost") from exc
            if not data:
                await self._abort()
                raise LinkClosed("peer closed the connection")
            if self._conn.state is not State.ESTABLISHED:
                raise LinkClosed("link closed while receiving")  # we said bye meanwhile
            try:
                events = self._conn.receive_data(data)
            except RemoteProtocolError:
                await self._abort()
                raise
            self._pending.extend(e for e in events if not isinstance(e, Established))
        return self._pending.popleft()

    async def say_goodbye(self, reason: str) -> None:
        """Send Bye (best effort, for at most GOODBYE_PATIENCE seconds) and close."""
        self.goodbye_reason = self.goodbye_reason or reason
        with trio.move_on_after(GOODBYE_PATIENCE) as scope:
            scope.shield = True
            try:
                if not self.closed and self._conn.state is State.ESTABLISHED:
                    await self.send(Bye(reason))
            except LinkClosed:
                pass
        await self.close()

    async def close(self) -> None:
        """Close at once, without a goodbye."""
        await self._abort()

    async def _abort(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.close()
            await trio.aclose_forcefully(self._stream)


async def perform_handshake(
    stream: trio.abc.Stream,
    *,
    initiator: bool,
    static_private: bytes,
    hello: Hello,
    address: str,
    port: int = 0,
    accept_remote: Callable[[bytes], bool] | None = None,
    pairing: pake.Pairing | None = None,
    on_pairing_request: Callable[[], pake.Pairing | None] | None = None,
) -> PeerLink:
    """Run the Noise XX handshake on `stream` (`port`: the one we dialled, if initiator).
    The caller bounds it with a cancel scope.

    Raises RemoteProtocolError or LinkClosed; the stream is closed on any failure.
    """
    conn = Connection(
        initiator=initiator,
        static_private=static_private,
        hello=hello,
        accept_remote=accept_remote,
        pairing=pairing,
        on_pairing_request=on_pairing_request,
    )
    established: Established | None = None
    early: list[Message] = []  # messages that arrived in the same read as the last handshake frame
    try:
        while established is None:
            outgoing = conn.data_to_send()
            if outgoing:
                await stream.send_all(outgoing)
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise LinkClosed("peer closed the connection during the handshake")
            for event in conn.receive_data(data):
                if isinstance(event, Established):
                    established = event
                else:
                    early.append(event)
        outgoing = conn.data_to_send()  # the initiator's message 3
        if outgoing:
            await stream.send_all(outgoing)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        await trio.aclose_forcefully(stream)
        raise LinkClosed(str(exc) or "connection lost") from exc
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return PeerLink(stream, conn, established, address, port, early)
