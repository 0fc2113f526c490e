"""A blocking JSON-RPC client of the node serving a profile's control socket.

The standard library only: a one-shot command that talks to a running node loads this,
argparse and json, never trio, the node or the crypto library, so it answers in a few
tens of milliseconds.  (p2pim.client is the trio client, for async programs.)
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

Event = dict[str, Any]
MAX_LINE = 16 * 1024 * 1024  # a line longer than this is the node misbehaving


class RpcFailed(Exception):
    """The node answered with a JSON-RPC error; `code` is its stable number."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = str(error.get("message"))


class BlockingClient:
    """Requests answered in order; event notifications (after `subscribe`) accumulate in
    `events` while the client reads, and `wait_events` waits for more."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self._ids = itertools.count(1)
        self.events: list[Event] = []

    @classmethod
    def connect(cls, path: Path) -> BlockingClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(os.fspath(path))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def call(self, method: str, **params: Any) -> Any:
        """The method's result; RpcFailed if the node answered with an error."""
        rid = next(self._ids)
        request = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        self._sock.settimeout(None)
        self._sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self._read_message(None)
            assert message is not None  # no deadline: a message, or EOFError
            if message.get("id") == rid:
                if "error" in message:
                    raise RpcFailed(message["error"])
                return message["result"]

    def wait_events(self, seen: int, deadline: float | None) -> bool:
        """Read until there are more than `seen` events; False if `deadline` (a
        time.monotonic() value; None: none) passed first."""
        while len(self.events) <= seen:
            if self._read_message(deadline) is None:
                return False
        return True

    def wait_event(
        self, predicate: Callable[[Event], bool], deadline: float | None
    ) -> Event | None:
        """The first event so far, or still to come before `deadline`, for which
        `predicate` holds; None if there was none by then."""
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if not self.wait_events(seen, deadline):
                return None

    def _read_message(self, deadline: float | None) -> dict[str, Any] | None:
        """The next message (events are also appended to `events`); None at `deadline`."""
        while b"\n" not in self._buffer:
            if deadline is None:
                self._sock.settimeout(None)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise EOFError("the node has gone")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE and b"\n" not in self._buffer:
                raise EOFError("the node sent an overlong line")
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        if message.get("method") == "event":
            self.events.append(message["params"])
        return message
