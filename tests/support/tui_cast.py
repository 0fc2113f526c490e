"""People at their screens, for Pilot tests against real nodes: a cast of UIs (each on
a thread of its own, see tui_harness.py), connecting them, typing and pressing as a person
does, and reading what the screens show.  One home for what every UI test needs."""

from __future__ import annotations

import os
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from p2pim import Identity
from p2pim.ui.app import P2pimApp
from p2pim.ui.composer import Composer
from p2pim.ui.conversation import Conversation, FileCard, MessageView
from p2pim.ui.sidebar import Sidebar
from tests.support.nodes import loopback_node
from tests.support.tui_harness import UiThread

# ---- reading the screens ------------------------------------------------------------------


def sidebar_text(app: P2pimApp) -> str:
    sidebar = app.query_one(Sidebar)
    return "\n".join(
        str(sidebar.get_option_at_index(i).prompt) for i in range(sidebar.option_count)
    )


def shown_messages(app: P2pimApp) -> list[str]:
    return [str(view.render()) for view in app.query(MessageView)]


def screen_text(app: P2pimApp) -> str:
    """Every character the active screen shows (a modal: the dialog's own text)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def toasts(app: P2pimApp, severity: str | None = None) -> list[str]:
    return [
        str(n.message) for n in app._notifications if severity is None or n.severity == severity
    ]


def status_bar(app: P2pimApp) -> str:
    return str(app.query_one("#status", Static).render())


def card_text(app: P2pimApp, offer: str) -> str:
    cards = app.query(f"#t-{offer}")
    return str(cards.first(FileCard).render()) if cards else ""


# ---- driving the UIs ----------------------------------------------------------------------


class Cast:
    """UIs started for one test; all closed at its end, newest first."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.uis: list[UiThread] = []

    def start(
        self, nick: str, *, home: str | None = None, identity: Identity | None = None
    ) -> UiThread:
        node = loopback_node(nick, self.tmp_path / (home or nick), identity)
        ui = UiThread(P2pimApp(node))
        self.uis.append(ui)
        return ui

    def close(self) -> None:
        errors: list[BaseException] = []
        for ui in reversed(self.uis):
            try:
                ui.close()
            except BaseException as exc:  # close the others first, then report
                errors.append(exc)
        if errors:
            raise errors[0]


def fp(ui: UiThread) -> str:
    return ui.app.node.fingerprint


def connect(dialer: UiThread, listener: UiThread) -> None:
    """`dialer` adds `listener` by address; both sidebars show the other online."""
    port = listener.app.node.port
    assert port is not None

    async def add(pilot: Pilot[None]) -> None:
        await dialer.app.call(dialer.app.node.add_peer, "127.0.0.1", port)

    dialer.do(add)
    listener_nick, dialer_nick = listener.app.node.config.nick, dialer.app.node.config.nick
    dialer.wait_until(
        lambda app: (
            app.model.contacts.get(fp(listener)) is not None
            and app.model.contacts[fp(listener)].status == "online"
        )
    )
    listener.wait_until(
        lambda app: (
            app.model.contacts.get(fp(dialer)) is not None
            and app.model.contacts[fp(dialer)].status == "online"
        )
    )
    assert f"● {listener_nick}" in sidebar_text(dialer.app)
    assert f"● {dialer_nick}" in sidebar_text(listener.app)


def open_conversation(ui: UiThread, key: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        pilot.app.open_conversation(key)

    ui.do(go)
    ui.wait_until(lambda app: app.model.current == key and app.query_one(Conversation).key == key)


def type_line(ui: UiThread, text: str) -> None:
    """Type `text` into the message input, as a user would, and press Enter."""

    async def go(pilot: Pilot[None]) -> None:
        composer = pilot.app.query_one(Composer)
        assert not composer.disabled
        composer.focus()
        await pilot.press(*text, "enter")

    ui.do(go)


def say(ui: UiThread, text: str) -> None:
    """Put a message in the input at once and press Enter (quicker than typing it)."""

    async def go(pilot: Pilot[None]) -> None:
        composer = pilot.app.query_one(Composer)
        assert not composer.disabled
        composer.focus()
        composer.insert(text)
        await pilot.press("enter")

    ui.do(go)


def press(ui: UiThread, *keys: str) -> None:
    async def go(pilot: Pilot[None]) -> None:
        await pilot.press(*keys)

    ui.do(go)


def received(ui: UiThread, sender: UiThread) -> list[str]:
    return [line.text for line in ui.app.model.conversations.get(fp(sender), [])]


def wait_received(ui: UiThread, sender: UiThread, text: str) -> None:
    ui.wait_until(lambda app: text in received(ui, sender))


def payload(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def room_id(ui: UiThread, name: str) -> str:
    return ui.wait_until(
        lambda app: next((r.room for r in app.model.rooms.values() if r.name == name), "")
    )
