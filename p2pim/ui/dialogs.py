"""Small modal dialogs: ask for text, confirm, pick peers; and the base every dialog shares.

Buttons go through ONE handler, `Dialog.on_button_pressed`, which looks the button's id up
in the dialog's `BUTTONS` table (id → action) and runs that action, the same one a key
binding runs.  No dialog defines `on_button_pressed` of its own: Textual calls that
handler on every class of the MRO, so a base handler that dismissed plus a subclass
handler that dismissed again popped the main screen too (`ScreenStackError`: the app
ended at the first button pressed, and a clicked "Accept" reached the base as "cancel").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from p2pim.ui.keys import Field, PickList

if TYPE_CHECKING:
    from p2pim.events import NodeEvent
    from p2pim.ui.model import Model

DIALOG_CSS = """
Dialog { align: center middle; }
Dialog > Vertical {
    width: 72; max-width: 100%; height: auto; max-height: 100%;
    border: thick $accent; background: $surface; padding: 1 2; overflow-y: auto;
}
Dialog .title { text-style: bold; margin-bottom: 1; }
Dialog .hint { color: $text-muted; }
/* Docked: on a short terminal the fields scroll, the buttons stay in sight (and clickable). */
Dialog Horizontal.buttons {
    dock: bottom; height: auto; padding-top: 1; align-horizontal: right; background: $surface;
}
Dialog Button { margin-left: 1; }
"""


class Dialog(ModalScreen[object]):
    """A centred box; Escape cancels (dismisses with None).

    `BUTTONS` maps each button id to the action it runs (`"ok"` runs `action_ok`, which
    calls `_done`).  `close(result)` dismisses at most once, and only while the dialog is
    on top; `follow(event, model)` sees every node event while the dialog is open, so a
    dialog can close itself when what it asks about was settled elsewhere."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    BUTTONS: ClassVar[dict[str, str]] = {"ok": "ok", "cancel": "cancel"}

    def __init__(self) -> None:
        super().__init__()
        self._closing_with: tuple[object] | None = None  # the result, once close() was called
        self._dismissed = False
        self._notice: str | Callable[[], str] = ""

    @property
    def is_open(self) -> bool:
        """Still asking: neither answered nor closing."""
        return self._closing_with is None

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()  # a dialog's buttons are its own business, not the app's
        action = self.BUTTONS.get(event.button.id or "", "cancel")
        await self.run_action(action)

    def action_ok(self) -> None:
        self._done()

    def action_cancel(self) -> None:
        self.close(None)

    def _done(self) -> None:
        self.close(None)  # dialogs with an "ok" button say what it returns

    def close(self, result: object = None, *, notice: str | Callable[[], str] = "") -> None:
        """Dismiss with `result`, once: a second call (a key and a button for one press, a
        node event after the answer) does nothing.  Under another screen (the transfers
        list opened over an offer, say) it waits until it is on top again: `dismiss` pops
        whichever screen is on top.  `notice` is shown as it goes, when the user sees it
        (a function: worked out then, as things may have moved on meanwhile)."""
        if self._closing_with is not None:
            return
        self._closing_with, self._notice = (result,), notice
        self._dismiss_if_on_top()

    @on(events.ScreenResume)
    def _dismiss_if_on_top(self) -> None:
        if self._closing_with is not None and not self._dismissed and self.is_active:
            self._dismissed = True
            notice = self._notice() if callable(self._notice) else self._notice
            if notice:
                self.notify(notice)
            self.dismiss(self._closing_with[0])

    def follow(self, event: NodeEvent | None, model: Model) -> None:
        """A node event (None: the model changed without one) while the dialog is up."""

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
                yield Field(value, placeholder=placeholder, id=f"field-{i}")
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
        self.close(tuple(field.value for field in self.query(Input)))


class Confirm(Dialog):
    """A question with yes/no; dismisses with True or False (Escape: False)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "no", "No"),
        Binding("y", "yes", "Yes"),
    ]
    BUTTONS: ClassVar[dict[str, str]] = {"yes": "yes", "no": "no"}

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
        self.close(True)

    def action_no(self) -> None:
        self.close(False)


class PickPeers(Dialog):
    """Choose peers from a list (space toggles); dismisses with (name, fingerprints)."""

    # Enter is each widget's, in the order typed (p2pim.ui.keys): the name field's moves
    # on to the list, the list's confirms (it never toggles the highlighted peer).
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

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
                yield Field(self._name, placeholder="group name", id="name")
            yield PickList(
                *[(label, fp, fp in self._selected) for label, fp in self._peers], id="peers"
            )
            yield Label("Space selects, Enter confirms, Escape cancels.", classes="hint")
            yield self.buttons(
                Button(self._ok, variant="primary", id="ok"), Button("Cancel", id="cancel")
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # the name first, then on to the list
        self.query_one("#peers", PickList).focus()

    def on_pick_list_confirmed(self, event: PickList.Confirmed) -> None:
        event.stop()
        self._done()

    def _done(self) -> None:
        name = self.query_one("#name", Input).value.strip() if self._name is not None else ""
        chosen = list(self.query_one("#peers", PickList).selected)
        self.close((name, chosen))
