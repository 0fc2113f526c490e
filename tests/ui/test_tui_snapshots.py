"""Snapshot tests of the terminal UI (pytest-textual-snapshot): the main screen, the
transfers view, the offer modal and the verification screen.

Each test runs the real `P2pimApp` on a real node (127.0.0.1, no mDNS, no peer ever
connects) whose database is seeded beforehand with fixed keys, messages and receipts, so
the conversation comes from the node's own history; presence, unread messages, rooms and
transfers then arrive as node events with fixed timestamps, posted to the app as the
bridge would post them.  Times are shown in local time, so the tests pin TZ=UTC.

Update the pictures with `pytest tests/ui/test_tui_snapshots.py --snapshot-update`, and look
at them (tests/ui/__snapshots__/test_tui_snapshots/*.svg) before committing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from p2pim import Identity, NodeConfig
from p2pim import events as ev
from p2pim.api import ROOM_PREFIX
from p2pim.node import Node
from p2pim.storage import Database
from p2pim.ui.app import NodeEvent, P2pimApp
from p2pim.ui.conversation import Conversation
from p2pim.ui.invitation import InvitationScreen
from p2pim.ui.model import Transfer
from p2pim.ui.offer import OfferScreen
from p2pim.ui.sidebar import Sidebar
from p2pim.ui.verify import VerifyScreen

SnapCompare = Callable[..., bool]
RunBefore = Callable[[Pilot[None]], Awaitable[None]]


def identity(n: int) -> Identity:
    return Identity.from_seed(bytes([n]) * 32)


ME, ALICE, BOB, CAROL, DAVE, ERIN, ERIN_BEFORE = (identity(n) for n in range(1, 8))
ME_FP, A, B, C, D, E = (i.fingerprint for i in (ME, ALICE, BOB, CAROL, DAVE, ERIN))
MINUTE = 60_000
HOUR = 60 * MINUTE
MONDAY = 1_717_430_400_000  # Monday 3 June 2024, 16:00 UTC
TUESDAY = MONDAY + 17 * HOUR  # 09:00 the next day
ROOM, INVITING_ROOM = "ab" * 16, "ef" * 16
REPORT, PHOTOS, DATASET = "01" * 16, "02" * 16, "03" * 16
UNTIL_WITHIN = 10.0  # seconds for the app to reach the state a picture shows
DOWNLOADS = Path("/home/me/Downloads")  # only shown, never written: no offer is accepted
WIDE, SMALL, LARGE = (100, 30), (80, 24), (120, 36)
AGENDA, PLANNING = "04" * 16, "cd" * 16


def mid(n: int) -> bytes:
    return bytes([n]) * 16


def seed_database(path: Path) -> None:
    """Five known peers (one verified, one whose key changed) and a two-day conversation
    with alice: received and sent messages, one edited, receipts at every stage."""
    with Database.open(path) as db:
        for who, nick, trust in (
            (ALICE, "alice", "verified"),
            (BOB, "bob", "unverified"),
            (CAROL, "carol", "unverified"),
            (DAVE, "dave", "unverified"),
            (ERIN, "erin", "unverified"),
        ):
            db.pin_peer(who.public_key, who.fingerprint, nick, MONDAY - 48 * HOUR, trust)
        db.set_trust(E, "key_changed", previous_fingerprint=ERIN_BEFORE.fingerprint)
        at = MONDAY + 100 * MINUTE
        text = "Are you still around? The release notes need one more pass before the demo."
        db.store_incoming(mid(1), A, A, at, 1, text, at)
        db.queue_message(
            mid(2), A, ME_FP, at + 2 * MINUTE, 2, "Yes, wrapping up the notes", b"", at
        )
        db.mark_delivered(A, [mid(2)], at + 2 * MINUTE)
        db.mark_read_by_peer(mid(20), [mid(2)], A, at + 3 * MINUTE)
        at = TUESDAY + 5 * MINUTE
        db.store_incoming(mid(3), A, A, at, 3, "Morning! The build is gren", at)
        db.apply_edit(mid(30), mid(3), A, "Morning! The build is green.", at + MINUTE, at)
        db.queue_message(mid(4), A, ME_FP, at + 2 * MINUTE, 4, "Great, sending the report", b"", at)
        db.mark_delivered(A, [mid(4)], at + 2 * MINUTE)
        db.queue_message(
            mid(5), A, ME_FP, at + 3 * MINUTE, 5, "and the slides after lunch", b"", at
        )


def make_app(home: Path) -> P2pimApp:
    home.mkdir(parents=True, exist_ok=True)
    seed_database(home / "p2pim.sqlite")
    config = NodeConfig(nick="me", listen_host="127.0.0.1", discovery=False, download_dir=DOWNLOADS)
    return P2pimApp(Node(ME, config, store_path=home / "p2pim.sqlite"))


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Times and days render in local time: make that UTC for the test's duration."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


# ---- driving the app -------------------------------------------------------------------


async def until(pilot: Pilot[None], predicate: Callable[[], Any]) -> None:
    deadline = time.monotonic() + UNTIL_WITHIN
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the UI did not get there")
        await pilot.pause(0.02)


def post(app: P2pimApp, *events: ev.NodeEvent) -> None:
    for event in events:
        app.post_message(NodeEvent(event))


async def settle(pilot: Pilot[None]) -> None:
    """No toasts (their timers make them come and go) and no blinking cursors."""
    await pilot.pause()
    pilot.app.clear_notifications()
    for widget in pilot.app.screen.query("TextArea, Input"):
        if isinstance(widget, TextArea | Input):
            widget.cursor_blink = False
    await pilot.pause()


async def populate(pilot: Pilot[None]) -> None:
    """Presence, unread messages, a room, an invitation and a group, as node events; then
    alice's conversation (from the node's history) with a file card."""
    app = pilot.app
    assert isinstance(app, P2pimApp)
    post(
        app,
        ev.PeerConnected(A, "alice", "127.0.0.1:40001", "online", "", "verified"),
        ev.PeerConnected(B, "bob", "127.0.0.1:40002", "away", "out for lunch", "unverified"),
        ev.PeerConnected(C, "carol", "127.0.0.1:40003", "busy", "in a meeting", "unverified"),
        ev.MessageReceived(C, "carol", "c1" * 16, TUESDAY, "ping"),
        ev.MessageReceived(C, "carol", "c2" * 16, TUESDAY + MINUTE, "got a minute?"),
        ev.RoomChanged(ROOM, "standup", "daily at 9:30", (ME_FP, A, B), (), (ME_FP,), True),
        ev.RoomMessage(ROOM, "r1" * 16, B, "bob", TUESDAY + 2 * MINUTE, "running late"),
        ev.RoomInvited(INVITING_ROOM, "design", A, "alice"),
    )
    await until(pilot, lambda: "c2" * 16 in {line.message_id for line in _lines(app, C)})
    # The invitation asks Join / Decline / Later by itself; Later keeps it in the list.
    await until(pilot, lambda: isinstance(app.screen, InvitationScreen))
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, InvitationScreen))
    app.model.groups = {"team": [A, B, C]}
    app.model.transfers[(A, REPORT)] = Transfer(A, REPORT, True, ("report-q2.pdf",), 2_516_582)
    app.open_conversation(A)
    await until(pilot, lambda: app.model.current == A and len(app.query("MessageView")) == 5)
    post(
        app,
        ev.TransferProgress(A, REPORT, True, 1_258_291, 2_516_582, 5e6, 0.3, 0, 1_258_291, 0),
        ev.TransferFinished(A, REPORT, True, "completed", "", ()),
    )
    await until(pilot, lambda: app.model.transfers[(A, REPORT)].state == "completed")


def _lines(app: P2pimApp, key: str) -> list[Any]:
    return app.model.conversations.get(key, [])


# ---- the scenes --------------------------------------------------------------------------


async def main_screen(pilot: Pilot[None]) -> None:
    await populate(pilot)
    await settle(pilot)


async def main_screen_sidebar_focused(pilot: Pilot[None]) -> None:
    """As the user moves in the list (Tab): the list's focus mark and highlighted row."""
    app = pilot.app
    assert isinstance(app, P2pimApp)
    await populate(pilot)
    sidebar = app.query_one(Sidebar)
    sidebar.focus()
    sidebar.highlighted = sidebar.get_option_index(ROOM_PREFIX + ROOM)
    await settle(pilot)


async def transfers_view(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, P2pimApp)
    await populate(pilot)
    app.model.transfers[(C, DATASET)] = Transfer(C, DATASET, False, ("dataset.tar",), 3 << 30)
    photos = ("photos/beach.jpg", "photos/boat.jpg", "photos/dunes.jpg")
    app.model.transfers[(B, PHOTOS)] = Transfer(B, PHOTOS, False, photos, 734_003_200)
    post(
        app,
        ev.TransferProgress(C, DATASET, False, 1 << 30, 3 << 30, 0, None, 0, 1 << 30, 3 << 30),
        ev.TransferFinished(C, DATASET, False, "failed", "connection lost", ()),
        ev.TransferProgress(B, PHOTOS, False, 330_301_440, 734_003_200, 48e6, 8.4, 1, 0, 0),
    )
    await until(pilot, lambda: app.model.transfers[(B, PHOTOS)].running)
    await settle(pilot)
    await pilot.press("f3")
    await until(pilot, lambda: len(app.screen.query("TransferRow")) == 3)
    await settle(pilot)


async def offer_modal(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, P2pimApp)
    await populate(pilot)
    await settle(pilot)
    files = (
        ev.TransferFile(0, "slides/q2-review.pdf", 4_404_019),
        ev.TransferFile(1, "slides/figures/revenue-by-region.png", 912_384),
        ev.TransferFile(2, "notes.md", 1_234),
    )
    post(app, ev.OfferReceived(B, "bob", PHOTOS, files, 5_317_637, 86_400.0))
    await until(pilot, lambda: isinstance(app.screen, OfferScreen))
    await settle(pilot)


async def verify_screen(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, P2pimApp)
    await populate(pilot)
    app.open_conversation(E)
    await until(pilot, lambda: app.model.current == E)
    await settle(pilot)
    await pilot.press("ctrl+r")
    await until(pilot, lambda: isinstance(app.screen, VerifyScreen))
    await settle(pilot)


async def room_screen(pilot: Pilot[None]) -> None:
    """The planning room: system lines from its log (created, invited, joined, topic,
    admin), posts, and the card of a file shared in the room, as its sender sees it."""
    app = pilot.app
    assert isinstance(app, P2pimApp)
    await populate(pilot)
    at, key = TUESDAY - 10 * MINUTE, ROOM_PREFIX + PLANNING

    def notice(n: int, kind: str, author: str, subject: str = "", text: str = "") -> ev.RoomNotice:
        return ev.RoomNotice(PLANNING, f"{n:02x}" * 16, kind, author, "", subject, "", at, text, "")

    post(
        app,
        ev.RoomChanged(PLANNING, "planning", "", (ME_FP, A, B), (), (ME_FP, A), True),
        notice(1, "created", ME_FP, text="planning"),
        notice(2, "invited", ME_FP, A),
        notice(3, "invited", ME_FP, B),
        notice(4, "joined", A),
        notice(5, "joined", B),
        notice(6, "topic", ME_FP, text="Q3 roadmap, Thursdays"),
        notice(7, "admin", ME_FP, A),
        ev.RoomMessage(PLANNING, "r2" * 16, A, "alice", TUESDAY, "morning! agenda please?"),
        ev.RoomMessage(PLANNING, "r3" * 16, ME_FP, "me", TUESDAY + MINUTE, "sharing it now"),
    )
    for who in (A, B):
        app.model.transfers[(who, AGENDA)] = Transfer(
            who, AGENDA, True, ("agenda.md",), 18_432, room=PLANNING
        )
    await until(pilot, lambda: len(_lines(app, key)) == 9)
    # Not from the node's history: this room exists only in these events.
    app.open_conversation(key, reload=False)
    post(
        app,
        ev.TransferProgress(A, AGENDA, True, 18_432, 18_432, 1e6, 0.0, 0, 18_432, 0),
        ev.TransferFinished(A, AGENDA, True, "completed", "", ()),
        ev.OfferAnswered(B, AGENDA, ()),
    )
    await until(pilot, lambda: app.model.transfers[(B, AGENDA)].state == "declined")
    await until(pilot, lambda: len(app.query("SystemLine")) == 7)
    # The conversation has the focus (as after a click in it), so no input cursor is
    # drawn: whether the input's cursor showed depended on where focus was when the
    # blinking stopped, which varied under load.
    view = app.query_one(Conversation)
    view.focus()
    await until(pilot, lambda: app.focused is view)
    await settle(pilot)


# ---- the snapshots -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "scene"),
    [(WIDE, main_screen), (SMALL, main_screen), (SMALL, main_screen_sidebar_focused)],
    ids=["100x30", "80x24", "80x24-sidebar-focused"],
)
def test_main_screen(
    snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int], scene: RunBefore
) -> None:
    """Sidebar: people online, away (with a status text), busy, offline, verified and
    key-changed marks, an unread badge, a room with unread posts, a room invitation and a
    group.  Conversation: day separators, received and own messages (one long enough to
    wrap), read, delivered and sent marks, an edited message and a completed file card."""
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=scene)


def test_transfers_view(snap_compare: SnapCompare, tmp_path: Path) -> None:
    """F3: a running download (bytes, rate, ETA, bar), a failed download with its reason
    and a completed upload."""
    assert snap_compare(make_app(tmp_path), terminal_size=WIDE, run_before=transfers_view)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x36"])
def test_offer_modal(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    """An incoming offer: who, how many files and bytes, the trust level, the file list,
    the folder it would be saved into, and its buttons (within the screen at 80x24)."""
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=offer_modal)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x36"])
def test_room_screen(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    """A room: its system lines in log order, posts, and a file shared in the room with
    who took it and who declined."""
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=room_screen)


def test_verify_screen(snap_compare: SnapCompare, tmp_path: Path) -> None:
    """Ctrl+R on a peer whose key changed: the warning, the safety number in groups, both
    keys, and the ways to verify."""
    assert snap_compare(make_app(tmp_path), terminal_size=WIDE, run_before=verify_screen)
