"""Shared helpers for tests that run real nodes on loopback TCP (no mDNS)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from p2pim import Identity, Node, NodeConfig, open_node
from p2pim.events import MessageReceived, NodeEvent, PeerConnected, RoomInvited, RoomMessage
from p2pim.net.link import PeerLink, perform_handshake
from p2pim.wire.messages import PROTOCOL_VERSION, Hello

EVENT_WAIT = 5.0  # seconds a test waits for an event a node on loopback owes it


def loopback_config(nick: str, **overrides: object) -> NodeConfig:
    config = NodeConfig(nick=nick, listen_host="127.0.0.1", discovery=False)
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


def loopback_node(
    nick: str, home: Path, identity: Identity | None = None, **config: object
) -> Node:
    """A real node on 127.0.0.1 (no mDNS) with its database and downloads under `home`."""
    home.mkdir(parents=True, exist_ok=True)
    settings = loopback_config(nick, download_dir=home / "downloads", **config)
    return Node(identity or Identity.generate(), settings, store_path=home / "p2pim.sqlite")


@asynccontextmanager
async def running(
    *people: str | tuple[str, Identity], home: Path | None = None, **config: object
) -> AsyncIterator[list[Node]]:
    """Started nodes, stopped on exit: a bare nick gets a fresh identity; stores are in
    memory, or `home`/<nick>.sqlite."""
    async with AsyncExitStack() as stack:
        nodes = []
        for person in people:
            nick, identity = (person, Identity.generate()) if isinstance(person, str) else person
            path = home / f"{nick}.sqlite" if home else None
            config_ = loopback_config(nick, **config)
            nodes.append(
                await stack.enter_async_context(open_node(identity, config_, store_path=path))
            )
        yield nodes


def connected(peer: str) -> Callable[[NodeEvent], bool]:
    return lambda e: isinstance(e, PeerConnected) and e.fingerprint == peer


async def meet(a: Node, b: Node) -> None:
    """Connect two nodes and wait until both have pinned each other (unsubscribing after:
    a subscription nobody reads would hold its node back once 1024 events wait in it)."""
    with a.subscribe() as a_events, b.subscribe() as b_events:
        await a.connect("127.0.0.1", b.port, b.fingerprint)
        await next_event(a_events, connected(b.fingerprint))
        await next_event(b_events, connected(a.fingerprint))


async def mesh(nodes: list[Node]) -> None:
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            await meet(a, b)


async def until(events: trio.MemoryReceiveChannel[NodeEvent], check: Callable[[], bool]) -> None:
    """Wait for `check()` to hold, re-checking after each event (subscribe before acting)."""
    with trio.fail_after(EVENT_WAIT):
        while not check():
            await events.receive()


def members(node: Node, room: str) -> tuple[str, ...] | None:
    found = next((r for r in node.rooms() if r.room == room), None)
    return found.members if found else None


async def form_room(creator: Node, others: list[Node], name: str = "planning") -> str:
    """`creator` makes a room, invites `others`, they join; returns once all of them see
    everyone as a member."""
    subs = {node: node.subscribe() for node in [creator, *others]}
    room = await creator.create_room(name)
    for node in others:
        await creator.invite_to_room(room, node.fingerprint)
        await next_event(subs[node], lambda e: isinstance(e, RoomInvited) and e.room == room)
        await node.join_room(room)
    everyone = tuple(sorted(n.fingerprint for n in [creator, *others]))
    for node, sub in subs.items():
        await until(sub, lambda node=node: members(node, room) == everyone)  # type: ignore[misc]
        sub.close()
    return room


def room_message(room: str, text: str | None = None) -> Callable[[NodeEvent], bool]:
    return lambda e: (
        isinstance(e, RoomMessage) and e.room == room and (text is None or e.text == text)
    )


def ping_from(peer: str, text: str) -> Callable[[NodeEvent], bool]:
    return lambda e: isinstance(e, MessageReceived) and e.sender == peer and e.text == text


async def next_event(
    events: trio.MemoryReceiveChannel[NodeEvent], predicate: Callable[[NodeEvent], bool]
) -> NodeEvent:
    """The next event matching `predicate`, within EVENT_WAIT seconds."""
    with trio.fail_after(EVENT_WAIT):
        return await first_event(events, predicate)


async def first_event(
    events: trio.MemoryReceiveChannel[NodeEvent], predicate: Callable[[NodeEvent], bool]
) -> NodeEvent:
    """The next event matching `predicate`, however long it takes: the caller bounds it."""
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


async def read_until_closed(link: PeerLink) -> None:
    """Read and drop whatever `link` receives until the node closes it (`LinkClosed`)."""
    while True:
        await link.receive()
