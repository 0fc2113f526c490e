"""The one-shot commands as a table: each row names a command, its help, how it takes
arguments, and the function in p2pim.commands that runs it (loaded only then).  Only
argparse and the standard library here: `p2pim --help` builds its parser from this."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


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
    OneShot("search", "search every conversation (each word a word start)", "chat:search",
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
