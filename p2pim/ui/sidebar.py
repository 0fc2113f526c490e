"""The sidebar: people with presence and marks, rooms, contact groups."""

from __future__ import annotations

import contextlib

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from p2pim.api import ROOM_PREFIX
from p2pim.ui import format as fmt
from p2pim.ui.model import GROUP_PREFIX, Model

STATUS_ORDER = {"online": 0, "busy": 1, "away": 2, "offline": 3}
MUTED_MARK = " (muted)"


def _badge(text: Text, unread: int) -> None:
    if unread:
        # The space stays out of the reverse video: reversed, it read as part of the name.
        text.append(" ")
        text.append(str(unread), style="bold reverse")


def person(model: Model, fingerprint: str) -> Text:
    contact = model.contacts[fingerprint]
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(
        fmt.PRESENCE_GLYPH.get(contact.status, "?") + " ",
        fmt.PRESENCE_STYLE.get(contact.status, ""),
    )
    text.append(contact.nick, "bold" if contact.unread else "")
    mark = fmt.TRUST_MARK.get(contact.trust, "")
    if mark:
        text.append(" " + mark, "bold red" if contact.trust == "key_changed" else "green")
    if contact.typing:
        text.append(" …", "italic")
    if fingerprint in model.muted:
        text.append(MUTED_MARK, "dim")
    _badge(text, contact.unread)
    if contact.status_text:
        text.append(f"\n  {contact.status_text}", "dim italic")
    return text


def room(model: Model, room_id: str) -> Text:
    entry = model.rooms[room_id]
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("# ", "bold")
    text.append(entry.name, "bold" if entry.unread else "")
    if entry.invited_us:
        text.append(" (invited)", "italic yellow")
    if ROOM_PREFIX + room_id in model.muted:
        text.append(MUTED_MARK, "dim")
    _badge(text, entry.unread)
    return text


class Sidebar(OptionList):
    """Option ids are conversation keys: a fingerprint, `room:<id>` or `group:<name>`."""

    # Only a right border, focused or not: OptionList's full border would push "People"
    # a row below the chat title and cost the list two rows and a column at 80x24.
    DEFAULT_CSS = """
    Sidebar { width: 28; height: 1fr; border: none; border-right: tall $panel; }
    Sidebar:focus { border: none; border-right: tall $border; }
    """

    def show(self, model: Model) -> None:
        # The highlight follows the open conversation; with none open, it stays put.
        highlighted = model.current or (
            self.highlighted_option.id if self.highlighted_option else None
        )
        options: list[Option | None] = [Option(Text("People", "bold underline"), disabled=True)]
        people = sorted(
            (c for c in model.contacts.values() if c.fingerprint != model.me and not c.blocked),
            key=lambda c: (STATUS_ORDER.get(c.status, 9), c.nick.casefold(), c.fingerprint),
        )
        options += [Option(person(model, c.fingerprint), id=c.fingerprint) for c in people]
        if not people:
            options.append(Option(Text("  nobody yet", "dim italic"), disabled=True))
        rooms = sorted(model.rooms.values(), key=lambda r: (not r.joined, r.name.casefold()))
        visible = [r for r in rooms if r.joined or r.invited_us]
        options += [None, Option(Text("Rooms", "bold underline"), disabled=True)]
        options += [Option(room(model, r.room), id=ROOM_PREFIX + r.room) for r in visible]
        options += [None, Option(Text("Groups", "bold underline"), disabled=True)]
        for name in sorted(model.groups, key=str.casefold):
            label = Text(f"≡ {name} ({len(model.groups[name])})", no_wrap=True)
            options.append(Option(label, id=GROUP_PREFIX + name))
        # Blocked people are listed apart, at the end, so that they can still be found
        # and unblocked (/unblock), but never read as someone to talk to.
        blocked = sorted(
            (c for c in model.contacts.values() if c.blocked), key=lambda c: c.nick.casefold()
        )
        if blocked:
            options += [None, Option(Text("Blocked", "bold underline"), disabled=True)]
            for c in blocked:
                options.append(Option(Text(f"✕ {c.nick}", "dim", no_wrap=True), id=c.fingerprint))
        self.clear_options()
        self.add_options(options)
        if highlighted is not None:
            with contextlib.suppress(OptionDoesNotExist):  # it went away, or is hidden
                self.highlighted = self.get_option_index(highlighted)

    def on_focus(self) -> None:
        """Tab lands on an entry a person can open, never on a header."""
        option = self.highlighted_option
        if option is None or option.disabled or option.id is None:
            first = next(
                (i for i in range(self.option_count) if not self.get_option_at_index(i).disabled),
                None,
            )
            if first is not None:
                self.highlighted = first
