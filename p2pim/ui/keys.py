"""Editing keys handled in the order they were typed, for the message input and the fields.

Textual runs a widget's key bindings (Backspace → delete_left, ←, Home, Ctrl+W, Enter →
submit in a field…) only once the key has bubbled up to the app, one message queue after
another, while a printable key is inserted by the focused widget at once.  So in a burst
of keys (typing ahead on a laggy SSH link, a paste) the characters after an editing key
were inserted before it ran: "xy⌫⌫z" came out as "x".  Widgets here run their own
bindings as the key arrives instead (the upstream issue is open in Textual).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, OptionList, SelectionList


def actions_by_key(bindings: list[BindingType]) -> dict[str, str]:
    """A widget class's own bindings, key by key ("home,ctrl+a" is two keys)."""
    actions: dict[str, str] = {}
    for binding in bindings:
        if isinstance(binding, Binding):
            for key in binding.key.split(","):
                actions.setdefault(key.strip(), binding.action)
    return actions


async def run_in_order(widget: Widget, actions: dict[str, str], event: events.Key) -> bool:
    """Run the widget's binding for `event` now, if it has one; whether it did."""
    action = actions.get(event.key)
    if action is None:
        return False
    event.stop()
    event.prevent_default()
    await widget.app.run_action(action, widget)
    return True


INPUT_ACTIONS = actions_by_key(Input.BINDINGS)


class Field(Input):
    """A one-line input whose editing keys (and Enter) keep their place in a burst."""

    async def _on_key(self, event: events.Key) -> None:
        if not await run_in_order(self, INPUT_ACTIONS, event):
            await super()._on_key(event)


LIST_ACTIONS = actions_by_key(SelectionList.BINDINGS) | actions_by_key(OptionList.BINDINGS)


class PickList(SelectionList[str]):
    """A multi-select where Space picks and Enter confirms the form, both in the order
    typed: a screen-wide (priority) Enter ran before the keys typed just ahead of it
    reached their field, so "standup⏎" in a burst submitted an empty name."""

    @dataclass
    class Confirmed(Message):
        pick_list: PickList

    async def _on_key(self, event: events.Key) -> None:
        if event.key in ("enter", "space"):
            event.stop()
            event.prevent_default()
            if event.key == "enter":
                self.post_message(self.Confirmed(self))
            elif self.highlighted is not None:
                # Toggled now: the list's own "select" only posts a message, handled after
                # the keys queued behind it, so "Space ↓ Space" toggled the second row twice.
                self.toggle(self.get_option_at_index(self.highlighted).value)
        elif not await run_in_order(self, LIST_ACTIONS, event):
            await super()._on_key(event)
