"""The node in trio guest mode on Textual's asyncio loop (DESIGN.md §5).

One thread runs both loops: trio's ticks are asyncio callbacks, so the UI and the node
never race, and nothing the node does blocks a frame for longer than one trio step.  The
bridge owns the trio run: it starts the node, forwards every node event to a callback,
runs node calls for the UI (each awaited as an asyncio future), and on `shutdown()` stops
the node gracefully (goodbyes, mDNS withdrawn, database closed) before trio exits.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload

import outcome
import trio

from p2pim import control
from p2pim.events import NodeEvent
from p2pim.node import Node

T = TypeVar("T")
P = ParamSpec("P")
STOP_GRACE = 3.0  # seconds a graceful stop may take before the node is cancelled


class NodeStopped(RuntimeError):
    """The node has stopped, or is stopping and takes no new calls."""


class NodeBridge:
    def __init__(
        self,
        node: Node,
        on_event: Callable[[NodeEvent], None],
        *,
        peers: tuple[tuple[str, int], ...] = (),
        control_socket: Path | None = None,
    ) -> None:
        self.node = node
        self._on_event = on_event
        self._peers = peers
        self._control_socket = control_socket
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start the node on the running asyncio loop; returns once it listens."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._done = loop.create_future()
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=self._finished,
            host_uses_signal_set_wakeup_fd=True,
        )
        await asyncio.shield(self._ready)

    @property
    def running(self) -> bool:
        return self._done is not None and not self._done.done()

    @overload
    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T: ...
    @overload
    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...
    async def call(self, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run `fn(*args, **kwargs)` (sync or async) inside trio; its result or error."""
        if self._token is None or self._nursery is None or not self.running:
            raise NodeStopped("the node is not running")
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        nursery = self._nursery

        async def run() -> None:
            try:
                value = fn(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            except BaseException as exc:  # handed to the awaiting UI code
                if not result.done():
                    result.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
                if not isinstance(exc, Exception):
                    raise
            else:
                if not result.done():
                    result.set_result(value)

        def spawn() -> None:
            # Runs in trio, where an exception would crash the whole run (TrioInternalError)
            # and leave this call waiting forever: a call that races the node's stop finds
            # the nursery closed to new tasks, and fails like any call to a stopped node.
            try:
                nursery.start_soon(run)
            except RuntimeError:
                if not result.done():
                    result.set_exception(NodeStopped("the node is not running"))

        try:
            self._token.run_sync_soon(spawn)
        except trio.RunFinishedError:  # trio is done; our done callback has yet to run
            raise NodeStopped("the node is not running") from None
        return await result

    async def wait(self) -> None:
        """Until the node has stopped, for whatever reason."""
        assert self._done is not None
        await asyncio.shield(self._done)

    async def shutdown(self) -> None:
        """Stop the node gracefully and wait until trio has exited (idempotent)."""
        if self._done is None:
            return
        if not self._done.done() and not self._stopping and self._token is not None:
            self._stopping = True
            self._token.run_sync_soon(self._begin_stop)
        await asyncio.shield(self._done)

    def _begin_stop(self) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._stop_node)

    async def _stop_node(self) -> None:
        await self.node.stop()
        await trio.sleep(STOP_GRACE)  # still running: cancel it
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        events = self.node.subscribe()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._relay, events)
            await nursery.start(self.node.run_then_cancel, nursery.cancel_scope)
            if self._control_socket is not None:  # scripts drive this node while it runs
                await nursery.start(control.serve_control, self.node, self._control_socket)
            assert self._ready is not None
            self._ready.set_result(None)
            for host, port in self._peers:
                await self.node.add_peer(host, port)

    async def _relay(self, events: trio.MemoryReceiveChannel[NodeEvent]) -> None:
        async with events:
            async for event in events:
                self._on_event(event)

    def _finished(self, result: outcome.Outcome[None]) -> None:
        assert self._done is not None
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(RuntimeError("the node did not start"))
        if isinstance(result, outcome.Error):
            self._done.set_exception(result.error)
        else:
            self._done.set_result(None)
