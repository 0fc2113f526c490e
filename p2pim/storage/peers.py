"""Peers pinned by key (trust on first use), their last-known addresses, and manual peers."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import cast, get_args

from p2pim.api import StorageError
from p2pim.storage.core import Connection
from p2pim.trust import Trust

MAX_ADDRESSES_PER_PEER = 8
PUBLIC_KEY_LEN = 32

TRUST_LEVELS: tuple[Trust, ...] = get_args(Trust)


class UnknownPeer(StorageError):
    """The fingerprint is not pinned."""


@dataclass(frozen=True, slots=True)
class PeerRecord:
    fingerprint: str
    public_key: bytes
    nick: str
    trust: Trust
    previous_fingerprint: str | None
    first_seen: int
    last_seen: int


_PEER_COLUMNS = "fingerprint, public_key, nick, trust, previous_fingerprint, first_seen, last_seen"


class PeerTables(Connection):
    """The peer tables' methods of `Database`; each is one transaction."""

    # -- peers ---------------------------------------------------------------------------

    def get_peer(self, fingerprint: str) -> PeerRecord | None:
        with self._transaction(write=False) as conn:
            return _get_peer(conn, fingerprint)

    def peers(self) -> list[PeerRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_PEER_COLUMNS} FROM peers ORDER BY first_seen, fingerprint"
            ).fetchall()
        return [_peer_record(row) for row in rows]

    def peers_with_nick(self, nick: str) -> list[PeerRecord]:
        """Peers whose nick matches ignoring case.  Compared in Python with casefold(),
        because SQLite's NOCASE folds ASCII only; the node caps the table's size."""
        wanted = nick.casefold()
        return [peer for peer in self.peers() if peer.nick.casefold() == wanted]

    def count_peers(self) -> int:
        with self._transaction(write=False) as conn:
            (count,) = conn.execute("SELECT count(*) FROM peers").fetchone()
        return cast(int, count)

    def pin_peer(
        self,
        public_key: bytes,
        fingerprint: str,
        nick: str,
        now_ms: int,
        trust: Trust = "unverified",
        previous_fingerprint: str | None = None,
    ) -> PeerRecord:
        """Trust on first use: insert the peer if absent.  If it is already pinned, only its
        nick and last_seen change; trust and key never change silently."""
        _check_key(public_key)
        _check_trust(trust)
        with self._transaction(write=True) as conn:
            existing = _get_peer(conn, fingerprint)
            if existing is None:
                conn.execute(
                    f"INSERT INTO peers ({_PEER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (fingerprint, public_key, nick, trust, previous_fingerprint, now_ms, now_ms),
                )
            elif existing.public_key != public_key:
                # The fingerprint is a hash of the key, so this is a caller's bug.
                raise ValueError(f"peer {fingerprint} is pinned to a different key")
            else:
                _touch(conn, fingerprint, nick, now_ms)
            record = _get_peer(conn, fingerprint)
        assert record is not None
        return record

    def set_trust(
        self, fingerprint: str, trust: Trust, previous_fingerprint: str | None = None
    ) -> None:
        """Change a peer's trust.  `previous_fingerprint=None` keeps the recorded one: that
        this key replaced another stays true after the user verifies it."""
        _check_trust(trust)
        with self._transaction(write=True) as conn:
            cursor = conn.execute(
                "UPDATE peers SET trust = ?,"
                " previous_fingerprint = coalesce(?, previous_fingerprint)"
                " WHERE fingerprint = ?",
                (trust, previous_fingerprint, fingerprint),
            )
            if cursor.rowcount == 0:
                raise UnknownPeer(fingerprint)

    def touch_peer(self, fingerprint: str, nick: str, now_ms: int) -> None:
        with self._transaction(write=True) as conn:
            _touch(conn, fingerprint, nick, now_ms)

    def delete_peer(self, fingerprint: str) -> bool:
        """Forget a peer and (by cascade) its addresses.  False if it was not pinned."""
        with self._transaction(write=True) as conn:
            cursor = conn.execute("DELETE FROM peers WHERE fingerprint = ?", (fingerprint,))
            return cursor.rowcount > 0

    # -- addresses -----------------------------------------------------------------------

    def remember_address(self, fingerprint: str, host: str, port: int, now_ms: int) -> None:
        """Record that `host:port` reached this peer at `now_ms`.  Only the newest
        MAX_ADDRESSES_PER_PEER (by last_ok) are kept, so a roaming peer cannot grow the table."""
        with self._transaction(write=True) as conn:
            if _get_peer(conn, fingerprint) is None:
                raise UnknownPeer(fingerprint)
            conn.execute(
                "INSERT INTO peer_addresses (fingerprint, host, port, last_ok)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (fingerprint, host, port) DO UPDATE SET last_ok = excluded.last_ok",
                (fingerprint, host, port, now_ms),
            )
            conn.execute(
                "DELETE FROM peer_addresses WHERE fingerprint = ? AND rowid NOT IN"
                " (SELECT rowid FROM peer_addresses WHERE fingerprint = ?"
                "  ORDER BY last_ok DESC, rowid DESC LIMIT ?)",
                (fingerprint, fingerprint, MAX_ADDRESSES_PER_PEER),
            )

    def addresses(self, fingerprint: str) -> list[tuple[str, int]]:
        """The peer's remembered addresses, newest first."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT host, port FROM peer_addresses WHERE fingerprint = ?"
                " ORDER BY last_ok DESC, rowid DESC",
                (fingerprint,),
            ).fetchall()
        return [(host, port) for host, port in rows]

    def all_addresses(self) -> dict[str, list[tuple[str, int]]]:
        """Every peer's remembered addresses, each list newest first."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT fingerprint, host, port FROM peer_addresses"
                " ORDER BY fingerprint, last_ok DESC, rowid DESC"
            ).fetchall()
        result: dict[str, list[tuple[str, int]]] = {}
        for fingerprint, host, port in rows:
            result.setdefault(fingerprint, []).append((host, port))
        return result

    # -- manual peers --------------------------------------------------------------------

    def add_manual_peer(self, host: str, port: int, now_ms: int) -> None:
        """Remember `host:port` to dial.  Adding it again keeps the original `added` time."""
        with self._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO manual_peers (host, port, added) VALUES (?, ?, ?)"
                " ON CONFLICT (host, port) DO NOTHING",
                (host, port, now_ms),
            )

    def remove_manual_peer(self, host: str, port: int) -> bool:
        """False if `host:port` was not a manual peer."""
        with self._transaction(write=True) as conn:
            cursor = conn.execute(
                "DELETE FROM manual_peers WHERE host = ? AND port = ?", (host, port)
            )
            return cursor.rowcount > 0

    def manual_peers(self) -> list[tuple[str, int]]:
        """Manual peers in the order they were added."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT host, port FROM manual_peers ORDER BY added, host, port"
            ).fetchall()
        return [(host, port) for host, port in rows]


def _get_peer(conn: sqlite3.Connection, fingerprint: str) -> PeerRecord | None:
    row = conn.execute(
        f"SELECT {_PEER_COLUMNS} FROM peers WHERE fingerprint = ?", (fingerprint,)
    ).fetchone()
    return None if row is None else _peer_record(row)


def _peer_record(row: tuple[object, ...]) -> PeerRecord:
    fingerprint, public_key, nick, trust, previous, first_seen, last_seen = row
    # The schema's types and CHECK constraints guarantee these.
    return PeerRecord(
        fingerprint=cast(str, fingerprint),
        public_key=cast(bytes, public_key),
        nick=cast(str, nick),
        trust=cast(Trust, trust),
        previous_fingerprint=cast("str | None", previous),
        first_seen=cast(int, first_seen),
        last_seen=cast(int, last_seen),
    )


def _touch(conn: sqlite3.Connection, fingerprint: str, nick: str, now_ms: int) -> None:
    cursor = conn.execute(
        "UPDATE peers SET nick = ?, last_seen = ? WHERE fingerprint = ?",
        (nick, now_ms, fingerprint),
    )
    if cursor.rowcount == 0:
        raise UnknownPeer(fingerprint)


def _check_key(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_LEN:
        raise ValueError(f"a public key is {PUBLIC_KEY_LEN} bytes")


def _check_trust(trust: str) -> None:
    if trust not in TRUST_LEVELS:
        raise ValueError(f"trust must be one of {TRUST_LEVELS}, not {trust!r}")
