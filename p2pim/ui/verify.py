"""The verification screen: compare safety numbers, or pair with a one-time code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Button, Label, Static

from p2pim.events import NodeEvent, PairingFailed, PeerTrustChanged
from p2pim.identity import format_fingerprint
from p2pim.terminal import format_safety_number
from p2pim.ui.dialogs import Dialog
from p2pim.ui.model import Model


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
    BUTTONS: ClassVar[dict[str, str]] = {
        "verified": "match",
        "show-code": "show_code",
        "enter-code": "enter_code",
        "close": "cancel",
    }
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
        self.close("verified")

    def action_show_code(self) -> None:
        self.close("show-code")

    def action_enter_code(self) -> None:
        self.close("enter-code")


class PairingCodeScreen(Dialog):
    """Shows our one-time pairing code until the other side has used it (then it closes
    itself: paired, or failed) or the user closes it.  Dismisses with None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close")]
    BUTTONS: ClassVar[dict[str, str]] = {"close": "cancel"}
    DEFAULT_CSS = """
    PairingCodeScreen #code { text-style: bold; text-align: center; padding: 1 0; }
    """

    def __init__(self, code: str, nick: str, port: int | None = None) -> None:
        super().__init__()
        self.code, self._nick, self._port = code, nick, port

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Pair with {self._nick}", classes="title")
            yield Static(self.code, id="code")
            yield Static(
                f"Read this code to {self._nick} (in person or by phone). They open Verify "
                "(Ctrl+R) on their side, choose “Enter code” and type it. It works once, "
                "for five minutes; this closes by itself when they have paired."
            )
            if self._port:  # what they type besides the code if their node never reached us
                yield Label(
                    f"If they are asked for your address: this computer, port {self._port}.",
                    classes="hint",
                )
            yield self.buttons(Button("Close", id="close"))

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def follow(self, event: NodeEvent | None, model: Model) -> None:
        match event:
            case PeerTrustChanged(fingerprint=peer, trust="verified"):
                # Whoever used the code: that is the peer now verified, so name them.
                self.close(None, notice=f"Paired: {model.nick(peer)} is verified on both sides.")
            case PairingFailed():  # the code is spent (the app says why)
                self.close(None)


def number_block(digits: str) -> str:
    """60 digits as 3 rows of 4 groups of 5: easy to read aloud and compare."""
    groups = format_safety_number(digits).split()
    return "\n".join("  ".join(groups[i : i + 4]) for i in range(0, len(groups), 4))


def key_lines(fingerprint: str) -> str:
    """A fingerprint in two lines of eight groups, so it never wraps mid-group."""
    groups = format_fingerprint(fingerprint).split()
    return " ".join(groups[:8]) + "\n           " + " ".join(groups[8:])
