"""The Textual app: layout, key bindings, and node events turned into screen updates.

Everything the user does becomes one `Node` call through the typed bridge (`call`; the
actions' `try_call` and `try_do` show a refusal); everything that happens comes back as a
node event folded into the `Model`.  What each command and key does lives in `actions/`
(handler functions over the `UiContext` this app provides, and the tables naming them);
this module wires the pieces together.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, TypeVar, overload

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.worker import Worker, WorkerCancelled, WorkerFailed

from p2pim import control
from p2pim import events as ev
from p2pim.api import ROOM_PREFIX, StorageError, StoredMessage, TransferState
from p2pim.clock import now_ms
from p2pim.node import Node
from p2pim.settings import Settings
from p2pim.ui import format as fmt
from p2pim.ui.actions import chat, rooms, table
from p2pim.ui.actions import files as file_actions
from p2pim.ui.actions.context import try_call, try_do
from p2pim.ui.bridge import NodeBridge, NodeStopped
from p2pim.ui.composer import Composer
from p2pim.ui.conversation import Conversation, FileCard, heading
from p2pim.ui.firstrun import ask_name
from p2pim.ui.messages import NodeEvent
from p2pim.ui.model import GROUP_PREFIX, HISTORY_PAGE, Model
from p2pim.ui.palette import P2pimCommands
from p2pim.ui.sidebar import Sidebar
from p2pim.ui.statusbar import StatusBar
from p2pim.ui.transfers import TransfersScreen

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
TYPING_EVERY = 2.0  # seconds between "typing" signals while the user keeps typing


class P2pimApp(App[None]):
    TITLE = "p2pim"
    CSS = """
    #main { height: 1fr; }
    #chat { width: 1fr; }
    #chat-title { height: 1; padding: 0 1; background: $boost; text-style: bold; }
    #typing { height: 1; padding: 0 1; color: $text-muted; text-style: italic; }
    """
    COMMANDS = App.COMMANDS | {P2pimCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "do('help')", "Help", priority=True),
        Binding("f2", "do('status')", "Status", priority=True),
        Binding("f3", "do('transfers')", "Transfers", priority=True),
        Binding("ctrl+o", "do('send_files')", "Send file", priority=True),
        Binding("ctrl+f", "do('search')", "Search", priority=True),
        Binding("ctrl+n", "do('new_room')", "Room", priority=True),
        Binding("ctrl+r", "do('verify')", "Verify", priority=True),
        Binding("ctrl+g", "do('new_group')", "Group", show=False, priority=True),
        Binding("ctrl+k", "jump", "Jump to", show=False, priority=True),
        Binding("ctrl+b", "do('broadcast')", "Broadcast", show=False, priority=True),
        Binding("f4", "do('settings')", "Settings", show=False, priority=True),
        Binding("escape", "focus_input", "Input", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        node: Node,
        *,
        settings: Settings | None = None,
        profile: Path | None = None,
        peers: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """`profile`: where settings are saved and the control socket is served (None:
        neither, as in tests)."""
        super().__init__()
        self.node = node
        self.settings = settings
        self.profile = profile
        self.model = Model(node.fingerprint, node.config.nick)
        socket = control.socket_path(profile) if profile is not None else None
        self.bridge = NodeBridge(node, self._relay, peers=peers, control_socket=socket)
        self._typing_sent: dict[str, float] = {}
        self._loading_older: set[str] = set()  # conversations whose older page is coming
        self._asked_offers: set[str] = set()  # offers we heard of first from an event
        self._opening: Worker[None] | None = None  # the conversation whose history loads
        self._held_back: list[str] = []  # typed while it loads: sent once it is open
        self._quitting = False

    # ---- life cycle ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="main"):
            yield Sidebar(id="sidebar")
            with Vertical(id="chat"):
                yield Static("", id="chat-title")
                yield Conversation(id="conversation")
                yield Static("", id="typing")
                yield Composer(id="composer")
        yield Footer()

    async def on_mount(self) -> None:
        await self.bridge.start()
        for peer in await self.call(self.node.peers):
            contact = self.model.contact(peer.fingerprint, peer.nick)
            contact.status = peer.status if peer.connected else "offline"
            contact.status_text, contact.trust = peer.status_text, peer.trust
            contact.blocked = peer.blocked
        self.model.muted = set(await self.call(self.node.muted))
        for room in await self.call(self.node.rooms):
            self.model.set_room(room)
        self.model.groups = await self.call(self.node.groups)
        await self.load_transfers()
        self.refresh_status()
        self.refresh_sidebar()
        self.open_conversation(None)
        self.query_one(Composer).focus()
        self.run_worker(self._exit_when_node_stops())
        if self.settings is not None and not self.settings.nick:  # the profile's first run
            ask_name(self)

    async def _exit_when_node_stops(self) -> None:
        """The node can stop without us (a script's `shutdown` over the control socket)."""
        await self.bridge.wait()
        self.exit()

    async def load_transfers(self) -> None:
        for info in reversed(await self.call(self.node.transfers)):  # oldest first
            self.model.set_transfer(info, now_ms())

    async def on_unmount(self) -> None:
        await self.bridge.shutdown()  # also when the app ends some other way than quit

    async def action_quit(self) -> None:
        """Say goodbye to every peer, withdraw from mDNS, close the database, then exit."""
        if self._quitting:
            return
        self._quitting = True
        self.query_one(StatusBar).update(Text("Saying goodbye…", "bold"))
        await self.bridge.shutdown()
        self.exit()

    # ---- the node, through the bridge (the UiContext the actions use) -------------------

    @overload
    async def call(self, fn: Callable[P, Awaitable[T]], *a: P.args, **k: P.kwargs) -> T: ...
    @overload
    async def call(self, fn: Callable[P, T], *a: P.args, **k: P.kwargs) -> T: ...
    async def call(self, fn: Callable[P, Any], *a: P.args, **k: P.kwargs) -> Any:
        """One node call, run in trio; its result, or its exception raised here."""
        return await self.bridge.call(fn, *a, **k)

    def spawn(self, work: Awaitable[object]) -> None:
        self.run_worker(work)

    def show(self, screen: Screen[R], then: Callable[[R | None], None] | None = None) -> None:
        self.push_screen(screen, then)

    async def ask(self, screen: Screen[R]) -> R | None:
        return await self.push_screen_wait(screen)

    @property
    def view(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    def _relay(self, event: ev.NodeEvent) -> None:
        self.post_message(NodeEvent(event))

    # ---- node events ---------------------------------------------------------------------

    async def on_node_event(self, message: NodeEvent) -> None:
        event = message.event
        bars = self.query(StatusBar)
        if not bars:  # the app is closing and its widgets are gone: nothing to show
            return
        bars.first().follow(event)
        changed = self.model.apply(event)
        if "self" in changed:  # our nick or status, whoever changed it (F2, a script, auto-away)
            self.refresh_status()
        if "contacts" in changed or "rooms" in changed:
            self.refresh_sidebar()
            self.refresh_title()  # the open peer's presence, the open room's topic
        current = self.model.current
        if current is not None and current in changed:
            self.refresh_conversation(event)
        if "transfers" in changed or isinstance(event, ev.TransferProgress):
            self.refresh_transfers(event)
        # A dialog whose question was settled elsewhere closes.
        file_actions.follow_dialogs(self, event)
        await self.announce(event)

    def refresh_conversation(self, event: ev.NodeEvent) -> None:
        key = self.model.current
        assert key is not None
        view = self.query_one(Conversation)
        lines = self.model.conversations.get(key, [])
        match event:
            case ev.MessageReceived() | ev.RoomMessage() | ev.RoomNotice() if lines:
                view.append(lines[-1])
                self.run_worker(self.mark_read(key))
            case (
                ev.MessageEdited()
                | ev.MessageDeleted()
                | ev.MessageDelivered()
                | ev.MessageRead()
                | ev.RoomMessageEdited()
                | ev.RoomMessageDeleted()
            ):
                for line in lines:
                    if line.message_id == event.message_id:
                        view.patch(line)
            case ev.TypingChanged():
                self.refresh_typing()
            case _:
                self.open_conversation(key, reload=False)

    def refresh_transfers(self, event: ev.NodeEvent) -> None:
        offer = getattr(event, "offer", None)
        peer = getattr(event, "peer", None)
        transfer = self.model.transfers.get((peer, offer)) if peer and offer else None
        if transfer is None and peer and offer and offer not in self._asked_offers:
            # An offer made by another face (the CLI, a script): the node has it whole.
            self._asked_offers.add(offer)  # once: one the node does not list stays unknown
            self.run_worker(self._load_offer(event))
        if transfer is not None and transfer.conversation == self.model.current:
            for group in self.model.cards(transfer.conversation):  # its card goes there
                if group[0].offer == transfer.offer:
                    self.query_one(Conversation).card(group, self.model.nick)
        for screen in self.screen_stack:
            if isinstance(screen, TransfersScreen):
                screen.refresh_rows()

    async def _load_offer(self, event: ev.NodeEvent) -> None:
        with contextlib.suppress(NodeStopped):
            await self.load_transfers()
            self.refresh_transfers(event)

    async def announce(self, event: ev.NodeEvent) -> None:
        """Toasts, the bell and desktop notifications for what happens elsewhere; none
        for a muted conversation (it still shows what arrives, and counts it unread)."""
        if ev.conversation_of(event) in self.model.muted:
            return
        match event:
            case ev.MessageReceived(sender=sender, nick=nick, text=text) if (
                sender != self.model.current
            ):
                self.alert(f"{nick}: {text[:120]}", title="New message")
            case ev.RoomMessage(room=room, nick=nick, text=text, author=author) if (
                ROOM_PREFIX + room != self.model.current and author != self.model.me
            ):
                self.alert(f"{nick}: {text[:120]}", title=self.model.title(ROOM_PREFIX + room))
            case ev.OfferReceived(nick=nick, files=files, total_size=total, room=room):
                where = f" in {self.model.title(ROOM_PREFIX + room)}" if room else ""
                self.alert(
                    f"{nick} offers {len(files)} file(s), {fmt.size(total)}",
                    title=f"Files offered{where}",
                )
                file_actions.ask_offer(self, event)
            case ev.TransferFinished(state=TransferState.FAILED, reason=reason, peer=peer):
                self.notify(
                    f"Transfer with {self.model.nick(peer)} failed: {reason}",
                    severity="error",
                    timeout=10,
                )
            case ev.TransferFinished(state=TransferState.COMPLETED, outgoing=False, files=files):
                saved = [f.saved_as for f in files if f.saved_as]
                self.notify(f"Received {len(saved)} file(s)" + (f": {saved[0]}" if saved else ""))
            case ev.RoomInvited(room=room, name=name, inviter_nick=inviter):
                self.alert(
                    f"{inviter} invites you to #{name}: open it to join", title="Room invitation"
                )
                rooms.ask_invitation(self, room)
            case ev.PeerKeyChanged(nick=nick):
                self.notify(
                    f"{nick}'s key changed. Sending to them is blocked until you verify (Ctrl+R).",
                    severity="warning",
                    timeout=15,
                )
            case ev.PairingFailed(reason=reason):
                self.notify(f"Pairing failed: {reason}", severity="error")

    def alert(self, text: str, *, title: str) -> None:
        self.notify(text, title=title)
        if self.settings is None or self.settings.bell:
            self.bell()
        if self.settings is not None and self.settings.desktop_notifications:
            self.run_worker(chat.desktop_notify(title, text))

    # ---- showing state -------------------------------------------------------------------

    def refresh_status(self) -> None:
        status = self.node.status
        self.query_one(StatusBar).show(
            self.model.my_nick, status.status, status.status_text, self.model.me
        )

    def refresh_sidebar(self) -> None:
        self.query_one(Sidebar).show(self.model)

    def refresh_typing(self) -> None:
        key = self.model.current
        contact = self.model.contacts.get(key) if key else None
        typing = f"{contact.nick} is typing…" if contact and contact.typing else ""
        self.query_one("#typing", Static).update(typing)

    def open_conversation(self, key: str | None, *, reload: bool = True) -> None:
        """Show a conversation (None: the welcome text); loads its history first."""
        if key is not None and reload:
            work = self.open_now(key)  # the worker's name says which conversation it opens
            self._opening = self.run_worker(work, name=key, group="open", exclusive=True)
            return
        if key is None:  # the welcome text: nothing is open, so nothing gets sent anywhere
            self.model.current = None
        else:
            self.model.open(key)
        title, notice = heading(self.model, key)
        self.query_one("#chat-title", Static).update(title)
        self.query_one(Conversation).show(self.model, key, notice)
        composer = self.query_one(Composer)
        was_disabled = composer.disabled
        composer.disabled = key is not None and self.model.blocked(key)
        if was_disabled and not composer.disabled:  # verified just now: type at once
            composer.focus()
        self.refresh_typing()
        self.refresh_sidebar()

    def refresh_title(self) -> None:
        """The title line and the notice under it (a room's members, a group's)."""
        title, notice = heading(self.model, self.model.current)
        self.query_one("#chat-title", Static).update(title)
        self.query_one(Conversation).set_notice(notice)

    async def _history_page(
        self, key: str, limit: int, before: str | None = None
    ) -> list[StoredMessage] | None:
        """Up to `limit` messages before `before` (the newest if None), oldest first.
        Tried: a refused history (a room we were just removed from, say) is a message to
        the user and None, not an exception in a worker, which would end the app."""
        if key.startswith(ROOM_PREFIX):
            room = key.removeprefix(ROOM_PREFIX)
            return await try_call(
                self, self.node.room_history, room, before=before, limit=limit, system=True
            )  # its system lines ("ann joined") too
        if key.startswith(GROUP_PREFIX):
            return []  # a group's lines live in its members' conversations
        return await try_call(self, self.node.history, key, before=before, limit=limit)

    async def open_now(self, key: str) -> None:
        """Load the conversation's history and show it, before returning."""
        history = await self._history_page(key, HISTORY_PAGE)
        if history is None:
            return
        if not key.startswith(GROUP_PREFIX):
            self.model.load_history(key, history, complete=len(history) < HISTORY_PAGE)
        self.open_conversation(key, reload=False)
        if not key.startswith(GROUP_PREFIX):
            await self.mark_read(key)

    async def load_older(self, key: str, limit: int = HISTORY_PAGE) -> bool:
        """The page before the oldest message loaded, put above it in the view; False when
        there is none (all of it is loaded) or it could not be read."""
        lines = self.model.conversations.get(key)
        if not lines or key in self.model.complete or key in self._loading_older:
            return False
        self._loading_older.add(key)  # one page at a time: the top is reached again and again
        try:
            history = await self._history_page(key, limit, before=lines[0].message_id)
        finally:
            self._loading_older.discard(key)
        if history is None:
            return False
        older = self.model.prepend_history(key, history, complete=len(history) < limit)
        view = self.query_one(Conversation)
        if view.key == key:
            view.prepend(older)
        return bool(older)

    def on_conversation_reached_top(self, message: Conversation.ReachedTop) -> None:
        if message.key == self.model.current:
            self.run_worker(self.load_older(message.key))

    async def mark_read(self, key: str) -> None:
        if not key.startswith((ROOM_PREFIX, GROUP_PREFIX)) and self.model.conversations.get(key):
            await self.call_quietly(self.node.mark_read, key)

    async def call_quietly(self, fn: Callable[P, object], *a: P.args, **k: P.kwargs) -> None:
        """A node call nobody waits for (typing, activity, read receipts), run as a worker:
        one that comes as the node stops, or that the disk refuses (full: the status bar
        says so, and the next read tries again), fails quietly instead of ending the app."""
        with contextlib.suppress(NodeStopped, StorageError):
            await self.call(fn, *a, **k)

    # ---- input ---------------------------------------------------------------------------

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if isinstance(event.option_list, Sidebar) and event.option_id:
            self.open_conversation(event.option_id)
            self.query_one(Composer).focus()
            rooms.ask_if_invited(self, event.option_id)

    def on_composer_typing(self, message: Composer.Typing) -> None:
        self.run_worker(self.call_quietly(self.node.note_activity))
        key = self.model.current
        if key is None or key.startswith((ROOM_PREFIX, GROUP_PREFIX)):
            return
        now = time.monotonic()
        if message.active and now - self._typing_sent.get(key, 0.0) < TYPING_EVERY:
            return
        self._typing_sent[key] = now if message.active else 0.0
        self.run_worker(self.call_quietly(self.node.set_typing, key, message.active))

    async def on_composer_submitted(self, message: Composer.Submitted) -> None:
        if self._held_back or (self._opening is not None and not self._opening.is_finished):
            # Typed right after a jump, while the history loads: it goes to the
            # conversation being opened, once it is open (not to the one before, or nowhere).
            self._held_back.append(message.text)
            if len(self._held_back) == 1:
                self.run_worker(self._submit_when_open())
            return
        await self.submit(message.text)

    async def _submit_when_open(self) -> None:
        while self._opening is not None and not self._opening.is_finished:
            with contextlib.suppress(WorkerCancelled, WorkerFailed):  # replaced by a newer one
                await self._opening.wait()
        if self._opening is not None and self.model.current != self._opening.name:
            # It did not open (history refused): never to the conversation open before.
            self.query_one(Composer).load_text("\n".join(self._held_back))
            self._held_back.clear()
            self.notify("Not sent: it did not open. Your text is back in the input.")
            return
        while self._held_back:
            await self.submit(self._held_back[0])
            del self._held_back[0]

    async def submit(self, text: str) -> None:
        """What Enter does: a slash command runs, anything else is sent here."""
        await table.run(self, text)

    def on_transfers_screen_act(self, message: TransfersScreen.Act) -> None:
        transfer = message.transfer
        if message.what == "answer":
            offer = self.model.offers.get((transfer.peer, transfer.offer))
            if offer is not None:
                self.run_worker(file_actions.answer_offer(self, offer, message.accept, None))
        elif message.what == "cancel":
            self.run_worker(try_do(self, self.node.cancel_transfer, transfer.peer, transfer.offer))

    def on_file_card_chosen(self, message: FileCard.Chosen) -> None:
        """A click on a file card: answer the offer, if it waits for us; else F3."""
        waiting = [o for (_, offer), o in self.model.offers.items() if offer == message.offer]
        if waiting:
            file_actions.ask_offer(self, waiting[0])
        else:
            file_actions.show_transfers(self)

    def action_do(self, name: str) -> None:
        """A key binding's or palette entry's action, by its name in the actions table."""
        table.KEY_ACTIONS[name](self)

    def action_jump(self) -> None:
        """Ctrl+K: type part of a name, Enter opens that conversation."""
        from p2pim.ui.jump import JumpScreen

        def chosen(key: object) -> None:
            if isinstance(key, str):
                self.open_conversation(key)
                self.query_one(Composer).focus()
                rooms.ask_if_invited(self, key)

        def type_ahead(key: events.Key) -> None:  # typed after the choice: the message
            self.query_one(Composer).post_message(events.Key(key.key, key.character))

        self.push_screen(JumpScreen(self.model, type_ahead), chosen)

    def action_focus_input(self) -> None:
        self.query_one(Composer).focus()
