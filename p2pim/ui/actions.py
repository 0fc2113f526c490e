"""What each key, command-palette entry and slash command does (mixed into the app)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual.app import App

from p2pim import events as ev
from p2pim.clock import now_ms
from p2pim.names import resolve_peer
from p2pim.node import Node
from p2pim.reach import parse_address
from p2pim.settings import PREFERENCES, Settings
from p2pim.ui import commands, long_text
from p2pim.ui import format as fmt
from p2pim.ui.dialogs import Ask, Confirm, PickPeers
from p2pim.ui.model import GROUP_PREFIX, HISTORY_PAGE, ROOM_PREFIX, Model

STATUSES = ("online", "away", "busy")
FAILED: Any = object()  # what `guarded` returns when the call failed (and was shown)
JUMP_PAGE = 500  # messages loaded at a time when a search jumps to an old one


class Actions(App[None]):
    """The app's commands; `P2pimApp` provides the state and the views they update."""

    node: Node
    model: Model
    settings: Settings | None
    profile: Path | None

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def open_conversation(self, key: str | None, *, reload: bool = True) -> None:
        raise NotImplementedError

    async def _load_and_open(self, key: str) -> None:
        raise NotImplementedError

    async def load_older(self, key: str, limit: int = HISTORY_PAGE) -> bool:
        raise NotImplementedError

    async def load_transfers(self) -> None:
        raise NotImplementedError

    def refresh_status(self) -> None:
        raise NotImplementedError

    def refresh_sidebar(self) -> None:
        raise NotImplementedError

    def refresh_transfers(self, event: ev.NodeEvent) -> None:
        raise NotImplementedError

    # ---- sending -------------------------------------------------------------------------

    async def submit(self, text: str) -> None:
        try:
            command = commands.parse(text)
        except commands.CommandError as exc:
            self.notify(str(exc), severity="error")
            return
        if command is not None:
            await self.run_command(command)
            return
        key = self.model.current
        if key is None:
            self.notify("Pick a person, room or group on the left first.", severity="warning")
            return
        body = commands.message_text(text)
        if long_text.too_long(body):
            self.run_worker(self.offer_as_file(key, text, body))
            return
        await self.send_message(key, body)

    async def offer_as_file(self, key: str, typed: str, body: str) -> None:
        """Too long for a message: the text goes back into the input, and the person
        chooses to send it as a text file or to keep editing."""
        from p2pim.ui.composer import Composer

        composer = self.query_one(Composer)
        composer.load_text(typed)
        composer.move_cursor(composer.document.end)
        if key.startswith(GROUP_PREFIX):
            self.notify(
                f"Too long for a message ({fmt.size(len(body.encode()))}) and a group takes "
                "no files: shorten it, or send it as a file to each person.",
                severity="warning",
                timeout=10,
            )
            return
        answer = await self.push_screen_wait(
            Confirm(long_text.question(body), yes="Send as a file", no="Keep editing")
        )
        if answer is not True:
            return
        folder = (self.profile or self.node.config.download_dir) / long_text.OUTGOING
        try:
            path = await asyncio.to_thread(long_text.write_text_file, folder, body)
        except OSError as exc:
            self.notify(f"Could not write the text file: {exc.strerror}", severity="error")
            return
        if composer.text == typed:  # unless they went on editing meanwhile
            composer.load_text("")
        await self.send_paths([str(path)])

    async def send_message(self, key: str, text: str) -> None:
        if key.startswith(GROUP_PREFIX):
            sent = await self.guarded(self.node.send_to_group, key.removeprefix(GROUP_PREFIX), text)
            if sent is not FAILED:
                # One line for the group, with an id of its own: that of one member's copy
                # (a clock-based id repeats when two sends fall in the same millisecond).
                line_id = "g" + next(iter(sent.values()))
                self.model.add_own(key, line_id, text, now_ms(), "sent")
                self.show_own(key, line_id)
                self.notify(f"Sent to {len(sent)} member(s).")
            return
        if key.startswith(ROOM_PREFIX):
            message_id = await self.guarded(
                self.node.post_to_room, key.removeprefix(ROOM_PREFIX), text
            )
            if message_id is not FAILED:
                self.model.add_own(key, message_id, text, now_ms(), "")
                self.show_own(key, message_id)
            return
        message_id = await self.guarded(self.node.send_text, key, text)
        if message_id is FAILED:
            return
        connected = await self.call(self.node.is_connected, key)
        self.model.add_own(key, message_id, text, now_ms(), "sent" if connected else "queued")
        self.show_own(key, message_id)
        if not connected:
            self.notify(f"{self.model.nick(key)} is offline: queued, it goes when they are back.")

    def show_own(self, key: str, message_id: str) -> None:
        """Append a line we just sent to the open view.  Not a rebuild of the view: that
        remounts every line under the id it still has while the old widgets are being
        removed (DuplicateIds), and it would scroll away from what the user reads."""
        from p2pim.ui.conversation import Conversation

        view = self.query_one(Conversation)
        lines = self.model.conversations.get(key, [])
        line = next((x for x in reversed(lines) if x.message_id == message_id), None)
        if line is not None and view.key == key and not view.query(f"#m-{message_id}"):
            view.append(line)

    async def guarded(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A node call whose failure is shown to the user (and gives FAILED), not raised."""
        try:
            return await self.call(fn, *args, **kwargs)
        except Exception as exc:  # every refusal reaches the user as a message
            self.notify(str(exc) or type(exc).__name__, severity="error", timeout=8)
            return FAILED

    async def answer_offer(
        self, offer: ev.OfferReceived, accept: bool, directory: str | None
    ) -> None:
        """Accept or decline; a refused accept (no space, say) leaves the offer open."""
        if accept:
            done = await self.guarded(
                self.node.accept_offer, offer.peer, offer.offer, directory=directory
            )
        else:
            done = await self.guarded(self.node.decline_offer, offer.peer, offer.offer)
        if done is not FAILED:
            self.model.offers.pop((offer.peer, offer.offer), None)
            self.follow_dialogs(None)  # an offer dialog still asking about it closes

    def follow_dialogs(self, event: ev.NodeEvent | None) -> None:
        """Open dialogs follow what happened (an offer answered in F3, a pairing done)."""
        from p2pim.ui.dialogs import Dialog

        for screen in self.screen_stack:
            if isinstance(screen, Dialog):
                screen.follow(event, self.model)

    def ask_invitation(self, room: str) -> None:
        """Join / Decline / Later for a room we are invited to; not over another dialog."""
        from p2pim.ui.invitation import DECLINE, JOIN, InvitationScreen

        info = self.model.rooms.get(room)
        if info is None or not info.invited_us or len(self.screen_stack) > 1:
            return

        def answered(choice: object) -> None:
            if choice in (JOIN, DECLINE):
                self.run_worker(self.answer_invitation(room, choice == JOIN))

        screen = InvitationScreen(room, info.name, info.inviter_nick, info.topic)
        self.push_screen(screen, answered)

    def ask_if_invited(self, key: str) -> None:
        """The user opened `key`: an invitation there asks Join / Decline / Later (after
        the screen that picked it, if any, has gone)."""
        if key.startswith(ROOM_PREFIX):
            self.call_later(self.ask_invitation, key.removeprefix(ROOM_PREFIX))

    async def answer_invitation(self, room: str, join: bool) -> None:
        if join:
            if await self.guarded(self.node.join_room, room) is not FAILED:
                self.open_conversation(ROOM_PREFIX + room)
            return
        if await self.guarded(self.node.decline_room, room) is not FAILED:
            self.model.rooms.pop(room, None)
            if self.model.current == ROOM_PREFIX + room:
                self.open_conversation(None)
            else:
                self.refresh_sidebar()

    # ---- slash commands ------------------------------------------------------------------

    async def run_command(self, command: commands.Command) -> None:
        name, args = command.name, command.args
        key = self.model.current
        room = key.removeprefix(ROOM_PREFIX) if key and key.startswith(ROOM_PREFIX) else None
        peer = key if key and not key.startswith((ROOM_PREFIX, GROUP_PREFIX)) else None
        needs_room = {"invite", "join", "decline", "leave", "topic", "kick", "admin"}
        if name in needs_room and room is None:
            self.notify(f"/{name} works in a room: open one first.", severity="warning")
            return
        if name == "verify" and peer is None:
            self.notify(f"/{name} works in a conversation with a person.", severity="warning")
            return
        if name in {"edit", "delete"} and peer is None and room is None:
            self.notify(f"/{name} works in a conversation or a room.", severity="warning")
            return
        if name == "status":
            await self.set_status(args[0], " ".join(args[1:]))
        elif name == "nick":
            await self.rename(args[0])
        elif name == "send":
            if args:
                await self.send_paths(list(args))
            else:
                self.action_send_files()
        elif name == "room":
            await self.create_room(args[0])
        elif name == "invite" and room:
            target = self.resolve(args[0])
            if target and await self.guarded(self.node.invite_to_room, room, target) is not FAILED:
                self.notify(f"Invited {self.model.nick(target)}.")
        elif name == "join" and room:
            await self.guarded(self.node.join_room, room)
        elif name == "decline" and room:
            await self.guarded(self.node.decline_room, room)
            self.model.rooms.pop(room, None)
            self.open_conversation(None)
        elif name == "leave" and room:
            self.action_leave_room()
        elif name == "topic" and room:
            await self.guarded(self.node.set_room_topic, room, args[0])
        elif name in ("kick", "admin") and room:
            target = self.resolve(args[0])
            fn = self.node.remove_from_room if name == "kick" else self.node.make_room_admin
            if target:
                await self.guarded(fn, room, target)
        elif name == "group":
            await self.save_group(args[0], [fp for a in args[1:] if (fp := self.resolve(a))])
        elif name == "broadcast":
            await self.broadcast(args[0])
        elif name == "verify":
            self.action_verify()
        elif name in ("block", "unblock"):
            await self.block_command(name == "block", args[0] if args else None, peer)
        elif name in ("mute", "unmute"):
            await self.set_muted(key, name == "mute")
        elif name == "search":
            self.action_search(args[0])
        elif name == "export":
            await self.export(*args)
        elif name == "peer":
            await self.add_peer(args[0])
        elif name in ("edit", "delete") and key:
            await self.edit_last(key, args[0] if args else None)
        elif name == "transfers":
            self.action_transfers()
        elif name == "settings":
            self.action_settings()
        elif name == "help":
            self.action_help()
        elif name == "quit":
            await self.action_quit()

    # ---- block and mute --------------------------------------------------------------------

    async def block_command(self, block: bool, name: str | None, open_peer: str | None) -> None:
        """/block and /unblock: the named person, else the open conversation's; /unblock
        with neither lists who is blocked (blocked people are not in the sidebar's list)."""
        target = self.resolve(name) if name else open_peer
        if name and target is None:
            return  # resolve told the user why
        if target is None:
            blocked = [c.nick for c in self.model.contacts.values() if c.blocked]
            if block or not blocked:
                what = "/block PEER, or open a conversation with the person"
                self.notify(what if block else "Nobody is blocked.", severity="warning")
            else:
                self.notify("Blocked: " + ", ".join(sorted(blocked)) + ". /unblock NAME lifts it.")
            return
        await self.set_blocked(target, block)

    async def set_blocked(self, peer: str, block: bool) -> None:
        fn = self.node.block if block else self.node.unblock
        if await self.guarded(fn, peer) is FAILED:
            return
        self.model.contact(peer).blocked = block
        self.refresh_sidebar()
        nick = self.model.nick(peer)
        if block:
            self.notify(
                f"Blocked {nick}: their messages, files and invitations no longer reach you. "
                f"/unblock {nick} lifts it.",
                timeout=8,
            )
        else:
            self.notify(f"Unblocked {nick}: what they send from now on arrives again.")

    async def set_muted(self, key: str | None, mute: bool) -> None:
        if key is None or key.startswith(GROUP_PREFIX):
            self.notify(
                "/mute works in a conversation with a person or a room.", severity="warning"
            )
            return
        fn = self.node.mute if mute else self.node.unmute
        if await self.guarded(fn, key) is FAILED:
            return
        (self.model.muted.add if mute else self.model.muted.discard)(key)
        self.refresh_sidebar()
        title = self.model.title(key)
        self.notify(f"Muted {title}: no more alerts." if mute else f"{title} alerts you again.")

    def action_toggle_block(self) -> None:
        key = self.model.current
        if key is None or key.startswith((ROOM_PREFIX, GROUP_PREFIX)):
            self.notify("Open a conversation with the person to block.", severity="warning")
            return
        self.run_worker(self.set_blocked(key, not self.model.contact(key).blocked))

    def action_toggle_mute(self) -> None:
        key = self.model.current
        self.run_worker(self.set_muted(key, key not in self.model.muted))

    def resolve(self, name: str) -> str | None:
        """A peer's fingerprint from a nick or fingerprint prefix; tells the user if not."""
        try:
            return resolve_peer(
                name, [(c.fingerprint, c.nick) for c in self.model.contacts.values()]
            )
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return None

    async def set_status(self, status: str, text: str) -> None:
        if status not in STATUSES:
            self.notify(f"a status is one of {', '.join(STATUSES)}", severity="error")
            return
        await self.guarded(self.node.set_status, status, text)
        self.refresh_status()

    async def create_room(self, name: str, topic: str = "", members: Sequence[str] = ()) -> None:
        room = await self.guarded(self.node.create_room, name, topic, list(members))
        if room is not FAILED:
            for info in await self.call(self.node.rooms):
                self.model.set_room(info)
            self.open_conversation(ROOM_PREFIX + room)
            invited = ", ".join(self.model.nick(fp) for fp in members)
            self.notify(
                f"Room #{name} created; invited {invited}."
                if members
                else f"Room #{name} created: /invite PEER asks people in."
            )

    async def save_group(self, name: str, members: list[str]) -> None:
        if await self.guarded(self.node.set_group, name, members) is not FAILED:
            self.model.groups = await self.call(self.node.groups)
            self.refresh_sidebar()
            self.notify(
                f"Group {name}: {len(members)} member(s)." if members else f"Group {name} removed."
            )

    async def broadcast(self, text: str) -> None:
        sent = await self.guarded(self.node.broadcast, text)
        if sent is not FAILED:
            self.notify(f"Broadcast to {len(sent)} peer(s) online.")

    async def send_paths(self, paths: list[str]) -> None:
        key = self.model.current
        missing = [p for p in paths if not Path(p).expanduser().exists()]
        if missing:
            self.notify(f"No such file or folder: {missing[0]}", severity="error")
            return
        resolved = [str(Path(p).expanduser()) for p in paths]
        if key is None or key.startswith(GROUP_PREFIX):
            self.notify(
                "Open a conversation with a person or a room to send files.", severity="warning"
            )
        elif key.startswith(ROOM_PREFIX):
            room = key.removeprefix(ROOM_PREFIX)
            offer = await self.guarded(self.node.send_files_to_room, room, resolved)
            if offer is not FAILED:  # its card (one line per member) goes in the room
                await self.load_transfers()
                sent = [t for t in self.model.transfers.values() if t.offer == offer]
                if sent:
                    self.refresh_transfers(ev.OfferAnswered(sent[0].peer, offer, ()))
                self.notify(f"Offered to {len(sent)} member(s) of the room.")
        else:
            offer = await self.guarded(self.node.send_files, [key], resolved)
            if offer is not FAILED:
                await self.load_transfers()
                self.refresh_transfers(ev.OfferAnswered(key, offer, ()))

    async def export(self, *args: str) -> None:
        key = self.model.current
        if key is None or key.startswith(GROUP_PREFIX):
            self.notify("Open a conversation to export it.", severity="warning")
            return
        fmt_name = args[0] if args else "markdown"
        if fmt_name not in ("markdown", "jsonl"):
            self.notify("usage: /export [markdown|jsonl] [FILE]", severity="error")
            return
        suffix = "md" if fmt_name == "markdown" else "jsonl"
        # The default name comes from a peer-chosen nick: no separators, no "..", no dotfile.
        name = re.sub(r"[^\w-]+", "_", self.model.title(key)).strip("_") or "conversation"
        target = (
            Path(args[1]).expanduser()
            if len(args) > 1
            else self.node.config.download_dir / f"{name}.{suffix}"
        )
        # Node.export takes keyword arguments only: a peer's conversation or a room's.
        if key.startswith(ROOM_PREFIX):
            room = key.removeprefix(ROOM_PREFIX)
            text = await self.guarded(self.node.export, room=room, fmt=fmt_name)
        else:
            text = await self.guarded(self.node.export, peer=key, fmt=fmt_name)
        if text is FAILED:
            return
        try:
            await asyncio.to_thread(_write_private, target, text)
        except OSError as exc:
            self.notify(f"Could not write {target}: {exc.strerror}", severity="error")
            return
        self.notify(f"Saved to {target}")

    async def add_peer(self, address: str) -> None:
        try:
            host, port = parse_address(address)
        except Exception as exc:
            self.notify(str(exc), severity="error")
            return
        if await self.guarded(self.node.add_peer, host, port) is not FAILED:
            self.notify(f"Reaching {host}:{port}; it is remembered.")

    async def edit_last(self, key: str, text: str | None) -> None:
        """/edit TEXT or /delete: the last message we wrote here, with a person or in a
        room (there, a signed operation of the room's log that every member applies)."""
        own = [
            line
            for line in self.model.conversations.get(key, [])
            if line.outgoing and not line.deleted and not line.system
        ]
        if not own:
            self.notify("You have sent nothing here yet.", severity="warning")
            return
        last = own[-1].message_id
        room = key.removeprefix(ROOM_PREFIX) if key.startswith(ROOM_PREFIX) else None
        # Shown here only once the node took it: a refused edit (too long, say) changes nothing.
        if text is None:
            if room is not None:
                done = await self.guarded(self.node.delete_room_post, room, last)
                changed: ev.NodeEvent = ev.RoomMessageDeleted(room, last, self.model.me)
            else:
                done = await self.guarded(self.node.delete, key, last)
                changed = ev.MessageDeleted(key, last)
        elif room is not None:
            done = await self.guarded(self.node.edit_room_post, room, last, text)
            changed = ev.RoomMessageEdited(room, last, self.model.me, text)
        else:
            done = await self.guarded(self.node.edit, key, last, text)
            changed = ev.MessageEdited(key, last, text)
        if done is FAILED:
            return
        self.model.apply(changed)
        from p2pim.ui.conversation import Conversation

        self.query_one(Conversation).patch(own[-1])  # that line only, as for a peer's edit

    async def desktop_notify(self, title: str, text: str) -> None:
        program = shutil.which("notify-send")
        if program is None:
            return
        process = await asyncio.create_subprocess_exec(
            program,
            "--app-name=p2pim",
            title,
            text,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await process.wait()

    # ---- actions bound to keys and the command palette ------------------------------------

    def action_help(self) -> None:
        from p2pim.ui.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_transfers(self) -> None:
        from p2pim.ui.transfers import TransfersScreen

        self.push_screen(TransfersScreen(self.model))

    def action_status(self) -> None:
        current = self.node.status

        def chosen(values: object) -> None:
            if isinstance(values, tuple):
                self.run_worker(self.set_status(values[0].strip().lower() or "online", values[1]))

        self.push_screen(
            Ask(
                "Your status",
                [
                    ("online, away or busy", current.status),
                    ("status text (optional)", current.status_text),
                ],
                hint="Auto-away sets “away” after the idle time in Settings (F4).",
            ),
            chosen,
        )

    def action_send_files(self) -> None:
        from p2pim.ui.picker import FilePicker

        if self.model.current is None or self.model.current.startswith(GROUP_PREFIX):
            self.notify("Open a conversation with a person or a room first.", severity="warning")
            return

        def picked(paths: object) -> None:
            if isinstance(paths, list) and paths:
                self.run_worker(self.send_paths(paths))

        self.push_screen(FilePicker(Path.home()), picked)

    def action_search(self, query: str = "") -> None:
        from p2pim.ui.search import SearchScreen

        def jump(hit: object) -> None:
            if isinstance(hit, tuple):
                self.run_worker(self.jump_to(*hit))

        self.push_screen(SearchScreen(self.node, self.model, self.call, query), jump)

    async def jump_to(self, key: str, message_id: str) -> None:
        await self._load_and_open(key)
        from p2pim.ui.conversation import Conversation

        view = self.query_one(Conversation)
        # An old message: pages further back are loaded until it is among them.
        while not view.highlight(message_id):
            if view.key != key or not await self.load_older(key, JUMP_PAGE):
                self.notify("That message is no longer in this conversation.", severity="warning")
                return

    def action_new_room(self) -> None:
        from p2pim.ui.new_room import NewRoom

        def made(values: object) -> None:
            if isinstance(values, tuple):
                name, topic, members = values
                self.run_worker(self.create_room(name, topic, members))

        candidates = sorted(
            (c.nick, c.fingerprint) for c in self.model.contacts.values() if c.trust is not None
        )
        self.push_screen(NewRoom(candidates), made)

    def action_invite(self) -> None:
        key = self.model.current
        if key is None or not key.startswith(ROOM_PREFIX):
            self.notify("Open a room first.", severity="warning")
            return
        room = self.model.rooms[key.removeprefix(ROOM_PREFIX)]
        candidates = [
            (c.nick, c.fingerprint)
            for c in self.model.contacts.values()
            if c.fingerprint not in room.members and c.trust is not None
        ]

        def chosen(result: object) -> None:
            if isinstance(result, tuple):
                for fp in result[1]:
                    self.run_worker(self.guarded(self.node.invite_to_room, room.room, fp))

        self.push_screen(PickPeers(f"Invite to #{room.name}", candidates, ok="Invite"), chosen)

    def action_leave_room(self) -> None:
        key = self.model.current
        if key is None or not key.startswith(ROOM_PREFIX):
            self.notify("Open a room first.", severity="warning")
            return
        room = key.removeprefix(ROOM_PREFIX)

        def confirmed(yes: object) -> None:
            if yes is True:
                self.run_worker(self.guarded(self.node.leave_room, room))

        self.push_screen(Confirm(f"Leave {self.model.title(key)}?", yes="Leave"), confirmed)

    def action_new_group(self) -> None:
        key = self.model.current
        name = key.removeprefix(GROUP_PREFIX) if key and key.startswith(GROUP_PREFIX) else ""
        members = self.model.groups.get(name, [])
        candidates = [
            (c.nick, c.fingerprint) for c in self.model.contacts.values() if c.trust is not None
        ]

        def chosen(result: object) -> None:
            if isinstance(result, tuple) and result[0]:
                self.run_worker(self.save_group(result[0], result[1]))

        self.push_screen(
            PickPeers("Contact group", candidates, selected=members, name=name, ok="Save"), chosen
        )

    def action_broadcast(self) -> None:
        def typed(values: object) -> None:
            if isinstance(values, tuple) and values[0].strip():
                self.run_worker(self.broadcast(values[0]))

        self.push_screen(Ask("Broadcast to everyone online", [("message", "")], ok="Send"), typed)

    def action_add_peer(self) -> None:
        def typed(values: object) -> None:
            if isinstance(values, tuple) and values[0].strip():
                self.run_worker(self.add_peer(values[0].strip()))

        hint = f"This node listens on port {self.node.port}." if self.node.port else ""
        self.push_screen(
            Ask("Add a peer by address", [("HOST:PORT", "")], hint=hint, ok="Add"), typed
        )

    def action_export(self) -> None:
        self.run_worker(self.export())

    def action_verify(self) -> None:
        key = self.model.current
        if (
            key is None
            or key.startswith((ROOM_PREFIX, GROUP_PREFIX))
            or key not in self.model.contacts
        ):
            self.notify("Open a conversation with a person to verify them.", severity="warning")
            return
        self.run_worker(self.open_verify(key))

    async def open_verify(self, peer: str) -> None:
        from p2pim.ui.verify import PairingCodeScreen, VerifyScreen, VerifyView

        number = await self.guarded(self.node.safety_number, peer)
        if number is FAILED:
            return
        contact = self.model.contacts[peer]
        view = VerifyView(
            contact.nick, peer, self.model.me, number, contact.trust, contact.previous_fingerprint
        )
        choice = await self.push_screen_wait(VerifyScreen(view))
        if choice == "verified":
            if await self.guarded(self.node.verify, peer) is not FAILED:
                self.notify(f"{contact.nick} is verified.")
        elif choice == "show-code":
            code = await self.guarded(self.node.start_pairing)
            if code is not FAILED:  # it closes by itself once they have paired
                self.push_screen(PairingCodeScreen(code, contact.nick, self.node.port))
        elif choice == "enter-code":
            addresses = [
                r.addresses
                for r in await self.call(self.node.reachability)
                if r.fingerprint == peer
            ]
            address = addresses[0][0] if addresses and addresses[0] else ""
            values = await self.push_screen_wait(
                Ask(
                    f"Pair with {contact.nick}",
                    [("their code", ""), ("their HOST:PORT", address)],
                    ok="Pair",
                )
            )
            if isinstance(values, tuple):
                try:
                    host, port = parse_address(values[1].strip())
                except Exception as exc:
                    self.notify(str(exc), severity="error")
                    return
                if await self.guarded(self.node.pair, host, port, values[0].strip()) is not FAILED:
                    self.notify(f"Paired: {contact.nick} is verified on both sides.")

    def action_settings(self) -> None:
        from p2pim.ui.settings_screen import SettingsScreen

        if self.settings is None:
            self.notify("Settings need a profile (this node runs without one).", severity="warning")
            return
        current = dataclasses.replace(self.settings, nick=self.node.config.nick)
        self.push_screen(SettingsScreen(current, self.node.port), self.settings_saved)

    def settings_saved(self, result: object) -> None:
        if isinstance(result, Settings):
            if result.nick != self.node.config.nick:  # live: peers see it at once
                self.run_worker(self.rename(result.nick))
            # Only the preferences this screen owns: the node keeps the nick and status.
            preferences = {name: getattr(result, name) for name in PREFERENCES}
            self.settings = dataclasses.replace(self.settings or result, **preferences)
            if self.profile is not None:
                remember = functools.partial(Settings.remember, self.profile, **preferences)
                self.run_worker(asyncio.to_thread(remember))
            self.node.config.download_dir = Path(result.download_dir)  # read at each accept
            self.notify("Saved. New interfaces apply from the next start.")

    async def rename(self, nick: str) -> None:
        """Our new nick: the node tells every peer and keeps it in the profile."""
        if await self.guarded(self.node.set_nick, nick) is not FAILED and self.settings:
            self.settings.nick = nick


def _write_private(path: Path, text: str) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
