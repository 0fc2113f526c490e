"""How a conversation's rows read: a message (head, then a body whose further lines
indent under it), a room's system line, and a file card's text.  Pure rendering (rich
only), so it is tested without an app; `conversation.py` puts these rows in widgets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.console import RenderResult as RichRender
from rich.measure import Measurement
from rich.text import Text

from p2pim.api import TransferState
from p2pim.ui import format as fmt
from p2pim.ui.model import FAILED_MARK, Line, Transfer


class MessageRow:
    """A message as the view draws it: the head (time, author) and then the body, whose
    further lines, typed or wrapped, are indented under its first one."""

    __slots__ = ("body", "head")
    MIN_BODY = 16  # columns; a narrower body goes under the head, unindented

    def __init__(self, head: Text, body: Text) -> None:
        self.head = head
        self.body = body

    def __str__(self) -> str:
        """The text as it reads on screen (unwrapped): what tests and copies look at."""
        indent = "\n" + " " * self.head.cell_len
        return self.head.plain + indent.join(self.body.plain.split("\n"))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RichRender:
        width, indent = options.max_width, self.head.cell_len
        if width - indent < self.MIN_BODY:
            yield Text.assemble(self.head, self.body, overflow="fold")
            return
        row = self.head.copy()
        row.overflow = "fold"
        pieces = self.body.wrap(console, width - indent, overflow="fold")
        for number, piece in enumerate(pieces):
            if number:
                row.append("\n" + " " * indent)
            piece.rstrip()  # the space a line broke at
            row.append_text(piece)
        yield row

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = max((cell_len(part) for part in self.body.plain.split("\n")), default=0)
        return Measurement(1, self.head.cell_len + widest).clamp(max_width=options.max_width)


def render_line(line: Line) -> MessageRow:
    head = Text()
    head.append(fmt.clock(line.sent_at) + " ", "dim")
    colour = fmt.author_colour(line.author, own=line.outgoing)
    head.append(line.nick, f"bold {colour}")
    head.append(": ")
    body = Text()
    if line.deleted:
        body.append("message deleted", "dim italic")
    else:
        body.append(line.text)
    if line.edited and not line.deleted:
        body.append(" (edited)", "dim italic")
    if line.mark:
        style = "red" if line.mark == FAILED_MARK else "green" if line.mark == "read" else "dim"
        body.append("  " + fmt.DELIVERY_MARK[line.mark], style)
    return MessageRow(head, body)


STATE_STYLE = {
    TransferState.COMPLETED: "green",
    TransferState.FAILED: "red",
    TransferState.CANCELLED: "yellow",
    TransferState.EXPIRED: "yellow",
}


def card_state(transfer: Transfer) -> str:
    """One transfer's state in words, as its file card says it."""
    if transfer.state == TransferState.OFFERED:
        return "waiting for an answer" if transfer.outgoing else "waiting for your answer (F3)"
    if transfer.running:
        return f"{transfer.fraction:.0%}"
    return transfer.state


def render_card(group: Sequence[Transfer], nick: Callable[[str], str]) -> Text:
    """The card of one offer: its files, and where it stands with each recipient (an
    offer shared in a room lists every member it went to, as the sender sees it)."""
    first = group[0]
    text = Text()
    text.append(f"{'→' if first.outgoing else '←'} ", "bold")  # no emoji: widths differ
    names = ", ".join(first.names[:3]) + (" …" if len(first.names) > 3 else "")
    text.append(names, "bold")
    text.append(f"  {fmt.size(max(t.total for t in group))}  ", "dim")
    if first.room and not first.outgoing:
        text.append(f"from {nick(first.peer)}  ", "dim")
    if first.room and first.outgoing:
        text.append(f"to {len(group)} member{'s' if len(group) != 1 else ''}: ", "dim")
        for number, transfer in enumerate(sorted(group, key=lambda t: nick(t.peer))):
            if number:
                text.append(" · ", "dim")
            state = card_state(transfer)
            if transfer.running:
                state = f"accepted {state}"
            elif transfer.state == TransferState.OFFERED:
                state = "no answer yet"
            text.append(f"{nick(transfer.peer)} ")
            text.append(state, STATE_STYLE.get(transfer.state, ""))
        return text
    text.append(card_state(first), STATE_STYLE.get(first.state, ""))
    if first.reason not in ("", first.state) and first.state != TransferState.COMPLETED:
        text.append(f" ({first.reason})", "dim")  # not "cancelled (cancelled)"
    if first.saved_as:
        text.append(f"\n   saved as {first.saved_as[0]}", "dim")
    return text


def render_system(line: Line) -> MessageRow:
    """Time, then the line in words; a long one (a topic) wraps under its text."""
    return MessageRow(
        Text.assemble((fmt.clock(line.sent_at) + " ", "dim"), ("· ", "italic")),
        Text(line.text, style="italic"),
    )
