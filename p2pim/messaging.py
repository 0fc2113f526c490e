"""Direct messages that lose nothing: durable before acknowledged, delivered at least once
on the wire, shown exactly once.

Sending commits the message and its outbox entry in one transaction; a pump per session
drains the peer's outbox in order and the entry leaves the outbox only when the peer acks
it.  A new session resends whatever is still unacknowledged, so the receiver deduplicates
by id.  Edits, deletes and read receipts are operations with ids of their own, queued and
acknowledged the same way.  Typing indicators are ephemeral and expire on their own.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable

import trio

from p2pim import events
from p2pim.api import StoredMessage
from p2pim.net.link import LinkClosed, PeerLink
from p2pim.storage import Database, StorageFull, Store
from p2pim.wire import codec
from p2pim.wire.messages import (
    MAX_ACKED_IDS,
    MAX_TEXT_BYTES,
    Ack,
    Delete,
    Edit,
    Message,
    ReadReceipt,
    Text,
    Typing,
)

log = logging.getLogger(__name__)

OUTBOX_BATCH = 256
MAX_IN_FLIGHT = 1024  # unacknowledged sends per session: memory stays bounded
INBOX_SIZE = 1024  # received but not yet stored, per session; the reader waits beyond
TYPING_TTL = 6.0  # a typing indicator not refreshed within this is over
# What we received but could not store (a full disk) is retried, backing off up to this;
# sooner as soon as any write gets through again.
STORE_RETRY_FIRST = 0.5
STORE_RETRY_MAX = 5.0


async def pause_for_space(store: Store, delay: float) -> None:
    """After a write refused for want of space: `delay` seconds, or less if the disk
    takes a write meanwhile (someone freed space)."""
    with trio.move_on_after(delay):
        await store.disk_full_differs(True)


def new_message_id() -> bytes:
    """16 bytes: 48-bit milliseconds then 80 random bits, so ids sort by creation time."""
    return now_ms().to_bytes(6, "big") + os.urandom(10)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_text(text: object) -> str:
    if not isinstance(text, str) or len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ValueError(f"text is a string of at most {MAX_TEXT_BYTES} bytes (files go as files)")
    return text


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


class Messenger:
    def __init__(
        self,
        me: str,
        store: Store,
        links: dict[str, PeerLink],
        emit: Callable[[events.NodeEvent], Awaitable[None]],
    ) -> None:
        self.me = me
        self._store = store
        self._links = links
        self._emit = emit
        self._queued: dict[str, Signal] = {}  # per peer: its outbox grew
        self._acked: dict[str, Signal] = {}  # per peer: in-flight room opened
        self._in_flight: dict[str, set[bytes]] = {}
        self._withdrawn: dict[str, set[bytes]] = {}  # deleted while a pump may hold a copy
        self._to_ack: dict[str, list[bytes]] = {}
        self._inboxes: dict[str, tuple[PeerLink, trio.MemorySendChannel[Message]]] = {}
        self._ack_due: dict[str, Signal] = {}
        self._pumps: dict[str, trio.CancelScope] = {}
        self._typing_until: dict[str, float] = {}
        self._typing_watched: set[str] = set()  # peers with an expiry task running
        self._nursery: trio.Nursery | None = None

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    # ---- sessions ---------------------------------------------------------------------

    def session_started(self, link: PeerLink) -> None:
        assert self._nursery is not None
        old = self._pumps.pop(link.fingerprint, None)
        if old is not None:
            old.cancel()
        scope = self._pumps[link.fingerprint] = trio.CancelScope()
        self._to_ack[link.fingerprint] = []  # now: the reader may ack before the task runs
        self._nursery.start_soon(self._serve_session, link, scope)
        self._inbox_for(link)

    def _inbox_for(self, link: PeerLink) -> trio.MemorySendChannel[Message] | None:
        """The inbox of the peer's current session, set up on first use: its reader may
        deliver before `session_started` has run.  None for a link that is not the
        session (the peer resends what we do not ack on the one that is)."""
        fp = link.fingerprint
        if self._links.get(fp) is not link:
            return None
        current = self._inboxes.get(fp)
        if current is not None and current[0] is link:
            return current[1]
        if current is not None:
            current[1].close()  # a replaced session's: its task finishes what it holds
        inbox, received = trio.open_memory_channel[Message](INBOX_SIZE)
        self._inboxes[fp] = (link, inbox)
        # Outside the session's scope: what was received is stored even if the link drops
        # meanwhile; the task ends when session_ended closes the inbox.
        assert self._nursery is not None
        self._nursery.start_soon(self._store_received, link, received)
        return inbox

    async def session_ended(self, fp: str) -> None:
        link_inbox = self._inboxes.pop(fp, None)
        if link_inbox is not None:
            link_inbox[1].close()
        scope = self._pumps.pop(fp, None)
        if scope is not None:
            scope.cancel()
        self._in_flight.pop(fp, None)
        self._to_ack.pop(fp, None)
        if self._typing_until.pop(fp, None) is not None:
            await self._emit(events.TypingChanged(fp, False))  # a gone peer types no more

    async def _serve_session(self, link: PeerLink, scope: trio.CancelScope) -> None:
        """The session's writers: the outbox pump and the acknowledger.  Acks are sent
        from a task of their own, never from the reader: a reader waiting for the send lock
        stops reading, and two peers sending hard at once would then deadlock."""
        fp = link.fingerprint
        with scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._send_acks, link)
                    await self._pump(link)
            except* LinkClosed:
                pass  # the session's reader reports the end
            except* Exception:  # e.g. the disk failed: drop this session, keep the node
                log.exception("sending to %s failed; closing the session", fp[:8])
                await link.close()

    async def _send_acks(self, link: PeerLink) -> None:
        fp = link.fingerprint
        due = self._ack_due.setdefault(fp, Signal())
        while True:
            seen = due.version
            pending = self._to_ack.get(fp)
            if pending is None:
                return  # the session ended before this task first ran
            if not pending:
                await due.wait_past(seen)
                continue
            batch, self._to_ack[fp] = pending[:MAX_ACKED_IDS], pending[MAX_ACKED_IDS:]
            await link.send(Ack(tuple(batch)))

    async def _pump(self, link: PeerLink) -> None:
        """Send the peer's outbox in order, at most MAX_IN_FLIGHT unacknowledged.  A new
        session starts from the top: everything unacknowledged is sent again."""
        fp = link.fingerprint
        queued = self._queued.setdefault(fp, Signal())
        acked = self._acked.setdefault(fp, Signal())
        in_flight = self._in_flight[fp] = set()
        withdrawn = self._withdrawn.setdefault(fp, set())
        await self._drain(link, queued, acked, in_flight, withdrawn)

    async def _drain(
        self,
        link: PeerLink,
        queued: Signal,
        acked: Signal,
        in_flight: set[bytes],
        withdrawn: set[bytes],
    ) -> None:
        fp, after = link.fingerprint, 0
        while True:
            seen = queued.version
            batch = await self._store.outbox(fp, after_seq=after, limit=OUTBOX_BATCH)
            if not batch:
                await queued.wait_past(seen)
                continue
            for seq, op_id, payload in batch:
                while len(in_flight) >= MAX_IN_FLIGHT:
                    await acked.wait_past(acked.version)
                after = seq
                if op_id in withdrawn:  # deleted after this batch was read: never send it
                    continue
                in_flight.add(op_id)
                await link.send(codec.decode(payload))

    async def flush(self) -> None:
        """Until every connected peer has acked what is queued for it (a graceful quit
        gives them that chance; the caller bounds the wait)."""
        for fp in list(self._links):
            acked = self._acked.setdefault(fp, Signal())
            while fp in self._links:
                seen = acked.version  # before looking: an ack in between is not missed
                if not await self._store.outbox_size(fp):
                    break
                await acked.wait_past(seen)

    def queued(self, peer: str) -> None:
        """The peer's outbox grew: its pump sends the new entries."""
        self._queued.setdefault(peer, Signal()).fire()

    # ---- sending ------------------------------------------------------------------------

    async def send_text(self, peer: str, text: str) -> bytes:
        """Accepted ⇒ committed: returns once the message and its outbox entry are on disk
        (the clock's tick too: one transaction, one commit)."""
        check_text(text)
        me = self.me

        def queue(db: Database) -> bytes:
            message = Text(new_message_id(), now_ms(), text, db.tick_lamport())
            db.queue_message(
                message.id,
                peer,
                me,
                message.sent_at,
                message.lamport,
                text,
                codec.encode(message),
                message.sent_at,
            )
            return message.id

        message_id = await self._store.atomically(queue)
        self.queued(peer)
        return message_id

    async def edit(self, peer: str, target: bytes, text: str) -> None:
        check_text(text)
        op = Edit(id=new_message_id(), target=target, sent_at=now_ms(), body=text)
        await self._store.edit_own(
            op.id, target, self.me, text, op.sent_at, codec.encode(op), peer, op.sent_at
        )
        self.queued(peer)

    async def delete(self, peer: str, target: bytes) -> None:
        op = Delete(id=new_message_id(), target=target, sent_at=now_ms())
        await self._store.delete_own(op.id, target, self.me, codec.encode(op), peer, op.sent_at)
        withdrawn = self._withdrawn.setdefault(peer, set())
        if len(withdrawn) >= MAX_IN_FLIGHT:  # bounded: only a pump's batch can hold a copy
            withdrawn.clear()
        withdrawn.add(target)
        self.queued(peer)

    async def mark_read(self, peer: str, up_to: bytes | None = None) -> list[bytes]:
        """Mark the conversation read (up to a message) and tell the peer, durably."""

        def receipts(ids: list[bytes]) -> list[tuple[bytes, bytes]]:
            chunks = (tuple(ids[i : i + MAX_ACKED_IDS]) for i in range(0, len(ids), MAX_ACKED_IDS))
            receipts = [ReadReceipt(id=new_message_id(), ids=chunk) for chunk in chunks]
            return [(r.id, codec.encode(r)) for r in receipts]

        ids = await self._store.mark_read_locally(peer, up_to, now_ms(), receipts)
        if ids:
            self.queued(peer)
        return ids

    async def set_typing(self, peer: str, active: bool, timeout: float) -> None:
        """Best effort: a peer that does not take it within `timeout` loses the session."""
        link = self._links.get(peer)
        if link is not None:
            with contextlib.suppress(LinkClosed), trio.move_on_after(timeout):
                await link.send(Typing(active))

    # ---- receiving ----------------------------------------------------------------------

    async def received(self, link: PeerLink, message: Message) -> bool:
        """Handle a messaging message; False if it is not one.  Messages, edits, deletes,
        read receipts and acks go through the session's inbox, in order, so that a burst
        is stored in a few transactions (group commit) while the reader keeps reading."""
        if isinstance(message, Ack):  # the pump may send more at once; the rest can wait
            in_flight = self._in_flight.get(link.fingerprint)
            if in_flight is not None:
                in_flight.difference_update(message.ids)
                self._acked.setdefault(link.fingerprint, Signal()).fire()
        if isinstance(message, Text | Edit | Delete | ReadReceipt | Ack):
            inbox = self._inbox_for(link)
            if inbox is not None:
                await inbox.send(message)
            elif isinstance(message, Ack):  # a replaced session's ack still counts
                await self._mark_delivered(link.fingerprint, message.ids)
            # else: unacked, so the peer sends it again on the session that replaced it
        elif isinstance(message, Typing):
            await self._on_typing(link.fingerprint, message.active)
        else:
            return False
        return True

    async def _store_received(
        self, link: PeerLink, inbox: trio.MemoryReceiveChannel[Message]
    ) -> None:
        """Drain the inbox: each run of texts is stored together (one commit for all),
        then acked and shown in arrival order; other operations apply one by one, and
        the acks of our own sends are marked delivered together.

        What cannot be stored for want of space is not acked: it is retried here,
        backing off, while the inbox fills and then holds the reader (the sender's
        window of unacknowledged sends holds the rest).  If the session ends first, the
        rest is dropped unacked and the peer resends it on its next session.  Nothing
        here may end the node: an unexpected error ends this session only."""
        stored_all = True  # False once the session ended with something not stored
        try:
            async with inbox:
                async for first in inbox:
                    batch = [first]
                    with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel):
                        while len(batch) < INBOX_SIZE:
                            batch.append(inbox.receive_nowait())
                    if stored_all:
                        stored_all = await self._store_batch(link, batch)
        except Exception:
            log.exception("storing what %s sent failed; closing the session", link.fingerprint[:8])
            await link.close()

    async def _store_batch(self, link: PeerLink, batch: list[Message]) -> bool:
        """Store a batch in order; False if the session ended before all of it was."""
        texts: list[Text] = []
        acked: list[bytes] = []
        for message in batch:
            if isinstance(message, Ack):  # all of the batch's acks: one commit
                acked.extend(message.ids)
                continue
            if isinstance(message, Text):
                texts.append(message)
                continue
            if texts and not await self._store_texts(link, texts):
                return False
            texts = []
            if not await self._until_stored(link, functools.partial(self._apply, link, message)):
                return False
        if texts and not await self._store_texts(link, texts):
            return False
        # Our own sends' acks: if this fails, they stay in the outbox and are resent.
        delivered = functools.partial(self._mark_delivered, link.fingerprint, acked)
        return not acked or await self._until_stored(link, delivered)

    async def _store_texts(self, link: PeerLink, texts: list[Text]) -> bool:
        """Store texts (concurrent calls share a commit), then ack and show them in
        arrival order.  Those that fail to store are retried until stored, and only
        then acked; False if the session ended first (what was stored is still acked
        and shown: the peer's resend of it is a duplicate)."""
        fp = link.fingerprint
        stored: dict[int, StoredMessage | None] = {}
        failure: list[StorageFull] = []

        async def store(i: int, message: Text) -> None:
            try:
                stored[i] = await self._store.store_incoming(
                    message.id, fp, fp, message.sent_at, message.lamport, message.body, now_ms()
                )
            except StorageFull as exc:  # any other error ends the session (the caller)
                failure.append(exc)

        delay = STORE_RETRY_FIRST
        while True:
            failure.clear()
            async with trio.open_nursery() as nursery:
                for i, message in enumerate(texts):
                    if i not in stored:
                        nursery.start_soon(store, i, message)
            if not failure or not await self._pause_after(link, failure[0], delay):
                break
            delay = min(delay * 2, STORE_RETRY_MAX)
        for i, message in enumerate(texts):
            if i not in stored:
                continue  # not acked: the peer sends it again
            self.ack(link, message.id)
            if stored[i] is not None:  # a resend of what we already have is acked, not shown
                await self._emit(
                    events.MessageReceived(
                        fp, link.remote_nick, message.id.hex(), message.sent_at, message.body
                    )
                )
        return len(stored) == len(texts)

    async def _until_stored(self, link: PeerLink, step: Callable[[], Awaitable[None]]) -> bool:
        """Run `step` (which stores, then acks) until the disk takes it; False if the
        session ended first."""
        delay = STORE_RETRY_FIRST
        while True:
            try:
                await step()
                return True
            except StorageFull as exc:
                if not await self._pause_after(link, exc, delay):
                    return False
            delay = min(delay * 2, STORE_RETRY_MAX)

    async def _pause_after(self, link: PeerLink, error: StorageFull, delay: float) -> bool:
        """A write found the disk full: wait, then say whether to retry (False if the
        session is over: nobody to acknowledge to, and the peer resends)."""
        log_at = logging.WARNING if delay == STORE_RETRY_FIRST else logging.DEBUG
        log.log(log_at, "cannot store what %s sent (%s); retrying", link.fingerprint[:8], error)
        await pause_for_space(self._store, delay)
        return not link.closed

    async def _apply(self, link: PeerLink, message: Message) -> None:
        fp = link.fingerprint
        if isinstance(message, Edit):
            edited = await self._store.apply_edit(
                message.id, message.target, fp, message.body, message.sent_at, now_ms()
            )
            self.ack(link, message.id)
            if edited is not None:
                await self._emit(events.MessageEdited(fp, message.target.hex(), message.body))
        elif isinstance(message, Delete):
            deleted = await self._store.apply_delete(message.id, message.target, fp, now_ms())
            self.ack(link, message.id)
            if deleted is not None:
                await self._emit(events.MessageDeleted(fp, message.target.hex()))
        elif isinstance(message, ReadReceipt):
            read = await self._store.mark_read_by_peer(message.id, message.ids, fp, now_ms())
            self.ack(link, message.id)
            for message_id in read:
                await self._emit(events.MessageRead(fp, message_id.hex()))

    def ack(self, link: PeerLink, op_id: bytes) -> None:
        """Queue an ack for the session's acknowledger (unacked means resent next session)."""
        pending = self._to_ack.get(link.fingerprint)
        if pending is not None:
            pending.append(op_id)
            self._ack_due.setdefault(link.fingerprint, Signal()).fire()

    async def _mark_delivered(self, fp: str, ids: list[bytes] | tuple[bytes, ...]) -> None:
        for message_id in await self._store.mark_delivered(fp, ids, now_ms()):
            await self._emit(events.MessageDelivered(fp, message_id.hex()))

    async def _on_typing(self, fp: str, active: bool) -> None:
        was_typing = fp in self._typing_until
        if active:
            self._typing_until[fp] = trio.current_time() + TYPING_TTL
            if fp not in self._typing_watched:  # one expiry task per peer, however chatty
                self._typing_watched.add(fp)
                assert self._nursery is not None
                self._nursery.start_soon(self._expire_typing, fp)
        else:
            self._typing_until.pop(fp, None)
        if active != was_typing:
            await self._emit(events.TypingChanged(fp, active))

    async def _expire_typing(self, fp: str) -> None:
        try:
            while (until := self._typing_until.get(fp)) is not None:
                if trio.current_time() >= until:
                    del self._typing_until[fp]
                    await self._emit(events.TypingChanged(fp, False))
                    return
                await trio.sleep_until(until)
        finally:
            self._typing_watched.discard(fp)
