"""`Node`: the one public async API that the TUI, daemon, CLI, examples and tests share.

A node owns one root nursery.  It listens first, then advertises (so nobody dials a port
that is not open yet), keeps at most one session per peer identity, and keeps trying to
reach the peers it knows (`reach.ReachPlanner`).  Sessions carry presence: heartbeats
when idle, and a peer silent for `presence_timeout` is offline.  Everything it learns is
delivered as `p2pim.events` to subscribers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from p2pim import blocking, discovery, events, trust
from p2pim.api import ROOM_PREFIX, PeerKeyChangedError, PeerRejectedError, StoredMessage
from p2pim.config import NodeConfig
from p2pim.events import NodeEvent
from p2pim.export import export
from p2pim.identity import Identity, fingerprint, safety_number
from p2pim.messaging import (
    STORE_RETRY_FIRST,
    STORE_RETRY_MAX,
    Messenger,
    check_text,
    now_ms,
    pause_for_space,
)
from p2pim.net.link import LinkClosed, PeerLink
from p2pim.presence import AutoAway
from p2pim.reach import Address, ReachPlanner, Source, Target, dialable
from p2pim.rooms import timeline
from p2pim.rooms.manager import RoomError, RoomInfo, Rooms, conversation
from p2pim.sessions import SessionHooks, Sessions, classify_dial_error
from p2pim.settings import Settings, check_nick
from p2pim.storage import PeerRecord, StorageError, StorageFull, Store
from p2pim.transfer.manager import TransferInfo, Transfers
from p2pim.wire import pake
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import (
    BYE_BUSY,
    MAX_EXCHANGED_PEERS,
    MAX_HOST_BYTES,
    MAX_NICK_BYTES,
    MAX_OFFER_TTL_MS,
    MAX_STATUS_TEXT_BYTES,
    PAYLOAD_ONLY,
    PROTOCOL_VERSION,
    STATUSES,
    TRANSFER_ONLY,
    Hello,
    Message,
    PeerAddress,
    PeerList,
    Presence,
    RoomEvent,
)

log = logging.getLogger(__name__)

MAX_KNOWN_ADVERTS = 1024
INTERFACE_POLL = 2.0  # seconds between looks at the mDNS interfaces' addresses
MAX_ADVERTS_PER_ADDRESS = 16  # services one address may announce (a host runs a few nodes)
MAX_KNOWN_PEERS = 4096
SUBSCRIBER_BUFFER = 1024
EXCHANGE_MIN_INTERVAL = 1.0  # peer lists are coalesced: at most one round per second
PAIRING_TIMEOUT = 300.0
FLUSH_ON_STOP = 1.0  # seconds a stopping node waits for connected peers to take its outbox


class PeerUnknown(Exception):
    """No key is known for that peer (it never had a session with us)."""


class PairingError(Exception):
    """Pairing failed: wrong code, no pairing in progress on the other side, or timeout."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    fingerprint: str
    nick: str
    connected: bool
    addresses: tuple[str, ...]
    status: str  # online / away / busy, or offline when not connected
    status_text: str
    trust: str | None  # None: never connected, so nothing is pinned yet
    blocked: bool = False  # we blocked it (`Node.block`): faces list it apart, if at all


@dataclass(frozen=True, slots=True)
class Reachability:
    """What the node knows about reaching one peer, for one-way visibility diagnosis."""

    fingerprint: str | None
    connected: bool
    they_reached_us: bool
    last_error: str | None
    last_error_address: str | None
    addresses: tuple[str, ...]
    diagnosis: str


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
        if self.config.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        self._status = Presence(self.config.status, self.config.status_text)
        self._sessions = Sessions(
            identity,
            self.config,
            SessionHooks(
                hello=self._hello,
                may_open=self._can_pin,
                take_pairing=self._take_pairing,
                opened=self._session_opened,
                received=self._session_message,
                closed=self._session_closed,
                transfer=self._serve_transfer,
                emit=self._emit,
            ),
        )
        self._links = self._sessions.links  # the live session per peer, owned by _sessions
        self._presence: dict[str, Presence] = {}
        self._records: dict[str, PeerRecord] = {}
        self._adverts: dict[str, discovery.PeerAdvertised] = {}
        self._reach = ReachPlanner(
            base_delay=self.config.reconnect_base_delay,
            max_delay=self.config.reconnect_max_delay,
        )
        self._reach_changed = trio.Event()
        self._exchange_due = trio.Event()
        self._auto_away: AutoAway | None = None
        self._pairing_code: tuple[str, float] | None = None
        self._subscribers: list[trio.MemorySendChannel[NodeEvent]] = []
        self._discovery: discovery.Discovery | None = None
        self._mdns_addresses: list[str] = []  # where mDNS runs now; none: no network
        self._nursery: trio.Nursery | None = None
        self._stopped = trio.Event()
        self._blocked: set[str] = set()  # fingerprints: see p2pim.blocking
        self._muted: set[str] = set()  # conversations: a fingerprint or room:<hex>
        self._blocked_dropped = 0  # messages and invitations dropped for a block

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    def _hello(self) -> Hello:
        return Hello(
            PROTOCOL_VERSION,
            self.config.nick,
            self._status.status,
            self._status.status_text,
            self.port or 0,
            round(self.config.presence_timeout * 1000),
        )

    # ---- life cycle -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until `stop()` (or cancellation); reports ready once listening/advertising."""
        async with Store.open(self._store_path or ":memory:") as store:
            self._store = store
            self._records = {r.fingerprint: r for r in await store.peers()}
            self._blocked = set(await store.blocked_peers())
            self._muted = set(await store.muted_conversations())
            self._messenger = Messenger(self.fingerprint, store, self._links, self._emit)
            self._transfers = Transfers(
                store,
                self.config,
                self._sessions,
                self._emit,
                self._messenger,
                self._shares_room,
            )
            self._rooms = Rooms(self.identity, store, self._links, self._emit, self._nick_of)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._rooms.start(nursery)
                self._sessions.start(nursery)
                self._messenger.start(nursery)
                await self._transfers.start(nursery)
                await nursery.start(self._serve)
                await self._load_reach_hints(store)
                if self.config.discovery:
                    await self._start_discovery(nursery)
                nursery.start_soon(self._reach_loop)
                nursery.start_soon(self._exchange_loop)
                nursery.start_soon(self._report_disk, store)
                if self.config.auto_away_after is not None:
                    self._auto_away = AutoAway(
                        self.config.auto_away_after,
                        lambda: (self._status.status, self._status.status_text),
                        functools.partial(self.set_status, automatic=True),
                    )
                    nursery.start_soon(self._auto_away.run)
                task_status.started()
                try:
                    await self._stopped.wait()
                    with trio.move_on_after(FLUSH_ON_STOP):  # what was just queued goes too
                        await self._messenger.flush()
                finally:
                    await self._sessions.goodbye_all()
                    nursery.cancel_scope.cancel()

    async def stop(self) -> None:
        """Ask `run` to exit gracefully (goodbye on every link, withdraw the mDNS record,
        stop tasks); returns at once, `run` returns when that is done."""
        self._stopped.set()

    async def _serve(
        self,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await trio.open_tcp_listeners(
            self.config.listen_port, host=self.config.listen_host
        )
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._sessions.accept, listeners, task_status=task_status)

    async def _load_reach_hints(self, store: Store) -> None:
        now = trio.current_time()
        for fp, addresses in (await store.all_addresses()).items():
            for host, port in addresses:
                self._reach.learn(fp, Address(host, port), Source.REMEMBERED, now)
        for host, port in await store.manual_peers():
            self._reach.add_manual(Address(host, port), now)

    async def _start_discovery(self, nursery: trio.Nursery) -> None:
        send, receive = trio.open_memory_channel[discovery.DiscoveryEvent](64)
        nursery.start_soon(self._consume_discovery, receive)  # first: adverts come early
        await nursery.start(self._run_discovery, send)

    async def _run_discovery(
        self,
        adverts: trio.MemorySendChannel[discovery.DiscoveryEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """mDNS on the configured interfaces' addresses, following them: when they change
        (DHCP renewal, a new network), zeroconf is reopened on the new addresses and our
        record re-registered, so peers find us where we are now, under the same key.

        No address at all is no network (only loopback: offline, flight mode, a login
        before the Wi-Fi is up): the node runs without mDNS, says so (`NetworkChanged`),
        and starts it as soon as an interface gets an address."""
        assert self.port is not None
        interfaces = discovery.resolve_interfaces(self.config.interfaces)  # a typo: an error
        started = False
        while True:
            if interfaces != self._mdns_addresses or not interfaces:
                self._mdns_addresses = interfaces
                if started or not interfaces:  # at start, only the absence is news
                    await self._emit(events.NetworkChanged(tuple(interfaces)))
            try:
                async with trio.open_nursery() as nursery:
                    self._discovery = None
                    if interfaces:
                        self._discovery = discovery.Discovery(
                            self.identity,
                            self.config.nick,
                            self.port,
                            interfaces,
                            self._status.status,
                        )
                        await nursery.start(self._discovery.run, adverts)
                    if not started:
                        task_status.started()
                        started = True
                    interfaces = await self._until_addresses_change(interfaces)
                    nursery.cancel_scope.cancel()
            except Exception:
                if not started:
                    raise  # at start the caller hears of it, as before
                log.exception("mDNS could not restart on %s; trying again", interfaces)
                await trio.sleep(INTERFACE_POLL)

    async def _until_addresses_change(self, interfaces: list[str]) -> list[str]:
        """The addresses, once they differ from `interfaces` (none left: no network)."""
        while True:
            await trio.sleep(INTERFACE_POLL)
            # Not strict: a named interface may be unplugged for now.
            now = discovery.resolve_interfaces(self.config.interfaces, strict=False)
            if now != interfaces:
                log.info("mDNS addresses changed: %s -> %s", interfaces, now or "none")
                return now

    # ---- events ------------------------------------------------------------------------

    def subscribe(self) -> trio.MemoryReceiveChannel[NodeEvent]:
        """A channel of every future event.  A subscriber that stops reading holds the node
        back (back-pressure, no silent loss); close the channel to unsubscribe."""
        send, receive = trio.open_memory_channel[NodeEvent](SUBSCRIBER_BUFFER)
        self._subscribers.append(send)
        return receive

    async def _emit(self, event: NodeEvent) -> None:
        if blocking.hidden(event, self._blocked):  # the one choke point for events
            return
        for channel in list(self._subscribers):
            try:
                await channel.send(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)

    # ---- peers and presence -------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        """Every peer known from mDNS, a session, or the trust store."""
        known: dict[str, PeerInfo] = {}
        for record in self._records.values():
            known[record.fingerprint] = PeerInfo(
                record.fingerprint, record.nick, False, (), "offline", "", record.trust
            )
        for advert in self._adverts.values():
            fp = advert.fingerprint_hint
            previous = known.get(fp)
            known[fp] = PeerInfo(
                fp,
                previous.nick if previous else advert.nick,
                False,
                advert.addresses,
                "offline",
                "",
                previous.trust if previous else None,
            )
        for fp, link in self._links.items():
            presence = self._presence.get(fp, Presence("online", ""))
            pinned = self._records.get(fp)
            addresses = known[fp].addresses if fp in known and known[fp].addresses else ()
            known[fp] = PeerInfo(
                fp,
                link.remote_nick,
                True,
                addresses or (link.address,),
                presence.status,
                presence.status_text,
                pinned.trust if pinned else None,
            )
        known.pop(self.fingerprint, None)
        return sorted(
            (
                dataclasses.replace(p, blocked=p.fingerprint in self._blocked)
                for p in known.values()
            ),
            key=lambda p: (p.nick, p.fingerprint),
        )

    @property
    def status(self) -> Presence:
        return self._status

    async def set_status(self, status: str, text: str = "", *, automatic: bool = False) -> None:
        """Change our presence; every connected peer hears of it at once.  `automatic`:
        set by auto-away, so user activity may undo it (a user's choice stays)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if not isinstance(text, str) or len(text.encode()) > MAX_STATUS_TEXT_BYTES:
            raise ValueError(f"status text is longer than {MAX_STATUS_TEXT_BYTES} bytes")
        self._status = Presence(status, text)
        if self._auto_away is not None:
            self._auto_away.active = automatic  # decided before any await: no race
        await self._announce_self(automatic=automatic)
        if not automatic:  # a restart brings back the user's choice, not auto-away's
            await self._remember(status=status, status_text=text)

    async def set_nick(self, nick: str) -> None:
        """Change our nick: connected peers see it at once (a `presence` carrying it), the
        mDNS record is re-announced with it, and the profile (if any) keeps it."""
        problem = check_nick(nick)
        if problem is not None:
            raise ValueError(problem)
        self.config.nick = nick  # new sessions' hellos, and mDNS after a restart
        await self._announce_self()
        await self._remember(nick=nick)

    def set_download_dir(self, folder: Path) -> None:
        """Where accepted files go from now on (read at each accept; the profile's
        settings keep it for the next start)."""
        self.config.download_dir = folder

    async def _announce_self(self, *, automatic: bool = False) -> None:
        presence = Presence(self._status.status, self._status.status_text, self.config.nick)
        status, text = presence.status, presence.status_text
        await self._emit(events.SelfChanged(presence.nick, status, text, automatic))
        async with trio.open_nursery() as nursery:
            for link in list(self._links.values()):
                nursery.start_soon(self._send_quietly, link, presence)
            if self._discovery is not None:
                nursery.start_soon(self._discovery.update_status, presence.status, presence.nick)

    async def _remember(self, **changes: str) -> None:
        """Keep what the user chose in the profile's settings, for the next start."""
        if self.config.profile is None:
            return
        remember = functools.partial(Settings.remember, self.config.profile, **changes)
        try:
            await trio.to_thread.run_sync(remember)
        except OSError as exc:  # the change holds until the node stops; say why it won't after
            log.warning("could not keep %s in the profile: %s", " and ".join(changes), exc)

    def note_activity(self) -> None:
        """The user did something (the UI calls this): resets the auto-away clock."""
        if self._auto_away is not None:
            self._auto_away.note_activity()

    # ---- trust --------------------------------------------------------------------------

    def safety_number(self, peer: str) -> str:
        """60 digits to compare out of band; identical on both sides."""
        record = self._records.get(peer)
        if record is None:
            raise PeerUnknown(f"no key is known for {peer}")
        return safety_number(self.identity.public_key, record.public_key)

    async def verify(self, peer: str) -> None:
        """The user confirmed this key (safety number compared): trust it, lift a key-change
        block."""
        record = self._records.get(peer)
        if record is None:
            raise PeerUnknown(f"no key is known for {peer}")
        await self._set_trust(record, trust.VERIFIED)

    async def _set_trust(self, record: PeerRecord, level: trust.Trust) -> None:
        assert self._store is not None
        await self._store.set_trust(record.fingerprint, level)
        self._records[record.fingerprint] = dataclasses.replace(record, trust=level)
        await self._emit(events.PeerTrustChanged(record.fingerprint, level))

    def _can_pin(self, fp: str) -> bool:
        if fp in self._records or len(self._records) < MAX_KNOWN_PEERS:
            return True
        log.warning("trust store full (%d peers): refusing %s", MAX_KNOWN_PEERS, fp[:8])
        return False

    async def _pin(self, link: PeerLink) -> PeerRecord:
        """Trust on first use (the caller checked `_can_pin`)."""
        assert self._store is not None
        fp, nick = link.fingerprint, link.remote_nick
        record = self._records.get(fp)
        if record is not None:
            try:  # bookkeeping (last seen, nick): a full disk must not refuse the session
                await self._store.touch_peer(fp, nick, now_ms())
            except StorageError as exc:
                log.warning("could not record that %s was seen: %s", fp[:8], exc)
            record = self._records[fp] = dataclasses.replace(record, nick=nick)
        else:
            level, previous = trust.trust_for_new_key(
                fp, nick, self._records.values(), self._links.keys() - {fp}
            )
            record = await self._store.pin_peer(
                link.remote_static, fp, nick, now_ms(), level, previous
            )
            self._records[fp] = record
            if previous is not None:
                log.warning("KEY CHANGE: %r now presents %s (was %s)", nick, fp, previous)
                await self._emit(events.PeerKeyChanged(fp, nick, previous))
        if link.paired and record.trust != trust.VERIFIED:
            await self._set_trust(record, trust.VERIFIED)
            record = self._records[fp]
        return record

    # ---- pairing ------------------------------------------------------------------------

    def start_pairing(self, timeout: float = PAIRING_TIMEOUT) -> str:
        """A one-time code for the other side's `pair()`.  It allows ONE attempt: a wrong
        guess burns it, so a code cannot be brute-forced even online."""
        code = pake.generate_code()
        self._pairing_code = (code, trio.current_time() + timeout)
        return pake.format_code(code)

    def _take_pairing(self) -> pake.Pairing | None:
        offer, self._pairing_code = self._pairing_code, None
        if offer is None or trio.current_time() > offer[1]:
            return None
        return pake.Pairing(offer[0], initiator=False)

    async def pair(self, host: str, port: int, code: str) -> str:
        """Pair with the node at host:port showing `code`; both sides end up verified."""
        pairing = pake.Pairing(code, initiator=True)
        try:
            return await self._sessions.dial(host, port, pairing=pairing)
        except PeerRejectedError as exc:
            await self._emit(events.PairingFailed(str(exc)))
            raise PairingError(f"pairing with {host}:{port} failed: wrong code?") from exc

    # ---- manual peers and reachability ---------------------------------------------------

    async def add_peer(self, host: str, port: int) -> None:
        """Keep a session with whoever listens at host:port (remembered across restarts)."""
        if not isinstance(host, str) or not host or len(host.encode()) > MAX_HOST_BYTES:
            raise ValueError("host must be a name or address of at most 64 bytes")
        if type(port) is not int or not 0 < port < 65536:
            raise ValueError("port must be 1..65535")
        assert self._store is not None
        await self._store.add_manual_peer(host, port, now_ms())
        self._reach.add_manual(Address(host, port), trio.current_time())
        self._reach_changed.set()

    async def remove_peer(self, host: str, port: int) -> None:
        assert self._store is not None
        await self._store.remove_manual_peer(host, port)
        self._reach.remove_manual(Address(host, port))

    def reachability(self) -> list[Reachability]:
        report = []
        for target in self._reach.targets():
            fp = target.fingerprint
            connected = fp is not None and fp in self._links
            if target.last_error is None:
                diagnosis = "connected" if connected else "not tried yet or no failure"
            elif connected or target.inbound_seen:
                diagnosis = (
                    f"one-way: the peer reached us, we cannot reach it ({target.last_error}); "
                    "if it is online, its firewall or listening address is the likely cause"
                )
            else:
                diagnosis = f"cannot reach the peer: {target.last_error}"
            report.append(
                Reachability(
                    fp,
                    connected,
                    target.inbound_seen,
                    target.last_error,
                    str(target.last_error_address) if target.last_error_address else None,
                    tuple(str(a) for a in target.ordered_addresses()),
                    diagnosis,
                )
            )
        return report

    def interfaces(self) -> list[discovery.InterfaceState]:
        """The addresses mDNS runs on, with their flags: none when discovery is off, or
        when there is no network (`stats()["no_network"]`)."""
        if not self.config.discovery:
            return []
        return discovery.interface_states(self._mdns_addresses)

    def stats(self) -> dict[str, int]:
        """Table sizes, so operators and tests can see every bound holding."""
        return {
            "sessions": len(self._links),
            "pending_handshakes": self._sessions.pending_total,
            "pending_handshakes_max_per_address": max(
                self._sessions.pending_by_address.values(), default=0
            ),
            "known_peers": len(self._records),
            "adverts": len(self._adverts),
            "reach_targets": len(self._reach.targets()),
            "mdns_changes_dropped": self._discovery.dropped_changes if self._discovery else 0,
            "transfer_bytes_sent": self._transfers.bytes_sent,
            "transfer_bytes_received": self._transfers.bytes_received,
            "rooms": len(self._rooms.rooms()),
            "room_events_rejected": self._rooms.rejected,
            # Health, 1 or 0: mDNS has no address to run on; the profile's disk is full.
            "no_network": int(self.config.discovery and not self._mdns_addresses),
            "disk_full": int(self._store is not None and self._store.disk_full),
            "blocked_dropped": self._blocked_dropped,
        }

    async def _report_disk(self, store: Store) -> None:
        """`DiskFullChanged` whenever the profile's disk fills up or takes writes again."""
        reported = False
        while True:
            reported = await store.disk_full_differs(reported)
            log.log(logging.WARNING if reported else logging.INFO, "disk full: %s", reported)
            await self._emit(events.DiskFullChanged(reported))

    # ---- sending ------------------------------------------------------------------------

    def _sendable(self, peer: str) -> None:
        """Messages go to identities we know; never to a key that changed unverified."""
        record = self._records.get(peer)
        if record is None:
            raise PeerUnknown(f"no peer with fingerprint {peer} is known")
        if record.trust == trust.KEY_CHANGED:
            raise PeerKeyChangedError(
                f"{record.nick}'s key changed: verify it before sending (safety number)"
            )

    async def send_text(self, peer: str, text: str) -> str:
        """Send `text` to the peer with fingerprint `peer`; returns the message id (hex).

        On return the message is on disk and queued: it is delivered (and acknowledged,
        see `MessageDelivered`) as soon as the peer is reachable, even after restarts.
        """
        self._sendable(peer)
        if peer in self._blocked:  # its answers would never show: say so instead
            raise blocking.PeerBlockedError(
                f"you blocked {self._nick_of(peer)}: unblock them to send a message"
            )
        return (await self._messenger.send_text(peer, text)).hex()

    def is_connected(self, peer: str) -> bool:
        return peer in self._links

    async def edit(self, peer: str, message_id: str, text: str) -> None:
        """Replace the text of one of our messages to `peer` (propagates like a message)."""
        self._sendable(peer)
        await self._messenger.edit(peer, bytes.fromhex(message_id), text)

    async def delete(self, peer: str, message_id: str) -> None:
        self._sendable(peer)
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
        assert self._store is not None
        anchor = bytes.fromhex(before) if before else None
        limit = max(1, min(limit, 1000))
        page = await self._store.history(peer, before=anchor, limit=limit)
        if not (self._blocked and peer.startswith(ROOM_PREFIX)):
            return page
        shown = [m for m in page if m.author not in self._blocked]
        # Fill the page from further back, so a short page still means "nothing older".
        while len(shown) < limit and len(page) == limit:
            page = await self._store.history(peer, before=page[0].id, limit=limit)
            shown[:0] = [m for m in page if m.author not in self._blocked]
        return shown[-limit:]

    async def search(self, query: str, *, limit: int = 50) -> list[StoredMessage]:
        """Full-text search across every conversation, best match first (nothing written
        by a peer we blocked)."""
        assert self._store is not None
        hits = await self._store.search(query, limit=max(1, min(limit, 1000)))
        return [m for m in hits if m.author not in self._blocked]

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
            self._sendable(peer)
        ttl = self.config.offer_ttl if ttl is None else ttl
        if not 1 <= ttl <= MAX_OFFER_TTL_MS / 1000:
            raise ValueError(f"an offer lives 1 to {MAX_OFFER_TTL_MS // 1000} seconds")
        offer = await self._transfers.send_files(list(peers), [os.fspath(p) for p in paths], ttl)
        return offer.hex()

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
            self._sendable(peer)
        room = await self._rooms.create(name, topic)
        for peer in dict.fromkeys(members):
            await self._rooms.invite(room, self._records[peer].public_key)
        return room.hex()

    async def invite_to_room(self, room: str, peer: str) -> None:
        """Invite a known peer (members may invite); it accepts with `join_room`."""
        self._sendable(peer)
        await self._rooms.invite(self._room(room), self._records[peer].public_key)

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
        await self._rooms.edit(self._room(room), _message_id(message_id), text)

    async def delete_room_post(self, room: str, message_id: str) -> None:
        """Withdraw one of our posts for every member (a signed room-log operation)."""
        await self._rooms.delete(self._room(room), _message_id(message_id))

    def rooms(self) -> list[RoomInfo]:
        return self._rooms.rooms()

    async def room_history(
        self, room: str, *, before: str | None = None, limit: int = 50, system: bool = False
    ) -> list[StoredMessage]:
        """A room's messages, in the order every member shows them (oldest first).  With
        `system`, its system lines too ("alice joined"...: `p2pim.rooms.timeline.Notice`,
        a StoredMessage with a `kind`), and `before` may be a line's id."""
        room_id = self._room(room)
        if not system:
            return await self.history(conversation(room_id), before=before, limit=limit)
        anchor = _message_id(before) if before else None
        limit = max(1, min(limit, 1000))
        page = await self._rooms.history(room_id, anchor, limit)
        shown = [m for m in page if not self._hidden_post(m)]
        # As in `history`: fill the page from further back, so short still means "no more".
        while len(shown) < limit and len(page) == limit:
            page = await self._rooms.history(room_id, page[0].id, limit)
            shown[:0] = [m for m in page if not self._hidden_post(m)]
        return shown[-limit:]

    def _hidden_post(self, line: StoredMessage) -> bool:
        """A blocked author's post (its system lines stay: who reads the room is shown)."""
        return line.author in self._blocked and not isinstance(line, timeline.Notice)

    async def send_files_to_room(
        self, room: str, paths: Sequence[str | os.PathLike[str]], *, ttl: float | None = None
    ) -> str:
        """Offer files in the room to every other member, shown there on every side; each
        accepts or declines on its own.  A member we never met gets it when we first meet
        (the room's log vouches for its key); one whose key changed unverified does not."""
        room_id = self._room(room)
        members = [
            fp
            for fp in self._rooms.members(room_id)
            if fp not in self._records or self._records[fp].trust != trust.KEY_CHANGED
        ]
        if not members:
            raise RoomError("nobody else is in that room")
        ttl = self.config.offer_ttl if ttl is None else ttl
        if not 1 <= ttl <= MAX_OFFER_TTL_MS / 1000:
            raise ValueError(f"an offer lives 1 to {MAX_OFFER_TTL_MS // 1000} seconds")
        local = [os.fspath(p) for p in paths]
        return (await self._transfers.send_files(members, local, ttl, room_id)).hex()

    def _shares_room(self, room: bytes, peer: str) -> bool:
        """We and `peer` are both members of `room` (an offer's room claim holds)."""
        try:
            return peer in self._rooms.members(room)
        except RoomError:  # no such room here, or we are not a member
            return False

    async def export(
        self, *, peer: str | None = None, room: str | None = None, fmt: str = "jsonl"
    ) -> str:
        """A whole conversation (with a peer, or a room) as JSON Lines or Markdown."""
        assert self._store is not None
        nicks = {fp: record.nick for fp, record in self._records.items()}
        nicks[self.fingerprint] = "me"
        if room is not None and peer is None:
            room_id = self._room(room)
            key = conversation(room_id)
            nicks[key] = next(r.name for r in self.rooms() if r.room == room_id.hex())
        elif peer is not None and room is None:
            key = peer
        else:
            raise ValueError("export a peer's conversation or a room's")
        return export(await self._store.conversation(key), nicks, key, fmt)

    def _room(self, room: str) -> bytes:
        return self._rooms.find(room)

    def _nick_of(self, fp: str) -> str:
        if fp == self.fingerprint:
            return self.config.nick
        record = self._records.get(fp)
        return record.nick if record else fp[:8]

    async def set_group(self, name: str, members: Sequence[str]) -> None:
        """A contact group: a local label on peers (no members: the group goes)."""
        if not isinstance(name, str) or not name or len(name.encode()) > MAX_NICK_BYTES:
            raise ValueError(f"a group name is 1 to {MAX_NICK_BYTES} UTF-8 bytes")
        for peer in members:
            if peer not in self._records:
                raise PeerUnknown(f"no peer with fingerprint {peer} is known")
        assert self._store is not None
        await self._store.set_group(name, list(members))

    async def groups(self) -> dict[str, list[str]]:
        assert self._store is not None
        return await self._store.groups()

    async def send_to_group(self, name: str, text: str) -> dict[str, str]:
        """One direct message to each member (1:1: its own id, delivery and read receipts)."""
        members = (await self.groups()).get(name)
        if not members:
            raise ValueError(f"no contact group named {name!r}")
        for peer in members:  # all or none: a refused member stops the whole send
            self._sendable(peer)
        return {peer: await self.send_text(peer, text) for peer in members}

    async def broadcast(self, text: str) -> dict[str, str]:
        """An announcement: one direct message to every peer online now (kept in history
        on both sides, like any message)."""
        check_text(text)  # even when nobody is online to send it to
        online = [fp for fp in self._links if fp in self._records]
        sendable = [
            fp
            for fp in online
            if self._records[fp].trust != trust.KEY_CHANGED and fp not in self._blocked
        ]
        return {peer: await self.send_text(peer, text) for peer in sendable}

    async def _serve_transfer(self, link: PeerLink) -> None:
        await self._transfers.serve(link)

    async def _send_quietly(self, link: PeerLink, message: Message) -> None:
        """Best effort, bounded: a peer that takes nothing for `presence_timeout` loses its
        session (the interrupted send poisons it) rather than holding this caller."""
        with contextlib.suppress(LinkClosed), trio.move_on_after(self.config.presence_timeout):
            await link.send(message)

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
        blocking.check_fingerprint(peer)
        if peer == self.fingerprint:
            raise ValueError("you cannot block yourself")
        assert self._store is not None
        await self._store.block_peer(peer, now_ms())
        self._blocked.add(peer)
        await self._emit(events.BlockChanged(peer, True))

    async def unblock(self, peer: str) -> None:
        """What the peer sends from now on arrives again (what it sent meanwhile is gone)."""
        blocking.check_fingerprint(peer)
        assert self._store is not None
        await self._store.unblock_peer(peer)
        self._blocked.discard(peer)
        await self._emit(events.BlockChanged(peer, False))

    def blocked(self) -> list[str]:
        """The fingerprints we blocked."""
        return sorted(self._blocked)

    def is_blocked(self, peer: str) -> bool:
        return peer in self._blocked

    async def mute(self, conversation: str) -> None:
        """Mute a conversation (a peer's fingerprint, or `room:<hex>`): everything still
        arrives and is stored, but faces raise no notification for it.  Persists."""
        blocking.check_conversation(conversation)
        assert self._store is not None
        await self._store.mute_conversation(conversation, now_ms())
        self._muted.add(conversation)
        await self._emit(events.MuteChanged(conversation, True))

    async def unmute(self, conversation: str) -> None:
        blocking.check_conversation(conversation)
        assert self._store is not None
        await self._store.unmute_conversation(conversation)
        self._muted.discard(conversation)
        await self._emit(events.MuteChanged(conversation, False))

    def muted(self) -> list[str]:
        """The muted conversations: fingerprints and `room:<hex>` names."""
        return sorted(self._muted)

    def is_muted(self, conversation: str) -> bool:
        return conversation in self._muted

    def room_conversation(self, room: str) -> str:
        """`room:<hex>` for a room named by id, id prefix or name (for `mute`)."""
        return conversation(self._room(room))

    async def _blocked_drop(self, link: PeerLink, message: Message) -> bool:
        """The choke point for what blocked peers send (the caller checked that someone
        is blocked): True if `message` is dropped here, before anything stores or shows
        it; an invitation written by a blocked peer is dropped whoever relays it."""
        if isinstance(message, RoomEvent):
            invitation = blocking.invitation_from(message, self.identity.public_key)
            if invitation is None or invitation[1] not in self._blocked:
                return False
            held = {info.room for info in self._rooms.rooms()}
            if invitation[0].hex() in held:
                return False  # a room we share: its log stays whole, `_emit` keeps it quiet
            self._blocked_dropped += 1
            return True
        if link.fingerprint not in self._blocked:
            return False
        verdict = blocking.verdict(message)
        if verdict is blocking.Verdict.ACK_AND_DROP:
            op_id = blocking.op_id(message)
            if op_id is not None:
                self._messenger.ack(link, op_id)
        if verdict is blocking.Verdict.PASS:
            return False
        self._blocked_dropped += 1
        return True

    # ---- session hooks: what a session means to the node --------------------------------

    async def _session_opened(self, link: PeerLink, replaced: bool) -> None:
        """Disk work first: if it fails, the session is dropped with nothing half-set."""
        fp = link.fingerprint
        if replaced:
            if link.paired and self._can_pin(fp):  # the code was proven on this connection
                await self._pin(link)
        else:
            record = await self._pin(link)
            if link.reach_port:
                assert self._store is not None
                with contextlib.suppress(StorageError):  # a hint for later: not worth a session
                    await self._store.remember_address(fp, link.address, link.reach_port, now_ms())
        current = self._links.get(fp)
        if current is None:
            return  # the session ended while we were writing to disk
        if current is link:  # not a tie-break loser: this link carries the session
            self._presence[fp] = Presence(link.hello.status, link.hello.status_text)
            self._messenger.session_started(link)  # drain the outbox on this session
            self._transfers.resume(fp)  # pull what we accepted and do not have yet
            assert self._nursery is not None
            self._nursery.start_soon(self._rooms.session_opened, link)  # anti-entropy
        if replaced:
            return
        # The peer is online, even if a second link took over during the await above.
        if link.reach_port:
            address = Address(link.address, link.reach_port)
            self._reach.learn(fp, address, Source.REMEMBERED, trio.current_time())
        self._reach.connected(fp, inbound=not link.initiator)
        self._exchange_due.set()
        await self._emit(
            events.PeerConnected(
                fp,
                link.remote_nick,
                link.address,
                link.hello.status,
                link.hello.status_text,
                record.trust,
            )
        )

    async def _session_message(self, link: PeerLink, message: Message) -> None:
        """What a session's reader got.  A write refused for want of space is retried,
        backing off, until the disk takes it or the session ends: the reader waits (what
        the peer sends behind it waits too), nothing unstored is acknowledged, and the
        session is not dropped and redialled over and over while the disk is full."""
        delay = STORE_RETRY_FIRST
        while True:
            try:
                return await self._handle_session_message(link, message)
            except StorageFull as exc:
                if link.closed:
                    raise  # nobody to acknowledge to: the peer resends it next session
                log.warning("cannot store what %s sent (%s); retrying", link.fingerprint[:8], exc)
                assert self._store is not None
                await pause_for_space(self._store, delay)
                delay = min(delay * 2, STORE_RETRY_MAX)

    async def _handle_session_message(self, link: PeerLink, message: Message) -> None:
        fp = link.fingerprint
        if self._blocked and await self._blocked_drop(link, message):
            return
        if await self._messenger.received(link, message):
            return
        if await self._transfers.received(link, message):
            return
        if await self._rooms.received(link, message):
            return
        if isinstance(message, TRANSFER_ONLY + PAYLOAD_ONLY):
            raise RemoteProtocolError(f"{message.TYPE} does not travel on a session")
        if isinstance(message, Presence):
            if message.nick and message.nick != link.remote_nick:
                await self._peer_renamed(link, message.nick)
            self._presence[fp] = message
            await self._emit(events.PeerStatusChanged(fp, message.status, message.status_text))
        elif isinstance(message, PeerList):
            self._learn_exchanged(message)

    async def _peer_renamed(self, link: PeerLink, nick: str) -> None:
        previous, fp = link.remote_nick, link.fingerprint
        link.hello = dataclasses.replace(link.hello, nick=nick)  # what peers() reports now
        record = self._records.get(fp)
        if record is not None:  # rooms, exports and the next start show the new name
            assert self._store is not None
            await self._store.touch_peer(fp, nick, now_ms())
            self._records[fp] = dataclasses.replace(record, nick=nick)
        await self._emit(events.PeerRenamed(fp, nick, previous))

    async def _session_closed(self, link: PeerLink, reason: str) -> None:
        fp = link.fingerprint
        self._presence.pop(fp, None)
        await self._messenger.session_ended(fp)
        self._transfers.session_closed(fp)
        self._rooms.session_closed(fp)
        self._reach.disconnected(fp, trio.current_time(), refused=reason == BYE_BUSY)
        self._reach_changed.set()
        await self._emit(events.PeerDisconnected(fp, reason))

    # ---- reaching peers -----------------------------------------------------------------

    async def _reach_loop(self) -> None:
        assert self._nursery is not None
        while True:
            self._reach_changed = trio.Event()
            for target in self._reach.due(trio.current_time()):
                self._nursery.start_soon(self._dial_target, target)
            deadline = self._reach.next_due()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._reach_changed.wait()

    async def _dial_target(self, target: Target) -> None:
        """Try the target's addresses in order until one answers; record the outcome
        before reporting failures, so a listener sees `reachability()` already updated."""
        # A manual address is trusted on first use like any peer: whoever answers there
        # is checked by the trust rules, not refused for being new.
        expected = None if target.manual else target.fingerprint
        failures: list[tuple[Address, str]] = []
        fp = None
        for address in target.ordered_addresses():
            try:
                fp = await self._sessions.dial(
                    address.host, address.port, expected_fingerprint=expected
                )
                break
            except Exception as exc:  # any failure at one address is that address's failure
                failures.append((address, classify_dial_error(exc)))
                log.info("dial %s failed: %s", address, failures[-1][1])
        now = trio.current_time()
        if fp is not None:
            self._reach.dial_finished(target, now, fingerprint=fp)
        else:
            failed_at, error = failures[-1] if failures else (None, "no address")
            self._reach.dial_finished(target, now, error=error, address=failed_at)
        self._reach_changed.set()
        for address, reason in failures:
            await self._emit(events.DialFailed(target.fingerprint, str(address), reason))

    async def _consume_discovery(
        self, adverts: trio.MemoryReceiveChannel[discovery.DiscoveryEvent]
    ) -> None:
        async for event in adverts:
            if isinstance(event, discovery.PeerWithdrawn):
                self._adverts.pop(event.instance, None)
                continue
            if event.fingerprint_hint == self.fingerprint or event.version != PROTOCOL_VERSION:
                continue
            if event.instance not in self._adverts and not self._room_for_advert(event):
                continue  # a flood of fake records can neither grow the table nor fill it
            self._adverts[event.instance] = event
            now = trio.current_time()
            for host in event.addresses:
                self._reach.learn(
                    event.fingerprint_hint, Address(host, event.port), Source.MDNS, now
                )
            self._reach_changed.set()
            await self._emit(
                events.PeerDiscovered(
                    event.fingerprint_hint, event.nick, event.addresses, event.port, event.status
                )
            )

    def _room_for_advert(self, advert: discovery.PeerAdvertised) -> bool:
        """Bounded overall, and per address: one host announcing thousands of services
        (all pointing at itself) gets a few slots, so real peers still get theirs."""
        if len(self._adverts) >= MAX_KNOWN_ADVERTS:
            return False
        hosts = set(advert.addresses)
        crowded = sum(1 for known in self._adverts.values() if hosts & set(known.addresses))
        return crowded < MAX_ADVERTS_PER_ADDRESS

    # ---- peer exchange ------------------------------------------------------------------

    async def _exchange_loop(self) -> None:
        """Tell every peer where our other peers are, so nodes on other subnets meet."""
        while True:
            await self._exchange_due.wait()
            self._exchange_due = trio.Event()
            entries = [
                PeerAddress(link.remote_static, link.address, link.reach_port)
                for link in self._links.values()
                if link.reach_port and dialable(link.address)
            ]
            async with trio.open_nursery() as nursery:
                for link in list(self._links.values()):
                    others = [e for e in entries if e.public_key != link.remote_static]
                    if others:
                        message = PeerList(tuple(others[:MAX_EXCHANGED_PEERS]))
                        nursery.start_soon(self._send_quietly, link, message)
            await trio.sleep(EXCHANGE_MIN_INTERVAL)  # coalesce bursts of connects

    def _learn_exchanged(self, message: PeerList) -> None:
        now = trio.current_time()
        for entry in message.peers:
            fp = fingerprint(entry.public_key)
            if fp != self.fingerprint and fp not in self._links and dialable(entry.host):
                self._reach.learn(fp, Address(entry.host, entry.port), Source.EXCHANGE, now)
        self._reach_changed.set()


def _message_id(text: str) -> bytes:
    try:
        found = bytes.fromhex(text)
    except (TypeError, ValueError):
        found = b""
    if len(found) != 16:
        raise ValueError("a message id is 32 hex digits")
    return found


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
