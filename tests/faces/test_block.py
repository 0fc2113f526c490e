"""Block and mute between real nodes on loopback TCP, with the receiver's SQLite on disk.

A blocked peer's texts, file offers and room invitations reach neither the events (what
every face shows) nor the database file nor the download folder; its posts in a room
both share stay in the room's signed log (the log must converge for every member) but are
left out of what is shown.  After unblocking, its new messages arrive again.  "Nothing
arrived" is established with a marker that travels after the dropped messages on the same
path (a session delivers in order) and that the receiver does show.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, closing
from pathlib import Path

import pytest
import trio

from p2pim import Identity, Node, blocking, open_node
from p2pim.api import PeerBlockedError, RoomError
from p2pim.config import database_path
from p2pim.events import (
    BlockChanged,
    MessageDelivered,
    MessageReceived,
    MuteChanged,
    NodeEvent,
    OfferReceived,
    PeerConnected,
    RoomChanged,
    RoomInvited,
    RoomMessage,
    RoomMessageDeleted,
    RoomMessageEdited,
    RoomNotice,
    TypingChanged,
    conversation_of,
)
from p2pim.rooms.state import sign
from p2pim.rpc import RpcServer
from p2pim.testing.daemon_process import text_from
from p2pim.wire.messages import Ack, FileOffer, Presence, RoomEvent, RoomOp, Text, Typing
from tests.support.cli import Spawn, introduce, one_shot, run
from tests.support.nodes import loopback_config, next_event

Events = trio.MemoryReceiveChannel[NodeEvent]


@asynccontextmanager
async def me_and_nuisance(tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    """`me` keeps its database in a file (so the test can read it) and downloads into
    tmp_path/downloads; `nuisance` is a second real node.  Both connected."""
    async with AsyncExitStack() as stack:
        me = await stack.enter_async_context(
            open_node(
                Identity.generate(),
                loopback_config("me", download_dir=tmp_path / "downloads"),
                store_path=database_path(tmp_path),
            )
        )
        nuisance = await stack.enter_async_context(
            open_node(Identity.generate(), loopback_config("nuisance"))
        )
        with me.subscribe() as mine, nuisance.subscribe() as theirs:
            await me.connect("127.0.0.1", nuisance.port, nuisance.fingerprint)
            await next_event(mine, connected(nuisance.fingerprint))
            await next_event(theirs, connected(me.fingerprint))
        yield me, nuisance


def connected(peer: str) -> Callable[[NodeEvent], bool]:
    return lambda e: isinstance(e, PeerConnected) and e.fingerprint == peer


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Read the node's database file as another process would."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


async def events_until(events: Events, last: Callable[[NodeEvent], bool]) -> list[NodeEvent]:
    seen = []
    with trio.fail_after(10):
        while True:
            seen.append(await events.receive())
            if last(seen[-1]):
                return seen


async def shared_room(me: Node, nuisance: Node) -> str:
    """A room the nuisance created and we joined (before any block)."""
    with me.subscribe() as mine:
        room = await nuisance.create_room("shared")
        await nuisance.invite_to_room(room, me.fingerprint)
        await next_event(mine, lambda e: isinstance(e, RoomInvited) and e.room == room)
        await me.join_room(room)
        await next_event(
            mine,
            lambda e: isinstance(e, RoomChanged) and e.room == room and me.fingerprint in e.members,
        )
    return room


def shown_by_the_nuisance(events: list[NodeEvent], nuisance: str) -> list[NodeEvent]:
    return [
        e
        for e in events
        if isinstance(
            e, MessageReceived | OfferReceived | RoomInvited | RoomMessage | TypingChanged
        )
        and blocking.author_of(e) == nuisance
    ]


# ---- the must-show: nothing reaches the screen or the disk --------------------------------


async def test_a_blocked_peers_text_offer_and_invitation_reach_neither_screen_nor_disk(
    tmp_path: Path,
) -> None:
    db, downloads = database_path(tmp_path), tmp_path / "downloads"
    attachment = tmp_path / "spam.bin"
    attachment.write_bytes(b"unwanted" * 1000)
    async with me_and_nuisance(tmp_path) as (me, nuisance):
        room = await shared_room(me, nuisance)
        # Before the block the same offer lands in the database: the queries below can see.
        with me.subscribe() as mine:
            await nuisance.send_files([me.fingerprint], [attachment])
            await next_event(mine, lambda e: isinstance(e, OfferReceived))
        assert rows(db, "SELECT count(*) FROM transfers WHERE peer = ?", nuisance.fingerprint) == [
            (1,)
        ]

        await me.block(nuisance.fingerprint)
        assert me.blocked() == [nuisance.fingerprint]
        assert [p.blocked for p in me.peers()] == [True]

        with me.subscribe() as mine, nuisance.subscribe() as theirs:
            # The outbox sends in order: the offer goes before the text, and the text's
            # ack (the nuisance's outbox drains) means both went through the choke point.
            await nuisance.send_files([me.fingerprint], [attachment])
            text_id = await nuisance.send_text(me.fingerprint, "buy my stuff")
            await next_event(
                theirs, lambda e: isinstance(e, MessageDelivered) and e.message_id == text_id
            )
            await nuisance.set_typing(me.fingerprint, True)
            # Room events go through one writer per peer, in order: a new room's
            # invitation, a post in the shared room, then a topic change we do show.
            spam_room = await nuisance.create_room("spam")
            await nuisance.invite_to_room(spam_room, me.fingerprint)
            await nuisance.post_to_room(room, "a post in the shared room")
            await nuisance.set_room_topic(room, "marker")
            seen = await events_until(
                mine, lambda e: isinstance(e, RoomChanged) and e.topic == "marker"
            )

        assert shown_by_the_nuisance(seen, nuisance.fingerprint) == []
        # The disk: no text, no new offer, no invitation, no file.
        assert rows(db, "SELECT count(*) FROM messages WHERE body = 'buy my stuff'") == [(0,)]
        assert rows(db, "SELECT count(*) FROM messages WHERE peer = ?", nuisance.fingerprint) == [
            (0,)
        ]
        assert rows(db, "SELECT count(*) FROM transfers WHERE peer = ?", nuisance.fingerprint) == [
            (1,)  # only the one from before the block
        ]
        assert rows(
            db, "SELECT count(*) FROM room_events WHERE room = ?", bytes.fromhex(spam_room)
        ) == [(0,)]
        assert not downloads.exists() or list(downloads.iterdir()) == []
        assert [r.room for r in me.rooms()] == [room]
        # The shared room's log stays whole (it must converge for every member): the post
        # is kept in the signed log, but no face is shown it.
        assert [r.topic for r in me.rooms()] == ["marker"]
        assert rows(
            db,
            "SELECT count(*) FROM messages WHERE peer = ? AND body = ?",
            f"room:{room}",
            "a post in the shared room",
        ) == [(1,)]
        assert [m.body for m in await me.room_history(room)] == []
        timeline = await me.room_history(room, system=True)  # with "x joined" and the like
        assert "a post in the shared room" not in [m.body for m in timeline]
        assert timeline, "the room's system lines stay"
        assert await me.search("shared room") == []

        # Unblocked: new messages arrive and are stored again.
        await me.unblock(nuisance.fingerprint)
        assert me.blocked() == []
        with me.subscribe() as mine:
            await nuisance.send_text(me.fingerprint, "sorry")
            await next_event(mine, lambda e: isinstance(e, MessageReceived) and e.text == "sorry")
        assert rows(db, "SELECT body FROM messages WHERE peer = ?", nuisance.fingerprint) == [
            ("sorry",)
        ]
        assert [m.body for m in await me.room_history(room)] == ["a post in the shared room"]
        timeline = await me.room_history(room, system=True)
        assert "a post in the shared room" in [m.body for m in timeline]


@pytest.mark.parametrize("blocked", [True, False], ids=["blocked", "control"])
async def test_an_invitation_by_a_blocked_peer_is_dropped_when_another_member_brings_it(
    tmp_path: Path, blocked: bool
) -> None:
    """We never met the nuisance (blocked in advance, by fingerprint).  It invites us to
    a room a friend is in; when we meet the friend, the friend's anti-entropy brings us
    the room's log with the invitation.  Blocked: dropped.  The control run shows that
    the same path delivers the invitation when nobody is blocked."""
    async with (
        open_node(
            Identity.generate(), loopback_config("me"), store_path=database_path(tmp_path)
        ) as me,
        open_node(Identity.generate(), loopback_config("nuisance")) as nuisance,
        open_node(Identity.generate(), loopback_config("friend")) as friend,
    ):
        if blocked:
            await me.block(nuisance.fingerprint)
        with friend.subscribe() as theirs:
            await friend.connect("127.0.0.1", nuisance.port, nuisance.fingerprint)
            await next_event(theirs, connected(nuisance.fingerprint))
            room = await nuisance.create_room("their room")
            await nuisance.invite_to_room(room, friend.fingerprint)
            await next_event(theirs, lambda e: isinstance(e, RoomInvited) and e.room == room)
            await friend.join_room(room)
            # No session with us: the nuisance's room code writes the invitation for us
            # by our key, and the friend (a member) gets it.
            await nuisance._rooms.invite(bytes.fromhex(room), me.identity.public_key)
            await next_event(
                theirs, lambda e: isinstance(e, RoomChanged) and me.fingerprint in e.invited
            )
        with me.subscribe() as mine:
            await me.connect("127.0.0.1", friend.port, friend.fingerprint)
            if not blocked:
                invited = await next_event(mine, lambda e: isinstance(e, RoomInvited))
                assert invited.inviter == nuisance.fingerprint  # type: ignore[attr-defined]
                assert [r.room for r in me.rooms()] == [room]
                return
            with trio.fail_after(10):  # the friend's copy of the invitation reached us
                while me.stats()["blocked_dropped"] < 1:  # noqa: ASYNC110 (a count, no event)
                    await trio.sleep(0.01)
            # Anything that was not dropped would have been announced before the marker.
            await friend.send_text(me.fingerprint, "marker")
            seen = await events_until(
                mine, lambda e: isinstance(e, MessageReceived) and e.text == "marker"
            )
        assert [e for e in seen if isinstance(e, RoomInvited | RoomChanged)] == []
        assert me.rooms() == []
        with pytest.raises(RoomError):
            await me.join_room(room)
        assert rows(database_path(tmp_path), "SELECT count(*) FROM room_events") == [(0,)]


# ---- mute, persistence, refusals ---------------------------------------------------------


async def test_a_muted_conversation_still_receives_and_stores(tmp_path: Path) -> None:
    async with me_and_nuisance(tmp_path) as (me, nuisance):
        with me.subscribe() as mine:
            await me.mute(nuisance.fingerprint)
            changed = await next_event(mine, lambda e: isinstance(e, MuteChanged))
            assert changed == MuteChanged(nuisance.fingerprint, True)
            await nuisance.send_text(me.fingerprint, "quietly")
            await next_event(mine, lambda e: isinstance(e, MessageReceived) and e.text == "quietly")
        assert me.muted() == [nuisance.fingerprint]
        assert me.is_muted(nuisance.fingerprint)
        assert [m.body for m in await me.history(nuisance.fingerprint)] == ["quietly"]
        await me.unmute(nuisance.fingerprint)
        assert me.muted() == []


async def test_block_and_mute_survive_a_restart(tmp_path: Path) -> None:
    me_id, other = Identity.generate(), Identity.generate().fingerprint
    room = "room:" + "ab" * 16
    async with open_node(me_id, loopback_config("me"), store_path=database_path(tmp_path)) as me:
        with me.subscribe() as mine:
            await me.block(other)
            assert await next_event(mine, lambda e: isinstance(e, BlockChanged)) == BlockChanged(
                other, True
            )
        await me.mute(room)
    async with open_node(me_id, loopback_config("me"), store_path=database_path(tmp_path)) as me:
        assert me.blocked() == [other]
        assert me.is_blocked(other)
        assert me.muted() == [room]


async def test_sending_to_a_blocked_peer_is_refused_in_plain_words(tmp_path: Path) -> None:
    async with me_and_nuisance(tmp_path) as (me, nuisance):
        await me.block(nuisance.fingerprint)
        with pytest.raises(PeerBlockedError, match="you blocked nuisance: unblock"):
            await me.send_text(nuisance.fingerprint, "hi")
        assert await me.broadcast("all hands") == {}


async def test_bad_block_and_mute_requests_are_refused_and_harmless(tmp_path: Path) -> None:
    async with me_and_nuisance(tmp_path) as (me, _):
        for bad in ("bob", "ab" * 31, "AB" * 32, "", 42):
            with pytest.raises(ValueError, match="full fingerprint"):
                await me.block(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="yourself"):
            await me.block(me.fingerprint)
        for bad in ("room:xyz", "room:", "nobody"):
            with pytest.raises(ValueError, match="room"):
                await me.mute(bad)
        assert me.blocked() == []
        assert me.muted() == []


async def test_block_unblock_mute_over_rpc(tmp_path: Path) -> None:
    async with me_and_nuisance(tmp_path) as (me, nuisance):
        server = RpcServer(me)

        async def call(method: str, **params: object) -> dict[str, object]:
            line = f'{{"jsonrpc": "2.0", "id": 1, "method": "{method}", "params": {_json(params)}}}'
            response = await server.handle_line(line.encode())
            assert response is not None
            return response

        assert (await call("block", peer="nuisance"))["result"] is None
        assert (await call("blocked"))["result"] == [
            {"fingerprint": nuisance.fingerprint, "nick": "nuisance"}
        ]
        refused = await call("send", peer="nuisance", text="hi")
        assert refused["error"] == {
            "code": 9,
            "message": "you blocked nuisance: unblock them to send a message",
        }
        assert (await call("unblock", peer=nuisance.fingerprint[:12]))["result"] is None
        assert me.blocked() == []
        await call("mute", peer="nuisance")
        room = await me.create_room("quiet room")
        await call("mute", room="quiet room")
        assert (await call("muted"))["result"] == sorted([nuisance.fingerprint, f"room:{room}"])
        await call("unmute", room=room)
        assert me.muted() == [nuisance.fingerprint]
        bad = await call("mute")
        assert bad["error"]["code"] == -32602  # type: ignore[index]


def _json(params: dict[str, object]) -> str:
    import json

    return json.dumps(params)


# ---- the command line ----------------------------------------------------------------------


async def test_block_and_mute_from_the_command_line(tmp_path: Path, spawn: Spawn) -> None:
    """Real daemons; `p2pim block|unblock|mute|unmute` are one-shot commands against A."""
    a, b = await spawn(tmp_path / "A", "alice"), await spawn(tmp_path / "B", "bob")
    await introduce(a, b)
    fp_a = (await a.call("identity"))["fingerprint"]

    async def cli(*args: str) -> str:
        done = await run(one_shot(tmp_path / "A", *args))
        assert done.returncode == 0, done.stderr
        return done.stdout.decode()

    assert await cli("block", "bob") == "blocked\n"
    listed = await cli("block")
    assert listed.startswith("bob  ")
    assert len(listed.split()[1]) == 64
    with trio.fail_after(20):  # b's text is acknowledged (its outbox drains) and dropped
        sent = (await b.call("send", peer=fp_a, text="still there?"))["id"]
        await b.wait_event(lambda e: e["type"] == "message_delivered" and e["message_id"] == sent)
    assert [m["body"] for m in await a.call("history", peer="bob")] == []
    assert not [e for e in a.events if e["type"] == "message_received"]

    assert await cli("mute", "bob") == "muted\n"
    assert await cli("mute") == "bob\n"
    assert await cli("unblock", "bob") == "unblocked\n"
    fp_b = (await b.call("identity"))["fingerprint"]
    with trio.fail_after(20):
        await b.call("send", peer=fp_a, text="hello again")
        await a.wait_event(text_from(fp_b, "hello again"))
    assert await a.call("muted") == [fp_b]
    assert await cli("unmute", "bob") == "unmuted\n"
    assert await a.call("muted") == []
    refused = await run(one_shot(tmp_path / "A", "unblock"))
    assert refused.returncode == 2
    assert b"name the peer to unblock" in refused.stderr


# ---- the pure decisions ------------------------------------------------------------------


def test_what_a_blocked_peers_messages_come_to() -> None:
    assert blocking.verdict(Text(b"\1" * 16, 1, "x", 1)) is blocking.Verdict.ACK_AND_DROP
    offer = FileOffer(b"\2" * 16, b"\3" * 16, 1, 1000, 1, 1, 0, ())
    assert blocking.verdict(offer) is blocking.Verdict.ACK_AND_DROP
    assert blocking.op_id(offer) == b"\2" * 16
    assert blocking.verdict(Typing(True)) is blocking.Verdict.DROP
    for passing in (Ack((b"\1" * 16,)), Presence("away", "")):
        assert blocking.verdict(passing) is blocking.Verdict.PASS


def test_an_invitation_is_recognised_by_its_signed_payload() -> None:
    author, me, other = Identity.generate(), Identity.generate(), Identity.generate()
    assert author.seed is not None
    room = b"\7" * 16

    def event(kind: str, subject: bytes) -> RoomEvent:
        op = RoomOp(room, author.public_key, author.verify_key, 2, 2, 1, kind, subject)
        assert author.seed is not None
        return sign(author.seed, op).event

    assert blocking.invitation_from(event("invite", me.public_key), me.public_key) == (
        room,
        author.fingerprint,
    )
    assert blocking.invitation_from(event("invite", other.public_key), me.public_key) is None
    assert blocking.invitation_from(event("remove", me.public_key), me.public_key) is None
    assert blocking.invitation_from(RoomEvent(b"\xc1junk", b"\0" * 64), me.public_key) is None


def test_hidden_events_and_muted_conversations() -> None:
    fp = "ab" * 32
    received = MessageReceived(fp, "x", "00", 1, "hi")
    posted = RoomMessage("cd" * 16, "00", fp, "x", 1, "hi")
    assert blocking.hidden(received, {fp})
    assert blocking.hidden(posted, {fp})
    assert not blocking.hidden(received, set())
    assert not blocking.hidden(BlockChanged(fp, True), {fp})
    assert blocking.hidden(TypingChanged(fp, True), {fp})
    assert not blocking.hidden(TypingChanged(fp, False), {fp})  # clears a stale indicator
    room = "cd" * 16
    assert blocking.hidden(RoomMessageEdited(room, "00", fp, "better"), {fp})
    assert blocking.hidden(RoomMessageDeleted(room, "00", fp), {fp})
    joined = RoomNotice(room, "01", "joined", fp, "x", "", "", 1, "", "x joined")
    assert not blocking.hidden(joined, {fp})  # who can read the room stays visible
    assert conversation_of(received) == fp
    assert conversation_of(posted) == "room:" + "cd" * 16
    assert conversation_of(BlockChanged(fp, True)) is None
