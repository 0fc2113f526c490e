"""What a node tells its users (TUI, daemon, CLI, bots): frozen dataclasses, one per event."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeerDiscovered:
    """mDNS advertised a peer.  Unverified: only `PeerConnected` proves the key."""

    fingerprint_hint: str
    nick: str
    addresses: tuple[str, ...]
    port: int


@dataclass(frozen=True, slots=True)
class PeerConnected:
    fingerprint: str
    nick: str
    address: str


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    fingerprint: str
    reason: str


@dataclass(frozen=True, slots=True)
class PeerRejected:
    """A connection was refused: wrong key for the advertised fingerprint, bad protocol..."""

    address: str
    reason: str
    expected_fingerprint: str | None = None
    actual_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived:
    sender: str  # fingerprint: the authenticated identity, not the nick
    nick: str
    message_id: str  # hex
    sent_at: int  # sender's clock, ms since the epoch
    text: str


NodeEvent = PeerDiscovered | PeerConnected | PeerDisconnected | PeerRejected | MessageReceived
