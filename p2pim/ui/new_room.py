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
from textual.widgets import Button, Input, Label

from p2pim.ui.dialogs import Dialog
from p2pim.ui.keys import Field, PickList


class NewRoom(Dialog):
    # Enter is each widget's, in the order typed (fields and the list run their keys as
    # they arrive: p2pim.ui.keys): a field's Enter moves on, the list's creates the room.
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

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
                yield PickList(*[(label, fp) for label, fp in self._peers], id="members")
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

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "name":
            self.query_one("#topic", Input).focus()
        elif self._peers:
            self.query_one("#members", PickList).focus()
        else:
            self._done()

    def on_pick_list_confirmed(self, event: PickList.Confirmed) -> None:
        event.stop()
        self._done()

    def _done(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        if not name:  # stay open: what was typed and picked is kept
            self.query_one("#problem", Label).update("A room needs a name.")
            self.query_one("#name", Input).focus()
            return
        topic = self.query_one("#topic", Input).value.strip()
        members = self.query("#members")
        chosen = list(members.first(PickList).selected) if members else []
        self.close((name, topic, chosen))
