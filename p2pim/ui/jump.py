"""Ctrl+K: jump to any person, room or group by typing part of its name.

Keys come in bursts (typing ahead, a paste): "ben⏎hi⏎" reaches the name field whole,
each key routed on arrival, while the dialog is still closing.  So Enter chooses at once,
in the order typed, and the keys after it are the conversation's: the dialog hands them
to `type_ahead` (the app's message input) instead of typing them into a closing field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from p2pim.api import ROOM_PREFIX
from p2pim.ui.dialogs import Dialog
from p2pim.ui.keys import Field
from p2pim.ui.model import GROUP_PREFIX, Model

SHOWN = 12


def destinations(model: Model) -> list[tuple[str, str]]:
    """(label, conversation key) of every place a person can go, people first."""
    people = [(c.nick, c.fingerprint) for c in model.contacts.values() if c.fingerprint != model.me]
    rooms = [
        (f"# {r.name}", ROOM_PREFIX + r.room)
        for r in model.rooms.values()
        if r.joined or r.invited_us
    ]
    groups = [(f"≡ {name}", GROUP_PREFIX + name) for name in model.groups]
    return sorted(people, key=lambda p: p[0].casefold()) + rooms + groups


def matching(entries: list[tuple[str, str]], typed: str) -> list[tuple[str, str]]:
    """Entries whose label contains `typed` (any case); those starting with it first."""
    needle = typed.strip().casefold()
    hits = [e for e in entries if needle in e[0].casefold().lstrip("#≡ ")]
    return sorted(hits, key=lambda e: not e[0].casefold().lstrip("#≡ ").startswith(needle))


class JumpField(Field):
    """The name field: Enter chooses now, not once its message has come round (the keys
    queued behind it would have changed the name first); once chosen, what is typed
    goes to the conversation."""

    async def _on_key(self, event: events.Key) -> None:
        screen = self.screen
        if isinstance(screen, JumpScreen) and (event.key == "enter" or not screen.is_open):
            event.stop()
            event.prevent_default()
            if screen.is_open:
                screen.choose()
            else:
                screen.type_ahead(event)
            return
        await super()._on_key(event)


class JumpScreen(Dialog):
    """Dismisses with a conversation key, or None (Escape).  Keys typed after the choice,
    while it closes, go to `type_ahead` (by default, nowhere)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("down", "move(1)", show=False, priority=True),
        Binding("up", "move(-1)", show=False, priority=True),
    ]
    DEFAULT_CSS = """
    JumpScreen OptionList { height: auto; max-height: 14; margin-top: 1; }
    """

    def __init__(
        self, model: Model, type_ahead: Callable[[events.Key], None] | None = None
    ) -> None:
        super().__init__()
        self._entries = destinations(model)
        self._type_ahead = type_ahead
        self._shown_for: str | None = None  # what the list shows the matches of

    def type_ahead(self, event: events.Key) -> None:
        """A key typed after the choice: the chosen conversation's."""
        if self._type_ahead is not None:
            self._type_ahead(event)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Jump to a person, room or group", classes="title")
            yield JumpField(placeholder="part of a name", id="typed")
            yield OptionList(id="places")

    def on_mount(self) -> None:
        self._show("")
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show(event.value)

    def _show(self, typed: str) -> None:
        self._shown_for = typed
        places = self.query_one(OptionList)
        places.clear_options()
        hits = matching(self._entries, typed)
        places.add_options(Option(Text(label, no_wrap=True), id=key) for label, key in hits[:SHOWN])
        if hits:
            places.highlighted = 0
        else:
            places.add_option(Option(Text("no match", "dim italic"), disabled=True))

    def action_move(self, step: int) -> None:
        places = self.query_one(OptionList)
        if places.highlighted is not None and places.option_count:
            places.highlighted = max(0, min(places.option_count - 1, places.highlighted + step))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # its ids are conversation keys, but the app's sidebar must not act
        self.close(event.option_id)

    def choose(self) -> None:
        """The highlighted place, if any (Enter).  In a burst the list may not show the
        name typed yet (its change message comes after the keys): it does first."""
        typed = self.query_one(JumpField).value
        if typed != self._shown_for:
            self._show(typed)
        places = self.query_one(OptionList)
        if places.highlighted is None:
            return
        option = places.get_option_at_index(places.highlighted)
        if option.id is not None:
            self.close(option.id)
