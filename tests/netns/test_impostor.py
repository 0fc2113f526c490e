"""mDNS is a hint: a host advertising someone else's fingerprint gets nothing from us."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from p2pim.identity import load_or_create
from p2pim.testing.daemon_process import RpcFailed, daemon_argv, start_daemon
from p2pim.testing.vlan import LoopbackNamespace
from tests.support import REPO

pytestmark = pytest.mark.netns

IMPOSTOR = REPO / "tests" / "peers" / "impostor.py"


async def read_json_lines(
    stream: trio.abc.ReceiveStream, into: list[dict], changed: list[trio.Event]
) -> None:
    buffer = b""
    while chunk := await stream.receive_some(65536):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            into.append(json.loads(line))
            changed[0].set()
            changed[0] = trio.Event()


async def test_dialer_rejects_host_advertising_another_peers_fingerprint(
    loopback_ns: LoopbackNamespace, tmp_path: Path
) -> None:
    victim = load_or_create(tmp_path / "victim")  # never runs: the impostor wears its name
    async with trio.open_nursery() as nursery:
        impostor = await trio.lowlevel.open_process(
            loopback_ns.command(
                [sys.executable, str(IMPOSTOR), victim.public_key.hex(), "127.0.0.1"]
            ),
            stdout=subprocess.PIPE,
        )
        reports: list[dict] = []
        changed = [trio.Event()]
        assert impostor.stdout is not None
        nursery.start_soon(read_json_lines, impostor.stdout, reports, changed)

        argv = daemon_argv(tmp_path / "dialer", "dialer", "127.0.0.1")
        dialer = await start_daemon(nursery, loopback_ns.command(argv))
        with trio.fail_after(15):
            rejected = await dialer.wait_event(lambda e: e["type"] == "peer_rejected")
            while not any(r["event"].startswith("handshake") for r in reports):
                await changed[0].wait()
        impostor_fp = next(r["fingerprint"] for r in reports if r["event"] == "listening")

        assert rejected["expected_fingerprint"] == victim.fingerprint
        assert rejected["actual_fingerprint"] == impostor_fp
        # The dialer aborted before handshake message 3: the impostor never even learned
        # who dialled, let alone received application data.
        outcomes = [r["event"] for r in reports if r["event"] != "listening"]
        assert outcomes
        assert set(outcomes) == {"handshake_failed"}
        assert not [e for e in dialer.events if e["type"] == "peer_connected"]
        with pytest.raises(RpcFailed, match="no peer with fingerprint"):  # never pinned
            await dialer.call("send", peer=victim.fingerprint, text="secret")

        assert await dialer.stop() == 0
        impostor.kill()
        await impostor.wait()
