"""A room's system lines ("alice joined", "bob left"...) between real nodes on loopback.

They are the room's log read back (p2pim.rooms.timeline): the history API lists them
among the posts in the log's order, the same on every member, page by page, and again
after a restart; while a member watches, each comes as a `RoomNotice` event.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from p2pim import Identity, Node
from p2pim.api import Notice, StoredMessage, UnknownMessage, describe
from p2pim.events import NodeEvent, RoomInvited, RoomMessage, RoomNotice
from tests.support.nodes import meet, next_event, running, until

Events = trio.MemoryReceiveChannel[NodeEvent]


def members(node: Node, room: str) -> tuple[str, ...]:
    return next((r.members for r in node.rooms() if r.room == room), ())


def invited(node: Node, room: str) -> tuple[str, ...]:
    return next((r.invited for r in node.rooms() if r.room == room), ())


def lines(history: list[StoredMessage]) -> list[str]:
    return [
        f"— {m.body}" if isinstance(m, Notice) else f"{m.author[:4]}: {m.body}" for m in history
    ]


async def everything(node: Node, room: str) -> list[StoredMessage]:
    return await node.room_history(room, limit=1000, system=True)


async def test_system_lines_are_listed_in_log_order_everywhere_and_after_a_restart(
    tmp_path: Path,
) -> None:
    people = [("ann", Identity.generate()), ("ben", Identity.generate())]
    people.append(("cat", Identity.generate()))
    async with running(*people, home=tmp_path) as (ann, ben, cat):
        await meet(ann, ben)
        await meet(ann, cat)
        await meet(ben, cat)
        subs = {node: node.subscribe() for node in (ann, ben, cat)}
        room = await ann.create_room("planning", "q4", [ben.fingerprint])
        await next_event(subs[ben], lambda e: isinstance(e, RoomInvited))
        await ben.join_room(room)
        await until(subs[ann], lambda: ben.fingerprint in members(ann, room))
        await ben.post_to_room(room, "hello")
        # Each step waits until the next actor saw the last: concurrent operations would
        # tie on Lamport time and be ordered by id, which no test can foresee.
        await next_event(subs[ann], lambda e: isinstance(e, RoomMessage))
        await ann.invite_to_room(room, cat.fingerprint)
        await next_event(subs[cat], lambda e: isinstance(e, RoomInvited))
        await cat.join_room(room)
        await until(subs[ann], lambda: cat.fingerprint in members(ann, room))
        await ann.make_room_admin(room, ben.fingerprint)
        await until(subs[ben], lambda: _admin(ben, room))
        await ben.set_room_topic(room, "Q4 roadmap")
        await until(subs[cat], lambda: _topic(cat, room) == "Q4 roadmap")
        await cat.leave_room(room)
        await until(subs[ann], lambda: cat.fingerprint not in members(ann, room))
        await ann.invite_to_room(room, cat.fingerprint)
        await until(subs[ben], lambda: cat.fingerprint in invited(ben, room))
        await ben.remove_from_room(room, cat.fingerprint)  # an invitee can be removed too
        await until(subs[ann], lambda: cat.fingerprint not in invited(ann, room))
        await ann.post_to_room(room, "bye cat")

        expected = [
            "— ann created the room #planning",
            "— ann changed the topic to “q4”",
            "— ann invited ben",
            "— ben joined",
            f"{ben.fingerprint[:4]}: hello",
            "— ann invited cat",
            "— cat joined",
            "— ann made ben an admin",
            "— ben changed the topic to “Q4 roadmap”",
            "— cat left",
            "— ann invited cat",
            "— ben removed cat",
            f"{ann.fingerprint[:4]}: bye cat",
        ]
        with trio.move_on_after(5):
            while lines(await everything(ben, room)) != expected:
                await subs[ben].receive()
        assert lines(await everything(ben, room)) == expected
        assert lines(await everything(ann, room)) == expected
        # Cat, removed, holds the log up to and including its removal.
        with trio.move_on_after(5):
            while lines(await everything(cat, room)) != expected[:-1]:
                await subs[cat].receive()
        assert lines(await everything(cat, room)) == expected[:-1]
        full = await everything(ann, room)
        assert [m.id for m in await everything(ben, room)] == [m.id for m in full]
        notices = [m for m in full if isinstance(m, Notice)]
        assert [n.kind for n in notices] == [
            "created", "topic", "invited", "joined", "invited", "joined", "admin", "topic",
            "left", "invited", "removed",
        ]  # fmt: skip
        removal = notices[-1]
        assert (removal.author, removal.subject) == (ben.fingerprint, cat.fingerprint)
        assert removal.outgoing is False
        assert notices[0].outgoing is True
        assert notices[1].text == "q4"
        # Without `system`, the history is the posts alone, as before.
        assert [m.body for m in await ann.room_history(room)] == ["hello", "bye cat"]

        # Page by page, backwards from any entry, posts and lines alike.
        for size in (1, 2, 3, 5):
            pages: list[StoredMessage] = []
            before: str | None = None
            while page := await ann.room_history(room, before=before, limit=size, system=True):
                assert len(page) <= size
                pages = page + pages
                before = page[0].id.hex()
            assert [m.id for m in pages] == [m.id for m in full], size
        with pytest.raises(UnknownMessage):
            await ann.room_history(room, before="ab" * 16, system=True)

        for sub in subs.values():
            sub.close()
    # After a restart, from the log on disk alone.
    async with running(people[1], home=tmp_path) as (ben,):
        assert lines(await everything(ben, room)) == expected


async def test_each_line_comes_live_as_an_event_while_a_member_watches(tmp_path: Path) -> None:
    people = [("ann", Identity.generate()), ("ben", Identity.generate())]
    people.append(("cat", Identity.generate()))
    async with running(*people, home=tmp_path) as (ann, ben, cat):
        await meet(ann, ben)
        await meet(ann, cat)
        await meet(ben, cat)  # else ben knows cat by a fingerprint prefix only
        with ben.subscribe() as ben_events, cat.subscribe() as cat_events:
            room = await ann.create_room("planning", members=[ben.fingerprint, cat.fingerprint])
            await next_event(ben_events, lambda e: isinstance(e, RoomInvited))
            await next_event(cat_events, lambda e: isinstance(e, RoomInvited))
            await until(ben_events, lambda: cat.fingerprint in invited(ben, room))
            await ben.join_room(room)
            seen: list[RoomNotice] = []

            async def notice() -> RoomNotice:
                event = await next_event(ben_events, lambda e: isinstance(e, RoomNotice))
                assert isinstance(event, RoomNotice)
                seen.append(event)
                return event

            assert (await notice()).line == "ben joined"  # his own join
            await cat.join_room(room)
            assert (await notice()).line == "cat joined"
            with ann.subscribe() as ann_events:
                await until(ann_events, lambda: cat.fingerprint in members(ann, room))
            await ann.make_room_admin(room, cat.fingerprint)
            assert (await notice()).line == "ann made cat an admin"
            await ann.set_room_topic(room, "")
            assert (await notice()).line == "ann cleared the topic"
            await ann.remove_from_room(room, cat.fingerprint)
            assert (await notice()).line == "ann removed cat"
            # Cat, removed, is told so too, in a line of its own.
            removed = await next_event(
                cat_events, lambda e: isinstance(e, RoomNotice) and e.kind == "removed"
            )
            assert isinstance(removed, RoomNotice)
            assert (removed.author, removed.subject, removed.subject_nick) == (
                ann.fingerprint, cat.fingerprint, "cat",
            )  # fmt: skip
        history = [m for m in await everything(ben, room) if isinstance(m, Notice)]
        by_id = {m.id.hex(): m for m in history}
        for event in seen:
            line = by_id[event.notice_id]
            assert (line.kind, line.author, line.subject, line.body) == (
                event.kind, event.author, event.subject, event.line,
            )  # fmt: skip


def test_describe_says_each_kind_in_words() -> None:
    assert describe("created", "ann", "", "planning") == "ann created the room #planning"
    assert describe("invited", "ann", "ben", "") == "ann invited ben"
    assert describe("left", "ben", "", "") == "ben left"
    assert describe("topic", "ann", "", "Q4") == "ann changed the topic to “Q4”"


def _admin(node: Node, room: str) -> bool:
    return any(r.room == room and node.fingerprint in r.admins for r in node.rooms())


def _topic(node: Node, room: str) -> str:
    return next((r.topic for r in node.rooms() if r.room == room), "")
