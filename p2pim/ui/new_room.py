"""The "New room" dialog (Ctrl+N): a name, a topic, and the people to invite.

Dismisses with (name, topic, fingerprints) or None.  Enter walks the form the way people
fill it in: from the name to the topic, from the topic to the people (when there is
anyone to pick), and from the list, or on the Create button, creates the room; Space
picks a person; Escape or Cancel closes without making anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Button, Input, Label, SelectionList

from p2pim.ui.dialogs import Dialog
from p2pim.ui.keys import Field


class NewRoom(Dialog):
    # Enter is the screen's before the focused widget's (as in PickPeers): else the list
    # would toggle the highlighted person as the room is created, and an Input would
    # submit the whole form from the name field.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "next", "Next", priority=True, show=False),
    ]

    def __init__(self, peers: Sequence[tuple[str, str]]) -> None:  # (label, fingerprint)
        super().__init__()
        self._peers = peers

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New room", classes="title")
            yield Field(placeholder="room name", id="name")
            yield Field(placeholder="topic (optional)", id="topic")
            if self._peers:
                yield Label("Invite (Space picks; more later with /invite):", classes="hint")
                yield SelectionList[str](*[(label, fp) for label, fp in self._peers], id="members")
            else:
                yield Label(
                    "Nobody to invite yet: peers you have met appear here. "
                    "Invite them later with /invite.",
                    classes="hint",
                )
            yield Label("", id="problem", classes="hint")
            yield self.buttons(
                Button("Create", variant="primary", id="ok"), Button("Cancel", id="cancel")
            )

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def action_next(self) -> None:
        focused = self.focused
        if isinstance(focused, Button):
            focused.press()
        elif focused is not None and focused.id == "name":
            self.query_one("#topic", Input).focus()
        elif focused is not None and focused.id == "topic" and self._peers:
            self.query_one("#members", SelectionList).focus()
        else:
            self._done()

    def _done(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        if not name:  # stay open: what was typed and picked is kept
            self.query_one("#problem", Label).update("A room needs a name.")
            self.query_one("#name", Input).focus()
            return
        topic = self.query_one("#topic", Input).value.strip()
        members = self.query("#members")
        chosen = list(members.first(SelectionList).selected) if members else []
        self.close((name, topic, chosen))
