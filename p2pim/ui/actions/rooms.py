"""Rooms and contact groups: creating, inviting, joining or declining, leaving, the topic,
members' roles; and the contact groups, which are only labels for several people."""

from __future__ import annotations

from collections.abc import Sequence

from p2pim.api import ROOM_PREFIX
from p2pim.ui.actions.context import UiContext, room_of, try_call, try_do
from p2pim.ui.actions.peers import resolve
from p2pim.ui.dialogs import Confirm, PickPeers
from p2pim.ui.model import GROUP_PREFIX


async def create_room(
    ui: UiContext, name: str, topic: str = "", members: Sequence[str] = ()
) -> None:
    room = await try_call(ui, ui.node.create_room, name, topic, list(members))
    if room is None:
        return
    for info in await ui.call(ui.node.rooms):
        ui.model.set_room(info)
    ui.open_conversation(ROOM_PREFIX + room)
    invited = ", ".join(ui.model.nick(fp) for fp in members)
    ui.notify(
        f"Room #{name} created; invited {invited}."
        if members
        else f"Room #{name} created: /invite PEER asks people in."
    )


def ask_new_room(ui: UiContext) -> None:
    from p2pim.ui.new_room import NewRoom

    def made(values: object) -> None:
        if isinstance(values, tuple):
            name, topic, members = values
            ui.spawn(create_room(ui, name, topic, members))

    candidates = sorted(
        (c.nick, c.fingerprint) for c in ui.model.contacts.values() if c.trust is not None
    )
    ui.show(NewRoom(candidates), made)


async def invite(ui: UiContext, room: str, name: str) -> None:
    target = resolve(ui, name)
    if target and await try_do(ui, ui.node.invite_to_room, room, target):
        ui.notify(f"Invited {ui.model.nick(target)}.")


def ask_invite(ui: UiContext) -> None:
    room_id = room_of(ui.model.current)
    if room_id is None:
        ui.notify("Open a room first.", severity="warning")
        return
    room = ui.model.rooms[room_id]
    candidates = [
        (c.nick, c.fingerprint)
        for c in ui.model.contacts.values()
        if c.fingerprint not in room.members and c.trust is not None
    ]

    def chosen(result: object) -> None:
        if isinstance(result, tuple):
            for fp in result[1]:
                ui.spawn(try_do(ui, ui.node.invite_to_room, room.room, fp))

    ui.show(PickPeers(f"Invite to #{room.name}", candidates, ok="Invite"), chosen)


async def join(ui: UiContext, room: str) -> None:
    await try_do(ui, ui.node.join_room, room)


async def decline(ui: UiContext, room: str) -> None:
    await try_do(ui, ui.node.decline_room, room)
    ui.model.rooms.pop(room, None)
    ui.open_conversation(None)


def ask_leave(ui: UiContext) -> None:
    key = ui.model.current
    room = room_of(key)
    if key is None or room is None:
        ui.notify("Open a room first.", severity="warning")
        return

    def confirmed(yes: object) -> None:
        if yes is True:
            ui.spawn(try_do(ui, ui.node.leave_room, room))

    ui.show(Confirm(f"Leave {ui.model.title(key)}?", yes="Leave"), confirmed)


async def set_topic(ui: UiContext, room: str, topic: str) -> None:
    await try_do(ui, ui.node.set_room_topic, room, topic)


async def remove(ui: UiContext, room: str, name: str) -> None:
    if target := resolve(ui, name):
        await try_do(ui, ui.node.remove_from_room, room, target)


async def make_admin(ui: UiContext, room: str, name: str) -> None:
    if target := resolve(ui, name):
        await try_do(ui, ui.node.make_room_admin, room, target)


def ask_invitation(ui: UiContext, room: str) -> None:
    """Join / Decline / Later for a room we are invited to; not over another dialog."""
    from p2pim.ui.invitation import DECLINE, JOIN, InvitationScreen

    info = ui.model.rooms.get(room)
    if info is None or not info.invited_us or len(ui.screen_stack) > 1:
        return

    def answered(choice: object) -> None:
        if choice in (JOIN, DECLINE):
            ui.spawn(answer_invitation(ui, room, choice == JOIN))

    ui.show(InvitationScreen(room, info.name, info.inviter_nick, info.topic), answered)


def ask_if_invited(ui: UiContext, key: str) -> None:
    """The user opened `key`: an invitation there asks Join / Decline / Later (after
    the screen that picked it, if any, has gone)."""
    if (room := room_of(key)) is not None:
        ui.call_later(ask_invitation, ui, room)


async def answer_invitation(ui: UiContext, room: str, join: bool) -> None:
    if join:
        if await try_do(ui, ui.node.join_room, room):
            ui.open_conversation(ROOM_PREFIX + room)
        return
    if await try_do(ui, ui.node.decline_room, room):
        ui.model.rooms.pop(room, None)
        if ui.model.current == ROOM_PREFIX + room:
            ui.open_conversation(None)
        else:
            ui.refresh_sidebar()


async def save_group(ui: UiContext, name: str, members: list[str]) -> None:
    if await try_do(ui, ui.node.set_group, name, members):
        ui.model.groups = await ui.call(ui.node.groups)
        ui.refresh_sidebar()
        ui.notify(
            f"Group {name}: {len(members)} member(s)." if members else f"Group {name} removed."
        )


def ask_group(ui: UiContext) -> None:
    key = ui.model.current
    name = key.removeprefix(GROUP_PREFIX) if key and key.startswith(GROUP_PREFIX) else ""
    members = ui.model.groups.get(name, [])
    candidates = [
        (c.nick, c.fingerprint) for c in ui.model.contacts.values() if c.trust is not None
    ]

    def chosen(result: object) -> None:
        if isinstance(result, tuple) and result[0]:
            ui.spawn(save_group(ui, result[0], result[1]))

    ui.show(PickPeers("Contact group", candidates, selected=members, name=name, ok="Save"), chosen)
