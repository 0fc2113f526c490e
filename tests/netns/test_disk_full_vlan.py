"""Defect 13 of issue 14: a full disk must not kill the node.

The receiver's profile lives on a small tmpfs that a filler file fills up.  Real daemons
on a virtual LAN: the sender keeps sending; the receiver stays up, acknowledges nothing it
could not store, says "disk full" (event, `stats`, `p2pim doctor`), and once the tmpfs
grows (`mount -o remount,size=`) every message arrives, exactly once, with no restart and
no help.  The second test starts the receiver on a disk that is already full.  A Pilot
test shows "disk full" in the UI's status bar and clears it when space returns.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
from textual.pilot import Pilot

from p2pim import Identity, open_node
from p2pim.events import DiskFullChanged, OfferReceived, PeerDisconnected
from p2pim.testing.daemon_process import (
    DaemonProcess,
    Predicate,
    connected_to,
)
from p2pim.testing.vlan import Host, VirtualLan
from p2pim.ui.app import P2pimApp
from tests.support.netns import (
    MESH,
    STARTUP,
    duplicates,
    full_history,
    ids_of,
    launch,
    wait_ids,
)
from tests.support.nodes import first_event, loopback_config, loopback_node, meet
from tests.support.tui_harness import UiThread

SETTLE = 30.0  # space is back: the retries (at most 5 s apart) store everything
ROUND = 20  # messages sent between looks at whether the disk is full yet
MAX_ROUNDS = 50
BODY = "x" * 1500  # each message grows the receiver's database by a page or so


def fill(disk: Path) -> None:
    """Take every free block of `disk` with a filler file."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 16, 1 << 12):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    assert _free(disk) == 0


def grow(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)


def _free(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def doctor(host: Host, profile: Path) -> str:
    argv = [sys.executable, "-m", "p2pim", "--profile", str(profile), "doctor"]
    done = host.run(argv, capture_output=True, text=True, timeout=STARTUP)
    return str(done.stdout) + str(done.stderr)


def disk_full_is(full: bool) -> Predicate:
    return lambda e: e["type"] == "disk_full_changed" and e["full"] is full


async def send_until_full(
    sender: DaemonProcess, receiver: DaemonProcess, to: str, sent: list[str]
) -> None:
    """Send rounds of messages until the receiver reports a full disk; each round
    either fills it or is delivered entirely (so no round is left to chance)."""
    for n in range(MAX_ROUNDS):
        ids = [
            (await sender.call("send", peer=to, text=f"{n}.{i} {BODY}"))["id"] for i in range(ROUND)
        ]
        sent += ids
        waiting = set(ids) - set(ids_of(sender, "message_delivered", to))

        def full_or_delivered(event: dict[str, object], waiting: set[str] = waiting) -> bool:
            if event["type"] == "message_delivered" and event["peer"] == to:
                waiting.discard(str(event["message_id"]))
            return not waiting

        with trio.fail_after(SETTLE):
            async with trio.open_nursery() as nursery:

                async def until_full() -> None:
                    await receiver.wait_event(disk_full_is(True))
                    nursery.cancel_scope.cancel()

                async def until_delivered() -> None:
                    await sender.wait_event(full_or_delivered)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until_full)
                nursery.start_soon(until_delivered)
        if any(e["type"] == "disk_full_changed" for e in receiver.events):
            return
    raise AssertionError(f"{MAX_ROUNDS * ROUND} messages did not fill the disk")


async def assert_caught_up(
    sender: DaemonProcess, receiver: DaemonProcess, fp_s: str, sent: list[str]
) -> None:
    """Every sent message stored and shown once, and acknowledged; the disk not full."""
    with trio.fail_after(SETTLE):
        await receiver.wait_event(disk_full_is(False))
        await wait_ids(sender, "message_delivered", sent)
        await wait_ids(receiver, "message_received", sent)
    stored = [m["id"] for m in await full_history(receiver, fp_s) if m["author"] == fp_s]
    assert set(stored) >= set(sent)
    assert not duplicates(stored)
    shown = ids_of(receiver, "message_received", fp_s)
    assert not duplicates(shown), "a message was shown twice"
    assert (await receiver.call("stats"))["disk_full"] == 0


@pytest.mark.netns
async def test_a_full_disk_stops_acks_says_so_and_catches_up_exactly_once(
    vlan2: VirtualLan, small_disk: Path, tmp_path: Path
) -> None:
    h0, h1 = vlan2.hosts
    profile = small_disk / "h1"
    async with trio.open_nursery() as nursery:
        sender, fp_s = await launch(nursery, h0, tmp_path / "h0")
        receiver, fp_r = await launch(nursery, h1, profile)
        with trio.fail_after(MESH):
            await sender.wait_event(connected_to(fp_r))
            await receiver.wait_event(connected_to(fp_s))
        await trio.to_thread.run_sync(fill, small_disk)
        sent: list[str] = []
        await send_until_full(sender, receiver, fp_r, sent)  # today: the receiver exits

        assert receiver.process.returncode is None
        assert (await receiver.call("stats"))["disk_full"] == 1
        assert "disk full" in await trio.to_thread.run_sync(doctor, h1, profile)
        stored = {m["id"] for m in await full_history(receiver, fp_s)}
        unstored = set(sent) - stored
        assert unstored, "the disk was reported full but everything was stored"
        # What was not stored was not acknowledged: the sender still holds it.
        assert not unstored & set(ids_of(sender, "message_delivered", fp_r))
        sent += [
            (await sender.call("send", peer=fp_r, text=f"while full {i}"))["id"] for i in range(5)
        ]

        await trio.to_thread.run_sync(grow, small_disk)
        await assert_caught_up(sender, receiver, fp_s, sent)
        assert receiver.process.returncode is None  # the same process all along
        assert "disk full" not in await trio.to_thread.run_sync(doctor, h1, profile)
        for daemon in (receiver, sender):
            assert await daemon.stop() == 0


@pytest.mark.netns
async def test_a_node_starts_on_a_full_disk_and_catches_up_when_it_grows(
    vlan2: VirtualLan, small_disk: Path, tmp_path: Path
) -> None:
    h0, h1 = vlan2.hosts
    profile = small_disk / "h1"
    async with trio.open_nursery() as nursery:
        sender, fp_s = await launch(nursery, h0, tmp_path / "h0")
        receiver, fp_r = await launch(nursery, h1, profile)
        with trio.fail_after(MESH):
            await sender.wait_event(connected_to(fp_r))
        assert await receiver.stop() == 0
        await trio.to_thread.run_sync(fill, small_disk)
        sent = [
            (await sender.call("send", peer=fp_r, text=f"queued {i} {BODY}"))["id"]
            for i in range(100)
        ]
        receiver, _ = await launch(nursery, h1, profile)  # on the full disk
        with trio.fail_after(SETTLE):
            await receiver.wait_event(connected_to(fp_s))
            await receiver.wait_event(disk_full_is(True))
        assert receiver.process.returncode is None  # today: it exits at every start
        await trio.to_thread.run_sync(grow, small_disk)
        await assert_caught_up(sender, receiver, fp_s, sent)
        for daemon in (receiver, sender):
            assert await daemon.stop() == 0


def test_the_status_bar_says_disk_full_until_space_returns(
    small_disk: Path, tmp_path: Path
) -> None:
    """A UI whose node's profile is on the small tmpfs; a real peer on loopback sends."""
    node = loopback_node("me", small_disk / "me")
    ui = UiThread(P2pimApp(node))
    try:

        async def talk() -> str:
            async with open_node(Identity.generate(), loopback_config("friend")) as friend:
                await friend.connect("127.0.0.1", ui_port, node.fingerprint)
                await trio.to_thread.run_sync(fill, small_disk)
                for i in range(200):
                    await friend.send_text(node.fingerprint, f"{i} {BODY}")
                await trio.to_thread.run_sync(
                    lambda: ui.wait_until(lambda app: "disk full" in _bar(app), timeout=30)
                )
                await trio.to_thread.run_sync(grow, small_disk)
                await trio.to_thread.run_sync(
                    lambda: ui.wait_until(lambda app: "disk full" not in _bar(app), timeout=30)
                )
                return friend.fingerprint

        ui_port = ui.wait_until(lambda app: app.node.port)
        friend = trio.run(talk)
        ui.wait_until(lambda app: _gone(app, friend))  # every event shown before closing
        assert ui.app.is_running
    finally:
        ui.close()


def _bar(app: P2pimApp) -> str:
    return str(app.query_one("#status").render())


def test_reading_a_conversation_on_a_full_disk_keeps_the_app(small_disk: Path) -> None:
    """Marking a conversation read is a write: on a full disk it fails quietly (the
    receipt waits for the next read) instead of ending the app."""
    node = loopback_node("me", small_disk / "me")
    ui = UiThread(P2pimApp(node))
    try:
        port = ui.wait_until(lambda app: app.node.port)

        async def send_one() -> str:
            async with open_node(Identity.generate(), loopback_config("friend")) as friend:
                await friend.connect("127.0.0.1", port, node.fingerprint)
                await friend.send_text(node.fingerprint, "read me later")
                await trio.to_thread.run_sync(
                    lambda: ui.wait_until(lambda app: _unread(app, friend.fingerprint))
                )
                return friend.fingerprint

        friend = trio.run(send_one)
        ui.wait_until(lambda app: _gone(app, friend))
        fill(small_disk)
        ui.do(_open(friend))
        ui.wait_until(lambda app: "disk full" in _bar(app))  # the read receipt failed
        assert ui.wait_until(lambda app: "read me later" in _lines(app, friend))
        assert ui.app.is_running
    finally:
        ui.close()


def _gone(app: P2pimApp, fp: str) -> bool:
    contact = app.model.contacts.get(fp)
    return contact is not None and contact.status == "offline"


def _unread(app: P2pimApp, fp: str) -> int:
    contact = app.model.contacts.get(fp)
    return contact.unread if contact else 0


def _lines(app: P2pimApp, key: str) -> str:
    return "\n".join(line.text for line in app.model.conversations.get(key, []))


def _open(key: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def open_it(pilot: Pilot[None]) -> None:
        pilot.app.open_conversation(key)  # type: ignore[attr-defined]

    return open_it


async def test_a_file_offer_on_a_full_disk_waits_on_the_session_instead_of_dropping_it(
    small_disk: Path, tmp_path: Path
) -> None:
    """A received offer (like a room event, or a peer's new nick) is stored by the
    session's reader: on a full disk the reader waits and retries, so the session stays
    up (no drop and redial every second), and the offer arrives once when space returns."""
    (tmp_path / "f.txt").write_text("hello")
    config = loopback_config("r", download_dir=tmp_path / "in")
    async with (
        open_node(Identity.generate(), config, store_path=small_disk / "r.db") as r,
        open_node(Identity.generate(), loopback_config("s")) as s,
    ):
        events = r.subscribe()
        await meet(s, r)
        await trio.to_thread.run_sync(fill, small_disk)
        offer = await s.send_files([r.fingerprint], [tmp_path / "f.txt"])
        with trio.fail_after(20):
            seen = [await first_event(events, lambda e: isinstance(e, DiskFullChanged))]
        await trio.to_thread.run_sync(grow, small_disk)
        with trio.fail_after(20):
            seen.append(
                await first_event(events, lambda e: isinstance(e, OfferReceived | PeerDisconnected))
            )
        got = seen[-1]
        assert isinstance(got, OfferReceived), f"the session dropped: {seen}"
        assert (got.peer, got.offer, got.total_size) == (s.fingerprint, offer, 5)
        assert r.is_connected(s.fingerprint)
        assert r.stats()["disk_full"] == 0
        assert [o.offer for o in await r.transfers()] == [offer]
