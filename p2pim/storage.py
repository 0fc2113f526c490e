"""Everything p2pim keeps on disk, in one SQLite database per profile.

This is the only module that imports `sqlite3` (DESIGN rule 9).  `Database` is the
synchronous core: every method is one explicit transaction on one connection, guarded by a
lock.  `Store` is what trio code uses: it runs each call in a worker thread, one call at a
time, so there is a single writer and the trio thread never waits on the disk.

Durability: WAL with `synchronous=FULL` syncs the log on every commit, so a method that
returned has its rows on disk, and a crash (even `kill -9` mid-transaction) loses only the
transaction that had not returned yet.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar, TypeVarTuple, cast, get_args

import trio

from p2pim.trust import Trust

DB_FILE = "p2pim.sqlite3"
MEMORY = ":memory:"  # a throwaway database (nodes without a profile, tests)
# Another process (a one-shot CLI command) may hold the write lock briefly; wait, don't fail.
BUSY_TIMEOUT_MS = 5000
# WAL only shrinks when told to; keep the idle log bounded (rule 8).
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
MAX_ADDRESSES_PER_PEER = 8
PUBLIC_KEY_LEN = 32

TRUST_LEVELS: tuple[Trust, ...] = get_args(Trust)

# Ordered schema migrations: MIGRATIONS[i] takes a database from version i to i + 1.  Never
# edit a released entry; append a new one.  Each runs in one transaction with the version bump.
MIGRATIONS: tuple[str, ...] = (
    # v1: peers pinned by key (trust on first use), their last-known addresses, manual peers.
    """
    CREATE TABLE peers (
        fingerprint TEXT PRIMARY KEY,
        public_key BLOB NOT NULL
            CHECK (typeof(public_key) = 'blob' AND length(public_key) = 32),
        nick TEXT NOT NULL,
        trust TEXT NOT NULL CHECK (trust IN ('unverified', 'verified', 'key_changed')),
        previous_fingerprint TEXT NULL,
        first_seen INTEGER NOT NULL,  -- ms since the epoch
        last_seen INTEGER NOT NULL    -- ms since the epoch
    );
    CREATE TABLE peer_addresses (
        fingerprint TEXT NOT NULL REFERENCES peers ON DELETE CASCADE,
        host TEXT NOT NULL,
        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        last_ok INTEGER NOT NULL,     -- ms since the epoch
        PRIMARY KEY (fingerprint, host, port)
    );
    CREATE TABLE manual_peers (
        host TEXT NOT NULL,
        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        added INTEGER NOT NULL,       -- ms since the epoch
        PRIMARY KEY (host, port)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StorageError(Exception):
    """The database failed (disk full, I/O error, corruption, closed).  Wraps sqlite3 errors
    so that callers never need to import sqlite3."""


class SchemaTooNew(StorageError):
    """The database was written by a newer p2pim; refusing beats corrupting it."""


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


def database_path(profile_dir: Path) -> Path:
    return profile_dir / DB_FILE


class Database:
    """The synchronous core.  Safe to call from any thread, one call at a time (a lock
    serialises them; the connection is opened with `check_same_thread=False`)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Database:
        """Open (creating and migrating as needed) the database at `path`."""
        in_memory = str(path) == MEMORY
        path = Path(path)
        if not in_memory:
            _create_private(path)
        try:
            # isolation_level=None: the module starts no implicit transactions; we BEGIN
            # and COMMIT ourselves, so each method's transaction is exactly what it says.
            conn = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {path}: {exc}") from exc
        try:
            _configure(conn, path)
        except BaseException:
            conn.close()
            raise
        # SQLite gives -wal and -shm the database file's mode; tighten any left from before.
        for suffix in ("-wal", "-shm") if not in_memory else ():
            with suppress(FileNotFoundError):
                os.chmod(f"{path}{suffix}", 0o600)
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a write never fails halfway with
        # SQLITE_BUSY after reading; reads use a deferred transaction for a consistent view.
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError("the database is closed")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        # A failed rollback must not hide the error that caused it.
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(str(exc)) from exc

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

    # -- health --------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """SQLite's own check of the whole file: 'ok', or its findings one per line."""
        with self._transaction(write=False) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)

    def settings(self) -> dict[str, object]:
        """The connection's durability settings, for diagnostics and tests."""
        with self._transaction(write=False) as conn:
            return {
                name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "busy_timeout",
                    "user_version",
                )
            }


T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Store:
    """The async face of `Database` for trio.  Each call runs in a worker thread under a
    `CapacityLimiter(1)`: one call at a time, in the order the calls arrived (trio's
    limiter is fair), and the trio thread never blocks on the disk.

    Cancelling a caller never interrupts a transaction: the thread call is not abandoned,
    so a write has either committed or not by the time the cancellation is delivered."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    @asynccontextmanager
    async def open(cls, path: str | os.PathLike[str]) -> AsyncIterator[Store]:
        """`async with Store.open(path) as store:` opens, migrates, and closes on exit."""
        store = cls(await trio.to_thread.run_sync(Database.open, path))
        try:
            yield store
        finally:
            # Shielded: the file is closed cleanly even when the caller was cancelled.
            with trio.CancelScope(shield=True):
                await store.aclose()

    @property
    def path(self) -> Path:
        return self._db.path

    async def _run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def aclose(self) -> None:
        await self._run(self._db.close)

    async def get_peer(self, fingerprint: str) -> PeerRecord | None:
        return await self._run(self._db.get_peer, fingerprint)

    async def peers(self) -> list[PeerRecord]:
        return await self._run(self._db.peers)

    async def peers_with_nick(self, nick: str) -> list[PeerRecord]:
        return await self._run(self._db.peers_with_nick, nick)

    async def count_peers(self) -> int:
        return await self._run(self._db.count_peers)

    async def pin_peer(
        self,
        public_key: bytes,
        fingerprint: str,
        nick: str,
        now_ms: int,
        trust: Trust = "unverified",
        previous_fingerprint: str | None = None,
    ) -> PeerRecord:
        return await self._run(
            self._db.pin_peer, public_key, fingerprint, nick, now_ms, trust, previous_fingerprint
        )

    async def set_trust(
        self, fingerprint: str, trust: Trust, previous_fingerprint: str | None = None
    ) -> None:
        await self._run(self._db.set_trust, fingerprint, trust, previous_fingerprint)

    async def touch_peer(self, fingerprint: str, nick: str, now_ms: int) -> None:
        await self._run(self._db.touch_peer, fingerprint, nick, now_ms)

    async def delete_peer(self, fingerprint: str) -> bool:
        return await self._run(self._db.delete_peer, fingerprint)

    async def remember_address(self, fingerprint: str, host: str, port: int, now_ms: int) -> None:
        await self._run(self._db.remember_address, fingerprint, host, port, now_ms)

    async def addresses(self, fingerprint: str) -> list[tuple[str, int]]:
        return await self._run(self._db.addresses, fingerprint)

    async def all_addresses(self) -> dict[str, list[tuple[str, int]]]:
        return await self._run(self._db.all_addresses)

    async def add_manual_peer(self, host: str, port: int, now_ms: int) -> None:
        await self._run(self._db.add_manual_peer, host, port, now_ms)

    async def remove_manual_peer(self, host: str, port: int) -> bool:
        return await self._run(self._db.remove_manual_peer, host, port)

    async def manual_peers(self) -> list[tuple[str, int]]:
        return await self._run(self._db.manual_peers)

    async def integrity_check(self) -> str:
        return await self._run(self._db.integrity_check)

    async def settings(self) -> dict[str, object]:
        return await self._run(self._db.settings)


# -- helpers -------------------------------------------------------------------------------


def _create_private(path: Path) -> None:
    # Create the file owner-only before SQLite touches it: SQLite then gives the -wal and
    # -shm files the same mode.  The mode passed to open() is filtered by the umask, but the
    # umask can only remove bits, and changing it would race with other threads.
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc}") from exc


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Refuse a newer schema before changing anything in the file.
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            raise _too_new(path, version)
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode != "wal" and str(path) != MEMORY:  # a memory database has nothing to journal
            raise StorageError(f"{path}: cannot use WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        _migrate(conn, path)
        # Only now: SQLite's recipe for table-rebuilding migrations needs foreign keys off
        # (they cannot be toggled inside a transaction); _migrate checks them instead.
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    migrations = MIGRATIONS  # read at call time, so a test can substitute its own list
    while True:
        # Read the version inside the write transaction: if another process migrated while
        # we waited for the lock, we see its result instead of applying a script twice.
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > len(migrations):
                raise _too_new(path, version)
            if version == len(migrations):
                conn.execute("COMMIT")
                return
            # Not executescript(): it would COMMIT first, splitting the migration in two.
            for statement in _statements(migrations[version]):
                conn.execute(statement)
            if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise StorageError(f"migration to version {version + 1} broke a foreign key")
            conn.execute(f"PRAGMA user_version = {int(version) + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise


def _too_new(path: Path, version: int) -> SchemaTooNew:
    return SchemaTooNew(
        f"{path} has schema version {version}, but this p2pim knows versions up to "
        f"{len(MIGRATIONS)}: a newer p2pim wrote it.  Upgrade p2pim to use this profile."
    )


def _statements(script: str) -> Iterator[str]:
    """Split a SQL script into statements.  sqlite3.complete_statement knows about string
    literals, comments and trigger bodies, so a ';' inside those does not split."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {pending!r}")


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
