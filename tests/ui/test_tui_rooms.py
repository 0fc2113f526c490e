"""Rooms in the terminal UI, under Pilot against real nodes on loopback (127.0.0.1):

- Ctrl+N asks for a name, a topic and the people to invite; Create works by click, by
  Enter walking the form, and by Enter on the focused button; Cancel and Escape make
  nothing; a nameless room is refused in the dialog, which stays open;
- system lines ("bob joined", "alice changed the topic to …") show in the room, live and
  after it is reopened, in the log's order, apart from the messages;
- /edit and /delete act on your last post in a room, for every member.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label, SelectionList

from p2pim.api import ROOM_PREFIX
from p2pim.ui.app import P2pimApp
from p2pim.ui.composer import Composer
from p2pim.ui.conversation import Conversation, MessageView, SystemLine
from p2pim.ui.model import Room
from p2pim.ui.new_room import NewRoom
from tests.support.nodes import loopback_node
from tests.support.tui_cast import fp
from tests.support.tui_harness import UiThread

NO_ROOM = Room("", "")

# ---- the cast -----------------------------------------------------------------------------


@pytest.fixture
def people(tmp_path: Path) -> Iterator[dict[str, UiThread]]:
    """alice, bob and carol, each in a UI of their own, each having met the others (so
    every one of them knows every nick a room line names)."""
    uis: dict[str, UiThread] = {}
    try:
        for nick in ("alice", "bob", "carol"):
            uis[nick] = UiThread(P2pimApp(loopback_node(nick, tmp_path / nick)))
        for dialer, listener in (("alice", "bob"), ("alice", "carol"), ("bob", "carol")):
            connect(uis[dialer], uis[listener])
        yield uis
    finally:
        for ui in reversed(list(uis.values())):
            ui.close()


def connect(dialer: UiThread, listener: UiThread) -> None:
    port = listener.app.node.port
    assert port is not None

    async def add(pilot: Pilot[None]) -> None:
        await dialer.app.call(dialer.app.node.add_peer, "127.0.0.1", port)

    dialer.do(add)
    for ui, other in ((dialer, listener), (listener, dialer)):
        ui.wait_until(
            lambda app, other=other: (  # type: ignore[misc]
                fp(other) in app.model.contacts and app.model.contacts[fp(other)].trust
            )
        )


def press(ui: UiThread, *keys: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        await pilot.press(*keys)

    ui.do(go)


def click(ui: UiThread, selector: str, offset: tuple[int, int] = (0, 0)) -> None:
    """A mouse click; `offset` from the widget's top-left corner (default: its middle)."""

    async def go(pilot: Pilot[None]) -> None:
        if offset == (0, 0):
            assert await pilot.click(selector), f"nothing to click at {selector}"
        else:
            assert await pilot.click(selector, offset=offset), f"nothing at {selector}"

    ui.do(go)


def say(ui: UiThread, text: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        composer = pilot.app.query_one(Composer)
        composer.focus()
        composer.insert(text)
        await pilot.press("enter")

    ui.do(go)


def open_room(ui: UiThread, room: str) -> None:
    key = ROOM_PREFIX + room

    async def go(pilot: Pilot[None]) -> None:
        pilot.app.open_conversation(key)

    ui.do(go)
    ui.wait_until(lambda app: app.query_one(Conversation).key == key)


def room_named(ui: UiThread, name: str) -> str:
    return ui.wait_until(
        lambda app: next((r.room for r in app.model.rooms.values() if r.name == name), "")
    )


def dialog(app: P2pimApp) -> NewRoom | None:
    return app.screen if isinstance(app.screen, NewRoom) else None


def open_dialog(ui: UiThread) -> None:
    press(ui, "ctrl+n")
    ui.wait_until(lambda app: dialog(app) is not None and dialog(app).is_mounted)  # type: ignore[union-attr]


def conversation(app: P2pimApp) -> Conversation:
    return app.screen_stack[0].query_one(Conversation)  # under any dialog that is up


def rows(app: P2pimApp) -> list[str]:
    """The rows of the open conversation as they read: system lines marked with '·'."""
    view = conversation(app)
    return [str(w.render()) for w in view.query("MessageView, SystemLine")]


def system_rows(app: P2pimApp) -> list[str]:
    return [str(w.render()).split(" · ", 1)[1] for w in conversation(app).query(SystemLine)]


def messages(app: P2pimApp) -> list[str]:
    return [str(w.render()).split(": ", 1)[1] for w in conversation(app).query(MessageView)]


def join(ui: UiThread, room: str) -> None:
    """The invitee joins through its node (the invitation dialog is tested elsewhere)."""

    async def go(pilot: Pilot[None]) -> None:
        await pilot.app.call(pilot.app.node.join_room, room)

    ui.do(go)
    ui.wait_until(lambda app: app.model.rooms[room].joined)


def invited(ui: UiThread, room: str) -> tuple[str, ...]:
    return ui.wait_until(lambda app: room in app.model.rooms and app.model.rooms[room].invited)


# ---- Ctrl+N: name, topic, members -----------------------------------------------------------


def test_create_by_click_invites_only_the_people_picked(people: dict[str, UiThread]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    open_dialog(alice)
    screen = dialog(alice.app)
    assert screen is not None
    picker = screen.query_one("#members", SelectionList)
    assert [str(picker.get_option_at_index(i).prompt) for i in range(picker.option_count)] == [
        "bob",
        "carol",
    ]
    press(alice, *"standup")
    click(alice, "#topic")
    press(alice, *"daily at 10")
    click(alice, "#members", offset=(4, 1))  # its first row, under the border: bob
    alice.wait_until(lambda app: list(picker.selected) == [fp(bob)])
    click(alice, "#ok")
    alice.wait_until(lambda app: dialog(app) is None)
    room = room_named(alice, "standup")
    assert alice.app.is_running
    assert alice.app.model.current == ROOM_PREFIX + room
    assert alice.app.model.rooms[room].topic == "daily at 10"
    assert invited(alice, room) == (fp(bob),)
    bob.wait_until(lambda app: room in app.model.rooms and app.model.rooms[room].invited_us)
    assert room not in carol.app.model.rooms  # not picked: never told


def test_create_with_enter_walks_the_form_and_picks_with_space(
    people: dict[str, UiThread],
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    open_dialog(alice)
    # name, Enter -> topic, Enter -> the list, Down to carol, Space picks, Enter creates
    press(alice, *"retro", "enter", *"friday", "enter", "down", "space", "enter")
    alice.wait_until(lambda app: dialog(app) is None)
    room = room_named(alice, "retro")
    assert alice.app.model.rooms[room].topic == "friday"
    assert invited(alice, room) == (fp(carol),)
    carol.wait_until(lambda app: room in app.model.rooms and app.model.rooms[room].invited_us)
    assert room not in bob.app.model.rooms


def test_enter_on_the_focused_create_button_creates_the_room(
    people: dict[str, UiThread],
) -> None:
    alice = people["alice"]
    open_dialog(alice)
    press(alice, *"lunch")

    async def focus_create(pilot: Pilot[None]) -> None:
        screen = dialog(pilot.app)
        assert screen is not None
        screen.query_one("#ok").focus()

    alice.do(focus_create)
    press(alice, "enter")
    alice.wait_until(lambda app: dialog(app) is None)
    room = room_named(alice, "lunch")
    assert alice.app.model.rooms[room].invited == ()
    assert alice.app.is_running


def test_cancel_escape_and_a_missing_name_make_no_room(people: dict[str, UiThread]) -> None:
    alice = people["alice"]
    open_dialog(alice)
    press(alice, *"nope")
    click(alice, "#cancel")
    alice.wait_until(lambda app: dialog(app) is None)
    open_dialog(alice)
    press(alice, *"nope either", "escape")
    alice.wait_until(lambda app: dialog(app) is None)
    open_dialog(alice)
    press(alice, *"not this one")

    async def focus_cancel(pilot: Pilot[None]) -> None:
        screen = dialog(pilot.app)
        assert screen is not None
        screen.query_one("#cancel").focus()

    alice.do(focus_cancel)
    press(alice, "enter")  # Enter on the focused Cancel cancels, it does not create
    alice.wait_until(lambda app: dialog(app) is None)

    open_dialog(alice)
    click(alice, "#ok")  # no name: refused in the dialog, which stays open
    screen = alice.wait_until(
        lambda app: (
            (s := dialog(app))
            and "needs a name" in str(s.query_one("#problem", Label).render())
            and s
        )
    )
    assert isinstance(screen, NewRoom)
    assert screen.focused is screen.query_one("#name", Input)
    press(alice, *"late", "enter", "enter", "enter")  # now with a name: created
    alice.wait_until(lambda app: dialog(app) is None)
    assert [r.name for r in alice.app.model.rooms.values()] == ["late"]
    assert alice.app.is_running


def test_the_palette_entry_opens_the_same_dialog(people: dict[str, UiThread]) -> None:
    from textual.command import CommandList, CommandPalette

    alice, bob = people["alice"], people["bob"]
    press(alice, "ctrl+p")
    alice.wait_until(lambda app: isinstance(app.screen, CommandPalette))
    press(alice, *"new room")

    def first_hit(app: P2pimApp) -> str:
        hits = app.screen.query(CommandList)
        if not hits or not hits.first().option_count:
            return ""
        return str(hits.first().get_option_at_index(0).prompt)

    assert "New room" in alice.wait_until(first_hit)
    press(alice, "enter")
    alice.wait_until(lambda app: dialog(app) is not None)
    press(alice, *"from the palette", "enter", "enter", "space", "enter")
    room = room_named(alice, "from the palette")
    assert invited(alice, room) == (fp(bob),)


def test_the_dialog_without_anyone_to_pick_still_creates(tmp_path: Path) -> None:
    ui = UiThread(P2pimApp(loopback_node("solo", tmp_path / "solo")))
    try:
        open_dialog(ui)
        screen = dialog(ui.app)
        assert screen is not None
        assert not screen.query("#members")
        press(ui, *"alone", "enter", *"just me", "enter")  # the topic's Enter creates
        ui.wait_until(lambda app: dialog(app) is None)
        room = room_named(ui, "alone")
        assert ui.app.model.rooms[room].topic == "just me"
    finally:
        ui.close()


# ---- system lines ---------------------------------------------------------------------------


def test_system_lines_show_live_and_after_reopening_in_log_order(
    people: dict[str, UiThread],
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    open_dialog(alice)
    press(alice, *"planning", "enter", *"q4", "enter", "space", "down", "space", "enter")
    room = room_named(alice, "planning")
    assert set(invited(alice, room)) == {fp(bob), fp(carol)}
    alice.wait_until(lambda app: conversation(app).key == ROOM_PREFIX + room)
    created = [
        "alice created the room #planning",
        "alice changed the topic to “q4”",
        "alice invited bob",
        "alice invited carol",
    ]
    alice.wait_until(lambda app: system_rows(app) == created)

    # Each step waits until its actor holds what came before: concurrent operations
    # tie on Lamport time and go by id, an order no test can foresee.
    bob.wait_until(lambda app: fp(carol) in app.model.rooms.get(room, NO_ROOM).invited)
    join(bob, room)  # live: each line is appended as it happens
    alice.wait_until(lambda app: system_rows(app)[-1:] == ["bob joined"])
    say(alice, "welcome bob")
    alice.wait_until(lambda app: messages(app) == ["welcome bob"])
    say(alice, "/topic Q4 roadmap")
    alice.wait_until(
        lambda app: system_rows(app)[-1:] == ["alice changed the topic to “Q4 roadmap”"]
    )
    carol.wait_until(lambda app: app.model.rooms.get(room, NO_ROOM).topic == "Q4 roadmap")
    join(carol, room)
    alice.wait_until(lambda app: system_rows(app)[-1:] == ["carol joined"])
    say(alice, "/kick carol")
    alice.wait_until(lambda app: system_rows(app)[-1:] == ["alice removed carol"])
    live = rows(alice.app)
    assert [r.split(" ", 1)[1] for r in live] == [
        "· alice created the room #planning",
        "· alice changed the topic to “q4”",
        "· alice invited bob",
        "· alice invited carol",
        "· bob joined",
        "alice: welcome bob",
        "· alice changed the topic to “Q4 roadmap”",
        "· carol joined",
        "· alice removed carol",
    ]
    # Bob reads the same lines in the same places, and after reopening too: they come
    # from the room's log, not from what happened to be seen live.
    open_room(bob, room)
    bob.wait_until(lambda app: rows(app) == live)

    async def away_and_back(pilot: Pilot[None]) -> None:
        pilot.app.open_conversation(fp(bob))

    alice.do(away_and_back)
    alice.wait_until(lambda app: conversation(app).key == fp(bob))
    open_room(alice, room)
    alice.wait_until(lambda app: rows(app) == live)
    assert len(alice.app.query(MessageView)) == 1  # system lines are not messages
    assert alice.app.model.rooms[room].unread == 0


# ---- /edit and /delete in a room ------------------------------------------------------------


def test_edit_and_delete_your_last_post_in_a_room(people: dict[str, UiThread]) -> None:
    alice, bob = people["alice"], people["bob"]
    open_dialog(alice)
    press(alice, *"ops", "enter", "enter", "space", "enter")
    room = room_named(alice, "ops")
    join(bob, room)
    open_room(bob, room)
    alice.wait_until(lambda app: system_rows(app)[-1:] == ["bob joined"])
    say(alice, "deploy at 5")
    bob.wait_until(lambda app: messages(app) == ["deploy at 5"])  # else the two may tie
    say(bob, "ok")
    alice.wait_until(lambda app: messages(app) == ["deploy at 5", "ok"])
    say(alice, "/edit deploy at 6")  # her last post, not bob's later one
    for ui in (alice, bob):
        ui.wait_until(lambda app: messages(app) == ["deploy at 6 (edited)", "ok"])
    say(bob, "/edit okay")
    for ui in (alice, bob):
        ui.wait_until(lambda app: messages(app) == ["deploy at 6 (edited)", "okay (edited)"])
    say(alice, "/delete")
    for ui in (alice, bob):
        ui.wait_until(lambda app: messages(app) == ["message deleted", "okay (edited)"])
    say(alice, "/delete")  # nothing of hers is left to delete
    alice.wait_until(
        lambda app: any("sent nothing here" in str(n.message) for n in app._notifications)
    )
    assert alice.app.is_running
    assert bob.app.is_running
