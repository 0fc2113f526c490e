"""Defect 11 of issue 14: a machine whose only interface is loopback (offline, flight mode,
a login before the Wi-Fi is up) runs p2pim, says there is no network, and finds its peers
as soon as an interface comes up, without a restart.

The namespace test starts a real `p2pim daemon` in a namespace with only `lo` up, checks it
answers and reports "no network" (`stats`, `identity`, `p2pim doctor`, the start event),
then cables an interface into the LAN's switch and waits for it to meet a daemon on
another host.  The loopback tests run a node whose chosen interface holds no address (the
same state, and no multicast on any real interface) in the node API and in the UI.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ifaddr
import pytest
import trio
from textual.pilot import Pilot

from p2pim import Identity, Node, open_node
from p2pim.events import MessageReceived, NetworkChanged, PeerConnected
from p2pim.testing.daemon_process import connected_to, daemon_argv, start_daemon, text_from
from p2pim.testing.vlan import (
    MULTICAST,
    Host,
    VirtualLan,
    _ip,
    _Switch,
)
from p2pim.ui.app import P2pimApp
from tests.support.netns import (
    FLAGS,
    STARTUP,
    require_netns,
)
from tests.support.nodes import loopback_config, loopback_node, next_event
from tests.support.tui_harness import UiThread

MEET = 30.0  # the address is noticed (polled every 2 s), mDNS runs, the peers connect
NOWHERE = "192.0.2.1"  # TEST-NET-1: no interface here holds it


class LanWithLateHost(VirtualLan):
    """A VirtualLan plus one machine ("late") that has only loopback until `cable()`."""

    def __init__(self, n_hosts: int) -> None:
        super().__init__(n_hosts)
        self.late_netns = f"{self._base}-late"

    def _build(self) -> None:
        super()._build()
        self._new_machine(self.late_netns)  # lo up, nothing else

    def late_command(self, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.late_netns, *cmd]

    def cable(self) -> Host:
        """Plug the late machine into the switch: eth0 appears, with an address."""
        host = Host(
            name="late",
            netns=self.late_netns,
            address=str(self.subnet.network_address + 200),
            interface="eth0",
            bridge_netns=self.bridge_netns,
            bridge_port="plate",
        )
        _Switch(self.bridge_netns, self.subnet).plug(
            host.netns, host.interface, host.bridge_port, host.address
        )
        _ip("-n", host.netns, "route", "add", MULTICAST, "dev", host.interface)
        host._wait_ready()
        return host


@pytest.fixture
def late_lan() -> Iterator[LanWithLateHost]:
    require_netns()
    with LanWithLateHost(1) as lan:
        yield lan


def doctor(lan: LanWithLateHost, profile: Path) -> str:
    """`p2pim doctor` run in the late machine, against its running daemon."""
    argv = [sys.executable, "-m", "p2pim", "--profile", str(profile), "doctor"]
    done = subprocess.run(lan.late_command(argv), capture_output=True, text=True, timeout=STARTUP)
    return done.stdout + done.stderr


@pytest.mark.netns
async def test_a_daemon_started_offline_runs_and_meets_its_peer_once_cabled(
    late_lan: LanWithLateHost, tmp_path: Path
) -> None:
    (h0,) = late_lan.hosts
    late_profile = tmp_path / "late"
    # No --interface: every real interface, and this machine has none yet.  It listens on
    # 0.0.0.0 because it has no address to name at start: this runs only inside the late
    # host, a namespace this test made (late_command), so the wildcard reaches nothing else.
    late_argv = [
        sys.executable, "-m", "p2pim", "--profile", str(late_profile), "daemon", "--stdio",
        "--nick", "late", "--listen", "0.0.0.0:0", *FLAGS,
    ]  # fmt: skip
    async with trio.open_nursery() as nursery:
        peer = await start_daemon(
            nursery, h0.command(daemon_argv(tmp_path / "h0", "h0", h0.address, *FLAGS))
        )
        late = await start_daemon(nursery, late_lan.late_command(late_argv))
        with trio.fail_after(STARTUP):
            fp_peer = (await peer.call("identity"))["fingerprint"]
            me = await late.call("identity")  # today: the daemon already exited
        fp_late = me["fingerprint"]
        assert me["interfaces"] == []
        assert (await late.call("stats"))["no_network"] == 1
        assert [e for e in late.events if e["type"] == "network_changed"] == [
            {"type": "network_changed", "addresses": []}
        ]
        assert "no network" in await trio.to_thread.run_sync(doctor, late_lan, late_profile)
        # History and search work offline.
        assert await late.call("search", query="anything") == []

        host = await trio.to_thread.run_sync(late_lan.cable)
        with trio.fail_after(MEET):
            await late.wait_event(
                lambda e: e["type"] == "network_changed" and e["addresses"] == [host.address]
            )
            await late.wait_event(connected_to(fp_peer))
            await peer.wait_event(connected_to(fp_late))
        assert late.process.returncode is None  # the same process all along: no restart
        assert (await late.call("stats"))["no_network"] == 0
        [interface] = (await late.call("identity"))["interfaces"]
        assert interface["address"] == host.address
        assert interface["name"] == "eth0"
        assert "no network" not in await trio.to_thread.run_sync(doctor, late_lan, late_profile)
        await late.call("send", peer=fp_peer, text="online at last")
        with trio.fail_after(MEET):
            await peer.wait_event(text_from(fp_late, "online at last"))
        for daemon in (late, peer):
            assert await daemon.stop() == 0


def _held_somewhere(address: str) -> bool:
    return any(str(ip.ip) == address for a in ifaddr.get_adapters() for ip in a.ips)


async def test_a_node_without_network_runs_keeps_its_outbox_and_talks_over_loopback(
    tmp_path: Path,
) -> None:
    """Discovery on, but the only chosen interface has no address: the node starts and
    says so; history, search and the outbox work, and a peer reached by address (here on
    127.0.0.1) gets what was queued.  Nothing is multicast: mDNS has nowhere to run."""
    if _held_somewhere(NOWHERE):
        pytest.skip(f"{NOWHERE} is an address of this machine")
    config = loopback_config("offline", discovery=True, interfaces=[NOWHERE])
    node = Node(Identity.generate(), config, store_path=tmp_path / "a.db")
    events = node.subscribe()
    friend = Identity.generate()
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)  # today: ValueError, mDNS needs an address
        assert await next_event(events, lambda e: True) == NetworkChanged(())
        assert node.stats()["no_network"] == 1
        assert node.interfaces() == []
        async with open_node(friend, loopback_config("friend")) as b:
            await node.connect("127.0.0.1", b.port, b.fingerprint)
            await next_event(events, lambda e: isinstance(e, PeerConnected))
        queued = await node.send_text(friend.fingerprint, "queued while offline")
        assert [m.id.hex() for m in await node.history(friend.fingerprint)] == [queued]
        assert [m.body for m in await node.search("queued")] == ["queued while offline"]
        async with open_node(friend, loopback_config("friend")) as b:
            b_events = b.subscribe()
            await node.connect("127.0.0.1", b.port, b.fingerprint)
            got = await next_event(b_events, lambda e: isinstance(e, MessageReceived))
            assert isinstance(got, MessageReceived)
            assert (got.sender, got.message_id, got.text) == (
                node.fingerprint,
                queued,
                "queued while offline",
            )
        await node.stop()


def test_the_status_bar_says_no_network(tmp_path: Path) -> None:
    if _held_somewhere(NOWHERE):
        pytest.skip(f"{NOWHERE} is an address of this machine")
    node = loopback_node("solo", tmp_path, discovery=True, interfaces=[NOWHERE])
    ui = UiThread(P2pimApp(node))
    try:
        ui.wait_until(lambda app: "no network" in str(app.query_one("#status").render()))
        status = ui.do(_status_line)
        assert "solo" in status  # the rest of the bar is still there
    finally:
        ui.close()


async def _status_line(pilot: Pilot[None]) -> str:
    return str(pilot.app.query_one("#status").render())
