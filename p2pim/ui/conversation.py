"""The open conversation: day separators, authors, times, receipts, edits, file cards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static

from p2pim.ui import format as fmt
from p2pim.ui.model import GROUP_PREFIX, ROOM_PREFIX, Line, Model, Transfer

PREVIEW_SIZE = (32, 16)  # columns, pixel rows (two per text row)


def heading(model: Model, key: str | None) -> tuple[str, str]:
    """The title line over a conversation, and the notice at its top."""
    if key is None:
        return "", ""
    if key.startswith(GROUP_PREFIX):
        name = key.removeprefix(GROUP_PREFIX)
        members = ", ".join(model.nick(fp) for fp in model.groups.get(name, []))
        return f"≡ {name}", f"Messages here go to each member as a private message: {members}"
    title = model.title(key)
    if key.startswith(ROOM_PREFIX):
        room = model.rooms.get(key.removeprefix(ROOM_PREFIX))
        if room is None:
            return title, ""
        if room.invited_us and not room.joined:
            notice = f"{room.inviter_nick or 'Someone'} invited you: /join or /decline"
        else:
            notice = "Members: " + ", ".join(model.nick(fp) for fp in room.members)
        return title + (f"  {room.topic}" if room.topic else ""), notice
    contact = model.contacts.get(key)
    if contact is not None:
        title += f"  {fmt.PRESENCE_GLYPH.get(contact.status, '')} {contact.status}"
        title += f"  {contact.status_text}" if contact.status_text else ""
    return title, ""


def render_line(line: Line) -> Text:
    text = Text()
    text.append(fmt.clock(line.sent_at) + " ", "dim")
    text.append(line.nick, "bold cyan" if line.outgoing else "bold magenta")
    text.append(": ")
    if line.deleted:
        text.append("message deleted", "dim italic")
    else:
        text.append(line.text)
    if line.edited and not line.deleted:
        text.append(" (edited)", "dim italic")
    if line.mark:
        style = "red" if line.mark == "failed" else "green" if line.mark == "read" else "dim"
        text.append("  " + fmt.DELIVERY_MARK[line.mark], style)
    return text


STATE_STYLE = {"completed": "green", "failed": "red", "cancelled": "yellow", "expired": "yellow"}


def card_state(transfer: Transfer) -> str:
    """One transfer's state in words, as its file card says it."""
    if transfer.state == "offered":
        return "waiting for an answer" if transfer.outgoing else "waiting for your answer (F3)"
    if transfer.state == "running":
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
            if transfer.state == "running":
                state = f"accepted {state}"
            elif transfer.state == "offered":
                state = "no answer yet"
            text.append(f"{nick(transfer.peer)} ")
            text.append(state, STATE_STYLE.get(transfer.state, ""))
        return text
    text.append(card_state(first), STATE_STYLE.get(first.state, ""))
    if first.reason and first.state != "completed":
        text.append(f" ({first.reason})", "dim")
    if first.saved_as:
        text.append(f"\n   saved as {first.saved_as[0]}", "dim")
    return text


def image_preview(path: str) -> RenderableType | None:
    """A half-block preview of an image file, or None when it cannot be read."""
    try:
        from PIL import Image
        from rich_pixels import Pixels

        with Image.open(Path(path)) as image:
            image.thumbnail((PREVIEW_SIZE[0], PREVIEW_SIZE[1]))
            pixels: RenderableType = Pixels.from_image(image.convert("RGB"))
            return pixels
    except Exception:  # any unreadable or hostile image: the card alone is shown
        return None


class MessageView(Static):
    DEFAULT_CSS = """
    MessageView { padding: 0 1; }
    MessageView.outgoing { background: $boost; }
    MessageView.found { background: $warning 30%; }
    """


class SystemLine(Static):
    """A room's system line ("ann joined", "ann changed the topic to …"): quieter than a
    message, with no author column, so it never reads as something someone said."""

    DEFAULT_CSS = """
    SystemLine { padding: 0 1; color: $text-muted; }
    """

    def __init__(self, line: Line) -> None:
        super().__init__(render_system(line), id=f"m-{line.message_id}")

    def render(self) -> RenderResult:
        return self.content  # as MessageView: str() of it reads as the screen does


def render_system(line: Line) -> Text:
    text = Text(overflow="fold")
    text.append(fmt.clock(line.sent_at) + " ", "dim")
    text.append("· " + line.text, "italic")
    return text


class DaySeparator(Static):
    DEFAULT_CSS = """
    DaySeparator { color: $text-muted; text-align: center; text-style: italic; }
    """


class FileCard(Static):
    """One offer's card; a click on it asks the app to open it (an offer waiting for our
    answer opens its dialog, wherever it was shared)."""

    DEFAULT_CSS = """
    FileCard { padding: 0 1; margin: 0 0 0 2; border-left: thick $accent; }
    """

    class Chosen(Message):
        def __init__(self, offer: str) -> None:
            super().__init__()
            self.offer = offer

    def on_click(self) -> None:
        if self.id:
            self.post_message(self.Chosen(self.id.removeprefix("t-")))


class Page(Vertical):
    """One showing of a conversation: what `Conversation.show` builds, and replaces."""

    DEFAULT_CSS = """
    Page { height: auto; }
    """


class Conversation(VerticalScroll):
    """Shows one conversation; rebuilt on open, appended to or patched on events."""

    DEFAULT_CSS = """
    Conversation { height: 1fr; }
    Conversation .banner { background: $error; color: $text; padding: 0 1; }
    Conversation .notice { color: $text-muted; padding: 0 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.key: str | None = None
        self._last_day: int | None = None
        self._page = Page()

    def compose(self) -> ComposeResult:
        yield self._page

    def show(self, model: Model, key: str | None, notice: str = "") -> None:
        self.key = key
        self._last_day = None
        # A new page, not the old one emptied: removing widgets completes later, and a
        # line remounted under the id its old widget still held raised DuplicateIds (a
        # rebuild of the open conversation, after a trust change say, ended the app).
        self._page.remove()
        self._page = Page()
        self.mount(self._page)
        if key is None:
            self._page.mount(Static(WELCOME, classes="notice"))
            return
        if model.blocked(key):
            self._page.mount(Static(key_change_banner(model, key), classes="banner"))
        if notice:
            self._page.mount(Static(notice, classes="notice"))
        for line in model.conversations.get(key, []):
            self.append(line)
        for group in model.cards(key):
            self.card(group, model.nick)
        self.scroll_end(animate=False)

    def append(self, line: Line) -> None:
        if self._last_day is None or not fmt.same_day(self._last_day, line.sent_at):
            self._page.mount(DaySeparator(f"── {fmt.day(line.sent_at)} ──"))
        self._last_day = line.sent_at
        if line.system:
            self._page.mount(SystemLine(line))
        else:
            view = MessageView(render_line(line), id=f"m-{line.message_id}")
            view.set_class(line.outgoing, "outgoing")
            self._page.mount(view)
        self.scroll_end(animate=False)

    def patch(self, line: Line) -> None:
        for view in self._page.query(f"#m-{line.message_id}"):
            if isinstance(view, Static):
                view.update(render_line(line))

    def card(self, group: Sequence[Transfer], nick: Callable[[str], str]) -> None:
        """Show (or update) the card of one offer: `group` is its transfers here."""
        transfer = group[0]
        card_id = f"t-{transfer.offer}"
        body: RenderableType = render_card(group, nick)
        if transfer.state == "completed" and not transfer.outgoing:
            previews = [image_preview(p) for p in transfer.saved_as if fmt.is_image(p)]
            shown = [p for p in previews if p is not None]
            if shown:
                body = Group(body, *shown)
        existing = self._page.query(f"#{card_id}")
        if existing:
            existing.first(Static).update(body)
        else:
            self._page.mount(FileCard(body, id=card_id))
            self.scroll_end(animate=False)

    def highlight(self, message_id: str) -> bool:
        """Scroll to a message and mark it (a search result); False if it is not shown."""
        for view in self._page.query(MessageView):
            view.remove_class("found")
        found = self._page.query(f"#m-{message_id}")
        if not found:
            return False
        view = found.first(MessageView)
        view.add_class("found")
        self.scroll_to_widget(view, animate=False)
        return True


WELCOME = (
    "Welcome to p2pim.\n\n"
    "Pick a person or a room on the left (Tab moves between panes), or press Ctrl+P for "
    "every command. Peers on this network appear by themselves; F1 shows the keys."
)


def key_change_banner(model: Model, key: str) -> Text:
    contact = model.contacts[key]
    return Text(
        f"⚠ {contact.nick}'s key has changed since you last talked. This can be a reinstall, "
        "or someone pretending to be them. Sending is blocked until you compare safety "
        "numbers: press Ctrl+R (or type /verify).",
        style="bold",
    )
