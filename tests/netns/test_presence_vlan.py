"""Presence on a virtual LAN: the peer link, not mDNS, says who is online.

Real daemons on three network namespaces; faults are a SIGKILL, a pulled cable and a
graceful quit.  Presence timeouts are short so that the suite stays fast; every wait is
bounded by `trio.fail_after`, which is also the timing requirement under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from p2pim.testing.daemon_process import (
    connected_to,
    disconnected_from,
    since,
    text_from,
)
from p2pim.testing.vlan import VirtualLan
from tests.support.netns import (
    MESH,
    PRESENCE_TIMEOUT,
    flags,
    launch_daemon,
    launch_mesh,
)

pytestmark = pytest.mark.netns

OPTIONS = flags(reconnect_max_delay=2)
RECONNECT = 15.0  # after the cable is back, both sides reconnect without help


async def test_killed_peer_is_offline_for_the_others_within_the_presence_timeout(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        (a, b, c), (fa, fb, fc) = await launch_mesh(nursery, vlan3.hosts, tmp_path, OPTIONS)
        gone_a, gone_b = since(a, disconnected_from(fc)), since(b, disconnected_from(fc))

        killed_at = trio.current_time()
        await c.kill()  # SIGKILL: no goodbye
        seen = {}
        with trio.fail_after(PRESENCE_TIMEOUT + 1):
            for name, daemon, gone in (("h0", a, gone_a), ("h1", b, gone_b)):
                event = await daemon.wait_event(gone)
                seen[name] = (trio.current_time() - killed_at, event["reason"])
        for name, (t, reason) in seen.items():
            print(f"{name}: killed peer offline after {t:.2f} s ({reason})")

        # The survivors still hold their own session: only the dead peer went offline.
        assert not [e for e in a.events if disconnected_from(fb)(e)]
        assert not [e for e in b.events if disconnected_from(fa)(e)]
        peers_of_a = {p["fingerprint"]: p for p in await a.call("peers")}
        assert peers_of_a[fb]["connected"]
        assert not peers_of_a[fc]["connected"]
        assert peers_of_a[fc]["status"] == "offline"

        assert await a.stop() == 0
        assert await b.stop() == 0


async def test_pulled_cable_goes_offline_then_reconnects_by_itself(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1 = vlan3.hosts[:2]
    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path, OPTIONS)
        lost_a, lost_b = since(a, disconnected_from(fb)), since(b, disconnected_from(fa))
        back_a, back_b = since(a, connected_to(fb)), since(b, connected_to(fa))

        pulled_at = trio.current_time()
        h1.link_down()
        with trio.fail_after(PRESENCE_TIMEOUT + 1):
            lost = [await a.wait_event(lost_a), await b.wait_event(lost_b)]
        t_offline = trio.current_time() - pulled_at
        print(f"cable pulled: both sides offline after {t_offline:.2f} s")
        for side, event in zip(("h0", "h1"), lost, strict=True):
            print(f"  {side} reason: {event['reason']}")
            # Nothing closed the TCP connection: only the silence can have told them.
            assert event["reason"].startswith("silent"), event

        plugged_at = trio.current_time()
        await trio.to_thread.run_sync(h1.link_up)  # polls until frames pass again
        with trio.fail_after(RECONNECT):
            await a.wait_event(back_a)
            await b.wait_event(back_b)
        t_back = trio.current_time() - plugged_at
        print(f"cable back: both sides reconnected after {t_back:.2f} s (no RPC nudging)")

        await a.call("send", peer=fb, text="back on the wire, says h0")
        await b.call("send", peer=fa, text="back on the wire, says h1")
        with trio.fail_after(5):
            await b.wait_event(text_from(fa, "back on the wire, says h0"))
            await a.wait_event(text_from(fb, "back on the wire, says h1"))

        assert await a.stop() == 0
        assert await b.stop() == 0


async def test_graceful_quit_is_seen_at_once_with_reason_quit(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        (a, b, c), (_, _, fc) = await launch_mesh(nursery, vlan3.hosts, tmp_path, OPTIONS)
        bye_a, bye_b = since(a, disconnected_from(fc)), since(b, disconnected_from(fc))

        exit_code: list[int] = []

        async def stop_c() -> None:
            exit_code.append(await c.stop())

        stopped_at = trio.current_time()
        nursery.start_soon(stop_c)  # closes its stdin: the daemon says bye to every peer
        with trio.fail_after(1):
            events = [await a.wait_event(bye_a), await b.wait_event(bye_b)]
        t = trio.current_time() - stopped_at
        print(f"graceful quit seen by both peers after {t:.3f} s")
        assert [e["reason"] for e in events] == ["quit", "quit"]

        with trio.fail_after(10):
            await c.closed.wait()
            await c.process.wait()
        assert await a.stop() == 0
        assert await b.stop() == 0
    assert exit_code == [0]


async def test_status_change_reaches_peers_and_late_joiners(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1, h2 = vlan3.hosts
    async with trio.open_nursery() as nursery:
        (a, b), (fa, _) = await launch_mesh(nursery, [h0, h1], tmp_path, OPTIONS)
        changed = since(
            b,
            lambda e: (
                e["type"] == "peer_status_changed"
                and e["fingerprint"] == fa
                and e["status"] == "busy"
                and e["status_text"] == "in a meeting"
            ),
        )

        answered = trio.Event()

        async def set_busy() -> None:
            await a.call("set_status", status="busy", text="in a meeting")
            answered.set()

        asked_at = trio.current_time()
        nursery.start_soon(set_busy)  # the answer also waits for the mDNS record update
        with trio.fail_after(1):
            await b.wait_event(changed)
        print(f"status change reached the peer after {trio.current_time() - asked_at:.3f} s")
        with trio.fail_after(5):
            await answered.wait()
        print(f"set_status answered after {trio.current_time() - asked_at:.3f} s")

        identity_a = await a.call("identity")
        assert (identity_a["status"], identity_a["status_text"]) == ("busy", "in a meeting")
        peers_of_b = {p["fingerprint"]: p for p in await b.call("peers")}
        assert peers_of_b[fa]["connected"]
        assert (peers_of_b[fa]["status"], peers_of_b[fa]["status_text"]) == (
            "busy",
            "in a meeting",
        )

        # A daemon started after the change learns it from the hello, not from an update.
        c, _ = await launch_daemon(nursery, h2, tmp_path / h2.name, options=OPTIONS)
        with trio.fail_after(MESH):
            hello = await c.wait_event(connected_to(fa))
        assert (hello["status"], hello["status_text"]) == ("busy", "in a meeting")
        assert not [e for e in c.events if e["type"] == "peer_status_changed"]

        for daemon in (a, b, c):
            assert await daemon.stop() == 0
