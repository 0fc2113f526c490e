"""A room's state, replayed from its log of signed operations (pure: no I/O, no clock).

Every member holds the events it has seen.  Each event is checked on its own when it
arrives (`verify`): its payload decodes as a RoomOp, the signing key belongs to the
author's identity, the signature holds.  Whether it *counts* depends on the room's state
at its place in the log, so the state is always `replay`ed from the whole set, in one
total order: (Lamport time, event id) (an author never reuses a Lamport time).  Members that
hold the same set of events therefore compute the same members, the same accepted
messages, in the same order, whatever order the events arrived in; anti-entropy makes
the sets equal.

Rules (each checked against the state just before the event):
- create: the first event; the room id is SHA-256("p2pim room\0" || author key ||
  nonce)[:16], so only its author can have made it.  The author is the first member and
  an admin.
- invite(subject): by a member; the subject becomes invited (at most MAX_MEMBERS
  members and invitees together).
- join: by an invited identity, which becomes a member.
- leave: by a member, who is then no longer one.
- remove(subject): by an admin; the subject (a member or invitee, not the creator) goes.
- admin(subject): by an admin; the subject (a member) becomes an admin.
- topic, post: by a member.
- edit(subject, text), delete(subject): by a member who is the author of the post whose
  event id is `subject`; that post counts (so it comes before in the order) and is not
  deleted.  An edit replaces the post's text (of several, the last in the order wins); a
  delete withdraws the post for good (its text is no longer shown, later edits do not
  count).  Nobody can edit or delete another member's post, admins included.
Anything else is kept (a later event may come before it in the order and change the
verdict) but does not count, and is neither shown nor relayed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from p2pim.identity import fingerprint
from p2pim.wire import codec, signing
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import KEY_SIZE, ROOM_ID_SIZE, RoomEvent, RoomOp

MAX_MEMBERS = 256
MAX_LAMPORT_JUMP = 2**32  # ahead of the room's time by more than this, an event never counts
SUBJECT_KINDS = ("invite", "remove", "admin")  # the subject is a member's key
TARGET_KINDS = ("edit", "delete")  # the subject is a post's event id
EVENT_ID_SIZE = 16


class InvalidRoomEvent(Exception):
    """An event that cannot be from its claimed author (or is malformed): never stored."""


@dataclass(frozen=True, slots=True)
class Op:
    """A verified event."""

    id: bytes  # 16 bytes of its payload's hash: its identity everywhere
    op: RoomOp
    author: str  # fingerprint
    event: RoomEvent

    @property
    def order(self) -> tuple[int, bytes]:
        return (self.op.lamport, self.id)  # what history sorts by too: (lamport, id)


def room_id(author: bytes, nonce: bytes) -> bytes:
    return hashlib.sha256(b"p2pim room\0" + author + nonce).digest()[:ROOM_ID_SIZE]


def event_id(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()[:16]


def verify(event: RoomEvent) -> Op:
    """Check an event on its own; InvalidRoomEvent if it cannot be genuine."""
    try:
        op = codec.decode(event.payload)
    except RemoteProtocolError as exc:
        raise InvalidRoomEvent(f"undecodable room op: {exc}") from None
    if not isinstance(op, RoomOp):
        raise InvalidRoomEvent("a room event carries a room op")
    if len(op.subject) != _subject_size(op.kind):
        raise InvalidRoomEvent(f"{op.kind} has the wrong subject")
    if op.kind == "delete" and op.text:
        raise InvalidRoomEvent("delete has the wrong text: it carries none")
    if len(op.nonce) != (ROOM_ID_SIZE if op.kind == "create" else 0):
        raise InvalidRoomEvent(f"{op.kind} has the wrong nonce")
    if not signing.binds(op.author_key, op.author):
        raise InvalidRoomEvent("the signing key is not the author's")
    if not signing.verify(op.author_key, event.payload, event.sig):
        raise InvalidRoomEvent("bad signature")
    return Op(event_id(event.payload), op, fingerprint(op.author), event)


def _subject_size(kind: str) -> int:
    return KEY_SIZE if kind in SUBJECT_KINDS else EVENT_ID_SIZE if kind in TARGET_KINDS else 0


def sign(seed: bytes, op: RoomOp) -> Op:
    payload = codec.encode(op)
    event = RoomEvent(payload, signing.sign(seed, payload))
    return Op(event_id(payload), op, fingerprint(op.author), event)


@dataclass(slots=True)
class Member:
    key: bytes  # X25519 identity key
    admin: bool = False


@dataclass(slots=True)
class RoomState:
    room: bytes
    name: str = ""
    topic: str = ""
    creator: str | None = None
    members: dict[str, Member] = field(default_factory=dict)  # by fingerprint
    invited: dict[str, bytes] = field(default_factory=dict)  # fingerprint -> key
    accepted: list[Op] = field(default_factory=list)  # the events that count, in order
    rejected: dict[bytes, str] = field(default_factory=dict)  # event id -> why
    lamport: int = 0  # the highest Lamport time among the events that count
    by_id: dict[bytes, Op] = field(default_factory=dict)  # the posts that count, by event id
    edits: dict[bytes, Op] = field(default_factory=dict)  # post id -> its last edit that counts
    deletes: dict[bytes, Op] = field(default_factory=dict)  # post id -> the delete

    def is_member(self, fp: str) -> bool:
        return fp in self.members

    def posts(self) -> list[Op]:
        return [op for op in self.accepted if op.op.kind == "post"]

    def text_of(self, post: Op) -> str:
        """What a post says now: '' once deleted, else its last edit's text or its own."""
        if post.id in self.deletes:
            return ""
        edit = self.edits.get(post.id)
        return edit.op.text if edit is not None else post.op.text


def replay(room: bytes, ops: Iterable[Op]) -> RoomState:
    state = RoomState(room)
    for op in sorted(ops, key=lambda o: o.order):
        why = _refusal(state, op)
        if why is None:
            state.accepted.append(op)
            state.lamport = op.op.lamport  # the order is by Lamport time: this is the max
        else:
            state.rejected[op.id] = why
    return state


def known_authors(ops: Iterable[Op]) -> set[str]:
    """Who may have events in the room at all: its creator and everyone ever invited.
    Events by anyone else can never count, so they are not even kept."""
    known = set()
    for op in ops:
        if op.op.kind == "create":
            known.add(op.author)
        elif op.op.kind == "invite":
            known.add(fingerprint(op.op.subject))
    return known


def _refusal(state: RoomState, op: Op) -> str | None:
    """Apply `op` to `state` if the rules allow it; else why not."""
    o, author = op.op, op.author
    if o.room != state.room:
        return "another room's event"
    if state.creator is not None and o.lamport > state.lamport + MAX_LAMPORT_JUMP:
        return "too far in the future"  # else one event could exhaust everyone's clock
    if o.kind == "create":
        if state.creator is not None:
            return "the room exists already"
        if room_id(o.author, o.nonce) != state.room:
            return "not this room's creation"
        state.creator, state.name, state.topic = author, o.text, ""
        state.members[author] = Member(o.author, admin=True)
        return None
    if state.creator is None:
        return "before the room's creation"
    member = state.members.get(author)
    subject = fingerprint(o.subject) if o.subject else ""
    if o.kind == "join":
        if author not in state.invited:
            return "not invited"
        state.members[author] = Member(state.invited.pop(author))
        return None
    if member is None:
        return "not a member"
    if o.kind == "invite":
        if subject in state.members or subject in state.invited:
            return "already a member or invited"
        if len(state.members) + len(state.invited) >= MAX_MEMBERS:
            return "the room is full"
        state.invited[subject] = o.subject
    elif o.kind == "leave":
        del state.members[author]
    elif o.kind in ("remove", "admin"):
        if not member.admin:
            return f"only an admin may {o.kind}"
        if o.kind == "admin":
            if subject not in state.members:
                return "not a member"
            state.members[subject].admin = True
        elif subject == state.creator:
            return "the creator cannot be removed"
        elif state.members.pop(subject, None) is None and state.invited.pop(subject, None) is None:
            return "not a member or invitee"
    elif o.kind == "topic":
        state.topic = o.text
    elif o.kind in TARGET_KINDS:
        return _change_post(state, op)
    elif o.kind == "post":
        state.by_id[op.id] = op
    return None


def _change_post(state: RoomState, op: Op) -> str | None:
    """An edit or delete by a member: only of its own post, one that counts and stands."""
    post = state.by_id.get(op.op.subject)
    if post is None:
        return "no such post"
    if post.author != op.author:
        return f"only its author may {op.op.kind} a post"
    if post.id in state.deletes:
        return "the post was deleted"
    if op.op.kind == "edit":
        state.edits[post.id] = op
    else:
        state.deletes[post.id] = op
    return None
