"""End to end on a virtual LAN: real daemons, real mDNS multicast, real TCP, real Noise."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from p2pim.testing.daemon_process import (
    DaemonProcess,
    connected_to,
    daemon_argv,
    discovered,
    start_daemon,
    text_from,
)
from p2pim.testing.vlan import VirtualLan

pytestmark = pytest.mark.netns

DISCOVERY_DEADLINE = 3.0


async def test_three_hosts_discover_each_other_and_exchange_encrypted_text(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        daemons: list[DaemonProcess] = []
        for host in vlan3.hosts:
            argv = daemon_argv(tmp_path / host.name, host.name, host.address)
            daemons.append(await start_daemon(nursery, host.command(argv)))
        started_at = trio.current_time()  # the last process was just launched
        with trio.fail_after(20):
            ids = [await d.call("identity") for d in daemons]
        fps = [i["fingerprint"] for i in ids]
        assert len(set(fps)) == 3

        # Every host hears of the two others through mDNS within 3 s of starting, then
        # holds an authenticated session with each of them.
        with trio.fail_at(started_at + DISCOVERY_DEADLINE):
            for i, daemon in enumerate(daemons):
                for j, fp in enumerate(fps):
                    if i != j:
                        await daemon.wait_event(discovered(fp))
        discovery_time = trio.current_time() - started_at
        with trio.fail_after(10):
            for i, daemon in enumerate(daemons):
                for j, fp in enumerate(fps):
                    if i != j:
                        await daemon.wait_event(connected_to(fp))
        a, b, c = daemons
        fa, fb, fc = fps

        await a.call("send", peer=fb, text="hello B, from A")
        await b.call("send", peer=fa, text="hello A, from B")
        await c.call("send", peer=fa, text="hi A, C here")
        with trio.fail_after(10):
            await b.wait_event(text_from(fa, "hello B, from A"))
            await a.wait_event(text_from(fb, "hello A, from B"))
            await a.wait_event(text_from(fc, "hi A, C here"))
        # Sender identity is the authenticated key, and nobody got a message not meant for it.
        assert not [e for e in c.events if e["type"] == "message_received"]
        peers_of_a = {p["fingerprint"]: p for p in await a.call("peers")}
        assert peers_of_a[fb]["nick"] == "h1"
        assert peers_of_a[fb]["connected"]
        assert peers_of_a[fc]["addresses"] == [vlan3.hosts[2].address]

        for daemon in daemons:
            assert await daemon.stop() == 0
    print(f"all peers discovered {discovery_time:.2f} s after the last daemon was launched")


async def test_a_multi_homed_peer_is_one_peer(vlan3: VirtualLan, tmp_path: Path) -> None:
    h0, h1, _ = vlan3.hosts
    second = h1.address.rsplit(".", 1)[0] + ".110"
    h1.run(["ip", "addr", "add", f"{second}/24", "dev", h1.interface], check=True)
    # 0.0.0.0 inside h1's own namespace: both of h1's addresses, nothing else.
    argv = daemon_argv(
        tmp_path / "h1", "h1", h1.address, listen="0.0.0.0:0", interfaces=[h1.address, second]
    )
    async with trio.open_nursery() as nursery:
        a = await start_daemon(nursery, h0.command(daemon_argv(tmp_path / "h0", "h0", h0.address)))
        b = await start_daemon(nursery, h1.command(argv))
        fb = (await b.call("identity"))["fingerprint"]
        with trio.fail_after(10):
            await a.wait_event(
                lambda e: e["type"] == "peer_discovered" and len(e["addresses"]) == 2
            )
            await a.wait_event(connected_to(fb))
        [peer] = await a.call("peers")
        assert peer["fingerprint"] == fb
        assert sorted(peer["addresses"]) == sorted([h1.address, second])
        assert (await a.call("stats"))["sessions"] == 1
        assert len([e for e in a.events if e["type"] == "peer_connected"]) == 1
        for daemon in (a, b):
            assert await daemon.stop() == 0
