"""Small modal dialogs: ask for text, confirm, pick peers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static

DIALOG_CSS = """
Dialog { align: center middle; }
Dialog > Vertical {
    width: 72; max-width: 100%; height: auto; max-height: 100%;
    border: thick $accent; background: $surface; padding: 1 2;
}
Dialog .title { text-style: bold; margin-bottom: 1; }
Dialog .hint { color: $text-muted; }
Dialog Horizontal.buttons { height: auto; margin-top: 1; align-horizontal: right; }
Dialog Button { margin-left: 1; }
"""


class Dialog(ModalScreen[object]):
    """A centred box; Escape cancels (dismisses with None)."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """The usual pair: "ok" confirms (`_done`), any other button cancels."""
        if event.button.id == "ok":
            self._done()
        else:
            self.dismiss(None)

    def _done(self) -> None:
        self.dismiss(None)  # dialogs with an "ok" button say what it returns

    def buttons(self, *buttons: Button) -> Horizontal:
        return Horizontal(*buttons, classes="buttons")


class Ask(Dialog):
    """One or more text fields; dismisses with their values (a tuple) or None."""

    def __init__(
        self,
        title: str,
        fields: Sequence[tuple[str, str]],  # (placeholder, initial value)
        *,
        hint: str = "",
        ok: str = "OK",
    ) -> None:
        super().__init__()
        self._title, self._fields, self._hint, self._ok = title, fields, hint, ok

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            for i, (placeholder, value) in enumerate(self._fields):
                yield Input(value, placeholder=placeholder, id=f"field-{i}")
            if self._hint:
                yield Label(self._hint, classes="hint")
            yield self.buttons(
                Button(self._ok, variant="primary", id="ok"), Button("Cancel", id="cancel")
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
        else:
            self._done()

    def _done(self) -> None:
        self.dismiss(tuple(field.value for field in self.query(Input)))


class Confirm(Dialog):
    """A question with yes/no; dismisses with True or False (Escape: False)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "no", "No"),
        Binding("y", "yes", "Yes"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self._question, self._yes, self._no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._question)  # wraps, unlike a Label
            yield self.buttons(
                Button(self._yes, variant="error", id="yes"), Button(self._no, id="no")
            )

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PickPeers(Dialog):
    """Choose peers from a list (space toggles); dismisses with (name, fingerprints)."""

    # Enter is ours before the focused widget's: a screen `key_enter` also fired on the
    # name field's Enter (saving a group with nobody in it) and on the list's (toggling
    # the highlighted peer as it confirmed).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "confirm", "Confirm", priority=True, show=False),
    ]

    def __init__(
        self,
        title: str,
        peers: Sequence[tuple[str, str]],  # (label, fingerprint)
        *,
        selected: Sequence[str] = (),
        name: str | None = None,  # a name field too (contact groups)
        ok: str = "OK",
    ) -> None:
        super().__init__()
        self._title, self._peers, self._selected = title, peers, set(selected)
        self._name, self._ok = name, ok

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            if self._name is not None:
                yield Input(self._name, placeholder="group name", id="name")
            yield SelectionList[str](
                *[(label, fp, fp in self._selected) for label, fp in self._peers], id="peers"
            )
            yield Label("Space selects, Enter confirms, Escape cancels.", classes="hint")
            yield self.buttons(
                Button(self._ok, variant="primary", id="ok"), Button("Cancel", id="cancel")
            )

    def action_confirm(self) -> None:
        focused = self.focused
        if isinstance(focused, Input):  # the name first, then on to the list
            self.query_one("#peers", SelectionList).focus()
        elif isinstance(focused, Button):
            focused.press()
        else:
            self._done()

    def _done(self) -> None:
        name = self.query_one("#name", Input).value.strip() if self._name is not None else ""
        chosen = list(self.query_one("#peers", SelectionList).selected)
        self.dismiss((name, chosen))
