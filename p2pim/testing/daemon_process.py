"""Drive a real `p2pim daemon --stdio` process over JSON-RPC (tests and benchmarks)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

Event = dict[str, Any]


class RpcFailed(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")


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


class DaemonProcess:
    """One daemon: `call()` sends a request and awaits its response; events accumulate in
    `events` and can be awaited with `wait_event()`."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._ids = itertools.count(1)
        self._write_lock = trio.Lock()
        self._responses: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self.events: list[Event] = []
        self._new_event = trio.Event()
        self.closed = trio.Event()

    async def read_loop(self) -> None:
        buffer = b""
        try:
            while chunk := await self._stdout.receive_some(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._dispatch(json.loads(line))
        finally:
            self.closed.set()
            self._new_event.set()
            for channel in self._responses.values():
                channel.close()  # pending calls fail instead of hanging

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("method") == "event":
            self.events.append(message["params"])
            self._new_event.set()
            self._new_event = trio.Event()
        elif (channel := self._responses.pop(message.get("id"), None)) is not None:  # type: ignore[arg-type]
            channel.send_nowait(message)

    async def call(self, method: str, **params: Any) -> Any:
        if self.closed.is_set():
            raise EOFError("daemon has exited")
        rid = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._responses[rid] = send
        request = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        async with self._write_lock:  # calls may come from many tasks at once
            await self._stdin.send_all(json.dumps(request).encode() + b"\n")
        try:
            response = await receive.receive()
        except trio.EndOfChannel:
            raise EOFError(f"daemon exited before answering {method}") from None
        if "error" in response:
            raise RpcFailed(response["error"])
        return response["result"]

    async def stop(self, timeout: float = 5.0) -> int:
        """Close stdin (the daemon then says goodbye and exits); kill it if it hangs."""
        await self._stdin.aclose()
        with trio.move_on_after(timeout):
            return await self.process.wait()
        self.process.kill()
        return await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL: a crash, no goodbye."""
        self.process.kill()
        await self.process.wait()

    async def wait_event(self, predicate: Callable[[Event], bool]) -> Event:
        """The first event so far, or still to come, for which `predicate` holds.
        The caller bounds the wait (trio.fail_after)."""
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if self.closed.is_set():
                raise EOFError("daemon exited")
            await self._new_event.wait()


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
