"""People: naming one, adding one by address, blocking and muting, and verifying a key
(safety number or pairing code)."""

from __future__ import annotations

from p2pim.names import resolve_peer
from p2pim.reach import parse_address
from p2pim.ui.actions.context import UiContext, peer_of, try_call, try_do
from p2pim.ui.dialogs import Ask
from p2pim.ui.model import GROUP_PREFIX


def resolve(ui: UiContext, name: str) -> str | None:
    """A peer's fingerprint from a nick or fingerprint prefix; tells the user if not."""
    try:
        return resolve_peer(name, [(c.fingerprint, c.nick) for c in ui.model.contacts.values()])
    except ValueError as exc:
        ui.notify(str(exc), severity="error")
        return None


async def add_peer(ui: UiContext, address: str) -> None:
    try:
        host, port = parse_address(address)
    except Exception as exc:
        ui.notify(str(exc), severity="error")
        return
    if await try_do(ui, ui.node.add_peer, host, port):
        ui.notify(f"Reaching {host}:{port}; it is remembered.")


def ask_address(ui: UiContext) -> None:
    def typed(values: object) -> None:
        if isinstance(values, tuple) and values[0].strip():
            ui.spawn(add_peer(ui, values[0].strip()))

    hint = f"This node listens on port {ui.node.port}." if ui.node.port else ""
    ui.show(Ask("Add a peer by address", [("HOST:PORT", "")], hint=hint, ok="Add"), typed)


# ---- block and mute ----------------------------------------------------------------------


async def block_command(ui: UiContext, block: bool, name: str | None, key: str | None) -> None:
    """/block and /unblock: the named person, else the open conversation's; /unblock
    with neither lists who is blocked (blocked people are not in the sidebar's list)."""
    target = resolve(ui, name) if name else peer_of(key)
    if name and target is None:
        return  # resolve told the user why
    if target is None:
        blocked = [c.nick for c in ui.model.contacts.values() if c.blocked]
        if block or not blocked:
            what = "/block PEER, or open a conversation with the person"
            ui.notify(what if block else "Nobody is blocked.", severity="warning")
        else:
            ui.notify("Blocked: " + ", ".join(sorted(blocked)) + ". /unblock NAME lifts it.")
        return
    await set_blocked(ui, target, block)


async def set_blocked(ui: UiContext, peer: str, block: bool) -> None:
    if not await try_do(ui, ui.node.block if block else ui.node.unblock, peer):
        return
    ui.model.contact(peer).blocked = block
    ui.refresh_sidebar()
    nick = ui.model.nick(peer)
    if block:
        ui.notify(
            f"Blocked {nick}: their messages, files and invitations no longer reach you. "
            f"/unblock {nick} lifts it.",
            timeout=8,
        )
    else:
        ui.notify(f"Unblocked {nick}: what they send from now on arrives again.")


async def set_muted(ui: UiContext, key: str | None, mute: bool) -> None:
    if key is None or key.startswith(GROUP_PREFIX):
        ui.notify("/mute works in a conversation with a person or a room.", severity="warning")
        return
    if not await try_do(ui, ui.node.mute if mute else ui.node.unmute, key):
        return
    (ui.model.muted.add if mute else ui.model.muted.discard)(key)
    ui.refresh_sidebar()
    title = ui.model.title(key)
    ui.notify(f"Muted {title}: no more alerts." if mute else f"{title} alerts you again.")


def toggle_block(ui: UiContext) -> None:
    peer = peer_of(ui.model.current)
    if peer is None:
        ui.notify("Open a conversation with the person to block.", severity="warning")
        return
    ui.spawn(set_blocked(ui, peer, not ui.model.contact(peer).blocked))


def toggle_mute(ui: UiContext) -> None:
    key = ui.model.current
    ui.spawn(set_muted(ui, key, key not in ui.model.muted))


# ---- verifying a key ----------------------------------------------------------------------


def verify(ui: UiContext) -> None:
    peer = peer_of(ui.model.current)
    if peer is None or peer not in ui.model.contacts:
        ui.notify("Open a conversation with a person to verify them.", severity="warning")
        return
    ui.spawn(open_verify(ui, peer))


async def open_verify(ui: UiContext, peer: str) -> None:
    from p2pim.ui.verify import PairingCodeScreen, VerifyScreen, VerifyView

    number = await try_call(ui, ui.node.safety_number, peer)
    if number is None:
        return
    contact = ui.model.contacts[peer]
    view = VerifyView(
        contact.nick, peer, ui.model.me, number, contact.trust, contact.previous_fingerprint
    )
    choice = await ui.ask(VerifyScreen(view))
    if choice == "verified":
        if await try_do(ui, ui.node.verify, peer):
            ui.notify(f"{contact.nick} is verified.")
    elif choice == "show-code":
        code = await try_call(ui, ui.node.start_pairing)
        if code is not None:  # it closes by itself once they have paired
            ui.show(PairingCodeScreen(code, contact.nick, ui.node.port))
    elif choice == "enter-code":
        await pair(ui, peer, contact.nick)


async def pair(ui: UiContext, peer: str, nick: str) -> None:
    """Their code and address, typed in: both sides come out verified."""
    addresses = [r.addresses for r in await ui.call(ui.node.reachability) if r.fingerprint == peer]
    address = addresses[0][0] if addresses and addresses[0] else ""
    values = await ui.ask(
        Ask(f"Pair with {nick}", [("their code", ""), ("their HOST:PORT", address)], ok="Pair")
    )
    if isinstance(values, tuple):
        try:
            host, port = parse_address(values[1].strip())
        except Exception as exc:
            ui.notify(str(exc), severity="error")
            return
        if await try_call(ui, ui.node.pair, host, port, values[0].strip()) is not None:
            ui.notify(f"Paired: {nick} is verified on both sides.")
