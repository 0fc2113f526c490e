"""`p2pim` with no command: the terminal UI on this profile."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from p2pim import identity as ident
from p2pim.config import NodeConfig, database_path
from p2pim.control import ProfileInUse, hold_profile
from p2pim.node import Node
from p2pim.settings import Settings, who_i_am

if TYPE_CHECKING:
    from p2pim.ui.app import P2pimApp

# `kill` or a logout (SIGTERM) and a closed terminal (SIGHUP): their default action ends
# the process at once, with no goodbye (peers would see us go only at the presence
# timeout) and the terminal left in raw mode.  They quit like Ctrl+Q instead.
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def ui_config(settings: Settings, args: argparse.Namespace) -> NodeConfig:
    """The settings file, with this run's command-line options on top (the nick and the
    status: `settings.who_i_am`)."""
    host, port = args.listen
    return NodeConfig(
        listen_host=host,
        listen_port=port,
        interfaces=args.interface or settings.interfaces or None,
        discovery=not args.no_discovery,
        presence_timeout=args.presence_timeout,
        reconnect_max_delay=args.reconnect_max_delay,
        auto_away_after=settings.auto_away_minutes * 60 or None,
        download_dir=Path(settings.download_dir).expanduser(),
    )


def run_ui(profile: Path, args: argparse.Namespace) -> int:
    from p2pim.ui.app import P2pimApp  # Textual loads only when the UI runs

    try:
        with hold_profile(profile):  # first: a refused second UI changes nothing
            config = ui_config(Settings.load(profile), args)
            settings = who_i_am(profile, config, args.nick)
            node = Node(ident.load_or_create(profile), config, store_path=database_path(profile))
            app = P2pimApp(node, settings=settings, profile=profile, peers=tuple(args.peer))
            with quit_on_signals(app):
                app.run()
    except ProfileInUse as exc:
        print(f"p2pim: {exc}", file=sys.stderr)
        return 1
    return app.return_code or 0


@contextlib.contextmanager
def quit_on_signals(app: P2pimApp) -> Iterator[None]:
    """While the block runs, `QUIT_SIGNALS` and the terminal hanging up run the app's quit
    action, with a deadline after which the process ends anyway (`ui.terminal`)."""
    from p2pim.ui import terminal

    guard = terminal.QuitGuard(app)
    app.driver_class = terminal.driver_class(guard)

    def quit_soon(signum: int, frame: FrameType | None) -> None:
        # Python runs this on the main thread between two bytecodes, maybe in the middle
        # of the event loop's own code: hand the quit over to the loop, thread-safely.
        if not guard.request_quit():  # the UI is not running (yet, or any more)
            raise SystemExit(128 + signum)

    previous = {number: signal.signal(number, quit_soon) for number in QUIT_SIGNALS}
    if os.isatty(sys.__stdin__.fileno() if sys.__stdin__ else 0):
        terminal.watch_hangup(0, guard.lose_terminal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
