"""Presence between real nodes on loopback TCP: status, auto-away, heartbeats, silence."""

from __future__ import annotations

import pytest
import trio

from p2pim import Identity, open_node
from p2pim.events import (
    MessageReceived,
    PeerConnected,
    PeerDisconnected,
    PeerStatusChanged,
)
from p2pim.wire.messages import Heartbeat
from tests.support.nodes import loopback_config, next_event, raw_session

config = loopback_config
wait_for = next_event


async def test_status_changes_reach_peers_and_new_sessions_start_with_them() -> None:
    async with (
        open_node(Identity.generate(), config("a")) as a,
        open_node(Identity.generate(), config("b")) as b,
    ):
        events = b.subscribe()
        await a.connect("127.0.0.1", b.port, b.fingerprint)
        await wait_for(events, lambda e: isinstance(e, PeerConnected))
        await a.set_status("busy", "in a meeting")
        changed = await wait_for(events, lambda e: isinstance(e, PeerStatusChanged))
        assert changed == PeerStatusChanged(a.fingerprint, "busy", "in a meeting")
        [seen] = b.peers()
        assert (seen.status, seen.status_text) == ("busy", "in a meeting")

        async with open_node(Identity.generate(), config("c")) as c:
            c_events = c.subscribe()
            await c.connect("127.0.0.1", a.port, a.fingerprint)
            hello = await wait_for(c_events, lambda e: isinstance(e, PeerConnected))
            assert (hello.status, hello.status_text) == ("busy", "in a meeting")  # type: ignore[union-attr]


async def test_invalid_status_is_refused(identity: Identity) -> None:
    async with open_node(identity, config("a")) as a:
        with pytest.raises(ValueError, match="status must be one of"):
            await a.set_status("offline")
        with pytest.raises(ValueError, match="longer than 128 bytes"):
            await a.set_status("away", "x" * 200)


async def test_auto_away_after_idle_and_back_on_activity() -> None:
    async with (
        open_node(Identity.generate(), config("a", auto_away_after=0.2)) as a,
        open_node(Identity.generate(), config("b")) as b,
    ):
        events = b.subscribe()
        await a.connect("127.0.0.1", b.port, b.fingerprint)
        away = await wait_for(events, lambda e: isinstance(e, PeerStatusChanged))
        assert away.status == "away"  # type: ignore[union-attr]
        a.note_activity()
        back = await wait_for(events, lambda e: isinstance(e, PeerStatusChanged))
        assert back.status == "online"  # type: ignore[union-attr]


async def test_idle_links_carry_heartbeats() -> None:
    async with open_node(Identity.generate(), config("n", presence_timeout=0.3)) as node:
        link = await raw_session(node.port, Identity.generate(), "listener")
        with trio.fail_after(5):
            for _ in range(3):
                assert isinstance(await link.receive(), Heartbeat)
                await link.send(Heartbeat())  # keep our side alive too
        await link.close()


async def test_a_silent_peer_goes_offline_after_the_presence_timeout() -> None:
    async with open_node(Identity.generate(), config("n", presence_timeout=0.3)) as node:
        events = node.subscribe()
        mute = Identity.generate()
        link = await raw_session(node.port, mute, "mute")
        gone = await wait_for(events, lambda e: isinstance(e, PeerDisconnected))
        assert gone == PeerDisconnected(mute.fingerprint, "silent for 0.3 s")
        await link.close()


async def test_a_slow_subscriber_does_not_make_a_live_peer_look_silent() -> None:
    async with (
        open_node(Identity.generate(), config("a", presence_timeout=0.3)) as a,
        open_node(Identity.generate(), config("b", presence_timeout=0.3)) as b,
    ):
        events = b.subscribe()
        await a.connect("127.0.0.1", b.port, b.fingerprint)
        count = 1100  # more than a subscriber buffers: b's reader must wait for us
        for i in range(count):
            await a.send_text(b.fingerprint, str(i))
        await trio.sleep(1.0)  # the subscriber is busy elsewhere, 3x the presence timeout
        texts = []
        with trio.fail_after(10):
            async for event in events:
                assert not isinstance(event, PeerDisconnected), event
                if isinstance(event, MessageReceived):
                    texts.append(event.text)
                    if len(texts) == count:
                        break
        assert texts == [str(i) for i in range(count)]
