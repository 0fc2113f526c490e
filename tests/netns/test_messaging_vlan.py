"""Durable direct messages on a virtual LAN: nothing accepted is lost, nothing is shown twice.

Real daemons on network namespaces, driven over JSON-RPC.  Faults are a graceful quit, a
SIGKILL of the sender or of the receiver at random moments (some mid-send) and a pulled
cable.  Every wait is an event awaited under `trio.fail_after`; no sleep synchronises
anything (the few sleeps set a sending rate, jitter where a kill lands, or stand for a user
who keeps typing).  Run with `-s` to see the measured numbers.

What "exactly once" means here: the database holds every accepted message exactly once,
and no event reports a message twice.  Events are notifications, not a log: a daemon killed
between a commit and writing the event loses that event (the state is on disk: `history`).
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

import pytest
import trio

from p2pim.config import database_path
from p2pim.messaging import TYPING_TTL
from p2pim.rpc import BAD_MESSAGE
from p2pim.storage import Database
from p2pim.testing.daemon_process import (
    DaemonProcess,
    Event,
    Predicate,
    RpcFailed,
    connected_to,
    disconnected_from,
    since,
)
from p2pim.testing.vlan import VirtualLan
from tests.support.netns import (
    MESH,
    PRESENCE_TIMEOUT,
    duplicates,
    full_history,
    ids_of,
    launch,
    launch_mesh,
    wait_ids,
)

pytestmark = pytest.mark.netns

DELIVERY = 20.0  # a batch of queued messages reaches a peer that is back


# ---- helpers ------------------------------------------------------------------------------


def typing_from(fp: str, typing: bool) -> Predicate:
    return lambda e: e["type"] == "typing_changed" and e["peer"] == fp and e["typing"] is typing


def received(daemon: DaemonProcess, sender: str) -> list[Event]:
    return [e for e in daemon.events if e["type"] == "message_received" and e["sender"] == sender]


def nth(kind: str, n: int) -> Predicate:
    """Holds from the n-th event of `kind` on (a fresh counter per call)."""
    count = 0

    def predicate(event: Event) -> bool:
        nonlocal count
        if event["type"] == kind:
            count += 1
        return count >= n

    return predicate


async def send(daemon: DaemonProcess, peer: str, text: str) -> str:
    return str((await daemon.call("send", peer=peer, text=text))["id"])


async def converse(
    turns: list[tuple[DaemonProcess, str, DaemonProcess, str, str]],
) -> list[str]:
    """Send each (sender, sender's fp, receiver, receiver's fp, text) in turn, waiting for
    it to arrive before the next: the conversation's order is then the order of `turns`."""
    ids = []
    for sender, _, receiver, receiver_fp, text in turns:
        message_id = await send(sender, receiver_fp, text)
        with trio.fail_after(5):
            await wait_ids(receiver, "message_received", [message_id])
        ids.append(message_id)
    return ids


def check_integrity(profile: Path) -> str:
    with Database.open(database_path(profile)) as db:
        return db.integrity_check()


# ---- 1. offline delivery --------------------------------------------------------------------


async def test_hundred_messages_to_an_offline_peer_arrive_once_in_order_when_it_returns(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1, _ = vlan3.hosts
    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path)
        gone = since(a, disconnected_from(fb))
        assert await b.stop() == 0  # graceful: says goodbye
        with trio.fail_after(2):
            await a.wait_event(gone)

        texts = [f"offline message {i:03d}" for i in range(100)]
        sent_at = trio.current_time()
        ids = []
        for text in texts:
            reply = await a.call("send", peer=fb, text=text)
            assert reply["queued"] is True, reply
            ids.append(reply["id"])
        t_send = trio.current_time() - sent_at
        assert len(set(ids)) == 100

        started_at = trio.current_time()
        b, fb_again = await launch(nursery, h1, tmp_path / "h1")
        assert fb_again == fb
        with trio.fail_after(DELIVERY):
            await wait_ids(a, "message_delivered", ids)
        t_delivered = trio.current_time() - started_at
        with trio.fail_after(5):
            await wait_ids(b, "message_received", ids)

        history = await b.call("history", peer=fa, limit=200)
        outgoing = await a.call("history", peer=fb, limit=200)
        assert await a.stop() == 0
        assert await b.stop() == 0  # every event B ever emitted is in b.events now

    got = received(b, fa)
    assert len(got) == 100
    assert [e["message_id"] for e in got] == ids  # exactly once, in send order
    assert [e["text"] for e in got] == texts
    assert [(m["id"], m["body"], m["author"]) for m in history] == [
        (i, t, fa) for i, t in zip(ids, texts, strict=True)
    ]
    assert sorted(ids_of(a, "message_delivered", fb)) == sorted(ids)
    assert all(m["delivered_at"] is not None for m in outgoing)
    print(
        f"\n100 sends while offline took {t_send:.2f} s (all queued); "
        f"B start -> 100th delivery receipt: {t_delivered:.2f} s"
    )


# ---- 2. crash test --------------------------------------------------------------------------

KILLS = 6
SENDERS = 3  # concurrent `send` calls, so a kill finds some in flight
SEED = int(os.environ.get("P2PIM_CRASH_SEED", "20250607"))


class Stream:
    """A numbered stream of texts to one peer, sent by whichever daemon is alive."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.accepted: list[str] = []  # ids whose `send` was answered: must arrive once
        self.attempted: set[str] = set()  # every text a `send` was issued for
        self.unanswered = 0  # sends cut short by a kill
        self._counter = 0

    async def until_killed(self, daemon: DaemonProcess, kill_after: int, jitter: float) -> int:
        """Send from SENDERS tasks at once; SIGKILL the daemon `jitter` seconds after
        `kill_after` sends were answered, while the other calls are in flight (the daemon is
        then inside a send: in a transaction, an fsync, or answering).  Returns the answered
        count."""
        answered = 0
        enough = trio.Event()

        async def sender() -> None:
            nonlocal answered
            while True:
                self._counter += 1
                text = f"crash stream {self._counter:05d}"
                self.attempted.add(text)
                try:
                    message_id = await send(daemon, self.peer, text)
                except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
                    self.unanswered += 1
                    return
                self.accepted.append(message_id)
                answered += 1
                if answered >= kill_after:
                    enough.set()

        async def killer() -> None:
            await enough.wait()
            await trio.sleep(jitter)  # where the kill lands, not a synchronisation
            await daemon.kill()

        async with trio.open_nursery() as nursery:
            for _ in range(SENDERS):
                nursery.start_soon(sender)
            nursery.start_soon(killer)
        return answered


async def test_sender_killed_mid_stream_loses_and_duplicates_nothing(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1, _ = vlan3.hosts
    rng = random.Random(SEED)
    incarnations: list[DaemonProcess] = []
    profile_a = tmp_path / "h0"

    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path)
        incarnations.append(a)
        stream = Stream(fb)
        for round_no in range(KILLS):
            if round_no:
                a, _ = await launch(nursery, h0, profile_a)
                incarnations.append(a)
                with trio.fail_after(MESH):
                    await a.wait_event(connected_to(fb))
            kill_after, jitter = rng.randint(5, 40), rng.choice([0.0, rng.uniform(0, 0.01)])
            with trio.fail_after(30):
                answered = await stream.until_killed(a, kill_after, jitter)
            print(f"kill {round_no + 1}: {answered} sends answered, +{jitter * 1000:.1f} ms")
        accepted, attempted = stream.accepted, stream.attempted

        # Final incarnation: everything A ever committed must now reach B.
        a, _ = await launch(nursery, h0, profile_a)
        incarnations.append(a)
        with trio.fail_after(DELIVERY):
            await a.wait_event(connected_to(fb))
            await wait_ids(b, "message_received", accepted)
            committed = await a.call("history", peer=fb, limit=1000)
            pending = [m["id"] for m in committed if m["delivered_at"] is None]
            await wait_ids(a, "message_delivered", pending)
        history_b = await b.call("history", peer=fa, limit=1000)
        history_a = await a.call("history", peer=fb, limit=1000)
        assert await a.stop() == 0
        assert await b.stop() == 0

    got = received(b, fa)
    got_ids = [e["message_id"] for e in got]
    assert not duplicates(got_ids), "a message was shown twice"
    assert not duplicates(e["text"] for e in got)
    assert set(accepted) <= set(got_ids), "an accepted message was lost"
    assert {e["text"] for e in got} <= attempted
    # Whatever A committed (accepted, or committed just before a kill) arrived, and only that.
    committed_ids = [m["id"] for m in committed]
    assert len(committed) < 1000  # the history call above was not truncated
    assert set(committed_ids) == set(got_ids)
    assert [m["id"] for m in history_b] == committed_ids  # same order on both sides
    # Every message is marked delivered on disk.  The events say so at most once; a kill
    # between the commit and the notification loses one, which the database makes good.
    assert [m["id"] for m in history_a] == committed_ids
    assert all(m["delivered_at"] is not None for m in history_a)
    delivered = [i for daemon in incarnations for i in ids_of(daemon, "message_delivered", fb)]
    assert not duplicates(delivered)

    results = {name: check_integrity(tmp_path / name) for name in ("h0", "h1")}
    assert results == {"h0": "ok", "h1": "ok"}
    print(
        f"\nseed {SEED}: {KILLS} kills, {len(attempted)} sends issued, {len(accepted)} "
        f"accepted, {stream.unanswered} unanswered at a kill, {len(got_ids)} delivered "
        f"({len(got_ids) - len(accepted)} unanswered-but-committed), no duplicates; "
        f"{len(delivered)} delivery events (the rest lost to kills, marked on disk); "
        f"integrity: {results}"
    )


RECEIVER_KILLS = 5
STREAM_INTERVAL = 0.02  # a sending rate, not a synchronisation


async def test_receiver_killed_mid_stream_stores_and_shows_each_message_once(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1, _ = vlan3.hosts
    rng = random.Random(SEED + 1)
    sent: list[str] = []
    incarnations: list[DaemonProcess] = []

    stop, stopped = trio.Event(), trio.Event()

    async def stream(a: DaemonProcess, fb: str) -> None:
        while not stop.is_set():
            sent.append(await send(a, fb, f"to a crashing peer {len(sent):05d}"))
            await trio.sleep(STREAM_INTERVAL)
        stopped.set()

    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path)
        incarnations.append(b)
        nursery.start_soon(stream, a, fb)
        for round_no in range(RECEIVER_KILLS):
            kill_after, jitter = rng.randint(5, 40), rng.uniform(0, 0.01)
            with trio.fail_after(MESH):
                await b.wait_event(nth("message_received", kill_after))
            await trio.sleep(jitter)  # where the kill lands, not a synchronisation
            await b.kill()
            n_shown = len(ids_of(b, "message_received", fa))
            print(f"receiver kill {round_no + 1}: after {n_shown} messages shown")
            b, _ = await launch(nursery, h1, tmp_path / "h1")
            incarnations.append(b)
        with trio.fail_after(MESH):
            await b.wait_event(connected_to(fa))
        stop.set()
        with trio.fail_after(DELIVERY):
            await stopped.wait()  # `sent` is complete
            await wait_ids(a, "message_delivered", sent)  # A never died: all its events
        history_b = await full_history(b, fa)
        assert await a.stop() == 0
        assert await b.stop() == 0

    # A kill between storing (and acking) a message and writing its event loses the event;
    # the resend then finds it stored, so it is never reported: at most once, as events go.
    shown = [i for daemon in incarnations for i in ids_of(daemon, "message_received", fa)]
    assert not duplicates(shown), "a message was shown twice"
    assert [m["id"] for m in history_b] == sent  # stored exactly once each, in order
    assert not duplicates(ids_of(a, "message_delivered", fb))
    assert check_integrity(tmp_path / "h1") == "ok"
    print(
        f"\n{RECEIVER_KILLS} receiver kills: {len(sent)} sent, all stored once in order; "
        f"{len(shown)} shown as events ({len(sent) - len(shown)} lost to kills between "
        "commit and notification), none twice"
    )


# ---- 3. link drop mid-conversation -----------------------------------------------------------

SEND_INTERVAL = 0.05  # a sending rate, not a synchronisation


async def test_pulled_cable_mid_conversation_loses_and_duplicates_nothing(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1, _ = vlan3.hosts
    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path)
        sent: dict[str, list[str]] = {fa: [], fb: []}  # author -> ids, in send order
        queued: dict[str, Counter[bool]] = {fa: Counter(), fb: Counter()}

        async def say(daemon: DaemonProcess, me: str, peer: str, text: str) -> None:
            reply = await daemon.call("send", peer=peer, text=text)
            sent[me].append(reply["id"])
            queued[me][reply["queued"]] += 1

        for i in range(5):  # a conversation in both directions, while all is well
            await say(a, fa, fb, f"a before {i}")
            await say(b, fb, fa, f"b before {i}")
        with trio.fail_after(5):
            await wait_ids(b, "message_received", sent[fa])
            await wait_ids(a, "message_received", sent[fb])

        lost_a, lost_b = since(a, disconnected_from(fb)), since(b, disconnected_from(fa))
        back_a, back_b = since(a, connected_to(fb)), since(b, connected_to(fa))
        offline = {fa: trio.Event(), fb: trio.Event()}

        async def keep_sending(daemon: DaemonProcess, me: str, peer: str, label: str) -> None:
            n = 0
            while not offline[me].is_set():
                await say(daemon, me, peer, f"{label} during {n}")
                n += 1
                await trio.sleep(SEND_INTERVAL)

        async def notice(daemon: DaemonProcess, me: str, lost: Predicate) -> None:
            await daemon.wait_event(lost)
            offline[me].set()

        pulled_at = trio.current_time()
        h1.link_down()
        with trio.fail_after(PRESENCE_TIMEOUT + 2):
            async with trio.open_nursery() as senders:
                senders.start_soon(keep_sending, a, fa, fb, "a")
                senders.start_soon(keep_sending, b, fb, fa, "b")
                senders.start_soon(notice, a, fa, lost_a)
                senders.start_soon(notice, b, fb, lost_b)
        t_offline = trio.current_time() - pulled_at
        in_the_dark = {me: Counter(q) for me, q in queued.items()}

        for i in range(3):  # both sides know: these are queued
            await say(a, fa, fb, f"a offline {i}")
            await say(b, fb, fa, f"b offline {i}")

        plugged_at = trio.current_time()
        await trio.to_thread.run_sync(h1.link_up)
        with trio.fail_after(MESH):
            await a.wait_event(back_a)
            await b.wait_event(back_b)
        t_back = trio.current_time() - plugged_at
        with trio.fail_after(DELIVERY):
            await wait_ids(b, "message_received", sent[fa])
            await wait_ids(a, "message_received", sent[fb])
            await wait_ids(a, "message_delivered", sent[fa])
            await wait_ids(b, "message_delivered", sent[fb])
        t_all = trio.current_time() - plugged_at
        history_a = await a.call("history", peer=fb, limit=1000)
        history_b = await b.call("history", peer=fa, limit=1000)
        assert await a.stop() == 0
        assert await b.stop() == 0

    for me, peer, receiver, sender, history in (
        (fa, fb, b, a, history_b),
        (fb, fa, a, b, history_a),
    ):
        got = ids_of(receiver, "message_received", me)
        assert not duplicates(got), "a message was shown twice"
        assert sorted(got) == sorted(sent[me])
        assert [m["id"] for m in history if m["author"] == me] == sent[me]  # in send order
        assert sorted(ids_of(sender, "message_delivered", peer)) == sorted(sent[me])
    print(
        f"\ncable pulled: offline after {t_offline:.2f} s; sends meanwhile (queued: count) "
        f"A {dict(in_the_dark[fa])}, B {dict(in_the_dark[fb])}; cable back: reconnected "
        f"after {t_back:.2f} s, all {len(sent[fa])} + {len(sent[fb])} messages delivered "
        f"and acknowledged after {t_all:.2f} s"
    )


# ---- 4. search and export -------------------------------------------------------------------


async def test_search_across_conversations_history_paging_and_export(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        (a, b, c), (fa, fb, fc) = await launch_mesh(nursery, vlan3.hosts, tmp_path)
        ab_texts = [f"a to b number {i}" if i % 2 == 0 else f"b to a number {i}" for i in range(25)]
        ab_texts[7] = "b to a: the zephyr blows from the west"
        turns = [
            (a, fa, b, fb, text) if i % 2 == 0 else (b, fb, a, fa, text)
            for i, text in enumerate(ab_texts)
        ]
        ab_ids = await converse(turns)
        ac_texts = ["hello c", "hello a", "Zephyr, said a to c", "a breeze is not a gale"]
        ac_ids = await converse(
            [
                (a, fa, c, fc, ac_texts[0]),
                (c, fc, a, fa, ac_texts[1]),
                (a, fa, c, fc, ac_texts[2]),
                (c, fc, a, fa, ac_texts[3]),
            ]
        )

        found = await a.call("search", query="zephyr")
        assert sorted(m["id"] for m in found) == sorted([ab_ids[7], ac_ids[2]])
        assert {m["peer"] for m in found} == {fb, fc}
        assert await a.call("search", query="ZEPHYR west") == [
            m for m in found if m["id"] == ab_ids[7]
        ]
        assert await a.call("search", query="hurricane") == []

        # Paging backwards through 25 messages, 10 at a time.
        full = await a.call("history", peer=fb, limit=100)
        assert [m["id"] for m in full] == ab_ids
        assert [m["body"] for m in full] == ab_texts
        assert [m["author"] for m in full] == [t[1] for t in turns]
        pages = []
        before = None
        while True:
            page = await a.call("history", peer=fb, before=before, limit=10)
            if not page:
                break
            pages.append([m["id"] for m in page])
            before = page[0]["id"]
        assert [len(p) for p in pages] == [10, 10, 5]
        assert [i for p in reversed(pages) for i in p] == ab_ids
        with pytest.raises(RpcFailed) as failure:  # an anchor from another conversation
            await a.call("history", peer=fb, before=ac_ids[0], limit=10)
        assert failure.value.code == BAD_MESSAGE

        assert await a.stop() == 0
        for daemon in (b, c):
            assert await daemon.stop() == 0

    async def export(peer: str, fmt: str) -> str:
        # A local file operation (no sockets), so it runs in the root namespace.
        argv = [sys.executable, "-m", "p2pim", "--profile", str(tmp_path / "h0"), "export"]
        with trio.fail_after(30):
            done = await trio.run_process(
                [*argv, peer, "--format", fmt],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    jsonl = await export(fb, "jsonl")
    lines = [json.loads(line) for line in jsonl.splitlines()]
    assert len(lines) == len(full)
    for line, message in zip(lines, full, strict=True):
        assert {"id", "author", "body"} <= line.keys()
        common = line.keys() & message.keys()
        assert {k: line[k] for k in common} == {k: message[k] for k in common}
    assert await export(fb[:12], "jsonl") == jsonl  # a unique prefix names it too
    markdown = await export("h1", "markdown")  # and a unique nick
    for text in ab_texts:
        assert text in markdown
    assert not any(text in markdown for text in ac_texts)
    print(
        f"\nsearch found {len(found)} of {len(ab_ids) + len(ac_ids)} messages; history paged "
        f"as {[len(p) for p in pages]}; export: {len(lines)} JSONL lines, "
        f"{len(markdown.splitlines())} Markdown lines"
    )


# ---- 5. read receipts and typing -------------------------------------------------------------


async def test_read_receipts_and_typing_indicators(vlan3: VirtualLan, tmp_path: Path) -> None:
    h0, h1, _ = vlan3.hosts
    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path)
        ids = [await send(a, fb, f"please read {i}") for i in range(5)]
        with trio.fail_after(5):
            await wait_ids(b, "message_received", ids)
            await wait_ids(a, "message_delivered", ids)

        asked_at = trio.current_time()
        assert (await b.call("mark_read", peer=fa))["read"] == ids
        with trio.fail_after(5):
            await wait_ids(a, "message_read", ids)
        t_read = trio.current_time() - asked_at
        assert (await b.call("mark_read", peer=fa))["read"] == []  # nothing new to read
        history = await a.call("history", peer=fb)
        assert all(m["read_at"] is not None for m in history)

        timings = {}
        for typing in (True, False, True):
            changed = since(a, typing_from(fb, typing))
            asked_at = trio.current_time()
            await b.call("set_typing", peer=fa, typing=typing)
            with trio.fail_after(2):
                await a.wait_event(changed)
            timings[typing] = trio.current_time() - asked_at
        # Refreshed, it stays on (a refresh emits nothing); no longer refreshed, it goes off
        # by itself TYPING_TTL after the last refresh, not after the first indicator.
        await trio.sleep(TYPING_TTL / 2)  # the user types on: scenario timing
        expired = since(a, typing_from(fb, False))
        await b.call("set_typing", peer=fa, typing=True)
        refreshed_at = trio.current_time()
        with trio.fail_after(TYPING_TTL + 2):
            await a.wait_event(expired)
        t_expired = trio.current_time() - refreshed_at
        assert t_expired >= TYPING_TTL - 0.5  # not before its time either

        assert await a.stop() == 0
        assert await b.stop() == 0

    assert sorted(ids_of(a, "message_read", fb)) == sorted(ids)  # once each
    typing_events = [e["typing"] for e in a.events if e["type"] == "typing_changed"]
    assert typing_events == [True, False, True, False]
    print(
        f"\nread receipts for {len(ids)} messages after {t_read:.3f} s; typing on after "
        f"{timings[True]:.3f} s, off after {timings[False]:.3f} s; a refreshed indicator "
        f"expired {t_expired:.2f} s after its last refresh"
    )


# ---- 6. edits and deletes ---------------------------------------------------------------------


async def test_edits_and_deletes_propagate_even_to_an_offline_peer(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    h0, h1, _ = vlan3.hosts
    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path)
        m1, m2, m3 = [await send(a, fb, f"original {i}") for i in (1, 2, 3)]
        theirs = await send(b, fa, "b's own words")
        with trio.fail_after(5):
            await wait_ids(b, "message_received", [m1, m2, m3])
            await wait_ids(a, "message_received", [theirs])

        edited = since(b, lambda e: e["type"] == "message_edited" and e["message_id"] == m1)
        deleted = since(b, lambda e: e["type"] == "message_deleted" and e["message_id"] == m2)
        await a.call("edit", peer=fb, id=m1, text="original 1, edited")
        await a.call("delete", peer=fb, id=m2)
        with trio.fail_after(5):
            edit = await b.wait_event(edited)
            delete = await b.wait_event(deleted)
        assert (edit["peer"], edit["text"]) == (fa, "original 1, edited")
        assert delete["peer"] == fa

        # Not ours, unknown, or already deleted: error 6, and nothing changes.
        for method, params in (
            ("edit", {"id": theirs, "text": "forged"}),
            ("delete", {"id": theirs}),
            ("edit", {"id": "00" * 16, "text": "nothing"}),
            ("edit", {"id": m2, "text": "raised from the dead"}),
        ):
            with pytest.raises(RpcFailed) as failure:
                await a.call(method, peer=fb, **params)
            assert failure.value.code == BAD_MESSAGE, (method, params)

        # While B is away: an edit waits in the outbox; a message deleted before it left
        # never leaves.
        gone = since(a, disconnected_from(fb))
        assert await b.stop() == 0
        with trio.fail_after(2):
            await a.wait_event(gone)
        await a.call("edit", peer=fb, id=m3, text="original 3, edited offline")
        m4 = await send(a, fb, "regretted at once")
        await a.call("delete", peer=fb, id=m4)
        m5 = await send(a, fb, "after the regret")
        events_before = b.events
        b, _ = await launch(nursery, h1, tmp_path / "h1")
        with trio.fail_after(DELIVERY):
            # One ordered outbox: when m5 is in, the edit and delete before it were applied.
            await wait_ids(b, "message_received", [m5])
            await b.wait_event(lambda e: e["type"] == "message_edited" and e["message_id"] == m3)
        history_b = {m["id"]: m for m in await b.call("history", peer=fa)}
        history_a = {m["id"]: m for m in await a.call("history", peer=fb)}
        for daemon in (a, b):  # search sees edited text, and deleted text is gone
            assert sorted(m["id"] for m in await daemon.call("search", query="original")) == (
                sorted([m1, m3])
            )
            assert await daemon.call("search", query="regretted") == []
        assert await a.stop() == 0
        assert await b.stop() == 0

    for history in (history_a, history_b):
        assert history[m1]["body"] == "original 1, edited"
        assert history[m1]["edited_at"]
        assert history[m2]["deleted"] is True
        assert history[m2]["body"] == ""
        assert history[m3]["body"] == "original 3, edited offline"
        assert history[theirs]["body"] == "b's own words"
        assert not history[theirs]["deleted"]
        assert history[m5]["body"] == "after the regret"
    assert history_a[m4]["deleted"] is True
    assert history_a[m4]["body"] == ""
    assert m4 not in history_b
    all_b_events = events_before + b.events
    assert not [e for e in all_b_events if e.get("message_id") == m4]
    edits = [e["message_id"] for e in all_b_events if e["type"] == "message_edited"]
    assert sorted(edits) == sorted([m1, m3])  # each applied once
    assert [e["message_id"] for e in all_b_events if e["type"] == "message_deleted"] == [m2]
    print("\nedits and deletes applied once each, online and after an offline spell")
