"""Memory: the resident size (VmRSS from /proc) of an idle daemon, and its growth in a transfer.

- Idle: one `p2pim daemon --stdio` with mDNS on, in a `LoopbackNamespace`
  (p2pim.testing.vlan; without root it runs on 127.0.0.1 with `--no-discovery` instead, and
  says so), alone on its LAN.  VmRSS is read once it answers `peers`, then again after
  `--settle` seconds (the idle figure: zeroconf's announcements and the node's timers have
  run by then), together with VmHWM, its peak so far.
- Baselines from the same run: a bare interpreter waiting on stdin, and one that has also
  imported what the daemon imports (`p2pim.cli`, `p2pim.daemon` and, through them, trio,
  zeroconf, cryptography, msgpack...), so the share of the interpreter, of the imported code
  and of the running node can be told apart.
- Transfer (`--transfer-mib`, 0 to skip): two daemons on 127.0.0.1 without mDNS, one sends
  the other a file of random bytes (benchmarks/bench_transfer.py's p2pim path, SHA-256
  checked); reported are each daemon's VmRSS before, its peak (VmHWM) and the growth.
  run_all.py takes these figures from its bench_transfer run instead.

    python -m benchmarks.bench_memory [--settle S] [--transfer-mib N] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import trio

if __package__ in (None, ""):  # run as a script: import p2pim and benchmarks from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_transfer
from benchmarks.bench_rooms import start_timed
from p2pim.testing.daemon_process import daemon_argv
from p2pim.testing.vlan import LoopbackNamespace, namespaces_available

ANSWER = 60.0  # seconds for a daemon to answer
IMPORTS = "import p2pim.cli, p2pim.daemon"


@dataclass
class Result:
    settle_s: float
    where: str  # how the idle daemon ran
    bare_python_mib: float = 0.0
    imports_only_mib: float = 0.0
    daemon_answering_mib: float = 0.0  # just after it answers `peers`
    daemon_idle_mib: float = 0.0  # after settle_s more
    daemon_idle_hwm_mib: float = 0.0
    transfer_mib: int = 0
    transfer: dict[str, dict[str, int]] = field(default_factory=dict)  # daemon -> kB figures
    transfer_error: str = ""


def mib(kb: int) -> float:
    return kb / 1024


async def waiting_python_mib(code: str, settle: float) -> float:
    """VmRSS of `python -c code` left waiting on its stdin for `settle` seconds."""
    argv = [sys.executable, "-c", f"{code}; import sys; sys.stdin.read()"]
    process = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE)
    try:
        await trio.sleep(settle)
        return mib(bench_transfer.proc_status(process.pid)["VmRSS"])
    finally:
        with trio.CancelScope(shield=True):
            await bench_transfer.finish([process])


async def idle_daemon(argv: Sequence[str], log: Path, settle: float, result: Result) -> None:
    async with trio.open_nursery() as nursery:
        daemon = await start_timed(nursery, argv, log)
        try:
            with trio.fail_after(ANSWER):
                await daemon.call("peers")
            result.daemon_answering_mib = mib(
                bench_transfer.proc_status(daemon.process.pid)["VmRSS"]
            )
            await trio.sleep(settle)
            figures = bench_transfer.proc_status(daemon.process.pid)
            result.daemon_idle_mib = mib(figures["VmRSS"])
            result.daemon_idle_hwm_mib = mib(figures["VmHWM"])
        finally:
            with trio.CancelScope(shield=True):
                await daemon.stop()
            nursery.cancel_scope.cancel()


async def measure(settle: float = 5.0, transfer_mib: int = 256) -> Result:
    ok, why = namespaces_available()
    where = "mDNS on, alone in a LoopbackNamespace" if ok else f"--no-discovery ({why})"
    result = Result(settle, where, transfer_mib=transfer_mib)
    result.bare_python_mib = await waiting_python_mib("pass", min(settle, 1.0))
    result.imports_only_mib = await waiting_python_mib(IMPORTS, min(settle, 1.0))
    with tempfile.TemporaryDirectory(prefix="bench_memory-") as tmp:
        workdir = Path(tmp)
        if ok:
            with LoopbackNamespace(prefix="p2pim-bmem") as ns:
                argv = ns.command(daemon_argv(workdir / "idle", "idle", ns.address))
                await idle_daemon(argv, workdir / "idle.log", settle, result)
        else:
            argv = daemon_argv(workdir / "idle", "idle", "127.0.0.1", "--no-discovery")
            await idle_daemon(argv, workdir / "idle.log", settle, result)
        if transfer_mib:
            src = workdir / "source.bin"
            digest = await trio.to_thread.run_sync(
                bench_transfer.write_source, src, transfer_mib << 20
            )
            extras = bench_transfer.P2pimExtras()
            run = await bench_transfer.run_p2pim(src, workdir, digest, extras)
            result.transfer = extras.memory
            if run.status != "ok":
                result.transfer_error = run.detail
            with contextlib.suppress(OSError):
                src.unlink()
    return result


def report(result: Result) -> None:
    print(f"resident memory (MiB); idle daemon: {result.where}")
    rows = [
        ("bare python (baseline)", result.bare_python_mib),
        ("python + the daemon's imports", result.imports_only_mib),
        ("daemon, once answering", result.daemon_answering_mib),
        (f"daemon, idle {result.settle_s:g} s later", result.daemon_idle_mib),
        ("  its peak so far (VmHWM)", result.daemon_idle_hwm_mib),
    ]
    for label, value in rows:
        print(f"  {label:<36}{value:>8.1f}")
    if result.transfer:
        print(f"\n{result.transfer_mib} MiB transfer{'':<12}{'before':>8}{'peak':>8}{'growth':>8}")
        for name, kb in result.transfer.items():
            before, peak = mib(kb["rss_before_kb"]), mib(kb["peak_kb"])
            print(f"  {name:<32}{before:>8.1f}{peak:>8.1f}{peak - before:>8.1f}")
    if result.transfer_error:
        print(f"transfer error: {result.transfer_error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds (5)")
    parser.add_argument(
        "--transfer-mib", type=int, default=256, help="file size for the transfer (256; 0: skip)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    result = trio.run(measure, args.settle, args.transfer_mib)
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 1 if result.transfer_error else 0


if __name__ == "__main__":
    sys.exit(main())
