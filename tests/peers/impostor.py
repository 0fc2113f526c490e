"""A hostile LAN host for tests: advertises a victim's fingerprint over mDNS but holds
its own key.  Reports every inbound connection as one JSON line on stdout.

usage: impostor.py VICTIM_PUBLIC_KEY_HEX ADDRESS
"""

from __future__ import annotations

import json
import sys

import trio

from p2pim.discovery import Discovery
from p2pim.identity import Identity
from p2pim.net.link import LinkClosed, perform_handshake
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import PROTOCOL_VERSION, Hello


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main(victim_public_hex: str, address: str) -> None:
    own = Identity.generate()
    # Discovery only reads the fingerprint from the identity: advertise the victim's.
    victim = Identity(private_key=b"", public_key=bytes.fromhex(victim_public_hex))

    async def on_connection(stream: trio.SocketStream) -> None:
        try:
            with trio.fail_after(10):
                link = await perform_handshake(
                    stream,
                    initiator=False,
                    static_private=own.private_key,
                    hello=Hello(PROTOCOL_VERSION, "victim"),
                    address="",
                )
        except (RemoteProtocolError, LinkClosed, trio.TooSlowError) as exc:
            report(event="handshake_failed", error=str(exc))
            return
        report(event="handshake_completed", peer=link.fingerprint)
        try:
            message = await link.receive()
            report(event="application_data", type=message.TYPE)
        except (RemoteProtocolError, LinkClosed):
            report(event="closed")

    listeners = await trio.open_tcp_listeners(0, host=address)
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, on_connection, listeners)
        report(event="listening", fingerprint=own.fingerprint, port=port)
        send, receive = trio.open_memory_channel[object](64)
        await nursery.start(Discovery(victim, "victim", port, [address]).run, send)
        async for _ in receive:
            pass


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
