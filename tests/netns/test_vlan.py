"""The virtual-LAN harness really gives connected, isolated, disposable hosts.

Every peer is a `python -c` script run inside a namespace, so no extra package (ping) is
needed. Readiness is signalled by the script printing "ready", never by sleeping; every
subprocess has a timeout so nothing can hang.
"""

import ipaddress
import random
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from p2pim.testing.vlan import Host, LoopbackNamespace, RoutedLans, VirtualLan

pytestmark = pytest.mark.netns

PY = sys.executable
TIMEOUT = 10.0  # for every subprocess: far above what anything here needs
PORT = 7000  # each host has its own network stack, so one fixed port serves all
MDNS_GROUP = "224.0.0.251"
MDNS_PORT = "5353"  # free: every host has its own network stack
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
UNREACHABLE = {"timeout", "EHOSTUNREACH", "ENETUNREACH"}

# Accepts forever, answering "pong" to each connection.
LISTENER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"pong")
    c.close()
"""

# Prints "ok", or why connecting failed (errno name, or "timeout").
CONNECT = """
import errno, socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])) as c:
        print("ok" if c.recv(4) == b"pong" else "bad reply")
except OSError as e:
    print(errno.errorcode[e.errno] if e.errno else "timeout")
"""

# Joins GROUP (interface chosen by the routing table, i.e. the harness's multicast
# route), then prints "SRC PAYLOAD" for each of N datagrams.
MCAST_RECEIVER = """
import socket, struct, sys
group, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", port))
mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0"))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
s.settimeout(float(sys.argv[4]))
print("ready", flush=True)
for _ in range(n):
    data, (src, _) = s.recvfrom(1500)
    print(src, data.decode(), flush=True)
"""

# Sends one datagram, with no IP_MULTICAST_IF: the route must pick the interface.
MCAST_SENDER = """
import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
    sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
"""


# Joins GROUP like MCAST_RECEIVER, then prints "SRC PAYLOAD" for each datagram, up to
# and including one saying "end".
MCAST_UNTIL_END = """
import socket, struct, sys
group, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", port))
mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0"))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
s.settimeout(float(sys.argv[3]))
print("ready", flush=True)
while True:
    data, (src, _) = s.recvfrom(1500)
    print(src, data.decode(), flush=True)
    if data == b"end":
        break
"""

# Sends N datagrams to GROUP, then "end" unicast to each further address. TTL 255, as
# mDNS uses, so that only multicast's link-local scope can keep them on the segment.
MCAST_THEN_END = """
import socket, sys
group, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
for i in range(n):
    s.sendto(f"data-{i}".encode(), (group, port))
for address in sys.argv[4:]:
    s.sendto(b"end", (address, port))
"""


def _first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    assert readable, "child printed nothing in time"
    return proc.stdout.readline().strip()


@contextmanager
def _serving(host: Host) -> Iterator[None]:
    proc = host.popen([PY, "-c", LISTENER, str(PORT)], stdout=subprocess.PIPE, text=True)
    try:
        assert _first_line(proc) == "ready"
        yield
    finally:
        proc.kill()
        proc.wait(TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()


def _connect(src: Host | LoopbackNamespace, address: str, timeout: float = 5.0) -> str:
    """Connect from `src` to `address`:PORT; "ok" or why not."""
    cmd = [PY, "-c", CONNECT, address, str(PORT), str(timeout)]
    out: str = src.run(cmd, capture_output=True, text=True, check=True, timeout=TIMEOUT).stdout
    return out.strip()


def _stray(prefix: list[str]) -> subprocess.Popen[str]:
    """A process sleeping inside the namespace that `prefix` enters, left for teardown."""
    cmd = [*prefix, PY, "-c", "import time; print('ready', flush=True); time.sleep(600)"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert _first_line(proc) == "ready"  # inside, so deleting the namespace must kill it
    assert proc.stdout is not None
    proc.stdout.close()
    return proc


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return {line.split(":")[1].strip() for line in out.stdout.splitlines()}


def test_every_host_reaches_every_other(vlan3: VirtualLan) -> None:
    hosts = vlan3.hosts
    assert [h.name for h in hosts] == ["h0", "h1", "h2"]
    assert len({h.address for h in hosts}) == 3
    with _serving(hosts[0]), _serving(hosts[1]), _serving(hosts[2]):
        for src in hosts:
            for dst in hosts:
                if src is not dst:
                    assert _connect(src, dst.address) == "ok", (src.name, dst.name)


def test_hosts_are_isolated_from_the_root_namespace(vlan3: VirtualLan) -> None:
    host = vlan3.hosts[0]
    links = host.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()} == {
        "lo",
        "eth0",
    }
    routes = host.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    assert {line.split()[0] for line in routes.splitlines()} == {
        str(vlan3.subnet),
        "224.0.0.0/4",
    }
    # With no route there, connecting to one of the root namespace's own addresses fails
    # locally (ENETUNREACH) before any packet is sent.
    root = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    addresses = [root[i + 1].split("/")[0] for i, word in enumerate(root) if word == "inet"]
    outside = [a for a in addresses if not a.startswith("198.18.")]
    if outside:
        assert _connect(host, outside[0], timeout=1.0) == "ENETUNREACH"


def test_multicast_floods_across_the_bridge(vlan3: VirtualLan) -> None:
    h0, h1, h2 = vlan3.hosts
    port = str(random.randint(20000, 60000))
    receiver = h1.popen(
        [PY, "-c", MCAST_RECEIVER, MDNS_GROUP, port, "2", str(TIMEOUT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _first_line(receiver) == "ready"
        for sender in (h0, h2):
            sender.run(
                [PY, "-c", MCAST_SENDER, MDNS_GROUP, port, f"from-{sender.name}"], check=True
            )
        out, _ = receiver.communicate(timeout=TIMEOUT)
    finally:
        receiver.kill()
        receiver.wait(TIMEOUT)
    assert receiver.returncode == 0
    assert set(out.splitlines()) == {f"{h0.address} from-h0", f"{h2.address} from-h2"}


def test_link_down_partitions_one_host_and_link_up_heals(vlan3: VirtualLan) -> None:
    h0, h1, h2 = vlan3.hosts
    with _serving(h0), _serving(h1):
        assert _connect(h0, h1.address) == "ok"  # it worked before, so the failure is ours
        h1.link_down()
        assert _connect(h0, h1.address, timeout=1.0) in UNREACHABLE
        assert _connect(h1, h0.address, timeout=1.0) in UNREACHABLE
        assert _connect(h2, h0.address) == "ok"
        h1.link_up()
        assert _connect(h0, h1.address) == "ok"
        assert _connect(h1, h0.address) == "ok"


def test_teardown_removes_everything_and_kills_leftover_processes() -> None:
    links_before = _root_links()
    with VirtualLan(2) as lan:
        ours = {lan.bridge_netns, *(h.netns for h in lan.hosts)}
        assert ours <= _netns_names()
        assert _root_links() == links_before  # nothing ever lives in the root namespace
        stray = _stray(lan.hosts[0].command([]))
    assert stray.wait(TIMEOUT) == -signal.SIGKILL
    assert not ours & _netns_names()
    assert _root_links() == links_before


def test_teardown_also_happens_on_exceptions() -> None:
    ours: set[str] = set()

    def fail_inside() -> None:
        with VirtualLan(1) as lan:
            ours.update({lan.bridge_netns, lan.hosts[0].netns})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert not ours & _netns_names()


def test_atexit_removes_lans_that_were_never_closed() -> None:
    leaky = (
        "from p2pim.testing.vlan import VirtualLan\n"
        "lan = VirtualLan(1).__enter__()\n"
        "print(lan.bridge_netns, lan.hosts[0].netns)\n"
    )
    out = subprocess.run(
        [PY, "-c", leaky], capture_output=True, text=True, check=True, timeout=TIMEOUT
    )
    ours = set(out.stdout.split())
    assert len(ours) == 2
    assert not ours & _netns_names()


def test_two_lans_get_distinct_subnets_and_names() -> None:
    with VirtualLan(1) as a, VirtualLan(1) as b:
        assert a.subnet != b.subnet
        assert a.hosts[0].address != b.hosts[0].address
        assert a.hosts[0].netns != b.hosts[0].netns


def test_multicast_on_loopback_namespace(loopback_ns: LoopbackNamespace) -> None:
    port = str(random.randint(20000, 60000))
    receiver = loopback_ns.popen(
        [PY, "-c", MCAST_RECEIVER, MDNS_GROUP, port, "1", str(TIMEOUT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _first_line(receiver) == "ready"
        loopback_ns.run([PY, "-c", MCAST_SENDER, MDNS_GROUP, port, "hello"], check=True)
        out, _ = receiver.communicate(timeout=TIMEOUT)
    finally:
        receiver.kill()
        receiver.wait(TIMEOUT)
    assert receiver.returncode == 0
    assert out.split() == ["127.0.0.1", "hello"]


async def test_open_process_runs_inside_the_namespace(vlan3: VirtualLan) -> None:
    host = vlan3.hosts[2]
    with trio.fail_after(TIMEOUT):
        proc = await host.open_process(
            ["ip", "-4", "-o", "addr", "show", "dev", "eth0"], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        out = b""
        while chunk := await proc.stdout.receive_some():
            out += chunk
        assert await proc.wait() == 0
    assert f"inet {host.address}/24" in out.decode()


def test_routed_lans_layout(routed_lans: RoutedLans) -> None:
    (h0, h1), (h2,) = routed_lans.lans
    assert routed_lans.hosts == [h0, h1, h2]
    assert [h.name for h in routed_lans.hosts] == ["h0", "h1", "h2"]
    subnet0, subnet1 = routed_lans.subnets
    assert subnet0 != subnet1
    assert all(str(s).startswith("198.18.") for s in routed_lans.subnets)
    assert routed_lans.router_addresses == [
        str(subnet0.network_address + 1),
        str(subnet1.network_address + 1),
    ]
    assert h0.bridge_netns == h1.bridge_netns != h2.bridge_netns
    for host, subnet in [(h0, subnet0), (h1, subnet0), (h2, subnet1)]:
        assert ipaddress.IPv4Address(host.address) in subnet
        routes = host.run(["ip", "-4", "route"], capture_output=True, text=True, check=True)
        lines = {" ".join(line.split()[:5]) for line in routes.stdout.splitlines()}
        assert f"default via {subnet.network_address + 1} dev eth0" in lines
        assert "224.0.0.0/4 dev eth0 scope link" in lines
    # Forwarding is on in the router's namespace (the root's is checked on teardown).
    router = subprocess.run(
        ["ip", "netns", "exec", routed_lans.router_netns, "cat", IP_FORWARD],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.strip()
    assert router == "1"


def test_tcp_crosses_the_router(routed_lans: RoutedLans) -> None:
    (h0, h1), (h2,) = routed_lans.lans
    route = h0.run(["ip", "route", "get", h2.address], capture_output=True, text=True)
    assert f"via {routed_lans.router_addresses[0]} dev eth0" in route.stdout
    with _serving(h0), _serving(h2):
        assert _connect(h0, h2.address) == "ok"
        assert _connect(h1, h2.address) == "ok"
        assert _connect(h2, h0.address) == "ok"


def test_multicast_stays_on_its_subnet(routed_lans: RoutedLans) -> None:
    (h0, h1), (h2,) = routed_lans.lans
    receivers = {
        host: host.popen(
            [PY, "-c", MCAST_UNTIL_END, MDNS_GROUP, MDNS_PORT, str(TIMEOUT)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for host in (h1, h2)
    }
    try:
        for proc in receivers.values():
            assert _first_line(proc) == "ready"
        # The unicast "end" to h2 is routed, so it arrives after any multicast that the
        # router might (wrongly) forward: h2 printing it means the datagrams are not coming.
        h0.run(
            [PY, "-c", MCAST_THEN_END, MDNS_GROUP, MDNS_PORT, "3", h1.address, h2.address],
            check=True,
        )
        outputs = {host: proc.communicate(timeout=TIMEOUT)[0] for host, proc in receivers.items()}
    finally:
        for proc in receivers.values():
            proc.kill()
            proc.wait(TIMEOUT)
    assert all(proc.returncode == 0 for proc in receivers.values())
    assert outputs[h1].splitlines() == [
        f"{h0.address} data-0",
        f"{h0.address} data-1",
        f"{h0.address} data-2",
        f"{h0.address} end",
    ]
    assert outputs[h2].splitlines() == [f"{h0.address} end"]


def test_link_down_and_up_on_routed_hosts(routed_lans: RoutedLans) -> None:
    (h0, h1), (h2,) = routed_lans.lans
    with _serving(h0), _serving(h2):
        assert _connect(h0, h2.address) == "ok"
        h2.link_down()
        assert _connect(h0, h2.address, timeout=1.0) in UNREACHABLE
        assert _connect(h2, h0.address, timeout=1.0) in UNREACHABLE
        assert _connect(h1, h0.address) == "ok"
        h2.link_up()
        assert _connect(h0, h2.address) == "ok"
        assert _connect(h2, h0.address) == "ok"


def test_routed_lans_teardown_removes_everything() -> None:
    links_before = _root_links()
    with open(IP_FORWARD) as f:
        forward_before = f.read()
    with RoutedLans((1, 2)) as lans:
        ours = {lans.router_netns, *(h.netns for h in lans.hosts)}
        ours |= {h.bridge_netns for h in lans.hosts}
        assert len(ours) == 1 + 3 + 2
        assert ours <= _netns_names()
        assert _root_links() == links_before
        with open(IP_FORWARD) as f:
            assert f.read() == forward_before  # the router's sysctl stayed in its namespace
        strays = [
            _stray(lans.hosts[2].command([])),
            _stray(["ip", "netns", "exec", lans.router_netns]),
        ]
    assert [stray.wait(TIMEOUT) for stray in strays] == [-signal.SIGKILL] * 2
    assert not ours & _netns_names()
    assert _root_links() == links_before


def test_routed_lans_teardown_also_happens_on_exceptions() -> None:
    ours: set[str] = set()

    def fail_inside() -> None:
        with RoutedLans((1, 1)) as lans:
            ours.update({lans.router_netns, *(h.netns for h in lans.hosts)})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert not ours & _netns_names()


@pytest.mark.parametrize("sizes", [(), (1, 0), (1, 300)])
def test_routed_lans_rejects_bad_sizes(sizes: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"at least one subnet|do not fit"):
        RoutedLans(sizes)
