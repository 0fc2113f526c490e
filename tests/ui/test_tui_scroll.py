"""The conversation view keeps the newest row on screen, says when it cannot, and scrolls
back through the whole history (issue 14, defect 2 and the scroll-back expectation).

Pilot tests drive real UIs against real nodes on 127.0.0.1 (tests/support/tui_harness.py).  "On
screen" is geometry, not a scroll offset: the row's region lies within the region the
conversation shows (for a row taller than the view, its last line does).  The author
colours and the indentation of continuation lines are checked as pure functions.
"""

from __future__ import annotations

import colorsys
import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from PIL import Image
from rich.console import Console, Group
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import OptionList

from p2pim import Identity
from p2pim.api import ROOM_PREFIX, StoredMessage
from p2pim.storage import Database
from p2pim.ui import format as fmt
from p2pim.ui.app import P2pimApp
from p2pim.ui.composer import Composer
from p2pim.ui.conversation import (
    Conversation,
    DaySeparator,
    FileCard,
    MessageView,
    NewMessages,
    SystemLine,
)
from p2pim.ui.model import Line, Model
from p2pim.ui.offer import OfferScreen
from p2pim.ui.rows import render_line
from p2pim.ui.search import SearchScreen
from tests.support.nodes import loopback_node
from tests.support.tui_cast import fp
from tests.support.tui_harness import UiThread

T = TypeVar("T")
TALL = "a long message that fills the screen " * 220  # about 8 KB
SIZE = (100, 30)

# ---- reading the screen -------------------------------------------------------------------


def view(app: P2pimApp) -> Conversation:
    return app.query_one(Conversation)


def shows(app: P2pimApp, row: Widget) -> bool:
    """`row` is on screen in the conversation: all of it, or, for a row taller than the
    view, its last line.  The "new messages" bar, when up, covers the view's last line."""
    conversation = view(app)
    visible = conversation.scrollable_content_region
    if conversation.marker_shown:
        visible = Region(visible.x, visible.y, visible.width, visible.height - 1)
    region = row.region
    if not region.height:
        return False
    if region.height > visible.height:
        return visible.contains(region.x, region.bottom - 1)
    return visible.contains_region(region)


def newest(app: P2pimApp) -> Widget | None:
    rows = [r for r in view(app).rows if isinstance(r, (MessageView, FileCard, SystemLine))]
    return rows[-1] if rows else None


def results(app: P2pimApp) -> bool:
    """The search dialog lists hits (its first one highlighted)."""
    lists = app.screen.query("#results")
    return (
        isinstance(app.screen, SearchScreen)
        and bool(lists)
        and lists.first(OptionList).option_count > 0
    )


def row_of(app: P2pimApp, message_id: str) -> MessageView | None:
    found = [r for r in view(app).rows if r.id == f"m-{message_id}"]
    return found[0] if found and isinstance(found[0], MessageView) else None


def row_text(row: Widget) -> str:
    """A row's text; for a file card with an image preview, the card's text above it."""
    if isinstance(row, FileCard):
        content = row.content
        return str(content.renderables[0] if isinstance(content, Group) else content)
    return str(row.render())


def newest_is_shown(ui: UiThread, what: type[Widget], text: str = "") -> Widget:
    """Wait until the newest row is a `what` (saying `text`) and is on screen."""

    def check(app: P2pimApp) -> Widget | None:
        row = newest(app)
        if not isinstance(row, what) or text not in row_text(row):
            return None
        return row if shows(app, row) else None

    return ui.wait_until(check)


# ---- driving the UIs ----------------------------------------------------------------------


@pytest.fixture
def uis(tmp_path: Path) -> Iterator[list[UiThread]]:
    started: list[UiThread] = []
    try:
        yield started
    finally:
        for ui in reversed(started):
            ui.close()


def start(uis: list[UiThread], home: Path, nick: str) -> UiThread:
    ui = UiThread(P2pimApp(loopback_node(nick, home / nick)), SIZE)
    uis.append(ui)
    return ui


def read(ui: UiThread, fn: Callable[[P2pimApp], T]) -> T:
    """Read the app on its own loop: a region can make the layout run, which must not
    happen on the test's thread."""

    async def go(pilot: Pilot[None]) -> T:
        return fn(ui.app)

    return ui.do(go)


def run(ui: UiThread, fn: object, *args: object) -> object:
    """One node call made from the UI's loop, as the app makes them."""

    async def go(pilot: Pilot[None]) -> object:
        return await ui.app.call(fn, *args)

    return ui.do(go)


def connect(alice: UiThread, bob: UiThread) -> None:
    run(alice, alice.app.node.add_peer, "127.0.0.1", bob.app.node.port)
    for one, other in ((alice, bob), (bob, alice)):
        one.wait_until(
            lambda app, other=other: (
                fp(other) in app.model.contacts and app.model.contacts[fp(other)].status == "online"
            )
        )


def open_conversation(ui: UiThread, key: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        while len(pilot.app.screen_stack) > 1:  # an invitation or offer asked meanwhile
            pilot.app.pop_screen()
        pilot.app.open_conversation(key)

    ui.do(go)
    ui.wait_until(lambda app: app.model.current == key and view(app).key == key)


def say(ui: UiThread, text: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        composer = pilot.app.query_one(Composer)
        composer.focus()
        composer.insert(text)
        await pilot.press("enter")

    ui.do(go)


def press(ui: UiThread, *keys: str, focus_view: bool = False) -> None:
    async def go(pilot: Pilot[None]) -> None:
        if focus_view:  # as after Tab to the conversation: its keys scroll it
            view(pilot.app).focus()
        await pilot.press(*keys)

    ui.do(go)


@pytest.fixture
def pair(uis: list[UiThread], tmp_path: Path) -> tuple[UiThread, UiThread]:
    alice, bob = start(uis, tmp_path, "alice"), start(uis, tmp_path, "bob")
    connect(alice, bob)
    open_conversation(alice, fp(bob))
    open_conversation(bob, fp(alice))
    return alice, bob


# ---- the newest row stays on screen -------------------------------------------------------


def test_after_a_tall_message_the_next_ones_are_on_both_screens(
    pair: tuple[UiThread, UiThread],
) -> None:
    """Defect 2: after an 8 KB message the next one was sent and read but on neither screen."""
    alice, bob = pair
    for text in ("before the long one", TALL, "after the long one", "and one more"):
        say(alice, text)
        mark = text[:40]
        newest_is_shown(alice, MessageView, mark)  # the sender's own line
        newest_is_shown(bob, MessageView, mark)
    say(bob, "a reply")
    newest_is_shown(bob, MessageView, "a reply")
    newest_is_shown(alice, MessageView, "a reply")


def test_file_cards_and_an_image_preview_keep_the_newest_row_on_screen(
    pair: tuple[UiThread, UiThread], tmp_path: Path
) -> None:
    alice, bob = pair
    picture = tmp_path / "picture.png"
    Image.new("RGB", (64, 64), (200, 40, 40)).save(picture)
    notes = tmp_path / "notes.txt"
    notes.write_text("notes\n" * 50)
    say(alice, TALL)
    newest_is_shown(bob, MessageView, TALL[:40])

    say(alice, f"/send {picture}")
    bob.wait_until(lambda app: isinstance(app.screen, OfferScreen))
    newest_is_shown(alice, FileCard, "picture.png")
    press(bob, "a")  # accept
    transfer = bob.wait_until(
        lambda app: next((t for t in app.model.transfers.values() if t.state == "completed"), None)
    )
    card = bob.wait_until(lambda app: next(iter(app.query(f"#t-{transfer.offer}")), None))
    bob.wait_until(lambda app: card.region.height > 8)  # the preview made the card tall
    newest_is_shown(bob, FileCard, "picture.png")

    say(alice, "did the picture come?")
    newest_is_shown(bob, MessageView, "did the picture come?")
    newest_is_shown(alice, MessageView, "did the picture come?")

    say(alice, f"/send {notes}")
    newest_is_shown(alice, FileCard, "notes.txt")
    newest_is_shown(bob, FileCard, "notes.txt")


def test_room_posts_and_system_lines_after_a_tall_post_are_on_every_members_screen(
    pair: tuple[UiThread, UiThread],
) -> None:
    alice, bob = pair
    room = str(run(alice, alice.app.node.create_room, "scrolling", ""))
    key = ROOM_PREFIX + room
    open_conversation(alice, key)
    say(alice, TALL)
    newest_is_shown(alice, MessageView, TALL[:40])
    run(alice, alice.app.node.invite_to_room, room, fp(bob))
    newest_is_shown(alice, SystemLine, "invited bob")
    bob.wait_until(lambda app: room in app.model.rooms)
    run(bob, bob.app.node.join_room, room)
    newest_is_shown(alice, SystemLine, "bob joined")  # a room line, under the tall post
    open_conversation(bob, key)
    for text in (TALL, "a short post after it"):
        say(alice, text)
        newest_is_shown(alice, MessageView, text[:40])
        newest_is_shown(bob, MessageView, text[:40])


# ---- scrolled up: the place is kept and a bar says what came ------------------------------


def scrolled_up(ui: UiThread) -> float:
    """Page up in the conversation, as a reader does; where the view then is."""
    press(ui, "pageup", focus_view=True)
    return ui.wait_until(lambda app: None if view(app).following else (view(app).scroll_y,))[0]


def test_scrolled_up_a_new_message_raises_the_bar_and_end_or_a_click_follows_again(
    pair: tuple[UiThread, UiThread],
) -> None:
    alice, bob = pair
    say(alice, TALL)
    newest_is_shown(bob, MessageView, TALL[:40])
    assert not read(bob, lambda app: view(app).marker_shown)

    place = scrolled_up(bob)
    say(alice, "while you were reading")
    bob.wait_until(lambda app: view(app).marker_shown)
    last = read(bob, newest)
    assert isinstance(last, MessageView)
    assert "while you were reading" in row_text(last)
    assert not read(bob, lambda app: shows(app, last))
    assert read(bob, lambda app: view(app).scroll_y) == place  # the reader's place is kept
    assert "new messages" in read(bob, lambda app: str(app.query_one(NewMessages).render()))

    press(bob, "end")  # the conversation has the focus
    newest_is_shown(bob, MessageView, "while you were reading")
    assert not read(bob, lambda app: view(app).marker_shown)
    say(alice, "following again")
    newest_is_shown(bob, MessageView, "following again")

    scrolled_up(bob)
    say(alice, "another one")
    bob.wait_until(lambda app: view(app).marker_shown)

    async def click_bar(pilot: Pilot[None]) -> None:
        await pilot.click(NewMessages)

    bob.do(click_bar)
    newest_is_shown(bob, MessageView, "another one")
    assert not read(bob, lambda app: view(app).marker_shown)

    scrolled_up(bob)
    say(alice, "and a last one")
    bob.wait_until(lambda app: view(app).marker_shown)
    for _ in range(10):  # scrolling back down by hand ends at the end: the bar goes
        press(bob, "pagedown")
    bob.wait_until(lambda app: not view(app).marker_shown)
    newest_is_shown(bob, MessageView, "and a last one")


def test_a_rebuild_of_the_open_conversation_keeps_the_readers_place(
    pair: tuple[UiThread, UiThread],
) -> None:
    """A trust change redraws the whole conversation: someone reading further up stays
    on the same lines, and the view still waits for them to come back to the end."""
    alice, bob = pair
    for text in ("early words", TALL, "late words"):
        say(alice, text)
    newest_is_shown(bob, MessageView, "late words")
    scrolled_up(bob)

    def top_row(app: P2pimApp) -> tuple[Widget, str, int] | None:
        """The first message the reader sees (some of), and where on screen it is."""
        visible = view(app).scrollable_content_region
        for row in view(app).rows:
            if isinstance(row, MessageView) and row.region.overlaps(visible):
                return row, str(row.id)[2:], row.region.y
        return None

    before = read(bob, top_row)
    assert before is not None
    run(bob, bob.app.node.verify, fp(alice))  # the view is built again
    bob.wait_until(lambda app: before[0] not in view(app).rows)

    def in_place(app: P2pimApp) -> bool:
        row = row_of(app, before[1])
        return row is not None and row.region.height > 0 and row.region.y == before[2]

    bob.wait_until(in_place)
    assert not read(bob, lambda app: view(app).following)


def test_a_search_jump_above_a_tall_message_shows_the_hit_highlighted(
    pair: tuple[UiThread, UiThread],
) -> None:
    """Defect 2: the jump landed at the bottom, the hit off-screen and not highlighted."""
    alice, bob = pair
    for text in ("the needle is here", TALL, "short one", "short two"):
        say(alice, text)
    newest_is_shown(bob, MessageView, "short two")
    lines = read(bob, lambda app: list(app.model.conversations[fp(alice)]))
    hit = next(x.message_id for x in lines if "needle" in x.text)

    press(bob, "ctrl+f")
    bob.wait_until(lambda app: isinstance(app.screen, SearchScreen))
    press(bob, *"needle", "enter")
    bob.wait_until(results)
    press(bob, "enter")  # the first result, highlighted
    row = bob.wait_until(lambda app: row_of(app, hit))
    bob.wait_until(lambda app: row.has_class("found") and shows(app, row))

    say(alice, "a new message does not take the hit away")
    bob.wait_until(lambda app: view(app).marker_shown)
    assert read(bob, lambda app: shows(app, row) and row.has_class("found"))


# ---- the whole history, page by page ------------------------------------------------------


def seeded_ui(uis: list[UiThread], home: Path, count: int) -> tuple[UiThread, str, list[str]]:
    """A UI whose node holds `count` messages from carol (not running): one a minute."""
    carol = Identity.generate()
    (home / "me").mkdir(parents=True)
    start_at = datetime.now().replace(hour=6, minute=0, second=0, microsecond=0)
    ids = []
    with Database.open(home / "me" / "p2pim.sqlite") as db:
        db.pin_peer(carol.public_key, carol.fingerprint, "carol", 1, "unverified")
        for n in range(count):
            at = int((start_at + timedelta(minutes=n)).timestamp() * 1000)
            message_id = (n + 1).to_bytes(16, "big")
            db.store_incoming(
                message_id,
                carol.fingerprint,
                carol.fingerprint,
                at,
                n + 1,
                f"entry {n:04} of the log",
                at,
            )
            ids.append(message_id.hex())
    ui = start(uis, home, "me")
    return ui, carol.fingerprint, ids


def shown_ids(app: P2pimApp) -> list[str]:
    return [str(r.id)[2:] for r in view(app).rows if isinstance(r, MessageView)]


def test_scrolling_to_the_top_loads_older_pages_and_keeps_the_place(
    uis: list[UiThread], tmp_path: Path
) -> None:
    ui, carol, ids = seeded_ui(uis, tmp_path, 450)
    open_conversation(ui, carol)
    ui.wait_until(lambda app: len(shown_ids(app)) == 200)
    assert read(ui, shown_ids) == ids[-200:]
    newest_is_shown(ui, MessageView, "entry 0449")

    for loaded in (400, 450):
        first = read(ui, lambda app: row_of(app, shown_ids(app)[0]))
        assert first is not None
        press(ui, "home", focus_view=True)  # to the top: the page before comes
        ui.wait_until(lambda app, loaded=loaded: len(shown_ids(app)) == loaded)
        # What was the first row stays where the top put it, below its day's line (which
        # moved up: the day began earlier).
        ui.wait_until(
            lambda app, first=first: first.region.y == view(app).scrollable_content_region.y + 1
        )
        assert read(ui, shown_ids) == ids[-loaded:]
    days = read(ui, lambda app: [r for r in view(app).rows if isinstance(r, DaySeparator)])
    assert len(days) == 1  # one day, one line for it
    press(ui, "end", "home")  # nothing before the first message: nothing more comes
    ui.wait_until(lambda app: view(app).scroll_y == 0)
    assert len(read(ui, shown_ids)) == 450


def test_a_search_jump_to_a_message_older_than_the_loaded_page_loads_it(
    uis: list[UiThread], tmp_path: Path
) -> None:
    ui, carol, ids = seeded_ui(uis, tmp_path, 700)
    open_conversation(ui, carol)
    ui.wait_until(lambda app: len(shown_ids(app)) == 200)
    press(ui, "ctrl+f")
    ui.wait_until(lambda app: isinstance(app.screen, SearchScreen))
    press(ui, *"entry 0042", "enter")
    ui.wait_until(results)
    press(ui, "enter")
    row = ui.wait_until(lambda app: row_of(app, ids[42]))
    ui.wait_until(lambda app: row.has_class("found") and shows(app, row))
    assert read(ui, shown_ids) == ids  # back to the first page that holds it, all in order


# ---- how a row reads ----------------------------------------------------------------------


def line(text: str, *, outgoing: bool = False, author: str = "ab" * 32) -> Line:
    at = int(datetime(2024, 6, 3, 9, 5).timestamp() * 1000)
    return Line("01" * 16, author, "bob", at, text, outgoing)


def drawn(row: object, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(row)
    return console.export_text().rstrip("\n").split("\n")


def test_continuation_lines_are_indented_under_the_text() -> None:
    row = render_line(line("first line\nsecond line\nthird"))
    assert drawn(row, 60) == [
        "09:05 bob: first line",
        "           second line",
        "           third",
    ]
    assert str(row) == "09:05 bob: first line\n           second line\n           third"
    # A line that wraps goes on under the text too, never under the time.
    wrapped = drawn(render_line(line("word " * 30)), 40)
    assert wrapped[0].startswith("09:05 bob: word")
    assert len(wrapped) > 2
    assert all(x.startswith(" " * 11 + "word") for x in wrapped[1:])
    assert all(len(x) <= 40 for x in wrapped)


def test_a_narrow_view_puts_the_text_under_the_head_rather_than_in_a_sliver() -> None:
    narrow = drawn(render_line(line("a message of a few words")), 20)
    assert narrow[0].startswith("09:05 bob: a")
    assert all(len(x) <= 20 for x in narrow)
    assert not narrow[1].startswith(" " * 11)


def contrast(colour: str, background: str) -> float:
    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(colour), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def hue(colour: str) -> float:
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hls(r, g, b)[0] * 360


def test_author_colours_are_stable_distinct_and_readable_on_dark_and_light() -> None:
    people = [Identity.from_seed(bytes([n]) * 32).fingerprint for n in range(40)]
    assert [fmt.author_colour(p) for p in people] == [fmt.author_colour(p) for p in people]
    assert len({fmt.author_colour(p) for p in people}) >= len(fmt.AUTHOR_COLOURS) - 1
    assert {fmt.author_colour(p, own=True) for p in people} == {fmt.OWN_COLOUR}
    assert fmt.OWN_COLOUR not in fmt.AUTHOR_COLOURS
    colours = [*fmt.AUTHOR_COLOURS, fmt.OWN_COLOUR]
    for colour in colours:  # Textual's dark and light backgrounds
        assert contrast(colour, "#121212") >= 3.5, colour
        assert contrast(colour, "#e0e0e0") >= 3.5, colour
    hues = sorted(hue(c) for c in colours)
    gaps = [b - a for a, b in itertools.pairwise(hues)] + [360 - hues[-1] + hues[0]]
    assert min(gaps) >= 20


def test_a_row_names_its_author_in_their_colour() -> None:
    theirs = render_line(line("hi", author="cd" * 32))
    mine = render_line(line("hi", outgoing=True))
    assert fmt.author_colour("cd" * 32) in str(theirs.head.spans[1].style)
    assert fmt.OWN_COLOUR in str(mine.head.spans[1].style)


def stored(n: int) -> StoredMessage:
    at = 1_717_430_400_000 + n * 60_000
    return StoredMessage(
        n.to_bytes(16, "big"), "cd" * 32, "cd" * 32, False, at, n, at, f"m{n}", None, False,
        None, None,
    )  # fmt: skip


def test_older_pages_go_before_what_is_loaded_once_each_until_the_first() -> None:
    model = Model("ab" * 32, "me")
    key = "cd" * 32
    model.load_history(key, [stored(n) for n in range(200, 400)])
    assert key not in model.complete  # a full page: there may be more before it
    older = model.prepend_history(key, [stored(n) for n in range(0, 201)], complete=True)
    assert [x.text for x in older] == [f"m{n}" for n in range(0, 200)]  # m200 was there
    assert [x.text for x in model.conversations[key]] == [f"m{n}" for n in range(400)]
    assert key in model.complete
    model.load_history(key, [stored(n) for n in range(300, 400)], complete=True)
    assert len(model.conversations[key]) == 100  # reopening starts from the newest page
    model.load_history(key, [stored(n) for n in range(200, 400)])
    assert key not in model.complete
