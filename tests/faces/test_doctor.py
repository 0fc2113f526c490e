"""`p2pim doctor`'s checks, run against real nodes on loopback through the control socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from p2pim import Identity, Node
from p2pim.client import RpcClient, connect
from p2pim.clock import new_message_id, now_ms
from p2pim.control import hold_profile, serve_control, socket_path
from p2pim.doctor import Finding, diagnose, render
from p2pim.events import MessageReceived, PeerConnected
from p2pim.wire.messages import Text
from tests.support.nodes import loopback_config, next_event, raw_session


@pytest.fixture
async def doctor(tmp_path: Path) -> AsyncIterator[tuple[Node, RpcClient]]:
    node = Node(Identity.generate(), loopback_config("doc"))
    with hold_profile(tmp_path):
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await nursery.start(serve_control, node, socket_path(tmp_path))
            async with connect(socket_path(tmp_path)) as client:
                yield node, client
            await node.stop()
            nursery.cancel_scope.cancel()


def by_check(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


async def test_a_healthy_node_without_mdns(doctor: tuple[Node, RpcClient]) -> None:
    node, client = doctor
    findings = await diagnose(client)
    assert [f.status for f in by_check(findings, "mdns")] == ["info"]
    (listening,) = by_check(findings, "listening")
    assert listening.status == "ok"
    assert f"127.0.0.1:{node.port}" in listening.detail
    assert render(findings).endswith("no problems found")


async def test_an_unreachable_peer_is_reported_with_its_cause(
    doctor: tuple[Node, RpcClient],
) -> None:
    _, client = doctor
    await client.call("subscribe")
    await client.call("add_peer", host="127.0.0.1", port=1)  # nothing listens there
    with trio.fail_after(10):
        await client.wait_event(lambda e: e["type"] == "dial_failed")
    (problem,) = by_check(await diagnose(client), "reachability")
    assert problem.status == "problem"
    assert "127.0.0.1:1" in problem.detail
    assert "refused" in problem.detail
    assert render([problem]).endswith("1 problem(s) found")


async def test_a_peer_whose_clock_is_off_is_reported(
    doctor: tuple[Node, RpcClient], identity: Identity
) -> None:
    node, client = doctor
    events = node.subscribe()
    link = await raw_session(node.port, identity, "skewed")
    await next_event(events, lambda e: isinstance(e, PeerConnected))
    for _ in range(3):  # its clock says a minute from now
        await link.send(Text(new_message_id(), now_ms() + 60_000, "from the future"))
        await next_event(events, lambda e: isinstance(e, MessageReceived))
    (clock,) = by_check(await diagnose(client), "clock")
    assert clock.status == "problem"
    assert "skewed's clock is about 60 s ahead of ours" in clock.detail
    await link.close()
