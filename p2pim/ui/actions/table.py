"""Slash commands and key actions as data: which handler each runs, and where it works.

A slash command's `needs` says what must be open for it (a room, a person, either), and
its handler gets that as its target; the rule and its refusal live here, once.  Key
bindings and palette entries name an entry of `KEY_ACTIONS` (`do('verify')`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from p2pim.ui import commands
from p2pim.ui.actions import chat, files, peers, profile, rooms
from p2pim.ui.actions.context import UiContext, chat_of, peer_of, room_of

Args = tuple[str, ...]
T = TypeVar("T")
Run = Callable[[UiContext, T, Args], Awaitable[None]]  # a handler: (ui, target, args)


@dataclass(frozen=True, slots=True)
class Needs(Generic[T]):
    """Where a command works: `target` finds it from the open conversation's key."""

    target: Callable[[str | None], T | None]
    refusal: str  # `{name}` is the command's


ROOM = Needs(room_of, "/{name} works in a room: open one first.")
PEER = Needs(peer_of, "/{name} works in a conversation with a person.")
CHAT = Needs(chat_of, "/{name} works in a conversation or a room.")


@dataclass(frozen=True, slots=True)
class Command(Generic[T]):
    """`run(ui, target, args)`: the target is what `needs` found, else the open key."""

    run: Run[T]
    needs: Needs[T] | None = None


def anywhere(run: Run[str | None]) -> Command[str | None]:
    """A command that works whatever is open (its target: the open key, or None)."""
    return Command(run)


def key_action(action: Callable[[UiContext], None]) -> Run[object]:
    """A key's action as a command without arguments (/help, /verify, …)."""

    async def run(ui: UiContext, _target: object, _args: Args) -> None:
        action(ui)

    return run


async def _quit(ui: UiContext, _key: object, _args: Args) -> None:
    await ui.action_quit()


async def _search(ui: UiContext, _key: object, args: Args) -> None:
    chat.search_for(ui, args[0])


def _first(args: Args) -> str | None:
    return args[0] if args else None


def _members(ui: UiContext, names: Args) -> list[str]:
    return [fp for name in names if (fp := peers.resolve(ui, name))]


COMMANDS: dict[str, Command[Any]] = {
    "status": anywhere(lambda ui, _, a: profile.set_status(ui, a[0], " ".join(a[1:]))),
    "nick": anywhere(lambda ui, _, a: profile.rename(ui, a[0])),
    "send": anywhere(lambda ui, _, a: files.send(ui, a)),
    "room": anywhere(lambda ui, _, a: rooms.create_room(ui, a[0])),
    "invite": Command(lambda ui, room, a: rooms.invite(ui, room, a[0]), ROOM),
    "join": Command(lambda ui, room, _: rooms.join(ui, room), ROOM),
    "decline": Command(lambda ui, room, _: rooms.decline(ui, room), ROOM),
    "leave": Command(key_action(rooms.ask_leave), ROOM),
    "topic": Command(lambda ui, room, a: rooms.set_topic(ui, room, a[0]), ROOM),
    "kick": Command(lambda ui, room, a: rooms.remove(ui, room, a[0]), ROOM),
    "admin": Command(lambda ui, room, a: rooms.make_admin(ui, room, a[0]), ROOM),
    "group": anywhere(lambda ui, _, a: rooms.save_group(ui, a[0], _members(ui, a[1:]))),
    "broadcast": anywhere(lambda ui, _, a: chat.broadcast(ui, a[0])),
    "verify": Command(key_action(peers.verify), PEER),
    "block": anywhere(lambda ui, key, a: peers.block_command(ui, True, _first(a), key)),
    "unblock": anywhere(lambda ui, key, a: peers.block_command(ui, False, _first(a), key)),
    "mute": anywhere(lambda ui, key, _: peers.set_muted(ui, key, True)),
    "unmute": anywhere(lambda ui, key, _: peers.set_muted(ui, key, False)),
    "search": anywhere(_search),
    "export": anywhere(lambda ui, _, a: chat.export(ui, *a)),
    "peer": anywhere(lambda ui, _, a: peers.add_peer(ui, a[0])),
    "edit": Command(lambda ui, key, a: chat.edit_last(ui, key, _first(a)), CHAT),
    "delete": Command(lambda ui, key, a: chat.edit_last(ui, key, _first(a)), CHAT),
    "transfers": anywhere(key_action(files.show_transfers)),
    "settings": anywhere(key_action(profile.show_settings)),
    "help": anywhere(key_action(profile.show_help)),
    "quit": anywhere(_quit),
}

# What key bindings and palette entries run, by name (`do('name')`).
KEY_ACTIONS: dict[str, Callable[[UiContext], None]] = {
    "help": profile.show_help,
    "status": profile.ask_status,
    "settings": profile.show_settings,
    "transfers": files.show_transfers,
    "send_files": files.pick_files,
    "search": chat.search,
    "broadcast": chat.ask_broadcast,
    "export": lambda ui: ui.spawn(chat.export(ui)),
    "new_room": rooms.ask_new_room,
    "invite": rooms.ask_invite,
    "leave_room": rooms.ask_leave,
    "new_group": rooms.ask_group,
    "verify": peers.verify,
    "toggle_block": peers.toggle_block,
    "toggle_mute": peers.toggle_mute,
    "add_peer": peers.ask_address,
}


async def run(ui: UiContext, text: str) -> None:
    """What Enter does with the composer's text: a command runs, a message is sent."""
    try:
        command = commands.parse(text)
    except commands.CommandError as exc:
        ui.notify(str(exc), severity="error")
        return
    if command is None:
        await chat.send_typed(ui, text)
        return
    entry = COMMANDS[command.name]
    key = ui.model.current
    target: object = key
    if entry.needs is not None:
        target = entry.needs.target(key)
        if target is None:
            ui.notify(entry.needs.refusal.format(name=command.name), severity="warning")
            return
    await entry.run(ui, target, command.args)
