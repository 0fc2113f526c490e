"""The open conversation: day separators, authors, times, receipts, edits, file cards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from p2pim.api import ROOM_PREFIX, TransferState
from p2pim.ui import format as fmt
from p2pim.ui.model import GROUP_PREFIX, Line, Model, Transfer
from p2pim.ui.rows import render_card, render_line, render_system

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

    def __init__(self, line: Line) -> None:
        super().__init__(render_line(line), id=f"m-{line.message_id}")
        self.set_class(line.outgoing, "outgoing")

    def render(self) -> RenderResult:
        return self.content  # the row itself, so that str() of it reads as the screen does


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


class NewMessages(Static):
    """The bar saying that something arrived below while the user reads further up."""

    DEFAULT_CSS = """
    NewMessages {
        dock: bottom; height: 1; width: 100%; display: none;
        background: $accent; color: $text; text-align: center; text-style: bold;
    }
    """

    def on_click(self) -> None:
        if isinstance(self.parent, Conversation):
            self.parent.follow()


class Page(Vertical):
    """One showing of a conversation: what `Conversation.show` builds, and replaces."""

    DEFAULT_CSS = """
    Page { height: auto; min-height: 100%; }
    """

    class LaidOut(Message):
        """The page has its (new) size: every row in it has its place."""

        def __init__(self, page: Page) -> None:
            super().__init__()
            self.page = page

    def on_resize(self) -> None:
        self.post_message(self.LaidOut(self))


def day_rows(lines: list[Line], day: int | None) -> list[Widget]:
    """Message rows, with a separator before each new day (`day`: that of the row above)."""
    rows: list[Widget] = []
    for line in lines:
        if day is None or not fmt.same_day(day, line.sent_at):
            rows.append(DaySeparator(f"── {fmt.day(line.sent_at)} ──"))
        day = line.sent_at
        rows.append(SystemLine(line) if line.system else MessageView(line))
    return rows


class Conversation(VerticalScroll):
    """Shows one conversation; rebuilt on open, appended to or patched on events.

    It follows the newest row (Textual's anchor: the layout itself keeps the view at the
    end, however tall what came is, where a `scroll_end` ran before the new row had its
    height and stopped short).  Scrolling up releases it, and what arrives then raises
    the "new messages" bar; the end (scrolled to, End, a click on the bar) follows again.
    Scrolling to the top asks for older messages (`ReachedTop`), which `prepend` puts
    above without moving what the user looks at.
    """

    DEFAULT_CSS = """
    Conversation { height: 1fr; }
    Conversation .banner { background: $error; color: $text; padding: 0 1; }
    Conversation .notice { color: $text-muted; padding: 0 1; }
    """

    class ReachedTop(Message):
        """The user scrolled to the first row shown: older messages may be wanted."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.key: str | None = None
        self._first_day: int | None = None
        self._last_day: int | None = None
        self._page = Page()
        self._marker = NewMessages("↓ new messages (End)")
        self._found: str | None = None  # the message a search jump marked
        self._reveal: str | None = None  # a message to bring into view once it has a place
        self._hold: tuple[str, int] | None = None  # a row id kept this many rows from the top

    def compose(self) -> ComposeResult:
        yield self._marker
        yield self._page

    def on_mount(self) -> None:
        self.anchor()

    # ---- following the end ---------------------------------------------------------------

    @property
    def following(self) -> bool:
        """The view keeps to the newest row (False: the user scrolled up)."""
        # Textual keeps "released" to itself (set by a scroll up, cleared at the end and
        # by scroll_end); read defensively, so a rename upstream reads as "following".
        return not getattr(self, "_anchor_released", False)

    @property
    def marker_shown(self) -> bool:
        return bool(self._marker.display)

    @property
    def rows(self) -> list[Widget]:
        """What the view shows, top to bottom (notices, days, messages, file cards)."""
        return list(self._page.children)

    def follow(self) -> None:
        """To the newest row, and keep to it as rows come (End, or a click on the bar)."""
        self._marker.display = False
        self._reveal = self._hold = None
        self.anchor()

    def action_scroll_end(self) -> None:
        self.follow()

    def _arrived(self) -> None:
        """A row was added at the end: followed by the layout, or flagged by the bar."""
        if self.following:
            return
        if self._at_end() and self._reveal is None and self._hold is None:
            self.follow()  # at the end already: a key that did not move released the anchor
            return
        self._marker.display = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._at_end():
            self._marker.display = False
        elif new_value <= 0 < old_value and not self.following and self.key is not None:
            self.post_message(self.ReachedTop(self.key))

    def _at_end(self) -> bool:
        return self.max_scroll_y <= 0 or self.scroll_y >= self.max_scroll_y

    def on_page_laid_out(self, message: Page.LaidOut) -> None:
        if message.page is self._page:
            self._settle(laid_out=True)

    def _settle(self, *, laid_out: bool = False) -> None:
        """Scroll where a hold or a reveal wants, once the rows they name have a place."""
        if self._hold is not None and laid_out:
            row_id, rows = self._hold
            self._hold = None
            for row in self._page.query(f"#{row_id}"):
                self.scroll_to(y=row.virtual_region.y - rows, animate=False, immediate=True)
        if self._reveal is not None:
            found = self._page.query(f"#m-{self._reveal}")
            region = found.first().virtual_region if found else None
            if region is not None and region.height:
                self._reveal = None
                # In the middle, with what came before it above (the page starts at 0).
                room = max(0, self.scrollable_content_region.height - region.height)
                self.scroll_to(y=region.y - room // 2, animate=False, immediate=True)

    def _top_row(self) -> tuple[str, int] | None:
        """The first message the user sees, and how many rows below the top it is."""
        for view in self._page.query(MessageView):
            region = view.virtual_region
            if view.id and region.height and region.bottom > self.scroll_y:
                return view.id, region.y - round(self.scroll_y)
        return None

    # ---- rows ----------------------------------------------------------------------------

    def show(self, model: Model, key: str | None, notice: str = "") -> None:
        """Build the view of a conversation: at its end, or where the user was in it."""
        same = key is not None and key == self.key
        hold = self._top_row() if same and not self.following else None
        if not same:
            self._found = self._reveal = None
        self.key = key
        # A new page, not the old one emptied: removing widgets completes later, and a
        # line remounted under the id its old widget still held raised DuplicateIds (a
        # rebuild of the open conversation, after a trust change say, ended the app).
        self._page.remove()
        self._page = Page()
        self.mount(self._page)
        rows: list[Widget] = []
        if key is None:
            rows.append(Static(WELCOME, classes="notice"))
        else:
            if model.blocked(key):
                rows.append(Static(key_change_banner(model, key), classes="banner"))
            if notice:
                rows.append(Static(notice, classes="notice"))
            lines = model.conversations.get(key, [])
            rows += day_rows(lines, None)
            self._first_day = lines[0].sent_at if lines else None
            self._last_day = lines[-1].sent_at if lines else None
            for group in model.cards(key):
                rows.append(FileCard(card_body(group, model.nick), id=f"t-{group[0].offer}"))
        self._page.mount_all(rows)
        if self._found is not None:
            for view in self._page.query(f"#m-{self._found}"):
                view.add_class("found")
        if hold is not None:
            self._hold = hold
        elif not same:
            self.follow()

    def set_notice(self, notice: str) -> None:
        """The notice at the top of the open conversation, anew (a member renamed, say);
        none is added where there was none."""
        if self.key is None or not notice:
            return  # the welcome text stays
        for row in self._page.query(".notice").results(Static):
            row.update(notice)
            return

    def append(self, line: Line) -> None:
        rows = day_rows([line], self._last_day)
        self._last_day = line.sent_at
        self._first_day = self._first_day or line.sent_at
        self._page.mount_all(rows)
        self._arrived()

    def prepend(self, lines: list[Line]) -> None:
        """Older messages above those shown; the rows the user looks at stay in place."""
        if not lines:
            return
        if self._hold is None:
            self._hold = self._top_row()
        first = self._page.query(DaySeparator)
        rows = day_rows(lines, None)
        if first:
            self._page.mount_all(rows, before=first.first())
            if self._first_day is not None and fmt.same_day(lines[-1].sent_at, self._first_day):
                first.first().remove()  # the day goes on: one separator for it
        else:
            self._page.mount_all(rows)
            self._last_day = lines[-1].sent_at
        self._first_day = lines[0].sent_at

    def patch(self, line: Line) -> None:
        for view in self._page.query(f"#m-{line.message_id}"):
            if isinstance(view, Static):
                view.update(render_line(line))

    def card(self, group: Sequence[Transfer], nick: Callable[[str], str]) -> None:
        """Show (or update) the card of one offer: `group` is its transfers here."""
        card_id = f"t-{group[0].offer}"
        existing = self._page.query(f"#{card_id}")
        if existing:
            existing.first(Static).update(card_body(group, nick))
        else:
            self._page.mount(FileCard(card_body(group, nick), id=card_id))
            self._arrived()

    def highlight(self, message_id: str) -> bool:
        """Scroll to a message and mark it (a search result); False if it is not shown."""
        for view in self._page.query(MessageView):
            view.remove_class("found")
        found = self._page.query(f"#m-{message_id}")
        if not found:
            return False
        found.first(MessageView).add_class("found")
        self._found = self._reveal = message_id
        self._hold = None
        self._marker.display = False
        self.release_anchor()  # the user reads the hit now, not the newest row
        self.call_after_refresh(self._settle)  # at once if the page is laid out already
        return True


def card_body(group: Sequence[Transfer], nick: Callable[[str], str]) -> RenderableType:
    """A file card: the offer's transfers, and below a received image its preview."""
    transfer = group[0]
    body: RenderableType = render_card(group, nick)
    if transfer.state == TransferState.COMPLETED and not transfer.outgoing:
        previews = [image_preview(p) for p in transfer.saved_as if fmt.is_image(p)]
        shown = [p for p in previews if p is not None]
        if shown:
            body = Group(body, *shown)
    return body


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
