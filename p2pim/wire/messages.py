"""The protocol's message vocabulary: frozen, slotted dataclasses shared by both directions.

Each class names its wire type in `TYPE`; each field's bounds live in its metadata
(`max`: longest str in UTF-8 bytes, bytes in bytes, or tuple in items; `size`: exact bytes
length; `min`/`max` on ints; `choices` for str).  A `tuple[Record, ...]` field carries a
list of small records (maps).  `p2pim.wire.codec` derives the strict schema from these
classes, so adding a message is adding a class here and listing it in `MESSAGE_TYPES`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

PROTOCOL_VERSION = 1
MAX_NICK_BYTES = 64
MAX_TEXT_BYTES = 32 * 1024  # longer content travels as a file
MESSAGE_ID_SIZE = 16
MAX_TIMESTAMP_MS = 2**63 - 1
MAX_WIRE_LAMPORT = 2**62  # receivers cap how far one value moves their clock
MAX_STATUS_TEXT_BYTES = 128
MAX_HOST_BYTES = 64
MAX_EXCHANGED_PEERS = 32
KEY_SIZE = 32
MAX_ACKED_IDS = 1024
MAX_OFFER_FILES = 10_000
MAX_OFFER_PATH_BYTES = 1024
MAX_FILES_PER_PART = 56  # offered files of the longest paths that fit one message
MAX_FILE_SIZE = 2**50  # 1 PiB
MAX_OFFER_TTL_MS = 7 * 24 * 3600 * 1000
FILE_HASH_SIZE = 32
ROOM_ID_SIZE = 16
SIGNATURE_SIZE = 64
MAX_ROOM_AUTHORS = 256  # everyone who ever wrote in a room: members are fewer
ROOM_KINDS = (
    "create", "invite", "join", "leave", "remove", "admin", "topic", "post", "edit", "delete",
)  # fmt: skip
MAX_CHUNK_BYTES = 65536 - 128  # a Noise payload minus the tag and the map around the bytes

# Presence a user chooses; "offline" is never sent, it is what silence means.
STATUSES = ("online", "away", "busy")


@dataclass(frozen=True, slots=True)
class Hello:
    """Carried in handshake messages 2 and 3 (encrypted): who we are beyond our key."""

    TYPE: ClassVar[str] = "hello"
    version: int = field(metadata={"min": 1, "max": 2**16})
    nick: str = field(metadata={"max": MAX_NICK_BYTES})
    status: str = field(default="online", metadata={"max": 16, "choices": STATUSES})
    status_text: str = field(default="", metadata={"max": MAX_STATUS_TEXT_BYTES})
    # Where the sender accepts connections (0: nowhere), so a peer that was dialled by it
    # can dial back later and tell others where to find it.
    listen_port: int = field(default=0, metadata={"max": 65535})
    # After this much silence the sender drops us, so we must send heartbeats well within it.
    silence_timeout_ms: int = field(default=5000, metadata={"min": 100, "max": 3_600_000})
    # Empty for a session.  An offer id makes this a transfer connection: the dialler (the
    # receiver) pulls that offer's files over it, and nothing else travels on it.
    transfer: bytes = field(default=b"", metadata={"max": MESSAGE_ID_SIZE})


@dataclass(frozen=True, slots=True)
class Text:
    """A direct text message.  `id` is globally unique, so receivers can deduplicate;
    `lamport` orders a conversation the same way on both sides."""

    TYPE: ClassVar[str] = "text"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    sent_at: int = field(metadata={"min": 0, "max": MAX_TIMESTAMP_MS})  # sender clock, ms
    body: str = field(metadata={"max": MAX_TEXT_BYTES})
    lamport: int = field(default=0, metadata={"max": MAX_WIRE_LAMPORT})


@dataclass(frozen=True, slots=True)
class Edit:
    """The author replaces the body of its message `target`; `id` names this operation."""

    TYPE: ClassVar[str] = "edit"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    target: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    sent_at: int = field(metadata={"min": 0, "max": MAX_TIMESTAMP_MS})
    body: str = field(metadata={"max": MAX_TEXT_BYTES})


@dataclass(frozen=True, slots=True)
class Delete:
    """The author withdraws its message `target`; `id` names this operation."""

    TYPE: ClassVar[str] = "delete"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    target: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    sent_at: int = field(metadata={"min": 0, "max": MAX_TIMESTAMP_MS})


@dataclass(frozen=True, slots=True)
class ReadReceipt:
    """The sender's user has seen these messages of ours; `id` names this receipt."""

    TYPE: ClassVar[str] = "read"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    ids: tuple[bytes, ...] = field(metadata={"max": MAX_ACKED_IDS, "item_size": MESSAGE_ID_SIZE})


@dataclass(frozen=True, slots=True)
class Ack:
    """The sender has durably stored (or already had) these messages or operations."""

    TYPE: ClassVar[str] = "ack"
    ids: tuple[bytes, ...] = field(metadata={"max": MAX_ACKED_IDS, "item_size": MESSAGE_ID_SIZE})


@dataclass(frozen=True, slots=True)
class Typing:
    """The sender's user is (or stopped) typing to us; receivers expire it on their own."""

    TYPE: ClassVar[str] = "typing"
    active: bool


@dataclass(frozen=True, slots=True)
class Bye:
    """Orderly end of a session; `reason` tells a quitting peer from a duplicate link."""

    TYPE: ClassVar[str] = "bye"
    reason: str = field(metadata={"max": 64})


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent only when a link has been idle for a while, so silence means the peer is gone."""

    TYPE: ClassVar[str] = "heartbeat"


@dataclass(frozen=True, slots=True)
class Presence:
    """The sender's status, status text or nick changed.  `nick` is the sender's nick
    now ("" says nothing about it: it stays what it was)."""

    TYPE: ClassVar[str] = "presence"
    status: str = field(metadata={"max": 16, "choices": STATUSES})
    status_text: str = field(metadata={"max": MAX_STATUS_TEXT_BYTES})
    nick: str = field(default="", metadata={"max": MAX_NICK_BYTES})


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A record inside `PeerList`: an identity and where the sender reaches it."""

    public_key: bytes = field(metadata={"size": KEY_SIZE})
    host: str = field(metadata={"max": MAX_HOST_BYTES})
    port: int = field(metadata={"min": 1, "max": 65535})


@dataclass(frozen=True, slots=True)
class PeerList:
    """Peer exchange: peers the sender is connected to.  Hints only: each is dialled
    expecting that key, and the handshake decides."""

    TYPE: ClassVar[str] = "peers"
    peers: tuple[PeerAddress, ...] = field(metadata={"max": MAX_EXCHANGED_PEERS})


# ---- file transfer ---------------------------------------------------------------------
# Offers, replies, results and cancels travel on the session, durably (outbox + ack, like
# texts); file data travels on a transfer connection of its own (see docs/protocol.md).


@dataclass(frozen=True, slots=True)
class OfferedFile:
    """A record inside `FileOffer`: one file, by its path relative to the offer."""

    path: str = field(metadata={"max": MAX_OFFER_PATH_BYTES})  # "/"-separated, sanitised on arrival
    size: int = field(metadata={"max": MAX_FILE_SIZE})
    hash: bytes = field(metadata={"size": FILE_HASH_SIZE})  # BLAKE3 of the whole file


@dataclass(frozen=True, slots=True)
class FileOffer:
    """One part of an offer (an offer's file list may not fit one message): files
    `first` .. `first + len(files) - 1` of `total_files`.  `id` names this part."""

    TYPE: ClassVar[str] = "offer"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    offer: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    sent_at: int = field(metadata={"min": 0, "max": MAX_TIMESTAMP_MS})
    ttl_ms: int = field(metadata={"min": 1000, "max": MAX_OFFER_TTL_MS})  # from receipt
    total_files: int = field(metadata={"min": 1, "max": MAX_OFFER_FILES})
    total_size: int = field(metadata={"max": MAX_OFFER_FILES * MAX_FILE_SIZE})
    first: int = field(metadata={"max": MAX_OFFER_FILES - 1})
    files: tuple[OfferedFile, ...] = field(metadata={"max": MAX_FILES_PER_PART})
    # The room the file is shared in (its 16-byte id), or empty for a private offer.  A
    # claim only: the receiver honours it if both it and the sender are members there.
    room: bytes = field(default=b"", metadata={"max": ROOM_ID_SIZE})


@dataclass(frozen=True, slots=True)
class OfferReply:
    """The receiver's answer: bit i of `accepted` (byte i // 8, bit i % 8) set means file
    i is wanted.  No bit set: declined."""

    TYPE: ClassVar[str] = "offer-reply"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    offer: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    accepted: bytes = field(metadata={"max": (MAX_OFFER_FILES + 7) // 8})


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The receiver is done with an offer: one outcome code per file (OUTCOMES)."""

    TYPE: ClassVar[str] = "transfer-result"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    offer: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    outcomes: bytes = field(metadata={"max": MAX_OFFER_FILES})


@dataclass(frozen=True, slots=True)
class TransferCancel:
    """Either side gives up on an offer (cancelled, expired, failed); final."""

    TYPE: ClassVar[str] = "transfer-cancel"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    offer: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    reason: str = field(metadata={"max": 128})


@dataclass(frozen=True, slots=True)
class Pull:
    """Transfer connection, receiver to sender: send file `index` from byte `offset`."""

    TYPE: ClassVar[str] = "pull"
    index: int = field(metadata={"max": MAX_OFFER_FILES - 1})
    offset: int = field(metadata={"max": MAX_FILE_SIZE})


@dataclass(frozen=True, slots=True)
class Chunk:
    """Transfer connection, sender to receiver: the next bytes of the file last pulled."""

    TYPE: ClassVar[str] = "chunk"
    data: bytes = field(metadata={"max": MAX_CHUNK_BYTES})


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Transfer connection, sender to receiver: the pulled file cannot be sent (it changed
    or vanished since the offer); the receiver drops what it has of it."""

    TYPE: ClassVar[str] = "unavailable"
    index: int = field(metadata={"max": MAX_OFFER_FILES - 1})
    reason: str = field(metadata={"max": 128})


# ---- rooms -----------------------------------------------------------------------------
# A room is a log of signed operations.  Each travels as a RoomEvent, alone, and may be
# relayed by any member: the signature and the key binding make it verifiable by all.


@dataclass(frozen=True, slots=True)
class RoomOp:
    """What a room member signs (never sent alone: the payload of a RoomEvent)."""

    TYPE: ClassVar[str] = "room-op"
    room: bytes = field(metadata={"size": ROOM_ID_SIZE})
    author: bytes = field(metadata={"size": KEY_SIZE})  # the author's X25519 identity key
    author_key: bytes = field(metadata={"size": KEY_SIZE})  # its Ed25519 key (bound to it)
    seq: int = field(metadata={"min": 1, "max": MAX_WIRE_LAMPORT})  # per author and room
    lamport: int = field(metadata={"min": 1, "max": MAX_WIRE_LAMPORT})
    sent_at: int = field(metadata={"min": 0, "max": MAX_TIMESTAMP_MS})
    kind: str = field(metadata={"max": 16, "choices": ROOM_KINDS})
    # invite/remove/admin: the member's key; edit/delete: the post's 16-byte event id
    subject: bytes = field(default=b"", metadata={"max": KEY_SIZE})
    text: str = field(default="", metadata={"max": MAX_TEXT_BYTES})  # post, edit, name, topic
    nonce: bytes = field(default=b"", metadata={"max": ROOM_ID_SIZE})  # create only


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """A signed room operation: `payload` is the encoded RoomOp, `sig` its signature by
    the op's `author_key`."""

    TYPE: ClassVar[str] = "room-event"
    payload: bytes = field(metadata={"max": MAX_TEXT_BYTES + 512})
    sig: bytes = field(metadata={"size": SIGNATURE_SIZE})


@dataclass(frozen=True, slots=True)
class RoomCursor:
    """A record inside RoomSync: the sender holds `author`'s events 1..`seq`."""

    author: bytes = field(metadata={"size": KEY_SIZE})
    seq: int = field(metadata={"max": MAX_WIRE_LAMPORT})


@dataclass(frozen=True, slots=True)
class RoomSync:
    """Anti-entropy: what the sender holds of a room; the receiver sends the rest."""

    TYPE: ClassVar[str] = "room-sync"
    room: bytes = field(metadata={"size": ROOM_ID_SIZE})
    have: tuple[RoomCursor, ...] = field(metadata={"max": MAX_ROOM_AUTHORS})


Message = (
    Hello
    | Text
    | Bye
    | Heartbeat
    | Presence
    | PeerList
    | Edit
    | Delete
    | ReadReceipt
    | Ack
    | Typing
    | FileOffer
    | OfferReply
    | TransferResult
    | TransferCancel
    | Pull
    | Chunk
    | Unavailable
    | RoomOp
    | RoomEvent
    | RoomSync
)
MESSAGE_TYPES: tuple[type[Message], ...] = (
    Hello, Text, Bye, Heartbeat, Presence, PeerList, Edit, Delete, ReadReceipt, Ack, Typing,
    FileOffer, OfferReply, TransferResult, TransferCancel, Pull, Chunk, Unavailable,
    RoomOp, RoomEvent, RoomSync,
)  # fmt: skip
# What may travel on a session, and what only on a transfer connection.
TRANSFER_ONLY: tuple[type[Message], ...] = (Pull, Chunk, Unavailable)
# Never a message of its own: only ever the signed payload inside a RoomEvent.
PAYLOAD_ONLY: tuple[type[Message], ...] = (RoomOp,)

# Well-known Bye reasons.
BYE_QUIT = "quit"
BYE_DUPLICATE = "duplicate"
BYE_BUSY = "busy"  # the node has as many sessions (or transfers) as it allows
BYE_DONE = "done"  # transfer connection: the receiver has pulled everything it wants
BYE_UNKNOWN_OFFER = "unknown offer"  # transfer connection: no such accepted offer here

# TransferCancel reasons the receiving side acts on (any other reason is free text).
CANCEL_EXPIRED = "expired"  # the offer's deadline passed unanswered: it ends expired
CANCEL_DEFAULT = "cancelled"  # a user cancelled and gave no reason


class Outcome(enum.StrEnum):
    """What became of one file of an offer; a TransferResult carries each as its code (the
    member's position here), one byte per file of the offer."""

    NOT_ACCEPTED = "not-accepted"  # 0
    OK = "ok"  # 1: arrived, hash verified, in place
    HASH_MISMATCH = "hash-mismatch"  # 2
    NO_SPACE = "no-space"  # 3
    WRITE_ERROR = "write-error"  # 4
    UNAVAILABLE = "unavailable"  # 5: the sender could not read it (changed or vanished)
    CANCELLED = "cancelled"  # 6: the transfer ended before this file was done


OUTCOMES = tuple(Outcome)  # by code
