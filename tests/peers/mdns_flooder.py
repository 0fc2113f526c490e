"""A hostile third host for tests: floods the LAN with mDNS announcements of thousands of
fake `_p2pim._tcp` services (random fingerprints), all pointing at this host, and counts
the TCP connections that nodes then open to it.

usage: mdns_flooder.py ADDRESS COUNT {close|hold}

Every service gets its own instance name, host name and random 64-hex fingerprint; its
SRV and A records point at ADDRESS and the port this script listens on.  The responses
are built byte by byte (RFC 1035 / RFC 6762; unique records carry the cache-flush bit),
a few services per packet, and multicast from port 5353 to 224.0.0.251.

Inbound connections are counted per source address.  `close` reads the dialler's first
handshake message and closes (a dial fails at once); `hold` keeps every connection open
without answering (a tarpit: each dial lasts until the dialler's handshake deadline).

Commands on stdin, one per line; each is answered by one JSON line on stdout:

    flood    announce all COUNT services once (the same ones each time):
             {"event": "flooded", "services": n, "packets": k, "seconds": t}
    count    the connections so far:
             {"event": "connections", "by_source": {ip: {"total", "open", "max_open"}}}

From the first `flood` on, every mDNS query for `_p2pim` is answered at once with a
whole flood too (not reported).  It first reports {"event": "listening", "port": ...};
EOF on stdin ends it.  Every step is bounded in time; SIGALRM ends it should its stdin
never close.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import struct
import sys
from collections import Counter

import trio

MDNS_GROUP, MDNS_PORT = "224.0.0.251", 5353
SERVICE_TYPE = "_p2pim._tcp.local."
TYPE_A, TYPE_PTR, TYPE_TXT, TYPE_SRV = 1, 12, 16, 33
CLASS_IN, CACHE_FLUSH = 1, 0x8000
TTL_HOST, TTL_OTHER = 120, 4500
PACKET_BUDGET = 1400  # bytes of records per datagram: no IP fragmentation on the LAN
PACE = 0.0005  # seconds between datagrams, so that receivers' socket buffers keep up
HOLD_LIMIT = 30.0  # a held connection is let go after this long at the latest
LIFETIME = 120


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def dns_name(name: str) -> bytes:
    labels = [label.encode() for label in name.rstrip(".").split(".")]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def record(name: str, rtype: int, flush: bool, ttl: int, rdata: bytes) -> bytes:
    rclass = CLASS_IN | (CACHE_FLUSH if flush else 0)
    return dns_name(name) + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def srv(port: int, target: str) -> bytes:
    return struct.pack("!HHH", 0, 0, port) + dns_name(target)


def txt(items: dict[str, str]) -> bytes:
    strings = [f"{k}={v}".encode() for k, v in items.items()]
    return b"".join(bytes([len(s)]) + s for s in strings)


def service_records(i: int, address: str, port: int) -> list[bytes]:
    fp = secrets.token_hex(32)
    instance = f"fake{i}-{fp[:8]}.{SERVICE_TYPE}"
    server = f"fake{i}-{fp[:8]}.local."
    return [
        record(SERVICE_TYPE, TYPE_PTR, False, TTL_OTHER, dns_name(instance)),
        record(instance, TYPE_SRV, True, TTL_HOST, srv(port, server)),
        record(instance, TYPE_TXT, True, TTL_OTHER, txt({"v": "1", "fp": fp, "nick": f"fake{i}"})),
        record(server, TYPE_A, True, TTL_HOST, socket.inet_aton(address)),
    ]  # fmt: skip


def packets(count: int, address: str, port: int) -> list[bytes]:
    out: list[bytes] = []
    answers: list[bytes] = []
    for i in range(count):
        records = service_records(i, address, port)
        if answers and sum(map(len, answers + records)) > PACKET_BUDGET:
            out.append(struct.pack("!HHHHHH", 0, 0x8400, 0, len(answers), 0, 0) + b"".join(answers))
            answers = []
        answers += records
    if answers:
        out.append(struct.pack("!HHHHHH", 0, 0x8400, 0, len(answers), 0, 0) + b"".join(answers))
    return out


class Counts:
    def __init__(self) -> None:
        self.total: Counter[str] = Counter()
        self.open: Counter[str] = Counter()
        self.max_open: Counter[str] = Counter()

    def as_json(self) -> dict[str, dict[str, int]]:
        return {
            ip: {"total": self.total[ip], "open": self.open[ip], "max_open": self.max_open[ip]}
            for ip in self.total
        }


async def serve(stream: trio.SocketStream, counts: Counts, hold: bool) -> None:
    source = str(stream.socket.getpeername()[0])
    counts.total[source] += 1
    counts.open[source] += 1
    counts.max_open[source] = max(counts.max_open[source], counts.open[source])
    try:
        with trio.move_on_after(HOLD_LIMIT):
            received = 0
            while data := await stream.receive_some(65536):
                received += len(data)
                if not hold and received >= 34:  # message 1 is in: hang up
                    break
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        counts.open[source] -= 1
        await trio.aclose_forcefully(stream)


async def main(address: str, count: int, mode: str) -> None:
    signal.alarm(LIFETIME)
    counts = Counts()
    listeners = await trio.open_tcp_listeners(0, host=address, backlog=1024)
    port = listeners[0].socket.getsockname()[1]
    udp = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
    udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    await udp.bind((address, MDNS_PORT))
    datagrams = packets(count, address, port)
    flooding = trio.Lock()
    armed = False  # queries are answered once the first flood was asked for

    async def flood(report_it: bool) -> None:
        async with flooding:
            started = trio.current_time()
            for datagram in datagrams:
                await udp.sendto(datagram, (MDNS_GROUP, MDNS_PORT))
                await trio.sleep(PACE)  # the pacing itself, not a synchronisation
        if report_it:
            seconds = round(trio.current_time() - started, 3)
            report(event="flooded", services=count, packets=len(datagrams), seconds=seconds)

    async def answer_queries() -> None:
        """A browser's query for our service type is answered at once, with the whole
        flood: an honest responder waits 20-120 ms (RFC 6762 §6), so ours come first."""
        group = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        group.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await group.bind((MDNS_GROUP, MDNS_PORT))
        membership = socket.inet_aton(MDNS_GROUP) + socket.inet_aton(address)
        group.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        while True:
            data = await group.recv(9000)
            is_query = len(data) > 12 and not data[2] & 0x80
            if armed and is_query and b"_p2pim" in data and not flooding.locked():
                nursery.start_soon(flood, False)

    async with trio.open_nursery() as nursery:
        await nursery.start(
            trio.serve_listeners, lambda s: serve(s, counts, mode == "hold"), listeners
        )
        nursery.start_soon(answer_queries)
        report(event="listening", port=port)
        stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
        buffer = b""
        while chunk := await stdin.receive_some(4096):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line == b"flood":
                    armed = True
                    await flood(True)
                elif line == b"count":
                    report(event="connections", by_source=counts.as_json())
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3])
