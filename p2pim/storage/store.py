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

from p2pim.storage.core import StorageFull
from p2pim.storage.database import Database

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
