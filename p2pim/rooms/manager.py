"""Rooms on the network: authoring signed events, pushing and relaying them to online
members, and anti-entropy when two members meet.

Every event we accept for the first time is stored, the room replayed
(`p2pim.rooms.state`), and the event forwarded to the connected members that may lack
it (a member that was offline gets it from whoever it meets next: `RoomSync` on every
new session).  Only events that count are relayed or synced, and only to the room's
members and invitees; duplicates are dropped by (author, seq), so flooding ends.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

import trio

from p2pim import events
from p2pim.api import NotYourMessage, RoomError, RoomInfo, StoredMessage, UnknownMessage
from p2pim.clock import now_ms
from p2pim.delivery import LinkWriter
from p2pim.identity import Identity, fingerprint
from p2pim.net.link import PeerLink
from p2pim.rooms import state as rs
from p2pim.rooms.reports import Reporter
from p2pim.rooms.reports import conversation as conversation
from p2pim.routes import Routes
from p2pim.storage import Database, StorageError, Store
from p2pim.wire.messages import (
    MAX_TEXT_BYTES,
    ROOM_ID_SIZE,
    Message,
    RoomCursor,
    RoomEvent,
    RoomOp,
    RoomSync,
)

log = logging.getLogger(__name__)

MAX_ROOMS = 1024  # rooms we keep, counting invitations
MAX_EVENTS_PER_ROOM = 100_000
MAX_PENDING_PER_PEER = 4  # rooms we are not in, held for one peer, awaiting an invitation
MAX_PENDING_EVENTS = 10_000
ROOM_QUEUE = 64  # batches waiting to go to one peer; beyond, anti-entropy catches up
ROOM_WRITE = 64  # events per write


class Rooms:
    def __init__(
        self,
        identity: Identity,
        store: Store,
        emit: Callable[[events.NodeEvent], Awaitable[None]],
        nick_of: Callable[[str], str],
    ) -> None:
        self._me = identity
        self._fp = identity.fingerprint
        self._store = store
        self._ops: dict[bytes, dict[tuple[str, int], rs.Op]] = {}
        self._states: dict[bytes, rs.RoomState] = {}
        self._declined: set[bytes] = set()
        self._synced: dict[str, set[bytes]] = {}  # per peer: rooms we sent a RoomSync this session
        # Rooms we are not in (yet): their events wait in memory until one invites us.
        self._pending: dict[bytes, dict[tuple[str, int], rs.Op]] = {}
        self._pending_from: dict[bytes, str] = {}  # which peer sent us each held room
        # Per peer: its session's writer (see `_send_to`).
        self._writers: dict[str, LinkWriter[Sequence[Message]]] = {}
        self._nursery: trio.Nursery | None = None
        self._lock = trio.Lock()  # one event accepted at a time: replays never interleave
        self.rejected = 0  # events that failed verification (forgeries, garbage)
        self._reporter = Reporter(self._fp, store, emit, nick_of)

    async def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._declined = await self._store.run(Database.declined_rooms)
        for room in await self._store.run(Database.room_ids):
            ops = {}
            for payload, sig in await self._store.run(Database.room_events, room):
                try:
                    op = rs.verify(RoomEvent(payload, sig))
                except rs.InvalidRoomEvent as exc:  # the disk was tampered with
                    log.warning("skipping a stored room event: %s", exc)
                    continue
                ops[(op.author, op.op.seq)] = op
            self._ops[room] = ops
            state = self._states[room] = rs.replay(room, ops.values())
            try:  # a crash may have come between event and post
                await self._reporter.mirror_posts(state)
            except StorageError as exc:  # a full disk must not stop the start: next time
                log.warning("could not bring the posts of a room up to date: %s", exc)

    # ---- what users do ------------------------------------------------------------------

    async def create(self, name: str, topic: str = "") -> bytes:
        nonce = secrets.token_bytes(ROOM_ID_SIZE)
        room = rs.room_id(self._me.public_key, nonce)
        await self._author(room, "create", text=_text(name), nonce=nonce)
        if topic:
            await self._author(room, "topic", text=_text(topic))
        return room

    async def invite(self, room: bytes, key: bytes) -> None:
        await self._author(self._joined(room), "invite", subject=key)
        self._sync_with(fingerprint(key), room)  # it needs the log to decide

    async def join(self, room: bytes) -> None:
        state = self._states.get(room)
        if state is None or self._fp not in state.invited:
            raise RoomError("no invitation to that room is waiting")
        await self._author(room, "join")

    async def decline(self, room: bytes) -> None:
        state = self._states.get(room)
        if state is None or self._fp not in state.invited:
            raise RoomError("no invitation to that room is waiting")
        await self._store.run(Database.decline_room, room, conversation(room))
        self._declined.add(room)
        self._states.pop(room, None)
        self._ops.pop(room, None)

    async def leave(self, room: bytes) -> None:
        await self._author(self._joined(room), "leave")

    async def remove(self, room: bytes, peer: str) -> None:
        await self._author(self._joined(room), "remove", subject=self._key_in(room, peer))

    async def make_admin(self, room: bytes, peer: str) -> None:
        await self._author(self._joined(room), "admin", subject=self._key_in(room, peer))

    def _key_in(self, room: bytes, peer: str) -> bytes:
        """A member's or invitee's key, from the room's own log (we may never have met)."""
        state = self._joined_state(room)
        if peer in state.members:
            return state.members[peer].key
        if peer in state.invited:
            return state.invited[peer]
        raise RoomError("no such member or invitee in that room")

    async def set_topic(self, room: bytes, topic: str) -> None:
        await self._author(self._joined(room), "topic", text=_text(topic))

    async def post(self, room: bytes, text: str) -> bytes:
        return (await self._author(self._joined(room), "post", text=_text(text))).id

    async def edit(self, room: bytes, post: bytes, text: str) -> None:
        """Replace the text of a post of ours (a signed `edit` in the room's log)."""
        self._own_post(room, post)
        await self._author(room, "edit", subject=post, text=_text(text))

    async def delete(self, room: bytes, post: bytes) -> None:
        """Withdraw a post of ours for every member (a signed `delete`)."""
        self._own_post(room, post)
        await self._author(room, "delete", subject=post)

    def _own_post(self, room: bytes, post: bytes) -> None:
        """The refusals `edit` and `delete` share with direct messages' (same errors)."""
        state = self._joined_state(room)
        found = state.by_id.get(post)
        if found is None:
            raise UnknownMessage(f"no message {post.hex()} in that room")
        if found.author != self._fp:
            raise NotYourMessage(f"message {post.hex()} was written by {found.author}")
        if post in state.deletes:
            raise UnknownMessage(f"message {post.hex()} was deleted")

    async def history(self, room: bytes, before: bytes | None, limit: int) -> list[StoredMessage]:
        """Posts and system lines: see `Reporter.history`."""
        return await self._reporter.history(self._states[room], before, limit)

    def rooms(self) -> list[RoomInfo]:
        return [self._reporter.info(state) for state in self._states.values() if state.creator]

    def members(self, room: bytes) -> list[str]:
        """Everyone but us who is a member of `room` (for files and the like)."""
        return [fp for fp in self._joined_state(room).members if fp != self._fp]

    def shares(self, room: bytes, peer: str) -> bool:
        """We and `peer` are both members of `room` (an offer's room claim holds)."""
        try:
            return peer in self.members(room)
        except RoomError:  # no such room here, or we are not a member
            return False

    def find(self, room: str) -> bytes:
        """A room by hex id, unique id prefix, or unique name."""
        matches = [r for r, s in self._states.items() if s.creator and s.name == room]
        if not matches:
            matches = [r for r in self._states if len(room) >= 4 and r.hex().startswith(room)]
        if len(matches) != 1:
            raise RoomError(f"no room named {room!r}" if not matches else f"{room!r} is ambiguous")
        return matches[0]

    def _joined(self, room: bytes) -> bytes:
        self._joined_state(room)
        return room

    def _joined_state(self, room: bytes) -> rs.RoomState:
        state = self._states.get(room)
        if state is None or not state.is_member(self._fp):
            raise RoomError("we are not a member of that room")
        return state

    async def _author(
        self, room: bytes, kind: str, *, subject: bytes = b"", text: str = "", nonce: bytes = b""
    ) -> rs.Op:
        if self._me.seed is None:
            raise RoomError("this profile's key predates rooms: it cannot sign (new profile)")
        async with self._lock:
            ops = self._ops.get(room, {})
            seq = 1 + max((s for a, s in ops if a == self._fp), default=0)
            state = self._states.get(room)
            lamport = 1 + (state.lamport if state else 0)
            op = rs.sign(
                self._me.seed,
                RoomOp(
                    room, self._me.public_key, self._me.verify_key, seq, lamport, now_ms(),
                    kind, subject, text, nonce,
                ),
            )  # fmt: skip
            before = self._states.get(room)
            trial = rs.replay(room, [*ops.values(), op])
            if op.id in trial.rejected:  # refused: never stored, so it can never count later
                raise RoomError(f"not allowed: {trial.rejected[op.id]}")
            await self._keep(op)
            after = self._states[room]
        await self._reporter.announce(before, after)
        audience = set(after.members) | set(after.invited)
        if before is not None:  # a removed member learns it was removed
            audience |= set(before.members) | set(before.invited)
        self._send_to(audience - {self._fp}, [op.event])
        return op

    # ---- receiving ------------------------------------------------------------------------

    def routes(self) -> Routes:
        return {RoomEvent: self._on_event, RoomSync: self._on_sync}

    async def _on_event(self, link: PeerLink, event: RoomEvent) -> None:
        try:
            op = rs.verify(event)
        except rs.InvalidRoomEvent as exc:
            self.rejected += 1
            log.warning("dropped a room event from %s: %s", link.fingerprint[:8], exc)
            return
        room = op.op.room
        if room in self._declined:
            return
        async with self._lock:
            before = self._states.get(room)
            if room in self._states:
                kept = await self._keep(op)
            else:
                kept = await self._hold(op, link.fingerprint)
            after = self._states.get(room)
        if not kept or after is None:
            return
        await self._reporter.announce(before, after)
        if op.id in after.rejected:
            return
        # Relay what counts to the members who may not have it yet (a flood that ends:
        # everyone keeps an event once).
        others = set(after.members) | set(after.invited)
        self._send_to(others - {self._fp, link.fingerprint, op.author}, [op.event])

    async def _keep(self, op: rs.Op) -> bool:
        """Store and replay (the caller holds the lock); False if we had it already."""
        room = op.op.room
        ops = self._ops.setdefault(room, {})
        if (op.author, op.op.seq) in ops or len(ops) >= MAX_EVENTS_PER_ROOM:
            return False
        if op.op.kind != "create" and op.author not in rs.known_authors([*ops.values(), op]):
            return False  # nobody ever invited it: it can never count (a later sync resends)
        payload, sig = op.event.payload, op.event.sig
        if not await self._store.run(
            Database.store_room_event, room, op.author, op.op.seq, op.id, payload, sig, now_ms()
        ):
            return False
        ops[(op.author, op.op.seq)] = op
        self._states[room] = rs.replay(room, ops.values())
        return True

    async def _hold(self, op: rs.Op, sender: str) -> bool:
        """An event of a room we are not in: kept in memory until the room's log shows we
        are invited; then the room and its events are stored.  Each peer may have us hold
        a few rooms (its oldest gives way), so nobody can crowd out others' invitations."""
        room = op.op.room
        if room not in self._pending:
            if len(self._states) >= MAX_ROOMS:
                return False
            theirs = [r for r, s in self._pending_from.items() if s == sender]
            if len(theirs) >= MAX_PENDING_PER_PEER:
                self._pending.pop(theirs[0], None)
                del self._pending_from[theirs[0]]
            self._pending_from[room] = sender
        pending = self._pending.setdefault(room, {})
        if (op.author, op.op.seq) in pending or len(pending) >= MAX_PENDING_EVENTS:
            return False
        pending[(op.author, op.op.seq)] = op
        state = rs.replay(room, pending.values())
        if self._fp not in state.invited and not state.is_member(self._fp):
            return True
        del self._pending[room]
        self._pending_from.pop(room, None)
        self._ops[room] = {}
        self._states[room] = rs.RoomState(room)
        for held in sorted(pending.values(), key=lambda o: o.order):
            await self._keep(held)
        return True

    async def _on_sync(self, link: PeerLink, sync: RoomSync) -> None:
        """Send the peer what it lacks of the room (if it may see it), and ask for what
        we lack if it seems to have more."""
        room, peer = sync.room, link.fingerprint
        if room in self._declined:
            return
        state = self._states.get(room)
        theirs = {fingerprint(c.author): c.seq for c in sync.have}
        if state is not None and (peer in state.members or peer in state.invited):
            missing = [op.event for op in state.accepted if op.op.seq > theirs.get(op.author, 0)]
            self._send_to({peer}, missing)
        elif state is not None and (removal := _last_removal(state, peer)) is not None:
            # Removed while away: it gets the log up to its removal, and learns of it.
            missing = [
                op.event
                for op in state.accepted
                if op.order <= removal.order and op.op.seq > theirs.get(op.author, 0)
            ]
            self._send_to({peer}, missing)
        mine = self._cursors(room)
        behind = state is None or any(seq > mine.get(fp, 0) for fp, seq in theirs.items())
        if behind and room not in self._synced.setdefault(peer, set()):
            self._sync_with(peer, room)

    def _cursors(self, room: bytes) -> dict[str, int]:
        """Per author, the highest seq we hold with nothing missing below it."""
        held: dict[str, set[int]] = {}
        for author, seq in self._ops.get(room) or self._pending.get(room, {}):
            held.setdefault(author, set()).add(seq)
        cursors = {}
        for author, seqs in held.items():
            n = 0
            while n + 1 in seqs:
                n += 1
            cursors[author] = n
        return cursors

    # ---- sessions ---------------------------------------------------------------------

    def session_started(self, link: PeerLink) -> None:
        """`link` is now the peer's session: it gets a writer of its own (replacing the
        previous session's), then anti-entropy: for each room the peer shares with us,
        we tell it what we hold."""
        peer = link.fingerprint
        self.session_closed(peer)
        writer = self._writers[peer] = LinkWriter(link, ROOM_QUEUE, _send_batches)
        assert self._nursery is not None
        self._nursery.start_soon(writer.run)
        self._synced[peer] = set()
        for room, state in list(self._states.items()):
            if peer in state.members or peer in state.invited:
                self._sync_with(peer, room)

    def session_closed(self, peer: str) -> None:
        self._synced.pop(peer, None)
        writer = self._writers.pop(peer, None)
        if writer is not None:
            writer.close()

    def _sync_with(self, peer: str, room: bytes) -> None:
        ops = self._ops.get(room) or self._pending.get(room, {})
        keys = {op.author: op.op.author for op in ops.values()}
        have = tuple(RoomCursor(keys[fp], seq) for fp, seq in self._cursors(room).items() if seq)
        if self._send_to({peer}, [RoomSync(room, have)]):  # asked: once a session
            self._synced.setdefault(peer, set()).add(room)

    def _send_to(self, peers: set[str], messages: Sequence[Message]) -> bool:
        """Best effort to whoever is connected, never waiting: the session's writer sends,
        so the reader (which relays and answers syncs) never blocks on a send, and two
        members flooding each other cannot deadlock.  A peer whose writer is full (or that
        is offline) gets what it missed from the next anti-entropy.  True if every peer's
        writer took it."""
        taken = True
        for peer in peers:
            writer = self._writers.get(peer)
            if writer is None or not messages:
                taken = taken and writer is not None
                continue
            taken = writer.put(messages) and taken
        return taken


async def _send_batches(link: PeerLink, batches: list[Sequence[Message]]) -> None:
    for batch in batches:
        for start in range(0, len(batch), ROOM_WRITE):
            await link.send_all(batch[start : start + ROOM_WRITE])


def _last_removal(state: rs.RoomState, peer: str) -> rs.Op | None:
    for op in reversed(state.accepted):
        if op.op.kind == "remove" and fingerprint(op.op.subject) == peer:
            return op
    return None


def _text(text: str) -> str:
    if not isinstance(text, str) or len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ValueError(f"room text is a string of at most {MAX_TEXT_BYTES} bytes")
    return text
