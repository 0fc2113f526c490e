"""Delivery without a node: `LinkWriter`, `PeerDelivery` and `Deliveries` over a link pair
on memory streams (or a link that only records), a `:memory:` store, and a handler that
logs what the inbox gives it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from p2pim import delivery
from p2pim.clock import new_message_id, now_ms
from p2pim.delivery import Deliveries, LinkWriter
from p2pim.net.link import PeerLink
from p2pim.storage import Database, Store
from p2pim.wire import codec
from p2pim.wire.messages import Ack, Message, Text
from tests.support.doubles import PEER, RecordingLink, link_pair, memory_store, receive

PEER_FP = PEER.fingerprint


class Handler:
    """The feature's side of the inbox: logs each batch; marks acked sends delivered
    (as messaging does), so they leave the outbox; can be held to fill the inbox."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: list[list[Message]] = []
        self.links: list[PeerLink] = []
        self.taken: list[int] = []  # each batch's size, as the drain hands it over
        self.release = trio.Event()
        self.release.set()
        self.stored = trio.Event()

    @property
    def messages(self) -> list[Message]:
        return [m for batch in self.batches for m in batch]

    async def __call__(self, link: PeerLink, batch: list[Message]) -> bool:
        self.taken.append(len(batch))
        await self.release.wait()
        acked = [i for m in batch if isinstance(m, Ack) for i in m.ids]
        if acked:
            await self.store.run(Database.mark_delivered, link.fingerprint, acked, now_ms())
        self.batches.append(batch)
        self.links.append(link)
        self.stored.set()
        self.stored = trio.Event()
        return True

    async def until(self, count: int) -> None:
        with trio.fail_after(5):
            while len(self.messages) < count:
                await self.stored.wait()


async def queue_texts(store: Store, bodies: list[str]) -> list[bytes]:
    """Texts for PEER in its outbox, in one transaction."""

    def queue(db: Database) -> list[bytes]:
        ids = []
        for body in bodies:
            text = Text(new_message_id(), now_ms(), body, db.tick_lamport())
            db.queue_message(
                text.id, PEER_FP, "me", text.sent_at, text.lamport, body, codec.encode(text), 1
            )
            ids.append(text.id)
        return ids

    return await store.atomically(queue)


@asynccontextmanager
async def deliveries() -> AsyncIterator[tuple[Deliveries, Handler, Store]]:
    async with memory_store() as store, trio.open_nursery() as nursery:
        handler = Handler(store)
        owner = Deliveries(store)
        owner.start(nursery, handler)
        yield owner, handler, store
        nursery.cancel_scope.cancel()


# ---- LinkWriter -----------------------------------------------------------------------


async def test_link_writer_sends_in_order_gathers_and_refuses_when_full() -> None:
    link = RecordingLink()
    writes: list[list[int]] = []
    gate = trio.Event()

    async def write(to: PeerLink, items: list[int]) -> None:
        assert to is link
        await gate.wait()
        writes.append(items)

    writer = LinkWriter[int](link, 3, write, gather=2)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        assert writer.put(1)
        await trio.testing.wait_all_tasks_blocked()  # the drain took 1 and waits in write
        assert [writer.put(i) for i in (2, 3, 4, 5)] == [True, True, True, False]  # 3 queued
        writer.close()
        assert not writer.put(6)  # closed: refused
        gate.set()
    assert writes == [[1], [2, 3], [4]]  # what it held was written, then it ended


async def test_link_writer_ends_quietly_when_the_link_closes() -> None:
    link = RecordingLink()
    writer = LinkWriter[Message](link, 4, lambda to, items: to.send_all(items))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        assert writer.put(Ack((b"a" * 16,)))
        await trio.testing.wait_all_tasks_blocked()
        await link.close()
        writer.put(Ack((b"b" * 16,)))  # raises LinkClosed inside: the drain ends
    assert link.sent == [Ack((b"a" * 16,))]
    assert not writer.put(Ack((b"c" * 16,)))  # nobody drains it any more


# ---- the pump, acks, resends ------------------------------------------------------------


async def test_the_pump_sends_the_outbox_in_order_and_a_new_session_resends_the_unacked() -> None:
    async with deliveries() as (owner, handler, store):
        ids = await queue_texts(store, ["one", "two", "three"])
        ours, theirs = await link_pair()
        owner.session_started(ours)
        sent = await receive(theirs, 3)
        assert [m.id for m in sent] == ids  # type: ignore[attr-defined]

        await owner.received(ours, Ack((ids[0],)))  # what the reader does with an ack
        await handler.until(1)
        assert await store.run(Database.outbox_size, PEER_FP) == 2

        ours2, theirs2 = await link_pair()
        owner.session_started(ours2)  # replaces the first: one close()
        resent = await receive(theirs2, 2)
        assert [m.id for m in resent] == ids[1:]  # type: ignore[attr-defined]

        owner.queued(PEER_FP)  # nothing new: nothing more is sent
        (more,) = await queue_texts(store, ["four"])
        owner.queued(PEER_FP)
        assert [m.id for m in await receive(theirs2, 1)] == [more]  # type: ignore[attr-defined]


async def test_the_pump_holds_at_most_the_window_unacknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "MAX_IN_FLIGHT", 2)
    async with deliveries() as (owner, _, store):
        ids = await queue_texts(store, ["a", "b", "c", "d"])
        link = RecordingLink()
        owner.session_started(link)  # type: ignore[arg-type]
        await link.until_sent(2)
        await trio.testing.wait_all_tasks_blocked()  # the pump waits for an ack
        assert [m.id for m in link.sent] == ids[:2]  # type: ignore[attr-defined]
        await owner.received(link, Ack((ids[1],)))  # type: ignore[arg-type]
        await link.until_sent(3)
        await trio.testing.wait_all_tasks_blocked()
        assert [m.id for m in link.sent] == ids[:3]  # type: ignore[attr-defined]


async def test_acks_queued_at_once_go_as_one_ack_on_the_current_session() -> None:
    async with deliveries() as (owner, _, _):
        ours, theirs = await link_pair()
        first = b"\x01" * 16
        owner.ack(ours, first)  # before any session: nobody to tell (the peer resends)
        owner.session_started(ours)
        ids = [bytes([i]) * 16 for i in range(2, 5)]
        for op_id in ids:
            owner.ack(ours, op_id)
        assert await receive(theirs, 1) == [Ack(tuple(ids))]

        ours2, theirs2 = await link_pair()
        owner.session_started(ours2)
        owner.ack(ours, first)  # stored from the replaced session: told on the new one
        assert await receive(theirs2, 1) == [Ack((first,))]


async def test_a_withdrawn_entry_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "MAX_IN_FLIGHT", 1)
    async with deliveries() as (owner, _, store):
        ids = await queue_texts(store, ["a", "b", "c"])
        link = RecordingLink()
        owner.session_started(link)  # type: ignore[arg-type]
        await link.until_sent(1)
        await trio.testing.wait_all_tasks_blocked()  # the pump holds all three, sent one
        owner.withdraw(PEER_FP, ids[1])  # as a delete does, after dropping it from disk
        await owner.received(link, Ack((ids[0],)))  # type: ignore[arg-type]
        await link.until_sent(2)
        assert [m.id for m in link.sent] == [ids[0], ids[2]]  # type: ignore[attr-defined]


# ---- the inbox ------------------------------------------------------------------------


async def test_the_inbox_hands_batches_in_order_and_holds_the_reader_when_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "INBOX_SIZE", 3)
    async with deliveries() as (owner, handler, _):
        ours, _theirs = await link_pair()
        owner.session_started(ours)
        handler.release = trio.Event()  # the disk is slow
        texts = [Text(new_message_id(), 1, f"m{i}", 1) for i in range(8)]
        delivered = 0

        async def reader() -> None:
            nonlocal delivered
            for text in texts:
                await owner.received(ours, text)
                delivered += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            # A batch taken by the drain (waiting on the disk), three in the inbox: the
            # reader waits with the next.
            assert handler.taken
            assert delivered == handler.taken[0] + 3 < len(texts)
            handler.release.set()
        await handler.until(8)
        assert handler.messages == texts
        assert len(handler.batches) < len(texts)  # what waited meanwhile went together


async def test_a_replaced_sessions_messages_are_not_stored_but_its_acks_count() -> None:
    async with deliveries() as (owner, handler, store):
        (queued,) = await queue_texts(store, ["hello"])
        old, _ = await link_pair()
        new, theirs = await link_pair()
        owner.session_started(old)
        owner.session_started(new)
        await receive(theirs, 1)  # the new session sends the outbox
        await owner.received(old, Text(new_message_id(), 1, "late", 1))
        await owner.received(old, Ack((queued,)))
        await handler.until(1)
        assert handler.batches == [[Ack((queued,))]]
        assert handler.links == [old]
        assert await store.run(Database.outbox_size, PEER_FP) == 0


async def test_a_closed_session_stores_what_it_held_and_sends_no_more() -> None:
    async with deliveries() as (owner, handler, store):
        link = RecordingLink()
        owner.session_started(link)  # type: ignore[arg-type]
        handler.release = trio.Event()
        held = [Text(new_message_id(), 1, f"m{i}", 1) for i in range(3)]
        for text in held:
            await owner.received(link, text)  # type: ignore[arg-type]
        owner.session_ended(PEER_FP)
        await queue_texts(store, ["after"])
        owner.queued(PEER_FP)
        handler.release.set()
        await handler.until(3)
        assert handler.messages == held
        link2 = RecordingLink()
        owner.session_started(link2)  # type: ignore[arg-type]
        await link2.until_sent(1)  # the next session sends it: the closed one never did
        assert link.sent == []


async def test_an_error_storing_closes_that_session_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with memory_store() as store, trio.open_nursery() as nursery:

        async def broken(link: PeerLink, batch: list[Message]) -> bool:
            raise RuntimeError("the disk failed")

        owner = Deliveries(store)
        owner.start(nursery, broken)
        link = RecordingLink()
        owner.session_started(link)  # type: ignore[arg-type]
        await owner.received(link, Text(new_message_id(), 1, "x", 1))  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        assert link.closed
        assert "storing what" in caplog.text
        nursery.cancel_scope.cancel()


# ---- flush ----------------------------------------------------------------------------


async def test_flush_waits_until_the_peer_acked_what_is_queued() -> None:
    async with deliveries() as (owner, _, store):
        ids = await queue_texts(store, ["bye"])
        ours, theirs = await link_pair()
        owner.session_started(ours)
        flushed = trio.Event()

        async def flush() -> None:
            await owner.flush()
            flushed.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flush)
            await receive(theirs, 1)
            await trio.testing.wait_all_tasks_blocked()
            assert not flushed.is_set()
            await owner.received(ours, Ack(tuple(ids)))
            with trio.fail_after(5):
                await flushed.wait()


async def test_flush_gives_up_on_a_peer_that_left() -> None:
    async with deliveries() as (owner, _, store):
        await queue_texts(store, ["never acked"])
        link = RecordingLink()
        owner.session_started(link)  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(owner.flush)
            await trio.testing.wait_all_tasks_blocked()
            owner.session_ended(PEER_FP)
        assert await store.run(Database.outbox_size, PEER_FP) == 1
