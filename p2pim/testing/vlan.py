"""Virtual LANs built from Linux network namespaces, for tests and benchmarks.

`VirtualLan(n)` is one "switch" namespace holding bridge `br0`, plus n host namespaces.
Each host's `eth0` is one end of a veth pair whose other end is a port of `br0`. The pair
is created directly across the two namespaces, so nothing ever exists in the root
namespace and the machine's real interfaces are never touched.

`LoopbackNamespace` is one fresh namespace where peers share 127.0.0.1, with multicast
enabled on `lo` so discovery can run there.

Needs root and iproute2. Every namespace name carries our pid and a random suffix; only
names this process created are ever deleted: on context exit, else from `atexit`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import ipaddress
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    import trio

__all__ = [
    "Host",
    "LoopbackNamespace",
    "NamespaceUnavailable",
    "VirtualLan",
    "namespaces_available",
]

IP_TIMEOUT = 10.0  # an `ip` call takes milliseconds; this only turns a hang into an error
READY_TIMEOUT = 5.0  # links come up asynchronously (linkwatch), normally within milliseconds
RUN_TIMEOUT = 60.0  # default for `run()`, so a stuck test command cannot hang the suite
MULTICAST = "224.0.0.0/4"
_NETNS_DIR = "/var/run/netns"  # where `ip netns add` mounts the namespaces it names
_DAD = "/proc/sys/net/ipv6/conf/default/accept_dad"  # inherited by links created later

# Namespaces this process created and has not deleted yet, for the atexit fallback.
_live: set[str] = set()
_live_lock = threading.Lock()
# Successive LANs get successive 198.18.N.0/24 subnets (RFC 2544 benchmarking range).
_subnet_counter = itertools.count()


class NamespaceUnavailable(Exception):
    """Network namespaces cannot be used here: not root, no iproute2, or no kernel support."""


def _ip(*args: str) -> str:
    """Run `ip ARGS`, returning stdout; a failure raises with ip's own message attached."""
    try:
        proc = subprocess.run(
            ["ip", *args], check=True, capture_output=True, text=True, timeout=IP_TIMEOUT
        )
    except subprocess.CalledProcessError as exc:
        exc.add_note(f"ip said: {str(exc.stderr).strip()}")
        raise
    return proc.stdout


def _unique_name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def _netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(_NETNS_DIR, name))


def _add_netns(name: str) -> None:
    # Registered first so that even an interrupt right after `ip netns add` is cleaned up.
    with _live_lock:
        _live.add(name)
    _ip("netns", "add", name)


def _kill_processes_in(name: str) -> None:
    # A process left inside would keep the namespace (and its links) alive after `del`.
    out = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, timeout=IP_TIMEOUT
    ).stdout
    for pid in map(int, out.split()):
        if pid == os.getpid():  # never ourselves, should a caller have setns()'d into it
            continue
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.kill(pid, signal.SIGKILL)


def _remove_netns(name: str) -> None:
    """Kill what runs in `name` and delete it; a namespace that is already gone is fine."""
    if _netns_exists(name):
        _kill_processes_in(name)
        proc = subprocess.run(
            ["ip", "netns", "del", name], capture_output=True, text=True, timeout=IP_TIMEOUT
        )
        if proc.returncode != 0 and _netns_exists(name):
            raise RuntimeError(f"ip netns del {name} failed: {proc.stderr.strip()}")
    with _live_lock:
        _live.discard(name)


def _remove_all(names: Sequence[str]) -> None:
    """Remove every name, even if some fail; then raise the first failure."""
    first_error: Exception | None = None
    for name in reversed(names):
        try:
            _remove_netns(name)
        except Exception as exc:  # keep going: the others must still go
            first_error = first_error or exc
    if first_error is not None:
        raise first_error


@atexit.register
def _remove_leftovers() -> None:
    # Fallback for a LAN that was never closed (e.g. a test abandoned its generator).
    with _live_lock:
        names = list(_live)
    for name in names:
        with contextlib.suppress(Exception):  # nothing better to do at interpreter exit
            _remove_netns(name)


@functools.cache
def namespaces_available() -> tuple[bool, str]:
    """(True, "") if VirtualLan can work here, else (False, why not), e.g. for pytest skips.

    Probes by really creating a namespace with a bridge and a veth pair, then deleting it.
    """
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    if shutil.which("ip") is None:
        return False, "iproute2's `ip` command is not installed"
    probe = _unique_name("p2pim-probe")
    try:
        _add_netns(probe)
        _ip("-n", probe, "link", "add", "br0", "type", "bridge")
        _ip("-n", probe, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1")
    except (OSError, subprocess.SubprocessError) as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        return False, f"cannot build a namespace with a bridge and veth: {exc} {notes}".strip()
    finally:
        _remove_netns(probe)
    return True, ""


def _require_namespaces() -> None:
    ok, reason = namespaces_available()
    if not ok:
        raise NamespaceUnavailable(reason)


def _link_info(netns: str, dev: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(_ip("-j", "-d", "-n", netns, "link", "show", "dev", dev))[0]
    return info


def _wait_until(ready: Callable[[], bool], what: str) -> None:
    """Poll a condition (not a blind sleep): link state changes are applied asynchronously."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not up after {READY_TIMEOUT} s")
        time.sleep(0.005)


class _InNamespace:
    """Running commands inside one namespace; shared by Host and LoopbackNamespace."""

    netns: str

    def command(self, cmd: Sequence[str]) -> list[str]:
        """`cmd` prefixed so it runs in this namespace; spawn it however you like."""
        return ["ip", "netns", "exec", self.netns, *cmd]

    def run(self, cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        """subprocess.run inside this namespace; timeout defaults to RUN_TIMEOUT."""
        kw.setdefault("timeout", RUN_TIMEOUT)
        return subprocess.run(self.command(cmd), **kw)

    def popen(self, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """subprocess.Popen inside this namespace (teardown SIGKILLs it if still running)."""
        return subprocess.Popen(self.command(cmd), **kw)

    async def open_process(self, cmd: Sequence[str], **kw: Any) -> trio.Process:
        """trio.lowlevel.open_process inside this namespace."""
        import trio  # here, so the synchronous API works without trio

        return await trio.lowlevel.open_process(self.command(cmd), **kw)


@dataclass(frozen=True)
class Host(_InNamespace):
    """One machine on a VirtualLan."""

    name: str  # for humans: "h0", "h1", ...
    netns: str  # the real, unique namespace name
    address: str  # IPv4 address of `interface`
    interface: str  # always "eth0"
    bridge_netns: str  # the switch's namespace, e.g. for `tc -n ... qdisc ... netem`
    bridge_port: str  # this host's port on br0 in bridge_netns

    def link_down(self) -> None:
        """Pull the cable: the switch port goes down, so eth0 loses carrier too."""
        _ip("-n", self.bridge_netns, "link", "set", self.bridge_port, "down")

    def link_up(self) -> None:
        """Plug the cable back in; returns once frames pass again."""
        _ip("-n", self.bridge_netns, "link", "set", self.bridge_port, "up")
        self._wait_ready()

    def _wait_ready(self) -> None:
        def ready() -> bool:
            eth = _link_info(self.netns, self.interface)
            port = _link_info(self.bridge_netns, self.bridge_port)
            port_state: str = port["linkinfo"]["info_slave_data"]["state"]
            return eth["operstate"] == port["operstate"] == "UP" and port_state == "forwarding"

        _wait_until(ready, f"link of {self.name}")


class VirtualLan:
    """n hosts on one switch; use as a context manager, then read `hosts`.

    `subnet` defaults to the next 198.18.N.0/24 (N counting up per process), so LANs that
    coexist get distinct addresses, which keeps logs unambiguous; host i gets the
    subnet's address 10 + i. `prefix` starts the namespace names (default "p2pim").
    """

    def __init__(self, n_hosts: int, *, subnet: str | None = None, prefix: str | None = None):
        if subnet is None:
            subnet = f"198.18.{next(_subnet_counter) % 256}.0/24"
        self.subnet = ipaddress.IPv4Network(subnet)
        if not 1 <= n_hosts <= self.subnet.num_addresses - 11:  # .0-.9 unused; broadcast
            raise ValueError(f"{n_hosts} hosts do not fit in {self.subnet}")
        self.n_hosts = n_hosts
        self._base = _unique_name(prefix or "p2pim")
        self.bridge_netns = f"{self._base}-br"
        self.hosts: list[Host] = []
        self._namespaces: list[str] = []  # in creation order, for teardown

    def __enter__(self) -> Self:
        _require_namespaces()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kill everything still running in the LAN and delete its namespaces."""
        names, self._namespaces = self._namespaces, []
        _remove_all(names)

    def _new_netns(self, name: str) -> None:
        self._namespaces.append(name)
        _add_netns(name)

    def _build(self) -> None:
        br = self.bridge_netns
        self._new_netns(br)
        # No snooping: every multicast floods to every port like on a dumb switch, so mDNS
        # works without an IGMP querier on the LAN.
        _ip("-n", br, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", br, "link", "set", "br0", "up")
        for i in range(self.n_hosts):
            host = Host(
                name=f"h{i}",
                netns=f"{self._base}-h{i}",
                address=str(self.subnet.network_address + 10 + i),
                interface="eth0",
                bridge_netns=br,
                bridge_port=f"p{i}",  # short and unique: only br0's ports live there
            )
            ns = host.netns
            self._new_netns(ns)
            # IPv6 duplicate address detection would keep eth0's link-local address
            # "tentative" (unbindable) for a second or two; a LAN we built has no duplicates.
            no_dad = f"[ ! -e {_DAD} ] || echo 0 > {_DAD}"
            subprocess.run(host.command(["sh", "-c", no_dad]), check=True, timeout=IP_TIMEOUT)
            # Created straight across the two namespaces: it never exists in the root one.
            veth = ["eth0", "type", "veth", "peer", "name", host.bridge_port, "netns", br]
            _ip("-n", ns, "link", "add", *veth)
            _ip("-n", br, "link", "set", host.bridge_port, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "eth0", "up")
            # There is no default route, so without this sending to 224.0.0.251 would fail
            # with ENETUNREACH.
            _ip("-n", ns, "route", "add", MULTICAST, "dev", "eth0")
            self.hosts.append(host)
        for host in self.hosts:
            host._wait_ready()


class LoopbackNamespace(_InNamespace):
    """One fresh namespace whose peers all use 127.0.0.1, with multicast working on lo."""

    name = "loopback"
    address = "127.0.0.1"
    interface = "lo"

    def __init__(self, *, prefix: str | None = None):
        self.netns = _unique_name(prefix or "p2pim") + "-lo"

    def __enter__(self) -> Self:
        _require_namespaces()
        try:
            _add_netns(self.netns)
            # lo lacks the MULTICAST flag by default, and the route makes group sends
            # (e.g. mDNS to 224.0.0.251) go out lo instead of failing with ENETUNREACH.
            # Without `src`, they would come from 0.0.0.0: 127.0.0.1 is scope host, too
            # narrow for the kernel to pick it for a link-scope route.
            _ip("-n", self.netns, "link", "set", "lo", "up", "multicast", "on")
            _ip("-n", self.netns, "route", "add", MULTICAST, "dev", "lo", "src", self.address)
        except BaseException:
            _remove_netns(self.netns)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kill everything still running in the namespace and delete it."""
        _remove_netns(self.netns)
