"""The incoming-offer modal: who offers what, how big, and how far we trust them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from p2pim.api import TransferState
from p2pim.events import NodeEvent, OfferReceived
from p2pim.ui import format as fmt
from p2pim.ui.dialogs import Dialog
from p2pim.ui.keys import Field
from p2pim.ui.model import Model

TRUST_WORDS = {
    "verified": ("✔ verified: you compared safety numbers", "green"),
    "unverified": ("unverified: you have not compared safety numbers", "yellow"),
    "key_changed": ("⚠ KEY CHANGED: this may not be who you think", "bold red"),
}
SHOWN_FILES = 200
# What the offer dialog says as it closes because the offer was settled elsewhere.
SETTLED = {
    TransferState.OFFERED: "{nick}'s offer was answered elsewhere.",
    TransferState.ACCEPTED: "{nick}'s offer was accepted: see Transfers (F3).",
    TransferState.COMPLETED: "{nick}'s offer was accepted and has arrived: see Transfers (F3).",
    TransferState.DECLINED: "{nick}'s offer was declined.",
    TransferState.CANCELLED: "{nick}'s offer was cancelled.",
    TransferState.EXPIRED: "{nick}'s offer expired before it was answered.",
    TransferState.FAILED: "{nick}'s transfer failed: see Transfers (F3).",
    "gone": "{nick}'s offer is no longer open.",
}


@dataclass(frozen=True, slots=True)
class Answer:
    accept: bool
    directory: str | None = None  # None: the configured download folder


def files_table(offer: OfferReceived) -> Table:
    table = Table(box=None, expand=True, show_header=True, pad_edge=False)
    table.add_column("File", ratio=1, overflow="fold")
    table.add_column("Size", justify="right", no_wrap=True)
    for file in offer.files[:SHOWN_FILES]:
        table.add_row(file.path, fmt.size(file.size))
    if len(offer.files) > SHOWN_FILES:
        table.add_row(f"… and {len(offer.files) - SHOWN_FILES} more", "")
    return table


class OfferScreen(Dialog):
    """Dismisses with an `Answer`, or None when put off (Escape: answer later)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept", "Accept"),
        Binding("d", "decline", "Decline"),
        Binding("escape", "cancel", "Later"),
    ]
    BUTTONS: ClassVar[dict[str, str]] = {
        "accept": "accept",
        "decline": "decline",
        "later": "cancel",
    }
    DEFAULT_CSS = """
    OfferScreen VerticalScroll { height: auto; max-height: 12; border: round $panel; }
    OfferScreen .warning { color: $error; text-style: bold; }
    """

    def __init__(self, offer: OfferReceived, trust: str | None, download_dir: str) -> None:
        super().__init__()
        self.offer, self._trust, self._download_dir = offer, trust or "unverified", download_dir

    def compose(self) -> ComposeResult:
        offer = self.offer
        count = len(offer.files)
        words, style = TRUST_WORDS.get(self._trust, TRUST_WORDS["unverified"])
        with Vertical():
            yield Label(
                f"{offer.nick} offers {count} file{'s' if count != 1 else ''}, "
                f"{fmt.size(offer.total_size)}",
                classes="title",
            )
            yield Static(Text(words, style))
            yield VerticalScroll(Static(files_table(offer)))
            yield Label("Save into:", classes="hint")
            yield Field(self._download_dir, id="directory")
            yield self.buttons(
                Button("Accept (a)", variant="success", id="accept"),
                Button("Decline (d)", variant="error", id="decline"),
                Button("Later (Esc)", id="later"),
            )

    def on_mount(self) -> None:
        self.query_one("#accept", Button).focus()

    def action_accept(self) -> None:
        # "~" means home here as in /send; an emptied field means the download folder.
        directory = os.path.expanduser(self.query_one("#directory", Input).value.strip())
        chosen = directory if directory and directory != self._download_dir else None
        self.close(Answer(True, chosen))

    def action_decline(self) -> None:
        self.close(Answer(False))

    def on_input_submitted(self) -> None:
        self.action_accept()

    def follow(self, event: NodeEvent | None, model: Model) -> None:
        """Close, saying why, once the offer stopped waiting for this dialog's answer:
        answered in the transfers list (F3) or another face, withdrawn, expired."""
        key = (self.offer.peer, self.offer.offer)
        if not self.is_open or (
            key in model.offers and self._state(model) == TransferState.OFFERED
        ):
            return

        def notice() -> str:  # when the user sees it (after F3, say): the state by then
            state = self._state(model)
            text = SETTLED.get(state, "{nick}'s offer is {state}.")
            return text.format(nick=self.offer.nick, state=state)

        self.close(None, notice=notice)

    def _state(self, model: Model) -> str:
        transfer = model.transfers.get((self.offer.peer, self.offer.offer))
        return transfer.state if transfer is not None else "gone"
