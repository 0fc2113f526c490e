"""Pilot tests of who I am in the UI (issue 14, defects 4 and 5), against real nodes on
127.0.0.1: the first-run name prompt (OK clicked, Enter on OK, Enter keeping the
suggestion, Escape), a rename in Settings (F4) that the peer's sidebar shows at once,
and the header following a status set from elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static, TextArea

from p2pim import Identity, NodeConfig, control
from p2pim.blocking_client import BlockingClient
from p2pim.config import default_nick
from p2pim.node import Node
from p2pim.settings import Settings
from p2pim.ui.app import P2pimApp
from p2pim.ui.firstrun import FirstRun
from p2pim.ui.settings_screen import SettingsScreen
from p2pim.ui.sidebar import Sidebar
from tests.support.nodes import loopback_node
from tests.support.tui_harness import UiThread


class People:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.uis: list[UiThread] = []

    def start(self, nick: str, *, first_run: bool = False) -> UiThread:
        """A UI on a profile of its own, as `p2pim` runs it: the node keeps its nick and
        status in the profile; `first_run`: no nick was ever chosen there."""
        home = self.tmp_path / nick
        node = loopback_node(nick, home, profile=home)
        settings = Settings() if first_run else Settings(nick=nick)
        ui = UiThread(P2pimApp(node, settings=settings, profile=home))
        self.uis.append(ui)
        return ui

    def close(self) -> None:
        for ui in reversed(self.uis):
            ui.close()


@pytest.fixture
def people(tmp_path: Path) -> Iterator[People]:
    cast = People(tmp_path)
    try:
        yield cast
    finally:
        cast.close()


def status_bar(app: P2pimApp) -> str:
    return str(app.query_one("#status", Static).render())


def sidebar_text(app: P2pimApp) -> str:
    sidebar = app.query_one(Sidebar)
    return "\n".join(
        str(sidebar.get_option_at_index(i).prompt) for i in range(sidebar.option_count)
    )


def prompt(ui: UiThread) -> FirstRun:
    return ui.wait_until(lambda app: app.screen if isinstance(app.screen, FirstRun) else None)


def connect(ui: UiThread, other: UiThread) -> None:
    port = other.app.node.port
    assert port is not None

    async def add(pilot: Pilot[None]) -> None:
        await ui.app.call(ui.app.node.add_peer, "127.0.0.1", port)

    ui.do(add)
    other.wait_until(lambda app: ui.app.node.fingerprint in app.node._links)


def saved_nick(ui: UiThread) -> str:
    assert ui.app.profile is not None
    return Settings.load(ui.app.profile).nick


def type_name(ui: UiThread, name: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        field = pilot.app.screen.query_one("#nick", Input)
        field.focus()
        field.value = ""
        await pilot.press(*name)

    ui.do(go)


def test_enter_keeps_the_suggested_name(people: People) -> None:
    ui = people.start("login", first_run=True)
    screen = prompt(ui)
    suggestion = screen.query_one("#nick", Input).value
    assert suggestion == default_nick()  # the account's full name, else its login name

    async def enter(pilot: Pilot[None]) -> None:
        await pilot.press("enter")

    ui.do(enter)
    ui.wait_until(lambda app: not isinstance(app.screen, FirstRun))
    ui.wait_until(lambda app: app.node.config.nick == suggestion)
    assert ui.wait_until(lambda app: saved_nick(ui) == suggestion)
    ui.wait_until(lambda app: f"{suggestion} " in status_bar(app))


@pytest.mark.parametrize("how", ["click", "enter"])
def test_ok_saves_a_typed_name_and_the_peer_sees_it_at_once(people: People, how: str) -> None:
    alice, bob = people.start("login", first_run=True), people.start("bob")
    connect(alice, bob)
    bob.wait_until(lambda app: "login" in sidebar_text(app))
    prompt(alice)
    type_name(alice, "Alice Martin")

    async def press_ok(pilot: Pilot[None]) -> None:
        if how == "click":
            await pilot.click("#ok")
        else:
            pilot.app.screen.query_one("#ok", Button).focus()
            await pilot.press("enter")

    alice.do(press_ok)
    alice.wait_until(lambda app: not isinstance(app.screen, FirstRun))
    alice.wait_until(lambda app: "Alice Martin " in status_bar(app))
    assert alice.wait_until(lambda app: saved_nick(alice) == "Alice Martin")
    # Live: bob's sidebar shows the new name on the session it already had.
    bob.wait_until(lambda app: "Alice Martin" in sidebar_text(app))
    assert alice.app.node.fingerprint in bob.app.node._links
    assert alice.app.is_running
    assert bob.app.is_running


def test_escape_asks_again_next_time(people: People) -> None:
    ui = people.start("login", first_run=True)
    prompt(ui)

    async def escape(pilot: Pilot[None]) -> None:
        await pilot.press("escape")

    ui.do(escape)
    ui.wait_until(lambda app: not isinstance(app.screen, FirstRun))
    assert ui.app.node.config.nick == "login"
    assert saved_nick(ui) == ""
    assert ui.app.is_running


def test_a_rename_in_settings_reaches_the_peer_at_once(people: People) -> None:
    alice, bob = people.start("alice"), people.start("bob")
    assert not isinstance(alice.app.screen, FirstRun)  # a chosen nick: no prompt
    connect(alice, bob)
    bob.wait_until(lambda app: "alice" in sidebar_text(app))

    async def rename(pilot: Pilot[None]) -> None:
        await pilot.press("f4")
        await pilot.pause()
        assert isinstance(pilot.app.screen, SettingsScreen)
        field = pilot.app.screen.query_one("#nick", Input)
        assert field.value == "alice"
        field.value = "Alice Martin"
        pilot.app.screen.query_one("#ok", Button).focus()
        await pilot.press("enter")

    alice.do(rename)
    alice.wait_until(lambda app: not isinstance(app.screen, SettingsScreen))
    bob.wait_until(lambda app: "Alice Martin" in sidebar_text(app))
    alice.wait_until(lambda app: "Alice Martin " in status_bar(app))
    assert alice.wait_until(lambda app: saved_nick(alice) == "Alice Martin")
    assert alice.app.node.fingerprint in bob.app.node._links  # the same session


def test_slash_nick_renames_live(people: People) -> None:
    alice, bob = people.start("alice"), people.start("bob")
    connect(alice, bob)
    bob.wait_until(lambda app: "alice" in sidebar_text(app))

    async def type_command(pilot: Pilot[None]) -> None:
        composer = pilot.app.query_one("#composer")
        composer.focus()
        await pilot.press(*"/nick Alice Martin", "enter")

    alice.do(type_command)
    bob.wait_until(lambda app: "Alice Martin" in sidebar_text(app))
    alice.wait_until(lambda app: "Alice Martin " in status_bar(app))
    assert alice.wait_until(lambda app: saved_nick(alice) == "Alice Martin")


def test_the_header_follows_a_status_set_elsewhere(people: People) -> None:
    """Defect 5: a script (`p2pim status away ...`, over the UI's control socket) changes
    the node's status; the UI's own header shows it, not "online"; the profile keeps it."""
    ui = people.start("alice")
    ui.wait_until(lambda app: "online" in status_bar(app))
    assert ui.app.profile is not None
    with BlockingClient.connect(control.socket_path(ui.app.profile)) as script:
        script.call("set_status", status="away", text="in a meeting")
    ui.wait_until(lambda app: "away" in status_bar(app) and "in a meeting" in status_bar(app))
    saved = Settings.load(ui.app.profile)
    assert (saved.status, saved.status_text) == ("away", "in a meeting")

    # A status set by auto-away (an automatic change) shows too, and is not kept.
    async def automatic(pilot: Pilot[None]) -> None:
        await ui.app.call(ui.app.node.set_status, "away", "", automatic=True)

    ui.do(automatic)
    ui.wait_until(lambda app: "away" in status_bar(app) and "meeting" not in status_bar(app))
    assert Settings.load(ui.app.profile).status_text == "in a meeting"


# ---- snapshots of the prompt ----------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_first_run_prompt_snapshot(
    snap_compare: Callable[..., bool],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
) -> None:
    monkeypatch.setattr("p2pim.ui.firstrun.default_nick", lambda: "Zoë Quinn")
    config = NodeConfig(nick="zq", listen_host="127.0.0.1", discovery=False)
    config.download_dir = tmp_path / "downloads"
    node = Node(Identity.from_seed(bytes([1]) * 32), config, store_path=tmp_path / "db")
    app = P2pimApp(node, settings=Settings())  # no nick chosen yet: the first run

    async def prompt_shown(pilot: Pilot[None]) -> None:
        for _ in range(500):
            if isinstance(pilot.app.screen, FirstRun):
                break
            await pilot.pause(0.02)
        assert isinstance(pilot.app.screen, FirstRun)
        await pilot.pause()
        pilot.app.clear_notifications()  # no toasts, no blinking cursors: a still picture
        for screen in pilot.app.screen_stack:
            for widget in screen.query("TextArea, Input"):
                if isinstance(widget, TextArea | Input):
                    widget.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=prompt_shown)
