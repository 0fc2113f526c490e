"""What a node tells its users (TUI, daemon, CLI, bots): frozen dataclasses, one per event."""

from __future__ import annotations

from dataclasses import dataclass

from p2pim.transfer.state import TransferState
from p2pim.wire.messages import Outcome

ROOM_PREFIX = "room:"  # a room's conversation key: `room:<16-byte id in hex>`


@dataclass(frozen=True, slots=True)
class PeerDiscovered:
    """mDNS advertised a peer.  Unverified: only `PeerConnected` proves the key."""

    fingerprint_hint: str
    nick: str
    addresses: tuple[str, ...]
    port: int
    status: str


@dataclass(frozen=True, slots=True)
class PeerConnected:
    """A peer came online: an authenticated session exists."""

    fingerprint: str
    nick: str
    address: str
    status: str
    status_text: str
    trust: str  # "unverified", "verified" or "key_changed"


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    """The peer went offline: it said goodbye (`reason` is its bye reason), fell silent
    for the presence timeout, or the connection failed."""

    fingerprint: str
    reason: str


@dataclass(frozen=True, slots=True)
class PeerStatusChanged:
    fingerprint: str
    status: str
    status_text: str


@dataclass(frozen=True, slots=True)
class PeerRenamed:
    """A connected peer changed its nick (a name it claims, never its identity)."""

    fingerprint: str
    nick: str
    previous_nick: str


@dataclass(frozen=True, slots=True)
class SelfChanged:
    """Our own nick, status or status text changed, whoever changed it: a face, a script
    over RPC, or auto-away (`automatic`)."""

    nick: str
    status: str
    status_text: str
    automatic: bool = False


@dataclass(frozen=True, slots=True)
class PeerKeyChanged:
    """LOUD: a peer known by this nick now presents a different key.  Sending to it is
    refused until the user verifies it (safety number or pairing)."""

    fingerprint: str
    nick: str
    previous_fingerprint: str


@dataclass(frozen=True, slots=True)
class PeerTrustChanged:
    fingerprint: str
    trust: str


@dataclass(frozen=True, slots=True)
class PeerRejected:
    """A connection was refused: wrong key for the advertised fingerprint, bad protocol..."""

    address: str
    reason: str
    expected_fingerprint: str | None = None
    actual_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class DialFailed:
    """We could not reach a peer at an address; `reason` is refused, timed out,
    unreachable (...), key mismatch, handshake failed, self, local limit or local error.  See
    `Node.reachability()`."""

    fingerprint: str | None
    address: str
    reason: str


@dataclass(frozen=True, slots=True)
class PairingFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    sender: str  # fingerprint: the authenticated identity, not the nick
    nick: str
    message_id: str  # hex
    sent_at: int  # sender's clock, ms since the epoch
    text: str


@dataclass(frozen=True, slots=True)
class MessageEdited:
    peer: str  # the conversation (the author's fingerprint)
    message_id: str
    text: str


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    peer: str
    message_id: str


@dataclass(frozen=True, slots=True)
class MessageDelivered:
    """The peer's node has durably stored our message."""

    peer: str
    message_id: str


@dataclass(frozen=True, slots=True)
class MessageRead:
    """The peer's user has seen our message."""

    peer: str
    message_id: str


@dataclass(frozen=True, slots=True)
class TypingChanged:
    """The peer started or stopped typing to us (a stale indicator expires by itself)."""

    peer: str
    typing: bool


@dataclass(frozen=True, slots=True)
class TransferFile:
    """One file of an offer, as events and `Node.transfers()` report it."""

    index: int
    path: str  # relative, "/"-separated; on the receiver already sanitised
    size: int
    done: int = 0  # receiver: bytes safely received; sender: the size once confirmed
    outcome: Outcome | None = None  # set once it is over
    saved_as: str | None = None  # receiver: the absolute path it was saved under


@dataclass(frozen=True, slots=True)
class OfferReceived:
    """A peer offers files.  Accept (all or some, into a directory of your choice) or
    decline before `expires_in` seconds pass; nothing is written until then."""

    peer: str
    nick: str
    offer: str  # hex id
    files: tuple[TransferFile, ...]
    total_size: int
    expires_in: float
    room: str = ""  # hex id of the room it is shared in (both are members); "": private


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    """Sender side: the peer accepted these files of our offer (none: it declined)."""

    peer: str
    offer: str
    accepted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """At most a few per second per transfer, and at every file's end."""

    peer: str
    offer: str
    outgoing: bool
    done: int  # bytes of the accepted files, over the whole offer
    total: int
    rate: float  # bytes per second, recent average
    eta: float | None  # seconds, None while the rate is unknown
    file_index: int
    file_done: int
    file_size: int


@dataclass(frozen=True, slots=True)
class TransferFinished:
    """The transfer is over, one way or another; `files` tells each file's outcome."""

    peer: str
    offer: str
    outgoing: bool
    state: TransferState  # one of the final states
    reason: str
    files: tuple[TransferFile, ...]
    room: str = ""  # hex id of the room the offer was shared in; "": a private offer


@dataclass(frozen=True, slots=True)
class RoomInvited:
    """A member invited us to a room: `join_room` accepts, `decline_room` declines."""

    room: str  # hex id
    name: str
    inviter: str
    inviter_nick: str


@dataclass(frozen=True, slots=True)
class RoomChanged:
    """A room's name, topic, members, invitees or admins changed (also: we joined, left or
    were removed: see `joined`)."""

    room: str
    name: str
    topic: str
    members: tuple[str, ...]
    invited: tuple[str, ...]
    admins: tuple[str, ...]
    joined: bool  # we are a member


@dataclass(frozen=True, slots=True)
class RoomMessage:
    """A message in a room we are a member of (ours included), once it counts."""

    room: str
    message_id: str
    author: str
    nick: str
    sent_at: int
    text: str


@dataclass(frozen=True, slots=True)
class RoomMessageEdited:
    """The author of a room post replaced its text (a signed `edit` in the room's log)."""

    room: str
    message_id: str
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class RoomMessageDeleted:
    """The author of a room post withdrew it (a signed `delete` in the room's log)."""

    room: str
    message_id: str
    author: str


@dataclass(frozen=True, slots=True)
class RoomNotice:
    """A system line in a room we are (or were, until this) a member of: someone created
    it, invited, joined, left, removed, made an admin, changed the topic.  `line` says it
    in words; `kind` is created / invited / joined / left / removed / admin / topic;
    `subject` is whom it was done to (invited, removed, admin), else ''; `text` the room's
    name (created) or the new topic (topic).  `Node.room_history(..., system=True)` lists
    the same lines, read back from the room's log."""

    room: str
    notice_id: str  # hex: the id of the log operation it stands for
    kind: str
    author: str
    nick: str
    subject: str
    subject_nick: str
    sent_at: int
    text: str
    line: str


@dataclass(frozen=True, slots=True)
class BlockChanged:
    """We blocked or unblocked a peer (`Node.block`): its texts, offers and invitations
    are dropped while `blocked`."""

    fingerprint: str
    blocked: bool


@dataclass(frozen=True, slots=True)
class MuteChanged:
    """We muted or unmuted a conversation (a peer's fingerprint or `room:<hex>`): it still
    receives and stores everything, but raises no notification while `muted`."""

    conversation: str
    muted: bool


@dataclass(frozen=True, slots=True)
class NetworkChanged:
    """The IPv4 addresses mDNS runs on changed.  None: no network (only loopback, or the
    chosen interfaces have no address); the node runs on, history, search and the outbox
    work, and peers are found again as soon as an interface comes up.  Also sent at start
    when there is no network."""

    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DiskFullChanged:
    """The disk holding the profile became full (`full`), or took a write again.  While
    full, incoming messages are neither stored nor acknowledged: their senders keep them,
    and they arrive, once each, when space is freed."""

    full: bool


NodeEvent = (
    PeerDiscovered
    | PeerConnected
    | PeerDisconnected
    | PeerStatusChanged
    | PeerRenamed
    | SelfChanged
    | PeerKeyChanged
    | PeerTrustChanged
    | PeerRejected
    | DialFailed
    | PairingFailed
    | MessageReceived
    | MessageEdited
    | MessageDeleted
    | MessageDelivered
    | MessageRead
    | TypingChanged
    | OfferReceived
    | OfferAnswered
    | TransferProgress
    | TransferFinished
    | RoomInvited
    | RoomChanged
    | RoomMessage
    | RoomMessageEdited
    | RoomMessageDeleted
    | RoomNotice
    | BlockChanged
    | MuteChanged
    | NetworkChanged
    | DiskFullChanged
)


def conversation_of(event: NodeEvent) -> str | None:
    """The conversation an event notifies about (a peer's fingerprint or `room:<hex>`),
    as muting names it; None for events that raise no notification."""
    if isinstance(event, MessageReceived):
        return event.sender
    if isinstance(event, OfferReceived):
        room = getattr(event, "room", "")  # an offer shared in a room belongs to the room
        return f"{ROOM_PREFIX}{room}" if room else event.peer
    if isinstance(event, RoomMessage):
        return f"{ROOM_PREFIX}{event.room}"
    return None
