"""Drive a real `p2pim daemon --stdio` process over JSON-RPC (tests and benchmarks)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from p2pim.client import Event, RpcClient
from p2pim.client import RpcFailed as RpcFailed  # the tests' name for a refused call


def daemon_argv(
    profile: Path,
    nick: str,
    address: str,
    *extra: str,
    listen: str | None = None,
    interfaces: Sequence[str] = (),
) -> list[str]:
    """The command line of a daemon that listens (any port) and runs mDNS on `address`
    only, unless `listen` (HOST:PORT) or `interfaces` say otherwise."""
    argv = [sys.executable, "-m", "p2pim", "--profile", str(profile), "daemon", "--stdio"]
    argv += ["--nick", nick, "--listen", listen or f"{address}:0"]
    for interface in interfaces or [address]:
        argv += ["--interface", interface]
    return argv + list(extra)


STOP_PATIENCE = 5.0  # seconds a daemon gets to say goodbye before it is killed


class DaemonProcess(RpcClient):
    """One daemon process: `call()` sends a request and awaits its response; events
    accumulate in `events` and can be awaited with `wait_event()`."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        super().__init__(process.stdin, process.stdout)
        self.process = process
        self._stdin = process.stdin

    async def stop(self) -> int:
        """Close stdin (the daemon then says goodbye and exits); kill it if it hangs."""
        await self._stdin.aclose()
        with trio.move_on_after(STOP_PATIENCE):
            return await self.process.wait()
        self.process.kill()
        return await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL: a crash, no goodbye."""
        self.process.kill()
        await self.process.wait()


async def start_daemon(nursery: trio.Nursery, argv: Sequence[str]) -> DaemonProcess:
    """Start a daemon process whose stdout is read in `nursery`; stderr is inherited."""
    process = await trio.lowlevel.open_process(
        list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    daemon = DaemonProcess(process)
    nursery.start_soon(daemon.read_loop)
    return daemon


# ---- event predicates for `DaemonProcess.wait_event` -------------------------------------

Predicate = Callable[[Event], bool]


def connected_to(fp: str) -> Predicate:
    return lambda e: e["type"] == "peer_connected" and e["fingerprint"] == fp


def disconnected_from(fp: str) -> Predicate:
    return lambda e: e["type"] == "peer_disconnected" and e["fingerprint"] == fp


def discovered(fp: str) -> Predicate:
    return lambda e: e["type"] == "peer_discovered" and e["fingerprint_hint"] == fp


def text_from(fp: str, text: str) -> Predicate:
    return lambda e: e["type"] == "message_received" and e["sender"] == fp and e["text"] == text


def since(daemon: DaemonProcess, predicate: Predicate) -> Predicate:
    """`predicate`, restricted to events the daemon emits from now on."""
    old = {id(e) for e in daemon.events}
    return lambda e: id(e) not in old and predicate(e)
