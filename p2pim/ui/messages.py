"""The UI's own Textual messages: what reaches the app's message queue from outside it."""

from __future__ import annotations

from textual.message import Message

from p2pim import events as ev


class NodeEvent(Message):
    """A node event, delivered on the UI's message queue."""

    def __init__(self, event: ev.NodeEvent) -> None:
        super().__init__()
        self.event = event
