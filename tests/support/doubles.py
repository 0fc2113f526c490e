"""Cheap doubles for the layers above the wire: a real link pair over memory streams, a
link that only records, and a `:memory:` store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

from p2pim import Identity
from p2pim.identity import fingerprint
from p2pim.net.link import LinkClosed, PeerLink, perform_handshake
from p2pim.storage import Store
from p2pim.wire.messages import PROTOCOL_VERSION, Hello, Message

ME, PEER = Identity.generate(), Identity.generate()


async def link_pair(ours: Identity = ME, theirs: Identity = PEER) -> tuple[PeerLink, PeerLink]:
    """Two ends of one authenticated session over `memory_stream_pair`: (ours, the peer's)."""
    left, right = trio.testing.memory_stream_pair()
    links: dict[str, PeerLink] = {}

    async def shake(name: str, stream: trio.abc.Stream, me: Identity, initiator: bool) -> None:
        links[name] = await perform_handshake(
            stream,
            initiator=initiator,
            static_private=me.private_key,
            hello=Hello(PROTOCOL_VERSION, name),
            address="memory",
        )

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(shake, "ours", left, ours, True)
            nursery.start_soon(shake, "theirs", right, theirs, False)
    return links["ours"], links["theirs"]


async def receive(link: PeerLink, count: int) -> list[Message]:
    with trio.fail_after(5):
        return [await link.receive() for _ in range(count)]


class RecordingLink:
    """Stands in for a `PeerLink` where only what is sent matters."""

    def __init__(self, peer: Identity = PEER) -> None:
        self.fingerprint = fingerprint(peer.public_key)
        self.remote_nick = "peer"
        self.closed = False
        self.sent: list[Message] = []
        self._sent = trio.Event()

    async def send(self, message: Message) -> None:
        await self.send_all((message,))

    async def send_all(self, messages: tuple[Message, ...] | list[Message]) -> None:
        if self.closed:
            raise LinkClosed("link is closed")
        await trio.lowlevel.checkpoint()
        self.sent.extend(messages)
        self._sent.set()
        self._sent = trio.Event()

    async def until_sent(self, count: int) -> list[Message]:
        with trio.fail_after(5):
            while len(self.sent) < count:
                await self._sent.wait()
        return self.sent

    async def close(self) -> None:
        self.closed = True


@asynccontextmanager
async def memory_store() -> AsyncIterator[Store]:
    async with Store.open(":memory:") as store:
        yield store
