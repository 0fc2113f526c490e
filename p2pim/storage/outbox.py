"""The outbox and the Lamport clock: what sending needs besides the message rows.

The outbox holds, per peer and in order, the encoded wire messages (opaque bytes) still to
deliver; the peer acks an entry's id and it goes (`MessageTables.mark_delivered`).  The clock
is one counter for the whole node, kept in `meta`: simpler than one per peer, and it orders
every conversation the same way.
"""

from __future__ import annotations

import sqlite3
from typing import cast

from p2pim.api import StorageError
from p2pim.storage.core import Connection

ID_LEN = 16
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what an SQLite INTEGER holds
MAX_LAMPORT = INT64_MAX
MAX_CLOCK_JUMP = 2**32


class OutboxTables(Connection):
    """The clock's and the outbox's methods of `Database`; each is one transaction."""

    def tick_lamport(self, observed: int = 0) -> int:
        """For sending: the clock becomes max(clock, observed) + 1, which is returned."""
        check_int("observed", observed, 0, MAX_LAMPORT)
        with self._transaction(write=True) as conn:
            return advance_clock(conn, observed, tick=True)

    def observe_lamport(self, observed: int) -> None:
        """For receiving: the clock becomes max(clock, observed)."""
        check_int("observed", observed, 0, MAX_LAMPORT)
        with self._transaction(write=True) as conn:
            advance_clock(conn, observed, tick=False)

    def queue_operation(self, op_id: bytes, peer: str, payload: bytes, now_ms: int) -> None:
        """Queue an encoded edit, delete or read receipt for `peer`."""
        check_id(op_id, "op_id")
        with self._transaction(write=True) as conn:
            enqueue(conn, op_id, peer, payload, now_ms)

    def outbox(
        self, peer: str, after_seq: int = 0, limit: int = 256
    ) -> list[tuple[int, bytes, bytes]]:
        """(seq, id, payload) still to deliver to `peer`, in the order queued."""
        check_int("limit", limit, 0)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT seq, id, payload FROM outbox WHERE peer = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (peer, after_seq, limit),
            ).fetchall()
        return [(seq, id, payload) for seq, id, payload in rows]

    def outbox_peers(self) -> list[str]:
        """The peers with something queued."""
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT DISTINCT peer FROM outbox ORDER BY peer").fetchall()
        return [peer for (peer,) in rows]

    def outbox_size(self, peer: str) -> int:
        with self._transaction(write=False) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM outbox WHERE peer = ?", (peer,)
            ).fetchone()
        return cast(int, count)


# -- helpers for this package (each runs inside its caller's transaction) ---------------------


def advance_clock(conn: sqlite3.Connection, observed: int, *, tick: bool) -> int:
    (clock,) = conn.execute("SELECT value FROM meta WHERE key = 'lamport'").fetchone()
    # A peer's value moves us forward by at most MAX_CLOCK_JUMP: no message, however
    # hostile, can run our clock out (2**32 per message would take 2**31 messages).
    observed = min(observed, cast(int, clock) + MAX_CLOCK_JUMP)
    value = max(cast(int, clock), observed) + int(tick)
    if value > MAX_LAMPORT:
        raise StorageError("the Lamport clock is exhausted")
    if value != clock:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'lamport'", (value,))
    return value


def enqueue(conn: sqlite3.Connection, id: bytes, peer: str, payload: bytes, now_ms: int) -> None:
    conn.execute(
        "INSERT INTO outbox (id, peer, payload, created_at) VALUES (?, ?, ?, ?)",
        (id, peer, payload, now_ms),
    )


def check_id(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != ID_LEN:
        raise ValueError(f"{what} must be {ID_LEN} bytes")


def check_int(what: str, value: int, low: int = INT64_MIN, high: int = INT64_MAX) -> None:
    # Values from peers: out of SQLite's range, sqlite3 would raise OverflowError.
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer in [{low}, {high}], not {value!r}")
