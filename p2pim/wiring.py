"""What a session means to the node's parts: each hears that a peer's session opened or
closed, and each message the session carries goes to the one part that handles its type.

`Node` builds the parts when its store is open and hands their `SessionWiring` to
`Sessions` as hooks; the routing table is made once, from every part's `routes()`
(`p2pim.routes.merge` refuses a type claimed twice).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from p2pim import events, routes
from p2pim.delivery import Deliveries, until_stored
from p2pim.directory import PeerDirectory
from p2pim.messaging import Messenger
from p2pim.net.link import PeerLink
from p2pim.reaching import Reacher
from p2pim.rooms.manager import Rooms
from p2pim.sessions import SessionHooks
from p2pim.storage import Store
from p2pim.transfer.control import Transfers
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import PAYLOAD_ONLY, TRANSFER_ONLY, Hello, Message


@dataclass(frozen=True, slots=True)
class Parts:
    """The node's parts that live as long as its store is open."""

    peers: PeerDirectory
    reacher: Reacher
    deliveries: Deliveries
    messenger: Messenger
    transfers: Transfers
    rooms: Rooms


class SessionWiring:
    def __init__(
        self,
        parts: Parts,
        store: Store,
        links: dict[str, PeerLink],
        emit: Callable[[events.NodeEvent], Awaitable[None]],
    ) -> None:
        self._parts = parts
        self._store = store
        self._links = links
        self._emit = emit
        self.routes = routes.merge(
            parts.deliveries.routes(),
            parts.messenger.routes(),
            parts.transfers.routes(),
            parts.rooms.routes(),
            parts.peers.routes(),
            parts.reacher.routes(),
        )

    def hooks(self, hello: Callable[[], Hello]) -> SessionHooks:
        parts = self._parts
        return SessionHooks(
            hello=hello,
            may_open=parts.peers.can_pin,
            opened=self.opened,
            received=self.received,
            closed=self.closed,
            transfer=parts.transfers.serve,
            emit=self._emit,
        )

    async def opened(self, link: PeerLink, replaced: bool) -> None:
        """Disk work first: if it fails, the session is dropped with nothing half-set."""
        parts, fp = self._parts, link.fingerprint
        if replaced:
            if link.paired and parts.peers.can_pin(fp):  # the code was proven on this link
                await parts.peers.pin(link)
        else:
            record = await parts.peers.pin(link)
            await parts.reacher.remember(link)
        current = self._links.get(fp)
        if current is None:
            return  # the session ended while we were writing to disk
        if current is link:  # not a tie-break loser: this link carries the session
            parts.peers.session_started(link)
            parts.deliveries.session_started(link)  # drain the outbox on this session
            parts.transfers.resume(fp)  # pull what we accepted and do not have yet
            parts.rooms.session_started(link)  # its writer, and anti-entropy
        if replaced:
            return
        parts.reacher.session_started(link)  # the peer is online, even if a second link
        await self._emit(  # took over during the awaits above
            events.PeerConnected(
                fp,
                link.remote_nick,
                link.address,
                link.hello.status,
                link.hello.status_text,
                record.trust,
            )
        )

    async def received(self, link: PeerLink, message: Message) -> None:
        """What a session's reader got.  A write refused for want of space is retried,
        backing off, until the disk takes it or the session ends: the reader waits (what
        the peer sends behind it waits too), nothing unstored is acknowledged, and the
        session is not dropped and redialled over and over while the disk is full."""
        await until_stored(self._store, link, lambda: self._route(link, message))

    async def _route(self, link: PeerLink, message: Message) -> None:
        peers = self._parts.peers
        if peers.blocked and peers.drops(link, message, self._parts.deliveries, self._held):
            return
        handler = self.routes.get(type(message))
        if handler is not None:
            await handler(link, message)
        elif isinstance(message, TRANSFER_ONLY + PAYLOAD_ONLY):
            raise RemoteProtocolError(f"{message.TYPE} does not travel on a session")

    def _held(self) -> set[str]:
        """The rooms we hold (an invitation to one of them is never dropped)."""
        return {info.room for info in self._parts.rooms.rooms()}

    async def closed(self, link: PeerLink, reason: str) -> None:
        parts, fp = self._parts, link.fingerprint
        parts.peers.session_ended(fp)
        parts.deliveries.session_ended(fp)
        await parts.messenger.session_ended(fp)
        parts.transfers.session_closed(fp)
        parts.rooms.session_closed(fp)
        parts.reacher.session_ended(fp, reason)
        await self._emit(events.PeerDisconnected(fp, reason))
