"""`Node`: the one public async API that the TUI, daemon, CLI, examples and tests share.

A node owns one root nursery.  It listens first, then advertises (so nobody dials a port
that is not open yet), keeps at most one session per peer identity (`sessions.Sessions`),
and keeps trying to reach the peers it knows (`reaching.Reacher`).  Sessions carry
presence: heartbeats when idle, and a peer silent for `presence_timeout` is offline.  What
it knows of its peers is `directory.PeerDirectory`; messages, transfers and rooms are
their own parts.  Everything it learns is delivered as `p2pim.events` to subscribers.
This class is the façade: it wires the parts and keeps the public methods thin.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from p2pim import blocking, discovery, events
from p2pim.api import (
    PeerBlockedError,
    PeerInfo,
    Reachability,
    RoomError,
    RoomInfo,
    StoredMessage,
    TransferInfo,
)
from p2pim.clock import parse_message_id
from p2pim.config import NodeConfig
from p2pim.delivery import Deliveries
from p2pim.directory import PeerDirectory
from p2pim.events import NodeEvent
from p2pim.history import History
from p2pim.identity import Identity
from p2pim.messaging import Messenger, check_text
from p2pim.presence import OwnPresence
from p2pim.reaching import Reacher
from p2pim.rooms.manager import Rooms, conversation
from p2pim.sessions import Sessions
from p2pim.storage import Store
from p2pim.transfer.control import Transfers
from p2pim.wire.messages import (
    MAX_NICK_BYTES,
    MAX_OFFER_TTL_MS,
    Presence,
)
from p2pim.wiring import Parts, SessionWiring

log = logging.getLogger(__name__)

SUBSCRIBER_BUFFER = 1024
PAIRING_TIMEOUT = 300.0
FLUSH_ON_STOP = 1.0  # seconds a stopping node waits for connected peers to take its outbox


class Node:
    def __init__(
        self,
        identity: Identity,
        config: NodeConfig | None = None,
        *,
        store_path: Path | None = None,
    ) -> None:
        self.identity = identity
        self.config = config or NodeConfig()
        if not 0 < len(self.config.nick.encode()) <= MAX_NICK_BYTES:
            raise ValueError(f"a nick is 1 to {MAX_NICK_BYTES} UTF-8 bytes long")
        if not 0.1 <= self.config.presence_timeout <= 3600:
            raise ValueError("the presence timeout is 0.1 to 3600 seconds")
        self.port: int | None = None
        self._store_path = store_path
        self._store: Store | None = None
        self._sessions = Sessions(identity, self.config)
        self._links = self._sessions.links  # the live session per peer, owned by _sessions
        self._peers = PeerDirectory(identity, self.config, self._links, self._emit)
        self._reacher = Reacher(self.config, self._sessions, self._peers, self._emit)
        self._mdns = discovery.InterfaceFollower(
            identity,
            self.config,
            lambda: self._me.current.status,
            lambda addresses: self._emit(events.NetworkChanged(addresses)),
        )
        self._me = OwnPresence(self.config, self._links, self._emit, self._mdns.update_status)
        self._subscribers: list[trio.MemorySendChannel[NodeEvent]] = []
        self._stopped = trio.Event()

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    # ---- life cycle -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until `stop()` (or cancellation); reports ready once listening/advertising."""
        async with Store.open(self._store_path or ":memory:") as store:
            self._store = store
            await self._peers.load(store)
            self._deliveries = Deliveries(store)
            self._messenger = Messenger(
                self.fingerprint, store, self._links, self._emit, self._deliveries
            )
            self._rooms = Rooms(self.identity, store, self._emit, self._peers.nick_of)
            self._transfers = Transfers(
                store,
                self.config,
                self._sessions,
                self._emit,
                self._deliveries,
                self._rooms.shares,
            )
            self._history = History(store, self._peers, self._rooms)
            parts = Parts(
                self._peers,
                self._reacher,
                self._deliveries,
                self._messenger,
                self._transfers,
                self._rooms,
            )
            self._wiring = SessionWiring(parts, store, self._links, self._emit)
            async with trio.open_nursery() as nursery:
                await self._rooms.start(nursery)
                self._sessions.start(
                    nursery, self._wiring.hooks(lambda: self._me.hello(self.port or 0))
                )
                self._deliveries.start(nursery, self._messenger.store_received)
                self._messenger.start(nursery)
                await self._transfers.start(nursery)
                self.port = await nursery.start(self._sessions.serve)
                await self._reacher.load(store)
                if self.config.discovery:
                    assert self.port is not None
                    send, receive = trio.open_memory_channel[discovery.DiscoveryEvent](64)
                    nursery.start_soon(self._reacher.consume_adverts, receive)  # adverts: early
                    await nursery.start(self._mdns.run, self.port, send)
                nursery.start_soon(self._reacher.run)
                nursery.start_soon(self._report_disk, store)
                self._me.start(nursery)
                task_status.started()
                try:
                    await self._stopped.wait()
                    with trio.move_on_after(FLUSH_ON_STOP):  # what was just queued goes too
                        await self._deliveries.flush()
                finally:
                    await self._sessions.goodbye_all()
                    nursery.cancel_scope.cancel()

    async def run_then_cancel(
        self, scope: trio.CancelScope, *, task_status: trio.TaskStatus[None]
    ) -> None:
        """`run`, then cancel `scope`: what serves the node (a control socket, a UI's
        calls) stops with it.  For `nursery.start(node.run_then_cancel, nursery.cancel_scope)`."""
        await self.run(task_status=task_status)
        scope.cancel()

    async def stop(self) -> None:
        """Ask `run` to exit gracefully (goodbye on every link, withdraw the mDNS record,
        stop tasks); returns at once, `run` returns when that is done."""
        self._stopped.set()

    # ---- events ------------------------------------------------------------------------

    def subscribe(self) -> trio.MemoryReceiveChannel[NodeEvent]:
        """A channel of every future event.  A subscriber that stops reading holds the node
        back (back-pressure, no silent loss); close the channel to unsubscribe."""
        send, receive = trio.open_memory_channel[NodeEvent](SUBSCRIBER_BUFFER)
        self._subscribers.append(send)
        return receive

    async def _emit(self, event: NodeEvent) -> None:
        if blocking.hidden(event, self._peers.blocked):  # the one choke point for events
            return
        for channel in list(self._subscribers):
            try:
                await channel.send(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)

    # ---- peers and presence -------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        """Every peer known from mDNS, a session, or the trust store."""
        return self._peers.peers()

    @property
    def status(self) -> Presence:
        return self._me.current

    async def set_status(self, status: str, text: str = "", *, automatic: bool = False) -> None:
        """Change our presence; every connected peer hears of it at once.  `automatic`:
        set by auto-away, so user activity may undo it (a user's choice stays)."""
        await self._me.set_status(status, text, automatic=automatic)

    async def set_nick(self, nick: str) -> None:
        """Change our nick: connected peers see it at once (a `presence` carrying it), the
        mDNS record is re-announced with it, and the profile (if any) keeps it."""
        await self._me.set_nick(nick)

    def set_download_dir(self, folder: Path) -> None:
        """Where accepted files go from now on (read at each accept; the profile's
        settings keep it for the next start)."""
        self.config.download_dir = folder

    def note_activity(self) -> None:
        """The user did something (the UI calls this): resets the auto-away clock."""
        self._me.note_activity()

    # ---- trust and pairing --------------------------------------------------------------

    def safety_number(self, peer: str) -> str:
        """60 digits to compare out of band; identical on both sides."""
        return self._peers.safety_number(peer)

    async def verify(self, peer: str) -> None:
        """The user confirmed this key (safety number compared): trust it, lift a key-change
        block."""
        await self._peers.verify(peer)

    def start_pairing(self, timeout: float = PAIRING_TIMEOUT) -> str:
        """A one-time code for the other side's `pair()`.  It allows ONE attempt: a wrong
        guess burns it, so a code cannot be brute-forced even online."""
        return self._sessions.offer_pairing(timeout)

    async def pair(self, host: str, port: int, code: str) -> str:
        """Pair with the node at host:port showing `code`; both sides end up verified."""
        return await self._sessions.pair(host, port, code)

    # ---- manual peers and reachability ---------------------------------------------------

    async def add_peer(self, host: str, port: int) -> None:
        """Keep a session with whoever listens at host:port (remembered across restarts)."""
        await self._reacher.add_manual(host, port)

    async def remove_peer(self, host: str, port: int) -> None:
        await self._reacher.remove_manual(host, port)

    def reachability(self) -> list[Reachability]:
        return self._reacher.reachability()

    def interfaces(self) -> list[discovery.InterfaceState]:
        """The addresses mDNS runs on, with their flags: none when discovery is off, or
        when there is no network (`stats()["no_network"]`)."""
        return self._mdns.interface_states()

    def stats(self) -> dict[str, int]:
        """Table sizes, so operators and tests can see every bound holding."""
        mdns = self._mdns.statistics()
        return {
            **dataclasses.asdict(self._sessions.statistics()),
            **dataclasses.asdict(self._peers.statistics()),  # known_peers, adverts, blocked_dropped
            "reach_targets": self._reacher.statistics().targets,
            "mdns_changes_dropped": mdns.changes_dropped,
            "transfer_bytes_sent": self._transfers.bytes_sent,
            "transfer_bytes_received": self._transfers.bytes_received,
            "rooms": len(self._rooms.rooms()),
            "room_events_rejected": self._rooms.rejected,
            # Health, 1 or 0: mDNS has no address to run on; the profile's disk is full.
            "no_network": int(self.config.discovery and not mdns.addresses),
            "disk_full": int(self._store is not None and self._store.disk_full),
        }

    async def _report_disk(self, store: Store) -> None:
        """`DiskFullChanged` whenever the profile's disk fills up or takes writes again."""
        reported = False
        while True:
            reported = await store.disk_full_differs(reported)
            log.log(logging.WARNING if reported else logging.INFO, "disk full: %s", reported)
            await self._emit(events.DiskFullChanged(reported))

    # ---- sending ------------------------------------------------------------------------

    async def send_text(self, peer: str, text: str) -> str:
        """Send `text` to the peer with fingerprint `peer`; returns the message id (hex).

        On return the message is on disk and queued: it is delivered (and acknowledged,
        see `MessageDelivered`) as soon as the peer is reachable, even after restarts.
        """
        self._peers.check_sendable(peer)
        if peer in self._peers.blocked:  # its answers would never show: say so instead
            raise PeerBlockedError(
                f"you blocked {self._peers.nick_of(peer)}: unblock them to send a message"
            )
        return (await self._messenger.send_text(peer, text)).hex()

    def is_connected(self, peer: str) -> bool:
        return peer in self._links

    async def edit(self, peer: str, message_id: str, text: str) -> None:
        """Replace the text of one of our messages to `peer` (propagates like a message)."""
        self._peers.check_sendable(peer)
        await self._messenger.edit(peer, bytes.fromhex(message_id), text)

    async def delete(self, peer: str, message_id: str) -> None:
        self._peers.check_sendable(peer)
        await self._messenger.delete(peer, bytes.fromhex(message_id))

    async def mark_read(self, peer: str, up_to: str | None = None) -> list[str]:
        """The user has seen the conversation (up to a message): tell the peer, durably."""
        ids = await self._messenger.mark_read(peer, bytes.fromhex(up_to) if up_to else None)
        return [i.hex() for i in ids]

    async def set_typing(self, peer: str, active: bool = True) -> None:
        await self._messenger.set_typing(peer, active, self.config.presence_timeout)

    async def history(
        self, peer: str, *, before: str | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        """The conversation's `limit` messages before `before` (newest if None), oldest first.
        In a room, posts by peers we blocked are left out (they stay in the room's log)."""
        anchor = bytes.fromhex(before) if before else None
        return await self._history.messages(peer, anchor, limit)

    async def search(self, query: str, *, limit: int = 50) -> list[StoredMessage]:
        """Full-text search across every conversation, best match first (nothing written
        by a peer we blocked)."""
        return await self._history.search(query, limit)

    # ---- files --------------------------------------------------------------------------

    async def send_files(
        self,
        peers: Sequence[str],
        paths: Sequence[str | os.PathLike[str]],
        *,
        ttl: float | None = None,
    ) -> str:
        """Offer files and folders to one or more peers; returns the offer id (hex).

        Every file is hashed first (the offer carries the hashes).  On return the offer is
        on disk and queued like a message; each peer accepts or declines on its own, and
        `TransferProgress` / `TransferFinished` events follow per peer.
        """
        for peer in peers:
            self._peers.check_sendable(peer)
        local, ttl = [os.fspath(p) for p in paths], self._offer_ttl(ttl)
        return (await self._transfers.send_files(list(peers), local, ttl)).hex()

    def _offer_ttl(self, ttl: float | None) -> float:
        ttl = self.config.offer_ttl if ttl is None else ttl
        if not 1 <= ttl <= MAX_OFFER_TTL_MS / 1000:
            raise ValueError(f"an offer lives 1 to {MAX_OFFER_TTL_MS // 1000} seconds")
        return ttl

    async def accept_offer(
        self,
        peer: str,
        offer: str,
        *,
        files: Sequence[int] | None = None,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        """Accept an offer (all files, or those of `files`) into `directory` (default:
        the configured download folder).  Raises TransferError if it cannot be."""
        folder = os.fspath(directory) if directory is not None else None
        await self._transfers.accept(peer, bytes.fromhex(offer), files, folder)

    async def decline_offer(self, peer: str, offer: str) -> None:
        await self._transfers.decline(peer, bytes.fromhex(offer))

    async def cancel_transfer(self, peer: str, offer: str) -> None:
        """Stop a transfer either way; the peer is told, partial files are removed."""
        await self._transfers.cancel(peer, bytes.fromhex(offer))

    async def transfers(self) -> list[TransferInfo]:
        """Every transfer, newest first, with per-file state."""
        return await self._transfers.transfers()

    # ---- rooms, contact groups, broadcast ------------------------------------------------

    async def create_room(self, name: str, topic: str = "", members: Sequence[str] = ()) -> str:
        """A new room with us as its only member and admin, and `members` (known peers'
        fingerprints) invited; returns its id (hex).  Every peer is checked before the room
        is made, so a refused peer leaves no half-made room behind."""
        for peer in members:
            self._peers.check_sendable(peer)
        room = await self._rooms.create(name, topic)
        for peer in dict.fromkeys(members):
            await self._rooms.invite(room, self._peers.public_key(peer))
        return room.hex()

    async def invite_to_room(self, room: str, peer: str) -> None:
        """Invite a known peer (members may invite); it accepts with `join_room`."""
        self._peers.check_sendable(peer)
        await self._rooms.invite(self._room(room), self._peers.public_key(peer))

    async def join_room(self, room: str) -> None:
        await self._rooms.join(self._room(room))

    async def decline_room(self, room: str) -> None:
        await self._rooms.decline(self._room(room))

    async def leave_room(self, room: str) -> None:
        await self._rooms.leave(self._room(room))

    async def remove_from_room(self, room: str, peer: str) -> None:
        """Admins only: `peer` stops being a member (or invitee) and receives nothing new."""
        await self._rooms.remove(self._room(room), peer)

    async def make_room_admin(self, room: str, peer: str) -> None:
        await self._rooms.make_admin(self._room(room), peer)

    async def set_room_topic(self, room: str, topic: str) -> None:
        await self._rooms.set_topic(self._room(room), topic)

    async def post_to_room(self, room: str, text: str) -> str:
        """Post to a room we are a member of; returns the message id (hex).  Online members
        get it at once; the others when they next meet any member who has it."""
        return (await self._rooms.post(self._room(room), text)).hex()

    async def edit_room_post(self, room: str, message_id: str, text: str) -> None:
        """Replace the text of one of our posts, for every member (a signed room-log
        operation: only a post's author can edit it)."""
        await self._rooms.edit(self._room(room), parse_message_id(message_id), text)

    async def delete_room_post(self, room: str, message_id: str) -> None:
        """Withdraw one of our posts for every member (a signed room-log operation)."""
        await self._rooms.delete(self._room(room), parse_message_id(message_id))

    def rooms(self) -> list[RoomInfo]:
        return self._rooms.rooms()

    async def room_history(
        self, room: str, *, before: str | None = None, limit: int = 50, system: bool = False
    ) -> list[StoredMessage]:
        """A room's messages, in the order every member shows them (oldest first).  With
        `system`, its system lines too ("alice joined"...: `p2pim.api.Notice`,
        a StoredMessage with a `kind`), and `before` may be a line's id."""
        room_id = self._room(room)
        if not system:
            return await self.history(conversation(room_id), before=before, limit=limit)
        return await self._history.room(
            room_id, parse_message_id(before) if before else None, limit
        )

    async def send_files_to_room(
        self, room: str, paths: Sequence[str | os.PathLike[str]], *, ttl: float | None = None
    ) -> str:
        """Offer files in the room to every other member, shown there on every side; each
        accepts or declines on its own.  A member we never met gets it when we first meet
        (the room's log vouches for its key); one whose key changed unverified does not."""
        room_id = self._room(room)
        members = [fp for fp in self._rooms.members(room_id) if not self._peers.key_changed(fp)]
        if not members:
            raise RoomError("nobody else is in that room")
        local, ttl = [os.fspath(p) for p in paths], self._offer_ttl(ttl)
        return (await self._transfers.send_files(members, local, ttl, room_id)).hex()

    async def export(
        self, *, peer: str | None = None, room: str | None = None, fmt: str = "jsonl"
    ) -> str:
        """A whole conversation (with a peer, or a room) as JSON Lines or Markdown."""
        if room is not None and peer is None:
            return await self._history.export(conversation(self._room(room)), fmt)
        if peer is not None and room is None:
            return await self._history.export(peer, fmt)
        raise ValueError("export a peer's conversation or a room's")

    def _room(self, room: str) -> bytes:
        return self._rooms.find(room)

    async def set_group(self, name: str, members: Sequence[str]) -> None:
        """A contact group: a local label on peers (no members: the group goes)."""
        await self._peers.set_group(name, members)

    async def groups(self) -> dict[str, list[str]]:
        return await self._peers.groups()

    async def send_to_group(self, name: str, text: str) -> dict[str, str]:
        """One direct message to each member (1:1: its own id, delivery and read receipts)."""
        members = (await self.groups()).get(name)
        if not members:
            raise ValueError(f"no contact group named {name!r}")
        for peer in members:  # all or none: a refused member stops the whole send
            self._peers.check_sendable(peer)
        return {peer: await self.send_text(peer, text) for peer in members}

    async def broadcast(self, text: str) -> dict[str, str]:
        """An announcement: one direct message to every peer online now (kept in history
        on both sides, like any message)."""
        check_text(text)  # even when nobody is online to send it to
        sendable = [fp for fp in self._links if self._peers.may_message(fp)]
        return {peer: await self.send_text(peer, text) for peer in sendable}

    async def connect(self, host: str, port: int, expected_fingerprint: str | None = None) -> str:
        """Dial `host:port` and return the authenticated peer's fingerprint.

        With `expected_fingerprint`, a peer holding any other key is dropped during the
        handshake, before we reveal our identity or send any data (PeerRejectedError).
        """
        return await self._sessions.dial(host, port, expected_fingerprint=expected_fingerprint)

    # ---- block and mute (decisions: p2pim.blocking) --------------------------------------

    async def block(self, peer: str) -> None:
        """Block a peer by fingerprint (known or not): from now on its texts, edits, read
        receipts, file offers and room invitations are dropped before they are stored or
        shown; its session stays up (see p2pim.blocking for why).  Persists."""
        await self._peers.block(peer)

    async def unblock(self, peer: str) -> None:
        """What the peer sends from now on arrives again (what it sent meanwhile is gone)."""
        await self._peers.unblock(peer)

    def blocked(self) -> list[str]:
        """The fingerprints we blocked."""
        return sorted(self._peers.blocked)

    def is_blocked(self, peer: str) -> bool:
        return peer in self._peers.blocked

    async def mute(self, conversation: str) -> None:
        """Mute a conversation (a peer's fingerprint, or `room:<hex>`): everything still
        arrives and is stored, but faces raise no notification for it.  Persists."""
        await self._peers.mute(conversation)

    async def unmute(self, conversation: str) -> None:
        await self._peers.unmute(conversation)

    def muted(self) -> list[str]:
        """The muted conversations: fingerprints and `room:<hex>` names."""
        return sorted(self._peers.muted)

    def is_muted(self, conversation: str) -> bool:
        return conversation in self._peers.muted

    def room_conversation(self, room: str) -> str:
        """`room:<hex>` for a room named by id, id prefix or name (for `mute`)."""
        return conversation(self._room(room))


@asynccontextmanager
async def open_node(
    identity: Identity, config: NodeConfig | None = None, *, store_path: Path | None = None
) -> AsyncIterator[Node]:
    """Run a node for the duration of the block; leaving it says goodbye to every peer."""
    node = Node(identity, config, store_path=store_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        try:
            yield node
        finally:
            await node.stop()
