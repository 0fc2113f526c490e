"""The transfers view: every offer in and out with progress, rate and ETA."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Label, ProgressBar, Static

from p2pim.api import TransferState
from p2pim.ui import format as fmt
from p2pim.ui.model import Model, Transfer, room_key

# A transfer that ended short of completed never shows as a full (green) bar: its bar
# keeps what was done, in the colour of how it ended.
ENDED_SHORT = {
    TransferState.FAILED: "-failed",
    TransferState.DECLINED: "-stopped",
    TransferState.CANCELLED: "-stopped",
    TransferState.EXPIRED: "-stopped",
}


def describe(transfer: Transfer, nick: str) -> Text:
    direction = "to" if transfer.outgoing else "from"
    names = ", ".join(transfer.names[:2]) + (
        f" +{len(transfer.names) - 2}" if len(transfer.names) > 2 else ""
    )
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{'↑' if transfer.outgoing else '↓'} {names}", "bold")
    text.append(f"  {direction} {nick}  ", "dim")
    if transfer.running:
        text.append(
            f"{fmt.size(transfer.done)} / {fmt.size(transfer.total)}  {fmt.rate(transfer.rate)}"
            f"  ETA {fmt.eta(transfer.eta)}"
        )
    else:
        style = {
            TransferState.COMPLETED: "green",
            TransferState.FAILED: "red",
            TransferState.OFFERED: "yellow",
        }.get(transfer.state, "dim")
        waiting = "waiting for your answer" if not transfer.outgoing else "waiting for an answer"
        state = waiting if transfer.state == TransferState.OFFERED else transfer.state
        text.append(f"{fmt.size(transfer.total)}  {state}", style)
        if (
            transfer.reason not in ("", transfer.state)
            and transfer.state != TransferState.COMPLETED
        ):
            text.append(f": {transfer.reason}", "dim")  # not a reason that names the state again
    return text


def row_id(transfer: Transfer) -> str:
    """One row per peer of an offer: an offer to a room has one id for every member."""
    return f"row-{transfer.offer}-{transfer.peer}"


class TransferRow(Widget, can_focus=True):
    DEFAULT_CSS = """
    TransferRow { height: 3; padding: 0 1; }
    TransferRow:focus { background: $boost; }
    TransferRow Horizontal { height: 1; }
    TransferRow ProgressBar { width: 1fr; }
    TransferRow.-failed Bar > .bar--bar, TransferRow.-failed Bar > .bar--complete {
        color: $error;
    }
    TransferRow.-stopped Bar > .bar--bar, TransferRow.-stopped Bar > .bar--complete {
        color: $warning;
    }
    """

    def __init__(self, transfer: Transfer, nick: str) -> None:
        super().__init__(id=row_id(transfer))
        self.transfer, self._nick = transfer, nick

    def compose(self) -> ComposeResult:
        yield Static(describe(self.transfer, self._nick), classes="describe")
        with Horizontal():
            yield ProgressBar(total=max(1, self.transfer.total), show_eta=False)
        yield Static("")

    def on_mount(self) -> None:
        self._paint()

    def show(self, transfer: Transfer, nick: str) -> None:
        self.transfer, self._nick = transfer, nick
        if self.is_mounted:  # a row still being mounted is painted by on_mount, up to date
            self._paint()

    def _paint(self) -> None:
        transfer = self.transfer
        self.query_one(".describe", Static).update(describe(transfer, self._nick))
        bar = self.query_one(ProgressBar)
        bar.update(
            total=max(1, transfer.total), progress=transfer.fraction * max(1, transfer.total)
        )
        ended = ENDED_SHORT.get(transfer.state)
        for css_class in set(ENDED_SHORT.values()):
            self.set_class(css_class == ended, css_class)


class TransfersScreen(Screen[None]):
    """a accept, d decline, c cancel, o open the folder; Escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("a", "answer(True)", "Accept"),
        Binding("d", "answer(False)", "Decline"),
        Binding("c", "cancel_transfer", "Cancel"),
        Binding("o", "open_folder", "Open folder"),
    ]
    DEFAULT_CSS = """
    TransfersScreen #empty { color: $text-muted; padding: 1 2; }
    TransfersScreen .title { text-style: bold; padding: 0 1; background: $panel; width: 100%; }
    """

    class Act(Message):
        """Ask the app to answer, cancel or open a transfer."""

        def __init__(self, what: str, transfer: Transfer, accept: bool = True) -> None:
            super().__init__()
            self.what, self.transfer, self.accept = what, transfer, accept

    AUTO_FOCUS = None  # a row gets the focus (see `_choose`), not the list around the rows

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def compose(self) -> ComposeResult:
        yield Label(
            "File transfers   (↑↓ move · a accept · d decline · c cancel · o open folder)",
            classes="title",
        )
        yield VerticalScroll(id="rows")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_rows()

    def refresh_rows(self) -> None:
        rows = self.query_one("#rows", VerticalScroll)
        transfers = list(self.model.transfers.values())  # oldest first: each new row goes on top
        if not transfers:
            if not rows.query("#empty"):
                rows.mount(Label("No transfers yet. Ctrl+O sends a file.", id="empty"))
            return
        rows.query("#empty").remove()
        for transfer in transfers:
            nick = self.model.nick(transfer.peer)
            if transfer.room:
                nick += f" in {self.model.title(room_key(transfer.room))}"
            found = rows.query(f"#{row_id(transfer)}")
            if found:
                found.first(TransferRow).show(transfer, nick)
            else:
                rows.mount(TransferRow(transfer, nick), before=0 if rows.children else None)
        self.call_after_refresh(self._choose)  # once the new rows are mounted

    def _choose(self) -> None:
        """With no row selected, select the newest offer waiting for our answer, else the
        newest row: a, d, c and o act at once, with no ↓ first."""
        rows = list(self.query(TransferRow))
        if not rows or isinstance(self.focused, TransferRow):
            return
        waiting = [
            r for r in rows if not r.transfer.outgoing and r.transfer.state == TransferState.OFFERED
        ]
        (waiting or rows)[0].focus()

    def _selected(self) -> Transfer | None:
        focused = self.focused
        return focused.transfer if isinstance(focused, TransferRow) else None

    def key_down(self) -> None:
        self.focus_next(TransferRow)

    def key_up(self) -> None:
        self.focus_previous(TransferRow)

    def action_answer(self, accept: bool) -> None:
        transfer = self._selected()
        if transfer and not transfer.outgoing and transfer.state == TransferState.OFFERED:
            self.post_message(self.Act("answer", transfer, accept))

    def action_cancel_transfer(self) -> None:
        transfer = self._selected()
        if transfer and not transfer.finished:
            self.post_message(self.Act("cancel", transfer))

    def action_open_folder(self) -> None:
        transfer = self._selected()
        if transfer and transfer.saved_as:
            folder = Path(transfer.saved_as[0]).parent
            if not open_folder(folder):  # no desktop here (SSH, a console): say where
                self.notify(f"Saved in {folder}", timeout=10)
        elif transfer:
            self.notify("Nothing saved yet for this transfer.", severity="warning")


def open_folder(folder: Path) -> bool:
    """Show a folder in the desktop's file manager, when there is one."""
    opener = shutil.which("xdg-open") or shutil.which("open")
    if opener is None or (not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        return False
    subprocess.Popen(
        [opener, str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return True
