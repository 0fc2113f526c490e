"""The protocol's message vocabulary: frozen, slotted dataclasses shared by both directions.

Each class names its wire type in `TYPE`; each field's bounds live in its metadata
(`max`: longest str in UTF-8 bytes, bytes in bytes, or tuple in items; `size`: exact bytes
length; `min`/`max` on ints; `choices` for str).  A `tuple[Record, ...]` field carries a
list of small records (maps).  `p2pim.wire.codec` derives the strict schema from these
classes, so adding a message is adding a class here and listing it in `MESSAGE_TYPES`.
"""

from __future__ import annotations

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
    """The sender's status changed."""

    TYPE: ClassVar[str] = "presence"
    status: str = field(metadata={"max": 16, "choices": STATUSES})
    status_text: str = field(metadata={"max": MAX_STATUS_TEXT_BYTES})


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
)
MESSAGE_TYPES: tuple[type[Message], ...] = (
    Hello, Text, Bye, Heartbeat, Presence, PeerList, Edit, Delete, ReadReceipt, Ack, Typing,
)  # fmt: skip

# Well-known Bye reasons.
BYE_QUIT = "quit"
BYE_DUPLICATE = "duplicate"
BYE_BUSY = "busy"  # the node has as many sessions as it allows
