"""The real `p2pim` command (the terminal UI) in a pseudo-terminal, against a daemon
process on loopback: it connects, serves the profile's control socket while it runs, and
Ctrl+Q ends it cleanly (exit 0, a goodbye the peer sees at once, no process left behind,
no control socket left).  A second UI on the same profile refuses to start.

Everything listens on 127.0.0.1 with mDNS off.  The pty's output is drained by a thread
all along, so the UI never blocks on a full pty buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from p2pim import control
from p2pim.testing.daemon_process import (
    DaemonProcess,
    RpcFailed,
    connected_to,
    daemon_argv,
    disconnected_from,
    since,
    start_daemon,
)

HOST = "127.0.0.1"
ROWS, COLUMNS = 30, 100
# Long enough that only a goodbye, never the presence timeout, can end a session within
# the waits below.
PRESENCE_TIMEOUT = "30"
STARTUP = 30.0  # seconds for a process to start and connect (a loaded CI machine)
QUIT_WITHIN = 10.0  # seconds for the UI to say goodbye and exit after Ctrl+Q
CTRL_Q = b"\x11"
ENTER_ALT_SCREEN, LEAVE_ALT_SCREEN = b"\x1b[?1049h", b"\x1b[?1049l"
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|.)")


def p2pim(profile: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "p2pim", "--profile", str(profile), *args]


def ui_argv(profile: Path, peer_port: int) -> list[str]:
    return p2pim(
        profile,
        "--no-discovery",
        "--listen",
        f"{HOST}:0",
        "--peer",
        f"{HOST}:{peer_port}",
        "--nick",
        "tui",
        "--presence-timeout",
        PRESENCE_TIMEOUT,
    )


@dataclass
class PtyProcess:
    """A process whose stdin, stdout and stderr are a pty's slave side; a thread reads
    the master side until the slave is closed."""

    process: subprocess.Popen[bytes]
    master: int
    output: bytearray = field(default_factory=bytearray)
    reader: threading.Thread | None = None
    stop_reading: threading.Event = field(default_factory=threading.Event)
    closed: bool = False

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str]) -> PtyProcess:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        try:
            # A session of its own: every process it starts stays in it (unless it calls
            # setsid), which is how the test finds what it left behind.
            process = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the child's copy is the only one: EOF (EIO) when it exits
        self = cls(process, master)
        self.reader = threading.Thread(target=self._drain, name="pty-reader", daemon=True)
        self.reader.start()
        return self

    def _drain(self) -> None:
        while not self.stop_reading.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the slave side is closed
                return
            if not data:
                return
            self.output += data

    def hang_up(self) -> None:
        """What closing a terminal window does: the master side goes, then SIGHUP."""
        self._close_master()
        self.process.send_signal(signal.SIGHUP)

    def close_terminal(self) -> None:
        """The master side goes, nothing else: every read and write of the UI's terminal
        fails from now on, and no signal says so (`nohup`, `setsid`, a lost SSH link)."""
        self._close_master()

    def _close_master(self) -> None:
        if self.closed:
            return
        self.stop_reading.set()
        if self.reader is not None:
            self.reader.join(5)  # before the fd is closed, and its number maybe reused
        os.close(self.master)
        self.closed = True

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def text(self, last: int = 3000) -> str:
        """The end of what was printed, escape sequences removed."""
        plain = ANSI.sub(b"", bytes(self.output)).decode(errors="replace")
        return plain[-last:]

    async def wait(self, timeout: float) -> int | None:  # noqa: ASYNC109 (None: tests print the screen)
        """The exit code, or None if it is still running after `timeout` seconds."""
        try:
            return await trio.to_thread.run_sync(self.process.wait, timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.reader is not None and not self.closed:
            self.reader.join(5)  # it reads what is left, up to EIO
        self._close_master()


def ui_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS), PYTHONUNBUFFERED="1")
    for name in ("TEXTUAL", "TEXTUAL_DRIVER", "NO_COLOR"):  # a plain terminal, no devtools
        env.pop(name, None)
    return env


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, session id) of a live process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may contain spaces
    if fields[0] == "Z":  # a zombie has exited: only its entry is left
        return None
    return int(fields[1]), int(fields[3])


def processes() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def children_of(pid: int) -> set[int]:
    return {p for p in processes() if (stat := proc_stat(p)) and stat[0] == pid}


def in_session(sid: int) -> set[int]:
    return {p for p in processes() if (stat := proc_stat(p)) and stat[1] == sid}


def refuses_connections(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return True
    return False


async def fingerprint_of(profile: Path) -> str:
    """Creates the profile's identity, as the UI would, and reads it."""
    done = await trio.run_process(p2pim(profile, "id", "--json"), capture_stdout=True)
    return str(json.loads(done.stdout)["fingerprint"])


async def status_json(profile: Path) -> dict[str, object]:
    done = await trio.run_process(
        p2pim(profile, "status", "--json"),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


@contextlib.asynccontextmanager
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[DaemonProcess, str, int]]:
    """A daemon on 127.0.0.1: (process, fingerprint, port)."""
    argv = daemon_argv(
        tmp_path / "daemon", "daemon", HOST, "--no-discovery", "--presence-timeout", "30"
    )
    async with trio.open_nursery() as nursery:
        peer = await start_daemon(nursery, argv)
        try:
            with trio.fail_after(STARTUP):
                me = await peer.call("identity")
            yield peer, str(me["fingerprint"]), int(me["port"])
        finally:
            with trio.CancelScope(shield=True):
                await peer.stop()
            nursery.cancel_scope.cancel()


async def test_ui_in_a_pty_connects_serves_control_and_quits_cleanly(tmp_path: Path) -> None:
    profile = tmp_path / "ui"
    ui_fp = await fingerprint_of(profile)
    async with daemon(tmp_path) as (peer, _, port):
        ui = PtyProcess.start(ui_argv(profile, port), ui_env())
        try:
            with trio.fail_after(STARTUP):
                connected = await peer.wait_event(connected_to(ui_fp))
            assert connected["nick"] == "tui", ui.text()

            # The UI serves the profile's control socket: the one-shot CLI reaches its node.
            me = await status_json(profile)
            assert (me["fingerprint"], me["nick"], me["status"]) == (ui_fp, "tui", "online")

            # A second UI on the same profile refuses to start and leaves the first alone.
            second = await trio.run_process(
                ui_argv(profile, port),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            assert second.returncode == 1
            message = second.stderr.decode(errors="replace")
            assert f"a p2pim node already runs on the profile {profile}" in message, message
            assert (await status_json(profile))["fingerprint"] == ui_fp

            children = children_of(ui.process.pid)
            ui.write(CTRL_Q)
            with trio.fail_after(QUIT_WITHIN):
                gone = await peer.wait_event(disconnected_from(ui_fp))
            assert gone["reason"] == "quit", gone  # a goodbye, not silence or an error
            code = await ui.wait(QUIT_WITHIN)
            assert code == 0, f"exit code {code}; screen:\n{ui.text()}"
        finally:
            ui.close()

    assert "People" in ui.text(last=len(ui.output))  # it did draw the UI
    assert ui.output.rfind(LEAVE_ALT_SCREEN) > ui.output.rfind(ENTER_ALT_SCREEN) >= 0
    left = {pid for pid in children | in_session(ui.process.pid) if proc_stat(pid)}
    for pid in left:  # do not leave them running after a failure
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind by the UI: {sorted(left)}"
    assert refuses_connections(control.socket_path(profile))
    assert not control.node_running(profile)


@pytest.mark.parametrize("how", ["SIGTERM", "hang-up"])
async def test_ui_says_goodbye_when_killed_or_its_terminal_closes(tmp_path: Path, how: str) -> None:
    """`kill` (SIGTERM) and a closed terminal window (the pty goes, then SIGHUP) end the UI
    as Ctrl+Q does: a goodbye, exit code 0, no control socket left."""
    profile = tmp_path / "ui"
    ui_fp = await fingerprint_of(profile)
    async with daemon(tmp_path) as (peer, _, port):
        ui = PtyProcess.start(ui_argv(profile, port), ui_env())
        try:
            with trio.fail_after(STARTUP):
                await peer.wait_event(connected_to(ui_fp))
            if how == "SIGTERM":
                ui.process.send_signal(signal.SIGTERM)
            else:
                ui.hang_up()
            with trio.fail_after(QUIT_WITHIN):
                gone = await peer.wait_event(disconnected_from(ui_fp))
            assert gone["reason"] == "quit", gone
            code = await ui.wait(QUIT_WITHIN)
            assert code == 0, f"exit code {code}; screen:\n{ui.text()}"
        finally:
            ui.close()
    if how == "SIGTERM":  # the terminal is back to normal (after a hang-up there is none)
        assert ui.output.rfind(LEAVE_ALT_SCREEN) > ui.output.rfind(ENTER_ALT_SCREEN) >= 0
    assert refuses_connections(control.socket_path(profile))
    assert not control.node_running(profile)


def test_node_calls_racing_the_quit_fail_cleanly(tmp_path: Path) -> None:
    """The UI keeps calling the node while it says goodbye (typing, read receipts): each
    such call fails with an error, none hangs, and the node's trio run ends cleanly (a
    call that found the nursery closed used to crash it with TrioInternalError)."""
    from p2pim.ui.app import P2pimApp
    from tests.support.nodes import loopback_node

    async def main() -> tuple[int, list[str]]:
        app = P2pimApp(loopback_node("racer", tmp_path / "racer"))
        async with app.run_test() as pilot:
            stopping = asyncio.ensure_future(app.bridge.shutdown())
            calls, failures = 0, []
            while not stopping.done():
                calls += 1
                try:
                    await asyncio.wait_for(app.bridge.call(app.node.note_activity), 5)
                except RuntimeError as exc:
                    failures.append(type(exc).__name__)
                    await asyncio.sleep(0)
            await stopping  # raised TrioInternalError
            await pilot.pause()
        return calls, failures

    calls, failures = asyncio.run(main())
    assert calls > len(failures) >= 1, (calls, failures)
    assert set(failures) == {"NodeStopped"}, failures


GONE_WITHIN = 3.0  # seconds from the terminal closing to the goodbye and the exit


@pytest.mark.parametrize("signal_after", [False, True], ids=["no-signal", "sighup-later"])
async def test_a_closed_terminal_ends_the_ui_with_a_goodbye_and_frees_the_profile(
    tmp_path: Path, signal_after: bool
) -> None:
    """Defect 12: the pty's master side closes under a running UI.  Every write to the
    terminal fails from then on (Textual's output thread used to die at the first, and the
    app then blocked forever on its full queue, deaf even to SIGHUP and SIGTERM).  The UI
    must say goodbye, exit within 3 s, and leave the profile to the next p2pim at once."""
    profile = tmp_path / "ui"
    ui_fp = await fingerprint_of(profile)
    async with daemon(tmp_path) as (peer, _, port):
        ui = PtyProcess.start(ui_argv(profile, port), ui_env())
        try:
            with trio.fail_after(STARTUP):
                await peer.wait_event(connected_to(ui_fp))
            ui.close_terminal()
            if signal_after:
                # SIGHUP as a shell forwards it, after the UI has tried to draw on the dead
                # terminal for a while: messages and status changes redraw it, more times
                # than the output queue holds.
                for i in range(100):
                    with contextlib.suppress(RpcFailed):
                        await peer.call("set_status", status=("away", "busy")[i % 2], text=str(i))
                        await peer.call("send", peer=ui_fp, text=f"into the void {i}")
                ui.process.send_signal(signal.SIGHUP)
            deadline = trio.current_time() + GONE_WITHIN
            with trio.fail_at(deadline):
                gone = await peer.wait_event(disconnected_from(ui_fp))
            assert gone["reason"] == "quit", gone  # a goodbye, not the presence timeout
            code = await ui.wait(max(0.0, deadline - trio.current_time()))
            assert code is not None, "still running 3 s after its terminal closed"
        finally:
            ui.close()
        assert not control.node_running(profile)

        # p2pim starts again on that profile at once, and works.
        back = since(peer, connected_to(ui_fp))
        again = PtyProcess.start(ui_argv(profile, port), ui_env())
        try:
            with trio.fail_after(STARTUP):
                await peer.wait_event(back)
            again.write(CTRL_Q)
            assert await again.wait(QUIT_WITHIN) == 0, again.text()
        finally:
            again.close()


# ---- the pieces of p2pim.ui.terminal, each on a real pty -----------------------------------


def test_output_to_a_closed_terminal_is_dropped_and_reported() -> None:
    from p2pim.ui.terminal import GuardedOutput

    master, slave = os.openpty()
    lost: list[bool] = []
    with os.fdopen(slave, "w", encoding="utf-8") as file:
        output = GuardedOutput(file, lambda: lost.append(True))
        output.write("drawn while the terminal is there\n")
        output.flush()
        assert not lost
        os.close(master)  # the window closes
        for _ in range(3):  # Textual's writer thread would have died at the first
            output.write("x" * 4096)
            output.flush()
        assert lost
        with contextlib.suppress(OSError):  # what is still buffered cannot go anywhere
            file.close()


def test_the_hangup_watcher_sees_the_terminal_go() -> None:
    from p2pim.ui.terminal import watch_hangup

    master, slave = os.openpty()
    gone = threading.Event()
    try:
        watcher = watch_hangup(slave, gone.set)
        assert not gone.wait(0.2)  # an open terminal is no hang-up (nor is silence)
        os.close(master)
        assert gone.wait(10)
        watcher.join(10)
    finally:
        os.close(slave)


DEADLOCKED = """
import asyncio, sys, time
from p2pim.ui import terminal

class App:  # its event loop never runs: the quit it is asked for can never happen
    def call_later(self, *args): pass
    async def action_quit(self): pass

guard = terminal.QuitGuard(App(), asyncio.new_event_loop())
guard.request_quit()
print("stuck", flush=True)
time.sleep(120)
"""


async def test_a_quit_that_cannot_finish_still_ends_the_process() -> None:
    """The hard deadline: whatever blocks the UI's loop, a process told to quit (a signal,
    the terminal gone) ends within `QUIT_DEADLINE`, so no profile lock outlives it."""
    from p2pim.ui.terminal import FORCED_EXIT_CODE

    with trio.fail_after(30):  # far below the 120 s the script would otherwise sleep
        done = await trio.run_process(
            [sys.executable, "-c", DEADLOCKED], capture_stdout=True, check=False
        )
    assert done.stdout == b"stuck\n"
    assert done.returncode == FORCED_EXIT_CODE
