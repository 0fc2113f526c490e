"""File transfer on loopback: p2pim against nc, socat and scp, all sending the same file in one run.

The source file (default 1 GiB of random bytes) is written once up front, so every tool reads
it from the page cache.  Each tool then copies it over TCP on 127.0.0.1 into a real file in
the same temporary directory, and every copy is checked byte for byte (size and SHA-256): a
wrong copy is reported as an error, never as a number.

- p2pim: two `p2pim daemon --stdio --no-discovery` processes (A sends, B receives) driven
  over JSON-RPC.  Timed from B's `accept_offer` call to B's `transfer_finished` event with
  state "completed"; A's up-front hashing inside `send_files` is reported on its own as
  "offer (hashing)".  Also reported: both daemons' RSS before the transfer and their peak RSS
  (VmHWM) after it, and chat latency (A `send` -> B `message_received`, one message every
  20 ms) first with no transfer running, then while the transfer runs.
- nc (netcat-openbsd): `nc -d -l 127.0.0.1 PORT > out` / `nc -N 127.0.0.1 PORT < file`.
- socat: `socat -u TCP-LISTEN:PORT,bind=127.0.0.1 CREATE:out` / `socat -u OPEN:file TCP:...`.
- scp: against a throwaway `sshd` on 127.0.0.1 (temporary host and client keys and config);
  the time includes the SSH handshake, as a user would see it.

The baselines are timed from starting the sender until both ends have exited.  Tools that are
not installed are reported as such and skipped.  MB/s uses 1 MB = 1e6 bytes; "p2pim x" is
p2pim's throughput divided by the tool's (below 1: p2pim is slower).  Each tool runs once,
so run it on a quiet machine; the temporary directory follows TMPDIR (e.g. TMPDIR=/dev/shm
takes the disk out of the picture).

    python -m benchmarks.bench_transfer [--size-mib N] [--json PATH]
    python benchmarks/bench_transfer.py [--size-mib N] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run as a script: import p2pim from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2pim.testing.daemon_process import (
    DaemonProcess,
    Event,
    RpcFailed,
    connected_to,
    daemon_argv,
    start_daemon,
)

HOST = "127.0.0.1"
METHOD_NOT_FOUND = -32601
STARTUP = 30.0  # seconds for a daemon, sshd or listener to come up
SETTLE = 30.0  # seconds for the sender's side to finish once the receiver has, or for chat
CHAT_INTERVAL = 0.020
CHAT_IDLE_MESSAGES = 100
CHUNK = 4 << 20
TIMEOUT = 900.0  # seconds per tool; --timeout


class BenchError(Exception):
    """A tool ran but did not produce a correct copy (or could not be started)."""


@dataclass
class ToolResult:
    tool: str
    status: str  # "ok" | "not installed" | "error"
    seconds: float | None = None
    mb_per_s: float | None = None
    p2pim_ratio: float | None = None
    detail: str = ""


@dataclass
class Latency:
    label: str
    sent: int
    received: int
    send_errors: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass
class P2pimExtras:
    offer_seconds: float | None = None
    memory: dict[str, dict[str, int]] = field(default_factory=dict)  # daemon -> kB figures
    latency: list[Latency] = field(default_factory=list)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress_events: int = 0
    sender_state: str | None = None


# ---- helpers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Is something listening on 127.0.0.1:port?  Read from /proc, so a one-shot listener
    (nc -l) does not lose its only connection to the check."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)
        return any(
            parts[1] == wanted and parts[3] == "0A"  # 0A: TCP_LISTEN
            for parts in (line.split() for line in table)
        )


async def wait_listening(port: int, process: trio.Process, name: str) -> None:
    with trio.fail_after(STARTUP):
        while not listening(port):
            if process.poll() is not None:
                raise BenchError(f"{name} exited ({process.returncode}) before listening")
            await trio.sleep(0.005)


def write_source(path: Path, size: int) -> str:
    """Random (incompressible) bytes, fsynced; returns their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    with path.open("rb") as data:
        return hashlib.file_digest(data, "sha256").hexdigest()


async def verify_copy(copy: Path, size: int, digest: str) -> None:
    if not copy.is_file():
        raise BenchError(f"no received file at {copy}")
    if (got := copy.stat().st_size) != size:
        raise BenchError(f"wrong copy: {got} bytes, expected {size}")
    if await trio.to_thread.run_sync(sha256_of, copy) != digest:
        raise BenchError("wrong copy: SHA-256 differs from the source")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a live process, in kB."""
    figures: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
    return figures


def describe(exc: BaseException) -> str:
    """One line for an error, with the leaves of exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def quantile_ms(samples: list[float], q: int) -> float | None:
    if not samples:
        return None
    if len(samples) == 1:
        return samples[0] * 1000
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] * 1000


async def finish(processes: list[trio.Process]) -> None:
    """Kill whatever of `processes` is still running, reap them and close their pipes."""
    with trio.CancelScope(shield=True):
        for process in processes:
            if process.poll() is None:
                process.kill()
            await process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    await pipe.aclose()


async def run_checked(argv: list[str]) -> None:
    done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{argv[0]} failed: {done.stderr.decode(errors='replace').strip()}")


# ---- baselines ---------------------------------------------------------------------------


async def pipe_copy(
    receiver_argv: list[str],
    sender_argv: list[str],
    port: int,
    *,
    receiver_stdout: Path | None = None,
    sender_stdin: Path | None = None,
) -> float:
    """Start the receiver, wait for its listening socket, then time the sender from start
    until both have exited successfully."""
    processes: list[trio.Process] = []
    try:
        with contextlib.ExitStack() as files:
            out = files.enter_context(receiver_stdout.open("wb")) if receiver_stdout else None
            source = files.enter_context(sender_stdin.open("rb")) if sender_stdin else None
            receiver = await trio.lowlevel.open_process(
                receiver_argv,
                stdin=subprocess.DEVNULL,
                stdout=out or subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            processes.append(receiver)
            await wait_listening(port, receiver, receiver_argv[0])
            start = time.perf_counter()
            sender = await trio.lowlevel.open_process(
                sender_argv,
                stdin=source or subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            processes.append(sender)
            for process in processes:
                await process.wait()
            seconds = time.perf_counter() - start
        for process, role in ((receiver, "receiver"), (sender, "sender")):
            if process.returncode != 0:
                assert process.stderr is not None
                error = ""
                with trio.move_on_after(1):
                    error = (await process.stderr.receive_some(4096)).decode(errors="replace")
                raise BenchError(f"{role} exited with {process.returncode}: {error.strip()}")
        return seconds
    finally:
        await finish(processes)


async def nc_copy(src: Path, dest: Path) -> float:
    port = free_port()
    return await pipe_copy(
        ["nc", "-d", "-l", HOST, str(port)],
        ["nc", "-N", HOST, str(port)],
        port,
        receiver_stdout=dest,
        sender_stdin=src,
    )


async def socat_copy(src: Path, dest: Path) -> float:
    port = free_port()
    return await pipe_copy(
        ["socat", "-u", f"TCP-LISTEN:{port},bind={HOST},reuseaddr", f"CREATE:{dest}"],
        ["socat", "-u", f"OPEN:{src},rdonly", f"TCP:{HOST}:{port}"],
        port,
    )


def sshd_path() -> str | None:
    return shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)), None
    )


@contextlib.asynccontextmanager
async def temporary_sshd(workdir: Path) -> AsyncIterator[list[str]]:
    """A throwaway sshd on 127.0.0.1 (key login only); yields the scp options to reach it."""
    sshd = sshd_path()
    assert sshd is not None
    workdir.mkdir()
    host_key, client_key = workdir / "host_key", workdir / "client_key"
    for key in (host_key, client_key):
        await run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    authorized = workdir / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized)
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        f"ListenAddress {HOST}\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PermitRootLogin yes\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        f"PidFile {workdir / 'sshd.pid'}\n"
        "Subsystem sftp internal-sftp\n"  # scp speaks SFTP since OpenSSH 9.0
        "LogLevel ERROR\n"
    )
    # As root, sshd insists on its privilege separation directory (systemd normally makes it).
    privsep = Path("/run/sshd")
    made_privsep = os.geteuid() == 0 and not privsep.exists()
    if made_privsep:
        privsep.mkdir(mode=0o755)
    log = workdir / "sshd.log"
    process: trio.Process | None = None
    try:
        await run_checked([sshd, "-t", "-f", str(config)])
        with log.open("wb") as log_file:
            process = await trio.lowlevel.open_process(
                [sshd, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        with trio.fail_after(STARTUP):
            while True:
                if process.poll() is not None:
                    raise BenchError(f"sshd exited: {log.read_text().strip()}")
                with contextlib.suppress(OSError):
                    await (await trio.open_tcp_stream(HOST, port)).aclose()
                    break
                await trio.sleep(0.01)
        yield [
            "-q",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-i",
            str(client_key),
            "-P",
            str(port),
        ]
    finally:
        try:
            if process is not None:
                with trio.CancelScope(shield=True):
                    process.terminate()
                    with trio.move_on_after(5):
                        await process.wait()
                    await finish([process])
        finally:
            if made_privsep:
                with contextlib.suppress(OSError):
                    privsep.rmdir()


async def scp_copy(src: Path, dest: Path) -> float:
    async with temporary_sshd(dest.parent / "sshd") as options:
        argv = ["scp", *options, str(src), f"{getpass.getuser()}@{HOST}:{dest}"]
        start = time.perf_counter()
        done = await trio.run_process(argv, capture_stderr=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip()
            raise BenchError(f"scp exited with {done.returncode}: {error}")
        return seconds


def openbsd_nc() -> str | None:
    """Why nc cannot be used, or None if it is netcat-openbsd."""
    if shutil.which("nc") is None:
        return "not installed (nc)"
    usage = subprocess.run(["nc", "-h"], capture_output=True, text=True, check=False)
    return None if "OpenBSD" in usage.stdout + usage.stderr else "not installed (netcat-openbsd)"


def missing(*commands: str) -> str | None:
    absent = [c for c in commands if (sshd_path() if c == "sshd" else shutil.which(c)) is None]
    return f"not installed ({', '.join(absent)})" if absent else None


Copier = Callable[[Path, Path], Awaitable[float]]

BASELINES: list[tuple[str, Callable[[], str | None], Copier]] = [
    ("nc", openbsd_nc, nc_copy),
    ("socat", lambda: missing("socat"), socat_copy),
    ("scp", lambda: missing("scp", "ssh-keygen", "sshd"), scp_copy),
]


async def run_baseline(
    name: str, why_not: str | None, copy: Copier, src: Path, workdir: Path, digest: str
) -> ToolResult:
    if why_not is not None:
        return ToolResult(name, "not installed", detail=why_not)
    dest_dir = workdir / name
    dest_dir.mkdir()
    dest = dest_dir / "received.bin"
    size = src.stat().st_size
    try:
        with trio.fail_after(TIMEOUT):
            seconds = await copy(src, dest)
        await verify_copy(dest, size, digest)
    except Exception as exc:
        detail = str(exc) if isinstance(exc, BenchError) else describe(exc)
        return ToolResult(name, "error", detail=detail)
    finally:
        dest.unlink(missing_ok=True)  # frees the space (and its dirty pages) for the next tool
    return ToolResult(name, "ok", seconds, size / seconds / 1e6)


# ---- p2pim -------------------------------------------------------------------------------


class ChatProbe:
    """A sends a chat message to B every CHAT_INTERVAL; latency is from just before A's
    `send` call to B's `message_received` event reaching this process."""

    def __init__(self, a: DaemonProcess, b: DaemonProcess, a_fp: str, b_fp: str) -> None:
        self.a, self.b, self.a_fp, self.b_fp = a, b, a_fp, b_fp
        self.started: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.errors: dict[str, str] = {}  # text -> why A's `send` failed
        self._arrived = trio.Event()

    async def watch(self) -> None:
        """Tail B's events (each looked at once) for the probe texts; runs until cancelled."""

        def look(event: Event) -> bool:
            if event["type"] == "message_received" and event.get("sender") == self.a_fp:
                start = self.started.get(event.get("text", ""))
                if start is not None and event["text"] not in self.latencies:
                    self.latencies[event["text"]] = time.perf_counter() - start
                    self._arrived.set()
                    self._arrived = trio.Event()
            return False

        with contextlib.suppress(EOFError):
            await self.b.wait_event(look)

    async def _send(self, text: str) -> None:
        self.started[text] = time.perf_counter()
        try:
            await self.a.call("send", peer=self.b_fp, text=text)
        except (RpcFailed, EOFError) as exc:
            self.errors[text] = str(exc)

    async def run(self, label: str, *, count: int | None = None, until: trio.Event) -> Latency:
        """Send until `count` messages went out or `until` is set, then wait (up to SETTLE)
        for the rest to arrive."""
        texts: list[str] = []
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            while not until.is_set() and (count is None or len(texts) < count):
                text = f"bench chat {label} {len(texts)}"
                texts.append(text)
                nursery.start_soon(self._send, text)
                await trio.sleep_until(start + len(texts) * CHAT_INTERVAL)
        with trio.move_on_after(SETTLE):
            while not all(t in self.latencies or t in self.errors for t in texts):
                await self._arrived.wait()
        samples = [self.latencies[t] for t in texts if t in self.latencies]
        return Latency(
            label,
            len(texts),
            len(samples),
            sum(t in self.errors for t in texts),
            quantile_ms(samples, 50),
            quantile_ms(samples, 99),
            max(samples) * 1000 if samples else None,
        )


def for_offer(offer: str, kind: str, outgoing: bool) -> Callable[[Event], bool]:
    return lambda e: e["type"] == kind and e.get("offer") == offer and e.get("outgoing") is outgoing


async def p2pim_transfer(
    src: Path, workdir: Path, digest: str, extras: P2pimExtras
) -> tuple[float, Path]:
    """Two daemons, A -> B; returns the transfer seconds and the received file."""
    daemons: list[DaemonProcess] = []
    result: tuple[float, Path] | None = None
    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        try:
            for name in ("a", "b"):
                argv = daemon_argv(workdir / f"profile-{name}", name, HOST, "--no-discovery")
                daemons.append(await start_daemon(nursery, argv))
            a, b = daemons
            with trio.fail_after(STARTUP):
                a_id, b_id = await a.call("identity"), await b.call("identity")
                a_fp, b_fp = str(a_id["fingerprint"]), str(b_id["fingerprint"])
                await b.call("connect", host=HOST, port=a_id["port"])
                await a.wait_event(connected_to(b_fp))
                await b.wait_event(connected_to(a_fp))

            probe = ChatProbe(a, b, a_fp, b_fp)
            nursery.start_soon(probe.watch)
            idle = await probe.run("idle", count=CHAT_IDLE_MESSAGES, until=trio.Event())
            extras.latency.append(idle)

            roles = {"a (sender)": a, "b (receiver)": b}
            before = {role: proc_status(d.process.pid) for role, d in roles.items()}
            start = time.perf_counter()
            try:
                with trio.fail_after(TIMEOUT):
                    offer = (await a.call("send_files", peers=[b_fp], paths=[str(src)]))["offer"]
            except RpcFailed as exc:
                if exc.code == METHOD_NOT_FOUND:
                    raise BenchError("the daemon has no transfer API yet (send_files)") from exc
                raise BenchError(f"send_files failed: {exc}") from exc
            extras.offer_seconds = time.perf_counter() - start

            with trio.fail_after(STARTUP):
                offered = await b.wait_event(
                    lambda e: e["type"] == "offer_received" and e.get("offer") == offer
                )
            if offered.get("total_size") != src.stat().st_size:
                raise BenchError(f"offer announces {offered.get('total_size')} bytes")
            inbox = workdir / "p2pim"
            inbox.mkdir()

            finished = trio.Event()
            busy: list[Latency] = []

            async def chat_during_transfer() -> None:
                busy.append(await probe.run("transfer", until=finished))

            async with trio.open_nursery() as chat:
                chat.start_soon(chat_during_transfer)
                try:
                    with trio.fail_after(TIMEOUT):
                        start = time.perf_counter()
                        await b.call("accept_offer", peer=a_fp, offer=offer, directory=str(inbox))
                        done = await b.wait_event(for_offer(offer, "transfer_finished", False))
                        seconds = time.perf_counter() - start
                finally:
                    finished.set()
            extras.latency += busy

            with trio.move_on_after(SETTLE):
                sent = await a.wait_event(for_offer(offer, "transfer_finished", True))
                extras.sender_state = sent["state"]
            for role, daemon in roles.items():
                peak = proc_status(daemon.process.pid)  # VmHWM: the peak since the start
                extras.memory[role] = {
                    "rss_before_kb": before[role]["VmRSS"],
                    "hwm_before_kb": before[role]["VmHWM"],
                    "peak_kb": peak["VmHWM"],
                    "rss_after_kb": peak["VmRSS"],
                }
                extras.stats[role] = await daemon.call("stats")
            extras.progress_events = sum(
                e["type"] == "transfer_progress" and e.get("offer") == offer
                for d in daemons
                for e in d.events
            )
            if done["state"] != "completed":
                raise BenchError(f"transfer {done['state']}: {done.get('reason', '')}")
            saved = [f.get("saved_as") for f in done.get("files", [])]
            if len(saved) != 1 or not saved[0]:
                raise BenchError(f"transfer finished without one saved file: {done.get('files')}")
            result = seconds, Path(saved[0])
        except Exception as exc:  # raised after the daemons are gone, not in a group
            failure = exc
            dead = [
                f"daemon {name} exited with {d.process.returncode} (traceback on stderr)"
                for name, d in zip("ab", daemons, strict=False)
                if d.process.poll() is not None
            ]
            if dead:
                failure = BenchError(f"{describe(exc)}: {'; '.join(dead)}")
        finally:
            with trio.CancelScope(shield=True):
                for daemon in daemons:
                    await daemon.stop()
            nursery.cancel_scope.cancel()  # the chat watcher
    if failure is not None:
        raise failure
    assert result is not None
    return result


async def run_p2pim(src: Path, workdir: Path, digest: str, extras: P2pimExtras) -> ToolResult:
    size = src.stat().st_size
    received: Path | None = None
    try:
        seconds, received = await p2pim_transfer(src, workdir, digest, extras)
        await verify_copy(received, size, digest)
    except Exception as exc:
        detail = str(exc) if isinstance(exc, BenchError) else describe(exc)
        return ToolResult("p2pim", "error", detail=detail)
    finally:
        if received is not None:
            received.unlink(missing_ok=True)
    return ToolResult("p2pim", "ok", seconds, size / seconds / 1e6)


# ---- report ------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(size: int, results: list[ToolResult], extras: P2pimExtras) -> None:
    ours = next(r for r in results if r.tool == "p2pim")
    for result in results:
        if ours.mb_per_s is not None and result.mb_per_s is not None:
            result.p2pim_ratio = ours.mb_per_s / result.mb_per_s
    print(f"file: {size / (1 << 20):.0f} MiB = {size / 1e6:.1f} MB, every copy SHA-256 checked")
    print(f"{'tool':<18}{'seconds':>10}{'MB/s':>10}{'p2pim x':>10}")
    for r in results:
        line = f"{r.tool:<18}{fmt(r.seconds, '.3f'):>10}{fmt(r.mb_per_s, '.1f'):>10}"
        line += f"{fmt(r.p2pim_ratio, '.2f'):>10}"
        if r.status == "error":
            line += f"  error: {r.detail}"
        elif r.status != "ok":
            line += f"  {r.detail or r.status}"
        print(line)
    print(f"{'offer (hashing)':<18}{fmt(extras.offer_seconds, '.3f'):>10}")
    if extras.sender_state is not None:
        print(f"sender's transfer_finished state: {extras.sender_state}")
    if extras.progress_events:
        print(f"transfer_progress events (both daemons): {extras.progress_events}")
    if extras.memory:
        print(f"\n{'p2pim daemon RSS (MiB)':<24}{'before':>10}{'peak':>10}{'growth':>10}")
        for name, kb in extras.memory.items():
            before, peak = kb["rss_before_kb"] / 1024, kb["peak_kb"] / 1024
            print(f"  {name:<22}{before:>10.1f}{peak:>10.1f}{peak - before:>10.1f}")
    if extras.latency:
        head = f"{'chat latency (ms)':<24}{'sent':>6}{'recv':>6}{'p50':>9}{'p99':>9}{'max':>9}"
        print(f"\n{head}")
        for lat in extras.latency:
            print(
                f"  {lat.label:<22}{lat.sent:>6}{lat.received:>6}{fmt(lat.p50_ms, '.2f'):>9}"
                f"{fmt(lat.p99_ms, '.2f'):>9}{fmt(lat.max_ms, '.2f'):>9}"
                + (f"  ({lat.send_errors} sends failed)" if lat.send_errors else "")
            )
    for name, stats in extras.stats.items():
        picked = {k: v for k, v in stats.items() if k.startswith("transfer_bytes")}
        print(f"stats {name}: {picked}")


async def measure(size_mib: int) -> tuple[str, list[ToolResult], P2pimExtras]:
    """Every tool on one `size_mib` MiB file: the source's SHA-256, the results (p2pim's
    first) and p2pim's extras.  For callers such as benchmarks/run_all.py."""
    size = size_mib << 20
    extras = P2pimExtras()
    results: list[ToolResult] = []
    with tempfile.TemporaryDirectory(prefix="bench_transfer-") as tmp:
        workdir = Path(tmp)
        src = workdir / "source.bin"
        digest = await trio.to_thread.run_sync(write_source, src, size)
        for name, why_not, copy in BASELINES:
            print(f"... {name}", file=sys.stderr)
            await trio.to_thread.run_sync(os.sync)  # no tool pays for another's writeback
            results.append(await run_baseline(name, why_not(), copy, src, workdir, digest))
        print("... p2pim", file=sys.stderr)
        await trio.to_thread.run_sync(os.sync)
        results.insert(0, await run_p2pim(src, workdir, digest, extras))
    return digest, results, extras


async def main(size_mib: int, json_path: Path | None) -> int:
    size = size_mib << 20
    digest, results, extras = await measure(size_mib)
    report(size, results, extras)
    if json_path is not None:
        document = {
            "size_bytes": size,
            "sha256": digest,
            "tools": [asdict(r) for r in results],
            "p2pim": asdict(extras),
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per tool")
    args = parser.parse_args()
    TIMEOUT = args.timeout  # a module global: this file is __main__
    sys.exit(trio.run(main, args.size_mib, args.json))
