"""Getting around: Ctrl+K jumps to a conversation by part of its name, the sidebar's
highlight follows the open conversation, and Tab lands on an entry, never a header.

Real nodes on 127.0.0.1 (no mDNS), each UI on a thread of its own (tests/support/tui_harness.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from p2pim.api import ROOM_PREFIX
from p2pim.ui.app import P2pimApp
from p2pim.ui.jump import JumpScreen, destinations, matching
from p2pim.ui.model import Model
from p2pim.ui.sidebar import Sidebar
from tests.support.nodes import loopback_node
from tests.support.tui_harness import UiThread


@pytest.fixture
def trio_of_uis(tmp_path: Path) -> Iterator[tuple[UiThread, UiThread, UiThread]]:
    uis: list[UiThread] = []
    try:
        for nick in ("ann", "marketing-bot", "ben"):
            uis.append(UiThread(P2pimApp(loopback_node(nick, tmp_path / nick))))
        me = uis[0]
        for other in uis[1:]:
            port = other.app.node.port
            assert port is not None

            async def add(pilot: Pilot[None], port: int = port) -> None:
                await me.app.call(me.app.node.add_peer, "127.0.0.1", port)

            me.do(add)
        me.wait_until(
            lambda app: sum(c.status == "online" for c in app.model.contacts.values()) == 2
        )
        yield uis[0], uis[1], uis[2]
    finally:
        for ui in reversed(uis):
            ui.close()


def highlighted(app: P2pimApp) -> str | None:
    option = app.query_one(Sidebar).highlighted_option
    return option.id if option is not None else None


def test_matching_puts_names_that_start_with_the_text_first() -> None:
    entries = [("bobby ann", "1"), ("ann", "2"), ("# annual", "room:3"), ("carl", "4")]
    assert [key for _, key in matching(entries, "AN")] == ["2", "room:3", "1"]
    assert matching(entries, "zzz") == []


def test_destinations_list_people_rooms_and_groups_but_not_me() -> None:
    model = Model("me" * 32, "me")
    model.contact("f" * 64, "zoe")
    model.contact("me" * 32, "me")
    model.groups = {"team": ["f" * 64]}
    labels = [label for label, _ in destinations(model)]
    assert labels == ["zoe", "≡ team"]


def test_ctrl_k_opens_the_conversation_typed_and_the_sidebar_follows(
    trio_of_uis: tuple[UiThread, UiThread, UiThread],
) -> None:
    me, bot, ben = trio_of_uis

    async def jump(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+k")
        await pilot.pause()
        assert isinstance(pilot.app.screen, JumpScreen)
        await pilot.press(*"be", "enter")

    me.do(jump)
    me.wait_until(lambda app: app.model.current == ben.app.node.fingerprint)
    assert not isinstance(me.app.screen, JumpScreen)
    me.wait_until(lambda app: highlighted(app) == ben.app.node.fingerprint)

    # "mark" matches the bot only; ↓ then Enter on a list of one still opens it, and a
    # click on an entry does too.
    async def jump_by_click(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+k")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, JumpScreen)
        screen.query_one(Input).value = "mark"
        await pilot.pause()
        await pilot.click("#places", offset=(3, 1))  # inside its border

    me.do(jump_by_click)
    me.wait_until(lambda app: app.model.current == bot.app.node.fingerprint)
    me.wait_until(lambda app: highlighted(app) == bot.app.node.fingerprint)

    # Escape leaves everything as it was.
    async def give_up(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+k", "escape")

    me.do(give_up)
    me.wait_until(lambda app: not isinstance(app.screen, JumpScreen))
    assert me.app.model.current == bot.app.node.fingerprint


def test_tab_lands_on_the_first_person_not_the_people_header(
    trio_of_uis: tuple[UiThread, UiThread, UiThread],
) -> None:
    me, _, _ = trio_of_uis

    async def tab(pilot: Pilot[None]) -> str | None:
        for _ in range(4):  # the panes in turn, as a person tabs through them
            await pilot.press("tab")
            await pilot.pause()
            if isinstance(pilot.app.focused, Sidebar):
                break
        assert isinstance(pilot.app.focused, Sidebar)
        return highlighted(pilot.app)

    first = me.do(tab)
    people = {c.fingerprint for c in me.app.model.contacts.values()}
    assert first in people


def test_a_room_opened_from_the_palette_path_is_highlighted(
    trio_of_uis: tuple[UiThread, UiThread, UiThread],
) -> None:
    me, _, _ = trio_of_uis

    async def make(pilot: Pilot[None]) -> str:
        room: str = await pilot.app.call(pilot.app.node.create_room, "annual-review")
        for info in await pilot.app.call(pilot.app.node.rooms):
            pilot.app.model.set_room(info)
        pilot.app.refresh_sidebar()
        await pilot.press("ctrl+k", *"annual", "enter")
        return room

    room = me.do(make)
    me.wait_until(lambda app: app.model.current == ROOM_PREFIX + room)
    me.wait_until(lambda app: highlighted(app) == ROOM_PREFIX + room)


def test_a_search_result_shows_the_conversation_and_author_apart_with_hits_marked() -> None:
    from p2pim.ui.search import WHERE_WIDTH, result_line

    line = result_line(
        when="07 Dec 17:00",
        where="# marketing-and-sales",
        who="ann",
        body="Marketing review\nthen remarketing lunch",
        query="marke lun",
    )
    where = line.plain[len("07 Dec 17:00 ") :][: WHERE_WIDTH + 1]
    assert where == "# marketing-a… "  # its own column, cut to fit
    assert "ann: Marketing review then remarketing lunch" in line.plain
    marked = [line.plain[s.start : s.end] for s in line.spans if s.style == "bold reverse"]
    assert marked == ["Marke", "lun"]  # word starts only: not inside "remarketing"
