"""A JSON-RPC client of a p2pim node: over its control socket (`connect`), or over any
pair of byte streams (the tests drive `p2pim daemon --stdio` through its pipes)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from p2pim.blocking_client import RpcFailed as RpcFailed  # one error class for both clients

Event = dict[str, Any]
MAX_LINE = 16 * 1024 * 1024  # a response line longer than this is the node misbehaving


class RpcClient:
    """Requests and their responses, matched by id; event notifications accumulate in
    `events` and can be awaited with `wait_event`.  `read_loop` must run meanwhile.
    A long-running client that subscribes should clear `events` now and then."""

    def __init__(self, send: trio.abc.SendStream, receive: trio.abc.ReceiveStream) -> None:
        self._send = send
        self._receive = receive
        self._ids = itertools.count(1)
        self._write_lock = trio.Lock()
        self._responses: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self.events: list[Event] = []
        self._new_event = trio.Event()
        self.closed = trio.Event()

    async def read_loop(self) -> None:
        buffer = b""
        try:
            while chunk := await self._receive.receive_some(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                if len(buffer) > MAX_LINE:
                    raise ValueError("the node sent an overlong line")
                for line in lines:
                    self._dispatch(json.loads(line))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
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
        """The method's result; RpcFailed if the node answered with an error."""
        if self.closed.is_set():
            raise EOFError("the node has gone")
        rid = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._responses[rid] = send
        request = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        async with self._write_lock:  # calls may come from many tasks at once
            await self._send.send_all(json.dumps(request).encode() + b"\n")
        try:
            response = await receive.receive()
        except trio.EndOfChannel:
            raise EOFError(f"the node went away before answering {method}") from None
        if "error" in response:
            raise RpcFailed(response["error"])
        return response["result"]

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
                raise EOFError("the node has gone")
            await self._new_event.wait()


@asynccontextmanager
async def connect(socket: Path) -> AsyncIterator[RpcClient]:
    """A client of the node serving the control socket `socket` (see p2pim.control)."""
    stream = await trio.open_unix_socket(os.fspath(socket))
    try:
        async with stream, trio.open_nursery() as nursery:
            client = RpcClient(stream, stream)
            nursery.start_soon(client.read_loop)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the caller's error, not wrapped by our nursery
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
