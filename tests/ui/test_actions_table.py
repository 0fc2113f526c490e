"""The action tables agree with what names their entries: every slash command the parser
knows has a handler (and no handler is unreachable), and every key binding and palette
entry that runs `do(name)` names a key action."""

from __future__ import annotations

import re

from p2pim.ui import commands
from p2pim.ui.actions import table
from p2pim.ui.app import P2pimApp
from p2pim.ui.palette import ENTRIES

DO = re.compile(r"do\('(\w+)'\)")


def test_every_slash_command_has_a_handler() -> None:
    assert set(table.COMMANDS) == set(commands.COMMANDS)


def test_bindings_and_palette_entries_name_key_actions() -> None:
    actions = [b.action for b in P2pimApp.BINDINGS if hasattr(b, "action")]
    actions += [action for _, action, _ in ENTRIES]
    named = {m.group(1) for action in actions if (m := DO.fullmatch(action))}
    assert named <= set(table.KEY_ACTIONS)
    others = {action for action in actions if not DO.fullmatch(action)}
    assert all(hasattr(P2pimApp, f"action_{name}") for name in others), others


def test_where_a_command_works_is_said_once_per_kind() -> None:
    room, peer = "room:" + "ab" * 16, "f" * 64
    assert table.ROOM.target(room) == "ab" * 16
    assert table.ROOM.target(peer) is None
    assert table.PEER.target(peer) == peer
    assert table.PEER.target(room) is None
    assert table.CHAT.target("group:team") is None
    assert table.CHAT.target(None) is None
    needs = {name: c.needs for name, c in table.COMMANDS.items() if c.needs is not None}
    assert {n for n, w in needs.items() if w is table.ROOM} == {
        "invite",
        "join",
        "decline",
        "leave",
        "topic",
        "kick",
        "admin",
    }
    assert {n for n, w in needs.items() if w is not table.ROOM} == {"verify", "edit", "delete"}
