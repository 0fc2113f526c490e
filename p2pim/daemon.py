"""`p2pim daemon`: a node without a UI, scriptable over newline-delimited JSON-RPC 2.0.

It serves the control socket in the profile directory (`p2pim.control`) and, with
`--stdio`, stdin/stdout too: requests are read from stdin and responses and event
notifications (`{"method": "event", "params": {"type": ..., ...}}`) are written to
stdout, one JSON object per line.  docs/api.md lists the methods and notifications.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import trio

from p2pim import control
from p2pim import events as ev
from p2pim.node import Node
from p2pim.rpc import RpcServer, event_to_json
from p2pim.rpc_stream import JsonLineWriter, forward_events, serve_lines

log = logging.getLogger(__name__)


async def log_events(events: trio.MemoryReceiveChannel[ev.NodeEvent]) -> None:
    async for event in events:
        log.info("%s", event_to_json(event))


async def run_daemon(
    node: Node, *, stdio: bool, peers: list[tuple[str, int]], profile: Path
) -> None:
    """Run `node` until it stops (signal, `shutdown` request, or end of stdin), serving
    the profile's control socket (and stdio).

    Events are forwarded from before the node starts, so none waits in memory while the
    node already stores messages (a crash could otherwise swallow it).
    """
    events = node.subscribe()
    async with trio.open_nursery() as nursery:
        if stdio:
            writer = JsonLineWriter(trio.lowlevel.FdStream(os.dup(sys.stdout.fileno())))
            nursery.start_soon(forward_events, events, writer)
        else:
            nursery.start_soon(log_events, events)
        await nursery.start(node.run_then_cancel, nursery.cancel_scope)
        await nursery.start(control.serve_control, node, control.socket_path(profile))
        nursery.start_soon(_stop_on_signals, node)
        for host, port in peers:
            await node.add_peer(host, port)  # remembered, and redialled until it answers
        if stdio:
            stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
            await serve_lines(RpcServer(node), stdin, writer)
            await node.stop()
        else:
            print(
                f"p2pim: {node.config.nick} ({node.fingerprint[:8]}) listening on "
                f"{node.config.listen_host}:{node.port}; Ctrl-C quits",
                file=sys.stderr,
            )


async def _stop_on_signals(node: Node) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            await node.stop()
            return
