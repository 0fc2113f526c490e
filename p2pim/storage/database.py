"""`Database`: the synchronous core, one class over all the tables (`MessageTables` and
`TransferTables` build on `OutboxTables`)."""

from __future__ import annotations

from p2pim.storage.blocking import BlockTables
from p2pim.storage.messages import MessageTables
from p2pim.storage.peers import PeerTables
from p2pim.storage.rooms import RoomTables
from p2pim.storage.transfers import TransferTables


class Database(PeerTables, MessageTables, TransferTables, RoomTables, BlockTables):
    """The synchronous core.  Safe to call from any thread, one call at a time (a lock
    serialises them; the connection is opened with `check_same_thread=False`).  Every method
    is one transaction, and a method that writes returns only after its COMMIT.

    `Database.open(path)` opens, creating and migrating as needed; use it as a context
    manager or call `close()`."""
