"""Helpers for tests that run the real `p2pim` program: command lines, one-shot runs and
daemons introduced to each other (loopback only)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from p2pim.testing.daemon_process import DaemonProcess

LOOPBACK = ("--no-discovery", "--listen", "127.0.0.1:0")  # every node a test runs
Spawn = Callable[[Path, str], Awaitable[DaemonProcess]]


def p2pim(profile: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "p2pim", "--profile", str(profile), *args]


def one_shot(profile: Path, command: str, *args: str) -> list[str]:
    """A one-shot command ("send", "room post"...) whose temporary node (if it runs one)
    stays on loopback."""
    return p2pim(profile, *command.split(), *LOOPBACK, *args)


async def run(argv: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(
            argv, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
        )


async def port_of(daemon: DaemonProcess) -> int:
    port: int = (await daemon.call("identity"))["port"]
    return port


async def fingerprint_of(daemon: DaemonProcess) -> str:
    fingerprint: str = (await daemon.call("identity"))["fingerprint"]
    return fingerprint


async def introduce(a: DaemonProcess, *others: DaemonProcess) -> list[str]:
    """Connect `a` to each of `others` (each pins the other's key); their fingerprints."""
    with trio.fail_after(20):
        return [
            (await a.call("connect", host="127.0.0.1", port=await port_of(o)))["fingerprint"]
            for o in others
        ]
