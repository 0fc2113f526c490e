"""Direct messages: durable history, exactly-once operations, receipts, and full-text search.

Delivery is at-least-once on the wire and exactly-once for the user (DESIGN §4): a message id
is stored once per conversation (`store_incoming` returns None for a repeat), and an edit,
delete or read receipt is applied once (its operation id goes into `applied_ops`).  Each
method is one transaction and returns only after COMMIT: what it accepted survives a crash.

A message is identified by its conversation and its id, never by the id alone: room posts
share this table (`room:<hex>`, see storage/rooms.py), every room member learns every post's
id, and a peer picks its direct messages' ids freely.  So a direct message, edit or delete
reaches only that peer's conversation, whatever its id (docs/security.md, rooms).

Operations from one author reach us in the order of their outbox, so they are applied in the
order they arrive; the author's clock (`edited_at`) is recorded, never compared.  The clock
and the outbox are in `outbox`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, cast

from p2pim.api import NotYourMessage, StoredMessage, UnknownMessage
from p2pim.storage.outbox import (
    MAX_LAMPORT,
    OutboxTables,
    advance_clock,
    check_id,
    check_int,
    enqueue,
)

_FIELDS = tuple(field.name for field in fields(StoredMessage))  # the columns' names too
_COLUMNS = ", ".join(_FIELDS)
_M_COLUMNS = ", ".join(f"m.{name}" for name in _FIELDS)
_NEWEST_FIRST = "ORDER BY lamport DESC, id DESC LIMIT ?"


class MessageTables(OutboxTables):
    """The message tables' methods of `Database`; each is one transaction."""

    # -- sending -----------------------------------------------------------------------------

    def queue_message(
        self,
        id: bytes,
        peer: str,
        author: str,
        sent_at: int,
        lamport: int,
        body: str,
        payload: bytes,
        now_ms: int,
    ) -> StoredMessage:
        """Store a message we wrote and queue its encoded form (`payload`) for `peer`, under
        the same id, together."""
        _check_message(id, sent_at, lamport)
        with self._transaction(write=True) as conn:
            advance_clock(conn, lamport, tick=False)
            _insert_message(conn, id, peer, author, True, sent_at, lamport, body, now_ms)
            enqueue(conn, id, peer, payload, now_ms)
            return _require(conn, peer, id)

    def edit_own(
        self,
        op_id: bytes,
        target_id: bytes,
        me: str,
        body: str,
        edited_at: int,
        payload: bytes,
        peer: str,
        now_ms: int,
    ) -> StoredMessage:
        """Edit a message we wrote to `peer` and queue the edit operation, together."""
        check_id(op_id, "op_id")
        check_int("edited_at", edited_at)
        with self._transaction(write=True) as conn:
            _own_target(conn, target_id, me, peer)
            _record_op(conn, op_id, now_ms)
            _edit(conn, peer, target_id, body, edited_at)
            enqueue(conn, op_id, peer, payload, now_ms)
            return _require(conn, peer, target_id)

    def delete_own(
        self, op_id: bytes, target_id: bytes, me: str, payload: bytes, peer: str, now_ms: int
    ) -> StoredMessage:
        """Delete a message we wrote to `peer` and queue the delete operation, together.  If
        the message itself is still queued, it is dropped: what was deleted before it left
        never leaves."""
        check_id(op_id, "op_id")
        with self._transaction(write=True) as conn:
            _own_target(conn, target_id, me, peer)
            _record_op(conn, op_id, now_ms)
            _delete(conn, peer, target_id)
            conn.execute("DELETE FROM outbox WHERE id = ? AND peer = ?", (target_id, peer))
            enqueue(conn, op_id, peer, payload, now_ms)
            return _require(conn, peer, target_id)

    # -- receiving ---------------------------------------------------------------------------

    def store_incoming(
        self,
        id: bytes,
        peer: str,
        author: str,
        sent_at: int,
        lamport: int,
        body: str,
        now_ms: int,
    ) -> StoredMessage | None:
        """Store a message from `peer` unless its id is already stored in that conversation:
        the new row, or None for a repeat (ack it, show nothing).  The clock observes
        `lamport` either way."""
        _check_message(id, sent_at, lamport)
        with self._transaction(write=True) as conn:
            advance_clock(conn, lamport, tick=False)
            if not _insert_message(conn, id, peer, author, False, sent_at, lamport, body, now_ms):
                return None
            return _require(conn, peer, id)

    def apply_edit(
        self,
        op_id: bytes,
        target_id: bytes,
        author: str,
        body: str,
        edited_at: int,
        now_ms: int,
    ) -> StoredMessage | None:
        """Apply an edit by `author` once: the edited row, or None if nothing changed (the
        operation was applied before, the target is unknown, deleted, or not `author`'s).
        The target is looked up in the conversation with `author` only: a direct edit
        never reaches a room post or another peer's message of the same id."""
        check_id(op_id, "op_id")
        check_int("edited_at", edited_at)
        with self._transaction(write=True) as conn:
            target = _target_of(conn, op_id, target_id, author)
            if target is None:
                return None
            _record_op(conn, op_id, now_ms)
            if target.deleted:
                return None
            _edit(conn, author, target_id, body, edited_at)
            return _require(conn, author, target_id)

    def apply_delete(
        self, op_id: bytes, target_id: bytes, author: str, now_ms: int
    ) -> StoredMessage | None:
        """Apply a delete by `author` once: the emptied row, or None if nothing changed (as
        for `apply_edit`, or it was deleted already)."""
        check_id(op_id, "op_id")
        with self._transaction(write=True) as conn:
            target = _target_of(conn, op_id, target_id, author)
            if target is None:
                return None
            _record_op(conn, op_id, now_ms)
            if target.deleted:
                return None
            _delete(conn, author, target_id)
            return _require(conn, author, target_id)

    # -- acknowledgements and read receipts --------------------------------------------------

    def mark_delivered(self, peer: str, ids: Sequence[bytes], now_ms: int) -> list[bytes]:
        """`peer` acked `ids` (messages or operations): they leave its outbox.  Returns the
        ids of our messages to it delivered for the first time, one "delivered" event each.
        Ids queued for anyone else are untouched: a peer acks only what was sent to it."""
        ids = _id_list(ids)
        with self._transaction(write=True) as conn:
            conn.executemany(
                "DELETE FROM outbox WHERE id = ? AND peer = ?", [(id, peer) for id in ids]
            )
            return [
                id
                for id in ids
                if conn.execute(
                    "UPDATE messages SET delivered_at = ?"
                    " WHERE id = ? AND peer = ? AND outgoing = 1 AND delivered_at IS NULL",
                    (now_ms, id, peer),
                ).rowcount
            ]

    def mark_read_by_peer(
        self, op_id: bytes, ids: Sequence[bytes], peer: str, now_ms: int
    ) -> list[bytes]:
        """Apply `peer`'s read receipt once: our messages to `peer` among `ids` are read.
        Returns those read for the first time."""
        check_id(op_id, "op_id")
        ids = _id_list(ids)
        with self._transaction(write=True) as conn:
            if _op_applied(conn, op_id):
                return []
            _record_op(conn, op_id, now_ms)
            return [
                id
                for id in ids
                if conn.execute(
                    "UPDATE messages SET read_at = ?"
                    " WHERE id = ? AND peer = ? AND outgoing = 1 AND read_at IS NULL",
                    (now_ms, id, peer),
                ).rowcount
            ]

    def mark_read_locally(
        self,
        peer: str,
        up_to_id: bytes | None,
        now_ms: int,
        receipts: Callable[[list[bytes]], list[tuple[bytes, bytes]]] | None = None,
    ) -> list[bytes]:
        """We read the conversation up to and including `up_to_id` (all of it if None).
        Returns the incoming messages that were unread, in order.  `receipts` turns them
        into (op id, payload) outbox entries queued in the same transaction, so a crash
        cannot mark messages read without their read receipt on its way."""
        with self._transaction(write=True) as conn:
            # These terms match the partial index messages_unread.
            where = "peer = ? AND outgoing = 0 AND read_at IS NULL"
            params: list[object] = [peer]
            if up_to_id is not None:
                where += " AND (lamport, id) <= (?, ?)"
                params += [_lamport_of(conn, peer, up_to_id), up_to_id]
            rows = conn.execute(
                f"SELECT id FROM messages WHERE {where} ORDER BY lamport, id", params
            ).fetchall()
            ids = [cast(bytes, id) for (id,) in rows]
            conn.executemany(
                "UPDATE messages SET read_at = ? WHERE id = ? AND peer = ?",
                [(now_ms, id, peer) for id in ids],
            )
            for op_id, payload in receipts(ids) if receipts and ids else ():
                enqueue(conn, op_id, peer, payload, now_ms)
        return ids

    # -- reading history ---------------------------------------------------------------------

    def get_message(self, peer: str, id: bytes) -> StoredMessage | None:
        """The message `id` of the conversation `peer` (a fingerprint or `room:<hex>`)."""
        with self._transaction(write=False) as conn:
            return _get_message(conn, peer, id)

    def history(
        self, peer: str, *, before: bytes | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        """The `limit` messages of the conversation just before the message `before` (the
        newest if None), oldest first.  Page backwards by passing the first one's id."""
        check_int("limit", limit, 0)
        with self._transaction(write=False) as conn:
            if before is None:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM messages WHERE peer = ? {_NEWEST_FIRST}",
                    (peer, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM messages"
                    f" WHERE peer = ? AND (lamport, id) < (?, ?) {_NEWEST_FIRST}",
                    (peer, _lamport_of(conn, peer, before), before, limit),
                ).fetchall()
        return [_message(row) for row in reversed(rows)]

    def conversation(self, peer: str) -> list[StoredMessage]:
        """The whole conversation in order, for export."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE peer = ? ORDER BY lamport, id", (peer,)
            ).fetchall()
        return [_message(row) for row in rows]

    def search(self, query: str, *, limit: int = 50) -> list[StoredMessage]:
        """Messages in any conversation containing all of the words of `query` (ignoring
        case and diacritics), best match first.  Any text is a valid query: the words are
        searched for literally, with no query syntax."""
        check_int("limit", limit, 0)
        match = fts_query(query)
        if not match:
            return []
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_M_COLUMNS} FROM messages_fts"
                " JOIN messages AS m ON m.seq = messages_fts.rowid"
                " WHERE messages_fts MATCH ? AND m.deleted = 0"
                " ORDER BY messages_fts.rank, m.seq DESC LIMIT ?",
                (match, limit),
            ).fetchall()
        return [_message(row) for row in rows]


def fts_query(text: str) -> str:
    """An FTS5 query for the words of `text`, each an FTS5 string (implicitly ANDed), so no
    character keeps a query-syntax meaning, and each a prefix ("marke" finds "marketing"):
    people type the start of the word they remember.  A NUL would end the query early and
    a lone surrogate cannot be encoded, so both become separators.  '' if there are no
    words."""
    text = text.replace("\0", " ").encode("utf-8", "replace").decode("utf-8")
    return " ".join('"' + word.replace('"', '""') + '"*' for word in text.split())


# -- helpers (all run inside a caller's transaction) ------------------------------------------


def _insert_message(
    conn: sqlite3.Connection,
    id: bytes,
    peer: str,
    author: str,
    outgoing: bool,
    sent_at: int,
    lamport: int,
    body: str,
    now_ms: int,
) -> bool:
    """Insert unless the conversation holds the id already (then False).  An outgoing id is
    always new: a repeat is the caller's bug, and raises."""
    conflict = "" if outgoing else " ON CONFLICT (peer, id) DO NOTHING"
    cursor = conn.execute(
        "INSERT INTO messages (id, peer, author, outgoing, sent_at, lamport, stored_at, body)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, ?){conflict}",
        (id, peer, author, int(outgoing), sent_at, lamport, now_ms, body),
    )
    return cursor.rowcount > 0


def _op_applied(conn: sqlite3.Connection, op_id: bytes) -> bool:
    return conn.execute("SELECT 1 FROM applied_ops WHERE id = ?", (op_id,)).fetchone() is not None


def _record_op(conn: sqlite3.Connection, op_id: bytes, now_ms: int) -> None:
    # Operation ids, unlike message ids, are one space for all peers: each is made afresh
    # for one recipient and never shown to anyone else (room operations are not recorded
    # here), so no third party can know one in advance to have it skipped as a repeat.
    conn.execute("INSERT INTO applied_ops (id, applied_at) VALUES (?, ?)", (op_id, now_ms))


def _target_of(
    conn: sqlite3.Connection, op_id: bytes, target_id: bytes, author: str
) -> StoredMessage | None:
    """The message an incoming edit or delete may change, or None to ignore the operation:
    applied before, unknown target (not recorded, so a retry can still apply), or forged.
    Only the conversation with `author` is searched: the sender's own messages to us."""
    if _op_applied(conn, op_id):
        return None
    target = _get_message(conn, author, target_id)
    return target if target is not None and target.author == author else None


def _own_target(conn: sqlite3.Connection, target_id: bytes, me: str, peer: str) -> None:
    target = _get_message(conn, peer, target_id)
    if target is None:
        raise UnknownMessage(f"no message {target_id.hex()} with {peer}")
    if target.author != me:
        raise NotYourMessage(f"message {target_id.hex()} was written by {target.author}")
    if target.deleted:
        raise UnknownMessage(f"message {target_id.hex()} was deleted")


def _edit(conn: sqlite3.Connection, peer: str, id: bytes, body: str, edited_at: int) -> None:
    conn.execute(
        "UPDATE messages SET body = ?, edited_at = ? WHERE id = ? AND peer = ?",
        (body, edited_at, id, peer),
    )


def _delete(conn: sqlite3.Connection, peer: str, id: bytes) -> None:
    # The body goes (and with it the full-text entry); the row stays as a tombstone.
    conn.execute("UPDATE messages SET body = '', deleted = 1 WHERE id = ? AND peer = ?", (id, peer))


def _lamport_of(conn: sqlite3.Connection, peer: str, id: bytes) -> int:
    row = conn.execute(
        "SELECT lamport FROM messages WHERE id = ? AND peer = ?", (id, peer)
    ).fetchone()
    if row is None:
        raise UnknownMessage(f"no message {id.hex()} with {peer}")
    return cast(int, row[0])


def _get_message(conn: sqlite3.Connection, peer: str, id: bytes) -> StoredMessage | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM messages WHERE id = ? AND peer = ?", (id, peer)
    ).fetchone()
    return None if row is None else _message(row)


def _require(conn: sqlite3.Connection, peer: str, id: bytes) -> StoredMessage:
    message = _get_message(conn, peer, id)
    assert message is not None, "read back within the transaction that wrote it"
    return message


def _message(row: tuple[Any, ...]) -> StoredMessage:
    # The schema's types and CHECK constraints guarantee the types; flags are stored as 0/1.
    values = dict(zip(_FIELDS, row, strict=True))
    values["outgoing"] = bool(values["outgoing"])
    values["deleted"] = bool(values["deleted"])
    return StoredMessage(**values)


def _check_message(id: bytes, sent_at: int, lamport: int) -> None:
    check_id(id, "id")
    check_int("sent_at", sent_at)
    check_int("lamport", lamport, 0, MAX_LAMPORT)


def _id_list(ids: Sequence[bytes]) -> list[bytes]:
    if isinstance(ids, bytes | str):  # one id where a list was meant
        raise TypeError("ids must be a sequence of ids, not one")
    return list(ids)
