"""File transfers between real nodes on loopback TCP, with real files and SQLite stores.

The namespace tests (test_transfer_vlan.py) cover big files, several recipients, crashes and
pulled cables; these cover each rule of the transfer protocol on its own.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from p2pim import Identity, Node, open_node
from p2pim.api import TransferError
from p2pim.events import (
    MessageReceived,
    NodeEvent,
    OfferAnswered,
    OfferReceived,
    PeerDisconnected,
    TransferFinished,
    TransferProgress,
)
from p2pim.net.link import LinkClosed
from p2pim.transfer.files import LocalFile
from p2pim.wire.messages import PROTOCOL_VERSION, Bye, Chunk, Hello, Pull
from tests.support.nodes import (
    first_event,
    loopback_config,
    meet,
    next_event,
    raw_session,
    read_until_closed,
)


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def is_(kind: type[NodeEvent], **fields: object):  # type: ignore[no-untyped-def]
    return lambda e: isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())


@asynccontextmanager
async def pair(tmp_path: Path, **config: object) -> AsyncIterator[tuple[Node, Node]]:
    """Two connected nodes with stores in tmp_path."""
    async with (
        open_node(
            Identity.generate(), loopback_config("a", **config), store_path=tmp_path / "a.db"
        ) as a,
        open_node(
            Identity.generate(), loopback_config("b", **config), store_path=tmp_path / "b.db"
        ) as b,
    ):
        await meet(a, b)
        yield a, b


async def offer_and_receive(a: Node, b: Node, paths: list[Path], **kw: object) -> OfferReceived:
    b_events = b.subscribe()
    offer = await a.send_files([b.fingerprint], paths, **kw)  # type: ignore[arg-type]
    received = await next_event(b_events, is_(OfferReceived, offer=offer))
    assert isinstance(received, OfferReceived)
    return received


async def test_a_file_and_a_folder_arrive_identical(tmp_path: Path) -> None:
    source, inbox = tmp_path / "out", tmp_path / "in"
    inbox.mkdir()
    big = write_random(source / "big.bin", 5_000_000)
    nested = {
        "tree/a.txt": write_random(source / "tree/a.txt", 10),
        "tree/sub/b.bin": write_random(source / "tree/sub/b.bin", 200_000),
        "tree/sub/deeper/empty": write_random(source / "tree/sub/deeper/empty", 0),
    }
    async with pair(tmp_path) as (a, b):
        a_events, b_events = a.subscribe(), b.subscribe()
        offered = await offer_and_receive(a, b, [source / "big.bin", source / "tree"])
        assert sorted(f.path for f in offered.files) == sorted(["big.bin", *nested])
        assert offered.total_size == 5_200_010
        await b.accept_offer(a.fingerprint, offered.offer, directory=inbox)
        answered = await next_event(a_events, is_(OfferAnswered, offer=offered.offer))
        assert answered.accepted == (0, 1, 2, 3)  # type: ignore[attr-defined]
        done_b = await next_event(b_events, is_(TransferFinished, offer=offered.offer))
        done_a = await next_event(a_events, is_(TransferFinished, offer=offered.offer))
        assert done_b.state == done_a.state == "completed", (done_a, done_b)  # type: ignore[attr-defined]
        assert {f.outcome for f in done_b.files} == {"ok"}  # type: ignore[attr-defined]
        saved = {f.path: f.saved_as for f in done_b.files}  # type: ignore[attr-defined]
        assert saved["big.bin"] == str(inbox / "big.bin")
        (info,) = await b.transfers()
        assert (info.state, info.done, info.total) == ("completed", 5_200_010, 5_200_010)
    assert (inbox / "big.bin").read_bytes() == big
    for path, data in nested.items():
        assert (inbox / path).read_bytes() == data
    assert files_under(inbox) == {"big.bin", "tree", "tree/sub", "tree/sub/deeper", *nested}


async def test_only_the_chosen_files_are_written_and_a_second_copy_never_overwrites(
    tmp_path: Path,
) -> None:
    source, inbox = tmp_path / "out", tmp_path / "in"
    inbox.mkdir()
    first = write_random(source / "tree/one", 1000)
    write_random(source / "tree/two", 1000)
    loose = write_random(source / "loose.txt", 10)
    async with pair(tmp_path) as (a, b):
        b_events = b.subscribe()
        for round_no in range(2):
            offered = await offer_and_receive(a, b, [source / "tree", source / "loose.txt"])
            chosen = [f.index for f in offered.files if f.path in ("tree/one", "loose.txt")]
            await b.accept_offer(a.fingerprint, offered.offer, files=chosen, directory=inbox)
            done = await next_event(b_events, is_(TransferFinished, offer=offered.offer))
            assert done.state == "completed", done  # type: ignore[attr-defined]
            outcomes = {f.path: f.outcome for f in done.files}  # type: ignore[attr-defined]
            folder = "tree (1)" if round_no else "tree"  # where the accepted files go
            assert outcomes == {f"{folder}/one": "ok", "tree/two": None, "loose.txt": "ok"}
    # The second folder went next to the first, the second loose file got a numbered name.
    assert files_under(inbox) == {
        "tree", "tree/one", "tree (1)", "tree (1)/one", "loose.txt", "loose (1).txt",
    }  # fmt: skip
    assert (inbox / "tree (1)/one").read_bytes() == first
    assert (inbox / "loose (1).txt").read_bytes() == loose


async def test_a_declined_offer_writes_nothing_and_the_sender_is_told(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    write_random(tmp_path / "f", 1000)
    async with pair(tmp_path) as (a, b):
        a_events = a.subscribe()
        offered = await offer_and_receive(a, b, [tmp_path / "f"])
        await b.decline_offer(a.fingerprint, offered.offer)
        answered = await next_event(a_events, is_(OfferAnswered, offer=offered.offer))
        assert answered.accepted == ()  # type: ignore[attr-defined]
        done = await next_event(a_events, is_(TransferFinished, offer=offered.offer))
        assert done.state == "declined"  # type: ignore[attr-defined]
        with pytest.raises(TransferError, match="declined"):
            await b.accept_offer(a.fingerprint, offered.offer, directory=inbox)
    assert files_under(inbox) == set()


async def test_an_unanswered_offer_expires_on_both_sides(tmp_path: Path) -> None:
    write_random(tmp_path / "f", 10)
    async with pair(tmp_path) as (a, b):
        a_events, b_events = a.subscribe(), b.subscribe()
        offered = await offer_and_receive(a, b, [tmp_path / "f"], ttl=1.0)
        assert offered.expires_in == 1.0
        for events in (a_events, b_events):
            done = await next_event(events, is_(TransferFinished, offer=offered.offer))
            assert done.state == "expired", done  # type: ignore[attr-defined]
        with pytest.raises(TransferError, match="expired"):
            await b.accept_offer(a.fingerprint, offered.offer, directory=tmp_path)


async def test_cancel_from_either_side_stops_and_removes_partial_files(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    write_random(tmp_path / "big", 64 << 20)
    async with pair(tmp_path) as (a, b):
        for canceller, other in ((b, a), (a, b)):
            a_events, b_events = a.subscribe(), b.subscribe()
            offered = await offer_and_receive(a, b, [tmp_path / "big"])
            await b.accept_offer(a.fingerprint, offered.offer, directory=inbox)
            await next_event(b_events, is_(TransferProgress, offer=offered.offer))
            peer = other.fingerprint
            await canceller.cancel_transfer(peer, offered.offer)
            for events in (a_events, b_events):
                done = await next_event(events, is_(TransferFinished, offer=offered.offer))
                assert done.state == "cancelled", done  # type: ignore[attr-defined]
            assert files_under(inbox) == set()  # the partial file is gone
            with pytest.raises(TransferError):
                await canceller.cancel_transfer(peer, offered.offer)


async def test_a_file_changed_or_unreadable_after_the_offer_is_reported_not_sent(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    write_random(tmp_path / "keeps", 100)
    write_random(tmp_path / "changes", 100)
    write_random(tmp_path / "loops", 100)
    names = ["keeps", "changes", "loops"]
    async with pair(tmp_path) as (a, b):
        a_events, b_events = a.subscribe(), b.subscribe()
        offered = await offer_and_receive(a, b, [tmp_path / name for name in names])
        write_random(tmp_path / "changes", 200)
        (tmp_path / "loops").unlink()
        (tmp_path / "loops").symlink_to(tmp_path / "loops")  # unreadable: ELOOP
        await b.accept_offer(a.fingerprint, offered.offer, directory=inbox)
        for events in (b_events, a_events):
            done = await next_event(events, is_(TransferFinished, offer=offered.offer))
            assert done.state == "failed", done  # type: ignore[attr-defined]
            outcomes = [f.outcome for f in done.files]  # type: ignore[attr-defined]
            assert outcomes == ["ok", "unavailable", "unavailable"]
            assert "unavailable" in done.reason  # type: ignore[attr-defined]
    assert files_under(inbox) == {"keeps"}


HOSTILE = [
    "../../x",
    "/etc/x",
    "a/../../x",
    "nul\x00byte",
    "ctrl\x1b[31mred",
    "evil\u202etxt.exe",
    "é" * 500,  # 1000 bytes of UTF-8
    "..",
    "sub/../../../../tmp/x",
    "\\..\\..\\win.ini",
]


async def test_hostile_names_never_leave_the_download_directory(tmp_path: Path) -> None:
    inbox, outside = tmp_path / "box" / "in", tmp_path / "box"
    inbox.mkdir(parents=True)
    (inbox / "planted").symlink_to(outside, target_is_directory=True)
    (inbox / "victim").symlink_to(outside / "victim-target")
    source = tmp_path / "src"
    source.write_bytes(b"payload")
    stat = source.stat()
    names = [*HOSTILE, "planted/escape", "victim"]
    local = [LocalFile(str(source), name, stat.st_size, stat.st_mtime_ns) for name in names]
    async with pair(tmp_path) as (a, b):
        b_events = b.subscribe()
        offer = (await a._transfers.offer([b.fingerprint], local, 60.0)).hex()
        offered = await next_event(b_events, is_(OfferReceived, offer=offer))
        await b.accept_offer(a.fingerprint, offer, directory=inbox)
        done = await next_event(b_events, is_(TransferFinished, offer=offer))
    assert done.state == "completed", done  # type: ignore[attr-defined]
    assert files_under(outside) - {f"in/{p}" for p in files_under(inbox)} == {"in"}
    for file in done.files:  # type: ignore[attr-defined]
        saved = trio.Path(file.saved_as)
        assert (await saved.resolve()).is_relative_to(inbox.resolve()), file
        assert not await saved.is_symlink()
        assert await saved.read_bytes() == b"payload"
        assert all(c.isprintable() and c not in "\u202e" for c in file.path), file
    paths = [f.path for f in offered.files]  # type: ignore[attr-defined]
    assert paths[:3] == ["x", "etc/x", "a/x"]
    placed = [f.path for f in done.files]  # type: ignore[attr-defined]
    assert placed[-2:] == ["planted (1)/escape", "victim"]  # a taken folder name is not entered
    assert {f.saved_as for f in done.files} >= {str(inbox / "victim (1)")}  # type: ignore[attr-defined]
    assert os.readlink(inbox / "victim") == str(outside / "victim-target")  # untouched


async def test_file_data_on_a_session_closes_it_and_writes_nothing(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    async with open_node(Identity.generate(), loopback_config("b", download_dir=inbox)) as b:
        events = b.subscribe()
        link = await raw_session(b.port, Identity.generate(), "intruder")
        await link.send(Chunk(b"unsolicited" * 100))
        with trio.fail_after(5), pytest.raises(LinkClosed):
            await read_until_closed(link)
        gone = await next_event(events, lambda e: isinstance(e, PeerDisconnected))
        assert "protocol error" in gone.reason  # type: ignore[attr-defined]
        assert b.stats()["sessions"] == 0
    assert files_under(inbox) == set()


async def test_a_transfer_connection_for_an_unknown_offer_is_refused(tmp_path: Path) -> None:
    async with open_node(Identity.generate(), loopback_config("a")) as a:
        stranger = Identity.generate()
        stream = await trio.open_tcp_stream("127.0.0.1", a.port)
        from p2pim.net.link import perform_handshake

        with trio.fail_after(5):
            link = await perform_handshake(
                stream,
                initiator=True,
                static_private=stranger.private_key,
                hello=Hello(PROTOCOL_VERSION, "x", transfer=os.urandom(16)),
                address="127.0.0.1",
            )
            await link.send(Pull(0, 0))
            reply = await link.receive()
        assert isinstance(reply, Bye)
        assert reply.reason == "unknown offer"
        assert a.stats()["sessions"] == 0


async def test_a_transfer_resumes_after_the_receiver_restarts(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    size = 48 << 20
    data = write_random(tmp_path / "big", size)
    alice, bob = Identity.generate(), Identity.generate()
    b_store = tmp_path / "b.db"
    async with open_node(alice, loopback_config("a"), store_path=tmp_path / "a.db") as a:
        a_events = a.subscribe()
        async with open_node(bob, loopback_config("b"), store_path=b_store) as b:
            await meet(a, b)
            offered = await offer_and_receive(a, b, [tmp_path / "big"])
            b_events = b.subscribe()
            await b.accept_offer(alice.fingerprint, offered.offer, directory=inbox)
            # Stop once a checkpoint has made part of the file durable.
            with trio.fail_after(20):
                await first_event(
                    b_events, lambda e: isinstance(e, TransferProgress) and e.done > 20 << 20
                )
        (info,) = [t for t in await a.transfers() if t.offer == offered.offer]
        assert info.state == "accepted"
        async with open_node(bob, loopback_config("b"), store_path=b_store) as b:
            b_events = b.subscribe()
            await b.connect("127.0.0.1", a.port, alice.fingerprint)
            with trio.fail_after(30):
                done = await first_event(b_events, is_(TransferFinished, offer=offered.offer))
            assert done.state == "completed", done  # type: ignore[attr-defined]
            await next_event(
                a_events, is_(TransferFinished, offer=offered.offer, state="completed")
            )
        sent = a.stats()["transfer_bytes_sent"]
    assert (inbox / "big").read_bytes() == data
    assert size <= sent < 1.5 * size, sent / size


# ---- a full disk (a small tmpfs) ------------------------------------------------------------


async def test_too_little_space_refuses_the_offer_before_writing(
    tmp_path: Path, small_disk: Path
) -> None:
    write_random(tmp_path / "big", 5 << 20)
    async with pair(tmp_path) as (a, b):
        offered = await offer_and_receive(a, b, [tmp_path / "big"])
        with pytest.raises(TransferError, match="not enough space"):
            await b.accept_offer(a.fingerprint, offered.offer, directory=small_disk)
        assert [t.state for t in await b.transfers()] == ["offered"]  # still open
    assert files_under(small_disk) == set()


async def test_a_disk_that_fills_up_fails_the_transfer_cleanly_and_chat_goes_on(
    tmp_path: Path, small_disk: Path
) -> None:
    write_random(tmp_path / "f", 3 << 20)
    alice, bob = Identity.generate(), Identity.generate()
    a_store = tmp_path / "a.db"
    async with open_node(bob, loopback_config("b"), store_path=tmp_path / "b.db") as b:
        b_events = b.subscribe()
        async with open_node(alice, loopback_config("a"), store_path=a_store) as a:
            await meet(a, b)
            offered = await offer_and_receive(a, b, [tmp_path / "f"])
        await next_event(b_events, lambda e: isinstance(e, PeerDisconnected))
        # Accepted while it fits; then something else takes the space.
        await b.accept_offer(alice.fingerprint, offered.offer, directory=small_disk)
        (small_disk / "filler").write_bytes(b"\0" * (2 << 20))
        async with open_node(alice, loopback_config("a"), store_path=a_store) as a:
            a_events = a.subscribe()
            await a.connect("127.0.0.1", b.port, bob.fingerprint)
            for events in (b_events, a_events):
                with trio.fail_after(20):
                    done = await first_event(events, is_(TransferFinished, offer=offered.offer))
                assert done.state == "failed", done  # type: ignore[attr-defined]
                assert [f.outcome for f in done.files] == ["no-space"]  # type: ignore[attr-defined]
                assert "disk space" in done.reason  # type: ignore[attr-defined]
            assert files_under(small_disk) == {"filler"}  # no partial file left behind
            await a.send_text(bob.fingerprint, "still here?")
            got = await next_event(b_events, lambda e: isinstance(e, MessageReceived))
            assert got.text == "still here?"  # type: ignore[attr-defined]
