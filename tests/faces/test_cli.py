"""The one-shot commands, as real processes against real daemons (loopback only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import trio

from p2pim.testing.daemon_process import text_from
from tests.support.cli import (
    Spawn,
    fingerprint_of,
    introduce,
    one_shot,
    p2pim,
    port_of,
    run,
)


async def test_send_file_to_a_running_daemon_completes(tmp_path: Path, spawn: Spawn) -> None:
    b = await spawn(tmp_path / "B", "b")
    data = os.urandom(3_000_000)
    (tmp_path / "report.bin").write_bytes(data)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    argv = one_shot(
        tmp_path / "A", "send-file", "--json", "--peer", f"127.0.0.1:{await port_of(b)}"
    )
    argv += ["b", str(tmp_path / "report.bin")]  # A's profile is new: --peer introduces B
    done: list[subprocess.CompletedProcess[bytes]] = []

    async def send() -> None:
        done.append(await run(argv))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        with trio.fail_after(30):
            offer = await b.wait_event(lambda e: e["type"] == "offer_received")
            await b.call(
                "accept_offer", peer=offer["peer"], offer=offer["offer"], directory=str(inbox)
            )
    [sender] = done
    assert sender.returncode == 0, sender.stderr
    outcome = json.loads(sender.stdout)
    assert (outcome["offer"], outcome["state"]) == (offer["offer"], "completed")
    assert b"sent 1 file(s), 2.9 MiB" in sender.stderr  # the final progress line
    assert (inbox / "report.bin").read_bytes() == data


async def test_send_to_an_offline_peer_is_queued_then_delivered_once(
    tmp_path: Path, spawn: Spawn
) -> None:
    a, b = await spawn(tmp_path / "A", "a"), await spawn(tmp_path / "B", "b")
    [fp_b] = await introduce(a, b)
    fp_a = await fingerprint_of(a)
    await a.stop()
    await b.stop()

    sent = await run(one_shot(tmp_path / "A", "send", "--wait", "1", "b", "hello"))
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == b"queued (will be delivered when b is reachable)\n"

    b = await spawn(tmp_path / "B", "b")  # back, on a new port
    a = await spawn(tmp_path / "A", "a")  # the message waits in A's outbox
    await introduce(a, b)
    with trio.fail_after(20):
        await b.wait_event(text_from(fp_a, "hello"))
        await a.call("send", peer=fp_b, text="after")  # same session: arrives after any resend
        await b.wait_event(text_from(fp_a, "after"))
    assert sum(text_from(fp_a, "hello")(e) for e in b.events) == 1


async def test_ambiguous_and_unknown_names_exit_2_naming_the_candidates(
    tmp_path: Path, spawn: Spawn
) -> None:
    a = await spawn(tmp_path / "A", "a")
    bobs = [await spawn(tmp_path / "B1", "bob"), await spawn(tmp_path / "B2", "bob")]
    fingerprints = await introduce(a, *bobs)
    for daemon in (a, *bobs):
        await daemon.stop()

    ambiguous = await run(one_shot(tmp_path / "A", "send", "--wait", "0", "bob", "hi"))
    assert ambiguous.returncode == 2
    assert b"ambiguous" in ambiguous.stderr
    assert all(fp.encode() in ambiguous.stderr for fp in fingerprints), ambiguous.stderr
    assert ambiguous.stdout == b""

    unknown = await run(one_shot(tmp_path / "A", "send", "--wait", "0", "nobody", "hi"))
    assert (unknown.returncode, unknown.stdout) == (2, b"")
    assert b"no peer named 'nobody'" in unknown.stderr

    by_prefix = await run(one_shot(tmp_path / "A", "send", "--wait", "0", fingerprints[1][:8], "x"))
    assert by_prefix.returncode == 0, by_prefix.stderr


async def test_json_output_and_a_running_daemon_is_used(tmp_path: Path, spawn: Spawn) -> None:
    profile = tmp_path / "A"
    no_node = await run(p2pim(profile, "status", "away", "lunch"))
    assert no_node.returncode == 1
    assert b"no p2pim node is running on this profile" in no_node.stderr

    a, b = await spawn(profile, "a"), await spawn(tmp_path / "B", "b")
    [fp_b] = await introduce(a, b)
    with trio.fail_after(20):
        sent = await a.call("send", peer=fp_b, text="hi there")
        await a.wait_event(
            lambda e: e["type"] == "message_delivered" and e["message_id"] == sent["id"]
        )

    status = await run(p2pim(profile, "status", "away", "lunch"))  # through the control socket
    assert status.returncode == 0, status.stderr
    assert status.stdout == b"away: lunch\n"
    me = await a.call("identity")
    assert (me["status"], me["status_text"]) == ("away", "lunch")

    peers = await run(one_shot(profile, "peers", "--json"))
    assert peers.returncode == 0, peers.stderr
    [peer] = json.loads(peers.stdout)
    assert (peer["fingerprint"], peer["connected"]) == (fp_b, True)  # the daemon's session

    history = await run(one_shot(profile, "history", "b", "--json"))
    assert history.returncode == 0, history.stderr
    [message] = json.loads(history.stdout)
    assert (message["body"], message["outgoing"], message["id"]) == ("hi there", True, sent["id"])
    found = await run(one_shot(profile, "search", "THERE", "--json"))
    assert [m["id"] for m in json.loads(found.stdout)] == [sent["id"]]

    table = await run(one_shot(profile, "peers"))
    assert table.stdout.split(b"\n")[1].split()[:3] == [b"b", fp_b[:8].encode(), b"online"]
    verify = await run(one_shot(profile, "verify", "b", "--yes"))
    assert verify.returncode == 0, verify.stderr
    groups = b"".join(verify.stdout.split(b"\n")[2:5]).split()
    assert len(groups) == 12
    assert all(len(g) == 5 and g.isdigit() for g in groups)
    assert [p["trust"] for p in await a.call("peers")] == ["verified"]


async def test_ctrl_c_withdraws_an_unanswered_offer(tmp_path: Path, spawn: Spawn) -> None:
    b = await spawn(tmp_path / "B", "b")
    (tmp_path / "note.txt").write_text("unread")
    argv = one_shot(tmp_path / "A", "send-file", "--peer", f"127.0.0.1:{await port_of(b)}")
    process = await trio.lowlevel.open_process(
        [*argv, "b", str(tmp_path / "note.txt")], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        with trio.fail_after(30):
            offer = await b.wait_event(lambda e: e["type"] == "offer_received")
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 130
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    a = await spawn(tmp_path / "A", "a")  # the withdrawal is durable, whenever it leaves
    [transfer] = await a.call("transfers")
    assert (transfer["offer"], transfer["state"]) == (offer["offer"], "cancelled")
    with trio.fail_after(20):
        finished = await b.wait_event(lambda e: e["type"] == "transfer_finished")
    assert (finished["offer"], finished["state"]) == (offer["offer"], "cancelled")


async def test_doctor_explains_a_peer_it_cannot_reach_and_exits_1(
    tmp_path: Path, spawn: Spawn
) -> None:
    b = await spawn(tmp_path / "B", "bob")
    peer = f"127.0.0.1:{await port_of(b)}"
    healthy = await run(one_shot(tmp_path / "A", "doctor", "--peer", peer, "--json"))
    assert healthy.returncode == 0, healthy.stderr
    findings = json.loads(healthy.stdout)
    assert {f["check"] for f in findings} >= {"node", "mdns", "listening", "peers"}
    assert not [f for f in findings if f["status"] == "problem"]

    sick = await run(one_shot(tmp_path / "A", "doctor", "--peer", "127.0.0.1:1"))
    assert sick.returncode == 1, sick.stderr
    text = sick.stdout.decode()
    assert "FAIL reachability" in text
    assert "127.0.0.1:1" in text
    assert "refused" in text
    assert text.rstrip().endswith("problem(s) found")


async def test_send_to_a_contact_group_and_to_a_room(tmp_path: Path, spawn: Spawn) -> None:
    a, b = await spawn(tmp_path / "A", "a"), await spawn(tmp_path / "B", "bob")
    fb = (await b.call("identity"))["fingerprint"]
    await a.call("connect", host="127.0.0.1", port=await port_of(b), fingerprint=fb)
    await a.call("set_group", name="design", members=["bob"])
    room = (await a.call("create_room", name="planning"))["room"]
    await a.call("invite", room=room, peer="bob")
    with trio.fail_after(10):
        await b.wait_event(lambda e: e["type"] == "room_invited" and e["room"] == room)
    await b.call("join_room", room=room)
    with trio.fail_after(10):
        await a.wait_event(lambda e: e["type"] == "room_changed" and fb in e["members"])

    to_group = await run(one_shot(tmp_path / "A", "send", "design", "group hello"))
    assert to_group.returncode == 0, to_group.stderr
    assert to_group.stdout.strip() == b"delivered to 1 of 1"
    to_room = await run(one_shot(tmp_path / "A", "send", "--json", "room:planning", "room hi"))
    assert to_room.returncode == 0, to_room.stderr
    assert json.loads(to_room.stdout)["outcome"] == "posted"
    with trio.fail_after(10):
        await b.wait_event(lambda e: e["type"] == "message_received" and e["text"] == "group hello")
        await b.wait_event(lambda e: e["type"] == "room_message" and e["text"] == "room hi")
