"""Attacks on the wire through a chaos proxy (loopback): tampering and replay."""

from __future__ import annotations

import trio

from p2pim import Identity, open_node
from p2pim.events import MessageReceived, PeerConnected, PeerDisconnected
from p2pim.testing.chaos import UP, ChaosProxy, replay
from tests.support.nodes import first_event, loopback_config, next_event

REDIAL = 10.0  # seconds for A to notice the closed session, redial and resend


async def test_a_flipped_byte_closes_the_session_and_the_message_arrives_once_after(
    nursery: trio.Nursery,
) -> None:
    async with (
        open_node(Identity.generate(), loopback_config("a", reconnect_max_delay=0.2)) as a,
        open_node(Identity.generate(), loopback_config("b")) as b,
    ):
        proxy = ChaosProxy("127.0.0.1", b.port)  # type: ignore[arg-type]
        await nursery.start(proxy.run)
        a_events, b_events = a.subscribe(), b.subscribe()
        await a.add_peer("127.0.0.1", proxy.port)  # A reaches B only through the proxy
        await next_event(a_events, lambda e: isinstance(e, PeerConnected))
        await next_event(b_events, lambda e: isinstance(e, PeerConnected))

        proxy.faults[UP].flip_next = True  # the next bytes from A to B: our message
        sent = await a.send_text(b.fingerprint, "the exact words")
        gone = await next_event(b_events, lambda e: isinstance(e, PeerDisconnected))
        assert "protocol error" in gone.reason, gone  # type: ignore[attr-defined]
        assert proxy.flipped == 1
        # A redials (through the proxy, now honest) and resends from its outbox: once.
        with trio.fail_after(REDIAL):
            got = await first_event(b_events, lambda e: isinstance(e, MessageReceived))
        assert (got.message_id, got.text) == (sent, "the exact words")  # type: ignore[attr-defined]
        history = await b.history(a.fingerprint)
        assert [m.body for m in history] == ["the exact words"]


async def test_recorded_bytes_replayed_into_a_new_connection_are_refused(
    nursery: trio.Nursery,
) -> None:
    async with (
        open_node(Identity.generate(), loopback_config("a")) as a,
        open_node(Identity.generate(), loopback_config("b")) as b,
    ):
        proxy = ChaosProxy("127.0.0.1", b.port)  # type: ignore[arg-type]
        await nursery.start(proxy.run)
        a_events, b_events = a.subscribe(), b.subscribe()
        await a.connect("127.0.0.1", proxy.port, b.fingerprint)
        await next_event(b_events, lambda e: isinstance(e, PeerConnected))
        for text in ("first", "second"):
            await a.send_text(b.fingerprint, text)
            await next_event(b_events, lambda e: isinstance(e, MessageReceived))
        await a.stop()  # the recorded session is over; its bytes are what an attacker saw
        await next_event(b_events, lambda e: isinstance(e, PeerDisconnected))
        del a_events

        with trio.fail_after(10):  # B answers the replayed hello, then drops the rest
            await replay(b.port, bytes(proxy.recorded[0]))
        assert b.stats()["sessions"] == 0
        after: list[object] = []
        while True:
            try:
                after.append(b_events.receive_nowait())
            except trio.WouldBlock:
                break
        assert not [e for e in after if isinstance(e, PeerConnected | MessageReceived)], after
        assert [m.body for m in await b.history(a.fingerprint)] == ["first", "second"]
