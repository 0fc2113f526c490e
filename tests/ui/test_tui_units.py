"""Fast, pure tests of the UI's pieces: command parsing, the model's event folding,
formatting, the settings file, path completion, and the transfers and offer screens."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from p2pim import clock
from p2pim import events as ev
from p2pim.api import ROOM_PREFIX, RoomInfo, StoredMessage, TransferInfo
from p2pim.events import TransferFile
from p2pim.settings import FILE, Settings
from p2pim.ui import commands
from p2pim.ui import format as fmt
from p2pim.ui.dialogs import PickPeers
from p2pim.ui.model import Model, Transfer
from p2pim.ui.offer import Answer, OfferScreen
from p2pim.ui.picker import complete
from p2pim.ui.transfers import TransferRow, TransfersScreen, describe
from p2pim.ui.verify import number_block
from tests.support import REPO

ME, BOB, CAROL = "a" * 64, "b" * 64, "c" * 64
ROOM = "1234abcd" * 4
NOW = 1_700_000_000_000

# ---- commands -----------------------------------------------------------------------------


def test_plain_text_and_double_slash_are_messages() -> None:
    assert commands.parse("hello") is None
    assert commands.parse(" /status busy") is None  # only a leading slash makes a command
    assert commands.parse("//shrug") is None
    assert commands.message_text("//shrug") == "/shrug"
    assert commands.message_text("hello /there") == "hello /there"
    assert commands.message_text("//") == "/"


def test_commands_parse_their_arguments() -> None:
    assert commands.parse("/status busy in a meeting") == commands.Command(
        "status", ("busy", "in", "a", "meeting")
    )
    assert commands.parse("/STATUS away") == commands.Command("status", ("away",))
    assert commands.parse('/send "my file.txt" other') == commands.Command(
        "send", ("my file.txt", "other")
    )
    assert commands.parse("/send") == commands.Command("send", ())
    # Free-text commands take the rest of the line as one argument, spaces and quotes kept.
    assert commands.parse("/room  Friday's retro ") == commands.Command("room", ("Friday's retro",))
    assert commands.parse("/broadcast it's 'on'") == commands.Command("broadcast", ("it's 'on'",))
    assert commands.parse("/group team bob carol") == commands.Command(
        "group", ("team", "bob", "carol")
    )


def test_every_command_without_required_arguments_parses_bare() -> None:
    for name, spec in commands.COMMANDS.items():
        assert spec.usage.startswith(f"/{name}")
        if spec.min_args == 0:
            assert commands.parse(f"/{name}") == commands.Command(name, ())
        else:
            with pytest.raises(commands.CommandError, match="usage: "):
                commands.parse(f"/{name}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/frobnicate", "unknown command /frobnicate (/help lists them)"),
        ("/bro hi", "unknown command /bro (did you mean /broadcast?)"),
        ("/s", "unknown command /s (/help lists them)"),  # send, search, settings, status
        ("/", "unknown command / (/help lists them)"),
        ("/status", "usage: /status online|away|busy [TEXT]"),
        ("/topic   ", "usage: /topic TEXT"),
    ],
)
def test_command_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(commands.CommandError) as raised:
        commands.parse(text)
    assert str(raised.value) == message


def test_unbalanced_quotes_are_an_error_with_the_usage() -> None:
    with pytest.raises(commands.CommandError, match=r"^/send PATH…: No closing quotation"):
        commands.parse('/send "unfinished')


# ---- model --------------------------------------------------------------------------------


def model() -> Model:
    m = Model(ME, "alice")
    m.apply(ev.PeerConnected(BOB, "bob", "127.0.0.1:1", "online", "", "unverified"))
    return m


def received(m: Model, mid: str, text: str = "hi", sender: str = BOB) -> set[str]:
    return m.apply(ev.MessageReceived(sender, m.nick(sender), mid, NOW, text))


def test_peers_come_go_and_change_status() -> None:
    m = model()
    bob = m.contacts[BOB]
    assert (bob.nick, bob.status, bob.trust) == ("bob", "online", "unverified")
    assert m.apply(ev.PeerStatusChanged(BOB, "busy", "in a meeting")) == {"contacts"}
    assert (bob.status, bob.status_text) == ("busy", "in a meeting")
    m.apply(ev.TypingChanged(BOB, True))
    assert bob.typing
    m.apply(ev.PeerDisconnected(BOB, "bye"))
    assert (bob.status, bob.typing) == ("offline", False)
    # mDNS renames a known peer, but never adds one (only a session proves a key).
    assert m.apply(ev.PeerDiscovered(BOB[:16], "robert", ("10.0.0.2",), 1, "online")) == {
        "contacts"
    }
    assert bob.nick == "robert"
    assert m.apply(ev.PeerDiscovered(CAROL[:16], "carol", ("10.0.0.3",), 1, "online")) == set()
    assert CAROL not in m.contacts


def test_a_key_change_blocks_until_trusted_again() -> None:
    m = model()
    assert not m.blocked(CAROL)
    changed = m.apply(ev.PeerKeyChanged(CAROL, "bob", BOB))
    assert changed == {"contacts", CAROL}
    assert m.blocked(CAROL)
    assert m.contacts[CAROL].previous_fingerprint == BOB
    assert not m.blocked(BOB)
    m.apply(ev.PeerTrustChanged(CAROL, "verified"))
    assert not m.blocked(CAROL)


def test_unread_counts_only_other_conversations_and_resets_on_open() -> None:
    m = model()
    assert received(m, "01") == {BOB, "contacts", "rooms"}
    received(m, "02")
    assert m.contacts[BOB].unread == 2
    assert received(m, "02") == set()  # the same message twice is one message
    assert [line.message_id for line in m.conversations[BOB]] == ["01", "02"]
    m.open(BOB)
    assert m.contacts[BOB].unread == 0
    received(m, "03")  # arrives while the conversation is open
    assert m.contacts[BOB].unread == 0
    m.add_own(BOB, "04", "mine", NOW, "sent")
    assert m.contacts[BOB].unread == 0
    assert m.conversations[BOB][-1].outgoing


def test_receipts_only_move_forward() -> None:
    m = model()
    m.add_own(BOB, "01", "one", NOW, "queued")
    m.add_own(BOB, "02", "two", NOW, "sent")
    lines = {line.message_id: line for line in m.conversations[BOB]}
    assert m.apply(ev.MessageDelivered(BOB, "01")) == {BOB}
    assert lines["01"].mark == "delivered"
    m.apply(ev.MessageRead(BOB, "01"))
    assert lines["01"].mark == "read"
    # Read can overtake delivered (two paths): a late "delivered" does not undo "read".
    m.apply(ev.MessageRead(BOB, "02"))
    m.apply(ev.MessageDelivered(BOB, "02"))
    assert lines["02"].mark == "read"
    assert m.apply(ev.MessageDelivered(BOB, "99")) == set()


def test_edits_and_deletes_change_the_line() -> None:
    m = model()
    received(m, "01", "helo")
    assert m.apply(ev.MessageEdited(BOB, "01", "hello")) == {BOB}
    line = m.conversations[BOB][0]
    assert (line.text, line.edited) == ("hello", True)
    m.apply(ev.MessageDeleted(BOB, "01"))
    assert (line.text, line.deleted) == ("", True)
    assert m.apply(ev.MessageEdited(BOB, "77", "x")) == set()


def room_info(**changes: object) -> RoomInfo:
    values: dict[str, object] = {
        "room": ROOM,
        "name": "standup",
        "topic": "daily",
        "creator": BOB,
        "members": (BOB,),
        "admins": (BOB,),
        "invited": (ME,),
        "joined": False,
        "invited_us": True,
    }
    values.update(changes)
    return RoomInfo(**values)  # type: ignore[arg-type]


def test_rooms_invite_join_and_count_unread() -> None:
    m = model()
    assert m.apply(ev.RoomInvited(ROOM, "standup", BOB, "bob")) == {"rooms"}
    room = m.rooms[ROOM]
    assert (room.invited_us, room.inviter_nick, room.joined) == (True, "bob", False)
    assert m.title(ROOM_PREFIX + ROOM) == "#standup"
    changed = m.apply(ev.RoomChanged(ROOM, "standup", "daily", (BOB, ME), (), (BOB,), True))
    assert changed == {"rooms", ROOM_PREFIX + ROOM}
    assert (room.joined, room.invited_us, room.members) == (True, False, (BOB, ME))
    m.apply(ev.RoomMessage(ROOM, "01", BOB, "bob", NOW, "hi all"))
    m.apply(ev.RoomMessage(ROOM, "02", ME, "alice", NOW, "hi bob"))  # ours: not unread
    assert room.unread == 1
    assert [line.outgoing for line in m.conversations[ROOM_PREFIX + ROOM]] == [False, True]
    m.open(ROOM_PREFIX + ROOM)
    assert room.unread == 0


def test_set_room_takes_the_nodes_view() -> None:
    m = model()
    m.set_room(room_info())
    room = m.rooms[ROOM]
    assert (room.name, room.topic, room.invited_us, room.joined) == (
        "standup",
        "daily",
        True,
        False,
    )
    m.set_room(room_info(joined=True, invited_us=False, members=(BOB, ME), invited=()))
    assert (room.joined, room.invited_us, room.members) == (True, False, (BOB, ME))


def offer(files: tuple[TransferFile, ...] = (TransferFile(0, "a.txt", 600),)) -> ev.OfferReceived:
    return ev.OfferReceived(BOB, "bob", "0f" * 8, files, sum(f.size for f in files), 60.0)


def test_an_incoming_transfer_from_offer_to_completion() -> None:
    m = model()
    o = offer((TransferFile(0, "a.txt", 600), TransferFile(1, "b/c.png", 400)))
    assert m.apply(o) == {"offers", "transfers"}
    key = (BOB, o.offer)
    transfer = m.transfers[key]
    assert (transfer.state, transfer.names, transfer.total, transfer.fraction) == (
        "offered",
        ("a.txt", "b/c.png"),
        1000,
        0.0,
    )
    assert m.offers[key] is o
    m.apply(ev.TransferProgress(BOB, o.offer, False, 250, 1000, 100.0, 7.5, 0, 250, 600))
    assert (transfer.state, transfer.fraction, transfer.eta) == ("accepted", 0.25, 7.5)
    saved = (TransferFile(0, "a.txt", 600, 600, "ok", "/d/a.txt"), TransferFile(1, "b/c.png", 400))
    m.apply(ev.TransferFinished(BOB, o.offer, False, "completed", "", saved))
    assert (transfer.state, transfer.fraction, transfer.saved_as) == (
        "completed",
        1.0,
        ("/d/a.txt",),
    )
    assert transfer.finished
    assert key not in m.offers


def test_progress_for_an_unknown_transfer_is_ignored_and_a_finish_creates_it() -> None:
    m = model()
    assert m.apply(ev.TransferProgress(BOB, "ee", True, 1, 2, 1.0, None, 0, 1, 2)) == set()
    files = (TransferFile(0, "x.bin", 10),)
    m.apply(ev.TransferFinished(BOB, "ee", True, "failed", "disk full", files))
    transfer = m.transfers[(BOB, "ee")]
    assert (transfer.outgoing, transfer.state, transfer.reason, transfer.names) == (
        True,
        "failed",
        "disk full",
        ("x.bin",),
    )


def test_an_outgoing_offer_is_declined_or_accepted() -> None:
    m = model()
    for offer_id, accepted, state in (("01", (), "declined"), ("02", (0,), "accepted")):
        m.transfers[(BOB, offer_id)] = Transfer(BOB, offer_id, True, ("f",), 10)
        m.apply(ev.OfferAnswered(BOB, offer_id, accepted))
        assert m.transfers[(BOB, offer_id)].state == state
    # A late answer does not drag a finished transfer back.
    m.transfers[(BOB, "02")].state = "completed"
    m.apply(ev.OfferAnswered(BOB, "02", (0,)))
    assert m.transfers[(BOB, "02")].state == "completed"
    # Zero bytes: all done once completed, but nothing taken (declined, say) is not done.
    assert Transfer(BOB, "03", True, (), 0, state="completed").fraction == 1.0
    assert Transfer(BOB, "04", True, (), 0, state="declined").fraction == 0.0


def info(state: str, *, outgoing: bool = False, offer_id: str = "0a") -> TransferInfo:
    files = (TransferFile(0, "a.txt", 100, 40, None, "/d/a.txt" if state == "accepted" else None),)
    return TransferInfo(offer_id, BOB, outgoing, state, "", 100, 40, files, NOW + 30_000)


def test_transfers_load_from_the_nodes_list() -> None:
    m = model()
    m.set_transfer(info("arriving"), NOW)
    assert m.transfers == {}  # half an offer: not shown yet
    m.set_transfer(info("offered"), NOW)
    pending = m.offers[(BOB, "0a")]
    assert (pending.nick, pending.total_size, pending.expires_in) == ("bob", 100, 30.0)
    assert m.transfers[(BOB, "0a")].state == "offered"
    m.set_transfer(info("accepted"), NOW)
    transfer = m.transfers[(BOB, "0a")]
    assert (transfer.state, transfer.done, transfer.saved_as) == ("accepted", 40, ("/d/a.txt",))
    m.set_transfer(info("offered", outgoing=True, offer_id="0b"), NOW + 60_000)
    assert (BOB, "0b") not in m.offers  # our own offer waits for them, not for us
    assert m.transfers[(BOB, "0b")].outgoing


def stored(mid: str, *, outgoing: bool, peer: str = BOB, **times: int | None) -> StoredMessage:
    return StoredMessage(
        bytes.fromhex(mid),
        peer,
        ME if outgoing else BOB,
        outgoing,
        NOW,
        1,
        NOW,
        "text",
        times.get("edited_at"),
        False,
        times.get("delivered_at"),
        times.get("read_at"),
    )


def test_history_shows_receipts_of_our_own_messages() -> None:
    m = model()
    m.load_history(
        BOB,
        [
            stored("01", outgoing=True),
            stored("02", outgoing=True, delivered_at=NOW),
            stored("03", outgoing=True, delivered_at=NOW, read_at=NOW),
            stored("04", outgoing=False, read_at=NOW, edited_at=NOW),
        ],
    )
    lines = m.conversations[BOB]
    assert [line.mark for line in lines] == ["sent", "delivered", "read", ""]
    assert [line.nick for line in lines] == ["alice", "alice", "alice", "bob"]
    assert lines[3].edited
    room = m.line(stored("05", outgoing=True, peer=ROOM_PREFIX + ROOM, delivered_at=NOW))
    assert room.mark == ""  # no per-member receipts in rooms


def test_names_and_titles() -> None:
    m = model()
    assert (m.nick(ME), m.nick(BOB), m.nick(CAROL)) == ("alice", "bob", CAROL[:8])
    assert m.title(BOB) == "bob"
    assert m.title(ROOM_PREFIX + "ff") == ROOM_PREFIX + "ff"  # a room we know nothing of


# ---- format -------------------------------------------------------------------------------


def test_sizes_rates_and_times_read_well() -> None:
    assert [fmt.size(n) for n in (0, 1023, 1024, 1536, 5 << 20, 3 << 30, 5 << 40)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
        "5120.0 GiB",
    ]
    assert fmt.rate(2048) == "2.0 KiB/s"
    assert [fmt.eta(s) for s in (None, -3, 0, 59.4, 59.6, 61, 3600, 3725)] == [
        "--:--",
        "0:00",
        "0:00",
        "0:59",
        "1:00",
        "1:01",
        "1:00:00",
        "1:02:05",
    ]


def test_days_clock_numbers_and_images() -> None:
    noon = 1_700_049_600_000  # 2023-11-15 12:00 UTC: the same local day everywhere
    assert fmt.same_day(noon, noon + 60_000)
    assert not fmt.same_day(noon, noon + 86_400_000)
    assert fmt.day(noon).endswith(" 2023")
    assert "November" in fmt.day(noon)
    assert len(fmt.clock(noon)) == 5
    assert fmt.clock(noon)[2] == ":"
    assert abs(clock.now_ms() - int(__import__("time").time() * 1000)) < 5_000
    digits = "0123456789" * 6
    assert number_block(digits).splitlines() == [
        "01234  56789  01234  56789",
        "01234  56789  01234  56789",
        "01234  56789  01234  56789",
    ]
    assert fmt.is_image("Holiday.JPG")
    assert fmt.is_image("a/b.webp")
    assert not fmt.is_image("notes.txt")
    assert not fmt.is_image("png")


def test_a_transfer_row_describes_it() -> None:
    running = Transfer(BOB, "01", False, ("a", "b", "c"), 2048, 1024, 512.0, 2.0, "accepted")
    assert (
        describe(running, "bob").plain
        == "↓ a, b +1  from bob  1.0 KiB / 2.0 KiB  512 B/s  ETA 0:02"
    )
    offered = Transfer(BOB, "02", True, ("x",), 10)
    assert describe(offered, "bob").plain == "↑ x  to bob  10 B  waiting for an answer"
    failed = Transfer(BOB, "03", True, ("x",), 10, state="failed", reason="disk full")
    assert describe(failed, "bob").plain.endswith("failed: disk full")


def test_a_reason_that_only_repeats_the_state_is_not_shown_twice() -> None:
    """A cancel with no reason given comes with the reason "cancelled" (an expired offer,
    "expired"): the row and the card said "cancelled: cancelled", "cancelled (cancelled)"."""
    from p2pim.ui.rows import render_card

    for state in ("cancelled", "expired"):
        ended = Transfer(BOB, "04", True, ("x",), 10, state=state, reason=state)
        assert describe(ended, "bob").plain == f"↑ x  to bob  10 B  {state}"
        assert render_card([ended], lambda fp: "bob").plain == f"→ x  10 B  {state}"
    why = Transfer(BOB, "05", False, ("x",), 10, state="cancelled", reason="no room on disk")
    assert describe(why, "bob").plain.endswith("cancelled: no room on disk")
    assert render_card([why], lambda fp: "bob").plain.endswith("cancelled (no room on disk)")


# ---- settings -----------------------------------------------------------------------------


def write_settings(profile: Path, data: object) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    (profile / FILE).write_text(json.dumps(data), encoding="utf-8")


def test_settings_default_without_a_file_or_with_a_broken_one(tmp_path: Path) -> None:
    defaults = Settings()
    assert Settings.load(tmp_path / "none") == defaults
    assert defaults.interfaces == []
    assert defaults.bell
    assert not defaults.desktop_notifications
    (tmp_path / FILE).write_text("{not json", encoding="utf-8")
    assert Settings.load(tmp_path) == defaults
    write_settings(tmp_path, ["a", "list"])
    assert Settings.load(tmp_path) == defaults


def test_settings_of_the_wrong_type_are_ignored_the_rest_kept(tmp_path: Path) -> None:
    write_settings(
        tmp_path,
        {
            "nick": "zoe",  # right
            "download_dir": 42,  # wrong: a number
            "interfaces": ["eth0", 3],  # wrong inside
            "auto_away_minutes": True,  # wrong: a bool is not a number here
            "bell": "no",  # wrong: a string
            "desktop_notifications": True,  # right
            "unknown": 1,  # ignored
        },
    )
    loaded, defaults = Settings.load(tmp_path), Settings()
    assert loaded.nick == "zoe"
    assert loaded.desktop_notifications is True
    assert loaded.download_dir == defaults.download_dir
    assert loaded.interfaces == []
    assert loaded.auto_away_minutes == defaults.auto_away_minutes
    assert loaded.bell is True
    write_settings(tmp_path, {"auto_away_minutes": 2, "bell": False, "interfaces": ["eth0"]})
    loaded = Settings.load(tmp_path)
    assert (loaded.auto_away_minutes, loaded.bell, loaded.interfaces) == (2, False, ["eth0"])


@pytest.mark.parametrize(
    "data",
    [{"nick": ""}, {"nick": "x" * 200}, {"auto_away_minutes": -5}],
)
def test_settings_a_node_would_refuse_are_defaults(tmp_path: Path, data: dict[str, object]) -> None:
    write_settings(tmp_path, data)
    assert Settings.load(tmp_path) == Settings()


def test_a_non_finite_away_time_is_the_default(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text('{"auto_away_minutes": NaN}', encoding="utf-8")
    assert Settings.load(tmp_path).auto_away_minutes == Settings().auto_away_minutes
    (tmp_path / FILE).write_text('{"auto_away_minutes": Infinity}', encoding="utf-8")
    assert Settings.load(tmp_path).auto_away_minutes == Settings().auto_away_minutes


def test_settings_save_round_trips_privately_and_atomically(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    settings = Settings("zoe", "/srv/in", ["eth0", "wlan0"], 12.5, False, True)
    settings.save(profile)
    assert Settings.load(profile) == settings
    assert stat.S_IMODE((profile / FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    assert sorted(os.listdir(profile)) == [FILE]  # no temporary file left behind

    broken = Settings("zoe", "/srv/in", [object()])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        broken.save(profile)  # fails half-way through writing...
    assert Settings.load(profile) == settings  # ...and the old file is whole


# ---- path completion ----------------------------------------------------------------------


def test_completion_extends_to_the_common_prefix(tmp_path: Path) -> None:
    (tmp_path / "report-2023.pdf").write_text("x")
    (tmp_path / "report-2024.pdf").write_text("x")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_text("x")
    base = f"{tmp_path}/"
    assert complete(base + "rep", tmp_path) == base + "report-202"
    assert complete(base + "report-2024", tmp_path) == base + "report-2024.pdf"
    assert complete(base + "ph", tmp_path) == base + "photos/"  # a folder: ready for the next part
    assert complete(base + "photos/", tmp_path) == base + "photos/cat.png"
    assert complete(base + "zzz", tmp_path) == base + "zzz"  # nothing matches: unchanged
    assert complete(base + "missing/x", tmp_path) == base + "missing/x"  # no such folder


def test_completion_keeps_the_tilde_and_takes_a_relative_path_from_the_pickers_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "notes.txt").write_text("x")
    monkeypatch.setenv("HOME", str(home))
    assert complete("~/no", elsewhere) == "~/notes.txt"
    monkeypatch.chdir(elsewhere)  # where p2pim was started does not matter
    assert complete("no", home) == "notes.txt"
    assert complete("", home) == "notes.txt"  # nothing typed: this folder's entries


def test_the_picker_appends_what_is_typed_to_its_folder_and_sends_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The field opens with the folder and the cursor after it, nothing selected: typed
    "photo.bin" replaced the folder and was looked for where p2pim had been started."""
    from p2pim.ui.picker import FilePicker

    (tmp_path / "photo.bin").write_bytes(b"x")
    monkeypatch.chdir("/")
    answers: list[object] = []

    async def check(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(FilePicker(tmp_path), answers.append)
        await pilot.pause()
        await pilot.press(*"photo.bin", "enter")
        await pilot.pause()

    run_in_app(check)
    assert answers == [[str(tmp_path / "photo.bin")]]


# ---- screens (a bare app hosts them) ------------------------------------------------------


def run_in_app(test: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with App[None]().run_test(size=(100, 30)) as pilot:
            await test(pilot)

    asyncio.run(main())


# ---- the composer: keys in one burst ------------------------------------------------------


@pytest.mark.parametrize(
    ("burst", "typed"),
    [
        # (key, character) as a terminal sends them, all at once: a laggy SSH link, a paste
        ([("x", "x"), ("y", "y"), ("backspace", None), ("backspace", None), ("z", "z")], "z"),
        ([("a", "a"), ("b", "b"), ("left", None), ("X", "X"), ("end", None), ("c", "c")], "aXbc"),
        ([*[(c, c) for c in "one two"], ("ctrl+w", None), ("t", "t")], "one t"),
        ([("a", "a"), ("b", "b"), ("home", None), ("c", "c")], "cab"),
    ],
)
@pytest.mark.parametrize("where", ["composer", "dialog field"])
def test_a_burst_of_keys_edits_in_the_order_typed(
    burst: list[tuple[str, str | None]], typed: str, where: str
) -> None:
    """Editing keys are bindings, run only once the key has bubbled up to the app: in a
    burst, the characters after them were inserted first ("xy⌫⌫z" came out as "x")."""
    from textual import events

    from p2pim.ui.composer import Composer
    from p2pim.ui.keys import Field

    async def check(pilot: Pilot[None]) -> None:
        widget = Composer() if where == "composer" else Field()
        await pilot.app.mount(widget)
        widget.focus()
        await pilot.pause()
        for key, character in burst:  # queued together, no await between them
            pilot.app.post_message(events.Key(key, character))
        # Each waits until every widget has handled what was queued before it: the app
        # forwards the keys, the composer handles them (and whatever bubbled, the app).
        for _ in range(3):
            await pilot.pause()
        assert (widget.text if isinstance(widget, Composer) else widget.value) == typed

    run_in_app(check)


@pytest.mark.parametrize("dialog", ["new room", "contact group"])
def test_a_name_typed_and_entered_in_one_burst_is_kept(dialog: str) -> None:
    """A screen-wide Enter ran before the characters typed just ahead of it reached the
    field: "standup⏎" in one burst was refused as a room with no name."""
    from textual import events

    from p2pim.ui.dialogs import PickPeers
    from p2pim.ui.new_room import NewRoom

    answers: list[object] = []
    peers = [("ben", "b" * 64), ("cy", "c" * 64)]

    async def check(pilot: Pilot[None]) -> None:
        screen = NewRoom(peers) if dialog == "new room" else PickPeers("g", peers, name="")
        await pilot.app.push_screen(screen, answers.append)
        await pilot.pause()
        # One burst per field (no await between its keys); keys typed ahead across a
        # change of focus still reach the field that had it (Textual routes each key on
        # arrival), which is why this test pauses between fields.
        bursts = [[(c, c) for c in "standup"] + [("enter", None)]]
        if dialog == "new room":
            bursts += [[("enter", None)]]  # the topic, left empty
        # Pick ben, go down and pick cy too, confirm: "select" only posted a message, so
        # a burst toggled cy twice and picked nobody.
        bursts += [[("space", " "), ("down", None), ("space", " "), ("enter", None)]]
        for burst in bursts:
            for key, character in burst:
                pilot.app.post_message(events.Key(key, character))
            for _ in range(3):
                await pilot.pause()

    run_in_app(check)
    if dialog == "new room":
        assert answers == [("standup", "", ["b" * 64, "c" * 64])]
    else:
        assert answers == [("standup", ["b" * 64, "c" * 64])]


def test_no_screen_composes_a_plain_input_that_would_reorder_a_burst() -> None:
    """Every text field of the UI is a `Field` (or a subclass): a plain Textual `Input`
    reorders editing keys in a burst, as the test above shows for the composer."""
    import ast

    ui = REPO / "p2pim" / "ui"
    plain = [
        f"{path.name}:{node.lineno}"
        for path in sorted(ui.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Input"
    ]
    assert plain == []


def test_the_transfers_view_lists_each_peer_of_an_offer_newest_first() -> None:
    m = model()
    m.apply(ev.PeerConnected(CAROL, "carol", "127.0.0.1:2", "online", "", "unverified"))
    m.transfers[(BOB, "01")] = Transfer(BOB, "01", True, ("old.txt",), 10, state="completed")
    # One offer to a room of two: one transfer (and one row) per member.
    m.transfers[(BOB, "02")] = Transfer(BOB, "02", True, ("new.txt",), 10, 5, state="accepted")
    m.transfers[(CAROL, "02")] = Transfer(CAROL, "02", True, ("new.txt",), 10, state="offered")

    async def check(pilot: Pilot[None]) -> None:
        screen = TransfersScreen(m)
        await pilot.app.push_screen(screen)
        await pilot.pause()
        shown = [(row.transfer.peer, row.transfer.offer) for row in screen.query(TransferRow)]
        assert shown == [(CAROL, "02"), (BOB, "02"), (BOB, "01")]
        m.transfers[(BOB, "03")] = Transfer(BOB, "03", False, ("newest.txt",), 10)
        screen.refresh_rows()
        screen.refresh_rows()  # again before the new row has mounted: no error
        await pilot.pause()
        rows = list(screen.query(TransferRow))
        assert [row.transfer.offer for row in rows] == ["03", "02", "02", "01"]
        assert "newest.txt" in str(rows[0].query_one(".describe").render())

    run_in_app(check)


def test_the_offer_dialog_expands_a_tilde_in_the_chosen_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    answers: list[object] = []

    async def check(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(OfferScreen(offer(), "verified", "/dl"), answers.append)
        await pilot.pause()
        text = "\n".join(s.text for s in pilot.app.screen._compositor.render_strips())
        assert "bob offers 1 file, 600 B" in text
        assert "a.txt" in text
        assert "✔ verified" in text
        field = pilot.app.screen.query_one("#directory", Input)
        field.value = "~/incoming"
        await pilot.press("a")
        await pilot.pause()

    run_in_app(check)
    assert answers == [Answer(True, str(tmp_path / "incoming"))]


@pytest.mark.parametrize(
    ("keys", "result"),
    [
        # Enter in the name field moves on to the list; it does not save an empty group.
        ([*"team", "enter", "space", "enter"], ("team", [BOB])),
        ([*"team", "enter", "down", "space", "enter"], ("team", [CAROL])),
        ([*"team", "enter", "space", "down", "space", "enter"], ("team", [BOB, CAROL])),
        (["enter", "tab", "enter"], ("", [])),  # Enter on the OK button
        (["enter", "tab", "tab", "enter"], None),  # ...and on Cancel
        ([*"team", "escape"], None),
    ],
)
def test_picking_peers_enter_moves_on_then_confirms(keys: list[str], result: object) -> None:
    answers: list[object] = []

    async def check(pilot: Pilot[None]) -> None:
        peers = [("bob", BOB), ("carol", CAROL)]
        await pilot.app.push_screen(PickPeers("Contact group", peers, name=""), answers.append)
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()

    run_in_app(check)
    assert answers == [result]


def test_a_received_image_gets_a_half_block_preview_and_a_broken_one_none(
    tmp_path: Path,
) -> None:
    from PIL import Image
    from rich.console import Console

    from p2pim.ui.conversation import image_preview

    picture = tmp_path / "red.png"
    Image.new("RGB", (64, 40), (255, 0, 0)).save(picture)
    preview = image_preview(str(picture))
    assert preview is not None
    console = Console(width=80, record=True, color_system="truecolor")
    console.print(preview)
    text = console.export_text(clear=False)
    assert "▄" in text or "▀" in text  # drawn with half blocks, two pixel rows per line
    assert len(text.splitlines()) <= 16  # thumbnailed to fit a conversation
    assert "#ff0000" in console.export_html()  # in the picture's colour
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert image_preview(str(broken)) is None  # a card without a preview, no crash
