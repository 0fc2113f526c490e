"""Durable messaging on loopback: throughput and round trip of `Node.send_text` (disk-backed
stores, fsync per commit) against a raw trio+msgpack ping-pong baseline in the same run.

    python benchmarks/bench_messages.py [--count N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import msgpack
import trio

from p2pim import Identity, NodeConfig, open_node
from p2pim.events import MessageDelivered, MessageReceived, PeerConnected
from p2pim.wire.framing import FrameDecoder, encode_frame


def config(nick: str) -> NodeConfig:
    return NodeConfig(nick=nick, listen_host="127.0.0.1", discovery=False)


async def raw_round_trips(count: int) -> list[float]:
    """Request/response over one TCP connection: the floor any messenger pays."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    client = await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])
    server = await listeners[0].accept()

    async def echo() -> None:
        decoder = FrameDecoder()
        while data := await server.receive_some(65538):
            decoder.feed(data)
            while (frame := decoder.next_frame()) is not None:
                msgpack.unpackb(frame)
                await server.send_all(encode_frame(msgpack.packb({"t": "ack"})))

    samples = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        decoder = FrameDecoder()
        for i in range(count):
            start = time.perf_counter()
            await client.send_all(encode_frame(msgpack.packb({"t": "text", "body": f"m{i}"})))
            while decoder.next_frame() is None:
                decoder.feed(await client.receive_some(65538))
            samples.append(time.perf_counter() - start)
        await client.aclose()
    return samples


async def p2pim_run(count: int, burst: int, workdir: Path) -> tuple[list[float], float]:
    """Round trips (send_text -> delivery receipt) one at a time, then a pipelined burst."""
    a_id, b_id = Identity.generate(), Identity.generate()
    async with (
        open_node(a_id, config("a"), store_path=workdir / "a.db") as a,
        open_node(b_id, config("b"), store_path=workdir / "b.db") as b,
    ):
        a_events, b_events = a.subscribe(), b.subscribe()
        await a.connect("127.0.0.1", b.port, b.fingerprint)
        for events in (a_events, b_events):
            async for event in events:
                if isinstance(event, PeerConnected):
                    break

        async def delivered() -> None:
            async for event in a_events:
                if isinstance(event, MessageDelivered):
                    return

        samples = []
        for i in range(count):
            start = time.perf_counter()
            await a.send_text(b.fingerprint, f"m{i}")
            await delivered()
            samples.append(time.perf_counter() - start)

        async def arrived() -> None:
            received = 0
            async for event in b_events:
                if isinstance(event, MessageReceived) and event.text.startswith("burst"):
                    received += 1
                    if received == burst:
                        return

        async def drain(events: trio.MemoryReceiveChannel[object]) -> None:
            async for _ in events:  # a subscriber that stops reading holds its node back
                pass

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:  # pipelined: many sends in flight
            nursery.start_soon(drain, a_events)
            for i in range(burst):
                nursery.start_soon(a.send_text, b.fingerprint, f"burst {i}")
            await arrived()
            elapsed = time.perf_counter() - start
            nursery.cancel_scope.cancel()
        return samples, burst / elapsed


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000


async def run(
    count: int, burst: int, store_dir: str | None = None
) -> tuple[list[float], list[float], float]:
    """For callers (benchmarks/run_all.py): what `main` measures, as numbers: the raw round
    trips and p2pim's (seconds each), and p2pim's pipelined rate (messages/s).  The stores
    go in a temporary directory under `store_dir` (default: TMPDIR's)."""
    raw = await raw_round_trips(count)
    with tempfile.TemporaryDirectory(dir=store_dir) as tmp:
        ours, rate = await p2pim_run(count, burst, Path(tmp))
    return raw, ours, rate


async def main(count: int, burst: int) -> None:
    raw = await raw_round_trips(count)
    with tempfile.TemporaryDirectory() as tmp:
        ours, rate = await p2pim_run(count, burst, Path(tmp))
    print(f"{'round trip (ms)':<28}{'baseline':>10}{'p2pim':>10}{'ratio':>8}")
    for q in (50, 99):
        print(
            f"  p{q:<25}{pct(raw, q):>10.3f}{pct(ours, q):>10.3f}{pct(ours, q) / pct(raw, q):>8.1f}"
        )
    print(f"{'pipelined durable msgs/s':<28}{'':>10}{rate:>10,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--burst", type=int, default=20000)
    args = parser.parse_args()
    trio.run(main, args.count, args.burst)
