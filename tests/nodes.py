"""Shared helpers for tests that run real nodes on loopback TCP (no mDNS)."""

from __future__ import annotations

from collections.abc import Callable

import trio

from p2pim import Identity, NodeConfig
from p2pim.events import NodeEvent
from p2pim.net.link import PeerLink, perform_handshake
from p2pim.wire.messages import PROTOCOL_VERSION, Hello


def loopback_config(nick: str, **overrides: object) -> NodeConfig:
    config = NodeConfig(nick=nick, listen_host="127.0.0.1", discovery=False)
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


async def next_event(
    events: trio.MemoryReceiveChannel[NodeEvent],
    predicate: Callable[[NodeEvent], bool],
    timeout: float = 5.0,
) -> NodeEvent:
    """The next event matching `predicate`, within `timeout` seconds."""
    with trio.fail_after(timeout):
        async for event in events:
            if predicate(event):
                return event
    raise AssertionError("event stream ended")


async def raw_session(
    port: int, identity: Identity, nick: str = "raw", local_address: str | None = None
) -> PeerLink:
    """A bare authenticated link to the node at 127.0.0.1:`port`, driven by the test."""
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=local_address)
    with trio.fail_after(5):
        return await perform_handshake(
            stream,
            initiator=True,
            static_private=identity.private_key,
            hello=Hello(PROTOCOL_VERSION, nick),
            address="127.0.0.1",
        )
