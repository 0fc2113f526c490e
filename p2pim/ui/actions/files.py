"""Files: offering files or folders to the open conversation, answering an offer (its
dialog, a file card, F3), and the transfers view."""

from __future__ import annotations

import asyncio
from pathlib import Path

from p2pim import events as ev
from p2pim.ui.actions.context import UiContext, room_of, try_call, try_do
from p2pim.ui.model import GROUP_PREFIX


async def send_paths(ui: UiContext, paths: list[str]) -> None:
    key = ui.model.current
    resolved, missing = await asyncio.to_thread(_expand, paths)  # the disk, off the UI loop
    if missing:
        ui.notify(f"No such file or folder: {missing[0]}", severity="error")
        return
    if key is None or key.startswith(GROUP_PREFIX):
        ui.notify("Open a conversation with a person or a room to send files.", severity="warning")
    elif (room := room_of(key)) is not None:
        offer = await try_call(ui, ui.node.send_files_to_room, room, resolved)
        if offer is not None:  # its card (one line per member) goes in the room
            await ui.load_transfers()
            sent = [t for t in ui.model.transfers.values() if t.offer == offer]
            if sent:
                ui.refresh_transfers(ev.OfferAnswered(sent[0].peer, offer, ()))
            ui.notify(f"Offered to {len(sent)} member(s) of the room.")
    else:
        offer = await try_call(ui, ui.node.send_files, [key], resolved)
        if offer is not None:
            await ui.load_transfers()
            ui.refresh_transfers(ev.OfferAnswered(key, offer, ()))


def _expand(paths: list[str]) -> tuple[list[str], list[str]]:
    """The paths with `~` expanded, and those of them that do not exist (as typed)."""
    missing = [p for p in paths if not Path(p).expanduser().exists()]
    return [str(Path(p).expanduser()) for p in paths], missing


def pick_files(ui: UiContext) -> None:
    from p2pim.ui.picker import FilePicker

    if ui.model.current is None or ui.model.current.startswith(GROUP_PREFIX):
        ui.notify("Open a conversation with a person or a room first.", severity="warning")
        return

    def picked(paths: object) -> None:
        if isinstance(paths, list) and paths:
            ui.spawn(send_paths(ui, paths))

    ui.show(FilePicker(Path.home()), picked)


async def send(ui: UiContext, paths: tuple[str, ...]) -> None:
    """/send PATH… offers them; /send alone picks them."""
    if paths:
        await send_paths(ui, list(paths))
    else:
        pick_files(ui)


def show_transfers(ui: UiContext) -> None:
    from p2pim.ui.transfers import TransfersScreen

    ui.show(TransfersScreen(ui.model))


def ask_offer(ui: UiContext, offer: ev.OfferReceived) -> None:
    """Open the offer modal now, unless another dialog is up (then F3 answers it)."""
    from p2pim.ui.offer import Answer, OfferScreen

    if len(ui.screen_stack) > 1:
        return
    contact = ui.model.contacts.get(offer.peer)
    trust = contact.trust if contact is not None else None

    def answered(answer: object) -> None:
        if isinstance(answer, Answer):
            ui.spawn(answer_offer(ui, offer, answer.accept, answer.directory))

    ui.show(OfferScreen(offer, trust, str(ui.node.config.download_dir)), answered)


async def answer_offer(
    ui: UiContext, offer: ev.OfferReceived, accept: bool, directory: str | None
) -> None:
    """Accept or decline; a refused accept (no space, say) leaves the offer open."""
    if accept:
        done = await try_do(ui, ui.node.accept_offer, offer.peer, offer.offer, directory=directory)
    else:
        done = await try_do(ui, ui.node.decline_offer, offer.peer, offer.offer)
    if done:
        ui.model.offers.pop((offer.peer, offer.offer), None)
        follow_dialogs(ui, None)  # an offer dialog still asking about it closes


def follow_dialogs(ui: UiContext, event: ev.NodeEvent | None) -> None:
    """Open dialogs follow what happened (an offer answered in F3, a pairing done)."""
    from p2pim.ui.dialogs import Dialog

    for screen in ui.screen_stack:
        if isinstance(screen, Dialog):
            screen.follow(event, ui.model)
