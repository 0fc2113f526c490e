"""Block and mute in the terminal UI, under Pilot, against two real nodes on loopback.

Mute: a muted person's or room's messages still arrive, are stored and shown, but raise
no toast and no bell (a control message before muting does both).  Block: `/block` in a
conversation moves the person to the sidebar's Blocked list, and what they send then is
neither shown nor stored; `/unblock NAME` brings them back and their messages arrive.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from textual.pilot import Pilot

from p2pim.api import ROOM_PREFIX
from p2pim.ui.app import P2pimApp
from p2pim.ui.conversation import Conversation
from tests.support.tui_cast import (
    Cast,
    connect,
    fp,
    open_conversation,
    received,
    say,
    sidebar_text,
    toasts,
    type_line,
)
from tests.support.tui_harness import UiThread


def count_bells(ui: UiThread) -> Callable[[], int]:
    """Count the app's bells (the terminal bell is what a muted conversation must not ring)."""
    rung = [0]
    original = ui.app.bell

    def bell() -> None:
        rung[0] += 1
        original()

    ui.app.bell = bell  # type: ignore[method-assign]
    return lambda: rung[0]


def close_conversation(ui: UiThread) -> None:
    """Nothing open: every conversation counts as "elsewhere" for alerts."""

    async def go(pilot: Pilot[None]) -> None:
        pilot.app.open_conversation(None)

    ui.do(go)
    ui.wait_until(lambda app: app.model.current is None and app.query_one(Conversation).key is None)


def send_text(sender: UiThread, to: UiThread, text: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        await sender.app.call(sender.app.node.send_text, fp(to), text)

    sender.do(go)


def alerted(app: P2pimApp, text: str) -> bool:
    return any(text in toast for toast in toasts(app))


def test_a_muted_person_or_room_still_arrives_but_raises_no_toast_or_bell(cast: Cast) -> None:
    me, nuisance = cast.start("me"), cast.start("nuisance")
    connect(me, nuisance)
    bells = count_bells(me)
    # The control: not muted, a message to a conversation that is not open alerts.
    send_text(nuisance, me, "first")
    me.wait_until(lambda app: alerted(app, "nuisance: first"))
    assert bells() == 1

    open_conversation(me, fp(nuisance))
    type_line(me, "/mute")
    me.wait_until(lambda app: "nuisance (muted)" in sidebar_text(app))
    assert me.app.model.muted == {fp(nuisance)}
    close_conversation(me)
    send_text(nuisance, me, "second")
    me.wait_until(lambda app: "second" in received(me, nuisance))  # arrived and shown
    me.wait_until(lambda app: app.model.contacts[fp(nuisance)].unread >= 1)
    assert not alerted(me.app, "nuisance: second")
    assert bells() == 1

    # A room, muted the same way.
    type_line(nuisance, "/room quiet corner")
    room = nuisance.wait_until(
        lambda app: next((r.room for r in app.model.rooms.values() if r.name == "quiet corner"), "")
    )
    nuisance.wait_until(lambda app: app.model.current == ROOM_PREFIX + room)
    type_line(nuisance, "/invite me")
    me.wait_until(lambda app: room in app.model.rooms and app.model.rooms[room].invited_us)
    open_conversation(me, ROOM_PREFIX + room)
    me.wait_until(lambda app: len(app.screen_stack) > 1)  # the invitation asks at once
    me.do(lambda pilot: pilot.press("escape"))  # later: join with the slash command
    type_line(me, "/join")
    me.wait_until(lambda app: app.model.rooms[room].joined)
    rung = bells()  # the invitation rang: it is not a muted conversation's message
    type_line(me, "/mute")
    me.wait_until(lambda app: "quiet corner (muted)" in sidebar_text(app))
    close_conversation(me)
    say(nuisance, "room news")
    me.wait_until(
        lambda app: any(
            line.text == "room news" for line in app.model.conversations.get(ROOM_PREFIX + room, [])
        )
    )
    assert not alerted(me.app, "room news")
    assert bells() == rung
    # Muting lasts: the node keeps it, and an unmute brings alerts back.
    assert sorted(me.app.node.muted()) == sorted([fp(nuisance), ROOM_PREFIX + room])
    open_conversation(me, fp(nuisance))
    type_line(me, "/unmute")
    me.wait_until(lambda app: "nuisance (muted)" not in sidebar_text(app))
    close_conversation(me)
    send_text(nuisance, me, "third")
    me.wait_until(lambda app: alerted(app, "nuisance: third"))
    assert bells() == rung + 1


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def test_slash_block_hides_the_person_and_what_they_send_until_unblocked(
    cast: Cast, tmp_path: Path
) -> None:
    me, nuisance = cast.start("me"), cast.start("nuisance")
    connect(me, nuisance)
    open_conversation(me, fp(nuisance))
    type_line(me, "/block")
    me.wait_until(lambda app: "✕ nuisance" in sidebar_text(app))
    people = sidebar_text(me.app).partition("Blocked")[0]
    assert "nuisance" not in people
    assert me.app.node.is_blocked(fp(nuisance))
    assert alerted(me.app, "Blocked nuisance")

    # What the nuisance sends now is acknowledged (its side reads "delivered") and dropped.
    open_conversation(nuisance, fp(me))
    say(nuisance, "can you hear me?")
    nuisance.wait_until(
        lambda app: (
            [(x.text, x.mark) for x in app.model.conversations[fp(me)]][-1:]
            == [("can you hear me?", "delivered")]
        )
    )
    assert "can you hear me?" not in received(me, nuisance)
    assert not alerted(me.app, "can you hear me?")
    db = tmp_path / "me" / "p2pim.sqlite"
    assert rows(db, "SELECT count(*) FROM messages WHERE body = 'can you hear me?'") == [(0,)]

    # /unblock NAME from anywhere: the person is back in People, new messages arrive.
    close_conversation(me)
    type_line(me, "/unblock nuisance")
    me.wait_until(lambda app: "✕ nuisance" not in sidebar_text(app))
    assert "nuisance" in sidebar_text(me.app).partition("Rooms")[0]
    say(nuisance, "hello again")
    me.wait_until(lambda app: "hello again" in received(me, nuisance))
    assert rows(db, "SELECT count(*) FROM messages WHERE body = 'hello again'") == [(1,)]
