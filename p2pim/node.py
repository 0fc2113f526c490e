"""`Node`: the one public async API that the TUI, daemon, CLI, examples and tests share.

A node owns one root nursery.  It listens first, then advertises (so nobody dials a port
that is not open yet), dials advertised peers, and keeps at most one session per peer
identity.  Everything it learns is delivered as `p2pim.events` to subscribers.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from p2pim import discovery
from p2pim.config import NodeConfig
from p2pim.events import (
    MessageReceived,
    NodeEvent,
    PeerConnected,
    PeerDisconnected,
    PeerDiscovered,
    PeerRejected,
)
from p2pim.identity import Identity, fingerprint
from p2pim.net.link import LinkClosed, PeerLink, perform_handshake
from p2pim.wire.connection import UnexpectedPeerKey
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import (
    BYE_BUSY,
    BYE_DUPLICATE,
    BYE_QUIT,
    MAX_NICK_BYTES,
    MAX_TEXT_BYTES,
    PROTOCOL_VERSION,
    Bye,
    Hello,
    Text,
)

log = logging.getLogger(__name__)

MAX_KNOWN_ADVERTS = 1024
SUBSCRIBER_BUFFER = 1024


class PeerNotConnected(Exception):
    """The peer has no live session (offline delivery arrives with the outbox)."""


class PeerRejectedError(Exception):
    """A dialled peer was not who it claimed to be, or spoke nonsense."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    fingerprint: str
    nick: str
    connected: bool
    addresses: tuple[str, ...]


def new_message_id() -> bytes:
    """16 bytes: 48-bit milliseconds then 80 random bits, so ids sort by creation time."""
    return time.time_ns().__floordiv__(1_000_000).to_bytes(6, "big") + os.urandom(10)


class Node:
    def __init__(self, identity: Identity, config: NodeConfig | None = None) -> None:
        self.identity = identity
        self.config = config or NodeConfig()
        self.port: int | None = None
        if not 0 < len(self.config.nick.encode()) <= MAX_NICK_BYTES:
            raise ValueError(f"a nick is 1 to {MAX_NICK_BYTES} UTF-8 bytes long")
        self._hello = Hello(version=PROTOCOL_VERSION, nick=self.config.nick)
        self._links: dict[str, PeerLink] = {}
        self._adverts: dict[str, discovery.PeerAdvertised] = {}
        self._dialing: set[str] = set()
        self._pending_total = 0
        self._pending_by_address: Counter[str] = Counter()
        self._subscribers: list[trio.MemorySendChannel[NodeEvent]] = []
        self._nursery: trio.Nursery | None = None
        self._stopped = trio.Event()

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    # ---- life cycle -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until `stop()` (or cancellation); reports ready once listening/advertising."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._serve)
            if self.config.discovery:
                await self._start_discovery(nursery)
            task_status.started()
            try:
                await self._stopped.wait()
            finally:
                await self._say_goodbye_to_all()
                nursery.cancel_scope.cancel()

    async def stop(self) -> None:
        """Graceful exit: goodbye on every link, withdraw the mDNS record, stop tasks."""
        self._stopped.set()

    async def _serve(
        self,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await trio.open_tcp_listeners(
            self.config.listen_port, host=self.config.listen_host
        )
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._handle_inbound, listeners, task_status=task_status)

    async def _start_discovery(self, nursery: trio.Nursery) -> None:
        assert self.port is not None
        interfaces = discovery.resolve_interfaces(self.config.interfaces)
        service = discovery.Discovery(self.identity, self.config.nick, self.port, interfaces)
        send, receive = trio.open_memory_channel[discovery.DiscoveryEvent](64)
        await nursery.start(service.run, send)
        nursery.start_soon(self._consume_discovery, receive)

    async def _say_goodbye_to_all(self) -> None:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for link in list(self._links.values()):
                    nursery.start_soon(link.say_goodbye, BYE_QUIT)

    # ---- events ------------------------------------------------------------------------

    def subscribe(self) -> trio.MemoryReceiveChannel[NodeEvent]:
        """A channel of every future event.  A subscriber that stops reading holds the node
        back (back-pressure, no silent loss); close the channel to unsubscribe."""
        send, receive = trio.open_memory_channel[NodeEvent](SUBSCRIBER_BUFFER)
        self._subscribers.append(send)
        return receive

    async def _emit(self, event: NodeEvent) -> None:
        for channel in list(self._subscribers):
            try:
                await channel.send(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)

    # ---- peers -------------------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        known: dict[str, PeerInfo] = {}
        for advert in self._adverts.values():
            if advert.fingerprint_hint != self.fingerprint:
                known[advert.fingerprint_hint] = PeerInfo(
                    advert.fingerprint_hint, advert.nick, False, advert.addresses
                )
        for fp, link in self._links.items():
            addresses = known[fp].addresses if fp in known else (link.address,)
            known[fp] = PeerInfo(fp, link.remote_nick, True, addresses)
        return sorted(known.values(), key=lambda p: (p.nick, p.fingerprint))

    async def connect(self, host: str, port: int, expected_fingerprint: str | None = None) -> str:
        """Dial `host:port` and return the authenticated peer's fingerprint.

        With `expected_fingerprint`, a peer holding any other key is dropped during the
        handshake, before we reveal our identity or send any data (PeerRejectedError).
        """

        def accept(remote_static: bytes) -> bool:
            return (
                expected_fingerprint is None or fingerprint(remote_static) == expected_fingerprint
            )

        with trio.fail_after(self.config.handshake_timeout):
            stream = await trio.open_tcp_stream(host, port)
            try:
                link = await perform_handshake(
                    stream,
                    initiator=True,
                    static_private=self.identity.private_key,
                    hello=self._hello,
                    address=host,
                    accept_remote=accept,
                )
            except UnexpectedPeerKey as exc:
                await self._emit(
                    PeerRejected(
                        host,
                        "key does not match the advertised fingerprint",
                        expected_fingerprint,
                        fingerprint(exc.remote_static),
                    )
                )
                raise PeerRejectedError(f"{host}:{port} is not {expected_fingerprint}") from exc
            except (RemoteProtocolError, LinkClosed) as exc:
                await self._emit(PeerRejected(host, f"handshake failed: {exc}"))
                raise PeerRejectedError(f"handshake with {host}:{port} failed: {exc}") from exc
        if link.remote_static == self.identity.public_key:
            await link.close()
            raise PeerRejectedError(f"{host}:{port} is this node itself")
        if await self._adopt(link):
            assert self._nursery is not None
            self._nursery.start_soon(self._read_link, link)
        return link.fingerprint

    async def send_text(self, peer: str, text: str) -> str:
        """Send `text` to the peer with fingerprint `peer`; returns the message id (hex)."""
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise ValueError(f"text is longer than {MAX_TEXT_BYTES} bytes; send it as a file")
        link = self._links.get(peer)
        if link is None:
            raise PeerNotConnected(peer)
        message = Text(id=new_message_id(), sent_at=time.time_ns() // 1_000_000, body=text)
        try:
            await link.send(message)
        except LinkClosed as exc:
            raise PeerNotConnected(peer) from exc
        return message.id.hex()

    # ---- sessions ----------------------------------------------------------------------

    async def _handle_inbound(self, stream: trio.SocketStream) -> None:
        address = str(stream.socket.getpeername()[0])
        if (
            self._pending_total >= self.config.max_pending_handshakes
            or self._pending_by_address[address] >= self.config.max_pending_per_address
        ):
            await trio.aclose_forcefully(stream)  # pre-auth limits: refuse at once
            return
        self._pending_total += 1
        self._pending_by_address[address] += 1
        link = None
        try:
            with trio.move_on_after(self.config.handshake_timeout):
                link = await perform_handshake(
                    stream,
                    initiator=False,
                    static_private=self.identity.private_key,
                    hello=self._hello,
                    address=address,
                )
        except (RemoteProtocolError, LinkClosed) as exc:
            log.info("inbound handshake from %s failed: %s", address, exc)
        finally:
            self._pending_total -= 1
            self._pending_by_address[address] -= 1
            if not self._pending_by_address[address]:
                del self._pending_by_address[address]
        if link is not None and await self._adopt(link):
            await self._read_link(link)

    def _dialer_key(self, link: PeerLink) -> bytes:
        return self.identity.public_key if link.initiator else link.remote_static

    async def _adopt(self, link: PeerLink) -> bool:
        """Make `link` the peer's session unless an existing one wins the tie-break.

        Both ends apply the same rule, so they agree without talking: between links
        dialled in the same direction the newer wins (the older is probably dead); between
        links dialled from opposite ends, the one dialled by the lower key wins.
        """
        if link.remote_static == self.identity.public_key:
            await link.say_goodbye(BYE_DUPLICATE)  # we dialled ourselves
            return False
        existing = self._links.get(link.fingerprint)
        if existing is not None and not existing.closed:
            same_direction = self._dialer_key(existing) == self._dialer_key(link)
            if not same_direction and self._dialer_key(existing) < self._dialer_key(link):
                await link.say_goodbye(BYE_DUPLICATE)
                return False
            self._links[link.fingerprint] = link
            await existing.say_goodbye(BYE_DUPLICATE)
            return True
        if len(self._links) >= self.config.max_sessions:
            await link.say_goodbye(BYE_BUSY)
            return False
        self._links[link.fingerprint] = link
        await self._emit(PeerConnected(link.fingerprint, link.remote_nick, link.address))
        return True

    async def _read_link(self, link: PeerLink) -> None:
        reason = "closed"
        try:
            while True:
                message = await link.receive()
                if isinstance(message, Text):
                    await self._emit(
                        MessageReceived(
                            link.fingerprint,
                            link.remote_nick,
                            message.id.hex(),
                            message.sent_at,
                            message.body,
                        )
                    )
                elif isinstance(message, Bye):
                    reason = message.reason
                    break
        except LinkClosed as exc:
            reason = str(exc)
        except RemoteProtocolError as exc:
            reason = f"protocol error: {exc}"
            log.warning("closing session with %s: %s", link.fingerprint[:8], exc)
        finally:
            await link.close()
            if self._links.get(link.fingerprint) is link:
                del self._links[link.fingerprint]
                await self._emit(PeerDisconnected(link.fingerprint, reason))

    # ---- discovery ---------------------------------------------------------------------

    async def _consume_discovery(
        self, events: trio.MemoryReceiveChannel[discovery.DiscoveryEvent]
    ) -> None:
        async for event in events:
            if isinstance(event, discovery.PeerWithdrawn):
                self._adverts.pop(event.instance, None)
                continue
            if event.fingerprint_hint == self.fingerprint or event.version != PROTOCOL_VERSION:
                continue
            if event.instance not in self._adverts and len(self._adverts) >= MAX_KNOWN_ADVERTS:
                continue  # bounded table: a flood of fake records cannot grow it
            self._adverts[event.instance] = event
            await self._emit(
                PeerDiscovered(event.fingerprint_hint, event.nick, event.addresses, event.port)
            )
            if event.fingerprint_hint not in self._links:
                assert self._nursery is not None
                self._nursery.start_soon(self._dial_advertised, event)

    async def _dial_advertised(self, advert: discovery.PeerAdvertised) -> None:
        fp = advert.fingerprint_hint
        if fp in self._dialing:
            return
        self._dialing.add(fp)
        try:
            for address in advert.addresses:
                try:
                    await self.connect(address, advert.port, expected_fingerprint=fp)
                    return
                except PeerRejectedError:
                    return  # wrong key: do not try its other addresses either
                except (OSError, trio.TooSlowError) as exc:
                    log.info("dial %s:%d failed: %s", address, advert.port, exc)
        finally:
            self._dialing.discard(fp)


@asynccontextmanager
async def open_node(identity: Identity, config: NodeConfig | None = None) -> AsyncIterator[Node]:
    """Run a node for the duration of the block; leaving it says goodbye to every peer."""
    node = Node(identity, config)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        try:
            yield node
        finally:
            await node.stop()
