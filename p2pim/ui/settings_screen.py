"""Settings: nick, download folder, mDNS interfaces, auto-away, notifications."""

from __future__ import annotations

import dataclasses

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Checkbox, Input, Label

from p2pim.api import MAX_NICK_BYTES
from p2pim.settings import Settings
from p2pim.ui.dialogs import Dialog
from p2pim.ui.keys import Field


class SettingsScreen(Dialog):
    """Dismisses with the new `Settings` (not yet saved: the app saves them) or None."""

    def __init__(self, settings: Settings, port: int | None) -> None:
        super().__init__()
        self._settings, self._port = settings, port

    def compose(self) -> ComposeResult:
        s = self._settings
        with Vertical():
            yield Label("Settings", classes="title")
            yield Label("Nick (shown to peers; they see a change at once)")
            yield Field(s.nick, id="nick")
            yield Label("Download folder")
            yield Field(s.download_dir, id="download_dir")
            yield Label("mDNS interfaces, comma separated (empty: all; from the next start)")
            yield Field(", ".join(s.interfaces), id="interfaces")
            yield Label("Away after this many idle minutes (0: never)")
            yield Field(f"{s.auto_away_minutes:g}", id="away", type="number")
            yield Checkbox("Terminal bell on new messages and offers", s.bell, id="bell")
            yield Checkbox(
                "Desktop notifications (notify-send)", s.desktop_notifications, id="desktop"
            )
            if self._port:
                yield Label(f"This node listens on port {self._port}.", classes="hint")
            yield self.buttons(
                Button("Save", variant="primary", id="ok"), Button("Cancel", id="cancel")
            )

    def _done(self) -> None:
        nick = self.query_one("#nick", Input).value.strip()
        if not nick or len(nick.encode()) > MAX_NICK_BYTES:
            self.notify(f"A nick is 1 to {MAX_NICK_BYTES} bytes.", severity="error")
            return
        try:
            away = max(0.0, float(self.query_one("#away", Input).value or 0))
        except ValueError:
            self.notify("Away minutes: a number.", severity="error")
            return
        interfaces = [i.strip() for i in self.query_one("#interfaces", Input).value.split(",")]
        self.close(
            dataclasses.replace(
                self._settings,
                nick=nick,
                download_dir=self.query_one("#download_dir", Input).value.strip(),
                interfaces=[i for i in interfaces if i],
                auto_away_minutes=away,
                bell=self.query_one("#bell", Checkbox).value,
                desktop_notifications=self.query_one("#desktop", Checkbox).value,
            )
        )
