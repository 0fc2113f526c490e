"""The control socket and the profile lock: a running node, driven over its UNIX socket."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from p2pim import Identity, Node, NodeConfig
from p2pim.client import RpcFailed, connect
from p2pim.control import ProfileInUse, hold_profile, node_running, serve_control, socket_path


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Node, Path]]:
    """A node serving its control socket in tmp_path/profile."""
    profile = tmp_path / "profile"
    config = NodeConfig(nick="ctl", listen_host="127.0.0.1", discovery=False)
    node = Node(Identity.generate(), config)
    with hold_profile(profile):
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await nursery.start(serve_control, node, socket_path(profile))
            yield node, socket_path(profile)
            await node.stop()
            nursery.cancel_scope.cancel()


async def test_the_socket_is_owner_only_and_serves_the_api(node: tuple[Node, Path]) -> None:
    n, path = node
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    async with connect(path) as first, connect(path) as second:
        assert (await first.call("identity"))["fingerprint"] == n.fingerprint
        assert (await second.call("stats"))["sessions"] == 0
        with pytest.raises(RpcFailed) as failure:
            await first.call("send", peer="nobody", text="hi")
        assert failure.value.code == 2


async def test_errors_inside_a_connection_reach_the_caller_unwrapped(
    node: tuple[Node, Path],
) -> None:
    _, path = node
    with pytest.raises(RpcFailed):  # not an ExceptionGroup: plain `except` works in scripts
        async with connect(path) as client:
            await client.call("send", peer="nobody", text="hi")


async def test_events_flow_only_to_subscribers(node: tuple[Node, Path]) -> None:
    _, path = node
    async with connect(path) as listener, connect(path) as bystander:
        assert await listener.call("subscribe") == {"subscribed": True}
        await bystander.call("add_peer", host="127.0.0.1", port=1)  # nothing listens there
        with trio.fail_after(10):
            failed = await listener.wait_event(lambda e: e["type"] == "dial_failed")
        assert failed["address"] == "127.0.0.1:1"
        assert await listener.call("unsubscribe") == {"subscribed": False}
        assert bystander.events == []


async def test_malformed_input_and_abrupt_clients_never_hurt_the_node(
    node: tuple[Node, Path],
) -> None:
    n, path = node
    junk = [
        b"{not json\n",
        b"\xff\xfe\x00\n",
        b"[]\n",
        b'{"jsonrpc":"2.0","id":1,"method":"send","params":{"peer":[1],"text":{}}}\n',
        b'{"jsonrpc":"2.0","id":{"deep":[[[[[]]]]]},"method":"peers"}\n',
        b"[" * 100_000 + b"\n",
        b"x" * (2 << 20) + b"\n",  # longer than a request may be
    ]
    for line in junk:
        stream = await trio.open_unix_socket(os.fspath(path))
        async with stream:
            await stream.send_all(line)
            with trio.fail_after(5):
                reply = await stream.receive_some(65536)
            assert b'"error"' in reply, (line[:40], reply)
    for cut in (b'{"jsonrpc":"2.0","id":1,"meth', b'{"jsonrpc":"2.0","id":1,"method":"peers"}\n'):
        stream = await trio.open_unix_socket(os.fspath(path))
        await stream.send_all(cut)
        await trio.aclose_forcefully(stream)  # gone before (or while) the answer is written
    async with connect(path) as client:
        assert (await client.call("identity"))["fingerprint"] == n.fingerprint


async def test_a_profile_runs_one_node_and_a_crash_frees_it(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    argv = [sys.executable, "-m", "p2pim", "--profile", str(profile), "daemon"]
    argv += ["--no-discovery", "--listen", "127.0.0.1:0"]
    first = await trio.lowlevel.open_process(argv, stderr=subprocess.PIPE)
    try:
        with trio.fail_after(20):
            while not socket_path(profile).exists():  # noqa: ASYNC110 (another process's file)
                await trio.sleep(0.05)  # polling a file another process creates
        assert node_running(profile)
        with pytest.raises(ProfileInUse), hold_profile(profile):
            pass
        second = await trio.run_process(argv, capture_stderr=True, check=False)
        assert second.returncode == 1
        assert b"already runs on the profile" in second.stderr
        async with connect(socket_path(profile)) as client:
            fingerprint = (await client.call("identity"))["fingerprint"]
    finally:
        first.kill()
        await first.wait()
    assert not node_running(profile)  # the kernel dropped the dead node's lock
    assert socket_path(profile).exists()  # stale: the next node replaces it
    third = await trio.lowlevel.open_process(argv, stderr=subprocess.PIPE)
    try:
        with trio.fail_after(20):
            while True:
                try:
                    async with connect(socket_path(profile)) as client:
                        assert (await client.call("identity"))["fingerprint"] == fingerprint
                        await client.call("shutdown")
                        break
                except OSError:
                    await trio.sleep(0.05)  # the stale socket refuses until the node binds
        with trio.fail_after(10):
            assert await third.wait() == 0
    finally:
        third.kill()
    assert not socket_path(profile).exists()  # a clean exit removes it
