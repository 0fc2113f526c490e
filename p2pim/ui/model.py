"""What the UI shows, kept apart from both the widgets and the node (pure, no I/O).

Node events go in through `apply()`; widgets read the result.  Conversations are keyed
like the message store keys them: a peer's fingerprint, or `room:<id>` for a room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from p2pim import events as ev
from p2pim.api import (
    ROOM_PREFIX,
    Notice,
    RoomInfo,
    StoredMessage,
    TransferInfo,
    TransferState,
    describe,
)

Mark = Literal["", "queued", "sent", "delivered", "read", "failed"]
FAILED_MARK: Mark = "failed"  # a message that could not be sent
GROUP_PREFIX = "group:"  # the UI's key for a contact group (not a stored conversation)
HISTORY_PAGE = 200  # messages loaded at a time: on opening, and scrolling back


def room_key(room: str) -> str:
    return ROOM_PREFIX + room


@dataclass(slots=True)
class Contact:
    fingerprint: str
    nick: str
    status: str = "offline"  # online / away / busy / offline
    status_text: str = ""
    trust: str | None = None  # unverified / verified / key_changed; None: never met
    previous_fingerprint: str | None = None  # set when this key replaced a known one
    unread: int = 0
    typing: bool = False
    blocked: bool = False  # we blocked it: listed apart, nothing it sends arrives


@dataclass(slots=True)
class Room:
    room: str
    name: str
    topic: str = ""
    members: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    invited: tuple[str, ...] = ()
    joined: bool = False
    invited_us: bool = False
    inviter_nick: str = ""
    unread: int = 0


@dataclass(slots=True)
class Line:
    """One message as the conversation view shows it."""

    message_id: str
    author: str  # fingerprint
    nick: str
    sent_at: int  # ms since the epoch, the author's clock
    text: str
    outgoing: bool
    mark: Mark = ""
    edited: bool = False
    deleted: bool = False
    system: bool = False  # a room's system line ("ann joined"): `text` says it in words


@dataclass(slots=True)
class Transfer:
    peer: str
    offer: str
    outgoing: bool
    names: tuple[str, ...]
    total: int
    done: int = 0
    rate: float = 0.0
    eta: float | None = None
    state: TransferState = TransferState.OFFERED
    reason: str = ""
    saved_as: tuple[str, ...] = ()
    room: str = ""  # hex id of the room it was shared in; "": a private offer

    @property
    def finished(self) -> bool:
        return TransferState(self.state).final  # a state given as its word (a str) too

    @property
    def running(self) -> bool:
        """Accepted and not over: its files are moving, or wait for a session or a slot."""
        return self.state == TransferState.ACCEPTED

    @property
    def fraction(self) -> float:
        """How much of it is done: nothing taken (declined, say) is not "all done"."""
        if self.total == 0:
            return 1.0 if self.state == TransferState.COMPLETED else 0.0
        return min(1.0, self.done / self.total)

    @property
    def conversation(self) -> str:
        """Where its file card goes: the room it was shared in, or the peer's chat."""
        return room_key(self.room) if self.room else self.peer


@dataclass(slots=True)
class Model:
    me: str
    my_nick: str
    contacts: dict[str, Contact] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    conversations: dict[str, list[Line]] = field(default_factory=dict)
    transfers: dict[tuple[str, str], Transfer] = field(default_factory=dict)
    offers: dict[tuple[str, str], ev.OfferReceived] = field(default_factory=dict)
    current: str | None = None  # the open conversation's key
    complete: set[str] = field(default_factory=set)  # conversations loaded back to the first
    muted: set[str] = field(default_factory=set)  # conversation keys: no toast, bell, notice

    # ---- names ---------------------------------------------------------------------------

    def nick(self, fingerprint: str) -> str:
        if fingerprint == self.me:
            return self.my_nick
        contact = self.contacts.get(fingerprint)
        return contact.nick if contact else fingerprint[:8]

    def title(self, key: str) -> str:
        if key.startswith(ROOM_PREFIX):
            room = self.rooms.get(key.removeprefix(ROOM_PREFIX))
            return f"#{room.name}" if room else key
        return self.nick(key)

    def blocked(self, key: str) -> bool:
        """Sending there is refused until the user verifies the new key."""
        contact = self.contacts.get(key)
        return contact is not None and contact.trust == "key_changed"

    # ---- loading -------------------------------------------------------------------------

    def contact(self, fingerprint: str, nick: str = "") -> Contact:
        contact = self.contacts.get(fingerprint)
        if contact is None:
            contact = self.contacts[fingerprint] = Contact(fingerprint, nick or fingerprint[:8])
        elif nick:
            contact.nick = nick
        return contact

    def set_room(self, info: RoomInfo) -> None:
        room = self.rooms.setdefault(info.room, Room(info.room, info.name))
        room.name, room.topic, room.members = info.name, info.topic, info.members
        room.admins, room.invited, room.joined = info.admins, info.invited, info.joined
        room.invited_us = info.invited_us

    def set_transfer(self, info: TransferInfo, now_ms: int) -> None:
        """A transfer as the node lists it (at start, or after sending an offer)."""
        if info.state == TransferState.ARRIVING:  # the offer is still coming in
            return
        state = info.state
        names = tuple(f.path for f in info.files)
        saved = tuple(f.saved_as for f in info.files if f.saved_as)
        key = (info.peer, info.offer)
        self.transfers[key] = Transfer(
            info.peer,
            info.offer,
            info.outgoing,
            names,
            info.total,
            info.done,
            state=state,
            reason=info.reason,
            saved_as=saved,
            room=info.room,
        )
        if state == TransferState.OFFERED and not info.outgoing:
            self.offers[key] = ev.OfferReceived(
                info.peer,
                self.nick(info.peer),
                info.offer,
                info.files,
                info.total,
                max(0.0, (info.expires_at - now_ms) / 1000),
                info.room,
            )

    def cards(self, key: str) -> list[list[Transfer]]:
        """The file cards of a conversation, oldest first: one per offer, holding its
        transfers there (an offer shared in a room has one per member on the sender)."""
        grouped: dict[tuple[str, bool], list[Transfer]] = {}
        for transfer in self.transfers.values():
            if transfer.conversation == key:
                grouped.setdefault((transfer.offer, transfer.outgoing), []).append(transfer)
        return list(grouped.values())

    def load_history(
        self, key: str, messages: list[StoredMessage], *, complete: bool = False
    ) -> None:
        """A conversation's newest page; `complete`: there is nothing before it."""
        self.conversations[key] = [self.line(m) for m in messages]
        self.complete.discard(key)
        if complete:
            self.complete.add(key)

    def prepend_history(
        self, key: str, messages: list[StoredMessage], *, complete: bool = False
    ) -> list[Line]:
        """An older page, put before what is loaded; the lines that were new to it."""
        lines = self.conversations.setdefault(key, [])
        known = {line.message_id for line in lines}
        older = [line for line in map(self.line, messages) if line.message_id not in known]
        lines[:0] = older
        if complete:
            self.complete.add(key)
        return older

    def line(self, m: StoredMessage) -> Line:
        if isinstance(m, Notice):  # in words with the nicks we know now
            subject = self.nick(m.subject) if m.subject else ""
            text = describe(m.kind, self.nick(m.author), subject, m.text)
            return Line(
                m.id.hex(), m.author, self.nick(m.author), m.sent_at, text, m.outgoing,
                system=True,
            )  # fmt: skip
        mark: Mark = ""
        if m.outgoing:
            mark = "read" if m.read_at else "delivered" if m.delivered_at else "sent"
            if m.peer.startswith(ROOM_PREFIX):
                mark = ""  # rooms have no per-member receipts
        return Line(
            m.id.hex(),
            m.author,
            self.nick(m.author),
            m.sent_at,
            m.body,
            m.outgoing,
            mark,
            m.edited_at is not None,
            m.deleted,
        )

    # ---- events --------------------------------------------------------------------------

    def apply(self, event: ev.NodeEvent) -> set[str]:
        """Fold one node event in; returns what changed: "contacts", "rooms", "transfers",
        "offers", or a conversation key."""
        match event:
            case ev.PeerDiscovered(fingerprint_hint=hint, nick=nick):
                known = [c for c in self.contacts if c.startswith(hint)]
                if not known:
                    return set()
                self.contact(known[0], nick)
                return {"contacts"}
            case ev.PeerConnected(fingerprint=fp, nick=nick, status=status, trust=trust):
                contact = self.contact(fp, nick)
                contact.status, contact.status_text = status, event.status_text
                contact.trust = trust
                return {"contacts"}
            case ev.PeerDisconnected(fingerprint=fp):
                contact = self.contact(fp)
                contact.status, contact.typing = "offline", False
                return {"contacts"}
            case ev.PeerStatusChanged(fingerprint=fp, status=status, status_text=text):
                contact = self.contact(fp)
                contact.status, contact.status_text = status, text
                return {"contacts"}
            case ev.PeerRenamed(fingerprint=fp, nick=nick):
                self.contact(fp, nick)
                return {"contacts", fp}
            case ev.SelfChanged(nick=nick):
                self.my_nick = nick
                return {"self"}
            case ev.PeerKeyChanged(fingerprint=fp, nick=nick, previous_fingerprint=previous):
                contact = self.contact(fp, nick)
                contact.trust, contact.previous_fingerprint = "key_changed", previous
                return {"contacts", fp}
            case ev.PeerTrustChanged(fingerprint=fp, trust=trust):
                self.contact(fp).trust = trust
                return {"contacts", fp}
            case ev.BlockChanged(fingerprint=fp, blocked=blocked):
                self.contact(fp).blocked = blocked
                return {"contacts"}
            case ev.MuteChanged(conversation=key, muted=muted):
                if muted:
                    self.muted.add(key)
                else:
                    self.muted.discard(key)
                return {"contacts", "rooms"}
            case ev.MessageReceived(sender=fp, nick=nick):
                self.contact(fp, nick)
                line = Line(event.message_id, fp, nick, event.sent_at, event.text, False)
                return self._add(fp, line)
            case ev.MessageEdited(peer=peer, message_id=mid, text=text):
                return self._update(peer, mid, text=text, edited=True)
            case ev.MessageDeleted(peer=peer, message_id=mid):
                return self._update(peer, mid, text="", deleted=True)
            case ev.MessageDelivered(peer=peer, message_id=mid):
                return self._mark(peer, mid, "delivered")
            case ev.MessageRead(peer=peer, message_id=mid):
                return self._mark(peer, mid, "read")
            case ev.TypingChanged(peer=peer, typing=typing):
                self.contact(peer).typing = typing
                return {"contacts", peer}
            case ev.RoomInvited(room=room, name=name, inviter_nick=inviter_nick):
                entry = self.rooms.setdefault(room, Room(room, name))
                entry.invited_us, entry.inviter_nick = True, inviter_nick
                return {"rooms"}
            case ev.RoomChanged(room=room):
                entry = self.rooms.setdefault(room, Room(room, event.name))
                entry.name, entry.topic = event.name, event.topic
                entry.members, entry.invited = event.members, event.invited
                entry.admins, entry.joined = event.admins, event.joined
                if event.joined or self.me not in event.invited:
                    entry.invited_us = False
                return {"rooms", room_key(room)}
            case ev.RoomMessage(room=room, author=author, nick=nick):
                outgoing = author == self.me
                line = Line(event.message_id, author, nick, event.sent_at, event.text, outgoing)
                return self._add(room_key(room), line)
            case ev.RoomMessageEdited(room=room, message_id=mid, text=text):
                return self._update(room_key(room), mid, text=text, edited=True)
            case ev.RoomMessageDeleted(room=room, message_id=mid):
                return self._update(room_key(room), mid, text="", deleted=True)
            case ev.RoomNotice(room=room, author=author):
                subject = self.nick(event.subject) if event.subject else ""
                text = describe(event.kind, self.nick(author), subject, event.text)
                line = Line(
                    event.notice_id, author, self.nick(author), event.sent_at, text,
                    author == self.me, system=True,
                )  # fmt: skip
                return self._add(room_key(room), line)
            case ev.OfferReceived(peer=peer, offer=offer):
                self.offers[(peer, offer)] = event
                names = tuple(f.path for f in event.files)
                self.transfers[(peer, offer)] = Transfer(
                    peer, offer, False, names, event.total_size, room=event.room
                )
                return {"offers", "transfers"}
            case ev.TransferProgress(peer=peer, offer=offer):
                transfer = self.transfers.get((peer, offer))
                if transfer is None:
                    return set()
                transfer.done, transfer.total = event.done, event.total
                transfer.rate, transfer.eta = event.rate, event.eta
                transfer.state = TransferState.ACCEPTED
                return {"transfers"}
            case ev.OfferAnswered(peer=peer, offer=offer, accepted=accepted):
                transfer = self.transfers.get((peer, offer))
                if transfer is not None and transfer.state == TransferState.OFFERED:
                    transfer.state = TransferState.ACCEPTED if accepted else TransferState.DECLINED
                return {"transfers"}
            case ev.TransferFinished(peer=peer, offer=offer, state=state, reason=reason):
                self.offers.pop((peer, offer), None)
                transfer = self.transfers.get((peer, offer))
                if transfer is None:  # made elsewhere (a script, the CLI): sized from its files
                    names = tuple(f.path for f in event.files)
                    taken = [f for f in event.files if f.outcome not in (None, "not-accepted")]
                    total = sum(f.size for f in taken)
                    transfer = Transfer(peer, offer, event.outgoing, names, total, room=event.room)
                    transfer.done = sum(f.done for f in taken)
                    self.transfers[(peer, offer)] = transfer
                transfer.state, transfer.reason = state, reason
                if state == TransferState.COMPLETED:
                    transfer.done = transfer.total
                transfer.saved_as = tuple(f.saved_as for f in event.files if f.saved_as)
                return {"transfers", "offers"}
        return set()

    def _add(self, key: str, line: Line) -> set[str]:
        lines = self.conversations.setdefault(key, [])
        if any(existing.message_id == line.message_id for existing in lines[-200:]):
            return set()
        lines.append(line)
        if key != self.current and not line.outgoing and not line.system:
            if key.startswith(ROOM_PREFIX):
                room = self.rooms.get(key.removeprefix(ROOM_PREFIX))
                if room is not None:
                    room.unread += 1
            else:
                self.contact(key).unread += 1
        return {key, "contacts", "rooms"}

    def _update(self, key: str, message_id: str, **changes: object) -> set[str]:
        for line in self.conversations.get(key, []):
            if line.message_id == message_id:
                for name, value in changes.items():
                    setattr(line, name, value)
                return {key}
        return set()

    def _mark(self, key: str, message_id: str, mark: Mark) -> set[str]:
        for line in self.conversations.get(key, []):
            if line.message_id == message_id:
                if not (line.mark == "read" and mark == "delivered"):
                    line.mark = mark
                return {key}
        return set()

    def add_own(self, key: str, message_id: str, text: str, sent_at: int, mark: Mark) -> None:
        line = Line(message_id, self.me, self.my_nick, sent_at, text, True, mark)
        self._add(key, line)

    def change_own(self, key: str, message_id: str, text: str | None) -> None:
        """Our edit (`text`) or deletion (None) of a line, once the node has taken it."""
        if text is None:
            self._update(key, message_id, text="", deleted=True)
        else:
            self._update(key, message_id, text=text, edited=True)

    def open(self, key: str) -> None:
        """The user opened this conversation: it has nothing unread any more."""
        self.current = key
        if key.startswith(ROOM_PREFIX):
            room = self.rooms.get(key.removeprefix(ROOM_PREFIX))
            if room is not None:
                room.unread = 0
        elif key in self.contacts:
            self.contacts[key].unread = 0
