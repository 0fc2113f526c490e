"""Direct messages that lose nothing: durable before acknowledged, delivered at least once
on the wire, shown exactly once.

Sending commits the message and its outbox entry in one transaction, and the peer's
session sends it until the peer acks it (`p2pim.delivery`); a new session resends
whatever is still unacknowledged, so the receiver deduplicates by id.  Edits, deletes and
read receipts are operations with ids of their own, queued and acknowledged the same way.
Typing indicators are ephemeral and expire on their own.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable

import trio

from p2pim import events
from p2pim.api import StoredMessage
from p2pim.clock import new_message_id, now_ms
from p2pim.delivery import (
    STORE_RETRY_FIRST,
    STORE_RETRY_MAX,
    Deliveries,
    retry_when_space,
    until_stored,
)
from p2pim.net.link import LinkClosed, PeerLink
from p2pim.routes import Routes
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

TYPING_TTL = 6.0  # a typing indicator not refreshed within this is over


def check_text(text: object) -> str:
    if not isinstance(text, str) or len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ValueError(f"text is a string of at most {MAX_TEXT_BYTES} bytes (files go as files)")
    return text


class Messenger:
    def __init__(
        self,
        me: str,
        store: Store,
        links: dict[str, PeerLink],
        emit: Callable[[events.NodeEvent], Awaitable[None]],
        delivery: Deliveries,
    ) -> None:
        self.me = me
        self._store = store
        self._links = links
        self._emit = emit
        self._delivery = delivery
        self._typing_until: dict[str, float] = {}
        self._typing_watched: set[str] = set()  # peers with an expiry task running
        self._nursery: trio.Nursery | None = None

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def routes(self) -> Routes:
        """Messages, edits, deletes and read receipts go through the session's inbox, in
        order, to `store_received`; typing is shown at once."""
        inbox = self._delivery.received
        return {Text: inbox, Edit: inbox, Delete: inbox, ReadReceipt: inbox, Typing: self._typing}

    async def session_ended(self, fp: str) -> None:
        if self._typing_until.pop(fp, None) is not None:
            await self._emit(events.TypingChanged(fp, False))  # a gone peer types no more

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
        self._delivery.queued(peer)
        return message_id

    async def edit(self, peer: str, target: bytes, text: str) -> None:
        check_text(text)
        op = Edit(id=new_message_id(), target=target, sent_at=now_ms(), body=text)
        await self._store.run(
            Database.edit_own,
            op.id, target, self.me, text, op.sent_at, codec.encode(op), peer, op.sent_at,
        )  # fmt: skip
        self._delivery.queued(peer)

    async def delete(self, peer: str, target: bytes) -> None:
        op = Delete(id=new_message_id(), target=target, sent_at=now_ms())
        await self._store.run(
            Database.delete_own, op.id, target, self.me, codec.encode(op), peer, op.sent_at
        )
        self._delivery.withdraw(peer, target)
        self._delivery.queued(peer)

    async def mark_read(self, peer: str, up_to: bytes | None = None) -> list[bytes]:
        """Mark the conversation read (up to a message) and tell the peer, durably."""

        def receipts(ids: list[bytes]) -> list[tuple[bytes, bytes]]:
            chunks = (tuple(ids[i : i + MAX_ACKED_IDS]) for i in range(0, len(ids), MAX_ACKED_IDS))
            receipts = [ReadReceipt(id=new_message_id(), ids=chunk) for chunk in chunks]
            return [(r.id, codec.encode(r)) for r in receipts]

        ids = await self._store.run(Database.mark_read_locally, peer, up_to, now_ms(), receipts)
        if ids:
            self._delivery.queued(peer)
        return ids

    async def set_typing(self, peer: str, active: bool, patience: float) -> None:
        """Best effort: a peer that does not take it in `patience` seconds loses the
        session (a cancelled send poisons the link)."""
        link = self._links.get(peer)
        if link is not None:
            with contextlib.suppress(LinkClosed), trio.move_on_after(patience):
                await link.send(Typing(active))

    # ---- receiving ----------------------------------------------------------------------

    async def store_received(self, link: PeerLink, batch: list[Message]) -> bool:
        """Store a batch the session's inbox held, in order; False if the session ended
        before all of it was.  Each run of texts is stored together (one commit for all),
        then acked and shown in arrival order; other operations apply one by one, and the
        acks of our own sends are marked delivered together.

        What cannot be stored for want of space is not acked: it is retried here,
        backing off, while the inbox fills and then holds the reader (the sender's
        window of unacknowledged sends holds the rest)."""
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
            if not await until_stored(
                self._store, link, functools.partial(self._apply, link, message)
            ):
                return False
        if texts and not await self._store_texts(link, texts):
            return False
        # Our own sends' acks: if this fails, they stay in the outbox and are resent.
        delivered = functools.partial(self._mark_delivered, link.fingerprint, acked)
        return not acked or await until_stored(self._store, link, delivered)

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
                stored[i] = await self._store.run(
                    Database.store_incoming,
                    message.id, fp, fp, message.sent_at, message.lamport, message.body, now_ms(),
                )  # fmt: skip
            except StorageFull as exc:  # any other error ends the session (the caller)
                failure.append(exc)

        delay = STORE_RETRY_FIRST
        while True:
            failure.clear()
            async with trio.open_nursery() as nursery:
                for i, message in enumerate(texts):
                    if i not in stored:
                        nursery.start_soon(store, i, message)
            if not failure or not await retry_when_space(self._store, link, failure[0], delay):
                break
            delay = min(delay * 2, STORE_RETRY_MAX)
        for i, message in enumerate(texts):
            if i not in stored:
                continue  # not acked: the peer sends it again
            self._delivery.ack(link, message.id)
            if stored[i] is not None:  # a resend of what we already have is acked, not shown
                await self._emit(
                    events.MessageReceived(
                        fp, link.remote_nick, message.id.hex(), message.sent_at, message.body
                    )
                )
        return len(stored) == len(texts)

    async def _apply(self, link: PeerLink, message: Message) -> None:
        fp, now = link.fingerprint, now_ms()
        if isinstance(message, Edit):
            edited = await self._store.run(
                Database.apply_edit,
                message.id, message.target, fp, message.body, message.sent_at, now,
            )  # fmt: skip
            self._delivery.ack(link, message.id)
            if edited is not None:
                await self._emit(events.MessageEdited(fp, message.target.hex(), message.body))
        elif isinstance(message, Delete):
            deleted = await self._store.run(
                Database.apply_delete, message.id, message.target, fp, now
            )
            self._delivery.ack(link, message.id)
            if deleted is not None:
                await self._emit(events.MessageDeleted(fp, message.target.hex()))
        elif isinstance(message, ReadReceipt):
            read = await self._store.run(
                Database.mark_read_by_peer, message.id, message.ids, fp, now
            )
            self._delivery.ack(link, message.id)
            for message_id in read:
                await self._emit(events.MessageRead(fp, message_id.hex()))

    async def _mark_delivered(self, fp: str, ids: list[bytes]) -> None:
        for message_id in await self._store.run(Database.mark_delivered, fp, ids, now_ms()):
            await self._emit(events.MessageDelivered(fp, message_id.hex()))

    # ---- typing -------------------------------------------------------------------------

    async def _typing(self, link: PeerLink, message: Typing) -> None:
        fp, active = link.fingerprint, message.active
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
