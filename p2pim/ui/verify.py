"""The verification screen: compare safety numbers, or pair with a one-time code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Button, Label, Static

from p2pim.identity import format_fingerprint
from p2pim.ui import format as fmt
from p2pim.ui.dialogs import Dialog


@dataclass(frozen=True, slots=True)
class VerifyView:
    nick: str
    fingerprint: str
    my_fingerprint: str
    safety_number: str
    trust: str | None
    previous_fingerprint: str | None = None


class VerifyScreen(Dialog):
    """Dismisses with "verified", "show-code", "enter-code" or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("m", "match", "They match"),
    ]
    DEFAULT_CSS = """
    VerifyScreen #number { text-style: bold; text-align: center; padding: 1 0; }
    VerifyScreen .warning { color: $error; text-style: bold; }
    """

    def __init__(self, view: VerifyView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        view = self.view
        with Vertical():
            yield Label(f"Verify {view.nick}", classes="title")
            if view.trust == "key_changed":
                yield Static(  # a Static wraps; a Label would cut the sentence off
                    "⚠ This key replaced the one you knew"
                    + (f" ({view.previous_fingerprint[:16]}…)" if view.previous_fingerprint else "")
                    + ". Only mark it verified after comparing the number in person or by phone.",
                    classes="warning",
                )
            elif view.trust == "verified":
                yield Label("✔ Already verified.")
            yield Label("Safety number (the same on both screens):")
            yield Static(number_block(view.safety_number), id="number")
            yield Static(
                Text.assemble(
                    ("Their key  ", "dim"),
                    key_lines(view.fingerprint),
                    ("\nYour key   ", "dim"),
                    key_lines(view.my_fingerprint),
                )
            )
            yield self.buttons(
                Button("They match (m)", variant="success", id="verified"),
                Button("Show code", id="show-code"),
                Button("Enter code", id="enter-code"),
                Button("Close", id="close"),
            )

    def action_match(self) -> None:
        self.dismiss("verified")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "close" else event.button.id)


def number_block(digits: str) -> str:
    """60 digits as 3 rows of 4 groups of 5: easy to read aloud and compare."""
    groups = fmt.grouped(digits).split()
    return "\n".join("  ".join(groups[i : i + 4]) for i in range(0, len(groups), 4))


def key_lines(fingerprint: str) -> str:
    """A fingerprint in two lines of eight groups, so it never wraps mid-group."""
    groups = format_fingerprint(fingerprint).split()
    return " ".join(groups[:8]) + "\n           " + " ".join(groups[8:])
