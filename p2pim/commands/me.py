"""`p2pim nick`: show or change the name peers see, on the running node and in the profile."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from p2pim import terminal
from p2pim.oneshot import OK, USAGE, CommandError, running_node_client
from p2pim.profile import node_running


def nick(args: argparse.Namespace, profile: Path) -> int:
    """A running node changes its name at once (its peers see it without a restart) and
    keeps it; without one, the profile keeps it for the next start.  Never runs a node."""
    from p2pim.config import default_nick
    from p2pim.settings import Settings, check_nick

    if args.nick is not None and (problem := check_nick(args.nick)) is not None:
        raise CommandError(problem, USAGE)
    if node_running(profile):
        with running_node_client(profile) as rpc:
            if args.nick is not None:
                rpc.call("set_nick", nick=args.nick)
            name, running = str(rpc.call("identity")["nick"]), True
    else:
        if args.nick is not None:
            Settings.remember(profile, nick=args.nick)
        name, running = Settings.load(profile).nick or default_nick(), False
    if args.json:
        print(json.dumps({"nick": name, "running": running}))
    else:
        print(terminal.clean(name) + ("" if running else " (no node runs: from its next start)"))
    return OK
