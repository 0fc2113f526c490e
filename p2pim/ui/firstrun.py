"""The first run on a profile: which name do people on the network see?

Offered: the account's full name (else the login name), so that Enter alone is a good
answer.  OK or Enter keeps what the field holds; the node announces it and keeps it in
the profile (`Node.set_nick`).  Escape leaves the name unchosen: the suggestion is used
for this run and the question comes back at the next start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Input, Label, Static

from p2pim.config import default_nick
from p2pim.settings import check_nick
from p2pim.ui.dialogs import Dialog
from p2pim.ui.keys import Field

if TYPE_CHECKING:
    from p2pim.ui.actions.context import UiContext


class FirstRun(Dialog):
    """Dismisses with the chosen name, or None (Escape: ask again next time)."""

    DEFAULT_CSS = """
    FirstRun #nick { margin: 1 0; }
    """

    def __init__(self, suggestion: str) -> None:
        super().__init__()
        self._suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Welcome to p2pim", classes="title")
            yield Static(
                "Which name should people on your network see? "
                "You can change it later in Settings (F4); peers see a change at once."
            )
            yield Field(self._suggestion, placeholder="your name", id="nick")
            yield Static(  # wraps, unlike a Label
                "The name is only a label: people recognise you by your key "
                "(verify it with Ctrl+R).",
                classes="hint",
            )
            yield self.buttons(Button("OK", variant="primary", id="ok"))

    def on_mount(self) -> None:
        self.query_one("#nick", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._done()

    def _done(self) -> None:
        name = self.query_one("#nick", Input).value.strip()
        problem = check_nick(name)
        if problem is not None:
            self.notify(problem[0].upper() + problem[1:] + ".", severity="error")
            return
        self.close(name)  # the one way out with an answer: Enter and OK both land here


def ask_name(ui: UiContext) -> None:
    """Ask for the name (over whatever else is up); the answer goes to the node."""
    from p2pim.ui.actions.profile import rename

    def chosen(name: object) -> None:
        if isinstance(name, str):
            ui.spawn(rename(ui, name))

    ui.show(FirstRun(default_nick()), chosen)
