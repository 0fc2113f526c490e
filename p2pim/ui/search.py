"""Search every conversation; Enter on a result jumps to it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from p2pim.api import StoredMessage
from p2pim.ui import format as fmt
from p2pim.ui.dialogs import Dialog
from p2pim.ui.keys import Field
from p2pim.ui.model import Model

Find = Callable[[str], Awaitable[list[StoredMessage]]]
WHERE_WIDTH = 14  # the conversation's column: a room or person name, cut to fit


def result_line(*, when: str, where: str, who: str, body: str, query: str) -> Text:
    """One hit: when, in which conversation (a column of its own), who wrote it, and the
    text with the words searched for highlighted where a word starts with them."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{when} ", "dim")
    place = where if len(where) <= WHERE_WIDTH else where[: WHERE_WIDTH - 1] + "…"
    line.append(f"{place:<{WHERE_WIDTH}} ", "bold")
    line.append(f"{who}: ", "italic cyan")
    start = len(line)
    line.append(body.replace("\n", " "))
    for word in query.split():
        for match in re.finditer(r"(?<!\w)" + re.escape(word), line.plain[start:], re.I):
            line.stylize("bold reverse", start + match.start(), start + match.end())
    return line


class SearchScreen(Dialog):
    """Dismisses with (conversation key, message id) or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("down", "results", show=False),
    ]
    BUTTONS: ClassVar[dict[str, str]] = {"ok": "search", "cancel": "cancel"}
    DEFAULT_CSS = """
    SearchScreen OptionList { height: auto; max-height: 16; margin-top: 1; }
    """

    def __init__(self, find: Find, model: Model, query: str = "") -> None:
        """`find(words)`: the messages that match, newest first (the node's search)."""
        super().__init__()
        self._find, self._model, self._query = find, model, query
        self._hits: dict[str, tuple[str, str]] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                "Search history: “marke” finds marketing; ↓ goes to the results",
                classes="title",
            )
            yield Field(self._query, placeholder="words to find", id="query")
            yield OptionList(id="results")
            yield self.buttons(
                Button("Search", variant="primary", id="ok"), Button("Close", id="cancel")
            )

    async def on_mount(self) -> None:
        if self._query:
            await self.search(self._query)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        await self.search(event.value)

    async def action_search(self) -> None:
        await self.search(self.query_one("#query", Input).value)

    def action_results(self) -> None:
        self.query_one(OptionList).focus()

    async def search(self, query: str) -> None:
        results = self.query_one(OptionList)
        results.clear_options()
        if not query.strip():
            return
        try:
            found = await self._find(query)
        except Exception as exc:  # a malformed query, for one
            self.notify(f"Search failed: {exc}", severity="error")
            return
        self._hits = {}
        for i, message in enumerate(found):
            key = message.peer
            line = result_line(
                when=f"{fmt.short_day(message.sent_at)} {fmt.clock(message.sent_at)}",
                where=self._model.title(key),
                who=self._model.nick(message.author),
                body=message.body,
                query=query,
            )
            self._hits[str(i)] = (key, message.id.hex())
            results.add_option(Option(line, id=str(i)))
        if not found:
            results.add_option(Option(Text("nothing found", "dim italic"), disabled=True))
        else:
            results.highlighted = 0  # without a highlight, Enter on the results does nothing
            results.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # a result's id is not a conversation key: keep it from the app's sidebar
        hit = self._hits.get(event.option_id or "")
        if hit is not None:
            self.close(hit)
