"""A hostile LAN host for tests: opens many TCP connections to a node and never sends a
byte, to hold its pre-authentication slots.

usage: flooder.py HOST PORT COUNT [SOURCE_ADDRESS ...]

Connections are spread round-robin over the SOURCE_ADDRESSes (default: whatever the
kernel picks).  Once every connect was attempted and the server's reaction has settled,
one JSON line reports it:

    {"event": "flooding", "opened": n, "refused_or_closed": m, "open": n - m', ...}

`opened` counts completed TCP connects; `refused_or_closed` counts connects that failed
plus connections the server closed (EOF or reset) within moments.  The sockets that are
still open stay open until stdin closes; then `{"event": "done", ...}` reports how many
the server closed meanwhile, and the flooder exits.  Every step is bounded in time.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time

CONNECT_TIMEOUT = 2.0  # one connect; on a LAN it takes well under a millisecond
CONNECT_PHASE_MAX = 10.0  # all connects; those not attempted by then are reported skipped
SETTLE_QUIET = 0.5  # the server's reaction is over once no socket closed for this long
SETTLE_MAX = 3.0  # ...or after this long: below a node's handshake timeout (5 s)
LIFETIME = 120  # SIGALRM kills the flooder should its stdin never close


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def closed_by_server(sock: socket.socket) -> bool:
    """Is this readable socket at EOF (or reset)?  The server never sends pre-auth data."""
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:  # ECONNRESET and friends
        return True


def main(host: str, port: int, count: int, sources: list[str]) -> None:
    signal.alarm(LIFETIME)
    selector = selectors.DefaultSelector()
    open_socks: set[socket.socket] = set()
    opened = refused = closed = 0
    started = time.monotonic()

    def reap(timeout: float) -> int:
        """Drop sockets the server has closed; returns how many."""
        n = 0
        for key, _ in selector.select(timeout):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if closed_by_server(sock):
                selector.unregister(sock)
                open_socks.discard(sock)
                sock.close()
                n += 1
        return n

    attempted = 0
    for i in range(count):
        if time.monotonic() - started > CONNECT_PHASE_MAX:
            break
        attempted += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            if sources:
                sock.bind((sources[i % len(sources)], 0))
            sock.connect((host, port))
        except OSError:
            sock.close()
            refused += 1
            continue
        opened += 1
        sock.setblocking(False)
        open_socks.add(sock)
        selector.register(sock, selectors.EVENT_READ)
        closed += reap(0)
    connected_in = time.monotonic() - started

    settle_deadline = time.monotonic() + SETTLE_MAX
    last_close = time.monotonic()
    while (now := time.monotonic()) < settle_deadline and now - last_close < SETTLE_QUIET:
        n = reap(min(SETTLE_QUIET, settle_deadline - now))
        if n:
            closed += n
            last_close = time.monotonic()
    report(
        event="flooding",
        opened=opened,
        skipped=count - attempted,
        refused_or_closed=refused + closed,
        refused=refused,
        closed=closed,
        open=len(open_socks),
        connect_seconds=round(connected_in, 3),
        seconds=round(time.monotonic() - started, 3),
    )

    os.read(sys.stdin.fileno(), 1)  # EOF (or anything) on stdin: stop holding them
    closed_later = reap(0)  # e.g. by the server's handshake timeout
    held = len(open_socks)
    for sock in open_socks:
        sock.close()
    report(event="done", closed_later=closed_later, held=held)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
