"""A hostile LAN host for tests: opens one TCP connection to a node and dribbles a valid
Noise handshake message 1 at one byte per INTERVAL seconds, to hold a pre-authentication
slot as long as the node lets it.

usage: dribbler.py HOST PORT INTERVAL

It reports JSON lines on stdout:

    {"event": "connected"}                       the TCP connection is up
    {"event": "dribbling", "sent": 1}            the first byte went out
    {"event": "closed", "sent": n, "seconds": t} the node closed the connection, t seconds
                                                 after the connect, n bytes into message 1
    {"event": "finished", "sent": 34, ...}       message 1 went out whole (no deadline)

Every step is bounded in time; SIGALRM ends it after LIFETIME seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

LIFETIME = 60
MESSAGE_1 = (32).to_bytes(2, "big") + os.urandom(32)  # a frame holding an ephemeral key


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def closed_by_peer(sock: socket.socket, wait: float) -> bool:
    """Did the peer close (EOF or reset) within `wait` seconds?  It never sends data to a
    dialler that has not finished message 1."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def main(host: str, port: int, interval: float) -> None:
    signal.alarm(LIFETIME)
    sock = socket.create_connection((host, port), timeout=5)
    started = time.monotonic()
    report(event="connected")
    for sent, byte in enumerate(MESSAGE_1, start=1):
        try:
            sock.send(bytes([byte]))
        except OSError:
            report(event="closed", sent=sent - 1, seconds=round(time.monotonic() - started, 3))
            return
        if sent == 1:
            report(event="dribbling", sent=1)
        if closed_by_peer(sock, interval):  # the wait between bytes is the attack's pace
            report(event="closed", sent=sent, seconds=round(time.monotonic() - started, 3))
            return
    report(event="finished", sent=len(MESSAGE_1), seconds=round(time.monotonic() - started, 3))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
