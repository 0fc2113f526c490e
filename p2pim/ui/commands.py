"""Slash commands typed in the message input (parsing only; the app runs them)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Spec:
    usage: str
    help: str
    min_args: int = 0
    rest: bool = False  # everything after the command is one argument (free text)


COMMANDS: dict[str, Spec] = {
    "status": Spec("/status online|away|busy [TEXT]", "set your status and status text", 1),
    "nick": Spec("/nick NAME", "change the name people see (they see it at once)", 1, rest=True),
    "send": Spec("/send PATH…", "offer files or folders here (no PATH: pick them)"),
    "room": Spec("/room NAME", "create a room and open it", 1, rest=True),
    "invite": Spec("/invite PEER", "invite a peer to this room", 1, rest=True),
    "join": Spec("/join", "accept this room's invitation"),
    "decline": Spec("/decline", "decline this room's invitation"),
    "leave": Spec("/leave", "leave this room"),
    "topic": Spec("/topic TEXT", "set this room's topic", 1, rest=True),
    "kick": Spec("/kick PEER", "remove a member from this room (admins)", 1, rest=True),
    "admin": Spec("/admin PEER", "make a member an admin of this room", 1, rest=True),
    "group": Spec("/group NAME [PEER…]", "create or change a contact group", 1),
    "broadcast": Spec("/broadcast TEXT", "send to everyone online", 1, rest=True),
    "verify": Spec("/verify", "compare safety numbers with this peer"),
    "block": Spec("/block [PEER]", "block this person: nothing they send reaches you", rest=True),
    "unblock": Spec("/unblock [PEER]", "unblock this person (alone: who is blocked)", rest=True),
    "mute": Spec("/mute", "no toast, bell or notification for this conversation"),
    "unmute": Spec("/unmute", "notify about this conversation again"),
    "search": Spec("/search WORDS", "search every conversation", 1, rest=True),
    "export": Spec("/export [markdown|jsonl] [FILE]", "save this conversation to a file"),
    "peer": Spec("/peer HOST:PORT", "add a peer by address (another subnet)", 1),
    "edit": Spec("/edit TEXT", "correct your last message here", 1, rest=True),
    "delete": Spec("/delete", "delete your last message here"),
    "transfers": Spec("/transfers", "show file transfers"),
    "settings": Spec("/settings", "nick, download folder, interfaces, away timer"),
    "help": Spec("/help", "keys and commands"),
    "quit": Spec("/quit", "say goodbye to peers and quit"),
}


class CommandError(ValueError):
    """The command is unknown or malformed; the message says how to use it."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: tuple[str, ...]


def parse(text: str) -> Command | None:
    """A command for text starting with one `/`; None for a message (`//x` sends "/x")."""
    if not text.startswith("/") or text.startswith("//"):
        return None
    head, _, tail = text[1:].partition(" ")
    name = head.strip().lower()
    spec = COMMANDS.get(name)
    if spec is None:
        close = [n for n in COMMANDS if n.startswith(name)] if name else []
        hint = f" (did you mean /{close[0]}?)" if len(close) == 1 else " (/help lists them)"
        raise CommandError(f"unknown command /{name}{hint}")
    if spec.rest:
        args: tuple[str, ...] = (tail.strip(),) if tail.strip() else ()
    else:
        try:
            args = tuple(shlex.split(tail))
        except ValueError as exc:
            raise CommandError(f"{spec.usage}: {exc}") from None
    if len(args) < spec.min_args:
        raise CommandError(f"usage: {spec.usage}")
    return Command(name, args)


def message_text(text: str) -> str:
    """What a non-command input sends: a leading `//` stands for a literal `/`."""
    return text[1:] if text.startswith("//") else text
