"""Naming conversations the way people do on a command line: a peer (nick, fingerprint or
prefix: the node resolves it), a contact group, or a room by its name."""

from __future__ import annotations

from typing import Any

from p2pim.api import ROOM_PREFIX
from p2pim.blocking_client import BlockingClient
from p2pim.oneshot import USAGE, CommandError

ROOM, GROUP, PEER = "room", "group", "peer"


def conversation(
    rpc: BlockingClient, name: str, *, groups: bool = False, joined: bool = False
) -> tuple[str, str]:
    """(ROOM | GROUP | PEER, name for the node).  `room:NAME` and `group:NAME` say which
    (a room also by its id or an id prefix); a bare name that is a room we know (with
    `joined`, one we are in) or, with `groups`, a contact group is that, unless it is
    both; anything else names a peer."""
    kind, _, rest = name.partition(":")
    if rest and (kind == ROOM or (kind == GROUP and groups)):
        return kind, rest
    kinds = []
    if groups and name in rpc.call("groups"):
        kinds.append(GROUP)
    if any(r["name"] == name and (r["joined"] or not joined) for r in rpc.call("rooms")):
        kinds.append(ROOM)
    if len(kinds) > 1:
        raise CommandError(
            f"{name!r} is a group and a room: say group:{name} or room:{name}", USAGE
        )
    return (kinds[0], name) if kinds else (PEER, name)


def with_nicks(rpc: BlockingClient, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the node gives them, plus `author_nick` (ours for what we wrote), and
    `peer_nick` for a 1:1 conversation or `room_name` for a room's."""
    me = rpc.call("identity")
    nicks = {p["fingerprint"]: p["nick"] for p in rpc.call("peers")}
    nicks[me["fingerprint"]] = me["nick"]
    rooms: dict[str, str] = {}
    if any(m["peer"].startswith(ROOM_PREFIX) for m in messages):
        rooms = {ROOM_PREFIX + r["room"]: r["name"] for r in rpc.call("rooms")}
    for m in messages:
        m["author_nick"] = nicks.get(m["author"], "")
        if m["peer"].startswith(ROOM_PREFIX):
            m["room_name"] = rooms.get(m["peer"], "")
        else:
            m["peer_nick"] = nicks.get(m["peer"], "")
    return messages
