"""Delivery: how durable messages reach a peer and how received ones are acknowledged.

A feature that sends a durable control message writes it to the peer's outbox in the
same transaction as the state it announces, then calls `queued(peer)`; the session's pump
sends it and resends it next session until the peer acks it.  A feature that applied a
durable message it received calls `ack(link, op_id)`: an unacked message is resent.

`Deliveries` is that `Delivery`: it holds one `PeerDelivery` per peer session, made when a
link becomes the peer's session and closed when it stops being it.  A `PeerDelivery` owns
the session's writers (the outbox pump with its window of unacknowledged sends, and the
acknowledger) and its inbox, which drains what the peer sent to the handler the
messaging feature gives (`StoreReceived`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import trio

from p2pim.net.link import LinkClosed, PeerLink
from p2pim.routes import Routes
from p2pim.storage import Database, StorageFull, Store
from p2pim.wire import codec
from p2pim.wire.messages import MAX_ACKED_IDS, Ack, Message

log = logging.getLogger(__name__)

OUTBOX_BATCH = 256
MAX_IN_FLIGHT = 1024  # unacknowledged sends per session: memory stays bounded
INBOX_SIZE = 1024  # received but not yet stored, per session; the reader waits beyond
# Acks owed on one session: the peer's window of unacknowledged sends bounds them, so only
# a peer beyond its window loses an ack (and gets a resend, which is deduplicated).
ACK_QUEUE = MAX_IN_FLIGHT
# What we received but could not store (a full disk) is retried, backing off up to this;
# sooner as soon as any write gets through again.
STORE_RETRY_FIRST = 0.5
STORE_RETRY_MAX = 5.0

T = TypeVar("T")

# Stores a batch of what the peer sent, in order (acks of our sends included): False if
# the session ended before all of it was stored; the rest is then dropped unacked.
StoreReceived = Callable[[PeerLink, list[Message]], Awaitable[bool]]


class Delivery(Protocol):
    def queued(self, peer: str) -> None:
        """The peer's outbox grew: its current session sends the new entries."""

    def ack(self, link: PeerLink, op_id: bytes) -> None:
        """`op_id` from `link` is applied: tell the peer (only queues, never blocks)."""


async def pause_for_space(store: Store, delay: float) -> None:
    """After a write refused for want of space: `delay` seconds, or less if the disk
    takes a write meanwhile (someone freed space)."""
    with trio.move_on_after(delay):
        await store.disk_full_differs(True)


async def retry_when_space(store: Store, link: PeerLink, error: StorageFull, delay: float) -> bool:
    """A write of what `link` brought found the disk full: wait, then say whether to
    retry (False if the session is over: nobody to acknowledge to, and the peer resends)."""
    log_at = logging.WARNING if delay == STORE_RETRY_FIRST else logging.DEBUG
    log.log(log_at, "cannot store what %s sent (%s); retrying", link.fingerprint[:8], error)
    await pause_for_space(store, delay)
    return not link.closed


async def until_stored(store: Store, link: PeerLink, step: Callable[[], Awaitable[None]]) -> bool:
    """Run `step` (which stores what `link` brought, then acks it) until the disk takes
    it, backing off; False if the session ended first."""
    delay = STORE_RETRY_FIRST
    while True:
        try:
            await step()
            return True
        except StorageFull as exc:
            if not await retry_when_space(store, link, exc, delay):
                return False
        delay = min(delay * 2, STORE_RETRY_MAX)


class Signal:
    """A versioned wake-up: waiters say which version they saw, so none is ever lost."""

    def __init__(self) -> None:
        self.version = 0
        self._event = trio.Event()

    def fire(self) -> None:
        self.version += 1
        self._event.set()
        self._event = trio.Event()

    async def wait_past(self, version: int) -> None:
        while self.version == version:
            await self._event.wait()


class LinkWriter(Generic[T]):
    """A bounded queue plus one drain task for one link.  Whoever queues never waits for
    the link: a session's reader that had to would stop reading, and two peers sending
    hard at once would deadlock.  What does not fit is refused at once, and the caller
    knows what that costs; `close` lets the drain finish what it holds, then end."""

    def __init__(
        self,
        link: PeerLink,
        size: int,
        write: Callable[[PeerLink, list[T]], Awaitable[None]],
        *,
        gather: int = 1,
    ) -> None:
        self.link = link
        self._write = write
        self._gather = gather  # items one write may take from the queue
        self._queue, self._queued = trio.open_memory_channel[T](size)

    def put(self, item: T) -> bool:
        """Queue `item` for the link; False if the queue is full or the writer is done."""
        try:
            self._queue.send_nowait(item)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def close(self) -> None:
        self._queue.close()

    async def run(self) -> None:
        """Write what is queued until closed; a closed link ends it too."""
        with contextlib.suppress(LinkClosed):
            async with self._queued:
                async for first in self._queued:
                    await self._write(self.link, _gather(first, self._queued, self._gather))


def _gather(first: T, channel: trio.MemoryReceiveChannel[T], limit: int) -> list[T]:
    """`first`, then what else `channel` already holds (what accumulated while its consumer
    was busy), up to `limit` items: one write, or one transaction, for all of them."""
    items = [first]
    with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel):
        while len(items) < limit:
            items.append(channel.receive_nowait())
    return items


async def _send_acks(link: PeerLink, ids: list[bytes]) -> None:
    await link.send(Ack(tuple(ids)))


class PeerDelivery:
    """Delivery on one peer session.  `run` serves it: the writers end with the session
    (`close`), the inbox drain finishes storing what was received, then ends too."""

    def __init__(self, link: PeerLink, store: Store, store_received: StoreReceived) -> None:
        self.link = link
        # An ack arrived (the window opened) or was stored (the outbox shrank), or the
        # session closed.
        self.acked = Signal()
        self._store = store
        self._store_received = store_received
        self._queued = Signal()  # the outbox grew
        self._in_flight: set[bytes] = set()
        self._withdrawn: set[bytes] = set()  # deleted while the pump may hold a copy
        # Acks go from a task of their own, never from the reader: a reader waiting for
        # the send lock stops reading, and two peers sending hard at once would deadlock.
        self._acks = LinkWriter[bytes](link, ACK_QUEUE, _send_acks, gather=MAX_ACKED_IDS)
        self._inbox, self._received = trio.open_memory_channel[Message](INBOX_SIZE)
        self._writers = trio.CancelScope()

    async def run(self) -> None:
        fp = self.link.fingerprint
        async with trio.open_nursery() as nursery:
            # Outside the writers' scope: what was received is stored even if the link
            # drops meanwhile.
            nursery.start_soon(self._drain_inbox)
            with self._writers:
                try:
                    async with trio.open_nursery() as writers:
                        writers.start_soon(self._acks.run)
                        await self._pump()
                except* LinkClosed:
                    pass  # the session's reader reports the end
                except* Exception:  # e.g. the disk failed: drop this session, keep the node
                    log.exception("sending to %s failed; closing the session", fp[:8])
                    await self.link.close()

    def close(self) -> None:
        """The link is no longer the peer's session: stop sending, store what is held."""
        self._writers.cancel()
        self._inbox.close()
        self.acked.fire()  # whoever waits for this session's acks looks again

    def queued(self) -> None:
        self._queued.fire()

    def ack(self, op_id: bytes) -> None:
        self._acks.put(op_id)  # refused only beyond the peer's window: it resends

    def withdraw(self, op_id: bytes) -> None:
        """`op_id` left the outbox: never send it, even from a batch already read."""
        if len(self._withdrawn) >= MAX_IN_FLIGHT:  # only a pump's batch can hold a copy
            self._withdrawn.clear()
        self._withdrawn.add(op_id)

    def window_opened(self, acked: tuple[bytes, ...]) -> None:
        self._in_flight.difference_update(acked)
        self.acked.fire()

    async def received(self, message: Message) -> None:
        """Into the inbox, in order: a burst is stored in a few transactions (group
        commit) while the reader keeps reading, and waits here once the inbox is full."""
        with contextlib.suppress(trio.ClosedResourceError):  # closed: the peer resends
            await self._inbox.send(message)

    async def _pump(self) -> None:
        """Send the peer's outbox in order, at most MAX_IN_FLIGHT unacknowledged.  A new
        session starts from the top: everything unacknowledged is sent again."""
        fp, after = self.link.fingerprint, 0
        while True:
            seen = self._queued.version
            batch = await self._store.run(Database.outbox, fp, after_seq=after, limit=OUTBOX_BATCH)
            if not batch:
                await self._queued.wait_past(seen)
                continue
            for seq, op_id, payload in batch:
                while len(self._in_flight) >= MAX_IN_FLIGHT:
                    await self.acked.wait_past(self.acked.version)
                after = seq
                if op_id in self._withdrawn:  # deleted after this batch was read
                    continue
                self._in_flight.add(op_id)
                await self.link.send(codec.decode(payload))

    async def _drain_inbox(self) -> None:
        """Hand the inbox to the handler in batches, as they accumulated.  Once a batch
        is not all stored (the session ended first), the rest is dropped unacked: the peer
        resends it next session.  Nothing here may end the node: an unexpected error ends
        this session only."""
        stored_all = True
        try:
            async with self._received:
                async for first in self._received:
                    batch = _gather(first, self._received, INBOX_SIZE)
                    if stored_all:
                        stored_all = await self._store_received(self.link, batch)
                    if any(isinstance(message, Ack) for message in batch):
                        self.acked.fire()  # `flush` looks at the outbox again
        except Exception:
            fp = self.link.fingerprint
            log.exception("storing what %s sent failed; closing the session", fp[:8])
            await self.link.close()


class Deliveries:
    """Every peer's current `PeerDelivery`: the `Delivery` the features use."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sessions: dict[str, PeerDelivery] = {}
        self._nursery: trio.Nursery | None = None
        self._store_received: StoreReceived | None = None

    def start(self, nursery: trio.Nursery, store_received: StoreReceived) -> None:
        """Sessions' deliveries run in `nursery`; what they receive goes to `store_received`."""
        self._nursery = nursery
        self._store_received = store_received

    def routes(self) -> Routes:
        return {Ack: self.received}

    # ---- sessions ---------------------------------------------------------------------

    def session_started(self, link: PeerLink) -> None:
        """`link` is now the peer's session: its delivery replaces the previous one."""
        assert self._nursery is not None and self._store_received is not None
        self.session_ended(link.fingerprint)
        session = PeerDelivery(link, self._store, self._store_received)
        self._sessions[link.fingerprint] = session
        self._nursery.start_soon(session.run)

    def session_ended(self, peer: str) -> None:
        session = self._sessions.pop(peer, None)
        if session is not None:
            session.close()

    # ---- Delivery ---------------------------------------------------------------------

    def queued(self, peer: str) -> None:
        session = self._sessions.get(peer)
        if session is not None:  # else the next session's pump starts from the top
            session.queued()

    def ack(self, link: PeerLink, op_id: bytes) -> None:
        """Queue an ack on the peer's current session (which may have replaced `link`'s:
        the ack still counts there); without a session, the peer resends."""
        session = self._sessions.get(link.fingerprint)
        if session is not None:
            session.ack(op_id)

    def withdraw(self, peer: str, op_id: bytes) -> None:
        session = self._sessions.get(peer)
        if session is not None:
            session.withdraw(op_id)

    async def received(self, link: PeerLink, message: Message) -> None:
        """A durable message (or an ack) a session's reader got: into the inbox of the
        session it came on.  What a replaced session's reader still gets is not stored
        (unacked, the peer sends it again on the session that replaced it), but its acks
        count."""
        session = self._sessions.get(link.fingerprint)
        if isinstance(message, Ack) and session is not None:  # the pump may send more now
            session.window_opened(message.ids)
        if session is not None and session.link is link:
            await session.received(message)
        elif isinstance(message, Ack):
            assert self._store_received is not None
            await self._store_received(link, [message])
            if session is not None:
                session.acked.fire()

    async def flush(self) -> None:
        """Until every connected peer has acked what is queued for it (a graceful quit
        gives them that chance; the caller bounds the wait)."""
        for fp in list(self._sessions):
            while (session := self._sessions.get(fp)) is not None:
                seen = session.acked.version  # before looking: an ack in between counts
                if not await self._store.run(Database.outbox_size, fp):
                    break
                await session.acked.wait_past(seen)
