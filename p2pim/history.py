"""`History`: the stored conversations as the user is shown them.

Pages of a conversation or a room, search hits and exports, read from the store.  What
peers we blocked wrote in a shared room stays in the room's log (every member keeps the
same log) but is left out here; a short page still means "nothing older".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from p2pim.api import ROOM_PREFIX, Notice, StoredMessage
from p2pim.directory import PeerDirectory
from p2pim.export import export
from p2pim.rooms.manager import Rooms, conversation
from p2pim.storage import Database, Store

MAX_PAGE = 1000


async def _page(
    fetch: Callable[[bytes | None], Awaitable[list[StoredMessage]]],
    before: bytes | None,
    limit: int,
    hidden: Callable[[StoredMessage], bool],
) -> list[StoredMessage]:
    """`limit` lines before `before`, without the hidden ones: filled from further back,
    so a short page still means "nothing older"."""
    page = await fetch(before)
    shown = [m for m in page if not hidden(m)]
    while len(shown) < limit and len(page) == limit:
        page = await fetch(page[0].id)
        shown[:0] = [m for m in page if not hidden(m)]
    return shown[-limit:]


class History:
    def __init__(self, store: Store, directory: PeerDirectory, rooms: Rooms) -> None:
        self._store = store
        self._directory = directory
        self._rooms = rooms

    async def messages(self, peer: str, before: bytes | None, limit: int) -> list[StoredMessage]:
        """A conversation's messages (a peer's, or `room:<hex>`), oldest first."""
        limit = max(1, min(limit, MAX_PAGE))

        async def fetch(anchor: bytes | None) -> list[StoredMessage]:
            return await self._store.run(Database.history, peer, before=anchor, limit=limit)

        if not (self._directory.blocked and peer.startswith(ROOM_PREFIX)):
            return await fetch(before)
        return await _page(fetch, before, limit, self._blocked_author)

    async def room(self, room: bytes, before: bytes | None, limit: int) -> list[StoredMessage]:
        """A room's messages and system lines (`Notice`), oldest first."""
        limit = max(1, min(limit, MAX_PAGE))

        async def fetch(anchor: bytes | None) -> list[StoredMessage]:
            return await self._rooms.history(room, anchor, limit)

        return await _page(fetch, before, limit, self._hidden_post)

    async def search(self, query: str, limit: int) -> list[StoredMessage]:
        """Best match first, nothing written by a peer we blocked."""
        limit = max(1, min(limit, MAX_PAGE))
        hits = await self._store.run(Database.search, query, limit=limit)
        return [m for m in hits if not self._blocked_author(m)]

    async def export(self, key: str, fmt: str) -> str:
        """The whole conversation `key` (a peer's fingerprint or `room:<hex>`)."""
        nicks = self._directory.nicks()
        nicks[self._directory.identity.fingerprint] = "me"
        for info in self._rooms.rooms():
            if conversation(bytes.fromhex(info.room)) == key:
                nicks[key] = info.name
        return export(await self._store.run(Database.conversation, key), nicks, key, fmt)

    def _blocked_author(self, line: StoredMessage) -> bool:
        return line.author in self._directory.blocked

    def _hidden_post(self, line: StoredMessage) -> bool:
        """A blocked author's post (its system lines stay: who reads the room is shown)."""
        return self._blocked_author(line) and not isinstance(line, Notice)
