"""Command line entry point: `p2pim [--profile DIR] COMMAND ...`."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import sys
from pathlib import Path

import trio

from p2pim import identity as ident
from p2pim.config import NodeConfig, default_nick, default_profile_dir
from p2pim.control import ProfileInUse, hold_profile


def parse_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """HOST:PORT, or HOST alone when there is a `default_port` (0: any port, listen only)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, "" if default_port is None else str(default_port)
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT") from None
    lowest = 0 if default_port is not None else 1
    if not host or not lowest <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a host and a port {lowest}..65535")
    return host, port


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


def seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


ONE_SHOT_EPILOG = (
    "Talks to the node running on the profile; without one, runs a node (with the node "
    "options above) just long enough. Exit status: 0 success, 1 failure, 2 bad usage or "
    "an unknown or ambiguous peer name, 130 interrupted."
)


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

    def one_shot(name: str, help: str) -> argparse.ArgumentParser:
        command = sub.add_parser(
            name, help=help, description=help, epilog=ONE_SHOT_EPILOG, parents=[node, as_json]
        )
        command.set_defaults(one_shot=True)
        return command

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
    export = sub.add_parser(
        "export", help="write one conversation as JSON Lines or Markdown", parents=[as_json]
    )
    export.add_argument("peer", help="fingerprint, fingerprint prefix or nick")
    export.add_argument("--format", choices=("jsonl", "markdown"), default="jsonl")
    export.add_argument("--output", type=Path, default=None, help="file (default: stdout)")

    peer_help = "nick, fingerprint or fingerprint prefix"
    send = one_shot("send", "send a text message (queued if the peer is offline)")
    send.add_argument(
        "name",
        metavar="PEER|GROUP|ROOM",
        help=f"{peer_help}; or a contact group or a room you are in (group:NAME, room:NAME "
        "say which)",
    )
    send.add_argument("text", metavar="TEXT", help="the message (one argument: quote it)")
    add_wait(send, 5, "how long to wait for the delivery receipt")
    send_file = one_shot("send-file", "offer files and folders, and wait until they are sent")
    send_file.add_argument("name", metavar="PEER", help=peer_help)
    send_file.add_argument("paths", metavar="PATH", nargs="+")
    send_file.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="give up (withdrawing the offer) after this long (default: never)",
    )
    peers = one_shot("peers", "list the peers this node knows")
    add_wait(peers, 2, "without a running node: how long to let peers connect")
    doctor = one_shot("doctor", "check discovery, reachability and clocks; explain problems")
    add_wait(doctor, 3, "without a running node: how long to let peers connect first")
    history = one_shot("history", "show the last messages with a peer")
    history.add_argument("name", metavar="PEER", help=peer_help)
    history.add_argument(
        "--limit", type=count, default=50, metavar="N", help="at most N messages (default 50)"
    )
    search = one_shot("search", "search every conversation (whole words)")
    search.add_argument("query", metavar="QUERY")
    search.add_argument(
        "--limit", type=count, default=50, metavar="N", help="at most N messages (default 50)"
    )
    verify = one_shot("verify", "show the safety number to compare with a peer")
    verify.add_argument("name", metavar="PEER", help=peer_help)
    verify.add_argument(
        "--yes", action="store_true", help="the numbers matched: mark the peer verified"
    )
    status = sub.add_parser(
        "status",
        help="show or set the running node's status",
        description="Show the running node's status, or set it (until that node stops).",
        parents=[as_json],
    )
    status.set_defaults(one_shot=True)
    status.add_argument("status", nargs="?", choices=("online", "away", "busy"))
    status.add_argument("text", nargs="?", default="", metavar="TEXT", help="status text")
    return parser


def add_wait(command: argparse.ArgumentParser, default: float, what: str) -> None:
    command.add_argument(
        "--wait",
        type=seconds,
        default=float(default),
        metavar="SECONDS",
        help=f"{what} (default {default:g})",
    )


def node_config(args: argparse.Namespace) -> NodeConfig:
    host, port = args.listen
    return NodeConfig(
        nick=args.nick or default_nick(),
        listen_host=host,
        listen_port=port,
        interfaces=args.interface,
        discovery=not args.no_discovery,
        presence_timeout=args.presence_timeout,
        reconnect_max_delay=args.reconnect_max_delay,
    )


def export_conversation(profile: Path, peer: str, fmt: str) -> str:
    """Read straight from the profile's database (a running node may keep writing: WAL)."""
    from p2pim.export import export
    from p2pim.names import resolve_peer
    from p2pim.storage import Database, database_path

    me = ident.load_or_create(profile)
    with Database.open(database_path(profile)) as db:
        nicks = {record.fingerprint: record.nick for record in db.peers()}
        fingerprint = resolve_peer(peer, nicks.items())
        nicks[me.fingerprint] = "me"
        return export(db.conversation(fingerprint), nicks, fingerprint, fmt)


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
        me = ident.load_or_create(profile)
        if args.json:
            print(json.dumps({"fingerprint": me.fingerprint, "short_id": me.short_id}))
        else:
            print(f"fingerprint: {ident.format_fingerprint(me.fingerprint)}")
            print(f"short id:    {me.short_id}")
        return 0
    if getattr(args, "one_shot", False):
        from p2pim import oneshot

        config = node_config(args) if args.command != "status" else NodeConfig()
        return oneshot.run(args.command, args, profile, config)
    if args.command == "daemon":
        from p2pim.daemon import run_daemon
        from p2pim.node import Node
        from p2pim.storage import database_path

        config = node_config(args)
        if args.download_dir is not None:
            config.download_dir = args.download_dir.absolute()
        try:
            node = Node(ident.load_or_create(profile), config, store_path=database_path(profile))
        except ValueError as exc:
            parser.error(str(exc))
        try:
            with hold_profile(profile):
                trio.run(
                    functools.partial(
                        run_daemon, node, stdio=args.stdio, peers=args.peer, profile=profile
                    )
                )
        except ProfileInUse as exc:
            print(f"p2pim: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "export":
        try:
            text = export_conversation(profile, args.peer, args.format)
        except ValueError as exc:  # unknown or ambiguous peer
            parser.error(str(exc))
        if args.json:  # one JSON array of the JSON Lines' objects
            text = "[" + ",".join(line for line in text.split("\n") if line) + "]\n"
        if args.output is None:
            sys.stdout.write(text)
        else:  # a conversation is private: owner-only, like the database it came from
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        return 0
    from p2pim.ui.run import run_ui

    try:
        return run_ui(profile, args)
    except ValueError as exc:  # a bad nick or option
        parser.error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
