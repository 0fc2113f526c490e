"""The public vocabulary: the records and errors a user of `Node` sees.

Every face (the TUI, the RPC, the daemon, the one-shot commands) and every script gets
these from here (or from the package, which re-exports them); the modules that build them
import them from here too, so each name has one home.  Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

# The presence statuses; their home is the wire format, which this vocabulary shows.
from p2pim.wire.messages import STATUSES as STATUSES

# ---- peers --------------------------------------------------------------------------


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


# ---- transfers ----------------------------------------------------------------------

# ---- rooms --------------------------------------------------------------------------

ROOM_PREFIX = "room:"  # a room's conversation key: `room:<16-byte id in hex>`
