"""Nodes over real TCP on loopback (no mDNS): sessions, limits and blame."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.lowlevel
import trio.testing

from p2pim import Identity, Node, PeerRejectedError, open_node
from p2pim.events import (
    DialFailed,
    MessageReceived,
    PeerConnected,
    PeerDisconnected,
    PeerRejected,
)
from p2pim.net.link import perform_handshake
from p2pim.wire.framing import encode_frame
from p2pim.wire.messages import PROTOCOL_VERSION, Hello
from tests.support.nodes import loopback_config, next_event, raw_session

config = loopback_config


@asynccontextmanager
async def two_nodes(**overrides: object) -> AsyncIterator[tuple[Node, Node]]:
    async with (
        open_node(Identity.generate(), config("alice", **overrides)) as a,
        open_node(Identity.generate(), config("bob", **overrides)) as b,
    ):
        yield a, b


async def test_text_arrives_with_authenticated_sender() -> None:
    async with two_nodes() as (a, b):
        events = b.subscribe()
        assert await a.connect("127.0.0.1", b.port, b.fingerprint) == b.fingerprint
        await a.send_text(b.fingerprint, "hello bob ✓")
        with trio.fail_after(5):
            connected = await next_event(events, lambda e: isinstance(e, PeerConnected))
            received = await next_event(events, lambda e: isinstance(e, MessageReceived))
        assert connected == PeerConnected(
            a.fingerprint, "alice", "127.0.0.1", "online", "", "unverified"
        )
        assert isinstance(received, MessageReceived)
        assert (received.sender, received.nick, received.text) == (
            a.fingerprint,
            "alice",
            "hello bob ✓",
        )
        assert [p.fingerprint for p in b.peers() if p.connected] == [a.fingerprint]


async def test_dialing_an_unexpected_key_is_rejected_before_we_identify(identity: Identity) -> None:
    async with two_nodes() as (a, b):
        a_events, b_events = a.subscribe(), b.subscribe()
        someone_else = identity.fingerprint
        with pytest.raises(PeerRejectedError):
            await a.connect("127.0.0.1", b.port, someone_else)
        with trio.fail_after(5):
            rejected = await next_event(a_events, lambda e: isinstance(e, PeerRejected))
        assert isinstance(rejected, PeerRejected)
        assert rejected.expected_fingerprint == someone_else
        assert rejected.actual_fingerprint == b.fingerprint
        # B never completed a handshake: A aborted before message 3 revealed its key.
        await trio.testing.wait_all_tasks_blocked()
        assert a.peers() == []
        assert b.peers() == []
        assert b_events.statistics().current_buffer_used == 0


async def test_simultaneous_dials_converge_on_one_session() -> None:
    async with two_nodes() as (a, b):
        a_events, b_events = a.subscribe(), b.subscribe()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.connect, "127.0.0.1", b.port, b.fingerprint)
            nursery.start_soon(b.connect, "127.0.0.1", a.port, a.fingerprint)
        with trio.fail_after(5):
            await next_event(a_events, lambda e: isinstance(e, PeerConnected))
            await next_event(b_events, lambda e: isinstance(e, PeerConnected))
            # Both ends settle on the same TCP connection (the tie-break needs no talk).
            while not same_session(a, b):
                await trio.testing.wait_all_tasks_blocked()  # let in-flight adoptions finish
                await trio.lowlevel.checkpoint()
        for i in range(20):
            await a.send_text(b.fingerprint, f"a{i}")
            await b.send_text(a.fingerprint, f"b{i}")
        with trio.fail_after(5):
            for i in range(20):
                got_b = await next_event(b_events, lambda e: isinstance(e, MessageReceived))
                got_a = await next_event(a_events, lambda e: isinstance(e, MessageReceived))
                assert (got_b.text, got_a.text) == (f"a{i}", f"b{i}")  # type: ignore[union-attr]
        for events in (a_events, b_events):
            seen = []
            while True:
                try:
                    seen.append(events.receive_nowait())
                except trio.WouldBlock:
                    break
            assert not [e for e in seen if isinstance(e, PeerDisconnected)]


def same_session(a: Node, b: Node) -> bool:
    link_a, link_b = a._links.get(b.fingerprint), b._links.get(a.fingerprint)
    if link_a is None or link_b is None or link_a.closed or link_b.closed:
        return False
    return link_a.initiator != link_b.initiator and len(a._links) == len(b._links) == 1


async def test_stalled_handshake_is_cut_by_the_deadline(identity: Identity) -> None:
    async with open_node(identity, config("n", handshake_timeout=0.2)) as node:
        stream = await trio.open_tcp_stream("127.0.0.1", node.port)
        with trio.fail_after(5):
            assert await stream.receive_some(100) == b""  # closed by the node, not by us


async def test_oversized_frame_is_rejected_without_waiting_for_it(identity: Identity) -> None:
    async with open_node(identity, config("n", handshake_timeout=60)) as node:
        stream = await trio.open_tcp_stream("127.0.0.1", node.port)
        await stream.send_all(b"\xff\xff")  # claims 65535 bytes, sends none of them
        with trio.fail_after(5):  # far below the 60 s deadline: rejected on the header
            assert await stream.receive_some(100) == b""


async def test_pending_handshake_cap_per_address_spares_other_addresses() -> None:
    cfg = config("n", handshake_timeout=60, max_pending_per_address=3)
    cfg.listen_host = "127.0.0.1"
    async with open_node(Identity.generate(), cfg) as node:
        stalled = [await trio.open_tcp_stream("127.0.0.1", node.port) for _ in range(3)]
        extra = await trio.open_tcp_stream("127.0.0.1", node.port)
        with trio.fail_after(5):
            assert await extra.receive_some(100) == b""  # over the cap: closed at once
        assert node.stats()["pending_handshakes"] == 3
        # A legitimate peer from another address still gets in.
        async with open_node(Identity.generate(), config("friend")) as friend:
            link = await raw_session(node.port, friend.identity, local_address="127.0.0.2")
            assert link.fingerprint == node.fingerprint
            await link.close()
        for s in stalled:
            await s.aclose()


async def test_malformed_frame_closes_only_that_session() -> None:
    async with two_nodes() as (a, b):
        b_events = b.subscribe()
        await a.connect("127.0.0.1", b.port, b.fingerprint)
        rogue_identity = Identity.generate()
        stream = await trio.open_tcp_stream("127.0.0.1", b.port)  # kept: we write raw bytes
        with trio.fail_after(5):
            rogue = await perform_handshake(
                stream,
                initiator=True,
                static_private=rogue_identity.private_key,
                hello=Hello(PROTOCOL_VERSION, "rogue"),
                address="127.0.0.1",
            )
            await next_event(
                b_events,
                lambda e: (
                    isinstance(e, PeerConnected) and e.fingerprint == rogue_identity.fingerprint
                ),
            )
            # An authenticated peer sends a frame that is not valid AEAD ciphertext.
            await stream.send_all(encode_frame(b"\x00" * 40))
            gone = await next_event(
                b_events,
                lambda e: (
                    isinstance(e, PeerDisconnected) and e.fingerprint == rogue_identity.fingerprint
                ),
            )
        assert "protocol error" in gone.reason  # type: ignore[union-attr]
        await a.send_text(b.fingerprint, "still here")
        with trio.fail_after(5):
            msg = await next_event(b_events, lambda e: isinstance(e, MessageReceived))
        assert msg.text == "still here"  # type: ignore[union-attr]
        await rogue.close()


async def test_graceful_stop_says_goodbye() -> None:
    a_identity = Identity.generate()
    async with open_node(Identity.generate(), config("b")) as b:
        events = b.subscribe()
        async with open_node(a_identity, config("a")) as a:
            await a.connect("127.0.0.1", b.port, b.fingerprint)
            with trio.fail_after(5):
                await next_event(events, lambda e: isinstance(e, PeerConnected))
        with trio.fail_after(5):
            gone = await next_event(events, lambda e: isinstance(e, PeerDisconnected))
        assert gone == PeerDisconnected(a_identity.fingerprint, "quit")


async def test_one_way_visibility_is_diagnosed() -> None:
    cfg = config("a", reconnect_base_delay=0.05, reconnect_max_delay=0.2)
    async with open_node(Identity.generate(), cfg) as a:
        events = a.subscribe()
        async with open_node(Identity.generate(), config("b")) as b:
            await b.connect("127.0.0.1", a.port, a.fingerprint)  # b reaches a
            with trio.fail_after(5):
                await next_event(events, lambda e: isinstance(e, PeerConnected))
        # b is gone: a tries the address b announced in its hello, and is refused.
        with trio.fail_after(5):
            failed = await next_event(
                events, lambda e: isinstance(e, DialFailed) and e.fingerprint == b.fingerprint
            )
        assert failed.reason == "refused"  # type: ignore[union-attr]
        [report] = [r for r in a.reachability() if r.fingerprint == b.fingerprint]
        assert report.they_reached_us
        assert not report.connected
        assert report.last_error == "refused"
        assert report.diagnosis.startswith("one-way: the peer reached us")


async def test_a_full_node_backs_off_its_own_dials() -> None:
    async with open_node(Identity.generate(), config("a", max_sessions=0)) as a:
        events = a.subscribe()
        async with open_node(Identity.generate(), config("b")) as b:
            await a.add_peer("127.0.0.1", b.port)
            with trio.fail_after(5):
                failed = await next_event(events, lambda e: isinstance(e, DialFailed))
            assert failed.reason == "local limit"  # type: ignore[union-attr]
            [report] = a.reachability()
            assert report.last_error == "local limit"
            assert a._reacher._planner.next_due() is not None  # backing off, not redialling at once
            assert a._reacher._planner.next_due() > trio.current_time()  # type: ignore[operator]
