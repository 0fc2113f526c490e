"""Run real p2pim UIs under Textual's Pilot, each on its own thread.

Trio allows one run per thread, and each UI hosts its node as a trio guest on its own
asyncio loop, so two UIs in one test need two threads.  The test thread drives them with
`ui.do(coroutine_function)` (run on the UI's loop with its Pilot) and waits for what the
screens show with `ui.wait_until(predicate)`, which polls on the UI's own loop between
frames: no sleeps in the test, every wait bounded.

`FrameProbe` times key presses to the frame that shows them, and
`measure_transfer_latency` does so while a UI receives a big file from a daemon process
(tests/ui/test_tui_latency.py, benchmarks/bench_tui.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from textual.pilot import Pilot

from p2pim.ui.app import P2pimApp
from tests.support.nodes import loopback_node

T = TypeVar("T")
SIZE = (100, 30)
TRANSFER_WITHIN = 900.0  # seconds a latency run's transfer may take, key presses included


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
        while self.app.is_running:  # noqa: ASYNC110 (Textual announces no exit to run_test)
            await asyncio.sleep(0.02)

    def do(self, fn: Callable[[Pilot[None]], Awaitable[T]], timeout: float = 15) -> T:
        """Run `fn(pilot)` on the UI's loop; its result (or exception) here."""
        assert self._loop is not None
        assert self._pilot is not None
        future = asyncio.run_coroutine_threadsafe(_call(fn, self._pilot), self._loop)
        return future.result(timeout)

    def quit(self, key: str = "ctrl+q", timeout: float = 15) -> None:
        """Press the quit key and wait until the app and its thread have ended."""
        assert self._loop is not None
        assert self._pilot is not None
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
    # A coroutine sent from another thread runs in a task of its own, outside the app's
    # context: Textual's "current app" must be set for it, or rendering can fail.
    from textual._context import active_app

    active_app.set(pilot.app)
    return await fn(pilot)


# ---- key-to-render latency ---------------------------------------------------------------


class FrameProbe:
    """Times a key press until a frame showing its character has been rendered.

    What is measured, on the UI's own clock (`time.perf_counter`):

    - start: the key is handed to the app exactly as Textual's terminal driver does it, by
      `Driver.process_message` from a thread other than the UI's (the driver's input
      thread in a terminal), which queues it on the UI's event loop;
    - end: the first frame after the composer's text has grown by that character.  A
      frame is the screen's compositor update, which `App._display` receives on every
      repaint (`Screen._compositor_refresh`, paced at most `MAX_FPS` times a second).  In
      headless mode `_display` drops the update before turning it into terminal escape
      sequences, so the probe does that step too (`render_segments`, the string a real
      terminal would be sent): only the final write to the terminal is left out.

    So a sample covers the event queue, the key dispatch, the text area's edit, the
    frame pacing and the compositing: whatever the node's work (trio guest ticks on the
    same loop) makes the UI wait for shows up in it.
    """

    def __init__(self, app: P2pimApp) -> None:
        from p2pim.ui.composer import Composer

        self.app = app
        self.composer = app.query_one(Composer)
        self.frames = 0
        self._length = len(self.composer.text)
        self._want: int | None = None  # the composer length that ends the sample
        self._shown = threading.Event()
        self._shown_at = 0.0
        self._original = app._display
        app._display = self._display  # type: ignore[method-assign]

    def _display(self, screen: Any, renderable: Any) -> None:
        from textual._compositor import CompositorUpdate

        self._original(screen, renderable)
        if renderable is None:
            return
        if isinstance(renderable, CompositorUpdate):
            renderable.render_segments(self.app.console)
        self.frames += 1
        if self._want is not None and len(self.composer.text) >= self._want:
            self._want = None
            self._shown_at = time.perf_counter()
            self._shown.set()

    def press(self, char: str, timeout: float = 10.0) -> float:
        """From a thread other than the UI's: type `char` into the focused composer and
        return the seconds until a frame showed it (TimeoutError: the UI froze)."""
        self._shown.clear()
        self._want = self._length + 1
        start = time.perf_counter()
        self.send_key(char)
        if not self._shown.wait(timeout):
            raise TimeoutError(f"no frame showed a key press within {timeout} s")
        self._length += 1
        return self._shown_at - start

    def send_key(self, char: str) -> None:
        """Hand a key to the app as the terminal driver's input thread does (no waiting:
        Pilot.press waits for the process to be idle, which it is not during a transfer)."""
        from textual import events

        driver = self.app._driver
        assert driver is not None
        driver.process_message(events.Key(char, char))

    def clear(self, ui: UiThread) -> None:
        """Empty the composer (between samples, so it never grows tall)."""

        async def clear(pilot: Pilot[None]) -> None:
            self.composer.load_text("")  # no pilot.pause(): it waits for an idle process

        ui.do(clear)
        self._length = 0


@dataclass
class Summary:
    samples: int
    p50_ms: float
    p95_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Summary:
        ms = sorted(s * 1000 for s in seconds)
        if not ms:
            return cls(0, 0.0, 0.0, 0.0)
        cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
        return cls(len(ms), cuts[49], cuts[94], ms[-1])


@dataclass
class TransferLatency:
    """Key-to-render latency with the UI idle, then while it receives a file."""

    size: int
    idle: list[float] = field(default_factory=list)
    during: list[float] = field(default_factory=list)
    transfer_seconds: float = 0.0
    frames_during: int = 0
    state: str = ""
    identical: bool = False

    def report(self) -> dict[str, Any]:
        idle, during = Summary.of(self.idle), Summary.of(self.during)
        return {
            "size_bytes": self.size,
            "transfer_state": self.state,
            "identical": self.identical,
            "transfer_seconds": round(self.transfer_seconds, 3),
            "mb_per_s": round(self.size / max(self.transfer_seconds, 1e-9) / 1e6, 1),
            "frames_during_transfer": self.frames_during,
            "idle": asdict(idle),
            "during_transfer": asdict(during),
            "ratio_during_over_idle": {
                key: round(getattr(during, key) / getattr(idle, key), 2)
                for key in ("p50_ms", "p95_ms", "max_ms")
                if getattr(idle, key) > 0
            },
        }


def write_random_file(path: Path, size: int, chunk: int = 4 << 20) -> str:
    """`size` random (incompressible) bytes; their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(chunk, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    with path.open("rb") as data:
        return hashlib.file_digest(data, "sha256").hexdigest()


async def measure_transfer_latency(
    workdir: Path,
    size: int,
    *,
    samples: int = 60,
    gap: float = 0.01,
) -> TransferLatency:
    """A UI receives a `size`-byte file from a daemon process on 127.0.0.1 (mDNS off),
    accepting it in the offer modal, while a thread types into its composer one key every
    `gap` seconds: `samples` key presses with the UI idle first, then as many as fit in
    the transfer.  Checks the copy (SHA-256) and tells whether it is identical."""
    import trio

    from p2pim.testing.daemon_process import connected_to, daemon_argv, start_daemon
    from p2pim.ui.offer import OfferScreen

    result = TransferLatency(size)
    source = workdir / "source.bin"
    digest = await trio.to_thread.run_sync(write_random_file, source, size)
    argv = daemon_argv(workdir / "sender", "sender", "127.0.0.1", "--no-discovery")
    async with trio.open_nursery() as nursery:
        sender = await start_daemon(nursery, argv)
        ui: UiThread | None = None
        try:
            with trio.fail_after(30):
                me = await sender.call("identity")
            sender_fp, port = str(me["fingerprint"]), int(me["port"])
            app = P2pimApp(loopback_node("receiver", workdir / "receiver"))
            ui = await trio.to_thread.run_sync(UiThread, app)
            ui_fp = app.node.fingerprint

            async def connect(pilot: Pilot[None]) -> None:
                await app.call(app.node.add_peer, "127.0.0.1", port)

            await trio.to_thread.run_sync(ui.do, connect)
            with trio.fail_after(30):
                await sender.wait_event(connected_to(ui_fp))

            def online(app: P2pimApp) -> bool:
                contact = app.model.contacts.get(sender_fp)
                return contact is not None and contact.status == "online"

            await trio.to_thread.run_sync(ui.wait_until, online)

            async def open_chat(pilot: Pilot[None]) -> FrameProbe:
                app.open_conversation(sender_fp)
                while app.model.current != sender_fp:
                    await pilot.pause(0.02)
                from p2pim.ui.composer import Composer

                app.query_one(Composer).focus()
                await pilot.pause()
                return FrameProbe(app)

            probe = await trio.to_thread.run_sync(ui.do, open_chat)

            def type_keys(count: int | None, until: Callable[[], bool]) -> list[float]:
                taken: list[float] = []
                letters = "abcdefghijklmnopqrstuvwxyz"
                while (count is None or len(taken) < count) and not until():
                    if probe._length >= 40:
                        probe.clear(ui)
                    taken.append(probe.press(letters[len(taken) % len(letters)]))
                    time.sleep(gap)
                return taken

            result.idle = await trio.to_thread.run_sync(type_keys, samples, lambda: False)
            probe.clear(ui)

            with trio.fail_after(TRANSFER_WITHIN):
                offer = (await sender.call("send_files", peers=[ui_fp], paths=[str(source)]))[
                    "offer"
                ]
            await trio.to_thread.run_sync(
                ui.wait_until, lambda app: isinstance(app.screen, OfferScreen), 30
            )

            async def refocus(pilot: Pilot[None]) -> None:
                probe.composer.focus()

            def finished() -> bool:
                transfer = app.model.transfers.get((sender_fp, offer))
                return transfer is not None and transfer.finished

            started = time.perf_counter()
            probe.send_key("a")  # the offer modal's accept key
            await trio.to_thread.run_sync(
                ui.wait_until, lambda app: not isinstance(app.screen, OfferScreen), 30
            )
            await trio.to_thread.run_sync(ui.do, refocus)
            frames = probe.frames
            with trio.fail_after(TRANSFER_WITHIN):
                result.during = await trio.to_thread.run_sync(type_keys, None, finished)
                await trio.to_thread.run_sync(
                    ui.wait_until, lambda app: finished(), TRANSFER_WITHIN
                )
            result.transfer_seconds = time.perf_counter() - started
            result.frames_during = probe.frames - frames
            transfer = app.model.transfers[(sender_fp, offer)]
            result.state = transfer.state
            if transfer.state == "completed" and len(transfer.saved_as) == 1:
                copy = Path(transfer.saved_as[0])
                result.identical = await trio.to_thread.run_sync(sha256_of, copy) == digest
        finally:
            with trio.CancelScope(shield=True):
                if ui is not None:
                    await trio.to_thread.run_sync(ui.close)
                await sender.stop()
            nursery.cancel_scope.cancel()
            # Two big files, even after a failure: a kept temporary directory stays small.
            source.unlink(missing_ok=True)
            shutil.rmtree(workdir / "receiver" / "downloads", ignore_errors=True)
    return result
