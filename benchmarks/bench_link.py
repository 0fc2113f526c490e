"""Peer-link throughput on loopback: p2pim's encrypted session vs a raw trio+msgpack baseline.

Both run in this process, side by side, over real TCP on 127.0.0.1, sending the same
messages: many small texts (messages/s) and 32 KiB texts (MB/s).  Prints absolute
numbers and p2pim's ratio to the baseline.

    python benchmarks/bench_link.py [--small N] [--large N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import msgpack
import trio

from p2pim.identity import Identity
from p2pim.net.link import PeerLink, perform_handshake
from p2pim.wire.framing import FrameDecoder, encode_frame
from p2pim.wire.messages import MESSAGE_ID_SIZE, PROTOCOL_VERSION, Hello, Text

Sender = Callable[[Text], Awaitable[None]]
Receiver = Callable[[], Awaitable[object]]


async def tcp_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    await listeners[0].aclose()
    return client, server


async def raw_endpoints() -> tuple[Sender, Receiver]:
    client, server = await tcp_pair()
    decoder = FrameDecoder()

    async def send(message: Text) -> None:
        body = msgpack.packb(
            {"t": "text", "id": message.id, "sent_at": message.sent_at, "body": message.body}
        )
        await client.send_all(encode_frame(body))

    async def receive() -> object:
        while (frame := decoder.next_frame()) is None:
            decoder.feed(await server.receive_some(65538))
        return msgpack.unpackb(frame)

    return send, receive


async def p2pim_endpoints() -> tuple[Sender, Receiver]:
    client, server = await tcp_pair()
    a, b = Identity.generate(), Identity.generate()
    links: dict[str, PeerLink] = {}

    async def handshake(
        name: str, stream: trio.SocketStream, me: Identity, initiator: bool
    ) -> None:
        links[name] = await perform_handshake(
            stream,
            initiator=initiator,
            static_private=me.private_key,
            hello=Hello(PROTOCOL_VERSION, name),
            address="127.0.0.1",
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(handshake, "a", client, a, True)
        nursery.start_soon(handshake, "b", server, b, False)
    return links["a"].send, links["b"].receive


async def measure(endpoints: tuple[Sender, Receiver], messages: list[Text]) -> float:
    send, receive = endpoints

    async def sender() -> None:
        for message in messages:
            await send(message)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        for _ in messages:
            await receive()
    return time.perf_counter() - start


async def main(small: int, large: int) -> None:
    def texts(n: int, size: int) -> list[Text]:
        return [
            Text(id=i.to_bytes(MESSAGE_ID_SIZE, "big"), sent_at=i, body="x" * size)
            for i in range(n)
        ]

    cases = [
        ("small (20 B) msgs/s", texts(small, 20), False),
        ("large (32 KiB) MB/s", texts(large, 32 * 1024), True),
    ]
    print(f"{'case':<22}{'baseline':>12}{'p2pim':>12}{'ratio':>8}")
    for name, messages, per_byte in cases:
        raw = await measure(await raw_endpoints(), messages)
        ours = await measure(await p2pim_endpoints(), messages)
        amount = sum(len(m.body) for m in messages) / 1e6 if per_byte else len(messages)
        print(f"{name:<22}{amount / raw:>12,.0f}{amount / ours:>12,.0f}{raw / ours:>8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=20_000)
    args = parser.parse_args()
    trio.run(main, args.small, args.large)
