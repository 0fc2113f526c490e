"""`p2pim block|unblock [PEER]` and `p2pim mute|unmute [NAME]` (docs/security.md §15).

Without a name, `block` lists the blocked peers and `mute` the muted conversations.
"""

from __future__ import annotations

from typing import Any

from p2pim import terminal
from p2pim.api import ROOM_PREFIX
from p2pim.commands.names import GROUP, ROOM, conversation
from p2pim.oneshot import OK, USAGE, CommandError, Job


def block(job: Job) -> int:
    if job.args.peer is None:
        found: list[dict[str, Any]] = job.rpc.call("blocked")
        lines = [f"{terminal.clean(b['nick'] or '?')}  {b['fingerprint']}" for b in found]
        job.show(found, "\n".join(lines) or "nobody is blocked")
        return OK
    return _set_block(job, "block")


def unblock(job: Job) -> int:
    if job.args.peer is None:
        raise CommandError("name the peer to unblock (`p2pim block` lists them)", USAGE)
    return _set_block(job, "unblock")


def _set_block(job: Job, method: str) -> int:
    job.rpc.call(method, peer=job.args.peer)
    said = "blocked" if method == "block" else "unblocked"
    job.show({"peer": job.args.peer, "done": said}, said)
    return OK


def mute(job: Job) -> int:
    if job.args.name is None:
        found: list[str] = job.rpc.call("muted")
        rooms = {ROOM_PREFIX + r["room"]: r["name"] for r in job.rpc.call("rooms")}
        nicks = {p["fingerprint"]: p["nick"] for p in job.rpc.call("peers")}
        lines = [
            f"#{terminal.clean(rooms[c])}" if c in rooms else terminal.clean(nicks.get(c, c))
            for c in found
        ]
        job.show(found, "\n".join(lines) or "nothing is muted")
        return OK
    return _set_mute(job, "mute")


def unmute(job: Job) -> int:
    if job.args.name is None:
        raise CommandError("name the peer or room to unmute (`p2pim mute` lists them)", USAGE)
    return _set_mute(job, "unmute")


def _set_mute(job: Job, method: str) -> int:
    kind, name = conversation(job.rpc, job.args.name, groups=True)
    if kind == GROUP:
        raise CommandError("a contact group has no notifications of its own to mute", USAGE)
    job.rpc.call(method, **{"room" if kind == ROOM else "peer": name})
    said = "muted" if method == "mute" else "unmuted"
    job.show({"name": job.args.name, "done": said}, said)
    return OK
