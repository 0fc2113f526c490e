"""`PeerDirectory`: the peers this node knows, and the trust-on-first-use rules.

It keeps the pinned records (key, nick, trust), each connected peer's presence, the mDNS
adverts heard, and the peers we blocked and the conversations we muted.  Named
`directory`, not `peers`: `p2pim/storage/peers.py` is the table the records are kept in;
this is the live view the node keeps over it and the only code that writes it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass

from p2pim import blocking, events, trust
from p2pim.api import PeerInfo, PeerKeyChangedError, PeerUnknown
from p2pim.clock import now_ms
from p2pim.config import NodeConfig
from p2pim.delivery import Delivery
from p2pim.discovery import PeerAdvertised
from p2pim.identity import Identity, safety_number
from p2pim.net.link import PeerLink
from p2pim.routes import Routes
from p2pim.storage import Database, PeerRecord, StorageError, Store
from p2pim.wire.messages import MAX_NICK_BYTES, Message, Presence, RoomEvent

log = logging.getLogger(__name__)

MAX_KNOWN_PEERS = 4096
MAX_KNOWN_ADVERTS = 1024
MAX_ADVERTS_PER_ADDRESS = 16  # services one address may announce (a host runs a few nodes)


@dataclass(frozen=True, slots=True)
class DirectoryStatistics:
    known_peers: int  # pinned keys
    adverts: int  # mDNS records heard and not withdrawn
    blocked_dropped: int  # messages and invitations dropped for a block


class PeerDirectory:
    def __init__(
        self,
        identity: Identity,
        config: NodeConfig,
        links: Mapping[str, PeerLink],
        emit: Callable[[events.NodeEvent], Awaitable[None]],
    ) -> None:
        self.identity = identity
        self.config = config
        self._links = links  # the live session per peer, owned by `Sessions`
        self._emit = emit
        self._store: Store | None = None
        self._records: dict[str, PeerRecord] = {}
        self._presence: dict[str, Presence] = {}
        self._adverts: dict[str, PeerAdvertised] = {}
        self._blocked: set[str] = set()  # fingerprints: see p2pim.blocking
        self._muted: set[str] = set()  # conversations: a fingerprint or room:<hex>
        self._blocked_dropped = 0

    async def load(self, store: Store) -> None:
        """What the profile remembers; the directory writes through to `store` from now."""
        self._store = store
        self._records = {r.fingerprint: r for r in await store.run(Database.peers)}
        self._blocked = set(await store.run(Database.blocked_peers))
        self._muted = set(await store.run(Database.muted_conversations))

    @property
    def store(self) -> Store:
        assert self._store is not None, "load() first"
        return self._store

    def statistics(self) -> DirectoryStatistics:
        return DirectoryStatistics(
            known_peers=len(self._records),
            adverts=len(self._adverts),
            blocked_dropped=self._blocked_dropped,
        )

    # ---- what the node asks -------------------------------------------------------------

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
        known.pop(self.identity.fingerprint, None)
        return sorted(
            (
                dataclasses.replace(p, blocked=p.fingerprint in self._blocked)
                for p in known.values()
            ),
            key=lambda p: (p.nick, p.fingerprint),
        )

    def knows(self, peer: str) -> bool:
        """A key is pinned for `peer`."""
        return peer in self._records

    def public_key(self, peer: str) -> bytes:
        return self._record(peer).public_key

    def key_changed(self, peer: str) -> bool:
        """`peer`'s key changed and the user has not verified the new one yet."""
        record = self._records.get(peer)
        return record is not None and record.trust == trust.KEY_CHANGED

    def check_sendable(self, peer: str) -> None:
        """Messages go to identities we know; never to a key that changed unverified."""
        record = self._record(peer)
        if record.trust == trust.KEY_CHANGED:
            raise PeerKeyChangedError(
                f"{record.nick}'s key changed: verify it before sending (safety number)"
            )

    def may_message(self, peer: str) -> bool:
        """A message to `peer` would be sent (`check_sendable`) and its answers shown."""
        return self.knows(peer) and not self.key_changed(peer) and peer not in self._blocked

    def nick_of(self, fp: str) -> str:
        if fp == self.identity.fingerprint:
            return self.config.nick
        record = self._records.get(fp)
        return record.nick if record else fp[:8]

    def nicks(self) -> dict[str, str]:
        """Every pinned peer's nick, by fingerprint."""
        return {fp: record.nick for fp, record in self._records.items()}

    def _record(self, peer: str) -> PeerRecord:
        record = self._records.get(peer)
        if record is None:
            raise PeerUnknown(f"no peer with fingerprint {peer} is known")
        return record

    # ---- contact groups: local labels on known peers ------------------------------------

    async def set_group(self, name: str, members: Sequence[str]) -> None:
        if not isinstance(name, str) or not name or len(name.encode()) > MAX_NICK_BYTES:
            raise ValueError(f"a group name is 1 to {MAX_NICK_BYTES} UTF-8 bytes")
        for peer in members:
            if not self.knows(peer):
                raise PeerUnknown(f"no peer with fingerprint {peer} is known")
        await self.store.run(Database.set_group, name, list(members))

    async def groups(self) -> dict[str, list[str]]:
        return await self.store.run(Database.groups)

    # ---- trust --------------------------------------------------------------------------

    def safety_number(self, peer: str) -> str:
        """60 digits to compare out of band; identical on both sides."""
        record = self._records.get(peer)
        if record is None:
            raise PeerUnknown(f"no key is known for {peer}")
        return safety_number(self.identity.public_key, record.public_key)

    async def verify(self, peer: str) -> None:
        record = self._records.get(peer)
        if record is None:
            raise PeerUnknown(f"no key is known for {peer}")
        await self._set_trust(record, trust.VERIFIED)

    async def _set_trust(self, record: PeerRecord, level: trust.Trust) -> None:
        await self.store.run(Database.set_trust, record.fingerprint, level)
        self._records[record.fingerprint] = dataclasses.replace(record, trust=level)
        await self._emit(events.PeerTrustChanged(record.fingerprint, level))

    def can_pin(self, fp: str) -> bool:
        """May a session with `fp` start?  Not a new key once the trust store is full."""
        if fp in self._records or len(self._records) < MAX_KNOWN_PEERS:
            return True
        log.warning("trust store full (%d peers): refusing %s", MAX_KNOWN_PEERS, fp[:8])
        return False

    async def pin(self, link: PeerLink) -> PeerRecord:
        """Trust on first use (the caller checked `can_pin`)."""
        fp, nick = link.fingerprint, link.remote_nick
        record = self._records.get(fp)
        if record is not None:
            try:  # bookkeeping (last seen, nick): a full disk must not refuse the session
                await self.store.run(Database.touch_peer, fp, nick, now_ms())
            except StorageError as exc:
                log.warning("could not record that %s was seen: %s", fp[:8], exc)
            record = self._records[fp] = dataclasses.replace(record, nick=nick)
        else:
            level, previous = trust.trust_for_new_key(
                fp, nick, self._records.values(), self._links.keys() - {fp}
            )
            record = await self.store.run(
                Database.pin_peer, link.remote_static, fp, nick, now_ms(), level, previous
            )
            self._records[fp] = record
            if previous is not None:
                log.warning("KEY CHANGE: %r now presents %s (was %s)", nick, fp, previous)
                await self._emit(events.PeerKeyChanged(fp, nick, previous))
        if link.paired and record.trust != trust.VERIFIED:
            await self._set_trust(record, trust.VERIFIED)
            record = self._records[fp]
        return record

    # ---- presence and adverts -----------------------------------------------------------

    def routes(self) -> Routes:
        return {Presence: self.on_presence}

    def session_started(self, link: PeerLink) -> None:
        self._presence[link.fingerprint] = Presence(link.hello.status, link.hello.status_text)

    def session_ended(self, fp: str) -> None:
        self._presence.pop(fp, None)

    async def on_presence(self, link: PeerLink, message: Presence) -> None:
        """The peer's status changed (and maybe its nick: a `presence` carries renames)."""
        fp = link.fingerprint
        if message.nick and message.nick != link.remote_nick:
            await self._renamed(link, message.nick)
        self._presence[fp] = message
        await self._emit(events.PeerStatusChanged(fp, message.status, message.status_text))

    async def _renamed(self, link: PeerLink, nick: str) -> None:
        previous, fp = link.remote_nick, link.fingerprint
        link.hello = dataclasses.replace(link.hello, nick=nick)  # what peers() reports now
        record = self._records.get(fp)
        if record is not None:  # rooms, exports and the next start show the new name
            await self.store.run(Database.touch_peer, fp, nick, now_ms())
            self._records[fp] = dataclasses.replace(record, nick=nick)
        await self._emit(events.PeerRenamed(fp, nick, previous))

    def advertised(self, advert: PeerAdvertised) -> bool:
        """Keep `advert` if there is room for it; False: dropped."""
        if advert.instance not in self._adverts and not self._room_for_advert(advert):
            return False  # a flood of fake records can neither grow the table nor fill it
        self._adverts[advert.instance] = advert
        return True

    def withdrawn(self, instance: str) -> None:
        self._adverts.pop(instance, None)

    def _room_for_advert(self, advert: PeerAdvertised) -> bool:
        """Bounded overall, and per address: one host announcing thousands of services
        (all pointing at itself) gets a few slots, so real peers still get theirs."""
        if len(self._adverts) >= MAX_KNOWN_ADVERTS:
            return False
        hosts = set(advert.addresses)
        crowded = sum(1 for known in self._adverts.values() if hosts & set(known.addresses))
        return crowded < MAX_ADVERTS_PER_ADDRESS

    # ---- block and mute (decisions: p2pim.blocking) --------------------------------------

    @property
    def blocked(self) -> Set[str]:
        """The fingerprints we blocked (read-only: `block`/`unblock` change it)."""
        return self._blocked

    @property
    def muted(self) -> Set[str]:
        """The muted conversations: fingerprints and `room:<hex>` names."""
        return self._muted

    async def block(self, peer: str) -> None:
        blocking.check_fingerprint(peer)
        if peer == self.identity.fingerprint:
            raise ValueError("you cannot block yourself")
        await self.store.run(Database.block_peer, peer, now_ms())
        self._blocked.add(peer)
        await self._emit(events.BlockChanged(peer, True))

    async def unblock(self, peer: str) -> None:
        blocking.check_fingerprint(peer)
        await self.store.run(Database.unblock_peer, peer)
        self._blocked.discard(peer)
        await self._emit(events.BlockChanged(peer, False))

    async def mute(self, conversation: str) -> None:
        blocking.check_conversation(conversation)
        await self.store.run(Database.mute_conversation, conversation, now_ms())
        self._muted.add(conversation)
        await self._emit(events.MuteChanged(conversation, True))

    async def unmute(self, conversation: str) -> None:
        blocking.check_conversation(conversation)
        await self.store.run(Database.unmute_conversation, conversation)
        self._muted.discard(conversation)
        await self._emit(events.MuteChanged(conversation, False))

    def drops(
        self,
        link: PeerLink,
        message: Message,
        delivery: Delivery,
        held_rooms: Callable[[], Set[str]],
    ) -> bool:
        """The choke point for what blocked peers send (the caller checked that someone
        is blocked): True if `message` is dropped here, before anything stores or shows
        it; an invitation written by a blocked peer is dropped whoever relays it."""
        if isinstance(message, RoomEvent):
            invitation = blocking.invitation_from(message, self.identity.public_key)
            if invitation is None or invitation[1] not in self._blocked:
                return False
            if invitation[0].hex() in held_rooms():
                return False  # a room we share: its log stays whole, events keep it quiet
            self._blocked_dropped += 1
            return True
        if link.fingerprint not in self._blocked:
            return False
        verdict = blocking.verdict(message)
        if verdict is blocking.Verdict.ACK_AND_DROP:
            op_id = blocking.op_id(message)
            if op_id is not None:
                delivery.ack(link, op_id)
        if verdict is blocking.Verdict.PASS:
            return False
        self._blocked_dropped += 1
        return True
