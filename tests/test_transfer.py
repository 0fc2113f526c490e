"""File transfers between real nodes on loopback TCP, with real files and SQLite stores."""

from __future__ import annotations

import os
from pathlib import Path

import trio
from nodes import loopback_config, next_event
from test_messaging import meet

from p2pim import Identity, open_node
from p2pim.events import OfferReceived, TransferFinished


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


async def test_a_file_and_a_folder_arrive_identical(tmp_path: Path) -> None:
    source, inbox = tmp_path / "out", tmp_path / "in"
    inbox.mkdir()
    big = write_random(source / "big.bin", 5_000_000)
    nested = {
        "tree/a.txt": write_random(source / "tree/a.txt", 10),
        "tree/sub/b.bin": write_random(source / "tree/sub/b.bin", 200_000),
        "tree/sub/deeper/empty": write_random(source / "tree/sub/deeper/empty", 0),
    }
    async with (
        open_node(Identity.generate(), loopback_config("a")) as a,
        open_node(Identity.generate(), loopback_config("b")) as b,
    ):
        await meet(a, b)
        a_events, b_events = a.subscribe(), b.subscribe()
        with trio.fail_after(30):
            offer = await a.send_files([b.fingerprint], [source / "big.bin", source / "tree"])
            received = await next_event(b_events, lambda e: isinstance(e, OfferReceived))
            assert isinstance(received, OfferReceived) and received.offer == offer
            assert sorted(f.path for f in received.files) == sorted(["big.bin", *nested])
            await b.accept_offer(a.fingerprint, offer, directory=inbox)
            done_b = await next_event(b_events, lambda e: isinstance(e, TransferFinished))
            done_a = await next_event(a_events, lambda e: isinstance(e, TransferFinished))
        assert isinstance(done_b, TransferFinished) and done_b.state == "completed", done_b
        assert isinstance(done_a, TransferFinished) and done_a.state == "completed", done_a
        assert (inbox / "big.bin").read_bytes() == big
        for path, data in nested.items():
            assert (inbox / path).read_bytes() == data
        leftovers = [p for p in inbox.rglob("*") if p.name.endswith(".p2pim-part")]
        assert leftovers == []
