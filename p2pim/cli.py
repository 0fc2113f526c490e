"""Command line entry point: `p2pim [--profile DIR] COMMAND ...`.

Only argparse and the standard library load here: each command imports what it needs
when it runs (the one-shot commands through `ONE_SHOTS` in p2pim/commands/table.py, a
table other commands join by adding a row), so `p2pim --help` and a command talking to a
running node start fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from p2pim.commands.table import GROUPS, ONE_SHOT_EPILOG, ONE_SHOTS, OneShot
from p2pim.config import default_profile_dir, node_config
from p2pim.reach import parse_address


def parse_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """`p2pim.reach.parse_address` for argparse: its refusal as a usage error."""
    try:
        return parse_address(text, default_port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def node_options() -> argparse.ArgumentParser:
    """The options of a node: `daemon`'s, and those of the temporary node a one-shot
    command runs when none runs on the profile (ignored when one does)."""
    node = argparse.ArgumentParser(add_help=False)
    node.add_argument("--nick", default=None, help="name shown to peers")
    node.add_argument(
        "--listen",
        default="0.0.0.0:0",
        metavar="HOST[:PORT]",
        type=lambda t: parse_host_port(t, 0),
        help="address for incoming peer connections (default 0.0.0.0, any port)",
    )
    node.add_argument(
        "--interface",
        action="append",
        default=None,
        metavar="NAME|IP",
        help="run mDNS on this interface (repeatable; default: all real ones)",
    )
    node.add_argument("--no-discovery", action="store_true", help="do not use mDNS")
    node.add_argument(
        "--peer",
        action="append",
        default=[],
        type=parse_host_port,
        metavar="HOST:PORT",
        help="keep a session with this peer; remembered (repeatable)",
    )
    node.add_argument(
        "--presence-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="a silent peer is offline after this long (default 5)",
    )
    node.add_argument(
        "--reconnect-max-delay",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait between attempts to reach a known peer (default 30)",
    )
    return node


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2pim",
        description="Serverless LAN messenger. Without a command: the terminal UI.",
        parents=[node_options()],
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help=f"profile directory (default: {default_profile_dir()})",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command")
    node = node_options()
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON on stdout, for scripts")
    no_start = argparse.ArgumentParser(add_help=False)
    no_start.add_argument(
        "--no-start",
        action="store_true",
        help="fail (exit 1) if no node runs on the profile, instead of running one",
    )

    sub.add_parser("id", help="print this profile's identity fingerprint", parents=[as_json])
    stdio = argparse.ArgumentParser(add_help=False)  # first, as it always was in the help
    stdio.add_argument(
        "--stdio", action="store_true", help="serve newline-delimited JSON-RPC 2.0 on stdin/stdout"
    )
    daemon = sub.add_parser(
        "daemon", help="run a node without UI (JSON-RPC with --stdio)", parents=[stdio, node]
    )
    daemon.add_argument(
        "--download-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where accepted files go unless a request names a folder",
    )
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for one in ONE_SHOTS:
        group, _, name = one.name.rpartition(" ")
        if group and group not in groups:  # listed in the help where its first row is
            parent = sub.add_parser(group, help=GROUPS[group], description=GROUPS[group])
            groups[group] = parent.add_subparsers(
                dest="subcommand", metavar="COMMAND", required=True
            )
        parents = [node, no_start, as_json] if one.node else [as_json]
        command = (groups[group] if group else sub).add_parser(
            name,
            help=one.help,
            description=one.help[0].upper() + one.help[1:] + ".",
            epilog=ONE_SHOT_EPILOG if one.node else None,
            parents=parents,
        )
        one.arguments(command)
        command.set_defaults(one_shot=one)
    return parser


def run_one_shot(one: OneShot, args: argparse.Namespace, profile: Path) -> int:
    from p2pim import oneshot

    module, _, function = one.run.partition(":")
    command = getattr(importlib.import_module(f"p2pim.commands.{module}"), function)
    if one.node:
        return oneshot.run(command, args, profile)
    return oneshot.run_direct(command, args, profile)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * args.verbose,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    profile = args.profile or default_profile_dir()
    if args.command == "id":
        from p2pim import identity as ident

        me = ident.load_or_create(profile)
        if args.json:
            print(json.dumps({"fingerprint": me.fingerprint, "short_id": me.short_id}))
        else:
            print(f"fingerprint: {ident.format_fingerprint(me.fingerprint)}")
            print(f"short id:    {me.short_id}")
        return 0
    one_shot = getattr(args, "one_shot", None)
    if isinstance(one_shot, OneShot):
        return run_one_shot(one_shot, args, profile)
    if args.command == "daemon":
        return run_daemon(parser, args, profile)
    from p2pim.ui.run import run_ui

    try:
        return run_ui(profile, args)
    except ValueError as exc:  # a bad nick or option
        parser.error(str(exc))


def run_daemon(parser: argparse.ArgumentParser, args: argparse.Namespace, profile: Path) -> int:
    import functools

    import trio

    from p2pim import identity as ident
    from p2pim.config import database_path
    from p2pim.control import ProfileInUse, hold_profile
    from p2pim.daemon import run_daemon
    from p2pim.node import Node
    from p2pim.settings import who_i_am

    config = node_config(args)
    if args.download_dir is not None:
        config.download_dir = args.download_dir.absolute()
    try:
        who_i_am(profile, config, args.nick, remember=False)  # the saved nick and status
        node = Node(ident.load_or_create(profile), config, store_path=database_path(profile))
    except ValueError as exc:
        parser.error(str(exc))
    try:
        with hold_profile(profile):
            who_i_am(profile, config, args.nick)  # the profile is ours: keep --nick, and changes
            trio.run(
                functools.partial(
                    run_daemon, node, stdio=args.stdio, peers=args.peer, profile=profile
                )
            )
    except ProfileInUse as exc:
        print(f"p2pim: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
