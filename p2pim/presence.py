"""Our own presence (`OwnPresence`): status, status text and nick, and auto-away.

Auto-away: "online" turns "away" after a spell without user activity, and back.  Only an
away that `AutoAway` set is undone by activity: a status the user chose stays.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping

import trio

from p2pim import events
from p2pim.config import NodeConfig
from p2pim.net.link import PeerLink
from p2pim.settings import Settings, check_nick
from p2pim.wire.messages import (
    MAX_STATUS_TEXT_BYTES,
    PROTOCOL_VERSION,
    STATUSES,
    Hello,
    Presence,
)

log = logging.getLogger(__name__)


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


class OwnPresence:
    """Our own presence: the status, its text and the nick that peers, mDNS and the profile
    see, changed by the user or by auto-away (when `config.auto_away_after` is set)."""

    def __init__(
        self,
        config: NodeConfig,
        links: Mapping[str, PeerLink],
        emit: Callable[[events.NodeEvent], Awaitable[None]],
        advertise: Callable[[str, str], Awaitable[None]],
    ) -> None:
        if config.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        self.config = config  # its nick is ours: new sessions' hellos, mDNS after a restart
        self.current = Presence(config.status, config.status_text)
        self._links = links
        self._emit = emit
        self._advertise = advertise  # the mDNS record's status and nick
        self._auto_away: AutoAway | None = None

    def start(self, nursery: trio.Nursery) -> None:
        """Auto-away runs in `nursery`, if configured."""
        if self.config.auto_away_after is not None:
            self._auto_away = AutoAway(
                self.config.auto_away_after,
                lambda: (self.current.status, self.current.status_text),
                functools.partial(self.set_status, automatic=True),
            )
            nursery.start_soon(self._auto_away.run)

    def hello(self, port: int) -> Hello:
        """What we tell a peer about ourselves as a session opens."""
        return Hello(
            PROTOCOL_VERSION,
            self.config.nick,
            self.current.status,
            self.current.status_text,
            port,
            round(self.config.presence_timeout * 1000),
        )

    def note_activity(self) -> None:
        if self._auto_away is not None:
            self._auto_away.note_activity()

    async def set_status(self, status: str, text: str = "", *, automatic: bool = False) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if not isinstance(text, str) or len(text.encode()) > MAX_STATUS_TEXT_BYTES:
            raise ValueError(f"status text is longer than {MAX_STATUS_TEXT_BYTES} bytes")
        self.current = Presence(status, text)
        if self._auto_away is not None:
            self._auto_away.active = automatic  # decided before any await: no race
        await self._announce(automatic=automatic)
        if not automatic:  # a restart brings back the user's choice, not auto-away's
            await self._remember(status=status, status_text=text)

    async def set_nick(self, nick: str) -> None:
        problem = check_nick(nick)
        if problem is not None:
            raise ValueError(problem)
        self.config.nick = nick
        await self._announce()
        await self._remember(nick=nick)

    async def _announce(self, *, automatic: bool = False) -> None:
        presence = Presence(self.current.status, self.current.status_text, self.config.nick)
        status, text = presence.status, presence.status_text
        await self._emit(events.SelfChanged(presence.nick, status, text, automatic))
        async with trio.open_nursery() as nursery:
            for link in list(self._links.values()):
                nursery.start_soon(link.send_quietly, presence, self.config.presence_timeout)
            nursery.start_soon(self._advertise, presence.status, presence.nick)

    async def _remember(self, **changes: str) -> None:
        """Keep what the user chose in the profile's settings, for the next start."""
        if self.config.profile is None:
            return
        remember = functools.partial(Settings.remember, self.config.profile, **changes)
        try:
            await trio.to_thread.run_sync(remember)
        except OSError as exc:  # the change holds until the node stops; say why it won't after
            log.warning("could not keep %s in the profile: %s", " and ".join(changes), exc)
