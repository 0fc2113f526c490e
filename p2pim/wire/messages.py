"""The protocol's message vocabulary: frozen, slotted dataclasses shared by both directions.

Each class names its wire type in `TYPE`; each field's bounds live in its metadata
(`max`: longest str in UTF-8 bytes or bytes in bytes; `size`: exact bytes length;
`min`/`max` on ints).  `p2pim.wire.codec` derives the strict schema from these classes,
so adding a message is adding a class here and listing it in `MESSAGE_TYPES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

PROTOCOL_VERSION = 1
MAX_NICK_BYTES = 64
MAX_TEXT_BYTES = 32 * 1024  # longer content travels as a file
MESSAGE_ID_SIZE = 16
MAX_TIMESTAMP_MS = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Hello:
    """Carried in handshake messages 2 and 3 (encrypted): who we are beyond our key."""

    TYPE: ClassVar[str] = "hello"
    version: int = field(metadata={"min": 1, "max": 2**16})
    nick: str = field(metadata={"max": MAX_NICK_BYTES})


@dataclass(frozen=True, slots=True)
class Text:
    """A direct text message.  `id` is globally unique, so receivers can deduplicate."""

    TYPE: ClassVar[str] = "text"
    id: bytes = field(metadata={"size": MESSAGE_ID_SIZE})
    sent_at: int = field(metadata={"min": 0, "max": MAX_TIMESTAMP_MS})  # sender clock, ms
    body: str = field(metadata={"max": MAX_TEXT_BYTES})


@dataclass(frozen=True, slots=True)
class Bye:
    """Orderly end of a session; `reason` tells a quitting peer from a duplicate link."""

    TYPE: ClassVar[str] = "bye"
    reason: str = field(metadata={"max": 64})


Message = Hello | Text | Bye
MESSAGE_TYPES: tuple[type[Message], ...] = (Hello, Text, Bye)

# Well-known Bye reasons.
BYE_QUIT = "quit"
BYE_DUPLICATE = "duplicate"
BYE_BUSY = "busy"  # the node has as many sessions as it allows
