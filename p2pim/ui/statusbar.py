"""The status bar: our nick, status and fingerprint, after what keeps us from our peers."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from p2pim import events as ev
from p2pim.identity import format_fingerprint
from p2pim.ui import format as fmt


class StatusBar(Static):
    """Own nick, status and fingerprint; first, what keeps us from our peers ("no network",
    "disk full"), for as long as it lasts."""

    DEFAULT_CSS = """
    StatusBar { dock: top; height: 1; background: $panel; padding: 0 1; }
    """
    _problems: tuple[str, ...] = ()
    _shown: tuple[str, str, str, str] | None = None  # the last show()'s arguments

    def follow(self, event: ev.NodeEvent) -> None:
        """Node events that raise or clear a problem."""
        match event:
            case ev.NetworkChanged(addresses=addresses):
                self._flag("no network", not addresses)
            case ev.DiskFullChanged(full=full):
                self._flag("disk full", full)

    def _flag(self, problem: str, on: bool) -> None:
        others = tuple(p for p in self._problems if p != problem)
        self._problems = (*others, problem) if on else others
        if self._shown is not None:
            self.show(*self._shown)

    def show(self, nick: str, status: str, text: str, fingerprint: str) -> None:
        self._shown = (nick, status, text, fingerprint)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("p2pim  ", "bold")
        for problem in self._problems:  # before the rest: a narrow terminal cuts the end
            line.append(f"⚠ {problem}", "bold red")
            line.append("  ")
        line.append(f"{nick} ", "bold")
        line.append(
            fmt.PRESENCE_GLYPH.get(status, "") + f" {status}", fmt.PRESENCE_STYLE.get(status, "")
        )
        if text:
            line.append(f" “{text}”", "italic")
        line.append(f"   id {format_fingerprint(fingerprint)[:19]}", "dim")
        self.update(line)
