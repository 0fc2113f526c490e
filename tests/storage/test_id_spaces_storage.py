"""Message ids are scoped by conversation (schema v7): a direct message, edit or delete
reaches only that peer's conversation, and a room post only its room's, whatever ids
they carry.  Before v7 one id space held both, so a direct message with a post's id kept
the post out of the room for good, and a direct edit or delete of that id changed the post.
A database made by the v6 schema opens at v7 with its history, search and outbox intact.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from p2pim import storage
from p2pim.api import StoredMessage
from p2pim.config import database_path
from p2pim.storage import Database, RoomPost, schema

ME, ALICE, MALLORY = "m" * 64, "a" * 64, "e" * 64
ROOM = "room:" + "11" * 16
OTHER_ROOM = "room:" + "22" * 16


def mid(label: object) -> bytes:
    return hashlib.sha256(repr(label).encode()).digest()[:16]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(database_path(tmp_path)) as database:
        yield database


def post(label: object, body: str, author: str = ALICE, lamport: int = 5) -> RoomPost:
    return RoomPost(mid(label), author, author == ME, 1000, lamport, body)


def bodies(messages: list[StoredMessage]) -> list[tuple[bytes, str, str]]:
    return [(m.id, m.author, m.body) for m in messages]


def test_a_direct_message_with_a_posts_id_does_not_keep_the_post_out(db: Database) -> None:
    shadow = db.store_incoming(mid("plan"), MALLORY, MALLORY, 900, 3, "shadow", 1)
    assert shadow is not None
    assert db.sync_room_posts(ROOM, [post("plan", "the plan")], 2) == [mid("plan")]
    assert bodies(db.history(ROOM)) == [(mid("plan"), ALICE, "the plan")]
    assert bodies(db.history(MALLORY)) == [(mid("plan"), MALLORY, "shadow")]
    # Re-synced: the room stays as its log says, the direct message as it came.
    assert db.sync_room_posts(ROOM, [post("plan", "the plan")], 3) == []
    assert bodies(db.history(ROOM)) == [(mid("plan"), ALICE, "the plan")]
    assert db.get_message(MALLORY, mid("plan")) == shadow
    # The other order: the post first, then a direct message of its id.
    db.sync_room_posts(OTHER_ROOM, [post("later", "posted first")], 4)
    late = db.store_incoming(mid("later"), MALLORY, MALLORY, 900, 3, "second", 5)
    assert late is not None
    assert late.peer == MALLORY
    assert bodies(db.history(OTHER_ROOM)) == [(mid("later"), ALICE, "posted first")]
    assert {m.peer for m in db.search("shadow")} == {MALLORY}
    assert {m.peer for m in db.search("plan")} == {ROOM}
    assert db.integrity_check() == "ok"


def test_a_direct_edit_or_delete_reaches_only_the_senders_conversation(db: Database) -> None:
    # Mallory's own room posts: only signed room operations may change them.
    db.sync_room_posts(ROOM, [post(1, "kept", MALLORY), post(2, "stays", MALLORY)], 1)
    db.store_incoming(mid(1), MALLORY, MALLORY, 900, 3, "direct", 1)
    edited = db.apply_edit(mid("e"), mid(1), MALLORY, "edited", 7, 2)
    assert edited is not None
    assert (edited.peer, edited.body) == (MALLORY, "edited")
    assert db.apply_delete(mid("d"), mid(2), MALLORY, 3) is None  # no direct message 2
    assert bodies(db.history(ROOM)) == [(mid(1), MALLORY, "kept"), (mid(2), MALLORY, "stays")]
    assert not any(m.deleted or m.edited_at for m in db.history(ROOM))
    # Our own direct edit and delete name the peer: a room post of that id is not theirs.
    ours = db.queue_message(mid("ours"), ALICE, ME, 1, db.tick_lamport(), "hi", b"w", 1)
    db.sync_room_posts(OTHER_ROOM, [post("ours", "my post", ME)], 1)
    db.delete_own(mid("d2"), mid("ours"), ME, b"d", ALICE, 4)
    assert db.get_message(OTHER_ROOM, mid("ours")) == StoredMessage(
        mid("ours"), OTHER_ROOM, ME, True, 1000, 5, 1, "my post", None, False, None, None
    )
    assert db.get_message(ALICE, mid("ours")) == StoredMessage(
        ours.id, ALICE, ME, True, 1, ours.lamport, 1, "", None, True, None, None
    )


def test_receipts_and_acks_reach_only_their_conversation(db: Database) -> None:
    db.sync_room_posts(ROOM, [post("p", "a post of mine", ME)], 1)
    db.queue_message(mid("p"), ALICE, ME, 1, db.tick_lamport(), "to alice", b"w", 1)
    db.store_incoming(mid("q"), ALICE, ALICE, 1, 2, "from alice", 1)
    db.sync_room_posts(OTHER_ROOM, [post("q", "alice in the room")], 1)
    assert db.mark_delivered(ALICE, [mid("p")], 5) == [mid("p")]
    assert db.mark_read_by_peer(mid("r"), [mid("p")], ALICE, 6) == [mid("p")]
    assert db.mark_read_locally(ALICE, None, 7) == [mid("q")]
    room_post = db.get_message(ROOM, mid("p"))
    assert room_post is not None
    assert (room_post.delivered_at, room_post.read_at) == (None, None)
    in_room = db.get_message(OTHER_ROOM, mid("q"))
    assert in_room is not None
    assert in_room.read_at is None
    assert db.mark_read_locally(OTHER_ROOM, mid("q"), 8) == [mid("q")]


def test_a_v6_database_opens_at_v7_with_its_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = database_path(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:6])
        with Database.open(path) as old:
            assert old.settings()["user_version"] == 6
            lamport = old.tick_lamport()
            sent = old.queue_message(mid(1), ALICE, ME, 10, lamport, "café at noon", b"w1", 11)
            old.sync_room_posts(ROOM, [post(3, "room plans")], 16)
        with closing(sqlite3.connect(path)) as raw, raw:  # received as v6 stored it
            insert = (
                "INSERT INTO messages (id, peer, author, outgoing, sent_at, lamport,"
                " stored_at, body) VALUES (?, ?, ?, 0, 1, 2, 3, ?) ON CONFLICT (id) DO NOTHING"
            )
            raw.execute(insert, (mid(2), ALICE, ALICE, "see you there"))
            # The defect: a direct message with a post's id was taken for a repeat.
            assert not raw.execute(insert, (mid(3), MALLORY, MALLORY, "shadow")).rowcount
        with Database.open(path) as old:
            old.apply_edit(mid("e"), mid(2), ALICE, "see you at the café", 14, 15)
            before = {peer: old.conversation(peer) for peer in (ALICE, ROOM)}
            assert old.integrity_check() == "ok"
    with Database.open(path) as db:
        assert db.settings()["user_version"] == storage.SCHEMA_VERSION == 7
        assert {peer: db.conversation(peer) for peer in (ALICE, ROOM)} == before
        assert db.get_message(ALICE, mid(1)) == sent
        assert db.outbox(ALICE) == [(1, mid(1), b"w1")]
        assert {m.id for m in db.search("cafe")} == {mid(1), mid(2)}
        assert db.apply_edit(mid("e"), mid(2), ALICE, "replayed", 20, 21) is None  # kept
        assert db.integrity_check() == "ok"
        # Now ids are per conversation, and the full-text index follows new rows too.
        shadow = db.store_incoming(mid(3), MALLORY, MALLORY, 1, 1, "shadow", 22)
        assert shadow is not None
        assert bodies(db.history(ROOM)) == [(mid(3), ALICE, "room plans")]
        assert [m.peer for m in db.search("shadow")] == [MALLORY]
        db.apply_delete(mid("d"), mid(2), ALICE, 23)
        assert {m.id for m in db.search("cafe")} == {mid(1)}
        assert db.integrity_check() == "ok"
