"""Pilot tests of whole UI flows against real nodes on loopback (127.0.0.1, no mDNS).

Each UI runs under `run_test` on a thread of its own (see tui_harness.py); the test thread
presses keys there and waits, bounded, for what the screens show.  Files, rooms, key
changes, search, status, groups, broadcasts, queued messages, commands and export.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, OptionList, ProgressBar, Static

from p2pim.api import ROOM_PREFIX
from p2pim.ui import format as fmt
from p2pim.ui.app import P2pimApp
from p2pim.ui.composer import Composer
from p2pim.ui.conversation import Conversation, MessageView
from p2pim.ui.dialogs import Ask
from p2pim.ui.invitation import InvitationScreen
from p2pim.ui.model import GROUP_PREFIX
from p2pim.ui.new_room import NewRoom
from p2pim.ui.offer import OfferScreen
from p2pim.ui.picker import FilePicker
from p2pim.ui.search import SearchScreen
from p2pim.ui.transfers import TransferRow, TransfersScreen
from p2pim.ui.verify import VerifyScreen, number_block
from tests.support.tui_cast import (
    Cast,
    card_text,
    connect,
    files_under,
    fp,
    open_conversation,
    payload,
    press,
    received,
    room_id,
    say,
    screen_text,
    shown_messages,
    sidebar_text,
    status_bar,
    toasts,
    type_line,
    wait_received,
)
from tests.support.tui_harness import UiThread

# ---- a. files -----------------------------------------------------------------------------


def offer_shown(bob: UiThread, alice: UiThread, name: str, size: int) -> str:
    """Bob's offer modal opened by itself and says who, what, how big, how trusted."""
    screen = bob.wait_until(lambda app: app.screen if isinstance(app.screen, OfferScreen) else None)
    assert screen.offer.peer == fp(alice)
    text = bob.wait_until(lambda app: screen_text(app) if name in screen_text(app) else "")
    assert f"alice offers 1 file, {fmt.size(size)}" in text
    assert name in text
    assert fmt.size(size) in text
    assert "unverified: you have not compared safety numbers" in text
    return screen.offer.offer


def receive_and_check(alice: UiThread, bob: UiThread, source: Path, data: bytes) -> None:
    offer = offer_shown(bob, alice, source.name, len(data))
    press(bob, "a")
    bob.wait_until(lambda app: not isinstance(app.screen, OfferScreen))
    press(bob, "f3")

    def bar(app: P2pimApp) -> ProgressBar | None:
        if not isinstance(app.screen, TransfersScreen):
            return None
        rows = [row for row in app.screen.query(TransferRow) if row.transfer.offer == offer]
        return rows[0].query_one(ProgressBar) if rows else None

    progress = bob.wait_until(bar)
    bob.wait_until(lambda app: progress.percentage == 1)
    transfer = bob.app.model.transfers[(fp(alice), offer)]
    bob.wait_until(lambda app: transfer.state == "completed")
    assert len(transfer.saved_as) == 1
    saved = Path(transfer.saved_as[0])
    assert saved.parent == bob.app.node.config.download_dir
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(data).digest()
    alice.wait_until(lambda app: "completed" in card_text(app, offer))
    assert source.name in card_text(alice.app, offer)


def test_a_file_sent_with_slash_send_is_accepted_and_completes(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    source = tmp_path / "report.bin"
    data = payload(source, 3 << 20)
    open_conversation(alice, fp(bob))
    type_line(alice, f"/send ~/{source.name}")
    receive_and_check(alice, bob, source, data)


def test_a_file_picked_with_ctrl_o_is_accepted_and_completes(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    source = tmp_path / "holiday.bin"
    data = payload(source, 1 << 20)
    open_conversation(alice, fp(bob))
    press(alice, "ctrl+o")
    alice.wait_until(lambda app: isinstance(app.screen, FilePicker))

    async def pick(pilot: Pilot[None]) -> None:
        field = pilot.app.screen.query_one("#path", Input)
        field.focus()
        await pilot.press("ctrl+u", *f"~/{source.name}", "enter")

    alice.do(pick)
    receive_and_check(alice, bob, source, data)


def test_a_declined_file_writes_nothing_and_the_sender_sees_declined(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    source = tmp_path / "secret.bin"
    data = payload(source, 100_000)
    open_conversation(alice, fp(bob))
    type_line(alice, f"/send ~/{source.name}")
    offer = offer_shown(bob, alice, source.name, len(data))
    press(bob, "d")
    alice.wait_until(lambda app: "declined" in card_text(app, offer))
    bob.wait_until(lambda app: app.model.transfers[(fp(alice), offer)].finished)
    assert files_under(bob.app.node.config.download_dir) == []


# ---- b. rooms -----------------------------------------------------------------------------


def answer_later(ui: UiThread) -> None:
    """The invitation dialog opens by itself: Later (Escape), to answer with a command."""
    ui.wait_until(lambda app: isinstance(app.screen, InvitationScreen))
    press(ui, "escape")
    ui.wait_until(lambda app: not isinstance(app.screen, InvitationScreen))


def notices(app: P2pimApp) -> str:
    return "\n".join(str(s.render()) for s in app.query_one(Conversation).query(".notice"))


def join_and_talk(alice: UiThread, bob: UiThread, name: str) -> None:
    """Alice has the room open: she invites bob, he joins, posts, and she reads it."""
    room = room_id(alice, name)
    key = ROOM_PREFIX + room
    alice.wait_until(lambda app: app.model.current == key)
    type_line(alice, "/invite bob")
    bob.wait_until(lambda app: f"# {name} (invited)" in sidebar_text(app))
    answer_later(bob)
    open_conversation(bob, key)
    assert "alice invited you: /join or /decline" in notices(bob.app)
    type_line(bob, "/join")
    alice.wait_until(lambda app: fp(bob) in app.model.rooms[room].members)
    alice.wait_until(lambda app: "bob" in notices(app).partition("Members:")[2])
    bob.wait_until(lambda app: "(invited)" not in sidebar_text(app))
    type_line(bob, "hello room")
    alice.wait_until(lambda app: any("bob: hello room" in m for m in shown_messages(app)))
    for text in ("welcome bob", "agenda first"):  # each post adds one line to her view
        say(alice, text)
    bob.wait_until(lambda app: any("alice: agenda first" in m for m in shown_messages(app)))
    alice.wait_until(lambda app: len(shown_messages(app)) == 3)
    assert [m.split(": ", 1)[1] for m in shown_messages(alice.app)] == [
        "hello room",
        "welcome bob",
        "agenda first",
    ]


def test_a_room_made_with_ctrl_n_is_joined_from_the_other_ui(
    pair: tuple[UiThread, UiThread],
) -> None:
    alice, bob = pair
    press(alice, "ctrl+n")
    alice.wait_until(lambda app: isinstance(app.screen, NewRoom))
    # Enter: name -> topic -> the people to invite -> create (nobody picked: /invite later)
    press(alice, *"standup", "enter", *"daily sync", "enter", "enter")
    alice.wait_until(lambda app: not isinstance(app.screen, NewRoom))
    join_and_talk(alice, bob, "standup")
    assert bob.app.model.rooms[room_id(bob, "standup")].topic == "daily sync"


def test_a_room_made_with_slash_room_is_joined_from_the_other_ui(
    pair: tuple[UiThread, UiThread],
) -> None:
    alice, bob = pair
    type_line(alice, "/room retro")
    join_and_talk(alice, bob, "retro")


# ---- c. key change ------------------------------------------------------------------------


def banner(app: P2pimApp) -> str:
    return "\n".join(str(s.render()) for s in app.query_one(Conversation).query(".banner"))


def test_a_changed_key_is_flagged_blocks_sending_until_verified(cast: Cast) -> None:
    alice = cast.start("alice")
    carol1 = cast.start("carol", home="carol1")
    connect(carol1, alice)
    old = fp(carol1)
    carol1.quit()
    alice.wait_until(lambda app: app.model.contacts[old].status == "offline")

    # A new key under the same nick while the known one is offline: a key change.
    carol2 = cast.start("carol", home="carol2")
    new = fp(carol2)
    assert new != old
    connect(carol2, alice)
    alice.wait_until(lambda app: app.model.contacts[new].trust == "key_changed")
    assert alice.app.model.contacts[new].previous_fingerprint == old
    assert "● carol ⚠" in sidebar_text(alice.app)
    alice.wait_until(lambda app: any("carol's key changed" in t for t in toasts(app, "warning")))

    open_conversation(alice, new)
    assert "carol's key has changed" in banner(alice.app)
    composer = alice.app.query_one(Composer)
    assert composer.disabled

    async def type_anyway(pilot: Pilot[None]) -> str:
        composer.focus()  # a disabled input takes no focus, so no keys either
        await pilot.press(*"psst")
        return composer.text

    assert alice.do(type_anyway) == ""

    async def send_anyway(pilot: Pilot[None]) -> None:
        await pilot.app.submit("are you really carol?")  # what Enter would do: refused too

    alice.do(send_anyway)
    alice.wait_until(lambda app: any("key changed" in t for t in toasts(app, "error")))
    assert alice.app.model.conversations.get(new, []) == []
    assert shown_messages(alice.app) == []

    async def numbers(pilot: Pilot[None]) -> str:
        number: str = await pilot.app.call(pilot.app.node.safety_number, new)
        return number

    expected = alice.do(numbers)
    assert len(expected) == 60
    assert expected.isdigit()
    assert carol2.do(lambda pilot: carol2.app.call(carol2.app.node.safety_number, fp(alice))) == (
        expected
    )
    press(alice, "ctrl+r")
    screen = alice.wait_until(
        lambda app: app.screen if isinstance(app.screen, VerifyScreen) else None
    )
    shown = str(screen.query_one("#number", Static).render())
    assert shown == number_block(expected)
    assert "".join(shown.split()) == expected
    assert "This key replaced the one you knew" in screen_text(alice.app)

    press(alice, "m")
    alice.wait_until(lambda app: not app.query_one(Composer).disabled)
    alice.wait_until(lambda app: banner(app) == "")
    assert alice.app.model.contacts[new].trust == "verified"
    assert "● carol ✔" in sidebar_text(alice.app)
    type_line(alice, "welcome back")
    wait_received(carol2, alice, "welcome back")
    assert received(carol2, alice) == ["welcome back"]  # nothing refused went out before
    alice.wait_until(
        lambda app: any("welcome back" in m and "✓✓" in m for m in shown_messages(app))
    )


# ---- d. search, status, groups, broadcast, queue, commands, export -------------------------


def search_results(app: P2pimApp) -> list[str]:
    results = app.screen.query_one("#results", OptionList)
    return [str(results.get_option_at_index(i).prompt) for i in range(results.option_count)]


def test_search_jumps_to_the_conversation_and_highlights_the_message(
    pair: tuple[UiThread, UiThread],
) -> None:
    alice, bob = pair
    open_conversation(bob, fp(alice))
    for text in ("morning", "the quarterly budget is ready", "lunch at noon?"):
        say(bob, text)
    wait_received(alice, bob, "lunch at noon?")
    assert alice.app.model.current is None  # still on the welcome text
    target = next(
        line.message_id
        for line in alice.app.model.conversations[fp(bob)]
        if "quarterly" in line.text
    )

    press(alice, "ctrl+f")
    alice.wait_until(lambda app: isinstance(app.screen, SearchScreen))
    press(alice, *"quarterly budget", "enter")
    hits = alice.wait_until(lambda app: search_results(app))
    assert len(hits) == 1
    assert "bob: the quarterly budget is ready" in hits[0]
    press(alice, "enter")  # the results have the focus, the first one highlighted

    found = alice.wait_until(lambda app: list(app.query(MessageView).filter(".found")))
    assert alice.app.model.current == fp(bob)
    assert [view.id for view in found] == [f"m-{target}"]
    assert "bob: the quarterly budget is ready" in str(found[0].render())
    assert len(shown_messages(alice.app)) == 3


def test_status_shows_on_the_peers_sidebar(pair: tuple[UiThread, UiThread]) -> None:
    alice, bob = pair
    type_line(alice, "/status busy in a meeting")
    bob.wait_until(lambda app: "⊘ alice" in sidebar_text(app))
    assert "in a meeting" in sidebar_text(bob.app)
    alice.wait_until(lambda app: "⊘ busy “in a meeting”" in status_bar(app))  # her own

    press(alice, "f2")
    alice.wait_until(lambda app: isinstance(app.screen, Ask))
    assert [f.value for f in alice.app.screen.query(Input)] == ["busy", "in a meeting"]
    press(alice, "ctrl+u", *"away", "enter", "ctrl+u", *"out to lunch", "enter")
    bob.wait_until(lambda app: "◐ alice" in sidebar_text(app))
    assert "out to lunch" in sidebar_text(bob.app)
    alice.wait_until(lambda app: "◐ away “out to lunch”" in status_bar(app))
    assert "in a meeting" not in sidebar_text(bob.app)


def test_a_contact_group_and_a_broadcast_reach_the_peer(pair: tuple[UiThread, UiThread]) -> None:
    alice, bob = pair
    type_line(alice, "/group team bob")
    alice.wait_until(lambda app: "≡ team (1)" in sidebar_text(app))
    assert alice.app.model.groups == {"team": [fp(bob)]}
    open_conversation(alice, GROUP_PREFIX + "team")
    type_line(alice, "group hello")
    wait_received(bob, alice, "group hello")
    alice.wait_until(lambda app: "Sent to 1 member(s)." in toasts(app))
    say(alice, "group again")
    wait_received(bob, alice, "group again")
    alice.wait_until(lambda app: len(shown_messages(app)) == 2)
    assert "group again" in shown_messages(alice.app)[1]

    type_line(alice, "/broadcast fire drill at three")
    wait_received(bob, alice, "fire drill at three")
    alice.wait_until(lambda app: "Broadcast to 1 peer(s) online." in toasts(app))


def test_a_message_to_an_offline_peer_is_queued_then_delivered(
    cast: Cast, pair: tuple[UiThread, UiThread]
) -> None:
    alice, bob = pair
    identity = bob.app.node.identity
    open_conversation(alice, fp(bob))
    bob.quit()
    alice.wait_until(lambda app: app.model.contacts[identity.fingerprint].status == "offline")

    type_line(alice, "see this when you are back")
    alice.wait_until(lambda app: any("see this when" in m for m in shown_messages(app)))
    (line,) = shown_messages(alice.app)
    assert line.endswith("◷")
    alice.wait_until(lambda app: any("bob is offline: queued" in t for t in toasts(app)))

    bob_again = cast.start("bob", identity=identity)  # same key, same database
    connect(bob_again, alice)
    wait_received(bob_again, alice, "see this when you are back")
    alice.wait_until(lambda app: shown_messages(app)[0].endswith("✓✓"))


def test_an_unknown_command_is_an_error_and_sends_nothing(
    pair: tuple[UiThread, UiThread],
) -> None:
    alice, bob = pair
    open_conversation(alice, fp(bob))
    type_line(alice, "/frobnicate the widgets")
    alice.wait_until(
        lambda app: any("unknown command /frobnicate" in t for t in toasts(app, "error"))
    )
    type_line(alice, "//shrug")  # a leading // sends a literal /
    wait_received(bob, alice, "/shrug")
    assert received(bob, alice) == ["/shrug"]  # in order: nothing went before it
    alice.wait_until(lambda app: any("alice: /shrug" in m for m in shown_messages(app)))
    assert len(shown_messages(alice.app)) == 1


def test_export_markdown_writes_the_conversation(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    open_conversation(alice, fp(bob))
    open_conversation(bob, fp(alice))
    say(alice, "ping from alice")
    wait_received(bob, alice, "ping from alice")
    say(bob, "pong from bob")
    wait_received(alice, bob, "pong from bob")

    type_line(alice, "/export markdown ~/exports/bob.md")
    target = tmp_path / "exports" / "bob.md"
    alice.wait_until(lambda app: f"Saved to {target}" in toasts(app))
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Conversation with bob")
    assert text.index("ping from alice") < text.index("pong from bob")
    assert target.stat().st_mode & 0o777 == 0o600

    type_line(alice, "/export jsonl")  # no FILE: into the download folder, named for bob
    default = alice.app.node.config.download_dir / "bob.jsonl"
    alice.wait_until(lambda app: f"Saved to {default}" in toasts(app))
    records = [json.loads(line) for line in default.read_text(encoding="utf-8").splitlines()]
    assert [r["body"] for r in records] == ["ping from alice", "pong from bob"]


def test_declining_a_room_invitation_closes_the_room(pair: tuple[UiThread, UiThread]) -> None:
    """After /decline the welcome text shows, and what bob types next goes nowhere (it
    went to the declined room while `open_conversation(None)` left `model.current` set)."""
    alice, bob = pair
    type_line(alice, "/room offsite")
    key = ROOM_PREFIX + room_id(alice, "offsite")
    alice.wait_until(lambda app: app.model.current == key)
    type_line(alice, "/invite bob")
    bob.wait_until(lambda app: "# offsite (invited)" in sidebar_text(app))
    answer_later(bob)
    open_conversation(bob, key)
    type_line(bob, "/decline")  # local: the inviter is not told
    bob.wait_until(lambda app: "offsite" not in sidebar_text(app))
    assert "Welcome to p2pim" in notices(bob.app)
    say(bob, "is this the offsite?")  # no conversation is open: nowhere to send it
    bob.wait_until(lambda app: toasts(app, "warning") or toasts(app, "error"))
    assert toasts(bob.app, "error") == []
    assert any("Pick a person" in t for t in toasts(bob.app, "warning"))
    assert bob.app.model.current is None


def test_edit_and_delete_the_last_message_and_a_refused_edit_changes_nothing(
    pair: tuple[UiThread, UiThread],
) -> None:
    alice, bob = pair
    open_conversation(alice, fp(bob))
    say(alice, "see you at 10")
    wait_received(bob, alice, "see you at 10")
    say(alice, "/edit " + "x" * 40_000)  # longer than a message may be: refused
    alice.wait_until(lambda app: any("at most" in t for t in toasts(app, "error")))
    assert shown_messages(alice.app)[0].split(": ", 1)[1].startswith("see you at 10")
    assert "(edited)" not in shown_messages(alice.app)[0]

    type_line(alice, "/edit see you at 11")
    alice.wait_until(lambda app: "see you at 11 (edited)" in shown_messages(app)[0])
    wait_received(bob, alice, "see you at 11")
    type_line(alice, "/delete")
    alice.wait_until(lambda app: "message deleted" in shown_messages(app)[0])
    bob.wait_until(lambda app: app.model.conversations[fp(alice)][0].deleted)


def test_verifying_a_peer_you_have_talked_with(pair: tuple[UiThread, UiThread]) -> None:
    """The trust change rebuilds the open conversation, lines and all: that rebuild once
    remounted each line under the id its old widget still held (DuplicateIds: the app died)."""
    alice, bob = pair
    open_conversation(alice, fp(bob))
    say(alice, "is this really you?")
    wait_received(bob, alice, "is this really you?")
    press(alice, "ctrl+r")
    alice.wait_until(lambda app: isinstance(app.screen, VerifyScreen))
    press(alice, "m")
    alice.wait_until(lambda app: "● bob ✔" in sidebar_text(app))
    alice.wait_until(lambda app: any("is this really you?" in m for m in shown_messages(app)))
    say(alice, "verified")
    wait_received(bob, alice, "verified")
