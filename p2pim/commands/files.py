"""`p2pim send-file` and `receive`, its other half, and `transfer list|accept|decline|cancel`."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from p2pim import terminal
from p2pim.api import TransferState
from p2pim.blocking_client import BlockingClient, Event, RpcFailed
from p2pim.names import PeerNameError, resolve_peer
from p2pim.oneshot import (
    FAILED,
    INTERRUPTED,
    OK,
    TIMED_OUT,
    USAGE,
    CommandError,
    Job,
    deadline_after,
)

MIN_OFFER_PREFIX = 4


class Interrupt:
    """Ctrl-C held back while a request is in flight (its answer must be read)."""

    def __init__(self) -> None:
        self.pressed = False


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Interrupt]:
    flag = Interrupt()

    def note(signum: int, frame: FrameType | None) -> None:
        flag.pressed = True

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def send_file(job: Job) -> int:
    rpc, args = job.rpc, job.args
    paths = [os.fspath(Path(p).absolute()) for p in args.paths]  # the node has its own cwd
    bar = terminal.ProgressBar(sys.stderr)
    rpc.call("subscribe")
    with deferred_interrupt() as interrupt:  # hashing takes a while; then Ctrl-C withdraws
        offer = rpc.call("send_files", peers=[args.name], paths=paths)["offer"]
    bar.note(f"offered to {args.name}; waiting for an answer (Ctrl-C withdraws it)")
    finished: Event | None = None
    interrupted = interrupt.pressed
    if not interrupted:
        try:
            finished = follow(rpc, offer, bar, deadline_after(args.timeout), outgoing=True)
        except KeyboardInterrupt:
            interrupted = True
    if finished is None:
        with contextlib.suppress(RpcFailed):  # it may have ended meanwhile
            rpc.call("cancel_transfer", peer=args.name, offer=offer)
        reason = "interrupted" if interrupted else f"timed out after {args.timeout:g} s"
        bar.finish(None)
        cancelled = TransferState.CANCELLED
        job.show({"offer": offer, "state": cancelled, "reason": reason}, f"{cancelled}: {reason}")
        return INTERRUPTED if interrupted else FAILED
    state, reason = finished["state"], finished["reason"]
    bar.finish(finished)
    result = {key: finished[key] for key in ("offer", "peer", "state", "reason", "files")}
    job.show(result, f"{state}: {reason}" if reason and reason != state else state)
    return OK if state == TransferState.COMPLETED else FAILED


def follow(
    rpc: BlockingClient,
    offer: str,
    bar: terminal.ProgressBar,
    deadline: float | None,
    *,
    outgoing: bool,
) -> Event | None:
    """Show an offer's progress on this side until its `transfer_finished` (None: the
    deadline passed first).  The client must have subscribed before the offer began."""
    seen = 0
    while True:
        for event in rpc.events[seen:]:
            seen += 1
            if event.get("offer") != offer or event.get("outgoing", True) != outgoing:
                continue  # offer_answered has no `outgoing`: it is the sender's
            if event["type"] == "offer_answered":
                bar.answered(len(event["accepted"]))
            elif event["type"] == "transfer_progress":
                bar.update(event)
            elif event["type"] == "transfer_finished":
                return event
        if not rpc.wait_events(seen, deadline):
            return None


def receive(job: Job) -> int:
    """Wait for an offer (from one peer, or anyone), accept it, and wait until it is saved.
    An offer that came before the command ran counts (the oldest first)."""
    rpc, args = job.rpc, job.args
    directory = _folder(args.into)
    sender = _peer_fingerprint(rpc, args.name) if args.name else None
    deadline = deadline_after(args.timeout)
    rpc.call("subscribe")  # before looking: an offer may come at any time
    waiting = [
        t
        for t in rpc.call("transfers")
        if not t["outgoing"] and t["state"] == TransferState.OFFERED and sender in (None, t["peer"])
    ]
    if waiting:
        oldest = min(waiting, key=lambda t: t["expires_at"])
        peer, offer = oldest["peer"], oldest["offer"]
    else:
        if sys.stderr.isatty():
            print("p2pim: waiting for a file offer (Ctrl-C stops)", file=sys.stderr)
        try:
            event = rpc.wait_event(
                lambda e: e["type"] == "offer_received" and sender in (None, e["peer"]), deadline
            )
        except KeyboardInterrupt:
            return INTERRUPTED
        if event is None:
            print(f"p2pim: no file offer arrived within {args.timeout:g} s", file=sys.stderr)
            return TIMED_OUT
        peer, offer = event["peer"], event["offer"]
    return download(job, peer, offer, directory, deadline)


def download(job: Job, peer: str, offer: str, directory: str | None, deadline: float | None) -> int:
    """Accept an offer and follow it to its end; print where each file was saved."""
    rpc, args = job.rpc, job.args
    bar = terminal.ProgressBar(sys.stderr, "received")
    interrupted = False
    finished: Event | None = None
    rpc.call("subscribe")  # before accepting: the transfer's events follow at once
    with deferred_interrupt() as interrupt:
        rpc.call("accept_offer", peer=peer, offer=offer, directory=directory)
    bar.start_clock()
    if interrupt.pressed:
        interrupted = True
    else:
        try:
            finished = follow(rpc, offer, bar, deadline, outgoing=False)
        except KeyboardInterrupt:
            interrupted = True
    if finished is None:
        with contextlib.suppress(RpcFailed):
            rpc.call("cancel_transfer", peer=peer, offer=offer)
        reason = "interrupted" if interrupted else f"timed out after {args.timeout:g} s"
        bar.finish(None)
        cancelled = TransferState.CANCELLED
        job.show(
            {"offer": offer, "peer": peer, "state": cancelled, "reason": reason},
            f"{cancelled}: {reason}",
        )
        return INTERRUPTED if interrupted else FAILED
    bar.finish(finished)
    saved = [f["saved_as"] for f in finished["files"] if f["outcome"] == "ok" and f["saved_as"]]
    result = {key: finished[key] for key in ("offer", "peer", "state", "reason", "files")}
    state, reason = finished["state"], finished["reason"]
    if state != TransferState.COMPLETED:
        print(
            f"p2pim: {state}" + (f": {reason}" if reason and reason != state else ""),
            file=sys.stderr,
        )
    job.show(result, "\n".join(saved))
    complete = state == TransferState.COMPLETED and len(saved) == sum(
        f["outcome"] is not None for f in finished["files"]
    )
    return OK if complete else FAILED


def _folder(into: str | None) -> str | None:
    if into is None:
        return None  # the node's download folder
    folder = Path(into).expanduser().absolute()
    if not folder.is_dir():
        raise CommandError(f"{into}: no such folder", USAGE)
    return os.fspath(folder)


def _peer_fingerprint(rpc: BlockingClient, name: str) -> str:
    try:
        return resolve_peer(name, ((p["fingerprint"], p["nick"]) for p in rpc.call("peers")))
    except PeerNameError as exc:
        raise CommandError(str(exc), USAGE) from None


# ---- transfer list | accept | decline | cancel ------------------------------------------


def transfer_list(job: Job) -> int:
    rpc = job.rpc
    nicks = {p["fingerprint"]: p["nick"] for p in rpc.call("peers")}
    found = rpc.call("transfers")
    for t in found:
        t["peer_nick"] = nicks.get(t["peer"], "")
    job.show(found, transfer_table(found))
    return OK


def transfer_table(transfers: list[dict[str, Any]]) -> str:
    if not transfers:
        return "no transfers"
    rows = [("OFFER", "WAY", "PEER", "STATE", "DONE", "FILES")]
    for t in transfers:
        names = ", ".join(f["path"] for f in t["files"])
        done = f"{terminal.size(t['done'])} / {terminal.size(t['total'])}"
        rows.append(
            (
                t["offer"],  # in full: ids made close together share their first digits
                "out" if t["outgoing"] else "in",
                terminal.clean(t["peer_nick"] or t["peer"][:8]),
                t["state"],
                done,
                terminal.clean(names),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[5]])
        for row in rows
    )


def find_transfers(rpc: BlockingClient, prefix: str, **wanted: Any) -> list[dict[str, Any]]:
    """The transfers of the offer whose id starts with `prefix` (its fields as `wanted`)."""
    prefix = prefix.lower()
    if len(prefix) < MIN_OFFER_PREFIX:
        raise CommandError(f"name an offer by at least {MIN_OFFER_PREFIX} digits of its id", USAGE)
    found = [
        t
        for t in rpc.call("transfers")
        if t["offer"].startswith(prefix) and all(t[k] == v for k, v in wanted.items())
    ]
    offers = sorted({t["offer"] for t in found})
    if not offers:
        raise CommandError(f"no such offer {prefix!r} (`p2pim transfer list` lists them)", USAGE)
    if len(offers) > 1:
        raise CommandError(f"{prefix!r} is ambiguous: {', '.join(offers)}", USAGE)
    return found


def transfer_accept(job: Job) -> int:
    args = job.args
    directory = _folder(args.into)
    [offered] = find_transfers(job.rpc, args.offer, outgoing=False, state=TransferState.OFFERED)
    if args.no_wait:
        job.rpc.call(
            "accept_offer", peer=offered["peer"], offer=offered["offer"], directory=directory
        )
        accepted = TransferState.ACCEPTED
        job.show({"offer": offered["offer"], "state": accepted}, accepted)
        return OK
    return download(job, offered["peer"], offered["offer"], directory, deadline_after(args.timeout))


def transfer_decline(job: Job) -> int:
    [offered] = find_transfers(job.rpc, job.args.offer, outgoing=False, state=TransferState.OFFERED)
    job.rpc.call("decline_offer", peer=offered["peer"], offer=offered["offer"])
    declined = TransferState.DECLINED
    job.show({"offer": offered["offer"], "state": declined}, declined)
    return OK


def transfer_cancel(job: Job) -> int:
    """Cancel an offer, or a transfer under way, either way; with a PEER, only theirs."""
    rpc, args = job.rpc, job.args
    live = [t for t in find_transfers(rpc, args.offer) if not TransferState(t["state"]).final]
    if args.name:
        peer = _peer_fingerprint(rpc, args.name)
        live = [t for t in live if t["peer"] == peer]
    if not live:
        raise CommandError("that offer is over already: nothing to cancel")
    for t in live:
        rpc.call("cancel_transfer", peer=t["peer"], offer=t["offer"])
    cancelled = TransferState.CANCELLED
    job.show({"offer": live[0]["offer"], cancelled: [t["peer"] for t in live]}, cancelled)
    return OK
