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
