"""Messaging without a node: a `Messenger` and its `Deliveries` over a link pair on memory
streams and a `:memory:` store; the test is the peer, and the reader that routes what
arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trio

from p2pim import events
from p2pim.clock import new_message_id
from p2pim.delivery import Deliveries
from p2pim.messaging import TYPING_TTL, Messenger
from p2pim.net.link import PeerLink
from p2pim.routes import merge
from p2pim.storage import Database, Store
from p2pim.wire.messages import (
    MAX_TEXT_BYTES,
    Ack,
    Delete,
    Edit,
    Message,
    ReadReceipt,
    Text,
    Typing,
)
from tests.support.doubles import PEER, link_pair, memory_store, receive


@dataclass
class Chat:
    messenger: Messenger
    deliveries: Deliveries
    store: Store
    ours: PeerLink
    theirs: PeerLink  # the peer's end: the test sends and receives as the peer
    seen: list[events.NodeEvent]
    _changed: list[trio.Event]
    acks: set[bytes] = field(default_factory=set)  # what the peer's end got, acks apart
    got: list[Message] = field(default_factory=list)  # and the rest, in order

    async def arrives(self, message: Message) -> None:
        """What our session's reader does with a message from the peer."""
        table = merge(self.deliveries.routes(), self.messenger.routes())
        await table[type(message)](self.ours, message)

    async def event(self, kind: type, count: int = 1, within: float = 5) -> list[events.NodeEvent]:
        """Until `count` events of `kind` were emitted, at most `within` seconds."""
        with trio.fail_after(within):
            while len(found := [e for e in self.seen if isinstance(e, kind)]) < count:
                await self._changed[0].wait()
        return found

    async def acked(self, ids: set[bytes]) -> None:
        """Until the peer's end has received acks of all of `ids` (in one or more Acks)."""
        while not ids <= self.acks:
            await self._take()

    async def sent(self, count: int) -> list[Message]:
        """Until the peer's end has received `count` messages other than acks."""
        while len(self.got) < count:
            await self._take()
        return self.got

    async def _take(self) -> None:
        (message,) = await receive(self.theirs, 1)
        if isinstance(message, Ack):
            self.acks.update(message.ids)
        else:
            self.got.append(message)


@asynccontextmanager
async def chat() -> AsyncIterator[Chat]:
    async with memory_store() as store, trio.open_nursery() as nursery:
        seen: list[events.NodeEvent] = []
        changed = [trio.Event()]

        async def emit(event: events.NodeEvent) -> None:
            seen.append(event)
            changed[0].set()
            changed[0] = trio.Event()

        ours, theirs = await link_pair()
        deliveries = Deliveries(store)
        messenger = Messenger("me", store, {PEER.fingerprint: ours}, emit, deliveries)
        deliveries.start(nursery, messenger.store_received)
        messenger.start(nursery)
        deliveries.session_started(ours)
        yield Chat(messenger, deliveries, store, ours, theirs, seen, changed)
        nursery.cancel_scope.cancel()


async def test_a_sent_text_is_committed_sent_and_delivered_once_acked() -> None:
    async with chat() as c:
        message_id = await c.messenger.send_text(PEER.fingerprint, "hello")
        (stored,) = await c.store.run(Database.conversation, PEER.fingerprint)
        assert (stored.id, stored.body, stored.outgoing) == (message_id, "hello", True)
        (sent,) = await c.sent(1)
        assert isinstance(sent, Text)
        assert (sent.id, sent.body) == (message_id, "hello")

        await c.arrives(Ack((message_id,)))
        (delivered,) = await c.event(events.MessageDelivered)
        assert delivered == events.MessageDelivered(PEER.fingerprint, message_id.hex())
        assert await c.store.run(Database.outbox_size, PEER.fingerprint) == 0


async def test_received_texts_are_stored_acked_and_shown_once() -> None:
    async with chat() as c:
        texts = [Text(new_message_id(), 1000 + i, f"m{i}", i + 1) for i in range(3)]
        for text in texts:
            await c.arrives(text)
        await c.acked({t.id for t in texts})
        shown = await c.event(events.MessageReceived, 3)
        assert [e.text for e in shown] == ["m0", "m1", "m2"]  # type: ignore[attr-defined]

        await c.arrives(texts[0])  # a resend after a lost ack: acked again, not shown
        await c.acked({texts[0].id})
        assert len(await c.event(events.MessageReceived)) == 3
        assert len(await c.store.run(Database.conversation, PEER.fingerprint)) == 3


async def test_the_peers_edits_deletes_and_receipts_are_applied_and_acked() -> None:
    async with chat() as c:
        theirs = Text(new_message_id(), 1000, "draft", 1)
        await c.arrives(theirs)
        ours = await c.messenger.send_text(PEER.fingerprint, "mine")
        edit = Edit(new_message_id(), theirs.id, 1001, "final")
        delete = Delete(new_message_id(), theirs.id, 1002)
        receipt = ReadReceipt(new_message_id(), (ours,))
        for op in (edit, delete, receipt):
            await c.arrives(op)
        await c.acked({theirs.id, edit.id, delete.id, receipt.id})
        assert await c.event(events.MessageEdited) == [
            events.MessageEdited(PEER.fingerprint, theirs.id.hex(), "final")
        ]
        assert await c.event(events.MessageDeleted) == [
            events.MessageDeleted(PEER.fingerprint, theirs.id.hex())
        ]
        assert await c.event(events.MessageRead) == [
            events.MessageRead(PEER.fingerprint, ours.hex())
        ]


async def test_our_edits_deletes_and_receipts_reach_the_peer() -> None:
    async with chat() as c:
        theirs = Text(new_message_id(), 1000, "hi", 1)
        await c.arrives(theirs)
        await c.acked({theirs.id})  # stored: it can be marked read
        ours = await c.messenger.send_text(PEER.fingerprint, "tpyo")
        await c.messenger.edit(PEER.fingerprint, ours, "typo")
        await c.messenger.delete(PEER.fingerprint, ours)
        assert len(await c.messenger.mark_read(PEER.fingerprint)) == 1
        got = await c.sent(3)
        while not isinstance(got[-1], ReadReceipt):
            got = await c.sent(len(got) + 1)
        kinds = [type(m) for m in got]
        # The text may have left before the delete withdrew it; the rest go in order.
        assert kinds[-3:] == [Edit, Delete, ReadReceipt]
        assert set(kinds[:-3]) <= {Text}
        assert got[-3].body == "typo"
        assert got[-2].target == ours


async def test_typing_shows_expires_and_ends_with_the_session(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with chat() as c:
        await c.arrives(Typing(True))
        await c.arrives(Typing(True))  # a refresh: no second event
        assert await c.event(events.TypingChanged) == [events.TypingChanged(PEER.fingerprint, True)]
        start = trio.current_time()
        await c.event(events.TypingChanged, 2, within=2 * TYPING_TTL)  # expired
        assert trio.current_time() - start >= TYPING_TTL
        assert c.seen[-1] == events.TypingChanged(PEER.fingerprint, False)

        await c.arrives(Typing(True))
        await c.messenger.session_ended(PEER.fingerprint)
        assert c.seen[-1] == events.TypingChanged(PEER.fingerprint, False)


async def test_set_typing_goes_straight_to_the_link_and_text_is_bounded() -> None:
    async with chat() as c:
        await c.messenger.set_typing(PEER.fingerprint, True, 5)
        assert await c.sent(1) == [Typing(True)]
        await c.messenger.set_typing("nobody", True, 5)  # offline: nothing to do
        with pytest.raises(ValueError, match="at most"):
            await c.messenger.send_text(PEER.fingerprint, "x" * (MAX_TEXT_BYTES + 1))
