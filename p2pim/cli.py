"""Command line entry point: `p2pim [--profile DIR] COMMAND ...`."""

from __future__ import annotations

import argparse
import functools
import logging
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p2pim", description="Serverless LAN messenger.")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help=f"profile directory (default: {default_profile_dir()})",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command")

    sub.add_parser("id", help="print this profile's identity fingerprint")

    daemon = sub.add_parser("daemon", help="run a node without UI (JSON-RPC with --stdio)")
    daemon.add_argument(
        "--stdio", action="store_true", help="serve newline-delimited JSON-RPC 2.0 on stdin/stdout"
    )
    daemon.add_argument("--nick", default=None, help="name shown to peers")
    daemon.add_argument(
        "--listen",
        default="0.0.0.0:0",
        metavar="HOST[:PORT]",
        type=lambda t: parse_host_port(t, 0),
        help="address for incoming peer connections (default 0.0.0.0, any port)",
    )
    daemon.add_argument(
        "--interface",
        action="append",
        default=None,
        metavar="NAME|IP",
        help="run mDNS on this interface (repeatable; default: all real ones)",
    )
    daemon.add_argument("--no-discovery", action="store_true", help="do not use mDNS")
    daemon.add_argument(
        "--peer",
        action="append",
        default=[],
        type=parse_host_port,
        metavar="HOST:PORT",
        help="keep a session with this peer; remembered (repeatable)",
    )
    daemon.add_argument(
        "--presence-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="a silent peer is offline after this long (default 5)",
    )
    daemon.add_argument(
        "--reconnect-max-delay",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait between attempts to reach a known peer (default 30)",
    )
    daemon.add_argument(
        "--download-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where accepted files go unless a request names a folder",
    )
    export = sub.add_parser("export", help="write one conversation as JSON Lines or Markdown")
    export.add_argument("peer", help="fingerprint, fingerprint prefix or nick")
    export.add_argument("--format", choices=("jsonl", "markdown"), default="jsonl")
    export.add_argument("--output", type=Path, default=None, help="file (default: stdout)")
    return parser


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
        print(f"fingerprint: {ident.format_fingerprint(me.fingerprint)}")
        print(f"short id:    {me.short_id}")
        return 0
    if args.command == "daemon":
        from p2pim.daemon import run_daemon
        from p2pim.node import Node
        from p2pim.storage import database_path

        host, port = args.listen
        config = NodeConfig(
            nick=args.nick or default_nick(),
            listen_host=host,
            listen_port=port,
            interfaces=args.interface,
            discovery=not args.no_discovery,
            presence_timeout=args.presence_timeout,
            reconnect_max_delay=args.reconnect_max_delay,
        )
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
        if args.output is None:
            sys.stdout.write(text)
        else:  # a conversation is private: owner-only, like the database it came from
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        return 0
    parser.print_help()
    print("\nThe terminal UI is not built yet; `p2pim daemon` runs a node.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
