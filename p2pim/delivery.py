"""Delivery: how durable messages reach a peer and how received ones are acknowledged.

A feature that sends a durable control message writes it to the peer's outbox in the
same transaction as the state it announces, then calls `queued(peer)`; the session's pump
sends it and resends it next session until the peer acks it.  A feature that applied a
durable message it received calls `ack(link, op_id)`: an unacked message is resent.
"""

from __future__ import annotations

from typing import Protocol

from p2pim.net.link import PeerLink


class Delivery(Protocol):
    def queued(self, peer: str) -> None:
        """The peer's outbox grew: its current session sends the new entries."""

    def ack(self, link: PeerLink, op_id: bytes) -> None:
        """`op_id` from `link` is applied: tell the peer (only queues, never blocks)."""
