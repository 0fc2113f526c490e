"""One-shot commands: `p2pim send`, `send-file`, `peers`, `doctor`, `history`, `search`,
`status` and `verify` each do one job through the JSON-RPC API of the profile's node.

`node_client` connects to the node running on the profile (its control socket) or, when
none runs, runs one just long enough for the job, so every command has one code path.
Exit codes: 0 success, 1 the operation failed, 2 bad usage or an unknown or ambiguous
peer name, 130 interrupted (docs/api.md, "Command line").
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import trio

from p2pim import control
from p2pim import identity as ident
from p2pim.client import Event, RpcClient, RpcFailed, connect
from p2pim.config import NodeConfig
from p2pim.doctor import diagnose, render
from p2pim.names import PeerNameError, resolve_peer
from p2pim.node import Node
from p2pim.rpc import UNKNOWN_PEER
from p2pim.storage import database_path

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130
NO_NODE = "no p2pim node is running on this profile"
NO_STATUS = f"{NO_NODE}; status lasts only while one runs"
CONNECT_PATIENCE = 10.0  # a node holding the profile lock may still be binding its socket
POLL_INTERVAL = 0.05


class CommandError(Exception):
    """The command failed: a message for the user, and the exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


# ---- reaching the profile's node ---------------------------------------------------------


@asynccontextmanager
async def node_client(
    profile: Path, config: NodeConfig, *, peers: Sequence[tuple[str, int]] = ()
) -> AsyncIterator[RpcClient]:
    """A JSON-RPC client of the node running on `profile`; without one, of a temporary node
    (`config`, plus the manual `peers`) that runs until the block is left."""
    async with _open_node(profile, config, peers) as (client, _):
        yield client


@asynccontextmanager
async def _open_node(
    profile: Path, config: NodeConfig, peers: Sequence[tuple[str, int]]
) -> AsyncIterator[tuple[RpcClient, bool]]:
    """(client, whether the node is temporary).  Taking the lock decides, with no race."""
    with contextlib.ExitStack() as lock:
        try:
            lock.enter_context(control.hold_profile(profile))
        except control.ProfileInUse:
            async with running_node_client(profile) as client:
                yield client, False
            return
        async with _temporary_node(profile, config, peers) as client:
            yield client, True


@asynccontextmanager
async def running_node_client(profile: Path) -> AsyncIterator[RpcClient]:
    """A client of the node already running on `profile`, which may still be starting."""
    path = _socket_path(profile)
    with trio.move_on_after(CONNECT_PATIENCE) as patience:
        while True:
            try:
                probe = await trio.open_unix_socket(os.fspath(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if not control.node_running(profile):
                    raise CommandError("the p2pim node of this profile has stopped") from None
                await trio.sleep(POLL_INTERVAL)  # polling a socket another process binds
    if patience.cancelled_caught:
        raise CommandError(f"the p2pim node of this profile does not answer on {path}")
    await probe.aclose()
    async with connect(path) as client:
        yield client


@asynccontextmanager
async def _temporary_node(
    profile: Path, config: NodeConfig, peers: Sequence[tuple[str, int]]
) -> AsyncIterator[RpcClient]:
    """Run a node on `profile` (the caller holds its lock) serving the control socket, as
    the daemon does, until the block is left; then it says goodbye to its peers."""
    path = _socket_path(profile)
    try:
        node = Node(ident.load_or_create(profile), config, store_path=database_path(profile))
    except ValueError as exc:  # --nick, --presence-timeout
        raise CommandError(str(exc), USAGE) from None
    async with trio.open_nursery() as nursery:
        await nursery.start(_run_node, node, nursery.cancel_scope)
        try:
            await nursery.start(control.serve_control, node, path)
            await _reach_manual_peers(node, peers, patience=2 * config.handshake_timeout)
            async with connect(path) as client:
                yield client
        finally:
            await node.stop()


async def _run_node(
    node: Node, scope: trio.CancelScope, *, task_status: trio.TaskStatus[None]
) -> None:
    await node.run(task_status=task_status)
    scope.cancel()  # the node has stopped: so does its control socket


async def _reach_manual_peers(
    node: Node, peers: Sequence[tuple[str, int]], *, patience: float
) -> None:
    """Remember the `--peer` addresses and give each one a chance to answer (a session, or
    a failed dial) before the command runs, so the peer behind it can be named."""
    for host, port in peers:
        try:
            await node.add_peer(host, port)
        except ValueError as exc:
            raise CommandError(f"--peer {host}:{port}: {exc}", USAGE) from None
    wanted = {f"{host}:{port}" for host, port in peers}
    with trio.move_on_after(patience):
        while not wanted <= _settled_addresses(node):
            await trio.sleep(POLL_INTERVAL)  # dials run in the node's own tasks


def _settled_addresses(node: Node) -> set[str]:
    """Addresses whose dial failed, or whose peer has a session and a pinned key."""
    pinned = {p.fingerprint for p in node.peers() if p.connected and p.trust is not None}
    settled: set[str] = set()
    for target in node.reachability():
        if target.last_error is not None or target.fingerprint in pinned:
            settled.update(target.addresses)
    return settled


def _socket_path(profile: Path) -> Path:
    path = control.socket_path(profile)
    if len(os.fsencode(path)) > control.MAX_SOCKET_PATH:
        raise CommandError(f"the profile path is too long for a control socket: {path}")
    return path


# ---- running a command -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    rpc: RpcClient
    args: argparse.Namespace
    config: NodeConfig
    temporary: bool  # the node runs only for this command

    def show(self, result: Any, text: str) -> None:
        """The result on stdout: as JSON with --json, else as text for people."""
        print(json.dumps(result) if self.args.json else text)


Command = Callable[[Job], Awaitable[int]]


def run(command: str, args: argparse.Namespace, profile: Path, config: NodeConfig) -> int:
    """Run one of COMMANDS to the end; its exit code.  Failures are reported on stderr."""
    if command == "status":
        main = functools.partial(status, args, profile)
    else:
        main = functools.partial(_run_job, COMMANDS[command], args, profile, config)
    try:
        return trio.run(main)
    except BaseException as exc:
        return _exit_code(exc)


async def _run_job(
    command: Command, args: argparse.Namespace, profile: Path, config: NodeConfig
) -> int:
    async with _open_node(profile, config, args.peer) as (rpc, temporary):
        try:
            return await command(Job(rpc, args, config, temporary))
        except RpcFailed as exc:
            if exc.code != UNKNOWN_PEER or not getattr(args, "name", None):
                raise
            hint = "" if "ambiguous" in exc.message else " (`p2pim peers` lists known peers)"
            raise CommandError(exc.message + hint, USAGE) from None


def _exit_code(exc: BaseException) -> int:
    """Report a failure on stderr and return its exit code; re-raise the unexpected."""
    error = exc
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]  # trio's nurseries wrap what crosses them
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(error, CommandError):
        code, message = error.code, str(error)
    elif isinstance(error, RpcFailed):
        code, message = (USAGE if error.code == UNKNOWN_PEER else FAILED), error.message
    elif isinstance(error, (OSError, EOFError)):
        code, message = FAILED, str(error)
    else:
        raise exc
    print(f"p2pim: {message}", file=sys.stderr)
    return code


# ---- the commands --------------------------------------------------------------------


async def send(job: Job) -> int:
    """To a peer, a contact group (one 1:1 message each) or a room we are in."""
    rpc, args = job.rpc, job.args
    kind, name = await _recipient(rpc, args.name)
    if kind == "room":
        posted = await rpc.call("post", room=name, text=args.text)
        job.show({"id": posted["id"], "outcome": "posted"}, "posted")
        return OK
    await rpc.call("subscribe")  # before sending: a receipt may come at once
    if kind == "group":
        ids = (await rpc.call("send_to_group", name=name, text=args.text))["ids"]
    else:
        ids = {args.name: (await rpc.call("send", peer=name, text=args.text))["id"]}
    waiting = set(ids.values())
    with trio.move_on_after(args.wait):
        while waiting:
            event = await rpc.wait_event(
                lambda e: e["type"] == "message_delivered" and e["message_id"] in waiting
            )
            waiting.discard(event["message_id"])
    outcome = {peer: "queued" if i in waiting else "delivered" for peer, i in ids.items()}
    if kind == "peer":
        delivered = not waiting
        text = "delivered" if delivered else f"queued (will be delivered when {name} is reachable)"
        job.show({"id": ids[args.name], "outcome": outcome[args.name]}, text)
    else:
        done = len(ids) - len(waiting)
        text = f"delivered to {done} of {len(ids)}" + ("; queued for the rest" if waiting else "")
        job.show({"ids": ids, "outcomes": outcome}, text)
    return OK


async def _recipient(rpc: RpcClient, name: str) -> tuple[str, str]:
    """("peer" | "group" | "room", name): `room:NAME` and `group:NAME` say which; a bare
    name that is a contact group or a room we are in is that, unless it is ambiguous."""
    kind, _, rest = name.partition(":")
    if kind in ("room", "group") and rest:
        return kind, rest
    groups = await rpc.call("groups")
    rooms = [r for r in await rpc.call("rooms") if r["joined"] and r["name"] == name]
    kinds = ["group"] * (name in groups) + ["room"] * bool(rooms)
    if len(kinds) > 1:
        raise CommandError(
            f"{name!r} is a group and a room: say group:{name} or room:{name}", USAGE
        )
    return (kinds[0], name) if kinds else ("peer", name)


async def send_file(job: Job) -> int:
    rpc, args = job.rpc, job.args
    paths = [os.fspath(Path(p).absolute()) for p in args.paths]  # the node has its own cwd
    bar = ProgressBar(sys.stderr)
    await rpc.call("subscribe")
    interrupted = False
    finished: Event | None = None
    with trio.open_signal_receiver(signal.SIGINT) as signals:  # Ctrl-C withdraws the offer
        offer = (await rpc.call("send_files", peers=[args.name], paths=paths))["offer"]
        bar.note(f"offered to {args.name}; waiting for an answer (Ctrl-C withdraws it)")
        with trio.move_on_after(math.inf if args.timeout is None else args.timeout):
            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    nonlocal interrupted
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()

                nursery.start_soon(on_signal)
                finished = await _follow_offer(rpc, offer, bar)
                nursery.cancel_scope.cancel()
    if finished is None:
        with contextlib.suppress(RpcFailed):  # it may have ended meanwhile
            await rpc.call("cancel_transfer", peer=args.name, offer=offer)
        reason = "interrupted" if interrupted else f"timed out after {args.timeout:g} s"
        bar.finish(None)
        job.show({"offer": offer, "state": "cancelled", "reason": reason}, f"cancelled: {reason}")
        return INTERRUPTED if interrupted else FAILED
    state, reason = finished["state"], finished["reason"]
    bar.finish(finished)
    result = {key: finished[key] for key in ("offer", "peer", "state", "reason", "files")}
    job.show(result, f"{state}: {reason}" if reason and reason != state else state)
    return OK if state == "completed" else FAILED


async def _follow_offer(rpc: RpcClient, offer: str, bar: ProgressBar) -> Event:
    """Show our offer's progress until it is over on this side: its `transfer_finished`."""
    seen = 0
    while True:
        for event in await _new_events(rpc, seen):
            seen += 1
            if event.get("offer") != offer or not event.get("outgoing", True):
                continue
            if event["type"] == "offer_answered":
                bar.answered(len(event["accepted"]))
            elif event["type"] == "transfer_progress":
                bar.update(event)
            elif event["type"] == "transfer_finished":
                return event


async def _new_events(rpc: RpcClient, seen: int) -> list[Event]:
    """The events after the first `seen`, once there is at least one."""
    await rpc.wait_event(lambda _: len(rpc.events) > seen)
    return rpc.events[seen:]


async def peers(job: Job) -> int:
    if job.temporary:  # give known peers a moment to connect, adverts to arrive
        with trio.move_on_after(job.args.wait):
            await _settle(job)
    found = await job.rpc.call("peers")
    job.show(found, peer_table(found))
    return OK


async def _settle(job: Job) -> None:
    """Wait until every pinned peer has a session or could not be reached (forever with
    mDNS: adverts may come at any time; the caller bounds the wait)."""
    rpc = job.rpc
    if job.config.discovery:
        await trio.sleep_forever()
    await rpc.call("subscribe")
    while True:
        seen = len(rpc.events)  # before looking: what changes next wakes us
        targets = await rpc.call("reachability")
        if all(_settled(p, targets) for p in await rpc.call("peers")):
            return
        await _new_events(rpc, seen)


def _settled(peer: dict[str, Any], targets: list[dict[str, Any]]) -> bool:
    if peer["connected"] or peer["trust"] is None:
        return True
    mine = [t for t in targets if t["fingerprint"] == peer["fingerprint"]]
    return all(t["last_error"] is not None for t in mine)  # no address: nothing to try


async def history(job: Job) -> int:
    found = await job.rpc.call("history", peer=job.args.name, limit=job.args.limit)
    nicks = {} if job.args.json else await _nicks(job.rpc)
    job.show(found, "\n".join(message_line(m, nicks) for m in found) or "no messages")
    return OK


async def search(job: Job) -> int:
    found = await job.rpc.call("search", query=job.args.query, limit=job.args.limit)
    nicks = {} if job.args.json else await _nicks(job.rpc)
    lines = [message_line(m, nicks, conversation=True) for m in found]
    job.show(found, "\n".join(lines) or "nothing found")
    return OK


async def _nicks(rpc: RpcClient) -> dict[str, str]:
    return {p["fingerprint"]: p["nick"] for p in await rpc.call("peers")}


async def verify(job: Job) -> int:
    rpc, args = job.rpc, job.args
    number = (await rpc.call("safety_number", peer=args.name))["safety_number"]
    known = await rpc.call("peers")
    try:  # the node's own rules, so this is the peer it just answered for
        fingerprint = resolve_peer(args.name, ((p["fingerprint"], p["nick"]) for p in known))
    except PeerNameError as exc:  # the peers changed in between
        raise CommandError(str(exc), USAGE) from None
    if args.yes:
        await rpc.call("verify", peer=fingerprint)
        known = await rpc.call("peers")
    peer = next(p for p in known if p["fingerprint"] == fingerprint)  # resolved among them
    me = await rpc.call("identity")
    result = {"safety_number": number, "fingerprint": fingerprint, "trust": peer["trust"]}
    job.show(result, verify_text(number, peer, me, args.name, done=args.yes))
    return OK


async def status(args: argparse.Namespace, profile: Path) -> int:
    """Show or set the running node's status; never runs a node (it would not last)."""
    if not control.node_running(profile):
        if args.status is not None:
            raise CommandError(NO_STATUS)
        offline = {"status": "offline", "status_text": ""}
        print(json.dumps(offline) if args.json else f"offline ({NO_NODE})")
        return OK
    async with running_node_client(profile) as rpc:
        if args.status is not None:
            await rpc.call("set_status", status=args.status, text=args.text)
        me = await rpc.call("identity")
    text = me["status"] + (f": {_clean(me['status_text'])}" if me["status_text"] else "")
    print(json.dumps(me) if args.json else text)
    return OK


async def doctor(job: Job) -> int:
    if job.temporary:  # a fresh node has not met anyone yet
        with trio.move_on_after(job.args.wait):
            await _settle(job)
    findings = await diagnose(job.rpc)
    job.show([dataclasses.asdict(f) for f in findings], render(findings))
    return FAILED if any(f.status == "problem" for f in findings) else OK


COMMANDS: dict[str, Command] = {
    "send": send,
    "send-file": send_file,
    "peers": peers,
    "doctor": doctor,
    "history": history,
    "search": search,
    "verify": verify,
}


# ---- text for people ------------------------------------------------------------------


def _clean(text: str, *, newlines: bool = False) -> str:
    """Text from peers made safe for a terminal: control and format characters (escape
    sequences, bidi overrides) are shown as \\uXXXX."""
    return "".join(
        c if c.isprintable() or (newlines and c == "\n") else f"\\u{ord(c):04x}" for c in text
    )


def peer_table(peers: list[dict[str, Any]]) -> str:
    if not peers:
        return "no peers known yet"
    rows = [("NICK", "ID", "STATUS", "TRUST", "ADDRESSES")]
    for p in peers:
        state = p["status"] + (f": {p['status_text']}" if p["status_text"] else "")
        trust = "KEY CHANGED" if p["trust"] == "key_changed" else p["trust"] or "-"
        addresses = ", ".join(p["addresses"]) or "-"
        rows.append((_clean(p["nick"]), p["fingerprint"][:8], _clean(state), trust, addresses))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[4]]))
    return "\n".join(lines)


def message_line(m: dict[str, Any], nicks: dict[str, str], *, conversation: bool = False) -> str:
    """`2026-11-25 10:19  bob: text`; with `conversation`, outgoing ones say to whom."""
    peer = _clean(nicks.get(m["peer"]) or m["peer"][:8])
    who = ("me -> " + peer if conversation else "me") if m["outgoing"] else peer
    notes = []
    if m["edited_at"] is not None and not m["deleted"]:
        notes.append("edited")
    if m["outgoing"] and not m["deleted"]:
        if m["read_at"] is not None:
            notes.append("read")
        elif m["delivered_at"] is None:
            notes.append("queued")
    head = f"{_local_time(m['sent_at'], m['stored_at'])}  {who}: "
    body = "(deleted)" if m["deleted"] else _clean(m["body"], newlines=True)
    tail = f"  ({', '.join(notes)})" if notes else ""
    return head + body.replace("\n", "\n" + " " * len(head)) + tail


def _local_time(sent_at: int, stored_at: int) -> str:
    """The author's clock, unless it is absurd (a peer chooses it): then ours."""
    try:
        when = datetime.fromtimestamp(sent_at / 1000)
    except (OverflowError, OSError, ValueError):
        when = datetime.fromtimestamp(stored_at / 1000)
    return f"{when:%Y-%m-%d %H:%M}"


def verify_text(
    number: str, peer: dict[str, Any], me: dict[str, Any], name: str, *, done: bool
) -> str:
    """The safety number as 12 groups of 5 digits, and what to do with it."""
    groups = [number[i : i + 5] for i in range(0, len(number), 5)]
    rows = ["    " + " ".join(groups[i : i + 4]) for i in range(0, len(groups), 4)]
    who = f"{_clean(peer['nick'])} ({peer['fingerprint'][:8]})"
    head = [f"Safety number with {who}:", "", *rows, ""]
    if done:
        return "\n".join([*head, f"{who} is now verified."])
    advice = [
        f"Trust now: {peer['trust'] or 'nothing pinned'}.",
        f"Compare it with the number {_clean(peer['nick'])} sees (`p2pim verify "
        f"{me['fingerprint'][:8]}` on their side), in person or over a call you trust.",
        f"If all 60 digits match, run `p2pim verify {name} --yes`.",
    ]
    return "\n".join(head + advice)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def progress_line(done: int, total: int, rate: float, eta: float | None, width: int = 24) -> str:
    """`[#########---------------]  38%  3.8 MB / 10.0 MB  2.1 MB/s  ETA 0:03`"""
    fraction = min(max(done / total, 0.0), 1.0) if total else 1.0
    filled = round(fraction * width)
    left = "--:--" if eta is None else _duration(eta)
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {fraction:4.0%}  "
        f"{_size(done)} / {_size(total)}  {_size(rate)}/s  ETA {left}"
    )


class ProgressBar:
    """A transfer's progress on one line of `stream`, redrawn in place on a terminal;
    elsewhere only the final line is written."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._shown = 0  # length of the line now on screen
        self._last: Event | None = None
        self._answered_at: float | None = None

    def note(self, text: str) -> None:
        if self._live:
            self._write(text)

    def answered(self, files: int) -> None:
        self._answered_at = time.monotonic()
        self.note(f"accepted {files} file(s)" if files else "declined")

    def update(self, event: Event) -> None:
        self._last = event
        if self._live:
            self._write(progress_line(event["done"], event["total"], event["rate"], event["eta"]))

    def finish(self, finished: Event | None) -> None:
        """Replace the line with a summary of the outcome (always written)."""
        line = ""
        if finished is not None and finished["state"] == "completed":
            ok = [f for f in finished["files"] if f["outcome"] == "ok"]
            size = sum(f["size"] for f in ok)
            elapsed = time.monotonic() - (self._answered_at or time.monotonic())
            rate = f", {_size(size / elapsed)}/s" if elapsed > 0 else ""
            line = f"sent {len(ok)} file(s), {_size(size)} in {elapsed:.1f} s{rate}"
        elif (last := self._last) is not None:
            line = progress_line(last["done"], last["total"], last["rate"], None)
        if line:
            self._write(line)
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = 0

    def _write(self, line: str) -> None:
        if self._live:
            self._stream.write("\r" + line.ljust(self._shown))
        else:
            self._stream.write(line)
        self._stream.flush()
        self._shown = max(len(line), 1)
