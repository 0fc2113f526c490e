"""Two daemons on a virtual LAN, driven entirely through JSON-RPC: A through stdio, B
through its control socket (the way scripts and the one-shot CLI reach a running node).

Everything a script needs is exercised: discovery to peers, send with its delivery
receipt, a file with its acceptance and completion, a room (create, invite, join, post),
history, search and export.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from p2pim.client import connect
from p2pim.control import socket_path
from p2pim.testing.daemon_process import connected_to, daemon_argv, start_daemon
from p2pim.testing.vlan import VirtualLan
from tests.support.netns import (
    FLAGS,
    MESH,
    STARTUP,
)

pytestmark = pytest.mark.netns


async def test_two_daemons_driven_only_through_json_rpc(vlan3: VirtualLan, tmp_path: Path) -> None:
    h0, h1, _ = vlan3.hosts
    data = os.urandom(3_000_000)
    (tmp_path / "report.bin").write_bytes(data)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with trio.open_nursery() as nursery:
        a = await start_daemon(
            nursery, h0.command(daemon_argv(tmp_path / "a", "alice", h0.address, *FLAGS))
        )
        b_daemon = await start_daemon(
            nursery, h1.command(daemon_argv(tmp_path / "b", "bob", h1.address, *FLAGS))
        )
        with trio.fail_after(STARTUP):
            fa = (await a.call("identity"))["fingerprint"]
            await b_daemon.call("identity")  # B's control socket is up once it answers
        # The socket lives in B's profile on the shared file system; B runs in its own
        # network namespace, but a UNIX socket is not network traffic.
        async with connect(socket_path(tmp_path / "b")) as b:
            assert await b.call("subscribe") == {"subscribed": True}
            fb = (await b.call("identity"))["fingerprint"]
            with trio.fail_after(MESH):  # B may connect before our subscription: its stdio
                await a.wait_event(connected_to(fb))
                await b_daemon.wait_event(connected_to(fa))
            peers = {p["nick"]: p for p in await b.call("peers")}
            assert peers["alice"]["connected"]
            assert peers["alice"]["fingerprint"] == fa

            sent = await a.call("send", peer="bob", text="the quarterly numbers are in")
            with trio.fail_after(10):
                got = await b.wait_event(lambda e: e["type"] == "message_received")
                await a.wait_event(
                    lambda e: e["type"] == "message_delivered" and e["message_id"] == sent["id"]
                )
            assert got["message_id"] == sent["id"]
            assert got["sender"] == fa

            offer = (
                await a.call("send_files", peers=["bob"], paths=[str(tmp_path / "report.bin")])
            )["offer"]
            with trio.fail_after(10):
                offered = await b.wait_event(
                    lambda e: e["type"] == "offer_received" and e["offer"] == offer
                )
            assert [f["path"] for f in offered["files"]] == ["report.bin"]
            await b.call("accept_offer", peer="alice", offer=offer, directory=str(inbox))
            with trio.fail_after(30):
                done_b = await b.wait_event(
                    lambda e: e["type"] == "transfer_finished" and e["offer"] == offer
                )
                done_a = await a.wait_event(
                    lambda e: e["type"] == "transfer_finished" and e["offer"] == offer
                )
            assert done_a["state"] == done_b["state"] == "completed"
            assert (inbox / "report.bin").read_bytes() == data

            await b.call("send", peer=fa[:8], text="thanks, numbers look fine")
            with trio.fail_after(10):
                await a.wait_event(lambda e: e["type"] == "message_received")
            history = await b.call("history", peer="alice")
            assert [m["body"] for m in history] == [
                "the quarterly numbers are in",
                "thanks, numbers look fine",
            ]
            found = await b.call("search", query="numbers")
            assert {m["body"] for m in found} == {m["body"] for m in history}
            transfers = await b.call("transfers")
            assert [(t["offer"], t["state"]) for t in transfers] == [(offer, "completed")]

            room = (await a.call("create_room", name="numbers", topic="Q4"))["room"]
            await a.call("invite", room=room, peer="bob")
            with trio.fail_after(10):
                invited = await b.wait_event(lambda e: e["type"] == "room_invited")
            assert (invited["room"], invited["name"], invited["inviter"]) == (room, "numbers", fa)
            await b.call("join_room", room="numbers")  # by name
            with trio.fail_after(10):
                await a.wait_event(lambda e: e["type"] == "room_changed" and fb in e["members"])
            posted = await b.call("post", room=room, text="joined, reading the report")
            with trio.fail_after(10):
                seen = await a.wait_event(lambda e: e["type"] == "room_message")
            assert (seen["message_id"], seen["author"]) == (posted["id"], fb)
            (info,) = await b.call("rooms")
            assert sorted(info["members"]) == sorted([fa, fb])
            assert info["topic"] == "Q4"
            assert [m["body"] for m in await a.call("room_history", room=room)] == [
                "joined, reading the report"
            ]
            exported = (await b.call("export", room="numbers", format="markdown"))["text"]
            assert exported.startswith("# Conversation with numbers")
            assert "joined, reading the report" in exported
        assert await a.stop() == 0
        assert await b_daemon.stop() == 0
