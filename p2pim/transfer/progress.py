"""Transfer progress: bytes done, a smoothed rate and an ETA, reported a few times a second."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from p2pim import events
from p2pim.storage import TransferRecord

# Both ends of a transfer connection:
IDLE_TIMEOUT = 300.0  # a transfer connection carrying nothing this long is dropped
STOP_TIMEOUT = 5.0  # an interrupted transfer may take this long to save where it stands

REPORT_INTERVAL = 0.25  # seconds between progress events of one transfer
RATE_WINDOW = 2.0  # seconds: how quickly the smoothed rate follows a change of speed


class Progress:
    """Counts bytes for one transfer; `due(now)` says when to report.  Time comes in as
    an argument, so this is tested without clocks."""

    def __init__(self, done: int, total: int, now: float) -> None:
        self.done = done
        self.total = total
        self.rate = 0.0
        self._sample_time = now
        self._sample_done = done
        self._reported = float("-inf")

    def add(self, count: int) -> None:
        self.done += count

    def due(self, now: float) -> bool:
        """True at most every REPORT_INTERVAL; updates the rate when it is."""
        if now - self._reported < REPORT_INTERVAL:
            return False
        self._reported = now
        elapsed = now - self._sample_time
        if elapsed > 0:
            instant = (self.done - self._sample_done) / elapsed
            weight = min(1.0, elapsed / RATE_WINDOW)
            self.rate = instant if self.rate == 0 else self.rate + weight * (instant - self.rate)
        self._sample_time, self._sample_done = now, self.done
        return True

    @property
    def eta(self) -> float | None:
        if self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


Emit = Callable[[events.NodeEvent], Awaitable[None]]


class Meter:
    """What every download and upload shares: the node's byte counters, and the events
    that report a transfer's progress (at most every REPORT_INTERVAL, and on `force`)."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.sent = 0
        self.received = 0

    async def report(
        self,
        record: TransferRecord,
        progress: Progress,
        index: int,
        file_done: int,
        file_size: int,
        *,
        force: bool = False,
    ) -> None:
        if progress.due(trio.current_time()) or force:
            await self._emit(
                events.TransferProgress(
                    peer=record.peer,
                    offer=record.offer.hex(),
                    outgoing=record.outgoing,
                    done=progress.done,
                    total=progress.total,
                    rate=progress.rate,
                    eta=progress.eta,
                    file_index=index,
                    file_done=file_done,
                    file_size=file_size,
                )
            )
