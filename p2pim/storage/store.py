"""`Store`: the async face of `Database` for trio."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, TypeVarTuple

import outcome
import trio

from p2pim.api import StoredMessage
from p2pim.storage.core import StorageFull
from p2pim.storage.database import Database
from p2pim.storage.peers import PeerRecord
from p2pim.storage.rooms import RoomPost
from p2pim.storage.transfers import FileRecord, Queued, TransferRecord
from p2pim.transfer.state import Input
from p2pim.trust import Trust
from p2pim.wire.messages import Outcome

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
P = ParamSpec("P")


@dataclass(eq=False, slots=True)
class _Call:
    fn: Callable[[], Any]
    done: trio.Event = field(default_factory=trio.Event)
    result: outcome.Outcome[Any] | None = None


class Store:
    """The async face of `Database` for trio.  Calls run in a worker thread, one batch at
    a time, in the order the calls arrived, and the trio thread never blocks on the disk.

    Cancelling a caller never interrupts a transaction: the thread call is not abandoned,
    so a write has either committed or not by the time the cancellation is delivered."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._turn = trio.Lock()  # fair: callers take turns in arrival order
        self._pending: list[_Call] = []
        self.disk_full = False  # the last write failed for want of space, none has passed since
        self._disk_changed = trio.Event()
        self._writes_seen = database.writes_committed

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
        """Group commit: calls that arrive while another batch is on the disk wait for
        their turn and then run together in one transaction (`Database.run_batch`), so
        N concurrent writers cost one fsync, not N.  Order is arrival order."""
        call = _Call(functools.partial(fn, *args))
        self._pending.append(call)
        try:
            async with self._turn:
                if not call.done.is_set():  # an earlier turn may have run it already
                    await self._run_pending()
        except trio.Cancelled:
            if call in self._pending:  # never started: it will not run
                self._pending.remove(call)
                raise
            with trio.CancelScope(shield=True):  # started: report only once it is over
                await call.done.wait()
            raise
        assert call.result is not None
        value: T = call.result.unwrap()
        return value

    async def _run_pending(self) -> None:
        batch, self._pending = self._pending, []
        # Shielded: the batch holds other callers' calls, so once taken it must run and
        # report to each of them; the transaction is committed or not, never half.
        with trio.CancelScope(shield=True):
            ran = await outcome.acapture(
                trio.to_thread.run_sync, self._db.run_batch, [c.fn for c in batch]
            )
        results = ran.unwrap() if isinstance(ran, outcome.Value) else [ran] * len(batch)
        self._note_space(results)
        for call, result in zip(batch, results, strict=True):
            call.result = result
            call.done.set()

    def _note_space(self, results: Sequence[outcome.Outcome[Any]]) -> None:
        """Full: a write failed for want of space.  Not full any more: a write committed."""
        full = self.disk_full
        if any(isinstance(r, outcome.Error) and isinstance(r.error, StorageFull) for r in results):
            full = True
        elif self._db.writes_committed != self._writes_seen:
            full = False
        self._writes_seen = self._db.writes_committed
        if full != self.disk_full:
            self.disk_full = full
            self._disk_changed.set()
            self._disk_changed = trio.Event()

    async def disk_full_differs(self, reported: bool) -> bool:
        """Wait until `disk_full` is not `reported` (what the caller last told); returns it."""
        while self.disk_full == reported:
            await self._disk_changed.wait()
        return self.disk_full

    async def run(
        self, fn: Callable[Concatenate[Database, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """One `Database` call, typed: `await store.run(Database.history, peer, limit=n)`."""
        return await self._run(functools.partial(fn, self._db, *args, **kwargs))

    async def atomically(self, fn: Callable[[Database], T]) -> T:
        """Run several `Database` calls as one transaction: all or nothing, one commit."""
        return await self._run(fn, self._db)

    async def aclose(self) -> None:
        async with self._turn:
            await trio.to_thread.run_sync(self._db.close)

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

    # -- messages ------------------------------------------------------------------------

    async def tick_lamport(self, observed: int = 0) -> int:
        return await self._run(self._db.tick_lamport, observed)

    async def observe_lamport(self, observed: int) -> None:
        await self._run(self._db.observe_lamport, observed)

    async def queue_message(
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
        return await self._run(
            self._db.queue_message, id, peer, author, sent_at, lamport, body, payload, now_ms
        )

    async def queue_operation(self, op_id: bytes, peer: str, payload: bytes, now_ms: int) -> None:
        await self._run(self._db.queue_operation, op_id, peer, payload, now_ms)

    async def edit_own(
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
        return await self._run(
            self._db.edit_own, op_id, target_id, me, body, edited_at, payload, peer, now_ms
        )

    async def delete_own(
        self, op_id: bytes, target_id: bytes, me: str, payload: bytes, peer: str, now_ms: int
    ) -> StoredMessage:
        return await self._run(self._db.delete_own, op_id, target_id, me, payload, peer, now_ms)

    async def store_incoming(
        self,
        id: bytes,
        peer: str,
        author: str,
        sent_at: int,
        lamport: int,
        body: str,
        now_ms: int,
    ) -> StoredMessage | None:
        return await self._run(
            self._db.store_incoming, id, peer, author, sent_at, lamport, body, now_ms
        )

    async def apply_edit(
        self,
        op_id: bytes,
        target_id: bytes,
        author: str,
        body: str,
        edited_at: int,
        now_ms: int,
    ) -> StoredMessage | None:
        return await self._run(
            self._db.apply_edit, op_id, target_id, author, body, edited_at, now_ms
        )

    async def apply_delete(
        self, op_id: bytes, target_id: bytes, author: str, now_ms: int
    ) -> StoredMessage | None:
        return await self._run(self._db.apply_delete, op_id, target_id, author, now_ms)

    async def mark_delivered(self, peer: str, ids: Sequence[bytes], now_ms: int) -> list[bytes]:
        return await self._run(self._db.mark_delivered, peer, ids, now_ms)

    async def mark_read_by_peer(
        self, op_id: bytes, ids: Sequence[bytes], peer: str, now_ms: int
    ) -> list[bytes]:
        return await self._run(self._db.mark_read_by_peer, op_id, ids, peer, now_ms)

    async def mark_read_locally(
        self,
        peer: str,
        up_to_id: bytes | None,
        now_ms: int,
        receipts: Callable[[list[bytes]], list[tuple[bytes, bytes]]] | None = None,
    ) -> list[bytes]:
        return await self._run(self._db.mark_read_locally, peer, up_to_id, now_ms, receipts)

    async def outbox(
        self, peer: str, after_seq: int = 0, limit: int = 256
    ) -> list[tuple[int, bytes, bytes]]:
        return await self._run(self._db.outbox, peer, after_seq, limit)

    async def outbox_peers(self) -> list[str]:
        return await self._run(self._db.outbox_peers)

    async def outbox_size(self, peer: str) -> int:
        return await self._run(self._db.outbox_size, peer)

    async def get_message(self, peer: str, id: bytes) -> StoredMessage | None:
        return await self._run(self._db.get_message, peer, id)

    async def history(
        self, peer: str, *, before: bytes | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        return await self._run(lambda: self._db.history(peer, before=before, limit=limit))

    async def conversation(self, peer: str) -> list[StoredMessage]:
        return await self._run(self._db.conversation, peer)

    async def search(self, query: str, *, limit: int = 50) -> list[StoredMessage]:
        return await self._run(lambda: self._db.search(query, limit=limit))

    # -- transfers -----------------------------------------------------------------------

    async def create_offer(
        self,
        offer: bytes,
        peers: Sequence[str],
        files: Sequence[FileRecord],
        parts: dict[str, list[Queued]],
        now_ms: int,
        expires_at: int,
        room: bytes = b"",
    ) -> None:
        await self._run(self._db.create_offer, offer, peers, files, parts, now_ms, expires_at, room)

    async def record_reply(
        self, op_id: bytes, offer: bytes, peer: str, accepted: Sequence[int], now_ms: int
    ) -> TransferRecord | None:
        return await self._run(self._db.record_reply, op_id, offer, peer, accepted, now_ms)

    async def record_result(
        self,
        op_id: bytes,
        offer: bytes,
        peer: str,
        outcomes: Sequence[Outcome],
        reason: str,
        now_ms: int,
    ) -> TransferRecord | None:
        return await self._run(self._db.record_result, op_id, offer, peer, outcomes, reason, now_ms)

    async def store_offer_part(
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
        return await self._run(
            self._db.store_offer_part,
            op_id, offer, peer, total_files, files, now_ms, expires_at, room,
        )  # fmt: skip

    async def answer_offer(
        self,
        offer: bytes,
        peer: str,
        placement: dict[int, str],
        directory: str | None,
        reply: Queued,
        now_ms: int,
    ) -> TransferRecord:
        return await self._run(
            self._db.answer_offer, offer, peer, placement, directory, reply, now_ms
        )

    async def save_progress(self, offer: bytes, peer: str, index: int, done: int) -> None:
        await self._run(self._db.save_progress, offer, peer, index, done)

    async def record_sent(self, offer: bytes, peer: str, sent: dict[int, int]) -> None:
        await self._run(self._db.record_sent, offer, peer, sent)

    async def finish_file(
        self, offer: bytes, peer: str, index: int, outcome: Outcome, saved_as: str | None
    ) -> None:
        await self._run(self._db.finish_file, offer, peer, index, outcome, saved_as)

    async def finish_transfer(
        self,
        offer: bytes,
        peer: str,
        outgoing: bool,
        event: Input,
        reason: str,
        message: Queued | None,
        now_ms: int,
    ) -> TransferRecord | None:
        return await self._run(
            self._db.finish_transfer, offer, peer, outgoing, event, reason, message, now_ms
        )

    async def record_cancel(
        self, op_id: bytes, offer: bytes, peer: str, reason: str, now_ms: int
    ) -> TransferRecord | None:
        return await self._run(self._db.record_cancel, op_id, offer, peer, reason, now_ms)

    async def get_transfer(self, offer: bytes, peer: str, outgoing: bool) -> TransferRecord | None:
        return await self._run(self._db.get_transfer, offer, peer, outgoing)

    async def transfers(self, *, live_only: bool = False) -> list[TransferRecord]:
        return await self._run(lambda: self._db.transfers(live_only=live_only))

    # -- rooms and groups ------------------------------------------------------------------

    async def store_room_event(
        self, room: bytes, author: str, seq: int, id: bytes, payload: bytes, sig: bytes, now_ms: int
    ) -> bool:
        return await self._run(
            self._db.store_room_event, room, author, seq, id, payload, sig, now_ms
        )

    async def room_events(self, room: bytes) -> list[tuple[bytes, bytes]]:
        return await self._run(self._db.room_events, room)

    async def room_ids(self) -> list[bytes]:
        return await self._run(self._db.room_ids)

    async def sync_room_posts(
        self, conversation: str, posts: Sequence[RoomPost], now_ms: int
    ) -> list[bytes]:
        return await self._run(self._db.sync_room_posts, conversation, posts, now_ms)

    async def decline_room(self, room: bytes, conversation: str) -> None:
        await self._run(self._db.decline_room, room, conversation)

    async def declined_rooms(self) -> set[bytes]:
        return await self._run(self._db.declined_rooms)

    async def set_group(self, name: str, members: Sequence[str]) -> None:
        await self._run(self._db.set_group, name, members)

    async def groups(self) -> dict[str, list[str]]:
        return await self._run(self._db.groups)

    # -- block and mute --------------------------------------------------------------------

    async def block_peer(self, fingerprint: str, now_ms: int) -> bool:
        return await self._run(self._db.block_peer, fingerprint, now_ms)

    async def unblock_peer(self, fingerprint: str) -> bool:
        return await self._run(self._db.unblock_peer, fingerprint)

    async def blocked_peers(self) -> list[str]:
        return await self._run(self._db.blocked_peers)

    async def mute_conversation(self, conversation: str, now_ms: int) -> bool:
        return await self._run(self._db.mute_conversation, conversation, now_ms)

    async def unmute_conversation(self, conversation: str) -> bool:
        return await self._run(self._db.unmute_conversation, conversation)

    async def muted_conversations(self) -> list[str]:
        return await self._run(self._db.muted_conversations)
