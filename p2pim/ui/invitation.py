"""A room invitation: Join, Decline, or Later (the room stays "(invited)" in the list)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Button, Label, Static

from p2pim.events import NodeEvent
from p2pim.ui.dialogs import Dialog
from p2pim.ui.model import Model

JOIN, DECLINE = "join", "decline"


class InvitationScreen(Dialog):
    """Dismisses with "join", "decline", or None (Later, Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Later")]
    BUTTONS: ClassVar[dict[str, str]] = {"join": "join", "decline": "decline", "later": "cancel"}

    def __init__(self, room: str, name: str, inviter_nick: str, topic: str = "") -> None:
        super().__init__()
        self.room, self._name, self._inviter, self._topic = room, name, inviter_nick, topic

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Invitation to #{self._name}", classes="title")
            who = self._inviter or "A member"
            yield Static(f"{who} invites you to the room #{self._name}.")
            # The invitation names no topic: it comes just after, with the room's state.
            yield Static(f"Topic: {self._topic}", classes="hint", id="topic")
            yield Label(
                "Later keeps the invitation: open the room in the list to answer.",
                classes="hint",
            )
            yield self.buttons(
                Button("Join", variant="success", id="join"),
                Button("Decline", variant="error", id="decline"),
                Button("Later (Esc)", id="later"),
            )

    def on_mount(self) -> None:
        self.query_one("#topic").display = bool(self._topic)
        self.query_one("#join", Button).focus()

    def action_join(self) -> None:
        self.close(JOIN)

    def action_decline(self) -> None:
        self.close(DECLINE)

    def follow(self, event: NodeEvent | None, model: Model) -> None:
        """Answered elsewhere (/join, another face) or withdrawn: nothing left to ask.
        The room's topic, once it is known, is shown."""
        room = model.rooms.get(self.room)
        if room is not None and room.topic != self._topic:
            self._topic = room.topic
            topic = self.query_one("#topic", Static)
            topic.update(f"Topic: {room.topic}")
            topic.display = bool(room.topic)
        if self.is_open and (room is None or not room.invited_us):
            joined = room is not None and room.joined
            what = "joined." if joined else "no longer an invitation."
            self.close(None, notice=f"#{self._name}: {what}")
