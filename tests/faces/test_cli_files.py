"""`p2pim receive` and `p2pim transfer ...` as real processes against real daemons and
against `p2pim send-file` (loopback only)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import trio

from tests.support.cli import Spawn, introduce, one_shot, port_of, run


async def test_receive_takes_what_send_file_sends(tmp_path: Path, spawn: Spawn) -> None:
    """Both halves as commands: `send-file` from a profile with no node (a temporary one,
    told where B is), `receive` through B's running daemon."""
    b = await spawn(tmp_path / "B", "b")
    data = os.urandom(2_000_000)
    (tmp_path / "photo.bin").write_bytes(data)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    results: dict[str, subprocess.CompletedProcess[bytes]] = {}

    async def receive() -> None:
        results["receive"] = await run(one_shot(tmp_path / "B", "receive", "--into", str(inbox)))

    async def send() -> None:
        peer = f"127.0.0.1:{await port_of(b)}"
        argv = one_shot(tmp_path / "A", "send-file", "--peer", peer, "b")
        results["send"] = await run([*argv, str(tmp_path / "photo.bin")])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        nursery.start_soon(send)
    got, sent = results["receive"], results["send"]
    assert sent.returncode == 0, sent.stderr
    assert got.returncode == 0, got.stderr
    assert got.stdout.decode().splitlines() == [str(inbox / "photo.bin")]
    assert b"received 1 file(s), 1.9 MiB" in got.stderr
    assert (inbox / "photo.bin").read_bytes() == data


async def test_receive_from_a_named_peer_takes_an_offer_made_before_it_ran(
    tmp_path: Path, spawn: Spawn
) -> None:
    a, b = await spawn(tmp_path / "A", "alice"), await spawn(tmp_path / "B", "bob")
    [fp_b] = await introduce(a, b)
    (tmp_path / "notes.txt").write_text("minutes")
    offer = (await a.call("send_files", peers=[fp_b], paths=[str(tmp_path / "notes.txt")]))["offer"]
    with trio.fail_after(20):
        await b.wait_event(lambda e: e["type"] == "offer_received" and e["offer"] == offer)

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    got = await run(one_shot(tmp_path / "B", "receive", "alice", "--into", str(inbox), "--json"))
    assert got.returncode == 0, got.stderr
    result = json.loads(got.stdout)
    assert (result["offer"], result["state"]) == (offer, "completed")
    assert [f["saved_as"] for f in result["files"]] == [str(inbox / "notes.txt")]
    assert (inbox / "notes.txt").read_text() == "minutes"


async def test_receive_with_nothing_offered_times_out_with_exit_3(
    tmp_path: Path, spawn: Spawn
) -> None:
    await spawn(tmp_path / "B", "b")
    got = await run(one_shot(tmp_path / "B", "receive", "--timeout", "0.2"))
    assert (got.returncode, got.stdout) == (3, b"")
    assert b"no file offer arrived within 0.2 s" in got.stderr
    missing = await run(one_shot(tmp_path / "B", "receive", "--into", str(tmp_path / "nope")))
    assert missing.returncode == 2
    assert b"no such folder" in missing.stderr


async def test_transfers_listed_accepted_declined_and_cancelled(
    tmp_path: Path, spawn: Spawn
) -> None:
    a, b = await spawn(tmp_path / "A", "alice"), await spawn(tmp_path / "B", "bob")
    [fp_b] = await introduce(a, b)
    offers = []
    for name in ("keep.txt", "skip.txt", "late.txt"):
        (tmp_path / name).write_text(name)
        offers.append(
            (await a.call("send_files", peers=[fp_b], paths=[str(tmp_path / name)]))["offer"]
        )
    keep, skip, late = offers
    with trio.fail_after(20):
        for offer in offers:
            await b.wait_event(lambda e, o=offer: e["type"] == "offer_received" and e["offer"] == o)
    B = tmp_path / "B"

    listed = await run(one_shot(B, "transfer list", "--json"))
    assert listed.returncode == 0, listed.stderr
    rows = {t["offer"]: t for t in json.loads(listed.stdout)}
    assert set(rows) == set(offers)
    assert {(t["state"], t["outgoing"], t["peer_nick"]) for t in rows.values()} == {
        ("offered", False, "alice")
    }
    table = (await run(one_shot(B, "transfer list"))).stdout.decode()
    assert [keep, "in", "alice", "offered"] in [line.split()[:4] for line in table.splitlines()]

    declined = await run(one_shot(B, "transfer decline", skip))
    assert declined.returncode == 0, declined.stderr
    with trio.fail_after(20):
        finished = await a.wait_event(
            lambda e: e["type"] == "transfer_finished" and e["offer"] == skip
        )
    assert finished["state"] == "declined"

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    accepted = await run(one_shot(B, "transfer accept", keep, "--into", str(inbox)))
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.decode().splitlines() == [str(inbox / "keep.txt")]
    assert (inbox / "keep.txt").read_text() == "keep.txt"

    cancelled = await run(one_shot(tmp_path / "A", "transfer cancel", late))
    assert cancelled.returncode == 0, cancelled.stderr
    with trio.fail_after(20):
        finished = await b.wait_event(
            lambda e: e["type"] == "transfer_finished" and e["offer"] == late
        )
    assert finished["state"] == "cancelled"
    again = await run(one_shot(B, "transfer decline", late))
    assert again.returncode == 2  # nothing is offered under that id any more
    assert b"no such offer" in again.stderr
