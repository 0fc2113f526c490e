"""Reaching peers that mDNS cannot see: two subnets joined by a router.

h0 and h1 share subnet 0 and find each other by multicast; h2 is alone on subnet 1,
where no multicast from subnet 0 arrives.  A manual peer on h0, peer exchange, remembered
addresses and the reachability report must do the rest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from p2pim.testing.daemon_process import (
    DaemonProcess,
    connected_to,
    daemon_argv,
    disconnected_from,
    discovered,
    since,
    start_daemon,
)
from p2pim.testing.vlan import Host, RoutedLans
from tests.support.netns import (
    STARTUP,
    flags,
)

pytestmark = pytest.mark.netns

OPTIONS = flags(reconnect_max_delay=2)
CONNECT = 15.0  # mDNS discovery, a manual dial, or a peer exchange round, then a handshake
UNUSED_PORT = 9  # nothing listens on h2 while test 3 runs: any port is refused


def argv_for(host: Host, profile: Path, port: int = 0) -> list[str]:
    """A daemon on `host` with its profile in `profile`, listening on `port` (0: any)."""
    listen = f"{host.address}:{port}"
    return host.command(daemon_argv(profile, host.name, host.address, *OPTIONS, listen=listen))


async def launch_all(
    nursery: trio.Nursery, argvs: list[list[str]]
) -> tuple[list[DaemonProcess], list[dict[str, object]]]:
    """Start every daemon at once (each takes a second or two to advertise), then ask each
    who it is."""
    daemons = [await start_daemon(nursery, argv) for argv in argvs]
    with trio.fail_after(STARTUP):
        identities = [await daemon.call("identity") for daemon in daemons]
    return daemons, identities


class Mesh:
    """Daemons on h0, h1, h2 of routed_lans, all three connected pairwise."""

    def __init__(self, daemons: list[DaemonProcess], ids: list[dict[str, object]]) -> None:
        self.daemons = daemons
        self.fps = [str(i["fingerprint"]) for i in ids]
        self.ports = [int(str(i["port"])) for i in ids]


async def build_mesh(nursery: trio.Nursery, lans: RoutedLans, tmp_path: Path) -> Mesh:
    """Acceptance (1): mDNS on subnet 0, one manual peer on h0 towards subnet 1, and
    peer exchange for the rest; asserts each step on the way."""
    h0, h1, h2 = lans.hosts
    started_at = trio.current_time()
    daemons, ids = await launch_all(
        nursery,
        [argv_for(h, tmp_path / h.name) for h in (h2, h0, h1)],  # h2 first
    )
    mesh = Mesh([daemons[1], daemons[2], daemons[0]], [ids[1], ids[2], ids[0]])
    (d0, d1, d2), (f0, f1, f2) = mesh.daemons, mesh.fps
    assert len(set(mesh.fps)) == 3

    with trio.fail_after(CONNECT):
        await d0.wait_event(discovered(f1))
        await d1.wait_event(discovered(f0))
        await d0.wait_event(connected_to(f1))
        await d1.wait_event(connected_to(f0))
    print(f"h0 and h1 connected via mDNS {trio.current_time() - started_at:.2f} s after launch")
    # h2 has been advertising since before h0 started: multicast does not cross the router.
    assert not [e for e in d0.events if discovered(f2)(e)]
    assert not [e for e in d2.events if e["type"] == "peer_discovered"]

    added_at = trio.current_time()
    assert await d0.call("add_peer", host=h2.address, port=mesh.ports[2]) is None
    with trio.fail_after(CONNECT):
        await d0.wait_event(connected_to(f2))
        await d2.wait_event(connected_to(f0))
    print(f"h0 and h2 connected {trio.current_time() - added_at:.2f} s after add_peer on h0")

    # Nobody told h1 or h2 about each other but h0's peer exchange.
    with trio.fail_after(CONNECT):
        met = await d1.wait_event(connected_to(f2))
        await d2.wait_event(connected_to(f1))
    print(f"h1 and h2 connected {trio.current_time() - added_at:.2f} s after add_peer on h0")
    assert met["address"] == h2.address
    assert not [e for e in d1.events if discovered(f2)(e)]
    assert not [e for e in d2.events if discovered(f1)(e)]
    return mesh


async def test_manual_peer_and_peer_exchange_join_two_subnets(
    routed_lans: RoutedLans, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        mesh = await build_mesh(nursery, routed_lans, tmp_path)
        d0, d1, d2 = mesh.daemons
        f0, f1, f2 = mesh.fps
        for daemon, others in ((d0, {f1, f2}), (d1, {f0, f2}), (d2, {f0, f1})):
            connected = {p["fingerprint"] for p in await daemon.call("peers") if p["connected"]}
            assert connected == others
        for daemon in mesh.daemons:
            assert await daemon.stop() == 0


async def test_remembered_and_manual_addresses_survive_restarts(
    routed_lans: RoutedLans, tmp_path: Path
) -> None:
    h0, _, h2 = routed_lans.hosts
    async with trio.open_nursery() as nursery:
        mesh = await build_mesh(nursery, routed_lans, tmp_path)
        d0, d1, d2 = mesh.daemons
        f0, _, f2 = mesh.fps
        port2 = mesh.ports[2]

        # h2 restarts on its old port with its old profile: h0 finds it there again.
        gone, back = since(d0, disconnected_from(f2)), since(d0, connected_to(f2))
        assert await d2.stop() == 0
        with trio.fail_after(1):
            assert (await d0.wait_event(gone))["reason"] == "quit"
        restarted_at = trio.current_time()
        (d2,), (id2,) = await launch_all(nursery, [argv_for(h2, tmp_path / "h2", port2)])
        assert (id2["fingerprint"], id2["port"]) == (f2, port2)
        with trio.fail_after(CONNECT):
            await d0.wait_event(back)
            await d2.wait_event(connected_to(f0))
        print(
            f"h2 restarted: h0 and h2 reconnected after {trio.current_time() - restarted_at:.2f} s"
        )

        # Now h0 restarts, on a new port, without any add_peer.  h1 is stopped first and
        # h2's memory of h0 points at the old port, so only h0 itself can re-establish the
        # link: by dialling the addresses kept in its profile's database.
        assert await d1.stop() == 0
        assert await d0.stop() == 0
        new_port0 = mesh.ports[0] + 1 if mesh.ports[0] < 65535 else mesh.ports[0] - 1
        back2 = since(d2, connected_to(f0))
        restarted_at = trio.current_time()
        (d0,), (id0,) = await launch_all(nursery, [argv_for(h0, tmp_path / "h0", new_port0)])
        assert (id0["fingerprint"], id0["port"]) == (f0, new_port0)
        with trio.fail_after(CONNECT):
            await d0.wait_event(connected_to(f2))
            await d2.wait_event(back2)
        print(
            f"h0 restarted: h0 and h2 reconnected after {trio.current_time() - restarted_at:.2f} s"
        )
        # h2's address came back from the database (manual and remembered), not an RPC.
        targets = await d0.call("reachability")
        assert any(f"{h2.address}:{port2}" in t["addresses"] for t in targets), targets

        assert await d0.stop() == 0
        assert await d2.stop() == 0


async def test_reachability_reports_a_refused_manual_peer(
    routed_lans: RoutedLans, tmp_path: Path
) -> None:
    h0, _, h2 = routed_lans.hosts
    target = f"{h2.address}:{UNUSED_PORT}"
    async with trio.open_nursery() as nursery:
        (d0,), _ = await launch_all(nursery, [argv_for(h0, tmp_path / "h0")])
        asked_at = trio.current_time()
        await d0.call("add_peer", host=h2.address, port=UNUSED_PORT)
        with trio.fail_after(5):
            failed = await d0.wait_event(
                lambda e: e["type"] == "dial_failed" and e["address"] == target
            )
        print(f"dial_failed after {trio.current_time() - asked_at:.2f} s: {failed}")
        report = [t for t in await d0.call("reachability") if target in t["addresses"]]
        print(f"reachability: {report}")
        assert await d0.stop() == 0

    # Checked once the daemon is down: the bug's assertions come last, so every other
    # check still has to pass for the test to fail "as expected".
    assert failed["fingerprint"] is None  # nobody answered: no identity is known
    assert len(report) == 1
    (entry,) = report
    assert entry["last_error_address"] == target
    assert not entry["connected"]
    assert not entry["they_reached_us"]
    assert failed["reason"] == "refused"
    assert entry["last_error"] == "refused"
    assert "refused" in entry["diagnosis"]
