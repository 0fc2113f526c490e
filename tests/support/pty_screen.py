"""A real terminal for a real `p2pim`: a pseudo-terminal whose output a VT emulator
(pyte) turns into the screen a person would see.

Tests that walk a journey read only that screen (`wait_for` a text to appear on it) and
type only keys (`type`, `press`), exactly as a person at the terminal would.  A thread
drains the pty all along, so the program never blocks on a full buffer, and wakes the
waiters after every chunk: waiting is on a condition, never a sleep.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Sequence

import pyte

KEYS = {
    "enter": "\r",
    "tab": "\t",
    "shift+tab": "\x1b[Z",
    "escape": "\x1b",
    "backspace": "\x7f",
    "up": "\x1b[A",
    "down": "\x1b[B",
    "right": "\x1b[C",
    "left": "\x1b[D",
    "end": "\x1b[F",
    "home": "\x1b[H",
    "space": " ",
    "f1": "\x1bOP",
    "f2": "\x1bOQ",
    "f3": "\x1bOR",
    "f4": "\x1bOS",
    **{f"ctrl+{c}": chr(ord(c) - ord("a") + 1) for c in "abcdefghijklmnopqrstuvwxyz"},
}


class ScreenTimeout(AssertionError):
    """What was awaited never showed; the message carries the screen as it was."""


class PtyScreen:
    """One program on a pseudo-terminal of `columns` by `rows`, its screen emulated."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        columns: int = 100,
        rows: int = 30,
        cwd: str | None = None,
    ) -> None:
        self.columns, self.rows = columns, rows
        self._screen = pyte.Screen(columns, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._changed = threading.Condition()
        self._eof = False
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        try:
            self.process = subprocess.Popen(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        self._closed = False
        self._reader = threading.Thread(target=self._drain, name="pty-screen", daemon=True)
        self._reader.start()

    # ---- reading -------------------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            try:
                ready = select.select([self.master], [], [], 0.1)[0]
            except (OSError, ValueError):
                break
            if not ready:
                if self._closed:
                    break
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the program and all its children closed the slave
                break
            if not data:
                break
            with self._changed:
                self._stream.feed(data)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def text(self) -> str:
        """The whole screen, one line per row, trailing blanks kept."""
        with self._changed:
            return "\n".join(self._screen.display)

    def wait_for(self, predicate: str | Callable[[str], bool], timeout: float = 15.0) -> str:
        """Until `predicate` (a text on screen, or a test of the screen) holds; the screen."""
        test = (lambda s: predicate in s) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                screen = "\n".join(self._screen.display)
                if test(screen):
                    return screen
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    what = predicate if isinstance(predicate, str) else "the condition"
                    state = "exited" if self._eof else f"not within {timeout} s"
                    raise ScreenTimeout(f"{what!r}: {state}; the screen:\n{screen}")
                self._changed.wait(min(left, 0.5))

    # ---- typing --------------------------------------------------------------------------

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def press(self, *keys: str) -> None:
        for key in keys:
            os.write(self.master, KEYS[key].encode())

    def click(self, text: str, *, occurrence: int = 0) -> None:
        """A left click (SGR mouse report) on the first cell of `text` where it shows."""
        rows = self.text().split("\n")
        found = [(y, row.index(text)) for y, row in enumerate(rows) if text in row]
        if len(found) <= occurrence:
            raise ScreenTimeout(f"{text!r} is not on the screen:\n" + "\n".join(rows))
        y, x = found[occurrence]
        for final in ("M", "m"):  # press, release; 1-based coordinates
            os.write(self.master, f"\x1b[<0;{x + 2};{y + 1}{final}".encode())

    # ---- ending --------------------------------------------------------------------------

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def hang_up(self) -> None:
        """What closing the terminal window does: the master side goes, then SIGHUP."""
        self._close_master()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def _close_master(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reader.join(5)
        os.close(self.master)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._close_master()
