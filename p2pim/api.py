"""The public vocabulary: the records and errors a user of `Node` sees.

Every face (the TUI, the RPC, the daemon, the one-shot commands) and every script gets
these from here (or from the package, which re-exports them); the modules that build them
import them from here too, so each name has one home.  Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pim.events import TransferFile
from p2pim.transfer.state import TransferState

# ---- peers --------------------------------------------------------------------------

# ---- messages -----------------------------------------------------------------------

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
