"""The profile database: trust on first use, bounded tables, migrations, durability, and the
async wrapper's threading.  The tests open the files with sqlite3 directly to check what is
really on disk (the one-home rule covers p2pim/, not the tests)."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import trio

from p2pim import storage
from p2pim.storage import Database, SchemaTooNew, StorageError, Store, UnknownPeer, schema
from tests.support import REPO


def key(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest()


def fp(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def pin(db: Database, n: int, nick: str = "alice", now: int = 1000) -> storage.PeerRecord:
    return db.pin_peer(key(n), fp(key(n)), nick, now)


# -- trust on first use ----------------------------------------------------------------------


def test_first_pin_inserts_unverified(db: Database) -> None:
    record = pin(db, 1, "alice", now=1000)
    assert record == storage.PeerRecord(fp(key(1)), key(1), "alice", "unverified", None, 1000, 1000)
    assert db.get_peer(fp(key(1))) == record
    assert db.count_peers() == 1


def test_second_pin_changes_only_nick_and_last_seen(db: Database) -> None:
    pin(db, 1, "alice", now=1000)
    db.set_trust(fp(key(1)), "verified")
    again = db.pin_peer(key(1), fp(key(1)), "alice2", 2000, trust="unverified")
    assert again.trust == "verified"
    assert again.public_key == key(1)
    assert (again.nick, again.first_seen, again.last_seen) == ("alice2", 1000, 2000)
    assert db.count_peers() == 1


def test_pin_refuses_a_different_key_under_a_pinned_fingerprint(db: Database) -> None:
    pin(db, 1)
    with pytest.raises(ValueError, match="different key"):
        db.pin_peer(key(2), fp(key(1)), "mallory", 2000)
    assert db.get_peer(fp(key(1))) == pin(db, 1)


def test_pin_validates_key_and_trust(db: Database) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        db.pin_peer(b"short", "x", "alice", 1)
    with pytest.raises(ValueError, match="trust"):
        db.pin_peer(key(1), fp(key(1)), "alice", 1, trust="trusted")  # type: ignore[arg-type]
    assert db.count_peers() == 0


def test_trust_transitions(db: Database) -> None:
    old, new = fp(key(1)), fp(key(2))
    pin(db, 1)
    db.set_trust(old, "verified")
    assert db.get_peer(old).trust == "verified"  # type: ignore[union-attr]
    # The same person comes back with a new key: a new identity, flagged loudly.
    record = db.pin_peer(key(2), new, "alice", 2000, trust="key_changed", previous_fingerprint=old)
    assert (record.trust, record.previous_fingerprint) == ("key_changed", old)
    # Re-verifying keeps the record of which key this one replaced.
    db.set_trust(new, "verified")
    assert db.get_peer(new) == storage.PeerRecord(new, key(2), "alice", "verified", old, 2000, 2000)
    db.set_trust(new, "unverified", previous_fingerprint="f" * 64)
    assert db.get_peer(new).previous_fingerprint == "f" * 64  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="trust must be one of"):
        db.set_trust(new, "bogus")  # type: ignore[arg-type]
    with pytest.raises(UnknownPeer):
        db.set_trust("0" * 64, "verified")


def test_touch_peer(db: Database) -> None:
    pin(db, 1, "alice", now=1000)
    db.touch_peer(fp(key(1)), "Alice", 5000)
    record = db.get_peer(fp(key(1)))
    assert record is not None
    assert (record.nick, record.first_seen, record.last_seen, record.trust) == (
        "Alice",
        1000,
        5000,
        "unverified",
    )
    with pytest.raises(UnknownPeer):
        db.touch_peer("0" * 64, "x", 1)


def test_peers_and_case_insensitive_nick(db: Database) -> None:
    pin(db, 1, "Ådam", now=1)
    pin(db, 2, "ådam", now=2)
    pin(db, 3, "bob", now=3)
    assert [p.nick for p in db.peers()] == ["Ådam", "ådam", "bob"]
    assert [p.fingerprint for p in db.peers_with_nick("ÅDAM")] == [fp(key(1)), fp(key(2))]
    assert db.peers_with_nick("carol") == []
    assert db.get_peer("0" * 64) is None


# -- addresses -------------------------------------------------------------------------------


def test_addresses_newest_first_and_capped(db: Database) -> None:
    a = fp(key(1))
    pin(db, 1)
    for i in range(12):
        db.remember_address(a, f"10.0.0.{i}", 4000 + i, now_ms=100 + i)
    kept = db.addresses(a)
    assert len(kept) == storage.MAX_ADDRESSES_PER_PEER == 8
    assert kept == [(f"10.0.0.{i}", 4000 + i) for i in range(11, 3, -1)]
    # Seeing an old address again refreshes it rather than adding a row.
    db.remember_address(a, "10.0.0.5", 4005, now_ms=500)
    assert db.addresses(a)[0] == ("10.0.0.5", 4005)
    assert len(db.addresses(a)) == 8
    # A newer address evicts the oldest one.
    db.remember_address(a, "10.0.1.1", 9, now_ms=600)
    assert ("10.0.0.4", 4004) not in db.addresses(a)
    assert len(db.addresses(a)) == 8


def test_all_addresses_and_unknown_peer(db: Database) -> None:
    pin(db, 1)
    pin(db, 2)
    db.remember_address(fp(key(1)), "10.0.0.1", 1, 10)
    db.remember_address(fp(key(1)), "10.0.0.2", 2, 20)
    db.remember_address(fp(key(2)), "fe80::1%eth0", 3, 5)
    assert db.all_addresses() == {
        fp(key(1)): [("10.0.0.2", 2), ("10.0.0.1", 1)],
        fp(key(2)): [("fe80::1%eth0", 3)],
    }
    with pytest.raises(UnknownPeer):
        db.remember_address("0" * 64, "10.0.0.1", 1, 10)
    with pytest.raises(StorageError):  # the schema's CHECK, wrapped: callers never see sqlite3
        db.remember_address(fp(key(1)), "10.0.0.1", 70000, 10)


def test_delete_peer_cascades_to_addresses(db: Database, path: Path) -> None:
    pin(db, 1)
    pin(db, 2)
    db.remember_address(fp(key(1)), "10.0.0.1", 1, 10)
    db.remember_address(fp(key(2)), "10.0.0.2", 2, 10)
    assert db.delete_peer(fp(key(1))) is True
    assert db.delete_peer(fp(key(1))) is False
    assert db.get_peer(fp(key(1))) is None
    assert db.all_addresses() == {fp(key(2)): [("10.0.0.2", 2)]}
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT count(*) FROM peer_addresses").fetchone() == (1,)


def test_manual_peers_round_trip(db: Database) -> None:
    db.add_manual_peer("192.168.1.20", 7000, 2)
    db.add_manual_peer("laptop.local", 7001, 1)
    db.add_manual_peer("192.168.1.20", 7000, 3)  # again: still one entry, original time kept
    assert db.manual_peers() == [("laptop.local", 7001), ("192.168.1.20", 7000)]
    assert db.remove_manual_peer("laptop.local", 7001) is True
    assert db.remove_manual_peer("laptop.local", 7001) is False
    assert db.manual_peers() == [("192.168.1.20", 7000)]


# -- the file itself -------------------------------------------------------------------------


def test_settings_wal_and_durable(db: Database, path: Path) -> None:
    assert db.settings() == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": storage.BUSY_TIMEOUT_MS,
        "user_version": storage.SCHEMA_VERSION,
    }
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.integrity_check() == "ok"


def test_reopen_persists(path: Path) -> None:
    with Database.open(path) as db:
        pin(db, 1, "alice", now=7)
        db.set_trust(fp(key(1)), "verified")
        db.remember_address(fp(key(1)), "10.0.0.1", 7000, 8)
        db.add_manual_peer("10.0.0.9", 7000, 9)
    with Database.open(path) as db:
        assert db.peers() == [
            storage.PeerRecord(fp(key(1)), key(1), "alice", "verified", None, 7, 7)
        ]
        assert db.addresses(fp(key(1))) == [("10.0.0.1", 7000)]
        assert db.manual_peers() == [("10.0.0.9", 7000)]


def test_files_are_owner_only_whatever_the_umask(path: Path) -> None:
    old = os.umask(0)
    try:
        with Database.open(path) as db:
            pin(db, 1)
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                assert name.stat().st_mode & 0o777 == 0o600, name
    finally:
        os.umask(old)


def test_closed_database_raises_storage_error(path: Path) -> None:
    db = Database.open(path)
    db.close()
    db.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        db.peers()


# -- migrations ------------------------------------------------------------------------------


def test_version_0_database_is_migrated(path: Path) -> None:
    with closing(sqlite3.connect(path)) as raw:  # an existing, empty, version-0 database
        assert raw.execute("PRAGMA user_version").fetchone() == (0,)
    with Database.open(path) as db:
        assert db.settings()["user_version"] == storage.SCHEMA_VERSION == 7
        pin(db, 1)
    with closing(sqlite3.connect(path)) as raw:
        tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_schema")}
        assert {"peers", "peer_addresses", "manual_peers"} <= tables
        assert {"meta", "messages", "applied_ops", "outbox", "messages_fts"} <= tables
        assert {"transfers", "transfer_files"} <= tables


def test_newer_schema_is_refused_untouched(path: Path) -> None:
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNew, match=r"schema version 99.*newer p2pim"):
        Database.open(path)
    with closing(sqlite3.connect(path)) as raw:
        # Refused before anything changed: still version 99, no tables, not switched to WAL.
        assert raw.execute("PRAGMA user_version").fetchone() == (99,)
        assert raw.execute("SELECT count(*) FROM sqlite_schema").fetchone() == (0,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)


LATER = """
    -- A later version: a table and a trigger whose body holds ';' (it must not be split).
    CREATE TABLE nick_history (fingerprint TEXT NOT NULL, nick TEXT NOT NULL);
    CREATE TRIGGER peers_nick AFTER UPDATE OF nick ON peers BEGIN
        INSERT INTO nick_history VALUES (old.fingerprint, old.nick);
    END;
"""


def test_old_version_gets_the_newer_migrations(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Database.open(path) as db:
        pin(db, 1, "alice")
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, LATER))
    with Database.open(path) as db:
        assert db.settings()["user_version"] == storage.SCHEMA_VERSION + 1
        db.touch_peer(fp(key(1)), "alice2", 2000)
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT * FROM nick_history").fetchall() == [(fp(key(1)), "alice")]


def test_a_failing_migration_changes_nothing(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Database.open(path) as db:
        pin(db, 1)
    broken = "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    with pytest.raises(StorageError, match="no_such_table"):
        Database.open(path)
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (storage.SCHEMA_VERSION,)
        names = {name for (name,) in raw.execute("SELECT name FROM sqlite_schema")}
        assert "half_done" not in names


def test_a_missing_sqlite_module_is_named(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if this Python's SQLite had been built without FTS5: the error says what is missing.
    absent = tuple(m.replace("USING fts5", "USING fts5_absent") for m in schema.MIGRATIONS)
    monkeypatch.setattr(schema, "MIGRATIONS", absent)
    with pytest.raises(StorageError, match=r"version 2 needs SQLite's 'fts5_absent' module"):
        Database.open(path)
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (1,)  # v1 stands, v2 undone


# -- the async Store -------------------------------------------------------------------------


def record_threads(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Wrap Database.<name> to note which thread each call ran on."""
    seen: list[int] = []
    original: Callable[..., Any] = getattr(Database, name)

    def wrapper(self: Database, *args: Any) -> Any:
        seen.append(threading.get_ident())
        return original(self, *args)

    monkeypatch.setattr(Database, name, wrapper)
    return seen


async def test_store_runs_off_the_trio_thread(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pins = record_threads(monkeypatch, "pin_peer")
    gets = record_threads(monkeypatch, "get_peer")
    opens: list[int] = []
    original_open = Database.open

    def recording_open(p: Path) -> Database:
        opens.append(threading.get_ident())
        return original_open(p)

    monkeypatch.setattr(Database, "open", recording_open)
    trio_thread = threading.get_ident()
    async with Store.open(path) as store:
        record = await store.run(Database.pin_peer, key(1), fp(key(1)), "alice", 1000)
        assert await store.run(Database.get_peer, fp(key(1))) == record
        assert await store.run(Database.integrity_check) == "ok"
    assert len(pins) == len(gets) == len(opens) == 1
    assert trio_thread not in pins + gets + opens
    with pytest.raises(StorageError, match="closed"):
        await store.run(Database.peers)


async def test_store_mirrors_the_database(store: Store, path: Path) -> None:
    a = fp(key(1))
    await store.run(Database.pin_peer, key(1), a, "Alice", 1, trust="verified")
    await store.run(Database.touch_peer, a, "alice", 2)
    await store.run(Database.set_trust, a, "key_changed", "e" * 64)
    await store.run(Database.remember_address, a, "10.0.0.1", 7000, 3)
    await store.run(Database.add_manual_peer, "10.0.0.2", 7000, 4)
    assert await store.run(Database.count_peers) == 1
    assert [p.trust for p in await store.run(Database.peers_with_nick, "ALICE")] == ["key_changed"]
    assert await store.run(Database.addresses, a) == [("10.0.0.1", 7000)]
    assert await store.run(Database.all_addresses) == {a: [("10.0.0.1", 7000)]}
    assert await store.run(Database.manual_peers) == [("10.0.0.2", 7000)]
    assert await store.run(Database.remove_manual_peer, "10.0.0.2", 7000)
    assert (await store.run(Database.settings))["journal_mode"] == "wal"
    assert await store.run(Database.delete_peer, a)
    assert await store.run(Database.peers) == []
    assert store.path == path


async def test_many_concurrent_calls_all_land(store: Store) -> None:
    peers, per_peer = 25, storage.MAX_ADDRESSES_PER_PEER
    async with trio.open_nursery() as nursery:
        for n in range(peers):
            nursery.start_soon(store.run, Database.pin_peer, key(n), fp(key(n)), f"p{n}", n)
    async with trio.open_nursery() as nursery:  # 200 concurrent writers
        for n in range(peers):
            for i in range(per_peer):
                nursery.start_soon(
                    store.run, Database.remember_address, fp(key(n)), f"h{i}", 1 + i, i
                )
    assert await store.run(Database.count_peers) == peers
    addresses = await store.run(Database.all_addresses)
    assert sum(len(v) for v in addresses.values()) == peers * per_peer == 200
    assert all(len(addresses[fp(key(n))]) == per_peer for n in range(peers))
    assert await store.run(Database.integrity_check) == "ok"


async def test_cancelled_caller_leaves_store_usable(store: Store) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.run(Database.pin_peer, key(1), fp(key(1)), "alice", 1)
    # cancelled before it started: nothing written
    assert await store.run(Database.count_peers) == 0
    await store.run(Database.pin_peer, key(1), fp(key(1)), "alice", 1)
    assert await store.run(Database.count_peers) == 1


# -- crash durability ------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import hashlib, sys
    from p2pim.storage import Database

    db = Database.open(sys.argv[1])
    for n in range(1_000_000):  # bounded, in case the parent dies before killing us
        public = hashlib.sha256(n.to_bytes(4, "big")).digest()
        fingerprint = hashlib.sha256(public).hexdigest()
        db.pin_peer(public, fingerprint, f"peer{n}", n)
        db.remember_address(fingerprint, "10.0.0.1", 7000, n)
        message_id = hashlib.sha256(public).digest()[:16]
        lamport = db.tick_lamport()
        body = f"message number {n} word{n}"
        db.queue_message(message_id, fingerprint, "me", n, lamport, body, b"wire" + public, n)
        print(fingerprint, message_id.hex(), flush=True)  # only after every commit returned
    """
)


def test_sigkill_mid_write_loses_no_committed_row(path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert child.stdout is not None
        while len(lines) < 50:
            line = child.stdout.readline()
            assert line, f"child exited early: {child.wait()} {child.stderr.read()!r}"  # type: ignore[union-attr]
            lines.append(line)
        child.send_signal(signal.SIGKILL)
        # Lines already in the pipe were committed too; a torn last line was not printed.
        lines.extend(line for line in child.stdout if line.endswith("\n"))
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        assert child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    committed = [line.split() for line in lines]

    # Look with plain sqlite3 first (it recovers the WAL), then through Database.
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        raw.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        messages = {id for (id,) in raw.execute("SELECT id FROM messages")}
        outbox = {id for (id,) in raw.execute("SELECT id FROM outbox")}
    with Database.open(path) as db:
        assert db.integrity_check() == "ok"
        stored = {p.fingerprint for p in db.peers()}
        assert {fingerprint for fingerprint, _ in committed} <= stored
        assert len(stored) >= len(committed) >= 50
        for n, (fingerprint, message_hex) in enumerate(committed):
            message_id = bytes.fromhex(message_hex)
            assert message_id in messages
            assert message_id in outbox
            assert db.addresses(fingerprint) == [("10.0.0.1", 7000)]
            assert db.outbox(fingerprint) == [(n + 1, message_id, b"wire" + key(n))]
            assert db.history(fingerprint)[0].lamport == n + 1
        last = len(committed) - 1
        assert [m.id.hex() for m in db.search(f"word{last}")] == [committed[last][1]]
