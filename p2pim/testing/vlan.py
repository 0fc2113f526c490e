"""Virtual LANs built from Linux network namespaces, for tests and benchmarks.

`VirtualLan(n)` is one "switch" namespace holding bridge `br0`, plus n host namespaces.
Each host's `eth0` is one end of a veth pair whose other end is a port of `br0`. The pair
is created directly across the two namespaces, so nothing ever exists in the root
namespace and the machine's real interfaces are never touched.

`RoutedLans(sizes)` is several such switches, one subnet each, joined by a router
namespace. Hosts have a default route via their subnet's router, so unicast crosses
between subnets while multicast (mDNS is link-local) stays on its own segment.

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
    "RoutedLans",
    "VirtualLan",
    "namespaces_available",
]

IP_TIMEOUT = 10.0  # an `ip` call takes milliseconds; this only turns a hang into an error
READY_TIMEOUT = 5.0  # links come up asynchronously (linkwatch), normally within milliseconds
RUN_TIMEOUT = 60.0  # default for `run()`, so a stuck test command cannot hang the suite
MULTICAST = "224.0.0.0/4"
_NETNS_DIR = "/var/run/netns"  # where `ip netns add` mounts the namespaces it names

# Namespaces this process created and has not deleted yet, for the atexit fallback.
_live: set[str] = set()
_live_lock = threading.Lock()
# Successive subnets get successive 198.18.N.0/24 (RFC 2544 benchmarking range).
_subnet_counter = itertools.count()
_FIRST_HOST = 10  # host j of a subnet gets its address .10+j; .1 is the router's


def _next_subnet() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"198.18.{next(_subnet_counter) % 256}.0/24")


def _check_fits(n_hosts: int, subnet: ipaddress.IPv4Network) -> None:
    if not 1 <= n_hosts <= subnet.num_addresses - _FIRST_HOST - 1:  # - broadcast
        raise ValueError(f"{n_hosts} hosts do not fit in {subnet}")


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


def _wait_cabled(netns: str, interface: str, bridge_netns: str, port: str, what: str) -> None:
    """Wait until frames pass between `interface` and its bridge port, in both directions."""

    def ready() -> bool:
        end = _link_info(netns, interface)
        info = _link_info(bridge_netns, port)
        port_state: str = info["linkinfo"]["info_slave_data"]["state"]
        return end["operstate"] == info["operstate"] == "UP" and port_state == "forwarding"

    _wait_until(ready, what)


def _write_sysctl(netns: str, key: str, value: int, *, if_present: bool = False) -> None:
    """`sysctl -w key=value` inside `netns` only: /proc/sys/net belongs to the namespace
    of whoever opens it. Written by sh, since slim images lack sysctl(8) (procps)."""
    path = "/proc/sys/" + key.replace(".", "/")
    script = f"echo {value} > {path}"
    if if_present:
        script = f"[ ! -e {path} ] || {script}"
    cmd = ["ip", "netns", "exec", netns, "sh", "-c", script]
    subprocess.run(cmd, check=True, capture_output=True, timeout=IP_TIMEOUT)


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
    """One machine on a VirtualLan (or on one subnet of RoutedLans)."""

    name: str  # for humans: "h0", "h1", ...
    netns: str  # the real, unique namespace name
    address: str  # IPv4 address of `interface`
    interface: str  # always "eth0"
    bridge_netns: str  # the switch's namespace, e.g. for `tc -n ... qdisc ... netem`
    bridge_port: str  # this host's port on br0 in bridge_netns

    def link_down(self) -> None:
        """Pull the cable: the switch port goes down, so eth0 loses carrier too."""
        _ip("-n", self.bridge_netns, "link", "set", self.bridge_port, "down")

    def limit_rate(self, mbit: int) -> None:
        """A slower cable: token-bucket limit `mbit` Mbit/s each way (tc tbf)."""
        for netns, dev in ((self.netns, self.interface), (self.bridge_netns, self.bridge_port)):
            subprocess.run(
                ["tc", "-n", netns, "qdisc", "replace", "dev", dev, "root", "tbf",
                 "rate", f"{mbit}mbit", "burst", "256kb", "latency", "50ms"],
                check=True, capture_output=True, timeout=IP_TIMEOUT,
            )  # fmt: skip

    def link_up(self) -> None:
        """Plug the cable back in; returns once frames pass again."""
        _ip("-n", self.bridge_netns, "link", "set", self.bridge_port, "up")
        self._wait_ready()

    def _wait_ready(self) -> None:
        what = f"link of {self.name}"
        _wait_cabled(self.netns, self.interface, self.bridge_netns, self.bridge_port, what)


@dataclass(frozen=True)
class _Switch:
    """One Ethernet segment: bridge br0 alone in namespace `netns`, serving `subnet`."""

    netns: str
    subnet: ipaddress.IPv4Network

    def plug(self, netns: str, interface: str, port: str, address: str) -> None:
        """Cable a new `interface` in `netns` to a new port `port` of br0; both come up."""
        # Created straight across the two namespaces: it never exists in the root one.
        veth = [interface, "type", "veth", "peer", "name", port, "netns", self.netns]
        _ip("-n", netns, "link", "add", *veth)
        _ip("-n", self.netns, "link", "set", port, "master", "br0", "up")
        _ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", interface)
        _ip("-n", netns, "link", "set", interface, "up")


class _NamespaceGroup:
    """Namespaces built together on `__enter__` and all deleted by `close()`.

    Subclasses implement `_build`, creating every namespace through `_new_netns` so that
    teardown, even of a half-built group, finds it.
    """

    def __init__(self, prefix: str | None) -> None:
        self._base = _unique_name(prefix or "p2pim")  # starts every namespace name
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
        """Kill everything still running in these namespaces and delete them."""
        names, self._namespaces = self._namespaces, []
        _remove_all(names)

    def _build(self) -> None:
        raise NotImplementedError

    def _new_netns(self, name: str) -> None:
        self._namespaces.append(name)
        _add_netns(name)

    def _new_machine(self, name: str) -> None:
        """A namespace for a host or router: lo up, ready to be cabled to switches."""
        self._new_netns(name)
        # IPv6 duplicate address detection would keep a link-local address "tentative"
        # (unbindable) for a second or two; a LAN we built has no duplicates. Links
        # created later inherit `default`.
        _write_sysctl(name, "net.ipv6.conf.default.accept_dad", 0, if_present=True)
        _ip("-n", name, "link", "set", "lo", "up")

    def _new_switch(self, netns: str, subnet: ipaddress.IPv4Network) -> _Switch:
        self._new_netns(netns)
        switch = _Switch(netns, subnet)
        # No snooping: every multicast floods to every port like on a dumb switch, so mDNS
        # works without an IGMP querier on the LAN.
        _ip("-n", netns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", netns, "link", "set", "br0", "up")
        return switch

    def _new_host(self, switch: _Switch, i: int, j: int, gateway: str | None = None) -> Host:
        """Host h<i>, the switch's j-th, routing off-subnet via `gateway` if given."""
        host = Host(
            name=f"h{i}",
            netns=f"{self._base}-h{i}",
            address=str(switch.subnet.network_address + _FIRST_HOST + j),
            interface="eth0",
            bridge_netns=switch.netns,
            bridge_port=f"p{i}",  # short and unique: only br0's ports live there
        )
        netns = host.netns
        self._new_machine(netns)
        switch.plug(netns, host.interface, host.bridge_port, host.address)
        # Multicast goes out eth0 whatever else is routed, so mDNS stays on this segment;
        # without the route (and no default one), sending to 224.0.0.251 fails ENETUNREACH.
        _ip("-n", netns, "route", "add", MULTICAST, "dev", "eth0")
        if gateway is not None:
            _ip("-n", netns, "route", "add", "default", "via", gateway, "dev", "eth0")
        return host


class VirtualLan(_NamespaceGroup):
    """n hosts on one switch; use as a context manager, then read `hosts`.

    `subnet` defaults to the next 198.18.N.0/24 (N counting up per process), so LANs that
    coexist get distinct addresses, which keeps logs unambiguous; host i gets the
    subnet's address 10 + i. `prefix` starts the namespace names (default "p2pim").
    """

    def __init__(self, n_hosts: int, *, subnet: str | None = None, prefix: str | None = None):
        super().__init__(prefix)
        self.subnet = _next_subnet() if subnet is None else ipaddress.IPv4Network(subnet)
        _check_fits(n_hosts, self.subnet)
        self.n_hosts = n_hosts
        self.bridge_netns = f"{self._base}-br"
        self.hosts: list[Host] = []

    def _build(self) -> None:
        switch = self._new_switch(self.bridge_netns, self.subnet)
        for i in range(self.n_hosts):
            self.hosts.append(self._new_host(switch, i, i))
        for host in self.hosts:
            host._wait_ready()


class RoutedLans(_NamespaceGroup):
    """Subnets joined by a router; use as a context manager, then read `lans` or `hosts`.

    Subnet k is a switch with `sizes[k]` hosts and gets the next 198.18.N.0/24; hosts are
    named h0, h1, ... across all subnets, and host j of a subnet has its address .10+j.
    The router (namespace `router_netns`) has interface eth<k> on subnet k with address
    .1, forwards IPv4 (enabled in its namespace only) but not multicast, so link-local
    traffic such as mDNS stays on its segment. Each host routes off-subnet via its .1.
    """

    def __init__(self, sizes: Sequence[int], *, prefix: str | None = None):
        super().__init__(prefix)
        if not sizes:
            raise ValueError("RoutedLans needs at least one subnet")
        self.sizes = list(sizes)
        self.subnets = [_next_subnet() for _ in self.sizes]
        for size, subnet in zip(self.sizes, self.subnets, strict=True):
            _check_fits(size, subnet)
        # The router's address on each subnet: the hosts' default gateway there.
        self.router_addresses = [str(subnet.network_address + 1) for subnet in self.subnets]
        self.router_netns = f"{self._base}-rt"
        self.lans: list[list[Host]] = []  # lans[k]: the hosts of subnet k

    @property
    def hosts(self) -> list[Host]:
        """All hosts, subnet by subnet: h0, h1, ..."""
        return [host for lan in self.lans for host in lan]

    def _build(self) -> None:
        router = self.router_netns
        self._new_machine(router)
        _write_sysctl(router, "net.ipv4.ip_forward", 1)
        host_numbers = itertools.count()
        for k, (size, subnet, gateway) in enumerate(
            zip(self.sizes, self.subnets, self.router_addresses, strict=True)
        ):
            switch = self._new_switch(f"{self._base}-br{k}", subnet)
            switch.plug(router, f"eth{k}", "rt", gateway)
            hosts = [self._new_host(switch, next(host_numbers), j, gateway) for j in range(size)]
            self.lans.append(hosts)
        for k, lan in enumerate(self.lans):
            bridge = lan[0].bridge_netns
            _wait_cabled(router, f"eth{k}", bridge, "rt", f"router link to subnet {k}")
            for host in lan:
                host._wait_ready()


class LoopbackNamespace(_InNamespace, _NamespaceGroup):
    """One fresh namespace whose peers all use 127.0.0.1, with multicast working on lo."""

    name = "loopback"
    address = "127.0.0.1"
    interface = "lo"

    def __init__(self, *, prefix: str | None = None):
        super().__init__(prefix)
        self.netns = f"{self._base}-lo"

    def _build(self) -> None:
        self._new_netns(self.netns)
        # lo lacks the MULTICAST flag by default, and the route makes group sends
        # (e.g. mDNS to 224.0.0.251) go out lo instead of failing with ENETUNREACH.
        # Without `src`, they would come from 0.0.0.0: 127.0.0.1 is scope host, too
        # narrow for the kernel to pick it for a link-scope route.
        _ip("-n", self.netns, "link", "set", "lo", "up", "multicast", "on")
        _ip("-n", self.netns, "route", "add", MULTICAST, "dev", "lo", "src", self.address)
