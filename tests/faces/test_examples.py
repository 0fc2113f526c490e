"""Every example runs, for real, against a real node (loopback only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

from p2pim import Identity, open_node
from p2pim.events import MessageReceived
from tests.support import REPO
from tests.support.nodes import loopback_config, next_event

EXAMPLES = REPO / "examples"


async def test_echo_bot_answers(tmp_path: Path, identity: Identity) -> None:
    argv = [sys.executable, str(EXAMPLES / "echo_bot.py"), "--profile", str(tmp_path / "bot")]
    argv += ["--listen", "127.0.0.1", "--no-discovery"]
    bot = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE)
    try:
        assert bot.stdout is not None
        with trio.fail_after(20):
            line = b""
            while not line.endswith(b"\n"):
                line += await bot.stdout.receive_some(1)
        _, port, fingerprint = line.decode().split()
        async with open_node(identity, loopback_config("user")) as user:
            events = user.subscribe()
            await user.connect("127.0.0.1", int(port), fingerprint)
            await user.send_text(fingerprint, "ping ✓")
            echo = await next_event(events, lambda e: isinstance(e, MessageReceived))
            assert (echo.sender, echo.text) == (fingerprint, "ping ✓")  # type: ignore[union-attr]
    finally:
        bot.terminate()
        await bot.wait()
