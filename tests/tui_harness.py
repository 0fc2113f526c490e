"""Run real p2pim UIs under Textual's Pilot, each on its own thread.

Trio allows one run per thread, and each UI hosts its node as a trio guest on its own
asyncio loop, so two UIs in one test need two threads.  The test thread drives them with
`ui.do(coroutine_function)` (run on the UI's loop with its Pilot) and waits for what the
screens show with `ui.wait_until(predicate)`, which polls on the UI's own loop between
frames: no sleeps in the test, every wait bounded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from textual.pilot import Pilot

from p2pim import Identity, NodeConfig
from p2pim.node import Node
from p2pim.ui.app import P2pimApp

T = TypeVar("T")
SIZE = (100, 30)


def loopback_node(nick: str, home: Path, identity: Identity | None = None, **config: Any) -> Node:
    """A real node on 127.0.0.1 (no mDNS) with its database and downloads under `home`."""
    home.mkdir(parents=True, exist_ok=True)
    settings = NodeConfig(
        nick=nick, listen_host="127.0.0.1", discovery=False, download_dir=home / "downloads"
    )
    for name, value in config.items():
        setattr(settings, name, value)
    return Node(identity or Identity.generate(), settings, store_path=home / "p2pim.sqlite")


class UiThread:
    """One app under `run_test` on a thread of its own, until `close()` or it quits."""

    def __init__(self, app: P2pimApp, size: tuple[int, int] = SIZE) -> None:
        self.app = app
        self._size = size
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pilot: Pilot[None] | None = None
        self._release: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"ui-{app.node.config.nick}")
        self.thread.start()
        if not self._ready.wait(15):
            raise TimeoutError("the UI did not start")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._release = asyncio.Event()
        async with self.app.run_test(size=self._size) as pilot:
            self._pilot = pilot
            self._ready.set()
            exited = asyncio.ensure_future(self._app_exited())
            released = asyncio.ensure_future(self._release.wait())
            await asyncio.wait([exited, released], return_when=asyncio.FIRST_COMPLETED)
            exited.cancel()
            released.cancel()

    async def _app_exited(self) -> None:
        while self.app.is_running:
            await asyncio.sleep(0.02)

    def do(self, fn: Callable[[Pilot[None]], Awaitable[T]], timeout: float = 15) -> T:
        """Run `fn(pilot)` on the UI's loop; its result (or exception) here."""
        assert self._loop is not None and self._pilot is not None
        future = asyncio.run_coroutine_threadsafe(_call(fn, self._pilot), self._loop)
        return future.result(timeout)

    def quit(self, key: str = "ctrl+q", timeout: float = 15) -> None:
        """Press the quit key and wait until the app and its thread have ended."""
        assert self._loop is not None and self._pilot is not None
        pilot = self._pilot
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(pilot.press(key)))
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError("the UI did not quit")

    def wait_until(self, predicate: Callable[[P2pimApp], T], timeout: float = 10) -> T:
        """Until `predicate(app)` (checked on the UI's loop) is truthy; that value."""

        async def poll(pilot: Pilot[None]) -> T:
            async with asyncio.timeout(timeout):
                while True:
                    value = predicate(self.app)
                    if value:
                        return value
                    await pilot.pause(0.02)

        return self.do(poll, timeout + 5)

    def close(self, timeout: float = 15) -> None:
        """End the test run (the app's unmount stops its node); wait for the thread."""
        if self._loop is not None and self._release is not None and self.thread.is_alive():
            self._loop.call_soon_threadsafe(self._release.set)
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError("the UI thread did not end")
        if self._error is not None:
            raise self._error


async def _call(fn: Callable[[Pilot[None]], Awaitable[T]], pilot: Pilot[None]) -> T:
    return await fn(pilot)
