"""Durable direct messages between real nodes on loopback TCP with real SQLite stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from p2pim import Identity, PeerUnknown, open_node
from p2pim.api import NotYourMessage
from p2pim.events import (
    MessageDeleted,
    MessageDelivered,
    MessageEdited,
    MessageRead,
    MessageReceived,
    PeerDisconnected,
    TypingChanged,
)
from p2pim.export import export
from p2pim.names import PeerNameError, resolve_peer
from tests.support.nodes import loopback_config, meet, next_event


async def test_messages_to_an_offline_peer_arrive_once_in_order_when_it_returns(
    tmp_path: Path,
) -> None:
    alice, bob = Identity.generate(), Identity.generate()
    a_store, b_store = tmp_path / "a.db", tmp_path / "b.db"
    async with open_node(alice, loopback_config("alice"), store_path=a_store) as a:
        a_events = a.subscribe()
        async with open_node(bob, loopback_config("bob"), store_path=b_store) as b:
            await meet(a, b)
        await next_event(a_events, lambda e: isinstance(e, PeerDisconnected))
        sent = [await a.send_text(bob.fingerprint, f"message {i}") for i in range(30)]
        assert not a.is_connected(bob.fingerprint)

        async with open_node(bob, loopback_config("bob"), store_path=b_store) as b:
            b_events = b.subscribe()
            await b.connect("127.0.0.1", a.port, a.fingerprint)
            received = [
                await next_event(b_events, lambda e: isinstance(e, MessageReceived)) for _ in sent
            ]
            assert [e.message_id for e in received] == sent  # type: ignore[attr-defined]
            delivered = {
                (await next_event(a_events, lambda e: isinstance(e, MessageDelivered))).message_id  # type: ignore[attr-defined]
                for _ in sent
            }
            assert delivered == set(sent)
            history = await b.history(alice.fingerprint, limit=100)
            assert [m.id.hex() for m in history] == sent
            assert [m.body for m in history] == [f"message {i}" for i in range(30)]
            # The outbox is empty: nothing is sent twice on the next session.
            assert b_events.statistics().current_buffer_used == 0


async def test_edits_deletes_reads_and_typing_reach_the_other_side() -> None:
    async with (
        open_node(Identity.generate(), loopback_config("a")) as a,
        open_node(Identity.generate(), loopback_config("b")) as b,
    ):
        await meet(a, b)
        a_events, b_events = a.subscribe(), b.subscribe()
        first = await a.send_text(b.fingerprint, "helo")
        second = await a.send_text(b.fingerprint, "oops")
        for _ in range(2):
            await next_event(b_events, lambda e: isinstance(e, MessageReceived))

        await a.edit(b.fingerprint, first, "hello")
        edited = await next_event(b_events, lambda e: isinstance(e, MessageEdited))
        assert edited == MessageEdited(a.fingerprint, first, "hello")
        await a.delete(b.fingerprint, second)
        assert await next_event(b_events, lambda e: isinstance(e, MessageDeleted)) == (
            MessageDeleted(a.fingerprint, second)
        )
        [kept, gone] = await b.history(a.fingerprint)
        assert (kept.body, kept.edited_at is not None) == ("hello", True)
        assert (gone.body, gone.deleted) == ("", True)

        reply = await b.send_text(a.fingerprint, "hi")
        await next_event(a_events, lambda e: isinstance(e, MessageReceived))
        with pytest.raises(NotYourMessage):
            await a.edit(b.fingerprint, reply, "forged")

        assert await b.mark_read(a.fingerprint) == [first, second]
        read = {
            (await next_event(a_events, lambda e: isinstance(e, MessageRead))).message_id  # type: ignore[attr-defined]
            for _ in range(2)
        }
        assert read == {first, second}

        await b.set_typing(a.fingerprint, True)
        assert await next_event(a_events, lambda e: isinstance(e, TypingChanged)) == (
            TypingChanged(b.fingerprint, True)
        )
        await b.set_typing(a.fingerprint, False)
        assert await next_event(a_events, lambda e: isinstance(e, TypingChanged)) == (
            TypingChanged(b.fingerprint, False)
        )


async def test_search_spans_conversations_and_export_reproduces_one(tmp_path: Path) -> None:
    async with (
        open_node(Identity.generate(), loopback_config("a")) as a,
        open_node(Identity.generate(), loopback_config("b")) as b,
        open_node(Identity.generate(), loopback_config("c")) as c,
    ):
        await meet(a, b)
        await meet(a, c)
        await a.send_text(b.fingerprint, "the quarterly report is late")
        await a.send_text(c.fingerprint, "lunch? then the Report")
        await a.send_text(c.fingerprint, "nothing to see")
        found = await a.search("report")
        assert sorted(m.peer for m in found) == sorted([b.fingerprint, c.fingerprint])
        assert await a.search('"unbalanced (quote AND') == []

        history = await a.history(c.fingerprint)
        nicks = {a.fingerprint: "me", c.fingerprint: "c"}
        lines = export(history, nicks, c.fingerprint, "jsonl").splitlines()
        assert [json.loads(line)["body"] for line in lines] == [m.body for m in history]
        markdown = export(history, nicks, c.fingerprint, "markdown")
        assert "lunch? then the Report" in markdown
        assert "nothing to see" in markdown


async def test_only_known_peers_can_be_written_to() -> None:
    async with open_node(Identity.generate(), loopback_config("a")) as a:
        with pytest.raises(PeerUnknown):
            await a.send_text(Identity.generate().fingerprint, "hello?")


def test_peer_names_resolve_uniquely() -> None:
    peers = [("ab12" + "0" * 60, "alice"), ("ab34" + "0" * 60, "bob"), ("cd56" + "0" * 60, "bob")]
    assert resolve_peer("alice", peers) == peers[0][0]
    assert resolve_peer("AB12", peers) == peers[0][0]
    assert resolve_peer(peers[2][0], peers) == peers[2][0]
    for ambiguous in ("bob", "ab"):
        with pytest.raises(PeerNameError):
            resolve_peer(ambiguous, peers)
    with pytest.raises(PeerNameError, match="no peer"):
        resolve_peer("carol", peers)


async def test_a_burst_cut_off_mid_store_is_kept_once_and_the_node_lives_on(
    tmp_path: Path,
) -> None:
    """A session that ends while its burst is still being stored: what was read is
    stored (and shown) once, the rest comes again, and the node keeps serving."""
    from p2pim.clock import new_message_id
    from p2pim.wire.messages import Text
    from tests.support.nodes import raw_session

    sender = Identity.generate()
    async with open_node(
        Identity.generate(), loopback_config("b"), store_path=tmp_path / "b.db"
    ) as b:
        events = b.subscribe()
        burst = [Text(new_message_id(), 1000 + i, f"m{i}", i + 1) for i in range(600)]
        for _ in range(5):
            link = await raw_session(b.port, sender)
            for message in burst:
                await link.send(message)
            await link.close()  # gone before the node can have stored all of it
        link = await raw_session(b.port, sender)  # the node still serves; resend everything
        for message in burst:
            await link.send(message)
        shown: list[str] = []
        with trio.fail_after(20):
            while len(shown) < len(burst):
                event = await next_event(events, lambda e: isinstance(e, MessageReceived))
                shown.append(event.text)  # type: ignore[union-attr]
        assert sorted(shown) == sorted(m.body for m in burst)  # each exactly once
        history = await b.history(sender.fingerprint, limit=1000)
        assert len(history) == len(burst) == len({m.id for m in history})
        await link.close()
