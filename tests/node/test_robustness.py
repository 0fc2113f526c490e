"""A node keeps serving whatever peers, the network or its own disk do (loopback TCP)."""

from __future__ import annotations

import socket
import struct

import pytest
import trio

from p2pim import Identity, PeerRejectedError, open_node
from p2pim.events import DialFailed, MessageReceived, PeerConnected
from p2pim.storage import Database, StorageError
from p2pim.wire.messages import Heartbeat, Typing
from tests.support.nodes import first_event, loopback_config, next_event, raw_session


async def test_connections_reset_before_they_are_served_do_not_kill_the_node() -> None:
    async with open_node(Identity.generate(), loopback_config("n")) as node:
        for _ in range(300):
            sock = trio.socket.socket()
            await sock.connect(("127.0.0.1", node.port))
            # SO_LINGER 0: close() sends RST, racing the listener's accept.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        async with open_node(Identity.generate(), loopback_config("friend")) as friend:
            assert await friend.connect("127.0.0.1", node.port) == node.fingerprint


async def test_two_peers_sending_hard_at_once_do_not_deadlock() -> None:
    count, body = 400, "x" * 30_000  # enough to fill both directions' socket buffers
    async with (
        open_node(Identity.generate(), loopback_config("a")) as a,
        open_node(Identity.generate(), loopback_config("b")) as b,
    ):
        a_events, b_events = a.subscribe(), b.subscribe()
        await a.connect("127.0.0.1", b.port, b.fingerprint)
        await next_event(a_events, lambda e: isinstance(e, PeerConnected))
        await next_event(b_events, lambda e: isinstance(e, PeerConnected))

        async def send_all(sender, to: str) -> None:  # type: ignore[no-untyped-def]
            for _ in range(count):
                await sender.send_text(to, body)

        async def receive_all(events) -> None:  # type: ignore[no-untyped-def]
            for _ in range(count):  # bounded by the fail_after below
                await first_event(events, lambda e: isinstance(e, MessageReceived))

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all, a, b.fingerprint)
                nursery.start_soon(send_all, b, a.fingerprint)
                nursery.start_soon(receive_all, a_events)
                nursery.start_soon(receive_all, b_events)


async def test_a_peer_that_stops_reading_cannot_hold_up_a_status_change() -> None:
    config = loopback_config("n", presence_timeout=0.5)
    async with open_node(Identity.generate(), config) as node:
        events = node.subscribe()
        sluggard = Identity.generate()
        link = await raw_session(node.port, sluggard, "sluggard")
        await next_event(events, lambda e: isinstance(e, PeerConnected))

        async def stay_alive_but_never_read() -> None:
            while True:
                await link.send(Heartbeat())
                await trio.sleep(0.1)  # the fake peer's own heartbeat rhythm

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stay_alive_but_never_read)
            for _ in range(200):  # fills the socket buffers towards the sluggard
                await node.send_text(sluggard.fingerprint, "y" * 30_000)
            with trio.fail_after(5):
                await node.set_status("busy", "not waiting for anyone")
            nursery.cancel_scope.cancel()
        await link.close()


async def test_a_disk_error_while_opening_a_session_loses_that_session_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with open_node(Identity.generate(), loopback_config("n")) as node:
        real_pin = Database.pin_peer

        def failing_pin(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise StorageError("disk full (simulated)")

        monkeypatch.setattr(Database, "pin_peer", failing_pin)
        async with open_node(Identity.generate(), loopback_config("unlucky")) as unlucky:
            with pytest.raises(PeerRejectedError):  # its own (patched) disk fails as well
                await unlucky.connect("127.0.0.1", node.port)
        monkeypatch.setattr(Database, "pin_peer", real_pin)
        async with open_node(Identity.generate(), loopback_config("lucky")) as lucky:
            events = node.subscribe()
            await lucky.connect("127.0.0.1", node.port)
            connected = await next_event(events, lambda e: isinstance(e, PeerConnected))
            assert connected.nick == "lucky"  # type: ignore[union-attr]


async def test_a_nonsense_manual_host_is_a_failed_dial_not_a_dead_node(identity: Identity) -> None:
    async with open_node(identity, loopback_config("n")) as node:
        events = node.subscribe()
        await node.add_peer("a..b", 4000)  # not a name any resolver takes
        failed = await next_event(events, lambda e: isinstance(e, DialFailed))
        assert failed.reason.startswith("unreachable")  # type: ignore[union-attr]
        assert node.stats()["sessions"] == 0


async def test_typing_toggles_cannot_multiply_tasks() -> None:
    async with open_node(Identity.generate(), loopback_config("n")) as node:
        events = node.subscribe()
        link = await raw_session(node.port, Identity.generate(), "typist")
        await next_event(events, lambda e: isinstance(e, PeerConnected))
        for _ in range(500):
            await link.send(Typing(True))
            await link.send(Typing(False))
        await link.send(Typing(True))
        await next_event(events, lambda e: getattr(e, "typing", False) is True)
        assert len(node._messenger._typing_watched) <= 1
        await link.close()
