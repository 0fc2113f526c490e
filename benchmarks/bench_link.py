"""Peer-link throughput on loopback: p2pim's encrypted session vs raw trio+msgpack baselines.

All run in this process, side by side, over real TCP on 127.0.0.1, sending the same
messages: many small texts (messages/s) and 32 KiB texts (MB/s).  Two baselines: plain
trio+msgpack frames, and the same frames sealed with the AEAD of p2pim's Noise suite (a
`CipherState` per direction, one encryption and one decryption per message), which is
what any encrypted link pays at least.  Prints absolute numbers and p2pim's ratio to each.

`raw_cipher_round_trips` is the sealed request/response floor that `run_all` compares
p2pim's message round trip (bench_messages) with.

    python -m benchmarks.bench_link [--small N] [--large N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Awaitable, Callable

import msgpack
import trio

if __package__ in (None, ""):  # run as a script: import p2pim from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from p2pim.identity import Identity
from p2pim.net.link import PeerLink, perform_handshake
from p2pim.wire.framing import FrameDecoder, encode_frame
from p2pim.wire.messages import MESSAGE_ID_SIZE, PROTOCOL_VERSION, Hello, Text
from p2pim.wire.noise import PROTOCOL_NAME, CipherState

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


def link_cipher() -> str:
    """The AEAD of p2pim's Noise suite, e.g. "AESGCM" in Noise_XX_25519_AESGCM_SHA256."""
    return PROTOCOL_NAME.split("_")[3]


def sealed_pair(cipher: str | None = None) -> tuple[CipherState, CipherState]:
    """Both ends of one direction: the same key, each with its own nonce counter."""
    key = os.urandom(32)
    cipher = cipher or link_cipher()
    return CipherState(cipher, key), CipherState(cipher, key)


async def raw_cipher_endpoints(cipher: str | None = None) -> tuple[Sender, Receiver]:
    """The raw baseline plus one AEAD seal per message sent and one open per message
    received (empty associated data, as Noise transport messages have)."""
    client, server = await tcp_pair()
    decoder = FrameDecoder()
    seal, unseal = sealed_pair(cipher)

    async def send(message: Text) -> None:
        body = msgpack.packb(
            {"t": "text", "id": message.id, "sent_at": message.sent_at, "body": message.body}
        )
        await client.send_all(encode_frame(seal.encrypt_with_ad(b"", body)))

    async def receive() -> object:
        while (frame := decoder.next_frame()) is None:
            decoder.feed(await server.receive_some(65538))
        return msgpack.unpackb(unseal.decrypt_with_ad(b"", frame))

    return send, receive


async def raw_cipher_round_trips(count: int, cipher: str | None = None) -> list[float]:
    """Request/response over one TCP connection, each way sealed and opened with the link's
    AEAD: the floor an encrypted messenger pays for a message and its acknowledgement.
    Returns one sample (seconds) per round trip."""
    client, server = await tcp_pair()
    to_server, from_client = sealed_pair(cipher)
    to_client, from_server = sealed_pair(cipher)

    async def echo() -> None:
        decoder = FrameDecoder()
        while data := await server.receive_some(65538):
            decoder.feed(data)
            while (frame := decoder.next_frame()) is not None:
                msgpack.unpackb(from_client.decrypt_with_ad(b"", frame))
                ack = to_client.encrypt_with_ad(b"", msgpack.packb({"t": "ack"}))
                await server.send_all(encode_frame(ack))

    samples = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        decoder = FrameDecoder()
        for i in range(count):
            start = time.perf_counter()
            request = msgpack.packb({"t": "text", "body": f"m{i}"})
            await client.send_all(encode_frame(to_server.encrypt_with_ad(b"", request)))
            while (frame := decoder.next_frame()) is None:
                decoder.feed(await client.receive_some(65538))
            msgpack.unpackb(from_server.decrypt_with_ad(b"", frame))
            samples.append(time.perf_counter() - start)
        await client.aclose()
    return samples


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


def texts(n: int, size: int) -> list[Text]:
    return [
        Text(id=i.to_bytes(MESSAGE_ID_SIZE, "big"), sent_at=i, body="x" * size) for i in range(n)
    ]


async def run(small: int, large: int) -> dict[str, dict[str, float]]:
    """Rates per case ("small": messages/s, "large": MB/s) for "raw", "raw_aead" and
    "p2pim", measured one after the other in this process."""
    results: dict[str, dict[str, float]] = {}
    for case, messages, per_byte in (
        ("small", texts(small, 20), False),
        ("large", texts(large, 32 * 1024), True),
    ):
        amount = sum(len(m.body) for m in messages) / 1e6 if per_byte else len(messages)
        results[case] = {
            "raw": amount / await measure(await raw_endpoints(), messages),
            "raw_aead": amount / await measure(await raw_cipher_endpoints(), messages),
            "p2pim": amount / await measure(await p2pim_endpoints(), messages),
        }
    return results


async def main(small: int, large: int) -> None:
    results = await run(small, large)
    aead = f"+{link_cipher()}"
    print(f"{'case':<22}{'baseline':>12}{aead:>12}{'p2pim':>12}{'ratio':>8}{'ratio+':>8}")
    for case, name in (("small", "small (20 B) msgs/s"), ("large", "large (32 KiB) MB/s")):
        r = results[case]
        print(
            f"{name:<22}{r['raw']:>12,.0f}{r['raw_aead']:>12,.0f}{r['p2pim']:>12,.0f}"
            f"{r['p2pim'] / r['raw']:>8.2f}{r['p2pim'] / r['raw_aead']:>8.2f}"
        )
    print(f"ratio: p2pim / baseline; ratio+: p2pim / baseline sealed with {link_cipher()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=20_000)
    args = parser.parse_args()
    trio.run(main, args.small, args.large)
