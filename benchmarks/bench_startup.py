"""Start-up time: `p2pim --help`, and a daemon until it answers JSON-RPC.

Each command runs `--runs` times one after the other; the median (and the fastest) is
reported, against the interpreter's own start-up (`python -c pass`) measured in the same
run as the baseline:

- `python -m p2pim --help`, and the installed `p2pim --help` script (the one next to this
  Python, not a version manager's shim, which adds its own start-up);
- `p2pim daemon --stdio --no-discovery` on 127.0.0.1: from spawning it to its answer to a
  `peers` request (the daemon serves stdin only once the node listens, has opened its
  store and its control socket).  The profile exists already (made by one unmeasured
  start, reported on its own as "first start"), as on any start but the first;
- the same with mDNS on, in a `LoopbackNamespace` (p2pim.testing.vlan; needs root, else
  skipped): the node answers only once its mDNS record is registered, which includes
  zeroconf's probing.  Its baseline is `python -c pass` run through `ip netns exec`.

    python -m benchmarks.bench_startup [--runs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

if __package__ in (None, ""):  # run as a script: import p2pim and benchmarks from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_rooms import start_timed
from p2pim.testing.daemon_process import daemon_argv
from p2pim.testing.vlan import LoopbackNamespace, namespaces_available

ANSWER = 60.0  # seconds for a daemon to answer


@dataclass
class Timing:
    name: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def fastest(self) -> float:
        return min(self.samples)


@dataclass
class Result:
    python: Timing  # python -c pass
    module_help: Timing  # python -m p2pim --help
    script_help: Timing | None  # p2pim --help (the installed script)
    script: str | None
    daemon_first_s: float  # the first start: profile and store created
    daemon: Timing  # daemon --no-discovery until it answers `peers`
    python_in_ns: Timing | None = None  # ip netns exec NS python -c pass
    daemon_mdns: Timing | None = None  # daemon with mDNS in a LoopbackNamespace
    skipped: str = ""  # why the namespace part did not run


def time_command(argv: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run(list(argv), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def interleaved(runs: int, commands: Mapping[str, Sequence[str]]) -> dict[str, Timing]:
    """Each command once per round, `runs` rounds: on a busy machine a burst of load then
    hits every command alike rather than one command's whole series."""
    timings = {name: Timing(name, []) for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            timings[name].samples.append(time_command(argv))
    return timings


def installed_script() -> str | None:
    """The `p2pim` console script beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "p2pim"
    return str(beside) if beside.exists() else shutil.which("p2pim")


async def daemon_answers(argv: Sequence[str], log: Path) -> float:
    """Seconds from spawning the daemon to its answer to `peers`; then stops it."""
    async with trio.open_nursery() as nursery:
        start = time.perf_counter()
        daemon = await start_timed(nursery, argv, log)
        try:
            with trio.fail_after(ANSWER):
                await daemon.call("peers")
            return time.perf_counter() - start
        finally:
            with trio.CancelScope(shield=True):
                await daemon.stop()
            nursery.cancel_scope.cancel()


async def time_daemon(runs: int, argv: Sequence[str], log: Path, name: str) -> Timing:
    return Timing(name, [await daemon_answers(argv, log) for _ in range(runs)])


async def measure(runs: int = 10, namespace: bool = True) -> Result:
    python = [sys.executable, "-c", "pass"]
    script = installed_script()
    commands = {
        "python -c pass": python,
        "python -m p2pim --help": [sys.executable, "-m", "p2pim", "--help"],
    }
    if script is not None:
        commands["p2pim --help"] = [script, "--help"]
    timed = interleaved(runs, commands)
    baseline, module_help = timed["python -c pass"], timed["python -m p2pim --help"]
    script_help = timed.get("p2pim --help")
    with tempfile.TemporaryDirectory(prefix="bench_startup-") as tmp:
        workdir = Path(tmp)
        argv = daemon_argv(workdir / "plain", "plain", "127.0.0.1", "--no-discovery")
        first = await daemon_answers(argv, workdir / "plain.log")
        daemon = await time_daemon(runs, argv, workdir / "plain.log", "daemon, no mDNS")
        result = Result(baseline, module_help, script_help, script, first, daemon)
        ok, why = namespaces_available()
        if not namespace:
            result.skipped = "not asked for"
        elif not ok:
            result.skipped = why
        else:
            with LoopbackNamespace(prefix="p2pim-bstart") as ns:
                name = "ip netns exec: python -c pass"
                result.python_in_ns = interleaved(runs, {name: ns.command(python)})[name]
                argv = ns.command(daemon_argv(workdir / "mdns", "mdns", ns.address))
                await daemon_answers(argv, workdir / "mdns.log")  # makes the profile
                result.daemon_mdns = await time_daemon(
                    runs, argv, workdir / "mdns.log", "daemon, mDNS in a namespace"
                )
    return result


def report(result: Result) -> None:
    print(f"{'start-up (seconds)':<40}{'median':>9}{'fastest':>9}{'runs':>6}")
    for timing in (
        result.python,
        result.module_help,
        result.script_help,
        result.daemon,
        result.python_in_ns,
        result.daemon_mdns,
    ):
        if timing is not None:
            print(
                f"  {timing.name:<38}{timing.median:>9.3f}{timing.fastest:>9.3f}"
                f"{len(timing.samples):>6}"
            )
    print(f"  {'daemon, first start (new profile)':<38}{result.daemon_first_s:>9.3f}")
    if result.script:
        print(f"script: {result.script}")
    if result.skipped:
        print(f"mDNS daemon skipped: {result.skipped}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each command (10)")
    parser.add_argument("--no-namespace", action="store_true", help="skip the mDNS daemon")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    result = trio.run(measure, args.runs, not args.no_namespace)
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
