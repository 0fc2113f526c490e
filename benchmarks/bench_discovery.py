"""Discovery and offline detection on a two-host virtual LAN, with real mDNS.

A `VirtualLan` of two hosts (network namespaces on a software switch, see
p2pim.testing.vlan), one `p2pim daemon --stdio` per host with the default settings
(presence timeout 5 s).  Each run uses fresh profiles, so the daemons know nothing of each
other beforehand:

1. Daemon A starts, answers `identity`, then is left `--settle` seconds to advertise.
2. Daemon B starts.  Discovery time: from just before B's process is spawned to the later of
   A's and B's `peer_connected` (each stamped as this process reads it off the daemon's
   stdout).  Python's start-up and B's own start are included, as a user would see them.
3. B dies, and the time to A's `peer_disconnected` is taken.  On "mDNS" runs B gets
   `kill -9`: the kernel closes its sockets, so A sees the connection end.  On "direct"
   runs B is frozen instead (SIGSTOP, then SIGKILL once measured): its kernel keeps the
   connection open and answering, so only the presence timeout can tell, the worst case.

The baseline, measured in the same run: the same two steps with B started with
`--no-discovery --peer A:PORT`, i.e. dialling A at once without mDNS.  The difference is
what discovery itself costs.

Needs root (network namespaces) and iproute2.

    sudo python -m benchmarks.bench_discovery [--runs N] [--settle S] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run as a script: import p2pim and benchmarks from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_rooms import TimedDaemon, start_timed
from benchmarks.bench_transfer import describe
from p2pim.client import Event
from p2pim.testing.daemon_process import daemon_argv, disconnected_from
from p2pim.testing.vlan import Host, VirtualLan, namespaces_available

PRESENCE_TIMEOUT = 5.0  # the daemon's default; not passed, so the default is what is measured
STARTUP = 30.0  # seconds for a daemon to answer `identity`
CONNECT = 30.0  # seconds for the two to connect
OFFLINE = 30.0  # seconds for A to notice B is gone


@dataclass
class Run:
    mode: str  # "mdns" | "direct"
    connect_s: float  # B spawned -> both peer_connected
    b_answering_s: float  # B spawned -> B answers `identity`
    fault: str  # "kill -9" | "SIGSTOP"
    offline_s: float  # fault -> A's peer_disconnected
    reason: str  # A's peer_disconnected reason


@dataclass
class Result:
    runs: list[Run] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # runs that failed, why

    def of(self, mode: str) -> list[Run]:
        return [r for r in self.runs if r.mode == mode]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mode in ("mdns", "direct"):
            runs = self.of(mode)
            if runs:
                out[mode] = {
                    "runs": len(runs),
                    "connect_median_s": statistics.median(r.connect_s for r in runs),
                    "connect_max_s": max(r.connect_s for r in runs),
                    "b_answering_median_s": statistics.median(r.b_answering_s for r in runs),
                    "fault": runs[0].fault,
                    "offline_median_s": statistics.median(r.offline_s for r in runs),
                    "offline_max_s": max(r.offline_s for r in runs),
                    "reasons": sorted({r.reason for r in runs}),
                }
        return out


def peer_connected(event: Event) -> bool:
    return bool(event["type"] == "peer_connected")


async def one_run(host_a: Host, host_b: Host, workdir: Path, mode: str, settle: float) -> Run:
    workdir.mkdir()
    async with trio.open_nursery() as nursery:
        daemons: list[TimedDaemon] = []
        try:
            argv = daemon_argv(workdir / "a", "a", host_a.address)
            a = await start_timed(nursery, host_a.command(argv), workdir / "a.log")
            daemons.append(a)
            with trio.fail_after(STARTUP):
                a_id = await a.call("identity")
            await trio.sleep(settle)  # A's mDNS service is probed and announced by now

            extra = ("--no-discovery", "--peer", f"{host_a.address}:{a_id['port']}")
            argv = daemon_argv(
                workdir / "b", "b", host_b.address, *(extra if mode == "direct" else ())
            )
            spawned = trio.current_time()
            b = await start_timed(nursery, host_b.command(argv), workdir / "b.log")
            daemons.append(b)
            with trio.fail_after(STARTUP):
                b_id = await b.call("identity")
            b_answering = trio.current_time() - spawned
            with trio.fail_after(CONNECT):
                on_a = await a.wait_event(peer_connected)
                on_b = await b.wait_event(peer_connected)
            if on_a["fingerprint"] != b_id["fingerprint"]:
                raise RuntimeError(f"A connected to {on_a['fingerprint']}, not to B")
            connect = max(on_a["_at"], on_b["_at"]) - spawned

            fault = "kill -9" if mode == "mdns" else "SIGSTOP"
            struck = trio.current_time()
            if mode == "mdns":
                b.process.kill()
            else:
                b.process.send_signal(signal.SIGSTOP)
            with trio.fail_after(OFFLINE):
                gone = await a.wait_event(disconnected_from(str(b_id["fingerprint"])))
            offline = gone["_at"] - struck
            return Run(mode, connect, b_answering, fault, offline, str(gone.get("reason", "")))
        except BaseException:
            for name in ("a", "b"):
                log = workdir / f"{name}.log"
                if log.exists() and (tail := log.read_text(errors="replace").splitlines()[-8:]):
                    print(f"--- daemon {name} stderr (last lines):", file=sys.stderr)
                    print("\n".join(tail), file=sys.stderr)
            raise
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                for daemon in daemons:
                    if daemon.process.poll() is None:
                        if daemon is not daemons[0]:
                            daemon.process.kill()  # a frozen process still dies of SIGKILL
                        await daemon.stop()
            nursery.cancel_scope.cancel()


async def measure_in(lan: VirtualLan, workdir: Path, runs: int, settle: float) -> Result:
    result = Result()
    host_a, host_b = lan.hosts
    for i in range(runs):
        for mode in ("mdns", "direct"):
            try:
                run = await one_run(host_a, host_b, workdir / f"{mode}-{i}", mode, settle)
            except Exception as exc:  # one bad run is reported, not fatal
                why = f"{mode} run {i + 1}: {describe(exc)}"
                print(f"  {why}", file=sys.stderr)
                result.failures.append(why)
                continue
            print(
                f"  {mode:<6} run {i + 1}: connected {run.connect_s:.3f} s, "
                f"{run.fault} -> offline {run.offline_s:.3f} s ({run.reason})",
                file=sys.stderr,
            )
            result.runs.append(run)
    for mode in ("mdns", "direct"):
        if not result.of(mode):
            raise RuntimeError(f"every {mode} run failed: {'; '.join(result.failures)}")
    return result


async def measure(runs: int = 5, settle: float = 2.0) -> Result:
    """Build a two-host LAN, measure `runs` of each mode, tear the LAN down."""
    with (
        tempfile.TemporaryDirectory(prefix="bench_discovery-") as tmp,
        VirtualLan(2, prefix="p2pim-bdisc") as lan,  # deleted on exit, whatever happens
    ):
        return await measure_in(lan, Path(tmp), runs, settle)


def report(result: Result) -> None:
    summary = result.summary()
    print(f"{'(seconds, median of runs)':<36}{'mDNS':>10}{'direct':>10}{'ratio':>8}")
    mdns, direct = summary.get("mdns"), summary.get("direct")
    if mdns and direct:
        rows = [
            ("B spawned -> B answers", "b_answering_median_s"),
            ("B spawned -> connected on both", "connect_median_s"),
        ]
        for label, key in rows:
            print(f"  {label:<34}{mdns[key]:>10.3f}{direct[key]:>10.3f}"
                  f"{mdns[key] / direct[key]:>8.2f}")  # fmt: skip
        print(f"  {'worst connect':<34}{mdns['connect_max_s']:>10.3f}"
              f"{direct['connect_max_s']:>10.3f}")  # fmt: skip
    print(f"\noffline detection (presence timeout {PRESENCE_TIMEOUT:g} s):")
    for stats in (mdns, direct):
        if stats:
            print(f"  after {stats['fault']:<10} median {stats['offline_median_s']:.3f} s, "
                  f"max {stats['offline_max_s']:.3f} s, reason {stats['reasons']}")  # fmt: skip
    for why in result.failures:
        print(f"failed: {why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each mode (5)")
    parser.add_argument("--settle", type=float, default=2.0, help="A's head start, s (2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    ok, why = namespaces_available()
    if not ok:
        print(f"bench_discovery needs Linux network namespaces: {why}.", file=sys.stderr)
        return 2
    result = trio.run(measure, args.runs, args.settle)
    report(result)
    if args.json is not None:
        document = {
            "runs": [asdict(r) for r in result.runs],
            "failures": result.failures,
            "summary": result.summary(),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
