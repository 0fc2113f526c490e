"""A connection flood before authentication cannot lock honest peers out.

Daemon A on h0; a flooder on h1 opens hundreds of TCP connections to A and never sends
a byte.  A must hold at most `max_pending_per_address` (8) of them per source address
and at most `max_pending_handshakes` (64) in all, close the rest at once, and still
accept a handshake from an honest peer on h2 without delay.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from p2pim.config import NodeConfig
from p2pim.testing.vlan import Host, VirtualLan
from tests.support.netns import (
    PeerScript,
    Report,
    launch_daemon,
)

pytestmark = pytest.mark.netns

COUNT = 300
MAX_PENDING = NodeConfig().max_pending_handshakes  # 64
MAX_PER_ADDRESS = NodeConfig().max_pending_per_address  # 8
FLOOD = 15.0  # the flooder attempts COUNT connects and lets the server's reaction settle


async def start_flood(
    nursery: trio.Nursery, host: Host, target: str, port: int, *sources: str
) -> PeerScript:
    """tests/peers/flooder.py: COUNT connects to target:port (from `sources`, if given)."""
    return await PeerScript.start(nursery, host, "flooder.py", target, port, COUNT, *sources)


async def finish_flood(flooder: PeerScript) -> Report:
    """Close its stdin: it lets the connections go, reports "done" and exits."""
    assert flooder.process.stdin is not None
    await flooder.process.stdin.aclose()
    with trio.fail_after(10):
        done = await flooder.wait("done")
        assert await flooder.process.wait() == 0
    return done


async def test_flood_from_one_address_is_capped_and_honest_peer_still_connects(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1, h2 = vlan3.hosts
    async with trio.open_nursery() as nursery:
        (a, id_a), (c, id_c) = [
            await launch_daemon(nursery, h, tmp_path / h.name, "--no-discovery", options=())
            for h in (h0, h2)
        ]

        flood_started = trio.current_time()
        flooder = await start_flood(nursery, h1, h0.address, id_a["port"])
        with trio.fail_after(FLOOD):
            flooding = await flooder.wait("flooding")
        print(f"flooder after {trio.current_time() - flood_started:.2f} s: {flooding}")
        stats = await a.call("stats")
        print(f"A's stats under the flood: {stats}")

        connecting_at = trio.current_time()
        with trio.fail_after(2):
            result = await c.call(
                "connect", host=h0.address, port=id_a["port"], fingerprint=id_a["fingerprint"]
            )
        t_connect = trio.current_time() - connecting_at
        print(f"honest peer connected during the flood in {t_connect:.3f} s")
        assert result == {"fingerprint": id_a["fingerprint"]}
        with trio.fail_after(5):
            await a.wait_event(
                lambda e: e["type"] == "peer_connected" and e["fingerprint"] == id_c["fingerprint"]
            )
        stats_after = await a.call("stats")

        done = await finish_flood(flooder)
        print(f"flooder at the end: {done}")
        assert await a.stop() == 0
        assert await c.stop() == 0

    # The flood is real: every connect completed and some are pending on A right now.
    assert flooding["opened"] == COUNT
    assert 1 <= stats["pending_handshakes_max_per_address"] <= MAX_PER_ADDRESS
    assert 1 <= stats["pending_handshakes"] <= MAX_PENDING
    # A closed everything beyond the per-address cap at once, and held the rest.
    assert flooding["refused_or_closed"] >= COUNT - MAX_PER_ADDRESS
    assert flooding["open"] == COUNT - flooding["refused_or_closed"]
    assert flooding["open"] == stats["pending_handshakes"]
    # The honest handshake is a session, not a pending slot.
    assert stats_after["sessions"] == 1
    assert stats_after["pending_handshakes"] <= MAX_PER_ADDRESS


async def test_flood_from_many_addresses_is_capped_in_total(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1, _ = vlan3.hosts
    # h1 gets ten more addresses, enough for 10 x 8 > 64 pending handshakes.
    first = vlan3.subnet.network_address + 100
    sources = [str(first + k) for k in range(10)]
    for source in sources:
        h1.run(
            ["ip", "addr", "add", f"{source}/{vlan3.subnet.prefixlen}", "dev", "eth0"], check=True
        )
    async with trio.open_nursery() as nursery:
        a, id_a = await launch_daemon(nursery, h0, tmp_path / h0.name, "--no-discovery", options=())
        flooder = await start_flood(nursery, h1, h0.address, id_a["port"], *sources)
        with trio.fail_after(FLOOD):
            flooding = await flooder.wait("flooding")
        print(f"flooder: {flooding}")
        stats = await a.call("stats")
        print(f"A's stats under the flood: {stats}")
        await finish_flood(flooder)
        assert await a.stop() == 0

    assert flooding["opened"] == COUNT
    assert stats["pending_handshakes"] == MAX_PENDING  # the global cap is what bites
    assert stats["pending_handshakes_max_per_address"] <= MAX_PER_ADDRESS
    assert flooding["open"] == MAX_PENDING
    assert flooding["refused_or_closed"] == COUNT - MAX_PENDING
