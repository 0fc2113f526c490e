"""Direct messages and room posts do not share an id space (docs/security.md, rooms).

A room member learns every post's id, and a client may choose its direct messages' ids
freely.  So a direct Text, Edit or Delete carrying a post's id is an attack: the Text must
not keep the post out of the victim's room history (before the fix it did, for good), and
the Edit or Delete must not change the post's row (before the fix it did, until the next
change to the room).  The attacker here is a real node that writes on its session with the
victim directly, as an independent client could.  Every wait is an event under a timeout.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import trio

from p2pim import Identity, Node, open_node
from p2pim.clock import new_message_id, now_ms
from p2pim.events import (
    MessageDeleted,
    MessageEdited,
    NodeEvent,
    RoomInvited,
    RoomMessageDeleted,
    RoomMessageEdited,
)
from p2pim.wire.messages import Delete, Edit, Message, Text
from tests.support.nodes import (
    connected,
    form_room,
    loopback_config,
    members,
    mesh,
    next_event,
    ping_from,
    room_message,
    running,
    until,
)


async def whisper(attacker: Node, victim: Node, *messages: Message) -> None:
    """Write `messages` on the attacker's session with the victim, as a client that picks
    its own ids would, then a ping; returns once the victim has taken them all (a session
    delivers in order)."""
    link = attacker._links[victim.fingerprint]
    ping = f"ping {new_message_id().hex()}"
    with victim.subscribe() as events:
        for message in messages:
            await link.send(message)
        await link.send(Text(new_message_id(), now_ms(), ping, 1))
        await next_event(events, ping_from(attacker.fingerprint, ping))


async def rows(node: Node, room: str) -> dict[str, tuple[str, str, bool]]:
    """The room's posts as the node's history has them: id -> (author, text, deleted)."""
    return {
        m.id.hex(): (m.author, m.body, m.deleted) for m in await node.room_history(room, limit=1000)
    }


async def direct(node: Node, peer: str) -> dict[str, tuple[str, str]]:
    return {m.id.hex(): (m.author, m.body) for m in await node.history(peer, limit=1000)}


async def posted_and_seen(author: Node, room: str, text: str, *others: Node) -> str:
    """`author` posts `text`; returns its id once every one of `others` shows it."""
    subs = [node.subscribe() for node in others]
    post = await author.post_to_room(room, text)
    for sub in subs:
        await next_event(sub, room_message(room, text))
        sub.close()
    return post


async def test_a_direct_message_with_a_posts_id_does_not_hide_the_post(tmp_path: Path) -> None:
    alice, mallory, victor = Identity.generate(), Identity.generate(), Identity.generate()
    v_store = tmp_path / "victor.db"
    async with (
        open_node(alice, loopback_config("alice")) as a,
        open_node(mallory, loopback_config("mallory")) as m,
    ):
        async with open_node(victor, loopback_config("victor"), store_path=v_store) as v:
            await mesh([a, m, v])
            room = await form_room(a, [m])
            post = await posted_and_seen(a, room, "the plan", m)
            # Mallory, a member, knows the post's id; victor is not in the room yet.
            await whisper(m, v, Text(bytes.fromhex(post), now_ms(), "shadow", 1))
            assert (await direct(v, m.fingerprint))[post] == (m.fingerprint, "shadow")

            with v.subscribe() as v_events:
                await a.invite_to_room(room, v.fingerprint)
                await next_event(v_events, lambda e: isinstance(e, RoomInvited) and e.room == room)
                await v.join_room(room)
                everyone = tuple(sorted(n.fingerprint for n in (a, m, v)))
                await until(v_events, lambda: members(v, room) == everyone)
            await posted_and_seen(a, room, "after the join", v)
            assert (await rows(v, room))[post] == (a.fingerprint, "the plan", False)
            assert await rows(v, room) == await rows(a, room)
            assert (await direct(v, m.fingerprint))[post] == (m.fingerprint, "shadow")

            # The room's own edit changes the post, never the direct message of that id.
            with v.subscribe() as v_events:
                await a.edit_room_post(room, post, "the plan, revised")
                await next_event(
                    v_events, lambda e: isinstance(e, RoomMessageEdited) and e.message_id == post
                )
            assert (await rows(v, room))[post] == (a.fingerprint, "the plan, revised", False)
            assert (await direct(v, m.fingerprint))[post] == (m.fingerprint, "shadow")
            assert {h.peer for h in await v.search("revised")} == {f"room:{room}"}
            assert {h.peer for h in await v.search("shadow")} == {m.fingerprint}

        # Victor comes back (the room is replayed from its log) and syncs with alice.
        async with open_node(victor, loopback_config("victor"), store_path=v_store) as v:
            with v.subscribe() as v_events:
                await v.connect("127.0.0.1", a.port, a.fingerprint)
                await next_event(v_events, connected(a.fingerprint))
            await posted_and_seen(a, room, "after the return", v)
            assert (await rows(v, room))[post] == (a.fingerprint, "the plan, revised", False)
            assert await rows(v, room) == await rows(a, room)
            assert (await direct(v, m.fingerprint))[post] == (m.fingerprint, "shadow")
            assert (await v.export(room=room)).count("the plan, revised") == 1


async def test_a_direct_edit_or_delete_cannot_touch_a_room_post() -> None:
    async with running("alice", "mallory", "victor") as nodes:
        a, m, v = nodes
        await mesh(nodes)
        room = await form_room(a, [m, v])
        # Mallory's own posts: a direct edit or delete would change them for victor alone,
        # past the room's log (only a signed room operation may).
        kept = await posted_and_seen(m, room, "kept as posted", a, v)
        undeleted = await posted_and_seen(m, room, "still here", a, v)
        before = await rows(v, room)
        with v.subscribe() as v_events:
            await whisper(
                m,
                v,
                Edit(new_message_id(), bytes.fromhex(kept), now_ms(), "forged"),
                Delete(new_message_id(), bytes.fromhex(undeleted), now_ms()),
            )
            seen: list[NodeEvent] = []
            with contextlib.suppress(trio.WouldBlock):  # all there: the whisper was taken
                while True:
                    seen.append(v_events.receive_nowait())
        assert not [e for e in seen if isinstance(e, MessageEdited | MessageDeleted)]
        assert await rows(v, room) == before == await rows(a, room)
        assert before[kept] == (m.fingerprint, "kept as posted", False)
        assert before[undeleted] == (m.fingerprint, "still here", False)
        assert [h.body for h in await v.search("forged")] == []

        # The room's own operations still work, and only on the room's post.
        with v.subscribe() as v_events, a.subscribe() as a_events:
            await m.edit_room_post(room, kept, "edited in the room")
            await m.delete_room_post(room, undeleted)
            for events in (v_events, a_events):  # the delete comes after the edit
                await next_event(
                    events,
                    lambda e: isinstance(e, RoomMessageDeleted) and e.message_id == undeleted,
                )
        after = await rows(v, room)
        assert after[kept] == (m.fingerprint, "edited in the room", False)
        assert after[undeleted] == (m.fingerprint, "", True)
        assert after == await rows(a, room)
