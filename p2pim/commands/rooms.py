"""`p2pim room list|create|invite|join|decline|leave|post|history`.  A room is named by
its name, or by its id or an id prefix (`p2pim room list` shows both)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p2pim import terminal
from p2pim.api import ROOM_PREFIX
from p2pim.commands.chat import show_messages
from p2pim.oneshot import OK, Job, text_argument


def _room(name: str) -> str:
    return name.removeprefix(ROOM_PREFIX)


def room_list(job: Job) -> int:
    found = job.rpc.call("rooms")
    job.show(found, room_table(found))
    return OK


def room_table(rooms: list[dict[str, Any]]) -> str:
    if not rooms:
        return "no rooms (`p2pim room create NAME` makes one)"
    rows = [("NAME", "ID", "YOU", "MEMBERS", "TOPIC")]
    for r in rooms:
        you = "member" if r["joined"] else "invited" if r["invited_us"] else "left"
        rows.append(
            (terminal.clean(r["name"]), r["room"][:8], you, str(len(r["members"])),
             terminal.clean(r["topic"]))
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[4]]).rstrip()
        for row in rows
    )


def room_create(job: Job) -> int:
    rpc, args = job.rpc, job.args
    room = rpc.call("create_room", name=args.room, topic=args.topic)["room"]
    for peer in args.invite:
        rpc.call("invite", room=room, peer=peer)
    job.show({"room": room, "invited": args.invite}, room)
    return OK


def room_invite(job: Job) -> int:
    for peer in job.args.peers:
        job.rpc.call("invite", room=_room(job.args.room), peer=peer)
    job.show({"invited": job.args.peers}, f"invited {len(job.args.peers)}")
    return OK


def _simple(method: str, said: str) -> Callable[[Job], int]:
    def command(job: Job) -> int:
        job.rpc.call(method, room=_room(job.args.room))
        job.show({"room": job.args.room, "done": said}, said)
        return OK

    command.__name__ = f"room_{method}"
    return command


room_join = _simple("join_room", "joined")
room_decline = _simple("decline_room", "declined")
room_leave = _simple("leave_room", "left")


def room_post(job: Job) -> int:
    text = text_argument(job.args.text)
    posted = job.rpc.call("post", room=_room(job.args.room), text=text)
    job.show({"id": posted["id"], "outcome": "posted"}, "posted")
    return OK


def room_history(job: Job) -> int:
    found = job.rpc.call("room_history", room=_room(job.args.room), limit=job.args.limit)
    show_messages(job, found, "no messages")
    return OK
