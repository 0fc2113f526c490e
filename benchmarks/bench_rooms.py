"""Room fan-out on a virtual LAN: how long a post takes to reach every member of one room.

One `VirtualLan` (network namespaces on a software switch, see p2pim.testing.vlan) with a
real `p2pim daemon --stdio` per host; the daemons find each other by mDNS inside the LAN.
Once every daemon is connected to every other, host 0 creates a room and invites everyone,
each joins on its `room_invited`, and every member must see the full membership.  Then
`--messages` posts, one at a time from rotating authors: each is timed from its `post` call
returning to every other member's `room_message` (stamped as this process reads it off that
daemon's stdout), and the next post waits until the last member has it.

Reported: p50 / p99 / max of the per-member delivery latency (one sample per post and
member), of the "last member" latency (one per post), and of the `post` call itself; the
bytes the hosts put on the switch per post (from the bridge ports' counters, so TCP/IP
overhead, heartbeats and mDNS during the run included); the time to start the daemons, to
form the mesh and the room; and the daemons' resident memory.  Latencies include this
process's own scheduling: on a small machine, n daemons and the benchmark share the cores.

Needs root (network namespaces).  Each daemon takes about 50 MiB.  The other ceiling is
the kernel's neighbour (ARP) table, which all namespaces share: a full mesh of n hosts
needs n(n-1) entries, and net.ipv4.neigh.default.gc_thresh3 (1024 by default) allows 32
hosts; beyond that, dials time out for want of ARP entries.  The benchmark refuses such a
size rather than changing the machine's settings (--force tries anyway).

    sudo python -m benchmarks.bench_rooms [--hosts N] [--messages M] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run as a script: import p2pim from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2pim.testing.daemon_process import DaemonProcess, Event, connected_to, daemon_argv
from p2pim.testing.vlan import VirtualLan, namespaces_available

FLAGS = ("--presence-timeout", "5", "--reconnect-max-delay", "1")
DAEMON_MIB = 50  # a daemon's resident size, roughly: what --hosts is checked against


@dataclass
class Timeouts:
    startup: float = 120.0  # every daemon answers `identity`
    mesh: float = 180.0  # every daemon connected to every other
    room: float = 120.0  # every member sees the full membership
    post: float = 30.0  # one post reaches every member


@dataclass
class Result:
    hosts: int
    messages: int
    cpus: int
    start_s: float = 0.0  # launch -> every daemon answers `identity`
    mesh_s: float = 0.0  # launch -> every daemon connected to every other
    room_s: float = 0.0  # create_room -> everyone sees the full membership
    delivery_ms: list[float] = field(default_factory=list)  # per post and member
    last_member_ms: list[float] = field(default_factory=list)  # per post
    post_call_ms: list[float] = field(default_factory=list)  # per post
    switch_bytes_per_post: float = 0.0
    switch_packets_per_post: float = 0.0
    rss_mib: list[float] = field(default_factory=list)  # per daemon, after the run


class TimedDaemon(DaemonProcess):
    """A daemon whose notifications carry `_at`: trio.current_time() when we read them."""

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("method") == "event" and isinstance(message.get("params"), dict):
            message["params"]["_at"] = trio.current_time()
        super()._dispatch(message)


async def start_timed(nursery: trio.Nursery, argv: Sequence[str], log: Path) -> TimedDaemon:
    """Start a daemon whose stdout we read in `nursery`; its stderr goes to `log`."""
    with log.open("ab") as stderr:  # the child keeps its own descriptor
        process = await trio.lowlevel.open_process(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
    daemon = TimedDaemon(process)
    nursery.start_soon(daemon.read_loop)
    return daemon


def switch_counters(lan: VirtualLan) -> tuple[int, int]:
    """Bytes and packets the hosts sent into the switch (its ports' rx counters)."""
    out = subprocess.run(
        ["ip", "-s", "-j", "-n", lan.bridge_netns, "link", "show"],
        check=True, capture_output=True, text=True, timeout=10,
    ).stdout  # fmt: skip
    ports = {host.bridge_port for host in lan.hosts}
    links = [link for link in json.loads(out) if link.get("ifname") in ports]
    rx = [link["stats64"]["rx"] for link in links]
    return sum(r["bytes"] for r in rx), sum(r["packets"] for r in rx)


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def available_mib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def neighbour_limit() -> int | None:
    """The kernel's hard cap on ARP entries, shared by every namespace (None: unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3").read_text())
    except (OSError, ValueError):
        return None


def room_message(room: str, message_id: str, event: Event) -> bool:
    return (
        event["type"] == "room_message"
        and event["room"] == room
        and event["message_id"] == message_id
    )


async def wait_all(daemons: Sequence[DaemonProcess], predicate: Any) -> list[Event]:
    return [await daemon.wait_event(predicate) for daemon in daemons]


async def run(lan: VirtualLan, workdir: Path, messages: int, timeouts: Timeouts) -> Result:
    n = len(lan.hosts)
    result = Result(hosts=n, messages=messages, cpus=os.cpu_count() or 0)
    async with trio.open_nursery() as nursery:
        daemons: list[TimedDaemon] = []
        try:
            launched = t0 = trio.current_time()
            for host in lan.hosts:
                argv = daemon_argv(workdir / host.name, host.name, host.address, *FLAGS)
                log = workdir / f"{host.name}.log"
                daemons.append(await start_timed(nursery, host.command(argv), log))
            with trio.fail_after(timeouts.startup):
                fps = [str((await d.call("identity"))["fingerprint"]) for d in daemons]
            result.start_s = trio.current_time() - t0
            print(f"{n} daemons answering after {result.start_s:.1f} s", file=sys.stderr)

            with trio.fail_after(timeouts.mesh):
                for i, daemon in enumerate(daemons):
                    for j, fp in enumerate(fps):
                        if i != j:
                            await daemon.wait_event(connected_to(fp))
            result.mesh_s = trio.current_time() - launched
            sessions = n * (n - 1) // 2
            print(f"full mesh ({sessions} sessions) {result.mesh_s:.1f} s after the start",
                  file=sys.stderr)  # fmt: skip

            t0 = trio.current_time()
            creator = daemons[0]
            room = str((await creator.call("create_room", name="bench"))["room"])
            with trio.fail_after(timeouts.room):
                for fp in fps[1:]:
                    await creator.call("invite", room=room, peer=fp)
                for daemon in daemons[1:]:
                    await daemon.wait_event(
                        lambda e: e["type"] == "room_invited" and e["room"] == room
                    )
                    await daemon.call("join_room", room=room)
                everyone = sorted(fps)
                await wait_all(
                    daemons,
                    lambda e: (
                        e["type"] == "room_changed"
                        and e["room"] == room
                        and sorted(e["members"]) == everyone
                        and not e["invited"]
                    ),
                )
            result.room_s = trio.current_time() - t0
            print(f"room of {n} formed after {result.room_s:.1f} s", file=sys.stderr)

            bytes_before, packets_before = switch_counters(lan)
            for k in range(messages):
                author = k % n
                others = daemons[:author] + daemons[author + 1 :]
                called = trio.current_time()
                reply = await daemons[author].call("post", room=room, text=f"bench post {k}")
                returned = trio.current_time()
                message_id = str(reply["id"])
                with trio.fail_after(timeouts.post):
                    got = await wait_all(others, lambda e, m=message_id: room_message(room, m, e))
                arrivals = [(e["_at"] - returned) * 1000 for e in got]
                result.delivery_ms += arrivals
                result.last_member_ms.append(max(arrivals))
                result.post_call_ms.append((returned - called) * 1000)
            bytes_after, packets_after = switch_counters(lan)
            if messages:
                result.switch_bytes_per_post = (bytes_after - bytes_before) / messages
                result.switch_packets_per_post = (packets_after - packets_before) / messages
            result.rss_mib = [rss_mib(d.process.pid) for d in daemons]
        except BaseException:
            show_logs(workdir, lan)
            raise
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(30):
                async with trio.open_nursery() as stoppers:
                    for daemon in daemons:
                        stoppers.start_soon(daemon.stop)
            nursery.cancel_scope.cancel()
    return result


def show_logs(workdir: Path, lan: VirtualLan, lines: int = 5) -> None:
    """The end of every daemon's stderr, to see why a run failed."""
    for host in lan.hosts:
        log = workdir / f"{host.name}.log"
        if log.exists() and (tail := log.read_text(errors="replace").splitlines()[-lines:]):
            print(f"--- {host.name} stderr (last {len(tail)} lines):", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)


def quantiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(q: float) -> float:  # nearest rank
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {
        "p50": statistics.median(ordered),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def report(result: Result) -> dict[str, Any]:
    summary = {
        "delivery_ms": quantiles(result.delivery_ms),
        "last_member_ms": quantiles(result.last_member_ms),
        "post_call_ms": quantiles(result.post_call_ms),
    }
    n = result.hosts
    print(f"\nroom fan-out: {n} hosts ({n - 1} receivers per post), {result.messages} posts, "
          f"{result.cpus} CPUs")  # fmt: skip
    print(f"{'latency (ms)':<34}{'p50':>9}{'p99':>9}{'max':>9}{'mean':>9}{'samples':>9}")
    rows = [
        ("per-member delivery", "delivery_ms", result.delivery_ms),
        ("last member (post complete)", "last_member_ms", result.last_member_ms),
        ("post call (author's disk)", "post_call_ms", result.post_call_ms),
    ]
    for label, key, samples in rows:
        q = summary[key]
        if q:
            print(f"  {label:<32}{q['p50']:>9.1f}{q['p99']:>9.1f}{q['max']:>9.1f}"
                  f"{q['mean']:>9.1f}{len(samples):>9}")  # fmt: skip
    print(f"switch traffic per post: {result.switch_bytes_per_post / 1024:.1f} KiB in "
          f"{result.switch_packets_per_post:.0f} packets (all hosts' sends)")  # fmt: skip
    print(f"daemons answering {result.start_s:.1f} s and full mesh {result.mesh_s:.1f} s after "
          f"the launch; room formed in {result.room_s:.1f} s")  # fmt: skip
    rss = [r for r in result.rss_mib if r == r]  # not NaN
    if rss:
        print(f"daemon RSS: mean {statistics.fmean(rss):.0f} MiB, max {max(rss):.0f} MiB, "
              f"total {sum(rss):.0f} MiB")  # fmt: skip
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20, help="daemons, one per host (20)")
    parser.add_argument("--messages", type=int, default=50, help="posts to time (50)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--force", action="store_true", help="start the hosts even if memory looks short"
    )
    args = parser.parse_args()
    if args.hosts < 2 or args.messages < 0:
        parser.error("--hosts is at least 2 and --messages at least 0")

    ok, why = namespaces_available()
    if not ok:
        print(f"bench_rooms needs Linux network namespaces: {why}.", file=sys.stderr)
        print("Run it as root: sudo python -m benchmarks.bench_rooms", file=sys.stderr)
        return 2
    if shutil.which("ip") is None:
        print("bench_rooms needs iproute2's `ip`.", file=sys.stderr)
        return 2
    need, have = args.hosts * DAEMON_MIB, available_mib()
    if need > 0.8 * have and not args.force:
        most = int(0.8 * have // DAEMON_MIB)
        print(
            f"{args.hosts} daemons need about {need} MiB; {have:.0f} MiB are available. "
            f"Try --hosts {most}, or --force.",
            file=sys.stderr,
        )
        return 2

    limit = neighbour_limit()
    if limit is not None and args.hosts * (args.hosts - 1) > limit and not args.force:
        most = max(n for n in range(2, args.hosts) if n * (n - 1) <= limit)
        print(
            f"a full mesh of {args.hosts} hosts needs {args.hosts * (args.hosts - 1)} ARP "
            f"entries; net.ipv4.neigh.default.gc_thresh3 allows {limit} across all namespaces. "
            f"Try --hosts {most}, or raise that sysctl yourself, or --force.",
            file=sys.stderr,
        )
        return 2

    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bench_rooms-") as tmp,
        VirtualLan(args.hosts, prefix="p2pim-bench") as lan,  # deleted on exit, whatever happens
    ):
        result = trio.run(run, lan, Path(tmp), args.messages, Timeouts())
    summary = report(result)
    print(f"total run time {time.monotonic() - started:.0f} s")
    if args.json is not None:
        document = {"result": asdict(result), "summary": summary}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
