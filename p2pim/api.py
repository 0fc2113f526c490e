"""The public vocabulary: the records and errors a user of `Node` sees.

Every face (the TUI, the RPC, the daemon, the one-shot commands) and every script gets
these from here (or from the package, which re-exports them); the modules that build them
import them from here too, so each name has one home.  Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

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

# ---- rooms --------------------------------------------------------------------------
