"""The control socket and the profile lock.

One node runs per profile: it holds an exclusive lock on `node.lock` in the profile
directory for as long as it runs.  That node serves JSON-RPC 2.0 (the methods of
`p2pim.rpc`, newline-delimited, as on the daemon's stdio) on `control.sock` beside it,
readable and writable by the owner only, so the one-shot CLI, scripts and bots can drive
the user's running node.  A client receives event notifications after `subscribe`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path

import trio

from p2pim import events as ev
from p2pim.node import Node
from p2pim.profile import (
    LOCK_NAME,
    MAX_SOCKET_PATH,
    SOCKET_NAME,
    ProfileInUse,
    hold_profile,
    node_running,
    socket_path,
)
from p2pim.rpc import RpcServer
from p2pim.rpc_stream import JsonLineWriter, notification, serve_lines

# The lock and the socket path live in p2pim.profile, where a CLI loads them fast.
__all__ = [
    "LOCK_NAME",
    "MAX_CLIENTS",
    "MAX_SOCKET_PATH",
    "SOCKET_NAME",
    "ProfileInUse",
    "hold_profile",
    "node_running",
    "serve_control",
    "socket_path",
]

log = logging.getLogger(__name__)

MAX_CLIENTS = 32
EVENT_WRITE_TIMEOUT = 5.0  # a client that takes no events for this long is dropped


async def serve_control(
    node: Node, path: Path, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the control socket at `path` until cancelled.  The caller holds the profile
    lock, so a socket file already there is a dead node's: it is replaced."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        log.warning("no control socket: %s is longer than a UNIX socket path may be", path)
        task_status.started()
        return
    await trio.Path(path).unlink(missing_ok=True)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # born owner-only: no window where others may connect
    try:
        await sock.bind(os.fspath(path))
    finally:
        os.umask(old_umask)
    sock.listen(MAX_CLIENTS)
    listener = trio.SocketListener(sock)
    clients = 0

    async def serve(stream: trio.SocketStream) -> None:
        nonlocal clients
        clients += 1
        try:
            await _serve_client(node, stream)
        finally:
            clients -= 1

    try:
        async with listener, trio.open_nursery() as nursery:
            task_status.started()
            while True:
                stream = await listener.accept()
                if clients >= MAX_CLIENTS:
                    await trio.aclose_forcefully(stream)
                else:
                    nursery.start_soon(serve, stream)
    finally:  # synchronously: an await here would be cancelled before removing it
        path.unlink(missing_ok=True)  # noqa: ASYNC240


class _Client:
    """One connected client: its requests, and its events once it subscribes."""

    def __init__(self, node: Node, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        self._node = node
        self._stream = stream
        self.writer = JsonLineWriter(stream)
        self._nursery = nursery
        self._events: trio.MemoryReceiveChannel[ev.NodeEvent] | None = None

    def start(self) -> None:
        if self._events is None:
            self._events = self._node.subscribe()
            self._nursery.start_soon(self._forward, self._events)

    def stop(self) -> None:
        if self._events is not None:
            self._events.close()  # the node drops a closed subscriber
            self._events = None

    async def _forward(self, events: trio.MemoryReceiveChannel[ev.NodeEvent]) -> None:
        """A client that takes no events for EVENT_WRITE_TIMEOUT is disconnected, so it
        cannot hold the node back (subscribers get back-pressure) for longer than that."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async for event in events:
                with trio.move_on_after(EVENT_WRITE_TIMEOUT) as stuck:
                    await self.writer.write(notification(event))
                if stuck.cancelled_caught:
                    log.warning("dropping a control client that stopped reading events")
                    await trio.aclose_forcefully(self._stream)
                    return


async def _serve_client(node: Node, stream: trio.SocketStream) -> None:
    async with trio.open_nursery() as nursery:
        client = _Client(node, stream, nursery)
        try:
            await serve_lines(RpcServer(node, client), stream, client.writer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away mid-request, or was dropped
        finally:
            client.stop()
            nursery.cancel_scope.cancel()
    await trio.aclose_forcefully(stream)
