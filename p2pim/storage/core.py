"""The connection: opening, durability settings, migrations, and one transaction per call."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import outcome

from p2pim.api import StorageError
from p2pim.storage import schema

log = logging.getLogger(__name__)

MEMORY = ":memory:"  # a throwaway database (nodes without a profile, tests)
# Another process (a one-shot CLI command) may hold the write lock briefly; wait, don't fail.
BUSY_TIMEOUT_MS = 5000
# WAL only shrinks when told to; keep the idle log bounded (rule 8).
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024


class StorageFull(StorageError):
    """The disk holding the database is full: the write failed and nothing of it is kept.
    Space freed, the same write succeeds: callers retry later rather than give up."""


def storage_error(exc: sqlite3.Error) -> StorageError:
    """The exception a sqlite3 error becomes: SQLITE_FULL, and a shared-memory index that
    could not be allocated (IOERR_SHMSIZE: no room for it), are a full disk."""
    code = getattr(exc, "sqlite_errorcode", 0)
    if code & 0xFF == sqlite3.SQLITE_FULL or code == sqlite3.SQLITE_IOERR_SHMSIZE:
        return StorageFull(f"disk full: {exc}")
    return StorageError(str(exc))


class SchemaTooNew(StorageError):
    """The database was written by a newer p2pim; refusing beats corrupting it."""


class Connection:
    """One SQLite connection and the lock that serialises its use.  The table mixins
    (`PeerTables`, `MessageTables`) build on `_transaction`; `Database` combines them."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self._batch_thread: int | None = None  # the thread running `run_batch`, if any
        self.path = path
        # Batches committed that changed rows: proof the disk took a write (`Store` reads
        # it to tell when a full disk has room again).
        self.writes_committed = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Self:
        """Open (creating and migrating as needed) the database at `path`."""
        in_memory = str(path) == MEMORY
        path = Path(path)
        if not in_memory:
            _create_private(path)
        try:
            conn = _configured(path, exclusive=False)
        except StorageFull:
            # No room for SQLite's shared-memory index (a full disk, and no -shm file left
            # from before): in exclusive locking mode that index lives in our memory, so
            # the node starts, reads, and writes again once there is space.  Other
            # processes cannot open the file meanwhile; the next start shares it again.
            log.warning("%s: the disk is full; opening the database for this process only", path)
            conn = _configured(path, exclusive=True)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run_batch(self, calls: Sequence[Callable[[], Any]]) -> list[outcome.Outcome[Any]]:
        """Group commit: run the calls (methods of this object) in ONE transaction, each in
        a savepoint of its own, so one commit (one fsync) makes all of them durable.  A
        call that fails is rolled back alone and gets its error; if the commit fails,
        every call gets that error."""
        with self._lock:
            conn = self._connection()
            self._batch_thread = threading.get_ident()
            try:
                changes = conn.total_changes
                conn.execute("BEGIN IMMEDIATE")
                results: list[outcome.Outcome[Any]] = []
                for call in calls:
                    if not conn.in_transaction:
                        break  # SQLite rolled the whole batch back (disk full, I/O error)
                    results.append(outcome.capture(self._in_savepoint, call))
                if not conn.in_transaction:
                    full = any(_is_full(r) for r in results)
                    error = StorageError("the transaction was rolled back by an error")
                    if full:
                        error = StorageFull("disk full: the transaction was rolled back")
                    return [outcome.Error(error) for _ in calls]
                conn.execute("COMMIT")
                if conn.total_changes != changes and not any(_is_full(r) for r in results):
                    self.writes_committed += 1
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                error = storage_error(exc)
                return [outcome.Error(error) for _ in calls]
            finally:
                self._batch_thread = None
        return results

    def _in_savepoint(self, call: Callable[[], Any]) -> Any:
        # A call made of several steps (`Store.atomically`) is undone as a whole.
        with self._transaction(write=True):
            return call()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("the database is closed")
        return self._conn

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if self._batch_thread == threading.get_ident():  # inside run_batch: a savepoint
            yield from self._savepoint()
            return
        # IMMEDIATE takes the write lock up front, so a write never fails halfway with
        # SQLITE_BUSY after reading; reads use a deferred transaction for a consistent view.
        with self._lock:
            conn = self._connection()
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
                raise storage_error(exc) from exc

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("SAVEPOINT call")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO call")  # undo this call only; the batch goes on
                conn.execute("RELEASE call")
                raise
            conn.execute("RELEASE call")
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc

    # -- health --------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """SQLite's own check of the whole file, then the full-text index against the
        messages: 'ok', or the findings one per line.  Takes the write lock, because FTS5's
        check is spelled as an INSERT (rank 1: compare with the content table too)."""
        with self._transaction(write=True) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            findings = [str(row[0]) for row in rows if row[0] != "ok"]
            try:
                conn.execute(
                    "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)"
                )
            except sqlite3.DatabaseError as exc:
                findings.append(f"messages_fts: {exc}")
        return "\n".join(findings) or "ok"

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


def _is_full(result: outcome.Outcome[Any]) -> bool:
    return isinstance(result, outcome.Error) and isinstance(result.error, StorageFull)


def _create_private(path: Path) -> None:
    # Create the file owner-only before SQLite touches it: SQLite then gives the -wal and
    # -shm files the same mode.  The mode passed to open() is filtered by the umask, but the
    # umask can only remove bits, and changing it would race with other threads.
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc}") from exc


def _configured(path: Path, *, exclusive: bool) -> sqlite3.Connection:
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
        if exclusive:  # before the first access, or SQLite wants the -shm file anyway
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        _configure(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Refuse a newer schema before changing anything in the file.
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > len(schema.MIGRATIONS):
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
        error = storage_error(exc)
        raise type(error)(f"cannot open {path}: {error}") from exc


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    migrations = schema.MIGRATIONS  # read at call time, so a test can substitute its own list
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
                _execute_migration_statement(conn, path, version + 1, statement)
            if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise StorageError(f"migration to version {version + 1} broke a foreign key")
            conn.execute(f"PRAGMA user_version = {int(version) + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise


def _execute_migration_statement(
    conn: sqlite3.Connection, path: Path, version: int, statement: str
) -> None:
    try:
        conn.execute(statement)
    except sqlite3.OperationalError as exc:
        # A virtual table whose module this SQLite lacks (FTS5 is optional at build time).
        if str(exc).startswith("no such module:"):
            module = str(exc).partition(":")[2].strip()
            raise StorageError(
                f"cannot open {path}: schema version {version} needs SQLite's {module!r} "
                f"module, but the SQLite {sqlite3.sqlite_version} in this Python lacks it.  "
                "Use a Python whose sqlite3 was built with it."
            ) from exc
        raise


def _too_new(path: Path, version: int) -> SchemaTooNew:
    return SchemaTooNew(
        f"{path} has schema version {version}, but this p2pim knows versions up to "
        f"{len(schema.MIGRATIONS)}: a newer p2pim wrote it.  Upgrade p2pim to use this profile."
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
