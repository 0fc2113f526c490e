"""Durable direct messages (schema v2): exactly-once storage and operations, the outbox and
the Lamport clock, receipts, history paging, and full-text search.  Crash durability of
queued messages is tested with the other SIGKILL checks in test_storage.py."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pim import storage
from p2pim.api import NotYourMessage, StoredMessage, UnknownMessage
from p2pim.storage import (
    MAX_LAMPORT,
    MEMORY,
    Database,
    StorageError,
    Store,
    schema,
)

ME, ALICE, BOB = "m" * 64, "a" * 64, "b" * 64


def mid(label: object) -> bytes:
    """A 16-byte message or operation id."""
    return hashlib.sha256(repr(label).encode()).digest()[:16]


def send(db: Database, label: object, peer: str = ALICE, body: str = "hi") -> StoredMessage:
    """Queue a message we wrote, as the node does: tick the clock, then queue."""
    lamport = db.tick_lamport()
    return db.queue_message(mid(label), peer, ME, 1000, lamport, body, b"wire:" + mid(label), 2000)


def receive(
    db: Database, label: object, peer: str = ALICE, body: str = "hello", lamport: int = 1
) -> StoredMessage | None:
    return db.store_incoming(mid(label), peer, peer, 1000, lamport, body, 3000)


def ids(messages: list[StoredMessage]) -> list[bytes]:
    return [m.id for m in messages]


# -- the migration ---------------------------------------------------------------------------


def test_a_v1_database_with_peers_is_migrated_keeping_them(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        with Database.open(path) as db:
            public = hashlib.sha256(b"alice").digest()
            alice = db.pin_peer(public, ALICE, "alice", 10, trust="verified")
            db.remember_address(ALICE, "10.0.0.1", 7000, 11)
            db.add_manual_peer("10.0.0.9", 7001, 12)
            assert db.settings()["user_version"] == 1
    with Database.open(path) as db:
        assert db.settings()["user_version"] == storage.SCHEMA_VERSION == 7
        assert db.peers() == [alice]
        assert db.addresses(ALICE) == [("10.0.0.1", 7000)]
        assert db.manual_peers() == [("10.0.0.9", 7001)]
        assert db.conversation(ALICE) == []
        assert db.outbox_peers() == []
        assert db.tick_lamport() == 1
        send(db, 1, body="after the upgrade")
        assert ids(db.search("upgrade")) == [mid(1)]
        assert db.integrity_check() == "ok"


def test_the_schema_refuses_malformed_rows(db: Database, path: Path) -> None:
    with closing(sqlite3.connect(path)) as raw:
        for bad_id in (b"x" * 15, "0123456789abcdef"):  # wrong length; text, not bytes
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                raw.execute(
                    "INSERT INTO messages (id, peer, author, outgoing, sent_at, lamport,"
                    " stored_at, body) VALUES (?, 'p', 'p', 0, 1, 1, 1, '')",
                    (bad_id,),
                )
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            raw.execute(
                "INSERT INTO outbox (id, peer, payload, created_at) VALUES (?, 'p', 'text', 1)",
                (mid(1),),
            )
    with pytest.raises(ValueError, match="16 bytes"):
        db.store_incoming(b"short", ALICE, ALICE, 1, 1, "x", 1)
    with pytest.raises(ValueError, match="lamport"):
        db.store_incoming(mid(1), ALICE, ALICE, 1, -1, "x", 1)
    with pytest.raises(ValueError, match="sent_at"):  # a peer's uint64: beyond SQLite's range
        db.store_incoming(mid(1), ALICE, ALICE, 2**64 - 1, 1, "x", 1)
    with pytest.raises(ValueError, match="limit"):
        db.history(ALICE, limit=-1)
    with pytest.raises(TypeError, match="sequence of ids"):
        db.mark_delivered(ALICE, mid(1), 1)  # type: ignore[arg-type]
    assert db.conversation(ALICE) == []


# -- sending: messages and the outbox --------------------------------------------------------


def test_queue_message_stores_and_queues_in_order(db: Database) -> None:
    first = send(db, 1, body="one")
    assert first == StoredMessage(
        mid(1), ALICE, ME, True, 1000, 1, 2000, "one", None, False, None, None
    )
    send(db, 2, peer=BOB)
    send(db, 3)
    db.queue_operation(mid("op"), ALICE, b"an edit", 2500)
    send(db, 4)
    queue = db.outbox(ALICE)
    assert [(id, payload) for _, id, payload in queue] == [
        (mid(1), b"wire:" + mid(1)),
        (mid(3), b"wire:" + mid(3)),
        (mid("op"), b"an edit"),
        (mid(4), b"wire:" + mid(4)),
    ]
    seqs = [seq for seq, _, _ in queue]
    assert seqs == sorted(seqs)
    assert db.outbox(ALICE, after_seq=seqs[1], limit=1) == [queue[2]]
    assert db.outbox(ALICE, limit=0) == []
    assert db.outbox_peers() == [ALICE, BOB]
    assert (db.outbox_size(ALICE), db.outbox_size(BOB), db.outbox_size(ME)) == (4, 1, 0)
    assert ids(db.conversation(ALICE)) == [mid(1), mid(3), mid(4)]


def test_queue_message_is_all_or_nothing(db: Database) -> None:
    db.queue_operation(mid("taken"), ALICE, b"op", 1)
    # The message row would be new, but its outbox entry clashes: neither is written.
    with pytest.raises(StorageError, match="UNIQUE"):
        db.queue_message(mid("taken"), ALICE, ME, 1, 1, "lost?", b"wire", 1)
    assert db.get_message(ALICE, mid("taken")) is None
    assert db.outbox_size(ALICE) == 1
    send(db, 1)
    with pytest.raises(StorageError, match="UNIQUE"):  # our own ids are never reused
        send(db, 1)


# -- receiving: exactly once -----------------------------------------------------------------


def test_store_incoming_stores_each_id_once(db: Database) -> None:
    stored = receive(db, 1, body="hello", lamport=7)
    assert stored == StoredMessage(
        mid(1), ALICE, ALICE, False, 1000, 7, 3000, "hello", None, False, None, None
    )
    assert receive(db, 1, body="hello") is None  # re-delivered: ack it, show nothing
    assert receive(db, 1, body="changed", lamport=9) is None  # the first copy wins
    assert db.get_message(ALICE, mid(1)) == stored
    # A peer cannot overwrite one of our messages by reusing its id; another peer's
    # message of that id is its own, in its own conversation.
    ours = send(db, 2)
    assert receive(db, 2, body="spoof") is None
    assert db.get_message(ALICE, mid(2)) == ours
    theirs = receive(db, 2, peer=BOB, body="same id, other peer")
    assert theirs is not None
    assert (theirs.peer, theirs.body) == (BOB, "same id, other peer")
    assert db.get_message(ALICE, mid(2)) == ours
    assert db.outbox_size(ALICE) == 1  # receiving queues nothing


# -- the Lamport clock -----------------------------------------------------------------------


def test_lamport_tick_and_observe(path: Path) -> None:
    with Database.open(path) as db:
        assert [db.tick_lamport(), db.tick_lamport()] == [1, 2]
        db.observe_lamport(10)
        assert db.tick_lamport() == 11
        db.observe_lamport(5)  # an older value never moves the clock back
        assert db.tick_lamport() == 12
        assert db.tick_lamport(observed=20) == 21
        receive(db, 1, lamport=30)
        assert db.tick_lamport() == 31
        receive(db, 1, lamport=50)  # even a repeat is observed
        assert db.tick_lamport() == 51
        db.queue_message(mid(2), ALICE, ME, 1, 60, "x", b"", 1)
    with Database.open(path) as db:  # the clock is on disk
        assert db.tick_lamport() == 61
        for bad in (-1, MAX_LAMPORT + 1):
            with pytest.raises(ValueError, match="observed"):
                db.observe_lamport(bad)
        db.observe_lamport(MAX_LAMPORT)  # a jump is capped, so the clock never runs out
        assert 61 < db.tick_lamport() <= 62 + 2**32


# -- edits and deletes -----------------------------------------------------------------------


def test_edits_apply_once_and_only_by_the_author(db: Database) -> None:
    receive(db, "m", body="helo wrold")
    assert db.apply_edit(mid("e1"), mid("m"), BOB, "forged", 5, 10) is None
    edited = db.apply_edit(mid("e1"), mid("m"), ALICE, "hello world", 5, 10)
    assert edited is not None
    assert (edited.body, edited.edited_at) == ("hello world", 5)
    # Replayed: a no-op, even with other content.
    assert db.apply_edit(mid("e1"), mid("m"), ALICE, "again", 6, 11) is None
    assert db.get_message(ALICE, mid("m")) == edited
    assert ids(db.search("world")) == [mid("m")]
    assert db.search("wrold") == []
    # A peer cannot edit our messages.
    send(db, "ours", body="mine")
    assert db.apply_edit(mid("e2"), mid("ours"), ALICE, "theirs", 7, 12) is None
    assert db.get_message(ALICE, mid("ours")).body == "mine"  # type: ignore[union-attr]


def test_an_operation_for_an_unknown_message_can_apply_later(db: Database) -> None:
    assert db.apply_edit(mid("e"), mid("late"), ALICE, "edited", 5, 10) is None
    assert db.apply_delete(mid("d"), mid("late"), ALICE, 10) is None
    receive(db, "late", body="original")
    edited = db.apply_edit(mid("e"), mid("late"), ALICE, "edited", 5, 11)
    assert edited is not None
    assert edited.body == "edited"


def test_deletes_apply_once_leave_a_tombstone_and_end_edits(db: Database) -> None:
    receive(db, "m", body="secret plans")
    assert db.apply_delete(mid("d1"), mid("m"), BOB, 10) is None
    deleted = db.apply_delete(mid("d1"), mid("m"), ALICE, 10)
    assert deleted is not None
    assert (deleted.body, deleted.deleted) == ("", True)
    assert db.apply_delete(mid("d1"), mid("m"), ALICE, 11) is None  # replayed
    assert db.apply_delete(mid("d2"), mid("m"), ALICE, 12) is None  # deleted already
    assert db.apply_edit(mid("e1"), mid("m"), ALICE, "back from the dead", 13, 13) is None
    assert db.get_message(ALICE, mid("m")) == deleted
    assert db.search("secret") == []
    assert db.search("dead") == []
    assert db.integrity_check() == "ok"


def test_edit_own_and_delete_own_update_and_queue_together(db: Database) -> None:
    send(db, "m", body="see you at 5")
    edited = db.edit_own(mid("e"), mid("m"), ME, "see you at 6", 4000, b"edit-op", ALICE, 4001)
    assert (edited.body, edited.edited_at) == ("see you at 6", 4000)
    assert [id for _, id, _ in db.outbox(ALICE)] == [mid("m"), mid("e")]
    db.mark_delivered(ALICE, [mid("m"), mid("e")], 4002)

    deleted = db.delete_own(mid("d"), mid("m"), ME, b"delete-op", ALICE, 5000)
    assert (deleted.body, deleted.deleted, deleted.delivered_at) == ("", True, 4002)
    assert db.outbox(ALICE) == [(3, mid("d"), b"delete-op")]
    assert db.search("see") == []


def test_deleting_an_undelivered_message_means_it_never_leaves(db: Database) -> None:
    send(db, "oops", body="wrong chat")
    send(db, "fine")
    db.delete_own(mid("d"), mid("oops"), ME, b"delete-op", ALICE, 5000)
    assert [id for _, id, _ in db.outbox(ALICE)] == [mid("fine"), mid("d")]


def test_edit_own_and_delete_own_refuse_clearly_and_change_nothing(db: Database) -> None:
    receive(db, "theirs")
    send(db, "ours")
    send(db, "gone")
    db.delete_own(mid("d0"), mid("gone"), ME, b"", ALICE, 1)
    before = (db.conversation(ALICE), db.outbox(ALICE))
    with pytest.raises(NotYourMessage):
        db.edit_own(mid("e"), mid("theirs"), ME, "x", 1, b"", ALICE, 1)
    with pytest.raises(NotYourMessage):
        db.delete_own(mid("d"), mid("theirs"), ME, b"", ALICE, 1)
    with pytest.raises(UnknownMessage, match="no message"):
        db.edit_own(mid("e"), mid("nope"), ME, "x", 1, b"", ALICE, 1)
    with pytest.raises(UnknownMessage, match="no message"):  # not in that conversation
        db.delete_own(mid("d"), mid("ours"), ME, b"", BOB, 1)
    with pytest.raises(UnknownMessage, match="deleted"):
        db.edit_own(mid("e"), mid("gone"), ME, "x", 1, b"", ALICE, 1)
    with pytest.raises(UnknownMessage, match="deleted"):
        db.delete_own(mid("d"), mid("gone"), ME, b"", ALICE, 1)
    assert (db.conversation(ALICE), db.outbox(ALICE)) == before
    # None of the refused operation ids was recorded: they are still free to use.
    db.edit_own(mid("e"), mid("ours"), ME, "fine", 2, b"", ALICE, 2)


# -- acknowledgements and read receipts ------------------------------------------------------


def test_mark_delivered_once_per_message(db: Database) -> None:
    send(db, 1)
    send(db, 2)
    db.queue_operation(mid("op"), ALICE, b"op", 1)
    receive(db, "in")
    assert db.mark_delivered(BOB, [mid(1), mid("op")], 4000) == []  # not bob's to ack
    assert db.outbox_size(ALICE) == 3
    assert db.mark_delivered(ALICE, [mid(1), mid("op"), mid("in"), mid("unknown")], 5000) == [
        mid(1)
    ]
    assert [id for _, id, _ in db.outbox(ALICE)] == [mid(2)]
    assert db.mark_delivered(ALICE, [mid(1), mid("op")], 6000) == []  # a repeated ack
    assert db.get_message(ALICE, mid(1)).delivered_at == 5000  # type: ignore[union-attr]
    assert db.get_message(ALICE, mid("in")).delivered_at is None  # type: ignore[union-attr]
    assert db.mark_delivered(ALICE, [mid(2), mid(2)], 7000) == [mid(2)]
    assert db.outbox_peers() == []
    assert db.mark_delivered(ALICE, [], 8000) == []


def test_read_receipts_apply_once(db: Database) -> None:
    send(db, 1)
    send(db, 2)
    send(db, 3, peer=BOB)
    receive(db, "in")
    receipt = [mid(1), mid(2), mid(3), mid("in"), mid("unknown")]
    # Only our messages to the peer who sent the receipt become read.
    assert db.mark_read_by_peer(mid("r1"), receipt, ALICE, 5000) == [mid(1), mid(2)]
    assert db.mark_read_by_peer(mid("r1"), receipt, ALICE, 6000) == []  # replayed
    assert db.mark_read_by_peer(mid("r2"), [mid(1)], ALICE, 7000) == []  # read already
    read_at = {m.id: m.read_at for m in db.conversation(ALICE)}
    assert read_at == {mid(1): 5000, mid(2): 5000, mid("in"): None}
    assert db.get_message(BOB, mid(3)).read_at is None  # type: ignore[union-attr]
    assert db.mark_read_by_peer(mid("r3"), [mid(3)], BOB, 8000) == [mid(3)]


def test_mark_read_locally_up_to_a_message(db: Database) -> None:
    for n in range(1, 6):
        receive(db, n, lamport=10 * n)
    receive(db, "bob", peer=BOB, lamport=1)
    db.queue_message(mid("ours"), ALICE, ME, 1, 35, "reply", b"", 1)  # between 3 and 4
    assert db.mark_read_locally(ALICE, mid(3), 100) == [mid(1), mid(2), mid(3)]
    assert db.mark_read_locally(ALICE, mid(3), 200) == []
    assert db.mark_read_locally(ALICE, mid("ours"), 300) == []  # our own are not "unread"
    assert db.mark_read_locally(ALICE, None, 400) == [mid(4), mid(5)]
    assert [m.read_at for m in db.conversation(ALICE)] == [100, 100, 100, None, 400, 400]
    assert db.get_message(BOB, mid("bob")).read_at is None  # type: ignore[union-attr]
    with pytest.raises(UnknownMessage):
        db.mark_read_locally(ALICE, mid("bob"), 500)  # another conversation's message
    with pytest.raises(UnknownMessage):
        db.mark_read_locally(ALICE, mid("nope"), 500)


# -- history ---------------------------------------------------------------------------------


def test_history_pages_cover_a_conversation_once_in_order(db: Database) -> None:
    for n in range(120):
        # Pairs share a Lamport value (concurrent sends); the id breaks the tie.
        if n % 3:
            receive(db, n, body=f"in {n}", lamport=n // 2)
        else:
            db.queue_message(mid(n), ALICE, ME, n, n // 2, f"out {n}", b"", n)
        receive(db, ("bob", n), peer=BOB, lamport=n)
    everything = db.conversation(ALICE)
    assert len(everything) == 120
    assert [(m.lamport, m.id) for m in everything] == sorted((m.lamport, m.id) for m in everything)

    pages = [db.history(ALICE, limit=50)]
    while len(pages) < 4:
        pages.insert(0, db.history(ALICE, before=pages[0][0].id, limit=50))
        if not pages[0]:
            break
    assert [len(page) for page in pages] == [0, 20, 50, 50]
    assert [m for page in pages for m in page] == everything
    assert db.history(ALICE, limit=0) == []
    assert db.history(ALICE, before=everything[1].id) == everything[:1]
    with pytest.raises(UnknownMessage):
        db.history(ALICE, before=mid(("bob", 1)))
    assert db.history("nobody") == []


# -- full-text search ------------------------------------------------------------------------


def test_search_finds_words_across_conversations_best_first(db: Database) -> None:
    send(db, "a1", peer=ALICE, body="Pizza tonight?")
    receive(db, "b1", peer=BOB, body="pizza pizza pizza")
    receive(db, "b2", peer=BOB, body="no thanks, salad")
    receive(db, "a2", peer=ALICE, body="tonight works, bring the pizza and a salad")
    assert set(ids(db.search("pizza"))) == {mid("a1"), mid("b1"), mid("a2")}
    assert ids(db.search("PIZZA"))[0] == mid("b1")  # most relevant first
    assert set(ids(db.search("pizza tonight"))) == {mid("a1"), mid("a2")}  # every word
    assert ids(db.search("salad thanks")) == [mid("b2")]
    assert db.search("pizzas") == []
    assert db.search("burger") == []
    assert len(db.search("pizza", limit=2)) == 2
    assert db.search("pizza", limit=0) == []


def test_search_takes_each_word_as_the_start_of_a_word(db: Database) -> None:
    receive(db, "m", body="Marketing review on Thursday")
    receive(db, "s", body="the market is closed")
    assert set(ids(db.search("marke"))) == {mid("m"), mid("s")}
    assert ids(db.search("marketi thu")) == [mid("m")]
    assert db.search("arketing") == []  # the start of a word, not any part of it


def test_search_follows_edits_and_forgets_deletes(db: Database) -> None:
    receive(db, "m", body="meet at the station")
    db.apply_edit(mid("e"), mid("m"), ALICE, "meet at the harbour", 5, 5)
    assert db.search("station") == []
    assert ids(db.search("harbour")) == [mid("m")]
    db.apply_delete(mid("d"), mid("m"), ALICE, 6)
    assert db.search("harbour") == []
    assert db.search("meet") == []
    assert db.integrity_check() == "ok"


def test_search_folds_case_and_diacritics(db: Database) -> None:
    receive(db, 1, body="Un café crème, s'il vous plaît")
    receive(db, 2, body="a naïve cafe owner in Malmö")
    assert set(ids(db.search("cafe"))) == {mid(1), mid(2)}
    assert ids(db.search("CAFÉ CREME")) == [mid(1)]
    assert ids(db.search("naive malmo")) == [mid(2)]
    assert ids(db.search("plait")) == [mid(1)]


ODD_QUERIES = [
    'it"s (weird) AND',
    '"',
    '""',
    "(",
    ")",
    "AND",
    "OR",
    "NOT",
    "a OR b",
    "NEAR(a b, 2)",
    "NEAR",
    "*",
    "a*",
    "* weird",
    "^weird",
    "-weird",
    "+weird",
    "body:weird",
    "{body}: weird",
    "messages_fts",
    "'; DROP TABLE messages; --",
    "\0",
    "weird\0 AND",
    "\ud800 weird",
    "🎉",
    "🎉🎉 🎉",
    "日本語",
    " \t\n ",
    "",
]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_search_takes_any_text_literally(db: Database, query: str) -> None:
    receive(db, 1, body="it's weird (really) AND or NOT: a NEAR miss 🎉 日本語 テキスト")
    receive(db, 2, body="quiet lull")  # no word starts like any odd query's words
    found = db.search(query)
    assert ids(found) in ([], [mid(1)])
    assert db.conversation(ALICE)[0].body.startswith("it's")  # the table is still there


def test_search_matches_the_odd_words_it_can(db: Database) -> None:
    receive(db, 1, body="it's weird (really) and wonderful 🎉 日本語 テキスト")
    assert ids(db.search('it"s (weird) AND')) == [mid(1)]
    assert ids(db.search("日本語")) == [mid(1)]
    assert ids(db.search("🎉 wonderful")) == [mid(1)]  # an emoji is no word, so it is dropped
    assert db.search("") == db.search("   ") == db.search("🎉") == []


@pytest.fixture(scope="module")
def search_db() -> Iterator[Database]:
    with Database.open(MEMORY) as database:
        receive(database, 1, body="the quick brown fox")
        yield database


@given(st.text())
def test_search_never_fails_on_user_text(search_db: Database, query: str) -> None:
    assert ids(search_db.search(query)) in ([], [mid(1)])


# -- health ----------------------------------------------------------------------------------


def test_integrity_check_covers_the_full_text_index(db: Database, path: Path) -> None:
    receive(db, 1, body="indexed words")
    assert db.integrity_check() == "ok"
    with closing(sqlite3.connect(path)) as raw:  # change a body behind the index's back
        raw.execute("DROP TRIGGER messages_fts_update")
        raw.execute("UPDATE messages SET body = 'other text'")
        raw.commit()
    assert "messages_fts" in db.integrity_check()


# -- the async Store -------------------------------------------------------------------------


async def test_store_messaging_round_trip(store: Store) -> None:
    lamport = await store.run(Database.tick_lamport)
    await store.run(Database.observe_lamport, 0)
    sent = await store.run(
        Database.queue_message, mid(1), ALICE, ME, 1, lamport, "hi café", b"w", 2
    )
    assert (
        await store.run(Database.store_incoming, mid(2), ALICE, ALICE, 3, 5, "hello", 4) is not None
    )
    assert await store.run(Database.store_incoming, mid(2), ALICE, ALICE, 3, 5, "hello", 4) is None
    await store.run(Database.edit_own, mid("e"), mid(1), ME, "hi cafe", 5, b"e", ALICE, 6)
    edited = await store.run(Database.apply_edit, mid("e2"), mid(2), ALICE, "hello!", 7, 8)
    assert edited is not None
    assert edited.body == "hello!"
    assert await store.run(Database.apply_delete, mid("d2"), mid(2), BOB, 9) is None
    await store.run(Database.queue_operation, mid("r"), ALICE, b"receipt", 10)
    assert await store.run(Database.outbox_peers) == [ALICE]
    assert await store.run(Database.outbox_size, ALICE) == 3
    assert [id for _, id, _ in await store.run(Database.outbox, ALICE, 0, 2)] == [mid(1), mid("e")]
    assert await store.run(Database.mark_delivered, ALICE, [mid(1)], 11) == [mid(1)]
    assert await store.run(Database.mark_read_by_peer, mid("r2"), [mid(1)], ALICE, 12) == [mid(1)]
    assert await store.run(Database.mark_read_locally, ALICE, None, 13) == [mid(2)]
    assert ids(await store.run(Database.history, ALICE, limit=1)) == [mid(2)]
    assert ids(await store.run(Database.history, ALICE, before=mid(2), limit=5)) == [mid(1)]
    assert ids(await store.run(Database.search, "cafe", limit=5)) == [mid(1)]
    assert len(await store.run(Database.conversation, ALICE)) == 2
    assert (await store.run(Database.get_message, ALICE, mid(1))) == (
        StoredMessage(mid(1), ALICE, ME, True, 1, 1, 2, "hi cafe", 5, False, 11, 12)
    )
    await store.run(Database.delete_own, mid("d"), mid(1), ME, b"d", ALICE, 14)
    assert sent.body == "hi café"  # rows are snapshots
    assert await store.run(Database.integrity_check) == "ok"


def test_no_peer_value_can_run_the_clock_out(db: Database) -> None:
    receive(db, "hostile", lamport=2**62)
    ticked = db.tick_lamport()
    assert ticked <= 2**32 + 1  # moved forward, but by a bounded step
    for i in range(3):
        receive(db, f"hostile {i}", lamport=2**62)
        ticked = db.tick_lamport()
    assert ticked < 2**35
