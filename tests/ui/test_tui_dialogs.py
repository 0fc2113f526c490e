"""Every button of every dialog, pressed as a person presses it: with the mouse
(`pilot.click`) and with the keyboard (focus, then Enter), in UIs on real nodes
(127.0.0.1, no mDNS).  After each press the app still runs and the button did what it
says: verify, pairing, offer, confirm, ask (status, new room, broadcast), settings,
search, send files, contact group and invitation.

Before the dialogs shared one button handler, the first button pressed in Verify, Confirm
or the offer dialog ended the app (`ScreenStackError`: the screen was dismissed twice).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TypeVar

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Input, OptionList, SelectionList, Static

from p2pim.api import ROOM_PREFIX
from p2pim.settings import FILE, Settings
from p2pim.ui.app import P2pimApp
from p2pim.ui.conversation import Conversation
from p2pim.ui.dialogs import Ask, Confirm, Dialog, PickPeers
from p2pim.ui.invitation import InvitationScreen
from p2pim.ui.offer import OfferScreen
from p2pim.ui.picker import FilePicker
from p2pim.ui.search import SearchScreen
from p2pim.ui.settings_screen import SettingsScreen
from p2pim.ui.transfers import TransferRow, TransfersScreen
from p2pim.ui.verify import PairingCodeScreen, VerifyScreen
from tests.support.nodes import loopback_node
from tests.support.tui_cast import (
    Cast,
    card_text,
    files_under,
    fp,
    open_conversation,
    payload,
    received,
    room_id,
    say,
    screen_text,
    sidebar_text,
    toasts,
    type_line,
    wait_received,
)
from tests.support.tui_harness import UiThread

HOW = pytest.mark.parametrize("how", ["click", "enter"])
S = TypeVar("S", bound=Screen[object])


# ---- pressing buttons ---------------------------------------------------------------------


def dialog(ui: UiThread, kind: type[S]) -> S:
    """Wait until a `kind` screen is on top; that screen."""
    return ui.wait_until(lambda app: app.screen if isinstance(app.screen, kind) else None)


CLICKABLE_WAIT = 15  # seconds; a toast lasts at most 8


def under_pointer(pilot: Pilot[None], button: Button) -> bool:
    """The button is what a click at its centre would reach."""
    region = button.region
    if not region.area:
        return False
    widget, _ = pilot.app.get_widget_at(*region.center)
    return widget is button


def press_button(ui: UiThread, button_id: str, how: str) -> None:
    """Press a button of the dialog on top, with the mouse or with focus + Enter; then
    wait until that dialog is gone and check that the app still runs."""
    screen = ui.app.screen

    async def go(pilot: Pilot[None]) -> None:
        button = screen.query_one(f"#{button_id}", Button)
        if how == "click":
            # As a person does: the mouse goes there once the button shows (laid out, and
            # not under a notification's toast that a busy machine is slow to clear).
            deadline = time.monotonic() + CLICKABLE_WAIT
            while not under_pointer(pilot, button) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert await pilot.click(button), f"the click missed the {button_id} button"
        else:
            button.focus()
            await pilot.pause()
            assert screen.focused is button
            await pilot.press("enter")

    ui.do(go)
    ui.wait_until(lambda app: screen not in app.screen_stack)
    assert ui.app.is_running
    assert ui.thread.is_alive()


def enter_text(ui: UiThread, field_id: str, text: str) -> None:
    """Empty a field of the dialog on top and type `text` into it (no Enter)."""

    async def go(pilot: Pilot[None]) -> None:
        field = pilot.app.screen.query_one(f"#{field_id}", Input)
        field.focus()
        await pilot.pause()
        field.value = ""
        await pilot.press(*text)

    ui.do(go)


def keys(ui: UiThread, *pressed: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        await pilot.press(*pressed)

    ui.do(go)


def trust(ui: UiThread, other: UiThread) -> str | None:
    contact = ui.app.model.contacts.get(fp(other))
    return contact.trust if contact else None


# ---- the structure: one handler, every button in a table ----------------------------------


def all_dialogs() -> list[type[Dialog]]:
    found: list[type[Dialog]] = []
    todo: list[type[Dialog]] = [Dialog]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_no_dialog_has_a_button_handler_of_its_own() -> None:
    """Textual runs `on_button_pressed` of every class in the MRO: a second one dismissed
    the dialog a second time and popped the main screen."""
    dialogs = all_dialogs()
    assert {OfferScreen, VerifyScreen, Confirm, InvitationScreen} <= set(dialogs)
    assert [cls.__name__ for cls in dialogs if "on_button_pressed" in vars(cls)] == ["Dialog"]


# ---- verify and pairing -------------------------------------------------------------------


@HOW
def test_verify_close_then_they_match(pair: tuple[UiThread, UiThread], how: str) -> None:
    alice, bob = pair
    open_conversation(alice, fp(bob))
    keys(alice, "ctrl+r")
    dialog(alice, VerifyScreen)
    press_button(alice, "close", how)
    assert trust(alice, bob) == "unverified"

    keys(alice, "ctrl+r")
    dialog(alice, VerifyScreen)
    press_button(alice, "verified", how)
    alice.wait_until(lambda app: trust(alice, bob) == "verified")
    alice.wait_until(lambda app: "● bob ✔" in sidebar_text(app))
    assert trust(bob, alice) == "unverified"  # comparing numbers is one side's own word


@HOW
def test_pairing_by_code_from_two_uis_verifies_both(
    pair: tuple[UiThread, UiThread], how: str
) -> None:
    """Bob shows a code (Verify → Show code), alice types it (Verify → Enter code)."""
    alice, bob = pair
    open_conversation(bob, fp(alice))
    keys(bob, "ctrl+r")
    dialog(bob, VerifyScreen)
    press_button(bob, "show-code", how)
    shown = dialog(bob, PairingCodeScreen)
    code = shown.code
    text = bob.wait_until(
        lambda app: "\n".join(s.text for s in app.screen._compositor.render_strips())
    )
    assert code in text
    assert f"port {bob.app.node.port}" in text  # what alice types if she never reached him

    open_conversation(alice, fp(bob))
    keys(alice, "ctrl+r")
    dialog(alice, VerifyScreen)
    press_button(alice, "enter-code", how)
    ask = dialog(alice, Ask)
    port = bob.app.node.port
    assert ask.query_one("#field-1", Input).value == f"127.0.0.1:{port}"  # where she reached him
    enter_text(alice, "field-0", code)
    press_button(alice, "ok", how)

    alice.wait_until(lambda app: trust(alice, bob) == "verified")
    bob.wait_until(lambda app: trust(bob, alice) == "verified")
    alice.wait_until(lambda app: any("Paired: bob is verified" in t for t in toasts(app)))
    # Bob's code closes by itself once used, naming who paired.
    bob.wait_until(lambda app: shown not in app.screen_stack)
    bob.wait_until(lambda app: any("Paired: alice is verified" in t for t in toasts(app)))
    assert bob.app.is_running
    assert alice.app.is_running


def test_pairing_with_a_wrong_code_fails_plainly(pair: tuple[UiThread, UiThread]) -> None:
    """A wrong code: both sides are told, nobody is verified, the shown code is spent and
    its dialog closes; both apps go on."""
    alice, bob = pair
    open_conversation(bob, fp(alice))
    keys(bob, "ctrl+r")
    dialog(bob, VerifyScreen)
    press_button(bob, "show-code", "enter")
    shown = dialog(bob, PairingCodeScreen)
    wrong = "000-000" if shown.code != "000-000" else "000-001"

    open_conversation(alice, fp(bob))
    keys(alice, "ctrl+r")
    dialog(alice, VerifyScreen)
    press_button(alice, "enter-code", "enter")
    dialog(alice, Ask)
    enter_text(alice, "field-0", wrong)
    press_button(alice, "ok", "enter")
    alice.wait_until(lambda app: any("wrong code" in t for t in toasts(app, "error")))
    bob.wait_until(lambda app: shown not in app.screen_stack)
    bob.wait_until(lambda app: any("Pairing failed" in t for t in toasts(app, "error")))
    assert trust(alice, bob) == "unverified"
    assert trust(bob, alice) == "unverified"
    assert alice.app.is_running
    assert bob.app.is_running


@HOW
def test_pairing_dialogs_close_and_cancel(pair: tuple[UiThread, UiThread], how: str) -> None:
    alice, bob = pair
    open_conversation(bob, fp(alice))
    keys(bob, "ctrl+r")
    dialog(bob, VerifyScreen)
    press_button(bob, "show-code", how)
    dialog(bob, PairingCodeScreen)
    press_button(bob, "close", how)

    open_conversation(alice, fp(bob))
    keys(alice, "ctrl+r")
    dialog(alice, VerifyScreen)
    press_button(alice, "enter-code", how)
    dialog(alice, Ask)
    enter_text(alice, "field-0", "123-456")
    press_button(alice, "cancel", how)
    assert trust(alice, bob) == "unverified"
    assert trust(bob, alice) == "unverified"
    assert toasts(alice.app, "error") == []  # Cancel tried nothing


# ---- the file offer -----------------------------------------------------------------------


def offer_dialog(alice: UiThread, bob: UiThread, source: Path) -> OfferScreen:
    open_conversation(alice, fp(bob))
    type_line(alice, f"/send ~/{source.name}")
    return dialog(bob, OfferScreen)


@HOW
def test_offer_accept_saves_the_file(
    pair: tuple[UiThread, UiThread], tmp_path: Path, how: str
) -> None:
    alice, bob = pair
    source = tmp_path / "accept-me.bin"
    data = payload(source, 300_000)
    screen = offer_dialog(alice, bob, source)
    offer = screen.offer.offer
    if how == "enter":  # Enter at once: the focused button is Accept
        assert screen.focused is screen.query_one("#accept", Button)
        keys(bob, "enter")
        bob.wait_until(lambda app: screen not in app.screen_stack)
        assert bob.app.is_running
    else:
        press_button(bob, "accept", how)
    transfer = bob.app.model.transfers[(fp(alice), offer)]
    bob.wait_until(lambda app: transfer.state == "completed")
    (saved,) = transfer.saved_as
    assert hashlib.sha256(Path(saved).read_bytes()).digest() == hashlib.sha256(data).digest()
    alice.wait_until(lambda app: "completed" in card_text(app, offer))


@HOW
def test_offer_decline_writes_nothing(
    pair: tuple[UiThread, UiThread], tmp_path: Path, how: str
) -> None:
    alice, bob = pair
    source = tmp_path / "decline-me.bin"
    payload(source, 50_000)
    offer = offer_dialog(alice, bob, source).offer.offer
    press_button(bob, "decline", how)
    alice.wait_until(lambda app: "declined" in card_text(app, offer))
    assert bob.app.model.transfers[(fp(alice), offer)].state == "declined"
    assert files_under(bob.app.node.config.download_dir) == []


@HOW
def test_offer_later_keeps_it_open_for_f3(
    pair: tuple[UiThread, UiThread], tmp_path: Path, how: str
) -> None:
    alice, bob = pair
    source = tmp_path / "later.bin"
    payload(source, 50_000)
    offer = offer_dialog(alice, bob, source).offer.offer
    press_button(bob, "later", how)
    key = (fp(alice), offer)
    assert key in bob.app.model.offers
    assert bob.app.model.transfers[key].state == "offered"
    assert "offered" in card_text(alice.app, offer) or "waiting" in card_text(alice.app, offer)


# ---- the offer dialog follows the offer (defect 3) ----------------------------------------


def test_an_offer_accepted_in_f3_closes_its_dialog(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    source = tmp_path / "both-ways.bin"
    data = payload(source, 200_000)
    screen = offer_dialog(alice, bob, source)
    offer = screen.offer.offer
    keys(bob, "f3")  # over the offer dialog
    transfers = dialog(bob, TransfersScreen)

    async def accept_in_f3(pilot: Pilot[None]) -> None:
        (row,) = [r for r in transfers.query(TransferRow) if r.transfer.offer == offer]
        row.focus()
        await pilot.pause()
        await pilot.press("a")

    bob.do(accept_in_f3)
    transfer = bob.app.model.transfers[(fp(alice), offer)]
    bob.wait_until(lambda app: transfer.state == "completed")
    keys(bob, "escape")  # back from F3: the offer dialog is not asking any more
    bob.wait_until(lambda app: screen not in app.screen_stack)
    assert len(bob.app.screen_stack) == 1
    assert bob.app.is_running
    bob.wait_until(lambda app: any("alice's offer was accepted" in t for t in toasts(app)))
    (saved,) = transfer.saved_as
    assert hashlib.sha256(Path(saved).read_bytes()).digest() == hashlib.sha256(data).digest()


def test_an_offer_declined_in_f3_closes_its_dialog(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    source = tmp_path / "not-wanted.bin"
    payload(source, 20_000)
    screen = offer_dialog(alice, bob, source)
    offer = screen.offer.offer
    keys(bob, "f3")
    transfers = dialog(bob, TransfersScreen)

    async def decline_in_f3(pilot: Pilot[None]) -> None:
        (row,) = [r for r in transfers.query(TransferRow) if r.transfer.offer == offer]
        row.focus()
        await pilot.pause()
        await pilot.press("d")

    bob.do(decline_in_f3)
    alice.wait_until(lambda app: "declined" in card_text(app, offer))
    keys(bob, "escape")
    bob.wait_until(lambda app: screen not in app.screen_stack)
    bob.wait_until(lambda app: any("alice's offer was declined" in t for t in toasts(app)))
    assert len(bob.app.screen_stack) == 1
    assert bob.app.is_running
    assert files_under(bob.app.node.config.download_dir) == []


def test_an_offer_cancelled_by_the_sender_closes_its_dialog(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    source = tmp_path / "withdrawn.bin"
    payload(source, 50_000)
    screen = offer_dialog(alice, bob, source)
    offer = screen.offer.offer

    async def withdraw(pilot: Pilot[None]) -> None:
        await pilot.app.call(pilot.app.node.cancel_transfer, fp(bob), offer)

    alice.do(withdraw)
    bob.wait_until(lambda app: screen not in app.screen_stack)
    bob.wait_until(lambda app: any("alice's offer was cancelled" in t for t in toasts(app)))
    assert bob.app.is_running
    assert len(bob.app.screen_stack) == 1


def test_an_expired_offer_closes_its_dialog(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    source = tmp_path / "short-lived.bin"
    payload(source, 10_000)

    async def offer_briefly(pilot: Pilot[None]) -> str:
        offer: str = await pilot.app.call(
            pilot.app.node.send_files, [fp(bob)], [str(source)], ttl=3
        )
        return offer

    offer = alice.do(offer_briefly)
    # The toast comes from the dialog as it closes itself (however briefly it was open).
    bob.wait_until(lambda app: any("alice's offer expired" in t for t in toasts(app)), 20)
    assert not isinstance(bob.app.screen, OfferScreen)
    assert bob.app.is_running
    assert bob.app.model.transfers[(fp(alice), offer)].state == "expired"


# ---- confirm, ask ---------------------------------------------------------------------------


@HOW
def test_confirm_leaving_a_room(pair: tuple[UiThread, UiThread], how: str) -> None:
    alice, _bob = pair
    type_line(alice, "/room briefing")
    room = room_id(alice, "briefing")
    alice.wait_until(lambda app: app.model.current == ROOM_PREFIX + room)
    type_line(alice, "/leave")
    dialog(alice, Confirm)
    press_button(alice, "no", how)
    assert alice.app.model.rooms[room].joined

    type_line(alice, "/leave")
    dialog(alice, Confirm)
    press_button(alice, "yes", how)
    alice.wait_until(lambda app: room not in app.model.rooms or not app.model.rooms[room].joined)


@HOW
def test_status_and_broadcast_dialogs(pair: tuple[UiThread, UiThread], how: str) -> None:
    alice, bob = pair
    # Status (F2): Cancel keeps it, OK sets it (the peer sees it).
    keys(alice, "f2")
    dialog(alice, Ask)
    enter_text(alice, "field-0", "busy")
    press_button(alice, "cancel", how)
    assert alice.app.node.status.status == "online"
    keys(alice, "f2")
    dialog(alice, Ask)
    enter_text(alice, "field-0", "away")
    enter_text(alice, "field-1", "out to lunch")
    press_button(alice, "ok", how)
    bob.wait_until(lambda app: "◐ alice" in sidebar_text(app))
    assert "out to lunch" in sidebar_text(bob.app)

    # Broadcast (Ctrl+B): Cancel sends nothing, Send reaches the peer.
    keys(alice, "ctrl+b")
    dialog(alice, Ask)
    enter_text(alice, "field-0", "not this one")
    press_button(alice, "cancel", how)
    keys(alice, "ctrl+b")
    dialog(alice, Ask)
    enter_text(alice, "field-0", "fire drill at three")
    press_button(alice, "ok", how)
    wait_received(bob, alice, "fire drill at three")
    assert received(bob, alice) == ["fire drill at three"]


@HOW
def test_new_room_cancel_and_create(pair: tuple[UiThread, UiThread], how: str) -> None:
    from p2pim.ui.new_room import NewRoom

    alice, _bob = pair
    keys(alice, "ctrl+n")
    dialog(alice, NewRoom)
    enter_text(alice, "name", "never")
    press_button(alice, "cancel", how)
    assert alice.app.model.rooms == {}

    keys(alice, "ctrl+n")
    dialog(alice, NewRoom)
    enter_text(alice, "name", "planning")
    enter_text(alice, "topic", "next quarter")
    press_button(alice, "ok", how)
    room = room_id(alice, "planning")
    alice.wait_until(lambda app: app.model.current == ROOM_PREFIX + room)
    assert alice.app.model.rooms[room].topic == "next quarter"
    assert [r.name for r in alice.app.model.rooms.values()] == ["planning"]


# ---- settings, search, send files, contact group ------------------------------------------


@HOW
def test_settings_cancel_and_save(tmp_path: Path, how: str) -> None:
    profile = tmp_path / "profile"
    profile.mkdir()
    settings = Settings(nick="alice", download_dir=str(tmp_path / "dl"))
    node = loopback_node("alice", tmp_path / "alice")
    ui = UiThread(P2pimApp(node, settings=settings, profile=profile))
    try:
        keys(ui, "f4")
        dialog(ui, SettingsScreen)
        enter_text(ui, "download_dir", str(tmp_path / "nowhere"))
        press_button(ui, "cancel", how)
        assert ui.app.settings == settings
        assert not (profile / FILE).exists()

        keys(ui, "f4")
        dialog(ui, SettingsScreen)
        enter_text(ui, "download_dir", str(tmp_path / "incoming"))
        press_button(ui, "ok", how)
        ui.wait_until(lambda app: (profile / FILE).exists())
        saved = json.loads((profile / FILE).read_text(encoding="utf-8"))
        assert saved["download_dir"] == str(tmp_path / "incoming")
        assert ui.app.node.config.download_dir == tmp_path / "incoming"
    finally:
        ui.close()


@HOW
def test_search_buttons_and_a_result(pair: tuple[UiThread, UiThread], how: str) -> None:
    alice, bob = pair
    open_conversation(bob, fp(alice))
    say(bob, "the quarterly budget is ready")
    wait_received(alice, bob, "the quarterly budget is ready")

    keys(alice, "ctrl+f")
    dialog(alice, SearchScreen)
    press_button(alice, "cancel", how)
    assert alice.app.model.current is None

    keys(alice, "ctrl+f")
    search = dialog(alice, SearchScreen)
    enter_text(alice, "query", "quarterly")

    async def press_search(pilot: Pilot[None]) -> None:
        button = search.query_one("#ok", Button)
        if how == "click":
            assert await pilot.click(button)
        else:
            button.focus()
            await pilot.pause()
            await pilot.press("enter")

    alice.do(press_search)
    results = search.query_one("#results", OptionList)
    alice.wait_until(lambda app: results.option_count == 1 and results.highlighted == 0)

    async def open_result(pilot: Pilot[None]) -> None:
        if how == "click":
            assert await pilot.click(results, offset=(2, 1))
        else:
            results.focus()
            await pilot.press("enter")

    alice.do(open_result)
    alice.wait_until(lambda app: search not in app.screen_stack)
    alice.wait_until(lambda app: app.model.current == fp(bob))
    alice.wait_until(lambda app: list(app.query(".found")))
    assert alice.app.is_running


@HOW
def test_send_files_cancel_and_send(
    pair: tuple[UiThread, UiThread], tmp_path: Path, how: str
) -> None:
    alice, bob = pair
    source = tmp_path / "picked.bin"
    payload(source, 20_000)
    open_conversation(alice, fp(bob))
    keys(alice, "ctrl+o")
    dialog(alice, FilePicker)
    press_button(alice, "cancel", how)
    assert alice.app.model.transfers == {}

    keys(alice, "ctrl+o")
    dialog(alice, FilePicker)
    enter_text(alice, "path", f"~/{source.name}")
    press_button(alice, "ok", how)
    screen = dialog(bob, OfferScreen)
    assert [f.path for f in screen.offer.files] == [source.name]


@HOW
def test_contact_group_cancel_and_save(pair: tuple[UiThread, UiThread], how: str) -> None:
    alice, bob = pair
    keys(alice, "ctrl+g")
    dialog(alice, PickPeers)
    enter_text(alice, "name", "nobody")
    press_button(alice, "cancel", how)
    assert alice.app.model.groups == {}

    keys(alice, "ctrl+g")
    picker = dialog(alice, PickPeers)
    enter_text(alice, "name", "team")

    async def choose_bob(pilot: Pilot[None]) -> None:
        peers = picker.query_one("#peers", SelectionList)
        peers.focus()
        await pilot.pause()
        await pilot.press("space")

    alice.do(choose_bob)
    press_button(alice, "ok", how)
    alice.wait_until(lambda app: "≡ team (1)" in sidebar_text(app))
    assert alice.app.model.groups == {"team": [fp(bob)]}


# ---- the room invitation ------------------------------------------------------------------


def invite(alice: UiThread, bob: UiThread, name: str) -> tuple[str, InvitationScreen]:
    """Alice makes a room and invites bob; his invitation dialog opens by itself."""
    type_line(alice, f"/room {name}")
    room = room_id(alice, name)
    alice.wait_until(lambda app: app.model.current == ROOM_PREFIX + room)
    type_line(alice, "/invite bob")
    screen = dialog(bob, InvitationScreen)
    assert screen.room == room
    return room, screen


@HOW
def test_invitation_join_decline_and_later(pair: tuple[UiThread, UiThread], how: str) -> None:
    alice, bob = pair
    room, _ = invite(alice, bob, "joined")
    press_button(bob, "join", how)
    alice.wait_until(lambda app: fp(bob) in app.model.rooms[room].members)
    bob.wait_until(lambda app: app.model.current == ROOM_PREFIX + room)
    assert bob.app.model.rooms[room].joined

    room, _ = invite(alice, bob, "declined")
    press_button(bob, "decline", how)
    bob.wait_until(lambda app: "declined" not in sidebar_text(app))
    assert room not in bob.app.model.rooms

    room, _ = invite(alice, bob, "later")
    press_button(bob, "later", how)
    assert "# later (invited)" in sidebar_text(bob.app)

    async def open_from_the_list(pilot: Pilot[None]) -> None:
        from p2pim.ui.sidebar import Sidebar

        sidebar = pilot.app.query_one(Sidebar)
        sidebar.focus()
        sidebar.highlighted = sidebar.get_option_index(ROOM_PREFIX + room)
        await pilot.press("enter")

    bob.do(open_from_the_list)  # opening the invited room asks again
    dialog(bob, InvitationScreen)
    press_button(bob, "join", how)
    alice.wait_until(lambda app: fp(bob) in app.model.rooms[room].members)
    assert "(invited)" not in sidebar_text(bob.app)


def test_the_invitation_shows_the_rooms_topic_once_it_is_known(
    pair: tuple[UiThread, UiThread],
) -> None:
    """The invitation names no topic (it comes just after, with the room's state): the
    dialog that opened by itself had no "Topic:" line, the one opened from the list had."""
    alice, bob = pair
    type_line(alice, "/room coffee")
    room = room_id(alice, "coffee")
    alice.wait_until(lambda app: app.model.current == ROOM_PREFIX + room)
    type_line(alice, "/topic fresh beans")
    alice.wait_until(lambda app: app.model.rooms[room].topic == "fresh beans")
    type_line(alice, "/invite bob")
    screen = dialog(bob, InvitationScreen)
    bob.wait_until(lambda app: app.model.rooms[room].topic == "fresh beans")
    bob.wait_until(lambda app: app.screen is screen and "Topic: fresh beans" in screen_text(app))
    press_button(bob, "later", "enter")


def test_a_rooms_members_line_follows_a_members_new_name(
    pair: tuple[UiThread, UiThread],
) -> None:
    """The "Members: …" line under a room's title stayed as it was when a member took
    another name (the title was refreshed, the notice under it was not)."""
    alice, bob = pair
    room, _ = invite(alice, bob, "tea")
    press_button(bob, "join", "enter")
    alice.wait_until(lambda app: fp(bob) in app.model.rooms[room].members)

    def members(app: P2pimApp) -> str:
        notices = app.query_one(Conversation).query(".notice").results(Static)
        return next((str(n.render()) for n in notices), "")

    alice.wait_until(lambda app: "bob" in members(app))
    type_line(bob, "/nick bobby")
    alice.wait_until(lambda app: "bobby" in members(app))
    assert members(alice.app).startswith("Members: ")


# ---- dialogs opened from the command palette ----------------------------------------------


def palette(ui: UiThread, entry: str) -> None:
    """Ctrl+P, type the entry's name, Enter on it once the palette shows it first."""
    from textual.command import CommandList, CommandPalette

    keys(ui, "ctrl+p")
    dialog(ui, CommandPalette)
    keys(ui, *entry)

    def first_hit(app: P2pimApp) -> bool:
        hits = app.screen.query(CommandList)
        if not hits or hits.first().option_count == 0 or hits.first().highlighted != 0:
            return False
        return entry in str(hits.first().get_option_at_index(0).prompt)

    ui.wait_until(first_hit)
    keys(ui, "enter")


@HOW
def test_invite_to_a_room_from_the_palette(pair: tuple[UiThread, UiThread], how: str) -> None:
    alice, bob = pair
    type_line(alice, "/room workshop")
    room = room_id(alice, "workshop")
    alice.wait_until(lambda app: app.model.current == ROOM_PREFIX + room)
    palette(alice, "Invite to this room")
    dialog(alice, PickPeers)
    press_button(alice, "cancel", how)
    assert alice.app.model.rooms[room].invited == ()

    palette(alice, "Invite to this room")
    picker = dialog(alice, PickPeers)

    async def choose_bob(pilot: Pilot[None]) -> None:
        picker.query_one("#peers", SelectionList).focus()
        await pilot.pause()
        await pilot.press("space")

    alice.do(choose_bob)
    press_button(alice, "ok", how)
    invitation = dialog(bob, InvitationScreen)
    assert invitation.room == room
    alice.wait_until(lambda app: fp(bob) in app.model.rooms[room].invited)


@HOW
def test_add_a_peer_by_address_from_the_palette(cast: Cast, how: str) -> None:
    alice, carol = cast.start("alice"), cast.start("carol")
    palette(alice, "Add a peer by address")
    dialog(alice, Ask)
    enter_text(alice, "field-0", "127.0.0.1:1")
    press_button(alice, "cancel", how)
    assert alice.app.model.contacts == {}

    palette(alice, "Add a peer by address")
    dialog(alice, Ask)
    enter_text(alice, "field-0", f"127.0.0.1:{carol.app.node.port}")
    press_button(alice, "ok", how)
    alice.wait_until(lambda app: "● carol" in sidebar_text(app))
    carol.wait_until(lambda app: "● alice" in sidebar_text(app))
