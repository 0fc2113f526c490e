"""An echo bot: answers every message with the same text, using the Python API.

    python examples/echo_bot.py --profile /tmp/echo-bot [--listen 127.0.0.1] [--no-discovery]

It prints "ready PORT FINGERPRINT" once it listens, then runs until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import trio

import p2pim
from p2pim.config import database_path
from p2pim.events import MessageReceived


async def main(profile: Path, listen: str, discovery: bool) -> None:
    identity = p2pim.load_or_create(profile)
    config = p2pim.NodeConfig(nick="echo-bot", listen_host=listen, discovery=discovery)
    async with p2pim.open_node(identity, config, store_path=database_path(profile)) as node:
        events = node.subscribe()
        print("ready", node.port, node.fingerprint, flush=True)
        async for event in events:
            if isinstance(event, MessageReceived):
                await node.send_text(event.sender, event.text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, required=True)
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--no-discovery", action="store_true")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the node says goodbye and exits
        trio.run(main, args.profile, args.listen, not args.no_discovery)
