"""Command line entry point: `p2pim [--profile DIR] COMMAND ...`.

Only argparse and the standard library load here: each command imports what it needs
when it runs (the one-shot commands through `ONE_SHOTS`, a table other commands join by
adding a row), so `p2pim --help` and a command talking to a running node start fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from p2pim.config import default_nick, default_profile_dir

if TYPE_CHECKING:
    from p2pim.config import NodeConfig


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
    "Talks to the node running on the profile (the UI's or `p2pim daemon`'s); without one, "
    "runs a node (with the node options above) for as long as the command runs, and says so "
    "on stderr; --no-start refuses that instead. Exit status: 0 success, 1 failure (or no "
    "node and --no-start), 2 bad usage or an unknown or ambiguous name, 3 nothing arrived "
    "in time (receive), 130 interrupted."
)
PEER_HELP = "nick, fingerprint or fingerprint prefix"
ROOM_NAMING = "room:NAME if a peer has its name"
ROOM_HELP = "the room's name, or its id or an id prefix (`p2pim room list`)"


def add_wait(command: argparse.ArgumentParser, default: float, what: str) -> None:
    command.add_argument(
        "--wait",
        type=seconds,
        default=float(default),
        metavar="SECONDS",
        help=f"{what} (default {default:g})",
    )


def add_limit(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--limit", type=count, default=50, metavar="N", help="at most N messages (default 50)"
    )


def add_text(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "text", metavar="TEXT", help="the message (one argument: quote it); - reads standard input"
    )


def add_timeout(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--timeout", type=seconds, default=None, metavar="SECONDS", help=f"{what} (default: never)"
    )


def add_into(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--into", default=None, metavar="DIR", help="save into this folder (default: the node's)"
    )


def send_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "name",
        metavar="PEER|GROUP|ROOM",
        help=f"{PEER_HELP}; or a contact group or a room you are in (group:NAME, room:NAME "
        "say which)",
    )
    add_text(command)
    add_wait(command, 5, "how long to wait for the delivery receipt")


def send_file_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("name", metavar="PEER", help=PEER_HELP)
    command.add_argument("paths", metavar="PATH", nargs="+")
    add_timeout(command, "give up (withdrawing the offer) after this long")


def receive_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "name", metavar="PEER", nargs="?", help=f"only from this peer ({PEER_HELP})"
    )
    add_into(command)
    add_timeout(command, "give up after this long: exit 3 if no offer came, else cancel, exit 1")


def conversation_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "name", metavar="PEER|ROOM", help=f"{PEER_HELP}; or a room ({ROOM_NAMING})"
    )
    add_limit(command)


def export_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "name", metavar="PEER|ROOM", help=f"{PEER_HELP}; or a room ({ROOM_NAMING})"
    )
    command.add_argument("--format", choices=("jsonl", "markdown"), default="jsonl")
    command.add_argument("--output", type=Path, default=None, help="file (default: stdout)")


def search_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("query", metavar="QUERY")
    add_limit(command)


def verify_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("name", metavar="PEER", help=PEER_HELP)
    command.add_argument(
        "--yes", action="store_true", help="the numbers matched: mark the peer verified"
    )


def status_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("status", nargs="?", choices=("online", "away", "busy"))
    command.add_argument("text", nargs="?", default="", metavar="TEXT", help="status text")


def nick_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("nick", nargs="?", metavar="NAME", help="the new name (quote it)")


def room_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("room", metavar="ROOM", help=ROOM_HELP)


def room_create_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("room", metavar="NAME", help="the room's name")
    command.add_argument("--topic", default="", help="what the room is about")
    command.add_argument(
        "--invite", action="append", default=[], metavar="PEER", help="invite (repeatable)"
    )


def room_invite_arguments(command: argparse.ArgumentParser) -> None:
    room_argument(command)
    command.add_argument("peers", metavar="PEER", nargs="+", help=PEER_HELP)


def room_post_arguments(command: argparse.ArgumentParser) -> None:
    room_argument(command)
    add_text(command)


def room_history_arguments(command: argparse.ArgumentParser) -> None:
    room_argument(command)
    add_limit(command)


def offer_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("offer", metavar="OFFER", help="the offer's id or an id prefix")


def transfer_accept_arguments(command: argparse.ArgumentParser) -> None:
    offer_argument(command)
    add_into(command)
    add_timeout(command, "cancel the transfer if it has not ended after this long")
    command.add_argument(
        "--no-wait",
        action="store_true",
        help="return once accepted; the running node downloads (without one: when one runs)",
    )


def transfer_cancel_arguments(command: argparse.ArgumentParser) -> None:
    offer_argument(command)
    command.add_argument("name", metavar="PEER", nargs="?", help="only the transfer with this peer")


def block_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "peer", nargs="?", help="nick, fingerprint or prefix (none: list who is blocked)"
    )


def mute_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "name", nargs="?", metavar="PEER|ROOM", help="a peer or a room (none: list what is muted)"
    )


def no_arguments(command: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True, slots=True)
class OneShot:
    """A one-shot command: `name` ("send", or "room post" in a group), its help, how it
    takes arguments, and `run`, "MODULE:FUNCTION" in p2pim.commands, loaded only to run
    (a function of a p2pim.oneshot.Job).  `node=False`: it reaches a node itself or does
    without, gets `(args, profile)`, and has no node options."""

    name: str
    help: str
    run: str
    arguments: Callable[[argparse.ArgumentParser], None] = no_arguments
    node: bool = True


GROUPS = {
    "room": "rooms: list, create, invite, join, decline, leave, post, history",
    "transfer": "file transfers: list, accept, decline, cancel",
}

ONE_SHOTS = [
    OneShot("send", "send a text message (queued if the peer is offline)", "chat:send",
            send_arguments),
    OneShot("send-file", "offer files and folders, and wait until they are sent",
            "files:send_file", send_file_arguments),
    OneShot("receive", "wait for a file offer, accept it, and print where the files were saved",
            "files:receive", receive_arguments),
    OneShot("peers", "list the peers this node knows", "chat:peers",
            lambda c: add_wait(c, 2, "without a running node: how long to let peers connect")),
    OneShot("doctor", "check discovery, reachability and clocks; explain problems",
            "chat:doctor",
            lambda c: add_wait(c, 3, "without a running node: how long to let peers connect")),
    OneShot("history", "show the last messages with a peer or in a room", "chat:history",
            conversation_arguments),
    OneShot("search", "search every conversation (whole words)", "chat:search",
            search_arguments),
    OneShot("export", "write a conversation or a room as JSON Lines or Markdown",
            "chat:export", export_arguments),
    OneShot("verify", "show the safety number to compare with a peer", "chat:verify",
            verify_arguments),
    OneShot("block", "block a peer: its messages, files and invitations stop reaching you",
            "block:block", block_arguments),
    OneShot("unblock", "unblock a peer: what it sends from now on arrives again",
            "block:unblock", block_arguments),
    OneShot("mute", "mute a peer or room: it still arrives, but raises no notification",
            "block:mute", mute_arguments),
    OneShot("unmute", "notify about a peer or room again", "block:unmute", mute_arguments),
    OneShot("status", "show or set the running node's status (until that node stops)",
            "chat:status", status_arguments, node=False),
    OneShot("nick", "show or change the name peers see (at once, and kept in the profile)",
            "me:nick", nick_arguments, node=False),
    OneShot("room list", "list the rooms you are in or invited to", "rooms:room_list"),
    OneShot("room create", "create a room (you are its admin)", "rooms:room_create",
            room_create_arguments),
    OneShot("room invite", "invite peers to a room", "rooms:room_invite", room_invite_arguments),
    OneShot("room join", "accept an invitation", "rooms:room_join", room_argument),
    OneShot("room decline", "decline an invitation", "rooms:room_decline", room_argument),
    OneShot("room leave", "leave a room", "rooms:room_leave", room_argument),
    OneShot("room post", "post a message to a room", "rooms:room_post", room_post_arguments),
    OneShot("room history", "show a room's last messages", "rooms:room_history",
            room_history_arguments),
    OneShot("transfer list", "list file transfers, both ways", "files:transfer_list"),
    OneShot("transfer accept", "accept a file offer and wait until it is saved",
            "files:transfer_accept", transfer_accept_arguments),
    OneShot("transfer decline", "decline a file offer", "files:transfer_decline",
            offer_argument),
    OneShot("transfer cancel", "withdraw an offer or stop a transfer, either way",
            "files:transfer_cancel", transfer_cancel_arguments),
]  # fmt: skip


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


def node_config(args: argparse.Namespace) -> NodeConfig:
    from p2pim.config import NodeConfig

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
    """A 1:1 conversation straight from the profile's database, with no node (a running
    one may keep writing: WAL).  `p2pim export` asks the node instead, for rooms too."""
    from p2pim import identity as ident
    from p2pim.export import export
    from p2pim.names import resolve_peer
    from p2pim.storage import Database, database_path

    me = ident.load_or_create(profile)
    with Database.open(database_path(profile)) as db:
        nicks = {record.fingerprint: record.nick for record in db.peers()}
        fingerprint = resolve_peer(peer, nicks.items())
        nicks[me.fingerprint] = "me"
        return export(db.conversation(fingerprint), nicks, fingerprint, fmt)


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
    from p2pim.control import ProfileInUse, hold_profile
    from p2pim.daemon import run_daemon
    from p2pim.node import Node
    from p2pim.settings import who_i_am
    from p2pim.storage import database_path

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
