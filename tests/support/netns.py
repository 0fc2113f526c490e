"""Real `p2pim daemon` processes on the namespaced virtual LAN, driven over JSON-RPC: one
launcher, the timing budgets, and the event helpers several netns tests share."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from p2pim.testing.daemon_process import (
    DaemonProcess,
    Event,
    Predicate,
    connected_to,
    daemon_argv,
    start_daemon,
)
from p2pim.testing.vlan import Host, namespaces_available
from tests.support import REPO

NETNS_AVAILABLE, NETNS_REASON = namespaces_available()
SKIP_REASON = f"network namespaces unavailable: {NETNS_REASON}"


def require_netns() -> None:
    """Skip the running test where network namespaces are unavailable."""
    if not NETNS_AVAILABLE:
        pytest.skip(SKIP_REASON)


STARTUP = 20.0  # a daemon answers `identity` (python start-up included)
MESH = 15.0  # daemons on one switch find each other (mDNS or remembered addresses), connect
PRESENCE_TIMEOUT = 2.0  # short, so that the suites stay fast
MIB = 1 << 20


def flags(
    presence_timeout: float = PRESENCE_TIMEOUT, reconnect_max_delay: float = 1
) -> tuple[str, ...]:
    """The daemon options that make presence and reconnection quick enough for a test."""
    return (
        "--presence-timeout",
        f"{presence_timeout:g}",
        "--reconnect-max-delay",
        f"{reconnect_max_delay:g}",
    )


FLAGS = flags()


# ---- launching ----------------------------------------------------------------------------


async def launch_daemon(
    nursery: trio.Nursery,
    host: Host,
    profile: Path,
    *extra: str,
    options: Sequence[str] = FLAGS,
    nick: str | None = None,
    listen: str | None = None,
    interfaces: Iterable[str] = (),
) -> tuple[DaemonProcess, dict[str, Any]]:
    """A daemon on `host` (nick: the host's name), once it answers; with its `identity`."""
    argv = daemon_argv(
        profile,
        nick or host.name,
        host.address,
        *options,
        *extra,
        listen=listen,
        interfaces=list(interfaces),
    )
    daemon = await start_daemon(nursery, host.command(argv))
    with trio.fail_after(STARTUP):
        identity: dict[str, Any] = await daemon.call("identity")
    return daemon, identity


async def launch(
    nursery: trio.Nursery, host: Host, profile: Path, *extra: str, **kwargs: Any
) -> tuple[DaemonProcess, str]:
    """`launch_daemon`, with the daemon's fingerprint."""
    daemon, identity = await launch_daemon(nursery, host, profile, *extra, **kwargs)
    return daemon, str(identity["fingerprint"])


async def launch_mesh(
    nursery: trio.Nursery, hosts: list[Host], tmp_path: Path, options: Sequence[str] = FLAGS
) -> tuple[list[DaemonProcess], list[str]]:
    """One daemon per host (profile tmp_path/<host name>), returned once all are connected."""
    daemons = []
    for host in hosts:  # all start at once: each takes a second or two to advertise
        argv = daemon_argv(tmp_path / host.name, host.name, host.address, *options)
        daemons.append(await start_daemon(nursery, host.command(argv)))
    with trio.fail_after(STARTUP):
        fps = [str((await daemon.call("identity"))["fingerprint"]) for daemon in daemons]
    assert len(set(fps)) == len(fps)
    await wait_mesh(daemons, fps)
    return daemons, fps


async def wait_mesh(daemons: list[DaemonProcess], fps: list[str]) -> None:
    """Until every daemon holds a session with every other."""
    with trio.fail_after(MESH):
        for i, daemon in enumerate(daemons):
            for j, fp in enumerate(fps):
                if i != j:
                    await daemon.wait_event(connected_to(fp))


# ---- messages -----------------------------------------------------------------------------


def ids_of(daemon: DaemonProcess, kind: str, peer: str) -> list[str]:
    """The message ids of `kind` events about `peer`, in the order they came."""
    key = "sender" if kind == "message_received" else "peer"
    return [e["message_id"] for e in daemon.events if e["type"] == kind and e[key] == peer]


async def wait_ids(daemon: DaemonProcess, kind: str, ids: Iterable[str]) -> None:
    """Until the daemon has emitted a `kind` event for every one of `ids`."""
    missing = set(ids)

    def seen_all(event: Event) -> bool:
        if event["type"] == kind:
            missing.discard(event["message_id"])
        return not missing

    if missing:
        await daemon.wait_event(seen_all)


def duplicates(values: Iterable[Any]) -> list[Any]:
    return [value for value, n in Counter(values).items() if n > 1]


async def full_history(daemon: DaemonProcess, peer: str) -> list[Event]:
    """The whole conversation, paged backwards 500 at a time, oldest first."""
    pages: list[list[Event]] = []
    before = None
    while page := await daemon.call("history", peer=peer, before=before, limit=500):
        pages.append(page)
        before = page[0]["id"]
    return [message for page in reversed(pages) for message in page]


def nth_match(predicate: Predicate, n: int) -> Predicate:
    """Holds from the n-th event matching `predicate` on (a fresh counter per call)."""
    count = 0

    def holds(event: Event) -> bool:
        nonlocal count
        count += predicate(event)
        return count >= n

    return holds


# ---- rooms --------------------------------------------------------------------------------

FORM = 20.0  # invitations answered and every member agrees on the membership


def invited_to(room: str) -> Predicate:
    return lambda e: e["type"] == "room_invited" and e["room"] == room


def membership(room: str, fps: Iterable[str]) -> Predicate:
    """A `room_changed` that shows exactly `fps` as members, nobody still invited, and us in."""
    members = sorted(fps)
    return lambda e: (
        e["type"] == "room_changed"
        and e["room"] == room
        and sorted(e["members"]) == members
        and not e["invited"]
        and e["joined"] is True
    )


async def form_room(
    daemons: list[DaemonProcess], fps: list[str], name: str, topic: str = ""
) -> str:
    """daemons[0] creates the room and invites the others, each of whom joins on its
    `room_invited`; returns once every member's `room_changed` shows all of them."""
    creator, others = daemons[0], daemons[1:]
    room = str((await creator.call("create_room", name=name, topic=topic))["room"])
    with trio.fail_after(FORM):
        for fp in fps[1:]:
            await creator.call("invite", room=room, peer=fp)
        for daemon in others:
            invitation = await daemon.wait_event(invited_to(room))
            assert (invitation["name"], invitation["inviter"]) == (name, fps[0])
            await daemon.call("join_room", room=room)
        for daemon in daemons:
            await daemon.wait_event(membership(room, fps))
    return room


def nth_post(room: str, n: int) -> Predicate:
    """Holds from the n-th `room_message` of `room` on (a fresh counter per call)."""
    return nth_match(lambda e: e["type"] == "room_message" and e["room"] == room, n)


# ---- files --------------------------------------------------------------------------------


def write_random(path: Path, size: int, rng: random.Random) -> str:
    """A file of `size` pseudo-random bytes; returns its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("wb") as file:
        block = rng.randbytes(MIB)
        for i in range(0, size, MIB):
            piece = block[: min(MIB, size - i)]
            piece = i.to_bytes(8, "big") + piece[8:]  # every MiB differs
            file.write(piece)
            digest.update(piece)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def offered(offer: str) -> Predicate:
    return lambda e: e["type"] == "offer_received" and e["offer"] == offer


def finished(offer: str) -> Predicate:
    return lambda e: e["type"] == "transfer_finished" and e["offer"] == offer


def progressed(offer: str, done: int) -> Predicate:
    return lambda e: e["type"] == "transfer_progress" and e["offer"] == offer and e["done"] >= done


async def offer_and_accept(
    sender: DaemonProcess,
    receivers: list[tuple[DaemonProcess, str, Path]],
    sender_fp: str,
    paths: list[Path],
) -> str:
    """Offer `paths` to every receiver (daemon, fingerprint, inbox); each accepts all."""
    peers = [fp for _, fp, _ in receivers]
    offer = str(
        (await sender.call("send_files", peers=peers, paths=[str(p) for p in paths]))["offer"]
    )
    for daemon, _, inbox in receivers:
        inbox.mkdir(exist_ok=True)
        with trio.fail_after(10):
            await daemon.wait_event(offered(offer))
        await daemon.call("accept_offer", peer=sender_fp, offer=offer, directory=str(inbox))
    return offer


def assert_completed(event: Event) -> None:
    assert event["state"] == "completed", event
    assert {f["outcome"] for f in event["files"]} == {"ok"}, event


PEERS = REPO / "tests" / "peers"
Report = dict[str, Any]


class PeerScript:
    """A script from tests/peers/ (a hostile peer, a flooder) running in a host's
    namespace; its JSON lines land in `reports`, and `say()` writes a line to its stdin."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.reports: list[Report] = []
        self._changed = trio.Event()
        self._eof = False

    @classmethod
    async def start(cls, nursery: trio.Nursery, host: Host, name: str, *args: object) -> PeerScript:
        argv = [sys.executable, str(PEERS / name), *map(str, args)]
        # The scripts import p2pim from the tree these tests belong to, whatever is installed.
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = await host.open_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        script = cls(process)
        nursery.start_soon(script._read)
        return script

    async def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        try:
            while chunk := await self.process.stdout.receive_some(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self.reports.append(json.loads(line))
                self._changed.set()
                self._changed = trio.Event()
        finally:
            self._eof = True
            self._changed.set()

    def seen(self, event: str) -> list[Report]:
        return [r for r in self.reports if r["event"] == event]

    async def wait(self, event: str, where: Callable[[Report], bool] = lambda r: True) -> Report:
        """The first report named `event` (matching `where`).  The caller bounds the wait."""
        while True:
            for report in self.seen(event):
                if where(report):
                    return report
            if self._eof:
                raise EOFError(f"{self.process.args!r} ended without {event!r}")
            await self._changed.wait()

    async def say(self, line: str = "go") -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line.encode() + b"\n")

    async def finish(self) -> None:
        """Close its stdin (it winds down), then make sure it is gone."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with trio.move_on_after(5):
            await self.process.wait()
            return
        self.process.kill()
        await self.process.wait()
