"""The help screen: every key and slash command."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from p2pim.ui.commands import COMMANDS

KEYS = (
    ("Enter", "send the message"),
    ("Ctrl+J / Alt+Enter", "new line in the message"),
    ("↑ / ↓ in the input", "recall earlier messages"),
    ("Tab / Shift+Tab", "move between the list and the input"),
    ("Escape", "back to the input (or close a dialog)"),
    ("Tab, Enter / click", "in a dialog: go to a button and press it"),
    ("Ctrl+P", "command palette: every action by name"),
    ("F1", "this help"),
    ("F2", "set status and status text"),
    ("F3", "transfers: a accept · d decline · c cancel · o open folder"),
    ("F4", "settings"),
    ("Ctrl+O", "send a file or folder here"),
    ("Ctrl+F", "search history, Enter jumps to the message"),
    ("Ctrl+N", "new room"),
    ("Ctrl+G", "new or edit contact group"),
    ("Ctrl+B", "broadcast to everyone online"),
    ("Ctrl+R", "verify this peer (safety number, pairing code)"),
    ("Ctrl+Q", "quit (peers see you go offline at once)"),
)


def help_table() -> Table:
    table = Table(box=None, show_header=False, expand=True, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("[u]Keys[/u]", "")
    for key, what in KEYS:
        table.add_row(key, what)
    table.add_row("", "")
    table.add_row("[u]Commands[/u]", "(type in the input; // sends a literal /)")
    for spec in COMMANDS.values():
        table.add_row(spec.usage, spec.help)
    table.add_row("", "")
    table.add_row(
        "[u]Marks[/u]",
        "● online ◐ away ⊘ busy ○ offline · ✔ verified · ⚠ key changed · ✕ blocked",
    )
    table.add_row("", "◷ queued · ✓ sent · ✓✓ delivered · ✓✓ read")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "app.pop_screen", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen VerticalScroll {
        width: 90; max-width: 100%; height: 90%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_table())
