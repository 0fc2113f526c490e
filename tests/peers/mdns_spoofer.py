"""A hostile third host for tests: forges a cache-flush mDNS response that rewrites a
known peer's records (SRV, TXT with its fingerprint hint, A) to point at this host, and
listens there with its own key.  It records every byte a dialler sends it.

usage: mdns_spoofer.py ADDRESS PORT INSTANCE SERVER FINGERPRINT NICK

ADDRESS:PORT is where it listens (and what the forged SRV/A records say); INSTANCE is the
victim's full service name (`<instance>._p2pim._tcp.local.`), SERVER its host name
(`p2pim-<short id>.local.`), FINGERPRINT and NICK what its TXT record carries.  Nothing
here asks zeroconf: the response is built byte by byte (RFC 1035 / RFC 6762) and sent
from port 5353 to 224.0.0.251, so it is exactly what any host on the LAN could send.

It reports JSON lines on stdout:

    {"event": "listening", "fingerprint": ..., "port": ...}
    {"event": "spoofed", "packets": n}          after each line read on stdin
    {"event": "connection", "source": ip, "bytes": n, "frames": k,
     "handshake_completed": bool, "messages": m, "error": str | null}

`bytes` counts everything the dialler sent; `frames` the complete length-prefixed frames
among them; `messages` any session message after a completed handshake.  Every step is
bounded in time; SIGALRM ends it should its stdin never close.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys

import trio

from p2pim.identity import Identity
from p2pim.wire.connection import Connection, Established
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import PROTOCOL_VERSION, Hello

MDNS_GROUP, MDNS_PORT = "224.0.0.251", 5353
SERVICE_TYPE = "_p2pim._tcp.local."
TYPE_A, TYPE_PTR, TYPE_TXT, TYPE_SRV = 1, 12, 16, 33
CLASS_IN, CACHE_FLUSH = 1, 0x8000
TTL_HOST, TTL_OTHER = 120, 4500
CONNECTION_LIMIT = 10.0  # seconds one dialler may keep us busy
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


def forged_response(
    instance: str, server: str, address: str, port: int, fp: str, nick: str
) -> bytes:
    """One authoritative response: the shared PTR, then the unique records, each with the
    cache-flush bit (RFC 6762 §10.2) so that receivers drop what they had cached."""
    answers = [
        record(SERVICE_TYPE, TYPE_PTR, False, TTL_OTHER, dns_name(instance)),
        record(instance, TYPE_SRV, True, TTL_HOST, srv(port, server)),
        record(instance, TYPE_TXT, True, TTL_OTHER, txt({"v": "1", "fp": fp, "nick": nick})),
        record(server, TYPE_A, True, TTL_HOST, socket.inet_aton(address)),
    ]  # fmt: skip
    header = struct.pack("!HHHHHH", 0, 0x8400, 0, len(answers), 0, 0)  # QR + AA
    return header + b"".join(answers)


def mdns_socket(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    sock.bind((address, MDNS_PORT))  # responses come from port 5353 (RFC 6762 §11)
    return sock


async def serve(stream: trio.SocketStream, own: Identity, nick: str) -> None:
    """Answer as a Noise responder with our own key; count what the dialler sends."""
    source = stream.socket.getpeername()[0]
    conn = Connection(
        initiator=False, static_private=own.private_key, hello=Hello(PROTOCOL_VERSION, nick)
    )
    received = bytearray()
    completed, messages, error = False, 0, None
    with trio.move_on_after(CONNECTION_LIMIT):
        try:
            while data := await stream.receive_some(65536):
                received += data
                for event in conn.receive_data(data):
                    if isinstance(event, Established):
                        completed = True
                    else:
                        messages += 1
                if outgoing := conn.data_to_send():
                    await stream.send_all(outgoing)
        except RemoteProtocolError as exc:
            error = str(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await trio.aclose_forcefully(stream)
    frames, offset = 0, 0
    while offset + 2 <= len(received):
        size = int.from_bytes(received[offset : offset + 2], "big")
        if offset + 2 + size > len(received):
            break
        frames, offset = frames + 1, offset + 2 + size
    report(
        event="connection",
        source=source,
        bytes=len(received),
        frames=frames,
        handshake_completed=completed,
        messages=messages,
        error=error,
    )


async def main(address: str, port: int, instance: str, server: str, fp: str, nick: str) -> None:
    signal.alarm(LIFETIME)
    own = Identity.generate()
    listeners = await trio.open_tcp_listeners(port, host=address)
    packet = forged_response(instance, server, address, port, fp, nick)
    udp = mdns_socket(address)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, lambda s: serve(s, own, nick), listeners)
        report(event="listening", fingerprint=own.fingerprint, port=port)
        stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
        sent = 0
        while await stdin.receive_some(4096):  # one forged response per line, until EOF
            udp.sendto(packet, (MDNS_GROUP, MDNS_PORT))
            sent += 1
            report(event="spoofed", packets=sent)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    address, port, instance, server, fp, nick = sys.argv[1:7]
    trio.run(main, address, int(port), instance, server, fp, nick)
