"""Room logs, the posts of each room mirrored into `messages`, declined invitations,
and contact groups.

A room is its log: every verified event, kept as received (payload and signature) so
it can be relayed and replayed (`p2pim.rooms.state`).  The posts that count are mirrored
into `messages` under the conversation `room:<room id in hex>`, as they stand after their
authors' edits and deletes, so history, search and export treat a room like any
conversation.  The log decides: a mirrored row that differs from it is put back.
Contact groups are local labels on peers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from p2pim.storage.core import Connection
from p2pim.storage.outbox import check_id


@dataclass(frozen=True, slots=True)
class RoomPost:
    id: bytes
    author: str
    outgoing: bool
    sent_at: int
    lamport: int
    body: str  # as it stands: the last edit's text, '' once deleted
    edited_at: int | None = None  # the author's clock at the last edit
    deleted: bool = False


class RoomTables(Connection):
    """The room and group methods of `Database`; each is one transaction."""

    def store_room_event(
        self, room: bytes, author: str, seq: int, id: bytes, payload: bytes, sig: bytes, now_ms: int
    ) -> bool:
        """Keep a verified event unless that author's event `seq` is already here."""
        check_id(id, "id")
        with self._transaction(write=True) as conn:
            return bool(
                conn.execute(
                    "INSERT INTO room_events (room, author, seq, id, payload, sig, stored_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (room, author, seq, id, payload, sig, now_ms),
                ).rowcount
            )

    def room_events(self, room: bytes) -> list[tuple[bytes, bytes]]:
        """(payload, signature) of every event of the room."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT payload, sig FROM room_events WHERE room = ? ORDER BY author, seq", (room,)
            ).fetchall()
        return [(payload, sig) for payload, sig in rows]

    def room_ids(self) -> list[bytes]:
        with self._transaction(write=False) as conn:
            return [room for (room,) in conn.execute("SELECT DISTINCT room FROM room_events")]

    def sync_room_posts(
        self, conversation: str, posts: Sequence[RoomPost], now_ms: int
    ) -> list[bytes]:
        """Make the room's rows in `messages` exactly `posts`; returns the ids added.
        Every statement names the conversation: ids are unique per conversation, so a
        row of another conversation with a post's id neither blocks the post nor is
        touched by it (docs/security.md, rooms)."""
        with self._transaction(write=True) as conn:
            present = {
                id: (body, edited_at, bool(deleted))
                for (id, body, edited_at, deleted) in conn.execute(
                    "SELECT id, body, edited_at, deleted FROM messages WHERE peer = ?",
                    (conversation,),
                )
            }
            wanted = {p.id for p in posts}
            conn.executemany(
                "UPDATE messages SET body = ?, edited_at = ?, deleted = ?"
                " WHERE id = ? AND peer = ?",
                [
                    (p.body, p.edited_at, int(p.deleted), p.id, conversation)
                    for p in posts
                    if p.id in present and present[p.id] != (p.body, p.edited_at, p.deleted)
                ],
            )
            conn.executemany(
                "DELETE FROM messages WHERE id = ? AND peer = ?",
                [(id, conversation) for id in present.keys() - wanted],
            )
            added = [p for p in posts if p.id not in present]
            conn.executemany(
                "INSERT INTO messages (id, peer, author, outgoing, sent_at, lamport, stored_at,"
                " body, edited_at, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (p.id, conversation, p.author, int(p.outgoing), p.sent_at, p.lamport, now_ms,
                     p.body, p.edited_at, int(p.deleted))
                    for p in added
                ],
            )  # fmt: skip
            return [p.id for p in added]

    def decline_room(self, room: bytes, conversation: str) -> None:
        """Forget an invitation for good: the room's events and posts go, and stay away."""
        with self._transaction(write=True) as conn:
            conn.execute("INSERT OR IGNORE INTO declined_rooms (room) VALUES (?)", (room,))
            conn.execute("DELETE FROM room_events WHERE room = ?", (room,))
            conn.execute("DELETE FROM messages WHERE peer = ?", (conversation,))

    def declined_rooms(self) -> set[bytes]:
        with self._transaction(write=False) as conn:
            return {room for (room,) in conn.execute("SELECT room FROM declined_rooms")}

    # -- contact groups --------------------------------------------------------------------

    def set_group(self, name: str, members: Sequence[str]) -> None:
        """Create or replace the group `name` (no members: delete it)."""
        with self._transaction(write=True) as conn:
            _replace_group(conn, name, members)

    def groups(self) -> dict[str, list[str]]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT name, member FROM contact_groups ORDER BY name, member"
            ).fetchall()
        found: dict[str, list[str]] = {}
        for name, member in rows:
            found.setdefault(name, []).append(member)
        return found


def _replace_group(conn: sqlite3.Connection, name: str, members: Sequence[str]) -> None:
    conn.execute("DELETE FROM contact_groups WHERE name = ?", (name,))
    conn.executemany(
        "INSERT INTO contact_groups (name, member) VALUES (?, ?)",
        [(name, member) for member in dict.fromkeys(members)],
    )
