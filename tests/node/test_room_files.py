"""Files shared in a room, between real nodes on loopback TCP (issue 14, defect 6).

An offer made in a room carries the room's id; every member gets it as an offer *in the
room* (`room` on `OfferReceived`, `TransferInfo` and `TransferFinished`), including a
member the sender never met, who gets it once they meet.  A room named by someone who is
not a member is a private offer.  The sender lists one transfer per member, and after a
restart each shows its real state, bytes and room.  Every wait is an event awaited under
a timeout.
"""

from __future__ import annotations

import os
from pathlib import Path

import trio

from p2pim import Identity, Node, open_node
from p2pim.clock import new_message_id, now_ms
from p2pim.events import OfferAnswered, OfferReceived, PeerConnected, TransferFinished
from p2pim.net.link import perform_handshake
from p2pim.transfer.push import SEND_BLOCK
from p2pim.wire.messages import (
    PROTOCOL_VERSION,
    Chunk,
    FileOffer,
    Hello,
    OfferedFile,
    OfferReply,
    Pull,
    Text,
)
from tests.support.nodes import form_room, loopback_config, meet, next_event, raw_session, running


def offer_of(offer: str) -> object:
    return lambda e: isinstance(e, OfferReceived) and e.offer == offer


async def test_a_room_offer_reaches_every_member_in_the_room_even_one_never_met(
    tmp_path: Path,
) -> None:
    source = tmp_path / "agenda.bin"
    data = os.urandom(200_000)
    source.write_bytes(data)
    async with running("a", "b", "c") as [a, b, c]:
        await meet(a, b)
        await meet(a, c)  # b and c never meet before b shares the file
        room = await form_room(a, [b, c])
        subs = {node: node.subscribe() for node in (a, b, c)}
        offer = await b.send_files_to_room(room, [source])
        # The sender lists a transfer for every other member at once, c included.
        mine = [t for t in await b.transfers() if t.offer == offer]
        assert sorted(t.peer for t in mine) == sorted([a.fingerprint, c.fingerprint])
        assert {(t.outgoing, t.state, t.room, t.total) for t in mine} == {
            (True, "offered", room, len(data))
        }
        got = await next_event(subs[a], offer_of(offer))  # type: ignore[arg-type]
        assert isinstance(got, OfferReceived)
        assert got.room == room
        assert got.peer == b.fingerprint
        await meet(b, c)  # now b's queued offer goes to c
        got = await next_event(subs[c], offer_of(offer))  # type: ignore[arg-type]
        assert isinstance(got, OfferReceived)
        assert got.room == room
        for node in (a, c):
            [theirs] = [t for t in await node.transfers() if t.offer == offer]
            assert (theirs.peer, theirs.outgoing, theirs.room) == (b.fingerprint, False, room)
        await a.accept_offer(b.fingerprint, offer, directory=tmp_path)
        await c.decline_offer(b.fingerprint, offer)
        ends = {}
        with trio.fail_after(10):
            while len(ends) < 2:
                event = await subs[b].receive()
                if isinstance(event, TransferFinished) and event.offer == offer:
                    ends[event.peer] = (event.state, event.room)
        assert ends == {a.fingerprint: ("completed", room), c.fingerprint: ("declined", room)}
        assert (tmp_path / source.name).read_bytes() == data


async def test_a_room_named_by_a_non_member_makes_a_private_offer() -> None:
    mallory = Identity.generate()
    async with running("a", "b") as [a, b]:
        await meet(a, b)
        room = await form_room(a, [b])
        events = a.subscribe()
        link = await raw_session(a.port, mallory, "mallory")
        claims = {
            "a room mallory is not in": bytes.fromhex(room),
            "an id of the wrong length": bytes.fromhex(room)[:5],
            "a room nobody knows": os.urandom(16),
        }
        for label, claim in claims.items():
            offer = new_message_id()
            part = FileOffer(
                new_message_id(), offer, now_ms(), 60_000, 1, 3, 0,
                (OfferedFile("x.txt", 3, bytes(32)),), claim,
            )  # fmt: skip
            await link.send(part)
            got = await next_event(events, offer_of(offer.hex()))  # type: ignore[arg-type]
            assert isinstance(got, OfferReceived), label
            assert got.room == "", label
            [info] = [t for t in await a.transfers() if t.offer == offer.hex()]
            assert info.room == "", label
        # The session stays up: a wrong claim is not a protocol error.
        await link.send(Text(new_message_id(), now_ms(), "still here"))
        assert a.is_connected(mallory.fingerprint)
        await link.close()


async def test_after_a_restart_the_sender_lists_each_member_with_its_bytes_and_state(
    tmp_path: Path,
) -> None:
    small = tmp_path / "notes.bin"
    small.write_bytes(os.urandom(150_000))
    big = tmp_path / "video.bin"
    size = 64 << 20
    big.write_bytes(os.urandom(size))
    (tmp_path / "b").mkdir()
    alice = Identity.generate()
    store = tmp_path / "a.db"
    config = loopback_config("a")
    async with running("b", "c") as [b, c]:
        async with open_node(alice, config, store_path=store) as a:
            await meet(a, b)
            await meet(a, c)
            room = await form_room(a, [b, c])
            b_events, c_events = b.subscribe(), c.subscribe()
            a_events = a.subscribe()
            offer = await a.send_files_to_room(room, [small])
            await next_event(b_events, offer_of(offer))  # type: ignore[arg-type]
            await next_event(c_events, offer_of(offer))  # type: ignore[arg-type]
            await b.accept_offer(a.fingerprint, offer, directory=tmp_path / "b")
            await c.decline_offer(a.fingerprint, offer)
            for _ in range(2):
                await next_event(
                    a_events, lambda e: isinstance(e, TransferFinished) and e.offer == offer
                )
            # A big file, pulled part way by a receiver the test drives, then dropped:
            # what was sent stays on record (however fast loopback is).
            moving = await pull_part_way(a, big, 8 << 20)
        async with open_node(alice, config, store_path=store) as a:
            listed = {(t.offer, t.peer): t for t in await a.transfers()}
    to_b, to_c = listed[(offer, b.fingerprint)], listed[(offer, c.fingerprint)]
    assert (to_b.state, to_b.total, to_b.done, to_b.room) == ("completed", 150_000, 150_000, room)
    assert (to_c.state, to_c.total, to_c.done, to_c.room) == ("declined", 0, 0, room)
    stopped = [t for t in listed.values() if t.offer == moving]
    assert [(t.state, t.total, t.room) for t in stopped] == [("accepted", size, "")]
    # What was sent, but for the block in flight when the connection dropped.
    assert stopped[0].done >= (8 << 20) - SEND_BLOCK, "the bytes sent before the drop are kept"


async def pull_part_way(sender: Node, path: Path, least: int) -> str:
    """Offer `path` to a bare peer that accepts it, pulls `least` bytes or more over a
    transfer connection, and drops it.  Returns the offer id."""
    rex = Identity.generate()
    events = sender.subscribe()
    session = await raw_session(sender.port, rex, "rex")
    await next_event(events, lambda e: isinstance(e, PeerConnected) and e.nick == "rex")
    offer = await sender.send_files([rex.fingerprint], [path])
    with trio.fail_after(5):
        while not isinstance(part := await session.receive(), FileOffer):
            pass
    await session.send(OfferReply(new_message_id(), part.offer, b"\x01"))
    await next_event(events, lambda e: isinstance(e, OfferAnswered) and e.offer == offer)
    stream = await trio.open_tcp_stream("127.0.0.1", sender.port)
    hello = Hello(PROTOCOL_VERSION, "rex", transfer=part.offer)
    with trio.fail_after(10):
        link = await perform_handshake(
            stream, initiator=True, static_private=rex.private_key, hello=hello,
            address="127.0.0.1",
        )  # fmt: skip
        await link.send(Pull(0, 0))
        pulled = 0
        while pulled < least:
            chunk = await link.receive()
            assert isinstance(chunk, Chunk)
            pulled += len(chunk.data)
    await link.close()
    await session.close()
    events.close()
    return offer
