"""File transfers on a virtual LAN: big files, folders, several recipients, crashes of
either side and a pulled cable, between real daemons driven over JSON-RPC.

Every wait is an event awaited under `trio.fail_after`; the kills land where the progress
events say the transfer is (a random point of it, from a seeded generator).  Run with `-s`
to see the numbers.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import trio

from p2pim.testing.daemon_process import (
    connected_to,
    disconnected_from,
    since,
)
from p2pim.testing.vlan import VirtualLan
from tests.support.netns import (
    MESH,
    MIB,
    assert_completed,
    finished,
    launch,
    launch_mesh,
    nth_match,
    offer_and_accept,
    progressed,
    sha256,
    write_random,
)

pytestmark = pytest.mark.netns

SEED = int(os.environ.get("P2PIM_TEST_SEED", "20261125"))
TRANSFER = 120.0  # the longest any transfer here may take, faults included
KILLS = 3


async def test_a_big_file_and_a_folder_tree_reach_two_recipients_at_once(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    source = tmp_path / "source"
    big = write_random(source / "big.bin", 256 * MIB, rng)
    tree = {
        f"tree/{name}": write_random(source / "tree" / name, size, rng)
        for name, size in [
            ("readme.txt", 100),
            ("a/one.bin", 3 * MIB + 17),
            ("a/b/two.bin", 0),
            ("a/b/c/three.bin", 70_000),
            ("d/four.bin", MIB),
        ]
    }
    async with trio.open_nursery() as nursery:
        (a, b, c), (fa, fb, fc) = await launch_mesh(nursery, vlan3.hosts, tmp_path)
        started = trio.current_time()
        offer = await offer_and_accept(
            a,
            [(b, fb, tmp_path / "in-b"), (c, fc, tmp_path / "in-c")],
            fa,
            [source / "big.bin", source / "tree"],
        )
        with trio.fail_after(TRANSFER):
            for daemon in (b, c):
                assert_completed(await daemon.wait_event(finished(offer)))
            await a.wait_event(nth_match(finished(offer), 2))  # one per recipient
        elapsed = trio.current_time() - started
        finals = [e for e in a.events if finished(offer)(e)]
        assert sorted(e["peer"] for e in finals) == sorted([fb, fc])
        for event in finals:
            assert_completed(event)
        assert await a.stop() == 0
        assert await b.stop() == 0
        assert await c.stop() == 0

    for inbox in (tmp_path / "in-b", tmp_path / "in-c"):
        assert sha256(inbox / "big.bin") == big
        for path, digest in tree.items():
            assert sha256(inbox / path) == digest, path
        names = {p.relative_to(inbox).as_posix() for p in inbox.rglob("*") if p.is_file()}
        assert names == {"big.bin", *tree}
    total = 2 * (256 * MIB + sum((source / p).stat().st_size for p in tree))
    print(
        f"\n256 MiB file + 5-file tree to two recipients at once: {elapsed:.1f} s, "
        f"{total / elapsed / 1e6:.0f} MB/s summed"
    )


async def run_with_kills(
    vlan3: VirtualLan, tmp_path: Path, victim_is_receiver: bool
) -> tuple[float, int]:
    """A 512 MiB transfer whose receiver (or sender) is SIGKILLed KILLS times at random
    points and restarted.  Returns (bytes counted by the survivor / size, seconds)."""
    rng = random.Random(SEED + victim_is_receiver)
    size = 512 * MIB
    digest = write_random(tmp_path / "big.bin", size, rng)
    h0, h1, _ = vlan3.hosts
    # A gigabit cable (memory-to-memory veth is several times faster): a kill at 90 % of
    # the file then lands well before the end, however late the progress event reaches us.
    h0.limit_rate(1000)
    inbox = tmp_path / "inbox"
    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path)
        offer = await offer_and_accept(a, [(b, fb, inbox)], fa, [tmp_path / "big.bin"])
        started = trio.current_time()
        survivor = a if victim_is_receiver else b
        victim, victim_host = (b, h1) if victim_is_receiver else (a, h0)
        victim_fp = fb if victim_is_receiver else fa
        points = sorted(rng.uniform(0.1, 0.9) * size for _ in range(KILLS))
        for n, point in enumerate(points, 1):
            back = since(survivor, connected_to(victim_fp))
            with trio.fail_after(TRANSFER):
                # Both sides report progress; the receiver's counts only what it wrote.
                await b.wait_event(progressed(offer, int(point)))
            await victim.kill()
            assert not any(finished(offer)(e) for e in b.events), "killed after the end"
            print(
                f"kill {n} of the {'receiver' if victim_is_receiver else 'sender'} "
                f"at {point / MIB:.0f} MiB"
            )
            victim, _ = await launch(nursery, victim_host, tmp_path / victim_host.name)
            if victim_is_receiver:
                b = victim
            else:
                a = victim
            with trio.fail_after(MESH):
                await survivor.wait_event(back)
        with trio.fail_after(TRANSFER):
            assert_completed(await b.wait_event(finished(offer)))
            assert_completed(await a.wait_event(finished(offer)))
        elapsed = trio.current_time() - started
        stats = await survivor.call("stats")
        counted = stats["transfer_bytes_sent" if victim_is_receiver else "transfer_bytes_received"]
        assert await a.stop() == 0
        assert await b.stop() == 0
    assert sha256(inbox / "big.bin") == digest
    assert [p.name for p in inbox.iterdir()] == ["big.bin"]  # no partial file left
    return counted / size, round(elapsed)


async def test_a_receiver_killed_three_times_resumes_without_resending_much(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    ratio, elapsed = await run_with_kills(vlan3, tmp_path, victim_is_receiver=True)
    print(f"receiver killed {KILLS}x: sender sent {ratio:.3f}x the file, {elapsed} s in all")
    assert 1.0 <= ratio < 1.25


async def test_a_sender_killed_three_times_resumes_without_resending_much(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    ratio, elapsed = await run_with_kills(vlan3, tmp_path, victim_is_receiver=False)
    print(f"sender killed {KILLS}x: receiver got {ratio:.3f}x the file, {elapsed} s in all")
    assert 1.0 <= ratio < 1.25


async def test_a_pulled_cable_mid_transfer_resumes_by_itself(
    vlan3: VirtualLan, tmp_path: Path
) -> None:
    rng = random.Random(SEED + 7)
    size = 256 * MIB
    digest = write_random(tmp_path / "big.bin", size, rng)
    h0, h1, _ = vlan3.hosts
    inbox = tmp_path / "inbox"
    async with trio.open_nursery() as nursery:
        (a, b), (fa, fb) = await launch_mesh(nursery, [h0, h1], tmp_path)
        offer = await offer_and_accept(a, [(b, fb, inbox)], fa, [tmp_path / "big.bin"])
        lost, back = since(b, disconnected_from(fa)), since(b, connected_to(fa))
        with trio.fail_after(TRANSFER):
            await b.wait_event(progressed(offer, size // 3))
        h1.link_down()
        with trio.fail_after(MESH):
            await b.wait_event(lost)
        await trio.to_thread.run_sync(h1.link_up)
        with trio.fail_after(MESH):
            await b.wait_event(back)
        with trio.fail_after(TRANSFER):
            assert_completed(await b.wait_event(finished(offer)))
            assert_completed(await a.wait_event(finished(offer)))
        sent = (await a.call("stats"))["transfer_bytes_sent"]
        assert await a.stop() == 0
        assert await b.stop() == 0
    assert sha256(inbox / "big.bin") == digest
    print(f"\ncable pulled at 1/3: resumed by itself; sender sent {sent / size:.3f}x the file")
