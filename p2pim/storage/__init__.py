"""Everything p2pim keeps on disk, in one SQLite database per profile.

This package is the only home of `sqlite3` (DESIGN rule 9).  `Database` is the synchronous
core: every method is one explicit transaction on one connection, guarded by a lock.  `Store`
is what trio code uses: it runs each call in a worker thread, one call at a time, so there is
a single writer and the trio thread never waits on the disk.

Durability: WAL with `synchronous=FULL` syncs the log on every commit, so a method that
returned has its rows on disk, and a crash (even `kill -9` mid-transaction) loses only the
transaction that had not returned yet.

Modules: `schema` (the migrations: what is on disk), `core` (connection, settings,
migrating, transactions), `peers`, `outbox`, `messages`, `transfers` and `rooms` (the
tables' methods, mixed into `database.Database`), `store` (the async `Store`).
"""

from p2pim.api import StorageError  # also the storage package's, as its callers catch it
from p2pim.storage.core import (
    BUSY_TIMEOUT_MS,
    JOURNAL_SIZE_LIMIT,
    MEMORY,
    SchemaTooNew,
    StorageFull,
)
from p2pim.storage.database import Database
from p2pim.storage.messages import fts_query
from p2pim.storage.outbox import ID_LEN, MAX_LAMPORT
from p2pim.storage.peers import (
    MAX_ADDRESSES_PER_PEER,
    PUBLIC_KEY_LEN,
    TRUST_LEVELS,
    PeerRecord,
    UnknownPeer,
)
from p2pim.storage.rooms import RoomPost
from p2pim.storage.schema import SCHEMA_VERSION
from p2pim.storage.store import Store
from p2pim.storage.transfers import FileRecord, TransferRecord, UnknownTransfer

__all__ = [
    "BUSY_TIMEOUT_MS",
    "ID_LEN",
    "JOURNAL_SIZE_LIMIT",
    "MAX_ADDRESSES_PER_PEER",
    "MAX_LAMPORT",
    "MEMORY",
    "PUBLIC_KEY_LEN",
    "SCHEMA_VERSION",
    "TRUST_LEVELS",
    "Database",
    "FileRecord",
    "PeerRecord",
    "RoomPost",
    "SchemaTooNew",
    "StorageError",
    "StorageFull",
    "Store",
    "TransferRecord",
    "UnknownPeer",
    "UnknownTransfer",
    "fts_query",
]
