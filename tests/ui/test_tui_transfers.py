"""Files in rooms and the transfers view (F3), in real UIs on real nodes (issue 14, 6 and 7).

Pilot drives each UI on a thread of its own (tests/support/tui_harness.py); the nodes talk over
127.0.0.1.  A file shared in a room is a card in the room on every side, never in the
private chats; the sender's card says who took it; F3 lists every recipient, and after a
restart shows each one's real bytes and state; a transfer that ended short is never a
full green bar; and F3 acts on a row at once, with no ↓ first.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static
from textual.widgets._progress_bar import Bar

from p2pim.api import ROOM_PREFIX
from p2pim.ui.app import P2pimApp
from p2pim.ui.composer import Composer
from p2pim.ui.conversation import Conversation, FileCard
from p2pim.ui.transfers import TransferRow, TransfersScreen
from tests.support.tui_cast import Cast, fp
from tests.support.tui_harness import UiThread

# ---- driving the UIs ----------------------------------------------------------------------


@pytest.fixture
def cast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cast]:
    monkeypatch.setenv("HOME", str(tmp_path))  # `~/name` in /send is the test's folder
    monkeypatch.delenv("DISPLAY", raising=False)  # no desktop: "o" says where files are
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    people = Cast(tmp_path)
    try:
        yield people
    finally:
        people.close()


def call(ui: UiThread, fn_name: str, *args: object) -> object:
    """One node call through the UI's bridge, as the UI makes them."""

    async def go(pilot: Pilot[None]) -> object:
        return await ui.app.call(getattr(ui.app.node, fn_name), *args)

    return ui.do(go)


def connect(dialer: UiThread, listener: UiThread) -> None:
    call(dialer, "add_peer", "127.0.0.1", listener.app.node.port)
    for ui, other in ((dialer, listener), (listener, dialer)):
        ui.wait_until(
            lambda app, other=other: (  # type: ignore[misc]
                fp(other) in app.model.contacts and app.model.contacts[fp(other)].status == "online"
            )
        )


def press(ui: UiThread, *keys: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        await pilot.press(*keys)

    ui.do(go)


def type_line(ui: UiThread, text: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        composer = pilot.app.query_one(Composer)
        composer.focus()
        composer.insert(text)
        await pilot.press("enter")

    ui.do(go)


def open_conversation(ui: UiThread, key: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        pilot.app.open_conversation(key)

    ui.do(go)
    ui.wait_until(lambda app: app.query_one(Conversation).key == key)


def card_text(app: P2pimApp, offer: str) -> str:
    cards = app.query_one(Conversation).query(f"#t-{offer}")
    return str(cards.first(FileCard).render()) if cards else ""


def rows(app: P2pimApp) -> list[TransferRow]:
    return list(app.screen.query(TransferRow)) if isinstance(app.screen, TransfersScreen) else []


def row_text(row: TransferRow) -> str:
    return str(row.query_one(".describe", Static).render())


def focused_row(app: P2pimApp) -> TransferRow | None:
    return app.focused if isinstance(app.focused, TransferRow) else None


def bar_colours(row: TransferRow) -> set[str]:
    """The colours the row's bar is drawn in, as hex (#rrggbb)."""
    bar = row.query_one(Bar)
    colours = set()
    for y in range(bar.size.height):
        for segment in bar.render_line(y):
            if segment.style is not None and segment.style.color is not None:
                colours.add(segment.style.color.triplet.hex if segment.style.color.triplet else "")
    return colours


def success_colour(app: P2pimApp) -> str:
    return str(app.current_theme.success).lower()


def offer_ids(ui: UiThread) -> set[str]:
    return {offer for (_, offer) in ui.app.model.offers}


# ---- files in a room ----------------------------------------------------------------------


def form_room(owner: UiThread, others: list[UiThread], name: str) -> str:
    room = str(call(owner, "create_room", name))
    for ui in others:
        call(owner, "invite_to_room", room, fp(ui))
        ui.wait_until(lambda app: room in app.model.rooms)
        call(ui, "join_room", room)
    everyone = {fp(ui) for ui in [owner, *others]}
    for ui in [owner, *others]:
        ui.wait_until(
            lambda app: room in app.model.rooms and set(app.model.rooms[room].members) == everyone
        )
    return room


def test_a_file_shared_in_a_room_is_a_card_in_the_room_and_the_sender_sees_who_took_it(
    cast: Cast, tmp_path: Path
) -> None:
    alice, bob, carol = cast.start("alice"), cast.start("bob"), cast.start("carol")
    connect(bob, alice)
    connect(carol, alice)
    room = form_room(alice, [bob, carol], "planning")
    key = ROOM_PREFIX + room
    source = tmp_path / "minutes.bin"
    data = os.urandom(150_000)
    source.write_bytes(data)
    for ui in (bob, carol):  # F3 open: the offer comes in there, selected, with no dialog
        press(ui, "f3")
        ui.wait_until(lambda app: isinstance(app.screen, TransfersScreen))
    open_conversation(alice, key)
    type_line(alice, f"/send ~/{source.name}")

    # Every member gets it as an offer in the room, selected in F3 as it arrives.
    offer = bob.wait_until(lambda app: next(iter(offer_ids(bob)), ""))
    for ui in (bob, carol):
        ui.wait_until(lambda app: focused_row(app) is not None)
        selected = focused_row(ui.app)
        assert selected is not None
        assert selected.transfer.offer == offer
        assert selected.transfer.room == room
        assert "in #planning" in row_text(selected)
    # The sender's card is in the room at once, one entry per member; F3 has both rows.
    alice.wait_until(lambda app: "no answer yet" in card_text(app, offer))
    assert "to 2 members: bob no answer yet · carol no answer yet" in card_text(alice.app, offer)
    press(bob, "a")
    press(carol, "d")
    alice.wait_until(lambda app: "bob completed · carol declined" in card_text(app, offer))
    press(alice, "f3")
    shown = alice.wait_until(lambda app: len(rows(app)) == 2 and rows(app))
    by_peer = {row.transfer.peer: row for row in shown}
    assert set(by_peer) == {fp(bob), fp(carol)}
    assert "146.5 KiB  completed" in row_text(by_peer[fp(bob)])
    declined = by_peer[fp(carol)]
    assert "declined" in row_text(declined)
    assert declined.has_class("-stopped")
    assert success_colour(alice.app) not in bar_colours(declined)  # never a green bar
    assert success_colour(alice.app) in bar_colours(by_peer[fp(bob)])

    # On the receivers' side the card is in the room too, and in no private chat.
    transfer = bob.app.model.transfers[(fp(alice), offer)]
    bob.wait_until(lambda app: transfer.state == "completed")
    saved = Path(transfer.saved_as[0])
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(data).digest()
    for ui, state in ((bob, "completed"), (carol, "declined")):
        press(ui, "escape")
        open_conversation(ui, key)
        ui.wait_until(lambda app, state=state: state in card_text(app, offer))  # type: ignore[misc]
        assert "from alice" in card_text(ui.app, offer)
        open_conversation(ui, fp(alice))
        assert card_text(ui.app, offer) == ""
    for member in (bob, carol):
        press(alice, "escape")
        open_conversation(alice, fp(member))
        assert card_text(alice.app, offer) == ""

    # After a restart the sender still shows each member's bytes and state, and the card.
    identity = alice.app.node.identity
    alice.close()
    again = cast.start("alice", identity=identity)
    open_conversation(again, key)
    again.wait_until(lambda app: "bob completed · carol declined" in card_text(app, offer))
    press(again, "f3")
    shown = again.wait_until(lambda app: len(rows(app)) == 2 and rows(app))
    by_peer = {row.transfer.peer: row for row in shown}
    assert "146.5 KiB  completed" in row_text(by_peer[fp(bob)])
    assert "0 B  declined" in row_text(by_peer[fp(carol)])
    assert success_colour(again.app) not in bar_colours(by_peer[fp(carol)])


# ---- F3 acts at once ------------------------------------------------------------------------


def test_f3_selects_the_newest_waiting_offer_so_a_d_c_and_o_act_at_once(
    cast: Cast, tmp_path: Path
) -> None:
    alice, bob = cast.start("alice"), cast.start("bob")
    connect(alice, bob)
    first, second, third = (tmp_path / f"{name}.bin" for name in ("first", "second", "third"))
    for path in (first, second, third):
        path.write_bytes(os.urandom(20_000))
    press(bob, "f1")  # another screen is up: offers wait for F3 instead of opening a dialog
    bob.wait_until(lambda app: len(app.screen_stack) > 1)
    open_conversation(alice, fp(bob))
    type_line(alice, f"/send ~/{first.name}")
    bob.wait_until(lambda app: len(app.model.offers) == 1)
    type_line(alice, f"/send ~/{second.name}")
    bob.wait_until(lambda app: len(app.model.offers) == 2)
    newest = bob.app.model.transfers[next(k for k in reversed(bob.app.model.transfers))]

    # The view opens on the newest offer that waits for us: "a" accepts it, no ↓ first.
    press(bob, "escape", "f3")
    bob.wait_until(lambda app: focused_row(app) is not None)
    assert focused_row(bob.app).transfer.offer == newest.offer  # type: ignore[union-attr]
    press(bob, "a")
    accepted = bob.app.model.transfers[(fp(alice), newest.offer)]
    bob.wait_until(lambda app: accepted.state == "completed")

    # Back and again: now the other offer is the one waiting; "d" declines it.
    press(bob, "escape", "f3")
    bob.wait_until(lambda app: focused_row(app) is not None)
    other = focused_row(bob.app).transfer  # type: ignore[union-attr]
    assert other.offer != newest.offer
    assert other.state == "offered"
    press(bob, "d")
    bob.wait_until(lambda app: other.state == "declined")

    # Nothing waits now: the newest row is selected, and "o" says where its files are.
    press(bob, "escape", "f3")
    bob.wait_until(lambda app: focused_row(app) is not None)
    assert focused_row(bob.app).transfer.offer == newest.offer  # type: ignore[union-attr]
    press(bob, "o")
    folder = Path(accepted.saved_as[0]).parent
    bob.wait_until(
        lambda app: any(f"Saved in {folder}" in str(n.message) for n in app._notifications)
    )

    # The sender's view opens on its newest row too: "c" cancels that offer.
    type_line(alice, f"/send ~/{third.name}")
    offer = bob.wait_until(lambda app: next(iter(app.model.offers), ("", ""))[1])
    press(alice, "f3")
    alice.wait_until(lambda app: focused_row(app) is not None)
    assert focused_row(alice.app).transfer.offer == offer  # type: ignore[union-attr]
    press(alice, "c")
    sent = alice.app.model.transfers[(fp(bob), offer)]
    alice.wait_until(lambda app: sent.state == "cancelled")
    bob.wait_until(lambda app: app.model.transfers[(fp(alice), offer)].state == "cancelled")


def test_a_click_on_a_room_file_card_opens_its_offer_and_accepts_it(
    cast: Cast, tmp_path: Path
) -> None:
    from p2pim.ui.offer import OfferScreen

    alice, bob = cast.start("alice"), cast.start("bob")
    connect(bob, alice)
    room = form_room(alice, [bob], "design")
    key = ROOM_PREFIX + room
    source = tmp_path / "mockup.bin"
    data = os.urandom(50_000)
    source.write_bytes(data)
    press(bob, "f1")  # busy elsewhere: the offer waits instead of opening its dialog
    bob.wait_until(lambda app: len(app.screen_stack) > 1)
    open_conversation(alice, key)
    type_line(alice, f"/send ~/{source.name}")
    offer = bob.wait_until(lambda app: next(iter(offer_ids(bob)), ""))
    press(bob, "escape")
    bob.wait_until(lambda app: len(app.screen_stack) == 1)
    open_conversation(bob, key)
    bob.wait_until(lambda app: "waiting for your answer" in card_text(app, offer))

    async def click(pilot: Pilot[None]) -> None:
        await pilot.pause()  # the view rebuilt on opening has settled: the card has its place
        await pilot.click(f"#t-{offer}")

    bob.do(click)
    screen = bob.wait_until(lambda app: app.screen if isinstance(app.screen, OfferScreen) else None)
    assert screen.offer.offer == offer
    assert screen.offer.room == room
    press(bob, "a")
    transfer = bob.app.model.transfers[(fp(alice), offer)]
    bob.wait_until(lambda app: transfer.state == "completed")
    assert Path(transfer.saved_as[0]).read_bytes() == data
    bob.wait_until(lambda app: "completed" in card_text(app, offer))
    alice.wait_until(lambda app: "bob completed" in card_text(app, offer))
