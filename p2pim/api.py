"""The public vocabulary: the records and errors a user of `Node` sees.

Every face (the TUI, the RPC, the daemon, the one-shot commands) and every script gets
these from here (or from the package, which re-exports them); the modules that build them
import them from here too, so each name has one home.  Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

# A room's conversation key; events name conversations with it.
from p2pim.events import ROOM_PREFIX as ROOM_PREFIX
from p2pim.events import TransferFile
from p2pim.transfer.state import TransferState as TransferState

# What the wire format allows, as people meet it: presence statuses and size limits.
from p2pim.wire.messages import MAX_NICK_BYTES as MAX_NICK_BYTES
from p2pim.wire.messages import MAX_TEXT_BYTES as MAX_TEXT_BYTES
from p2pim.wire.messages import STATUSES as STATUSES

# ---- peers --------------------------------------------------------------------------


class PeerBlockedError(Exception):
    """We blocked that peer: nothing is sent to it until it is unblocked."""


class PeerUnknown(Exception):
    """No key is known for that peer (it never had a session with us)."""


class PairingError(Exception):
    """Pairing failed: wrong code, no pairing in progress on the other side, or timeout."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    fingerprint: str
    nick: str
    connected: bool
    addresses: tuple[str, ...]
    status: str  # online / away / busy, or offline when not connected
    status_text: str
    trust: str | None  # None: never connected, so nothing is pinned yet
    blocked: bool = False  # we blocked it (`Node.block`): faces list it apart, if at all


@dataclass(frozen=True, slots=True)
class Reachability:
    """What the node knows about reaching one peer, for one-way visibility diagnosis."""

    fingerprint: str | None
    connected: bool
    they_reached_us: bool
    last_error: str | None
    last_error_address: str | None
    addresses: tuple[str, ...]
    diagnosis: str


class PeerKeyChangedError(Exception):
    """Sending to a peer whose key changed is refused until the user verifies it."""


class PeerRejectedError(Exception):
    """A dialled peer was not who it claimed to be, or spoke nonsense."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        # "key mismatch", "handshake failed", "self", "local limit" or "local error"
        self.reason = reason


# ---- messages -----------------------------------------------------------------------


class StorageError(Exception):
    """The database failed (disk full, I/O error, corruption, closed).  Wraps sqlite3 errors
    so that callers never need to import sqlite3."""


class UnknownMessage(StorageError):
    """No such message in that conversation, or it was deleted."""


class NotYourMessage(StorageError):
    """Only a message's author may edit or delete it."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message of the history: a peer's conversation, or a room's (`ROOM_PREFIX`)."""

    id: bytes
    peer: str  # the conversation: the other party's fingerprint
    author: str  # who wrote it: us or the peer
    outgoing: bool  # we wrote it
    sent_at: int  # the author's clock, ms
    lamport: int
    stored_at: int  # our clock, ms
    body: str  # '' once deleted
    edited_at: int | None  # the author's clock at the last edit
    deleted: bool
    delivered_at: int | None  # outgoing: when the peer acked storing it
    read_at: int | None  # outgoing: when the peer read it; incoming: when we did


@dataclass(frozen=True, slots=True)
class Notice(StoredMessage):
    """One system line.  `author` did it; `subject` is whom it was done to (invited,
    removed, made an admin), else ''; `text` is the room's name (created) or the new topic
    (topic).  `stored_at` is the author's clock, as `sent_at`: the line is read from the
    log, not stored on its own."""

    kind: str = ""
    subject: str = ""
    text: str = ""


def describe(kind: str, actor: str, subject: str, text: str) -> str:
    """The line in words, given the nicks of who did it and to whom."""
    match kind:
        case "created":
            return f"{actor} created the room #{text}"
        case "invited":
            return f"{actor} invited {subject}"
        case "joined":
            return f"{actor} joined"
        case "left":
            return f"{actor} left"
        case "removed":
            return f"{actor} removed {subject}"
        case "admin":
            return f"{actor} made {subject} an admin"
        case "topic" if text:
            return f"{actor} changed the topic to “{text}”"
        case "topic":
            return f"{actor} cleared the topic"
    return f"{actor}: {kind}"


# ---- transfers ----------------------------------------------------------------------


class TransferError(Exception):
    """A transfer request cannot be done (no such offer, no space, bad path...)."""


@dataclass(frozen=True, slots=True)
class TransferInfo:
    """One transfer as `Node.transfers()` reports it."""

    offer: str
    peer: str
    outgoing: bool
    state: TransferState
    reason: str
    total: int  # bytes of the accepted (or, before an answer, offered) files
    done: int
    files: tuple[TransferFile, ...]
    expires_at: int  # ms since the epoch: an unanswered offer expires then
    room: str = ""  # hex id of the room the offer was shared in; "": a private offer


# ---- rooms --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomInfo:
    room: str
    name: str
    topic: str
    creator: str | None
    members: tuple[str, ...]
    admins: tuple[str, ...]
    invited: tuple[str, ...]
    joined: bool  # we are a member
    invited_us: bool  # we are invited and have not answered


class RoomError(Exception):
    """No such room, or we may not do that in it (not a member, not an admin...)."""
