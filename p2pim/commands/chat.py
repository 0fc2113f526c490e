"""`p2pim send`, `history`, `search`, `export`, `peers`, `verify`, `status`, `doctor`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from p2pim import terminal
from p2pim.commands.names import GROUP, PEER, ROOM, conversation, with_nicks
from p2pim.names import PeerNameError, resolve_peer
from p2pim.oneshot import (
    FAILED,
    NO_NODE,
    OK,
    USAGE,
    CommandError,
    Job,
    deadline_after,
    running_node_client,
    text_argument,
)
from p2pim.profile import node_running

NO_STATUS = f"{NO_NODE}; start p2pim (or p2pim daemon) to set a status"


def send(job: Job) -> int:
    """To a peer, a contact group (one 1:1 message each) or a room we are in."""
    rpc, args = job.rpc, job.args
    text = text_argument(args.text)
    kind, name = conversation(rpc, args.name, groups=True, joined=True)
    if kind == ROOM:
        posted = rpc.call("post", room=name, text=text)
        job.show({"id": posted["id"], "outcome": "posted"}, "posted")
        return OK
    rpc.call("subscribe")  # before sending: a receipt may come at once
    if kind == GROUP:
        ids: dict[str, str] = rpc.call("send_to_group", name=name, text=text)["ids"]
    else:
        ids = {args.name: rpc.call("send", peer=name, text=text)["id"]}
    waiting = set(ids.values())
    deadline = deadline_after(args.wait)
    while waiting:
        event = rpc.wait_event(
            lambda e: e["type"] == "message_delivered" and e["message_id"] in waiting, deadline
        )
        if event is None:
            break
        waiting.discard(event["message_id"])
    outcome = {peer: "queued" if i in waiting else "delivered" for peer, i in ids.items()}
    if kind == PEER:
        delivered = not waiting
        said = "delivered" if delivered else f"queued (will be delivered when {name} is reachable)"
        job.show({"id": ids[args.name], "outcome": outcome[args.name]}, said)
    else:
        done = len(ids) - len(waiting)
        said = f"delivered to {done} of {len(ids)}" + ("; queued for the rest" if waiting else "")
        job.show({"ids": ids, "outcomes": outcome}, said)
    return OK


def history(job: Job) -> int:
    """The last messages with a peer, or in a room (`room:NAME` if a peer has its name)."""
    kind, name = conversation(job.rpc, job.args.name)
    if kind == ROOM:
        found = job.rpc.call("room_history", room=name, limit=job.args.limit)
    else:
        found = job.rpc.call("history", peer=name, limit=job.args.limit)
    show_messages(job, found, "no messages")
    return OK


def show_messages(job: Job, found: list[dict[str, Any]], none: str) -> None:
    found = with_nicks(job.rpc, found)
    job.show(found, "\n".join(terminal.message_line(m) for m in found) or none)


def search(job: Job) -> int:
    found = with_nicks(job.rpc, job.rpc.call("search", query=job.args.query, limit=job.args.limit))
    lines = [terminal.message_line(m, conversation=True) for m in found]
    job.show(found, "\n".join(lines) or "nothing found")
    return OK


def export(job: Job) -> int:
    """A whole conversation with a peer, or a room's, as JSON Lines or Markdown."""
    args = job.args
    kind, name = conversation(job.rpc, args.name)
    where = {"room": name} if kind == ROOM else {"peer": name}
    text: str = job.rpc.call("export", format=args.format, **where)["text"]
    if args.json:  # one JSON array of the JSON Lines' objects
        text = "[" + ",".join(line for line in text.split("\n") if line) + "]\n"
    if args.output is None:
        sys.stdout.write(text)
    else:  # a conversation is private: owner-only, like the database it came from
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    return OK


def peers(job: Job) -> int:
    if job.temporary:  # give known peers a moment to connect, adverts to arrive
        settle(job, job.args.wait)
    found = job.rpc.call("peers")
    job.show(found, terminal.peer_table(found))
    return OK


def settle(job: Job, wait: float) -> None:
    """Wait up to `wait` seconds until every pinned peer has a session or could not be
    reached (with mDNS the whole time: adverts may come at any time)."""
    rpc = job.rpc
    if job.discovery:
        time.sleep(wait)
        return
    deadline = deadline_after(wait)
    rpc.call("subscribe")
    while True:
        seen = len(rpc.events)  # before looking: what changes next wakes us
        targets = rpc.call("reachability")
        if all(_settled(p, targets) for p in rpc.call("peers")):
            return
        if not rpc.wait_events(seen, deadline):
            return


def _settled(peer: dict[str, Any], targets: list[dict[str, Any]]) -> bool:
    if peer["connected"] or peer["trust"] is None:
        return True
    mine = [t for t in targets if t["fingerprint"] == peer["fingerprint"]]
    return all(t["last_error"] is not None for t in mine)  # no address: nothing to try


def verify(job: Job) -> int:
    rpc, args = job.rpc, job.args
    number = rpc.call("safety_number", peer=args.name)["safety_number"]
    known = rpc.call("peers")
    try:  # the node's own rules, so this is the peer it just answered for
        fingerprint = resolve_peer(args.name, ((p["fingerprint"], p["nick"]) for p in known))
    except PeerNameError as exc:  # the peers changed in between
        raise CommandError(str(exc), USAGE) from None
    if args.yes:
        rpc.call("verify", peer=fingerprint)
        known = rpc.call("peers")
    peer = next(p for p in known if p["fingerprint"] == fingerprint)  # resolved among them
    me = rpc.call("identity")
    result = {"safety_number": number, "fingerprint": fingerprint, "trust": peer["trust"]}
    job.show(result, terminal.verify_text(number, peer, me, args.name, done=args.yes))
    return OK


def status(args: argparse.Namespace, profile: Path) -> int:
    """Show or set the running node's status (the node keeps it in the profile); never
    runs a node: a temporary one would announce it and be gone."""
    if not node_running(profile):
        if args.status is not None:
            raise CommandError(NO_STATUS)
        offline = {"status": "offline", "status_text": ""}
        print(json.dumps(offline) if args.json else f"offline ({NO_NODE})")
        return OK
    with running_node_client(profile) as rpc:
        if args.status is not None:
            rpc.call("set_status", status=args.status, text=args.text)
        me = rpc.call("identity")
    text = me["status"] + (f": {terminal.clean(me['status_text'])}" if me["status_text"] else "")
    print(json.dumps(me) if args.json else text)
    return OK


def doctor(job: Job) -> int:
    if job.temporary:  # a fresh node has not met anyone yet
        settle(job, job.args.wait)
    import trio  # the checks are async (p2pim.doctor): they run over a second connection

    from p2pim.client import connect
    from p2pim.doctor import Finding, diagnose, render
    from p2pim.oneshot import socket_path

    async def check() -> list[Finding]:
        async with connect(socket_path(job.profile)) as client:
            return await diagnose(client)

    findings = trio.run(check)
    job.show([dataclasses.asdict(f) for f in findings], render(findings))
    return FAILED if any(f.status == "problem" for f in findings) else OK
