"""File transfers: offers, per-file progress and outcomes, in both directions.

A transfer is one offer between us and one peer (`outgoing` tells the direction), so an
offer sent to three peers is three transfers sharing an offer id and a file list.  The
messages that drive it (offer parts, the reply, the result, a cancel) go through the outbox
in the same transaction as the state they announce, and incoming ones are applied once
(their ids go into `applied_ops`): a crash or a resend never applies anything twice.

Its states and the moves between them are the table in `p2pim.transfer.state`: every
state written here is the one `advance` gives, so a move the table lacks is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from p2pim.api import StorageError
from p2pim.storage.outbox import OutboxTables, check_id, enqueue
from p2pim.transfer.state import (
    INCOMING_START,
    LIVE,
    OUTGOING_START,
    Input,
    TransferState,
    advance,
)
from p2pim.wire.messages import CANCEL_EXPIRED, Outcome

Queued = tuple[bytes, bytes]  # (operation id, encoded wire message) for the outbox
Key = tuple[bytes, str, bool]  # a transfer's: (offer, peer, outgoing)


class UnknownTransfer(StorageError):
    """No such transfer, or not in a state that allows what was asked."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    index: int
    path: str  # relative, "/"-separated; incoming: sanitised, as it will be saved
    size: int
    hash: bytes
    source: str | None = None  # outgoing: the local file
    mtime_ns: int | None = None  # outgoing: its modification time when offered
    accepted: bool = False
    done: int = 0  # incoming: bytes durably in the partial file; outgoing: bytes sent
    outcome: Outcome | None = None
    saved_as: str | None = None  # incoming: where it landed, relative to `directory`


@dataclass(frozen=True, slots=True)
class TransferRecord:
    offer: bytes
    peer: str
    outgoing: bool
    state: TransferState
    total_files: int
    created_at: int  # ms since the epoch
    expires_at: int  # ms since the epoch: unanswered by then, the offer expires
    directory: str | None  # incoming, once accepted: where files go
    reason: str
    files: list[FileRecord] = field(default_factory=list)
    room: bytes = b""  # the room the offer was shared in; empty: a private offer

    @property
    def key(self) -> Key:
        return self.offer, self.peer, self.outgoing


class TransferTables(OutboxTables):
    """The transfer methods of `Database`; each is one transaction."""

    # -- sending ---------------------------------------------------------------------------

    def create_offer(
        self,
        offer: bytes,
        peers: Sequence[str],
        files: Sequence[FileRecord],
        parts: dict[str, list[Queued]],
        now_ms: int,
        expires_at: int,
        room: bytes = b"",
    ) -> None:
        """Record an outgoing offer to each of `peers` (shared in `room`, if not empty) and
        queue its parts to each."""
        check_id(offer, "offer")
        with self._transaction(write=True) as conn:
            for peer in peers:
                _insert_transfer(
                    conn, offer, peer, True, OUTGOING_START, len(files), now_ms, expires_at, room
                )
                _insert_files(conn, offer, peer, True, files)
                for op_id, payload in parts[peer]:
                    enqueue(conn, op_id, peer, payload, now_ms)

    def record_reply(
        self, op_id: bytes, offer: bytes, peer: str, accepted: Sequence[int], now_ms: int
    ) -> TransferRecord | None:
        """Apply `peer`'s answer to our offer once.  Returns the transfer as it now is
        (its state tells whether the answer counted), or None if it was a repeat or the
        offer is unknown."""
        with self._transaction(write=True) as conn:
            if not _apply_once(conn, op_id, now_ms):
                return None
            record = _load(conn, offer, peer, True)
            if record is None:
                return None
            if record.state is TransferState.OFFERED:
                wanted = [i for i in accepted if 0 <= i < record.total_files]
                conn.executemany(
                    "UPDATE transfer_files SET accepted = 1"
                    " WHERE offer = ? AND peer = ? AND outgoing = 1 AND idx = ?",
                    [(offer, peer, i) for i in wanted],
                )
                _advance(conn, record, Input.ACCEPT if wanted else Input.DECLINE, "")
            return _load(conn, offer, peer, True)

    def record_result(
        self,
        op_id: bytes,
        offer: bytes,
        peer: str,
        outcomes: Sequence[Outcome],
        reason: str,
        now_ms: int,
    ) -> TransferRecord | None:
        """Apply the receiver's verdict once; the transfer ends completed, or failed for
        `reason` (empty if every accepted file arrived)."""
        with self._transaction(write=True) as conn:
            if not _apply_once(conn, op_id, now_ms):
                return None
            record = _load(conn, offer, peer, True)
            if record is None or record.state is not TransferState.ACCEPTED:
                return None
            for file in record.files:
                outcome = outcomes[file.index] if file.index < len(outcomes) else Outcome.CANCELLED
                _set_outcome(conn, offer, peer, True, file.index, outcome, None)
            _advance(conn, record, Input.RESULT_FAILED if reason else Input.RESULT_OK, reason)
            return _load(conn, offer, peer, True)

    # -- receiving -------------------------------------------------------------------------

    def store_offer_part(
        self,
        op_id: bytes,
        offer: bytes,
        peer: str,
        total_files: int,
        files: Sequence[FileRecord],
        now_ms: int,
        expires_at: int,
        room: bytes = b"",
    ) -> TransferRecord | None:
        """Store one part of `peer`'s offer once (the first part stored says which room
        it is shared in).  Returns the transfer when this part completed it (it is now
        offered), else None."""
        with self._transaction(write=True) as conn:
            if not _apply_once(conn, op_id, now_ms):
                return None
            record = _load(conn, offer, peer, False)
            if record is None:
                _insert_transfer(
                    conn, offer, peer, False, INCOMING_START, total_files, now_ms, expires_at, room
                )
            elif record.state is not TransferState.ARRIVING or record.total_files != total_files:
                return None  # a part of something already complete, or inconsistent
            _insert_files(conn, offer, peer, False, [f for f in files if f.index < total_files])
            (count,) = conn.execute(
                "SELECT count(*) FROM transfer_files WHERE offer = ? AND peer = ? AND outgoing = 0",
                (offer, peer),
            ).fetchone()
            if count < total_files:
                return None
            _advance(conn, _require(conn, offer, peer, False), Input.PARTS_COMPLETE, "")
            return _load(conn, offer, peer, False)

    def answer_offer(
        self,
        offer: bytes,
        peer: str,
        placement: dict[int, str],
        directory: str | None,
        reply: Queued,
        now_ms: int,
    ) -> TransferRecord:
        """Accept the files in `placement` (index -> relative path to save under) into
        `directory`, or decline (empty `placement`), and queue the reply."""
        with self._transaction(write=True) as conn:
            record = _load(conn, offer, peer, False)
            if record is None or record.state is not TransferState.OFFERED:
                raise UnknownTransfer("no such offer is waiting for an answer")
            conn.executemany(
                "UPDATE transfer_files SET accepted = 1, path = ?"
                " WHERE offer = ? AND peer = ? AND outgoing = 0 AND idx = ?",
                [(path, offer, peer, i) for i, path in placement.items()],
            )
            conn.execute(
                "UPDATE transfers SET directory = ? WHERE offer = ? AND peer = ? AND outgoing = 0",
                (directory, offer, peer),
            )
            _advance(conn, record, Input.ACCEPT if placement else Input.DECLINE, "")
            enqueue(conn, reply[0], peer, reply[1], now_ms)
            return _require(conn, offer, peer, False)

    def save_progress(self, offer: bytes, peer: str, index: int, done: int) -> None:
        """`done` bytes of an incoming file are durably in its partial file."""
        with self._transaction(write=True) as conn:
            conn.execute(
                "UPDATE transfer_files SET done = ?"
                " WHERE offer = ? AND peer = ? AND outgoing = 0 AND idx = ?",
                (done, offer, peer, index),
            )

    def record_sent(self, offer: bytes, peer: str, sent: dict[int, int]) -> None:
        """Bytes sent so far of files of an outgoing transfer (index -> bytes), at once."""
        with self._transaction(write=True) as conn:
            conn.executemany(
                "UPDATE transfer_files SET done = ?"
                " WHERE offer = ? AND peer = ? AND outgoing = 1 AND idx = ?",
                [(done, offer, peer, index) for index, done in sent.items()],
            )

    def finish_file(
        self, offer: bytes, peer: str, index: int, outcome: Outcome, saved_as: str | None
    ) -> None:
        with self._transaction(write=True) as conn:
            _set_outcome(conn, offer, peer, False, index, outcome, saved_as)

    # -- either side -----------------------------------------------------------------------

    def finish_transfer(
        self,
        offer: bytes,
        peer: str,
        outgoing: bool,
        event: Input,
        reason: str,
        message: Queued | None,
        now_ms: int,
    ) -> TransferRecord | None:
        """End a live transfer by `event` (files without an outcome become cancelled) and
        queue `message` (our result or cancel) to the peer.  None if it had already ended;
        `IllegalTransition` if `event` does not end it from where it stands."""
        with self._transaction(write=True) as conn:
            record = _load(conn, offer, peer, outgoing)
            if record is None or record.state not in LIVE:
                return None
            _end(conn, record, event, reason)
            if message is not None:
                enqueue(conn, message[0], peer, message[1], now_ms)
            return _require(conn, offer, peer, outgoing)

    def record_cancel(
        self, op_id: bytes, offer: bytes, peer: str, reason: str, now_ms: int
    ) -> TransferRecord | None:
        """`peer` gave up on the offer (whichever side we are on): apply once."""
        with self._transaction(write=True) as conn:
            if not _apply_once(conn, op_id, now_ms):
                return None
            for outgoing in (True, False):
                record = _load(conn, offer, peer, outgoing)
                if record is not None and record.state in LIVE:
                    _end(
                        conn,
                        record,
                        Input.EXPIRE if reason == CANCEL_EXPIRED else Input.CANCEL,
                        reason,
                    )
                    return _require(conn, offer, peer, outgoing)
            return None

    def get_transfer(self, offer: bytes, peer: str, outgoing: bool) -> TransferRecord | None:
        with self._transaction(write=False) as conn:
            return _load(conn, offer, peer, outgoing)

    def transfers(self, *, live_only: bool = False) -> list[TransferRecord]:
        """Every transfer (or only live ones), newest first."""
        states = sorted(LIVE) if live_only else []
        where = f"WHERE state IN ({', '.join('?' * len(states))})" if live_only else ""
        with self._transaction(write=False) as conn:
            keys = conn.execute(
                f"SELECT offer, peer, outgoing FROM transfers {where} ORDER BY created_at DESC",
                states,
            ).fetchall()
            return [_require(conn, offer, peer, bool(out)) for offer, peer, out in keys]


# -- helpers (each runs inside its caller's transaction) ----------------------------------------


def _apply_once(conn: sqlite3.Connection, op_id: bytes, now_ms: int) -> bool:
    check_id(op_id, "op_id")
    return bool(
        conn.execute(
            "INSERT OR IGNORE INTO applied_ops (id, applied_at) VALUES (?, ?)", (op_id, now_ms)
        ).rowcount
    )


def _insert_transfer(
    conn: sqlite3.Connection,
    offer: bytes,
    peer: str,
    outgoing: bool,
    state: TransferState,
    total_files: int,
    now_ms: int,
    expires_at: int,
    room: bytes,
) -> None:
    conn.execute(
        "INSERT INTO transfers (offer, peer, outgoing, state, total_files, created_at,"
        " expires_at, room) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (offer, peer, int(outgoing), state, total_files, now_ms, expires_at, room or None),
    )


def _insert_files(
    conn: sqlite3.Connection, offer: bytes, peer: str, outgoing: bool, files: Sequence[FileRecord]
) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO transfer_files (offer, peer, outgoing, idx, path, size, hash,"
        " source, mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (offer, peer, int(outgoing), f.index, f.path, f.size, f.hash, f.source, f.mtime_ns)
            for f in files
        ],
    )


def _advance(conn: sqlite3.Connection, record: TransferRecord, event: Input, reason: str) -> None:
    """The one writer of a transfer's state: where `event` takes it, by the table."""
    conn.execute(
        "UPDATE transfers SET state = ?, reason = ? WHERE offer = ? AND peer = ? AND outgoing = ?",
        (advance(record.state, event), reason, record.offer, record.peer, int(record.outgoing)),
    )


def _end(conn: sqlite3.Connection, record: TransferRecord, event: Input, reason: str) -> None:
    """To a final state; accepted files without an outcome were cut short."""
    conn.execute(
        "UPDATE transfer_files SET outcome = ?"
        " WHERE offer = ? AND peer = ? AND outgoing = ? AND accepted = 1 AND outcome IS NULL",
        (Outcome.CANCELLED, record.offer, record.peer, int(record.outgoing)),
    )
    _advance(conn, record, event, reason)


def _set_outcome(
    conn: sqlite3.Connection,
    offer: bytes,
    peer: str,
    outgoing: bool,
    index: int,
    outcome: Outcome,
    saved_as: str | None,
) -> None:
    conn.execute(
        "UPDATE transfer_files SET outcome = ?, saved_as = ?"
        " WHERE offer = ? AND peer = ? AND outgoing = ? AND idx = ?",
        (outcome, saved_as, offer, peer, int(outgoing), index),
    )


def _load(
    conn: sqlite3.Connection, offer: bytes, peer: str, outgoing: bool
) -> TransferRecord | None:
    row = conn.execute(
        "SELECT state, total_files, created_at, expires_at, directory, reason, room"
        " FROM transfers"
        " WHERE offer = ? AND peer = ? AND outgoing = ?",
        (offer, peer, int(outgoing)),
    ).fetchone()
    if row is None:
        return None
    files = [
        FileRecord(
            index=idx,
            path=path,
            size=size,
            hash=hash,
            source=source,
            mtime_ns=mtime_ns,
            accepted=bool(acc),
            done=done,
            outcome=None if outcome is None else Outcome(outcome),
            saved_as=saved_as,
        )
        for idx, path, size, hash, source, mtime_ns, acc, done, outcome, saved_as in conn.execute(
            "SELECT idx, path, size, hash, source, mtime_ns, accepted, done, outcome, saved_as"
            " FROM transfer_files WHERE offer = ? AND peer = ? AND outgoing = ? ORDER BY idx",
            (offer, peer, int(outgoing)),
        )
    ]
    state, total_files, created_at, expires_at, directory, reason, room = row
    return TransferRecord(
        offer=offer,
        peer=peer,
        outgoing=outgoing,
        state=TransferState(state),
        total_files=total_files,
        created_at=created_at,
        expires_at=expires_at,
        directory=directory,
        reason=reason,
        files=files,
        room=room or b"",
    )


def _require(conn: sqlite3.Connection, offer: bytes, peer: str, outgoing: bool) -> TransferRecord:
    record = _load(conn, offer, peer, outgoing)
    assert record is not None
    return record
