"""Fixtures of the faces' tests: the CLI, JSON-RPC, the daemon and its control socket."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from p2pim.testing.daemon_process import DaemonProcess, daemon_argv, start_daemon
from tests.support.cli import Spawn


@pytest.fixture
async def spawn(nursery: trio.Nursery) -> AsyncIterator[Spawn]:
    """Start `p2pim daemon --stdio` on a profile, on loopback without mDNS; all are
    killed at the end of the test."""
    started: list[DaemonProcess] = []

    async def spawn(profile: Path, nick: str) -> DaemonProcess:
        argv = daemon_argv(profile, nick, "127.0.0.1", "--no-discovery")
        daemon = await start_daemon(nursery, argv)
        started.append(daemon)
        with trio.fail_after(20):
            await daemon.call("identity")  # answered once the node and its socket are up
        return daemon

    yield spawn
    for daemon in started:
        if daemon.process.returncode is None:
            await daemon.kill()
