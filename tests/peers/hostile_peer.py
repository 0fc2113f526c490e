"""A hostile authenticated peer for tests: completes a genuine Noise handshake with a node
(its own fresh key), then seals one crafted plaintext in a valid AEAD frame, so that only
the node's decoder stands between the payload and the node.

usage: hostile_peer.py HOST PORT KIND

KIND is one of
    nested      60000 nested one-element msgpack arrays (a decoder recursion bomb)
    oversized   a well-formed `text` whose body is 40000 bytes (over MAX_TEXT_BYTES)
    huge-str    a `bye` whose reason claims a 4 GiB string (a length that is never sent)

It reports JSON lines on stdout:

    {"event": "established", "fingerprint": ours, "peer": theirs, "first": a message type}
    {"event": "sent", "kind": KIND, "bytes": plaintext size}
    {"event": "closed", "messages": [types the node sent after ours]}

Every step is bounded in time; SIGALRM ends it after LIFETIME seconds.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import msgpack
import trio

from p2pim.identity import Identity
from p2pim.net.link import LinkClosed, perform_handshake
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.framing import encode_frame
from p2pim.wire.messages import PROTOCOL_VERSION, Hello

LIFETIME = 60


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def payload(kind: str) -> bytes:
    if kind == "nested":
        return b"\x91" * 60_000 + b"\xc0"
    if kind == "oversized":
        text = {"t": "text", "id": os.urandom(16), "sent_at": int(time.time() * 1000)}
        return msgpack.packb({**text, "body": "x" * 40_000, "lamport": 1}, use_bin_type=True)
    if kind == "huge-str":
        return b"\x82\xa1t\xa3bye\xa6reason\xdb\xff\xff\xff\xff" + b"x" * 64
    raise SystemExit(f"unknown kind {kind!r}")


async def main(host: str, port: int, kind: str) -> None:
    signal.alarm(LIFETIME)
    own = Identity.generate()
    plaintext = payload(kind)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(host, port)
        link = await perform_handshake(
            stream,
            initiator=True,
            static_private=own.private_key,
            hello=Hello(PROTOCOL_VERSION, f"hostile-{kind}"),
            address=host,
            port=port,
        )
        # The node has adopted the session once it sends anything (a heartbeat at the
        # latest): a payload sent before could be read with handshake message 3, and
        # fail the handshake instead of the session.
        first = (await link.receive()).TYPE
    report(event="established", fingerprint=own.fingerprint, peer=link.fingerprint, first=first)
    # The link's own send() would refuse to encode this: seal it by hand, like a modified
    # client would, with the session's real send cipher.
    cipher = link._conn._send_cipher
    assert cipher is not None
    await stream.send_all(encode_frame(cipher.encrypt_with_ad(b"", plaintext)))
    report(event="sent", kind=kind, bytes=len(plaintext))
    messages = []
    with trio.move_on_after(20):
        try:
            while True:
                messages.append((await link.receive()).TYPE)
        except (LinkClosed, RemoteProtocolError):
            pass
    report(event="closed", messages=messages)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3])
