"""Group commit: concurrent store calls share one transaction (one fsync), yet each call
still succeeds or fails on its own, in arrival order, and cancellation stays honest."""

from __future__ import annotations

import math
import random
from pathlib import Path

import outcome
import pytest
import trio

from p2pim.storage import Database, StorageError, Store


def test_a_failing_call_is_rolled_back_alone(db: Database) -> None:
    def half_written_then_fails() -> None:
        with db._transaction(write=True) as conn:
            conn.execute("INSERT INTO contact_groups (name, member) VALUES ('ghost', 'x')")
            raise ValueError("boom")

    results = db.run_batch(
        [
            lambda: db.tick_lamport(),
            half_written_then_fails,
            lambda: db.tick_lamport(),
        ]
    )
    assert [type(r) for r in results] == [outcome.Value, outcome.Error, outcome.Value]
    assert [r.unwrap() for r in (results[0], results[2])] == [1, 2]  # in order
    with pytest.raises(ValueError, match="boom"):
        results[1].unwrap()
    assert "ghost" not in db.groups()  # its write went with it
    assert db.tick_lamport() == 3  # the others committed


def test_a_closed_database_fails_every_call_in_the_batch(db: Database) -> None:
    db.close()
    with pytest.raises(StorageError, match="closed"):
        db.run_batch([lambda: db.tick_lamport()])


async def test_concurrent_writers_share_commits_and_keep_arrival_order(path: Path) -> None:
    batches: list[int] = []
    async with Store.open(path) as store:
        real = store._db.run_batch

        def counting(calls: list[object]) -> list[outcome.Outcome[object]]:
            batches.append(len(calls))
            return real(calls)  # type: ignore[arg-type]

        store._db.run_batch = counting  # type: ignore[method-assign]
        ticks: list[tuple[int, int]] = []

        async def writer(i: int) -> None:
            ticks.append((i, await store.run(Database.tick_lamport)))

        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(writer, i)
                await trio.lowlevel.checkpoint()  # started (and queued) in this order
    assert sum(batches) == 200
    assert len(batches) < 50, batches  # writers that queue behind a commit share the next
    assert sorted(t for _, t in ticks) == list(range(1, 201))
    assert [t for _, t in sorted(ticks)] == list(range(1, 201))  # arrival order kept


async def test_a_call_cancelled_before_its_turn_never_runs(store: Store) -> None:
    release = trio.Event()
    real = store._db.run_batch

    def slow(calls: list[object]) -> list[outcome.Outcome[object]]:
        trio.from_thread.run_sync(release.set)  # the first batch is on the "disk" now
        return real(calls)  # type: ignore[arg-type]

    store._db.run_batch = slow  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run, Database.tick_lamport)
        await release.wait()
        with trio.move_on_after(0) as scope:
            await store.run(Database.tick_lamport)
        assert scope.cancelled_caught
    store._db.run_batch = real  # type: ignore[method-assign]
    assert await store.run(Database.tick_lamport) == 2  # the cancelled tick never happened


async def test_callers_cancelled_at_any_moment_never_strand_the_others(path: Path) -> None:
    """Whoever takes a batch runs it to the end, even when that caller is cancelled as
    it starts: the batch holds other callers' calls, and they must all get an answer."""
    rng = random.Random(7)
    async with Store.open(path) as store:
        answered = 0

        async def caller(delay: float) -> None:
            nonlocal answered
            with trio.move_on_after(delay):
                await store.run(Database.tick_lamport)
                answered += 1

        delays = [rng.choice([0, 0.0001, 0.001, math.inf]) for _ in range(20 * 50)]
        with trio.fail_after(20):
            for start in range(0, len(delays), 50):
                async with trio.open_nursery() as nursery:
                    for delay in delays[start : start + 50]:
                        nursery.start_soon(caller, delay)
        ticks = await store.run(Database.tick_lamport) - 1
    assert answered <= ticks <= len(delays)
    assert answered >= delays.count(math.inf)  # those never cancelled all got through
