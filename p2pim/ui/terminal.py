"""The terminal going away ends the UI as Ctrl+Q does: goodbye to every peer, then exit.

A terminal window closed or an SSH link dropped closes the pty's master side: from then
on every read of the terminal fails or sees end-of-file, every write fails with EIO, and
SIGHUP may or may not reach us (a shell forwards it; `nohup`, `setsid` or a multiplexer
do not).  Textual's writer thread dies at the first failed write, and once its bounded
queue is full the next frame blocks the event loop for good: no goodbye, no exit, and
the profile stays locked.

So here: a thread watches the terminal for the hang-up itself; output that fails is
dropped instead of killing the writer (and the process's stdout and stderr are pointed
at /dev/null, so whatever is still printed on the way out succeeds); the quit runs the
app's normal path, and a deadline ends the process anyway if that path cannot finish,
so a profile lock never outlives the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from textual.app import App
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver

# Seconds from a signal or a hang-up to the end of the process, finished or not.  The
# goodbye takes milliseconds on a LAN; the node's own graceful stop may take up to
# bridge.STOP_GRACE, which a dead terminal must not wait for.
QUIT_DEADLINE = 2.5
FORCED_EXIT_CODE = 1
HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL


class QuitGuard:
    """Quits `app` on the event loop's thread when asked from anywhere (a signal handler,
    the output thread, the hang-up watcher), and guarantees the process ends soon after."""

    def __init__(self, app: App[Any], loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._app = app
        self._loop = loop
        self._lock = threading.Lock()
        self._deadline: threading.Timer | None = None
        self.terminal_lost = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def request_quit(self) -> bool:
        """Thread-safe.  False when no event loop runs the app (yet or any more)."""
        with self._lock:
            if self._deadline is None:
                self._deadline = threading.Timer(QUIT_DEADLINE, _forced_exit)
                self._deadline.daemon = True  # never what keeps the process alive
                self._deadline.start()
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(self._app.call_later, self._app.action_quit)
        except RuntimeError:  # the loop closed in between
            return False
        return True

    def lose_terminal(self) -> None:
        """Thread-safe, idempotent: the terminal is gone."""
        with self._lock:
            if self.terminal_lost:
                return
            self.terminal_lost = True
        _silence_output()
        self.request_quit()


def _forced_exit() -> None:
    # Runs in the deadline's thread: the event loop is stuck or the quit is too slow.
    # The lock on the profile is an flock, released by the kernel with the process; the
    # database is crash-safe (WAL); a control socket left behind is replaced at next start.
    os._exit(FORCED_EXIT_CODE)


def _silence_output() -> None:
    """Point stdout and stderr at /dev/null: later writes succeed and go nowhere."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
    finally:
        os.close(null)


class GuardedOutput:
    """The terminal file as Textual's writer thread sees it: a write that fails (EIO once
    the terminal is gone) is dropped and reported, never raised into the thread."""

    def __init__(self, file: IO[str], on_lost: Callable[[], None]) -> None:
        self._file = file
        self._on_lost = on_lost

    def write(self, text: str) -> int:
        try:
            return self._file.write(text)
        except OSError:
            self._on_lost()
            return len(text)

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError:
            self._on_lost()

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return True


def watch_hangup(fd: int, on_hangup: Callable[[], None]) -> threading.Thread:
    """A daemon thread that calls `on_hangup` once `fd` (the terminal) hangs up.  It polls
    for nothing but hang-up and error, so it never takes input from Textual's reader."""

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, 0)  # POLLHUP, POLLERR and POLLNVAL are always reported
        while True:
            try:
                events = poller.poll()
            except OSError:
                break
            if any(mask & HANGUP for _, mask in events):
                break
        on_hangup()

    thread = threading.Thread(target=watch, name="p2pim-hangup", daemon=True)
    thread.start()
    return thread


def driver_class(guard: QuitGuard) -> type[Driver]:
    """Textual's Linux driver, with output that cannot block the app on a dead terminal
    and an input thread that takes a failed read as the terminal going away."""

    class HangupSafeDriver(LinuxDriver):
        def __init__(self, app: App[Any], **options: Any) -> None:
            super().__init__(app, **options)
            guard.attach(asyncio.get_running_loop())  # Textual makes its driver in its loop
            self._file = GuardedOutput(sys.__stderr__ or sys.stderr, guard.lose_terminal)  # type: ignore[assignment]

        def run_input_thread(self) -> None:
            try:
                super().run_input_thread()
            except OSError:  # EIO: the terminal is gone (Textual would panic)
                guard.lose_terminal()

    return HangupSafeDriver
