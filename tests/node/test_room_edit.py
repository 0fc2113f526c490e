"""Editing and deleting room posts: signed `edit` / `delete` operations of the room's log.

The pure rule (p2pim.rooms.state): only a post's author, while a member, may edit or delete
it; the post must count and stand (not deleted); the last edit in the log's order wins; a
delete is final.  Replay decides the same whatever order the operations arrive in.  Then
the same between real nodes on loopback: an edit or delete reaches every member, live
and by anti-entropy, survives a restart, and one member's forged edit of another's post
is ignored by everyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pim import Identity, Node
from p2pim.api import NotYourMessage, UnknownMessage
from p2pim.clock import new_message_id, now_ms
from p2pim.events import (
    MessageReceived,
    NodeEvent,
    PeerConnected,
    RoomChanged,
    RoomInvited,
    RoomMessage,
    RoomMessageDeleted,
    RoomMessageEdited,
)
from p2pim.rooms import state
from p2pim.rooms.state import InvalidRoomEvent, Op, replay, room_id, verify
from p2pim.wire import signing
from p2pim.wire.messages import RoomEvent, RoomOp, Text
from tests.support.nodes import form_room, meet, next_event, raw_session, running

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ident(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(b"test_room_edit " + name.encode()).digest())


A, B, C = map(ident, ("alice", "bob", "carol"))
NONCE = bytes(range(16))
ROOM = room_id(A.public_key, NONCE)


def op(
    who: Identity, seq: int, lamport: int, kind: str, subject: bytes = b"", text: str = ""
) -> Op:
    assert who.seed is not None
    nonce = NONCE if kind == "create" else b""
    return state.sign(
        who.seed,
        RoomOp(ROOM, who.public_key, who.verify_key, seq, lamport, 0, kind, subject, text, nonce),
    )


def counts(s: state.RoomState, o: Op) -> bool:
    assert (o.id in {x.id for x in s.accepted}) != (o.id in s.rejected)
    return o.id not in s.rejected


# Alice makes a room with Bob and Carol; each posts; then edits and deletes, some allowed.
CREATE = op(A, 1, 1, "create", text="lobby")
INVITES = [op(A, 2, 2, "invite", B.public_key), op(A, 3, 3, "invite", C.public_key)]
JOINS = [op(B, 1, 4, "join"), op(C, 1, 4, "join")]
P_A = op(A, 4, 5, "post", text="meet at 10")
P_B = op(B, 2, 5, "post", text="ok")
P_C = op(C, 2, 5, "post", text="carol here")
TOPIC = op(A, 5, 6, "topic", text="standup")
A_EDIT_1 = op(A, 6, 7, "edit", P_A.id, "meet at 11")
A_EDIT_2 = op(A, 7, 9, "edit", P_A.id, "meet at 12")  # later in the order: it wins
B_EDITS_A = op(B, 3, 8, "edit", P_A.id, "meet never")  # not the author
A_DELETES_B = op(A, 8, 10, "delete", P_B.id)  # the creator and admin, still not the author
B_DELETE = op(B, 4, 10, "delete", P_B.id)
B_EDIT_AFTER = op(B, 5, 11, "edit", P_B.id, "back again")  # the post was deleted
B_DELETE_AGAIN = op(B, 6, 12, "delete", P_B.id)
A_EDIT_TOPIC = op(A, 9, 11, "edit", TOPIC.id, "not a post")
A_EDIT_EARLY = op(A, 10, 3, "edit", P_A.id, "before its post")  # ordered before P_A
REMOVE_C = op(A, 11, 13, "remove", C.public_key)
C_EDIT_LATE = op(C, 3, 14, "edit", P_C.id, "edited after removal")
MIX = [
    CREATE, *INVITES, *JOINS, P_A, P_B, P_C, TOPIC, A_EDIT_1, A_EDIT_2, B_EDITS_A, A_DELETES_B,
    B_DELETE, B_EDIT_AFTER, B_DELETE_AGAIN, A_EDIT_TOPIC, A_EDIT_EARLY, REMOVE_C, C_EDIT_LATE,
]  # fmt: skip
BASELINE = replay(ROOM, MIX)


def view(s: state.RoomState) -> dict[bytes, tuple[str, bool, bool]]:
    return {p.id: (s.text_of(p), p.id in s.edits, p.id in s.deletes) for p in s.posts()}


def test_only_the_author_edits_or_deletes_and_the_last_edit_wins() -> None:
    s = BASELINE
    assert [counts(s, o) for o in (A_EDIT_1, A_EDIT_2, B_DELETE, C_EDIT_LATE)] == [
        True, True, True, False,
    ]  # fmt: skip
    assert s.rejected[B_EDITS_A.id] == "only its author may edit a post"
    assert s.rejected[A_DELETES_B.id] == "only its author may delete a post"
    assert s.rejected[B_EDIT_AFTER.id] == "the post was deleted"
    assert s.rejected[B_DELETE_AGAIN.id] == "the post was deleted"
    assert s.rejected[A_EDIT_TOPIC.id] == "no such post"
    assert s.rejected[A_EDIT_EARLY.id] == "no such post"
    assert s.rejected[C_EDIT_LATE.id] == "not a member"
    assert view(s) == {
        P_A.id: ("meet at 12", True, False),
        P_B.id: ("", False, True),
        P_C.id: ("carol here", False, False),
    }
    assert s.edits[P_A.id] is A_EDIT_2
    # A deleted post keeps its place (a tombstone); concurrent posts go by the total order.
    assert s.posts() == sorted([P_A, P_B, P_C], key=lambda o: o.order)


@FAST
@given(st.permutations(MIX))
def test_edits_and_deletes_replay_the_same_in_any_arrival_order(ops: list[Op]) -> None:
    s = replay(ROOM, ops)
    assert view(s) == view(BASELINE)
    assert [o.id for o in s.accepted] == [o.id for o in BASELINE.accepted]
    assert s.rejected == BASELINE.rejected


@FAST
@given(st.permutations(MIX), st.integers(0, len(MIX)))
def test_a_member_holding_part_of_the_log_converges_once_it_has_all(
    ops: list[Op], cut: int
) -> None:
    replay(ROOM, ops[:cut])
    assert view(replay(ROOM, ops[cut:] + ops[:cut])) == view(BASELINE)


def test_a_removal_that_sorts_before_a_post_takes_its_edit_with_it() -> None:
    # Carol's post and edit count only while she is a member; a removal ordered before
    # them (it arrives late) rejects both, the same on every member.
    early_removal = op(A, 12, 4, "remove", C.public_key)
    s = replay(ROOM, [*MIX, early_removal])
    assert not counts(s, P_C)
    assert P_C.id not in view(s)


@pytest.mark.parametrize(
    ("kind", "subject", "text"),
    [
        ("edit", b"", "x"),
        ("edit", bytes(32), "x"),  # a key, not an event id
        ("delete", bytes(15), ""),
        ("delete", bytes(16), "why"),  # a delete carries no text
        ("post", bytes(16), "x"),
    ],
)
def test_malformed_edits_and_deletes_never_verify(kind: str, subject: bytes, text: str) -> None:
    with pytest.raises(InvalidRoomEvent, match="wrong"):
        verify(op(A, 2, 2, kind, subject, text).event)


def test_a_well_formed_edit_and_delete_verify() -> None:
    assert verify(A_EDIT_1.event).op.kind == "edit"
    assert verify(B_DELETE.event).op.subject == P_B.id


def test_an_edit_reencoded_with_another_target_fails_its_signature() -> None:
    fields = msgpack.unpackb(A_EDIT_1.event.payload)
    fields["subject"] = P_B.id
    payload = msgpack.packb(fields, use_bin_type=True)
    assert not signing.verify(A.verify_key, payload, A_EDIT_1.event.sig)
    with pytest.raises(InvalidRoomEvent, match="signature"):
        verify(RoomEvent(payload, A_EDIT_1.event.sig))


# ---- between real nodes on loopback ------------------------------------------------------

Events = trio.MemoryReceiveChannel[NodeEvent]


def edited(room: str, mid: str, text: str) -> Callable[[NodeEvent], bool]:
    return lambda e: (
        isinstance(e, RoomMessageEdited) and (e.room, e.message_id, e.text) == (room, mid, text)
    )


def deleted(room: str, mid: str) -> Callable[[NodeEvent], bool]:
    return lambda e: isinstance(e, RoomMessageDeleted) and (e.room, e.message_id) == (room, mid)


async def shown(node: Node, room: str) -> list[tuple[str, str, bool, bool]]:
    return [
        (m.id.hex(), m.body, m.edited_at is not None, m.deleted)
        for m in await node.room_history(room, limit=100)
    ]


async def test_an_edit_and_a_delete_reach_every_member_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    a_id, b_id, c_id = Identity.generate(), Identity.generate(), Identity.generate()
    people = [("a", a_id), ("b", b_id), ("c", c_id)]
    async with running(*people, home=tmp_path) as (a, b, c):
        await meet(a, b)
        await meet(b, c)  # a and c never meet: c hears of a's edits through b
        room = await form_room(b, [a, c])
        subs = [node.subscribe() for node in (a, b, c)]
        first = await a.post_to_room(room, "lunch at 12")
        second = await a.post_to_room(room, "bring slides")
        for sub in subs:
            await next_event(sub, lambda e: isinstance(e, RoomMessage) and e.text == "bring slides")
        await a.edit_room_post(room, first, "lunch at 1")
        await a.delete_room_post(room, second)
        for sub in subs:
            await next_event(sub, edited(room, first, "lunch at 1"))
            await next_event(sub, deleted(room, second))
        expected = [(first, "lunch at 1", True, False), (second, "", False, True)]
        for node in (a, b, c):
            assert await shown(node, room) == expected
        assert [m.id.hex() for m in await c.search("lunch")] == [first]
        assert await c.search("slides") == []  # a deleted post cannot be found
        # Only the author may: the others are refused with the direct messages' errors.
        with pytest.raises(NotYourMessage):
            await b.edit_room_post(room, first, "lunch at 3")
        with pytest.raises(UnknownMessage, match="deleted"):
            await a.edit_room_post(room, second, "undelete")
        with pytest.raises(UnknownMessage):
            await a.delete_room_post(room, new_message_id().hex())
        with pytest.raises(ValueError, match="32 hex"):
            await a.delete_room_post(room, "zz")
    async with running(("c", c_id), home=tmp_path) as (c,):
        assert await shown(c, room) == expected  # from its own log and mirror


async def test_a_member_missing_the_edit_gets_it_by_anti_entropy(tmp_path: Path) -> None:
    a_id, b_id = Identity.generate(), Identity.generate()
    async with running(("a", a_id), ("b", b_id), home=tmp_path) as (a, b):
        await meet(a, b)
        room = await form_room(a, [b])
        with b.subscribe() as sub:
            post = await a.post_to_room(room, "v1")
            await next_event(sub, lambda e: isinstance(e, RoomMessage) and e.text == "v1")
    # b is away; a edits twice; when they meet again b takes the edits from the sync.
    async with running(("a", a_id), home=tmp_path) as (a,):
        await a.edit_room_post(room, post, "v2")
        await a.edit_room_post(room, post, "v3")
        async with running(("b", b_id), home=tmp_path) as (b,):
            with b.subscribe() as sub:
                await meet(b, a)
                await next_event(sub, edited(room, post, "v3"))
            assert await shown(b, room) == [(post, "v3", True, False)]


async def test_a_forged_edit_of_anothers_post_changes_nothing_anywhere() -> None:
    """Mallory, a member, signs an edit and a delete of Alice's post with her own key (as
    an independent client can): every member keeps Alice's text, and nobody relays them."""
    mallory = Identity.generate()
    assert mallory.seed is not None
    async with running(("a", Identity.generate()), ("b", Identity.generate())) as (a, b):
        await meet(a, b)
        room = await form_room(a, [b])
        with a.subscribe() as a_sub, b.subscribe() as b_sub:
            post = await a.post_to_room(room, "the real text")
            await next_event(b_sub, lambda e: isinstance(e, RoomMessage))
            link = await raw_session(a.port, mallory, "mallory")
            try:
                await next_event(a_sub, lambda e: isinstance(e, PeerConnected))
                await a.invite_to_room(room, mallory.fingerprint)

                def signed(seq: int, kind: str, subject: bytes = b"", text: str = "") -> RoomEvent:
                    assert mallory.seed is not None
                    body = RoomOp(
                        bytes.fromhex(room), mallory.public_key, mallory.verify_key, seq,
                        100 + seq, now_ms(), kind, subject, text,
                    )  # fmt: skip
                    return state.sign(mallory.seed, body).event

                target = bytes.fromhex(post)
                for event in (
                    signed(1, "join"),
                    signed(2, "edit", target, "forged"),
                    signed(3, "delete", target),
                ):
                    await link.send(event)
                await link.send(Text(new_message_id(), now_ms(), "ping", 1))
                await next_event(
                    a_sub, lambda e: isinstance(e, MessageReceived) and e.text == "ping"
                )
                await next_event(
                    b_sub,
                    lambda e: isinstance(e, RoomChanged) and mallory.fingerprint in e.members,
                )  # her join counts, and reached b before what a sends next
                await a.post_to_room(room, "after")
                seen = []
                while not seen or not isinstance(seen[-1], RoomMessage):
                    seen.append(await next_event(b_sub, lambda e: True))
                assert not any(isinstance(e, RoomMessageEdited | RoomMessageDeleted) for e in seen)
            finally:
                await link.close()
        for node in (a, b):
            history = await node.room_history(room, limit=10)
            assert [(m.body, m.edited_at, m.deleted) for m in history] == [
                ("the real text", None, False),
                ("after", None, False),
            ]


async def test_the_rpc_methods_edit_delete_and_list_lines(tmp_path: Path) -> None:
    """edit_post, delete_post, create_room with members and room_history with system,
    as a JSON-RPC client sees them (error codes included)."""
    import json

    from p2pim.rpc import RpcServer

    async with running(("a", Identity.generate()), ("b", Identity.generate())) as (a, b):
        await meet(a, b)
        server, b_server = RpcServer(a), RpcServer(b)

        async def call(to: RpcServer, method: str, **params: object) -> dict[str, object]:
            line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
            response = await to.handle_line(line.encode())
            assert response is not None
            return response

        with b.subscribe() as b_events:
            made = await call(server, "create_room", name="ops", members=["b"])
            room = made["result"]["room"]  # type: ignore[index]
            await next_event(b_events, lambda e: isinstance(e, RoomInvited))
        refused = await call(server, "create_room", name="x", members=["nobody"])
        assert refused["error"]["code"] == 2  # type: ignore[index]
        assert [r.name for r in a.rooms()] == ["ops"]  # the refused one was never made
        post = (await call(server, "post", room="ops", text="v1"))["result"]["id"]  # type: ignore[index]
        assert (await call(server, "edit_post", room="ops", id=post, text="v2"))["result"] is None
        others = await call(b_server, "edit_post", room=room, id=post, text="mine now")
        assert others["error"]["code"] == 8  # type: ignore[index]  # b is not a member yet
        with a.subscribe() as a_events:
            await b.join_room(room)
            await next_event(
                a_events,
                lambda e: (
                    isinstance(e, RoomChanged)
                    and e.members == tuple(sorted((a.fingerprint, b.fingerprint)))
                ),
            )
        others = await call(b_server, "edit_post", room=room, id=post, text="mine now")
        assert others["error"]["code"] == 6  # type: ignore[index]  # not b's post
        assert (await call(server, "delete_post", room="ops", id=post))["result"] is None
        bad = await call(server, "delete_post", room="ops", id="xyz")
        assert bad["error"]["code"] == -32602  # type: ignore[index]
        plain = (await call(server, "room_history", room="ops"))["result"]
        assert [(m["kind"], m["body"], m["deleted"]) for m in plain] == [("post", "", True)]  # type: ignore[index,union-attr]
        full = (await call(server, "room_history", room="ops", system=True))["result"]
        assert [(m["kind"], m["body"]) for m in full] == [  # type: ignore[index,union-attr]
            ("created", "a created the room #ops"),
            ("invited", "a invited b"),
            ("post", ""),
            ("joined", "b joined"),
        ]
        assert full[1]["subject"] == b.fingerprint  # type: ignore[index]
        wrong = await call(server, "room_history", room="ops", system="yes")
        assert wrong["error"]["code"] == -32602  # type: ignore[index]
