"""`p2pim room ...` as real processes against two real daemons (loopback only)."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from tests.support.cli import Spawn, introduce, one_shot, run


async def test_a_room_made_joined_and_used_from_the_command_line(
    tmp_path: Path, spawn: Spawn
) -> None:
    a, b = await spawn(tmp_path / "A", "alice"), await spawn(tmp_path / "B", "bob")
    [fp_b] = await introduce(a, b)
    A, B = tmp_path / "A", tmp_path / "B"

    made = await run(one_shot(A, "room create", "planning", "--topic", "Q3", "--invite", "bob"))
    assert made.returncode == 0, made.stderr
    room = made.stdout.decode().strip()
    assert len(room) == 32
    with trio.fail_after(20):
        await b.wait_event(lambda e: e["type"] == "room_invited" and e["room"] == room)

    listed = await run(one_shot(B, "room list", "--json"))
    [seen] = json.loads(listed.stdout)
    assert (seen["room"], seen["name"], seen["invited_us"], seen["joined"]) == (
        room, "planning", True, False,
    )  # fmt: skip
    table = await run(one_shot(B, "room list"))
    assert table.stdout.split(b"\n")[1].split()[:3] == [b"planning", room[:8].encode(), b"invited"]

    joined = await run(one_shot(B, "room join", "planning"))
    assert joined.returncode == 0, joined.stderr
    with trio.fail_after(20):
        await a.wait_event(lambda e: e["type"] == "room_changed" and fp_b in e["members"])

    from_b = await run(one_shot(B, "room post", "planning", "-"), stdin=b"hello from bob\n")
    assert (from_b.returncode, from_b.stdout) == (0, b"posted\n"), from_b.stderr
    with trio.fail_after(20):
        await a.wait_event(lambda e: e["type"] == "room_message" and e["text"] == "hello from bob")
    from_a = await run(one_shot(A, "room post", room[:8], "hi bob"))
    assert from_a.returncode == 0, from_a.stderr
    with trio.fail_after(20):
        await b.wait_event(lambda e: e["type"] == "room_message" and e["text"] == "hi bob")

    history = await run(one_shot(B, "room history", "planning", "--json"))
    assert history.returncode == 0, history.stderr
    posts = [(m["body"], m["author_nick"], m["room_name"]) for m in json.loads(history.stdout)]
    assert posts[-2:] == [("hello from bob", "bob", "planning"), ("hi bob", "alice", "planning")]
    lines = (await run(one_shot(B, "room history", "planning"))).stdout.decode().splitlines()
    assert lines[-2].endswith("me: hello from bob")
    assert lines[-1].endswith("alice: hi bob")

    left = await run(one_shot(B, "room leave", "planning"))
    assert left.returncode == 0, left.stderr
    with trio.fail_after(20):
        await a.wait_event(lambda e: e["type"] == "room_changed" and fp_b not in e["members"])


async def test_an_invitation_declined_from_the_command_line(tmp_path: Path, spawn: Spawn) -> None:
    a, b = await spawn(tmp_path / "A", "alice"), await spawn(tmp_path / "B", "bob")
    [fp_b] = await introduce(a, b)
    room = (await a.call("create_room", name="lunch"))["room"]
    await a.call("invite", room=room, peer=fp_b)
    with trio.fail_after(20):
        await b.wait_event(lambda e: e["type"] == "room_invited" and e["room"] == room)

    declined = await run(one_shot(tmp_path / "B", "room decline", "lunch"))
    assert declined.returncode == 0, declined.stderr
    assert not [r for r in await b.call("rooms") if r["invited_us"] or r["joined"]]
    with trio.fail_after(20):
        await a.wait_event(lambda e: e["type"] == "room_changed" and fp_b not in e["invited"])

    unknown = await run(one_shot(tmp_path / "B", "room post", "nowhere", "hi"))
    assert unknown.returncode == 1
    assert b"no room named 'nowhere'" in unknown.stderr
