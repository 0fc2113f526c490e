"""Messages: sending what was typed (or offering it as a file), editing and deleting the
last one, broadcasting, exporting a conversation, searching and jumping to a hit."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

from p2pim.api import StoredMessage
from p2pim.clock import now_ms
from p2pim.ui import commands, long_text
from p2pim.ui import format as fmt
from p2pim.ui.actions import files
from p2pim.ui.actions.context import UiContext, room_of, try_call, try_do
from p2pim.ui.dialogs import Confirm
from p2pim.ui.model import GROUP_PREFIX

SEARCH_LIMIT = 100  # hits listed for one search
JUMP_PAGE = 500  # messages loaded at a time when a search jumps to an old one


async def send_typed(ui: UiContext, text: str) -> None:
    """A message typed in the composer (commands are the table's): to the open
    conversation, or offered as a text file when too long for a message."""
    key = ui.model.current
    if key is None:
        ui.notify("Pick a person, room or group on the left first.", severity="warning")
        return
    body = commands.message_text(text)
    if long_text.too_long(body):
        ui.spawn(offer_as_file(ui, key, text, body))
        return
    await send_message(ui, key, body)


async def offer_as_file(ui: UiContext, key: str, typed: str, body: str) -> None:
    """Too long for a message: the text goes back into the input, and the person
    chooses to send it as a text file or to keep editing."""
    composer = ui.composer
    composer.load_text(typed)
    composer.move_cursor(composer.document.end)
    if key.startswith(GROUP_PREFIX):
        ui.notify(
            f"Too long for a message ({fmt.size(len(body.encode()))}) and a group takes "
            "no files: shorten it, or send it as a file to each person.",
            severity="warning",
            timeout=10,
        )
        return
    answer = await ui.ask(
        Confirm(long_text.question(body), yes="Send as a file", no="Keep editing")
    )
    if answer is not True:
        return
    folder = (ui.profile or ui.node.config.download_dir) / long_text.OUTGOING
    try:
        path = await asyncio.to_thread(long_text.write_text_file, folder, body)
    except OSError as exc:
        ui.notify(f"Could not write the text file: {exc.strerror}", severity="error")
        return
    if composer.text == typed:  # unless they went on editing meanwhile
        composer.load_text("")
    await files.send_paths(ui, [str(path)])


async def send_message(ui: UiContext, key: str, text: str) -> None:
    if key.startswith(GROUP_PREFIX):
        sent = await try_call(ui, ui.node.send_to_group, key.removeprefix(GROUP_PREFIX), text)
        if sent is not None:
            # One line for the group, with an id of its own: that of one member's copy
            # (a clock-based id repeats when two sends fall in the same millisecond).
            line_id = "g" + next(iter(sent.values()))
            ui.model.add_own(key, line_id, text, now_ms(), "sent")
            show_own(ui, key, line_id)
            ui.notify(f"Sent to {len(sent)} member(s).")
        return
    if (room := room_of(key)) is not None:
        message_id = await try_call(ui, ui.node.post_to_room, room, text)
        if message_id is not None:
            ui.model.add_own(key, message_id, text, now_ms(), "")
            show_own(ui, key, message_id)
        return
    message_id = await try_call(ui, ui.node.send_text, key, text)
    if message_id is None:
        return
    connected = await ui.call(ui.node.is_connected, key)
    ui.model.add_own(key, message_id, text, now_ms(), "sent" if connected else "queued")
    show_own(ui, key, message_id)
    if not connected:
        ui.notify(f"{ui.model.nick(key)} is offline: queued, it goes when they are back.")


def show_own(ui: UiContext, key: str, message_id: str) -> None:
    """Append a line we just sent to the open view.  Not a rebuild of the view: that
    remounts every line under the id it still has while the old widgets are being
    removed (DuplicateIds), and it would scroll away from what the user reads."""
    view = ui.view
    lines = ui.model.conversations.get(key, [])
    line = next((x for x in reversed(lines) if x.message_id == message_id), None)
    if line is not None and view.key == key and not view.query(f"#m-{message_id}"):
        view.append(line)


async def edit_last(ui: UiContext, key: str, text: str | None) -> None:
    """/edit TEXT or /delete: the last message we wrote here, with a person or in a
    room (there, a signed operation of the room's log that every member applies)."""
    own = [
        line
        for line in ui.model.conversations.get(key, [])
        if line.outgoing and not line.deleted and not line.system
    ]
    if not own:
        ui.notify("You have sent nothing here yet.", severity="warning")
        return
    last = own[-1].message_id
    room = room_of(key)
    # Shown here only once the node took it: a refused edit (too long, say) changes nothing.
    if text is None:
        if room is not None:
            done = await try_do(ui, ui.node.delete_room_post, room, last)
        else:
            done = await try_do(ui, ui.node.delete, key, last)
    elif room is not None:
        done = await try_do(ui, ui.node.edit_room_post, room, last, text)
    else:
        done = await try_do(ui, ui.node.edit, key, last, text)
    if not done:
        return
    ui.model.change_own(key, last, text)
    ui.view.patch(own[-1])  # that line only, as for a peer's edit


async def broadcast(ui: UiContext, text: str) -> None:
    sent = await try_call(ui, ui.node.broadcast, text)
    if sent is not None:
        ui.notify(f"Broadcast to {len(sent)} peer(s) online.")


def ask_broadcast(ui: UiContext) -> None:
    def typed(values: object) -> None:
        if isinstance(values, tuple) and values[0].strip():
            ui.spawn(broadcast(ui, values[0]))

    from p2pim.ui.dialogs import Ask

    ui.show(Ask("Broadcast to everyone online", [("message", "")], ok="Send"), typed)


async def export(ui: UiContext, *args: str) -> None:
    key = ui.model.current
    if key is None or key.startswith(GROUP_PREFIX):
        ui.notify("Open a conversation to export it.", severity="warning")
        return
    fmt_name = args[0] if args else "markdown"
    if fmt_name not in ("markdown", "jsonl"):
        ui.notify("usage: /export [markdown|jsonl] [FILE]", severity="error")
        return
    suffix = "md" if fmt_name == "markdown" else "jsonl"
    # The default name comes from a peer-chosen nick: no separators, no "..", no dotfile.
    name = re.sub(r"[^\w-]+", "_", ui.model.title(key)).strip("_") or "conversation"
    default = ui.node.config.download_dir / f"{name}.{suffix}"
    target = await asyncio.to_thread(lambda: Path(args[1]).expanduser()) if args[1:] else default
    # Node.export takes keyword arguments only: a peer's conversation or a room's.
    if (room := room_of(key)) is not None:
        text = await try_call(ui, ui.node.export, room=room, fmt=fmt_name)
    else:
        text = await try_call(ui, ui.node.export, peer=key, fmt=fmt_name)
    if text is None:
        return
    try:
        await asyncio.to_thread(_write_private, target, text)
    except OSError as exc:
        ui.notify(f"Could not write {target}: {exc.strerror}", severity="error")
        return
    ui.notify(f"Saved to {target}")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def search(ui: UiContext) -> None:
    search_for(ui, "")


def search_for(ui: UiContext, query: str) -> None:
    from p2pim.ui.search import SearchScreen

    def jump(hit: object) -> None:
        if isinstance(hit, tuple):
            ui.spawn(jump_to(ui, *hit))

    async def find(words: str) -> list[StoredMessage]:
        return await ui.call(ui.node.search, words, limit=SEARCH_LIMIT)

    ui.show(SearchScreen(find, ui.model, query), jump)


async def jump_to(ui: UiContext, key: str, message_id: str) -> None:
    await ui.open_now(key)
    view = ui.view
    # An old message: pages further back are loaded until it is among them.
    while not view.highlight(message_id):
        if view.key != key or not await ui.load_older(key, JUMP_PAGE):
            ui.notify("That message is no longer in this conversation.", severity="warning")
            return


async def desktop_notify(title: str, text: str) -> None:
    program = shutil.which("notify-send")
    if program is None:
        return
    process = await asyncio.create_subprocess_exec(
        program,
        "--app-name=p2pim",
        title,
        text,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await process.wait()
