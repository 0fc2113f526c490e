"""`p2pim` with no command: the terminal UI on this profile."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from p2pim import identity as ident
from p2pim.config import NodeConfig
from p2pim.control import ProfileInUse, hold_profile
from p2pim.node import Node
from p2pim.settings import Settings
from p2pim.storage import database_path


def ui_config(settings: Settings, args: argparse.Namespace) -> NodeConfig:
    """The settings file, with this run's command-line options on top."""
    host, port = args.listen
    return NodeConfig(
        nick=args.nick or settings.nick,
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

    settings = Settings.load(profile)
    node = Node(
        ident.load_or_create(profile), ui_config(settings, args), store_path=database_path(profile)
    )
    try:
        with hold_profile(profile):
            app = P2pimApp(node, settings=settings, profile=profile, peers=tuple(args.peer))
            app.run()
    except ProfileInUse as exc:
        print(f"p2pim: {exc}", file=sys.stderr)
        return 1
    return app.return_code or 0
