"""Telling a room's users what its log now says: events for invitations, changes, posts,
edits, deletes and system lines; the posts mirrored into the message store; the history
with its system lines.  The network side (authoring, relaying, anti-entropy) is
`p2pim.rooms.manager`; the rules are `p2pim.rooms.state`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from p2pim import events
from p2pim.api import ROOM_PREFIX, RoomInfo, StoredMessage, UnknownMessage
from p2pim.clock import now_ms
from p2pim.identity import fingerprint
from p2pim.rooms import state as rs
from p2pim.rooms import timeline
from p2pim.storage import Database, RoomPost, Store


def conversation(room: bytes) -> str:
    """The `messages` conversation a room's posts are kept under."""
    return ROOM_PREFIX + room.hex()


class Reporter:
    """What one node (`me`) shows of its rooms, and tells its faces."""

    def __init__(
        self,
        me: str,
        store: Store,
        emit: Callable[[events.NodeEvent], Awaitable[None]],
        nick_of: Callable[[str], str],
    ) -> None:
        self._me = me
        self._store = store
        self._emit = emit
        self._nick_of = nick_of

    async def announce(self, before: rs.RoomState | None, after: rs.RoomState) -> None:
        if after.creator is None:
            return  # events before the room's creation: nothing to show yet
        room = after.room
        was_invited = before is not None and self._me in before.invited
        if self._me in after.invited and not was_invited:
            inviter = next(
                (o.author for o in reversed(after.accepted)
                 if o.op.kind == "invite" and fingerprint(o.op.subject) == self._me),
                after.creator,
            )  # fmt: skip
            await self._emit(
                events.RoomInvited(room.hex(), after.name, inviter, self._nick_of(inviter))
            )
        if before is None or _shape(before) != _shape(after):
            info = self.info(after)
            await self._emit(
                events.RoomChanged(
                    info.room, info.name, info.topic, info.members, info.invited, info.admins,
                    info.joined,
                )
            )  # fmt: skip
        if before is not None and (before.is_member(self._me) or after.is_member(self._me)):
            await self._announce_notices(before, after)
        if before is not None and _posts_shown(before) == _posts_shown(after):
            return
        added = await self.mirror_posts(after)
        if not after.is_member(self._me):
            return
        shown = _posts_shown(before) if before is not None else {}
        now = _posts_shown(after)
        for op in after.posts():
            deleted, edited = op.id in after.deletes, op.id in after.edits
            if op.id in added:  # new here: as it stands now (edited, or not shown at all)
                if not deleted:
                    await self._emit(
                        events.RoomMessage(
                            room.hex(), op.id.hex(), op.author, self._nick_of(op.author),
                            op.op.sent_at, after.text_of(op),
                        )
                    )  # fmt: skip
                if deleted or not edited:
                    continue
            elif shown.get(op.id, (None, False)) == now[op.id]:
                continue
            if deleted:
                await self._emit(events.RoomMessageDeleted(room.hex(), op.id.hex(), op.author))
            else:
                await self._emit(
                    events.RoomMessageEdited(room.hex(), op.id.hex(), op.author, after.text_of(op))
                )

    async def _announce_notices(self, before: rs.RoomState, after: rs.RoomState) -> None:
        """A system line for each operation that counts now and did not before."""
        old = {op.id for op in before.accepted}
        for op in after.accepted:
            if op.id in old or op.op.kind not in timeline.NOTICE_KINDS:
                continue
            n = timeline.notice(op, conversation(after.room), self._me, self._nick_of)
            await self._emit(
                events.RoomNotice(
                    after.room.hex(), n.id.hex(), n.kind, n.author, self._nick_of(n.author),
                    n.subject, self._nick_of(n.subject) if n.subject else "", n.sent_at,
                    n.text, n.body,
                )
            )  # fmt: skip

    async def mirror_posts(self, state: rs.RoomState) -> set[bytes]:
        """Make the room's conversation in `messages` its accepted posts; the ids added."""
        rows = [
            RoomPost(
                op.id, op.author, op.author == self._me, op.op.sent_at, op.op.lamport,
                state.text_of(op),
                edit.op.sent_at if (edit := state.edits.get(op.id)) else None,
                op.id in state.deletes,
            )
            for op in state.posts()
        ]  # fmt: skip
        return set(
            await self._store.run(
                Database.sync_room_posts, conversation(state.room), rows, now_ms()
            )
        )

    def info(self, state: rs.RoomState) -> RoomInfo:
        return RoomInfo(
            state.room.hex(),
            state.name,
            state.topic,
            state.creator,
            tuple(sorted(state.members)),
            tuple(sorted(fp for fp, m in state.members.items() if m.admin)),
            tuple(sorted(state.invited)),
            state.is_member(self._me),
            self._me in state.invited,
        )

    async def history(
        self, state: rs.RoomState, before: bytes | None, limit: int
    ) -> list[StoredMessage]:
        """The room's posts (from the store, where search and export find them too) and
        its system lines (from its log), the `limit` newest before `before` (a post's or a
        line's id; None: the newest), oldest first."""
        key = conversation(state.room)
        lines = timeline.notices(state, key, self._me, self._nick_of)
        line = next((n for n in lines if n.id == before), None) if before else None
        if before is None:
            anchor, posts = None, await self._store.run(Database.history, key, limit=limit)
        elif line is None:  # a post's id (UnknownMessage if it is not one)
            posts = await self._store.run(Database.history, key, before=before, limit=limit)
            post = state.by_id.get(before)
            anchor = post.order if post else (posts[-1].lamport, posts[-1].id) if posts else None
        else:
            anchor = timeline.order(line)
            posts = await self._posts_before(key, state, anchor, limit)
        return timeline.merge_page(posts, lines, anchor, limit)

    async def _posts_before(
        self, key: str, state: rs.RoomState, anchor: tuple[int, bytes], limit: int
    ) -> list[StoredMessage]:
        """The newest posts before a system line: those before the first post after it."""
        for post in (p for p in state.posts() if p.order > anchor):
            with contextlib.suppress(UnknownMessage):  # not in the store: try the next
                return await self._store.run(Database.history, key, before=post.id, limit=limit)
        newest = await self._store.run(Database.history, key, limit=limit)
        return [p for p in newest if timeline.order(p) < anchor]


def _posts_shown(state: rs.RoomState) -> dict[bytes, tuple[bytes | None, bool]]:
    """Per post that counts: its last edit's id and whether it is deleted."""
    return {
        op.id: ((e.id if (e := state.edits.get(op.id)) else None), op.id in state.deletes)
        for op in state.posts()
    }


def _shape(state: rs.RoomState) -> tuple[object, ...]:
    admins = sorted(fp for fp, m in state.members.items() if m.admin)
    return (state.name, state.topic, sorted(state.members), sorted(state.invited), admins)
