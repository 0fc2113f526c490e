"""Auto-away: "online" turns "away" after a spell without user activity, and back.

Only an away that this class set is undone by activity: a status the user chose stays.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio


class AutoAway:
    def __init__(
        self,
        idle_after: float,
        get_status: Callable[[], tuple[str, str]],
        set_status: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self.idle_after = idle_after
        self.active = False  # the current "away" is ours, not the user's (set_status keeps it)
        self._get_status = get_status
        self._set_status = set_status
        self._activity = trio.Event()
        self._count = 0
        self._last = trio.current_time()

    def note_activity(self) -> None:
        self._last = trio.current_time()
        self._count += 1
        self._activity.set()

    async def _activity_after(self, seen: int, deadline: float = math.inf) -> bool:
        """Wait for activity beyond the `seen`-th; False at the deadline."""
        with trio.move_on_at(deadline):
            while self._count == seen:
                self._activity = trio.Event()  # no await since the check: no lost wake-up
                await self._activity.wait()
            return True
        return False

    async def run(self) -> None:
        while True:
            seen = self._count
            if await self._activity_after(seen, self._last + self.idle_after):
                continue  # the user was active: the idle clock restarted
            status, text = self._get_status()
            if status == "online":
                await self._set_status("away", text)  # marks itself automatic
            await self._activity_after(seen)
            if self.active:
                await self._set_status("online", self._get_status()[1])
