"""Transfer progress: bytes done, a smoothed rate and an ETA, reported a few times a second."""

from __future__ import annotations

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
