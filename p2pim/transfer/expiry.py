"""When unanswered offers expire: one timer for all of them, reset whenever one changes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from p2pim.clock import now_ms
from p2pim.storage.transfers import Key

log = logging.getLogger(__name__)


class Deadlines:
    """Unanswered offers and when each expires (ms since the epoch); `run` calls
    `expire(key)` once an offer's deadline has passed (it checks the offer still waits)."""

    def __init__(self, expire: Callable[[Key], Awaitable[None]]) -> None:
        self._expire = expire
        self._deadlines: dict[Key, int] = {}
        self._changed = trio.Event()

    def __contains__(self, key: Key) -> bool:
        return key in self._deadlines

    def set(self, key: Key, expires_at: int) -> None:
        self._deadlines[key] = expires_at
        self._changed.set()

    def drop(self, key: Key) -> None:
        """The offer was answered or ended: it no longer expires."""
        self._deadlines.pop(key, None)

    async def run(self) -> None:
        while True:
            self._changed = trio.Event()
            now = now_ms()
            for key, deadline in list(self._deadlines.items()):
                if deadline <= now:
                    del self._deadlines[key]
                    try:
                        await self._expire(key)
                    except Exception:  # the disk failed: the offer stays, the node goes on
                        log.exception("could not expire an offer")
            soonest = min(self._deadlines.values(), default=None)
            with trio.move_on_after(3600 if soonest is None else (soonest - now_ms()) / 1000):
                await self._changed.wait()
