"""`Reacher`: the trio shell around the pure `reach.ReachPlanner`.

The planner decides which peers to dial, where and when; the reacher feeds it facts
(mDNS adverts, sessions opened and closed, addresses remembered, typed in or heard from
peers), dials what it says is due, and tells every peer where our other peers are (peer
exchange), so nodes on other subnets meet.  The same split as `rooms/state.py` (the rules)
beside `rooms/manager.py` (the I/O).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from p2pim import discovery, events
from p2pim.api import Reachability
from p2pim.clock import now_ms
from p2pim.config import NodeConfig
from p2pim.directory import PeerDirectory
from p2pim.identity import fingerprint
from p2pim.net.link import PeerLink
from p2pim.reach import Address, ReachPlanner, Source, Target, dialable
from p2pim.routes import Routes
from p2pim.sessions import Sessions, classify_dial_error
from p2pim.storage import Database, StorageError, Store
from p2pim.wire.messages import (
    BYE_BUSY,
    MAX_EXCHANGED_PEERS,
    MAX_HOST_BYTES,
    PROTOCOL_VERSION,
    PeerAddress,
    PeerList,
)

log = logging.getLogger(__name__)

EXCHANGE_MIN_INTERVAL = 1.0  # peer lists are coalesced: at most one round per second


@dataclass(frozen=True, slots=True)
class ReachStatistics:
    targets: int  # identities and manual addresses we keep trying to reach


class Reacher:
    def __init__(
        self,
        config: NodeConfig,
        sessions: Sessions,
        directory: PeerDirectory,
        emit: Callable[[events.NodeEvent], Awaitable[None]],
    ) -> None:
        self.config = config
        self._sessions = sessions
        self._links = sessions.links
        self._directory = directory
        self._emit = emit
        self._fingerprint = sessions.identity.fingerprint
        self._planner = ReachPlanner(
            base_delay=config.reconnect_base_delay, max_delay=config.reconnect_max_delay
        )
        self._changed = trio.Event()
        self._exchange_due = trio.Event()
        self._store: Store | None = None

    async def load(self, store: Store) -> None:
        """The addresses the profile remembers, and the manual peers: targets from now."""
        self._store = store
        now = trio.current_time()
        for fp, addresses in (await store.run(Database.all_addresses)).items():
            for host, port in addresses:
                self._planner.learn(fp, Address(host, port), Source.REMEMBERED, now)
        for host, port in await store.run(Database.manual_peers):
            self._planner.add_manual(Address(host, port), now)

    @property
    def store(self) -> Store:
        assert self._store is not None, "load() first"
        return self._store

    def statistics(self) -> ReachStatistics:
        return ReachStatistics(targets=len(self._planner.targets()))

    # ---- what the node asks -------------------------------------------------------------

    async def add_manual(self, host: str, port: int) -> None:
        if not isinstance(host, str) or not host or len(host.encode()) > MAX_HOST_BYTES:
            raise ValueError("host must be a name or address of at most 64 bytes")
        if type(port) is not int or not 0 < port < 65536:
            raise ValueError("port must be 1..65535")
        await self.store.run(Database.add_manual_peer, host, port, now_ms())
        self._planner.add_manual(Address(host, port), trio.current_time())
        self._changed.set()

    async def remove_manual(self, host: str, port: int) -> None:
        await self.store.run(Database.remove_manual_peer, host, port)
        self._planner.remove_manual(Address(host, port))

    def reachability(self) -> list[Reachability]:
        report = []
        for target in self._planner.targets():
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

    # ---- sessions -----------------------------------------------------------------------

    async def remember(self, link: PeerLink) -> None:
        """Keep where a new session's peer listens, for the next start."""
        if link.reach_port:
            with contextlib.suppress(StorageError):  # a hint for later: not worth a session
                await self.store.run(
                    Database.remember_address,
                    link.fingerprint,
                    link.address,
                    link.reach_port,
                    now_ms(),
                )

    def session_started(self, link: PeerLink) -> None:
        """The peer is online: it needs no dialling, and our other peers may hear of it."""
        fp = link.fingerprint
        if link.reach_port:
            address = Address(link.address, link.reach_port)
            self._planner.learn(fp, address, Source.REMEMBERED, trio.current_time())
        self._planner.connected(fp, inbound=not link.initiator)
        self._exchange_due.set()

    def session_ended(self, fp: str, reason: str) -> None:
        self._planner.disconnected(fp, trio.current_time(), refused=reason == BYE_BUSY)
        self._changed.set()

    def routes(self) -> Routes:
        return {PeerList: self.on_peer_list}

    async def on_peer_list(self, link: PeerLink, message: PeerList) -> None:
        """Where `link`'s peer reaches its other peers: worth a try for us too."""
        now = trio.current_time()
        for entry in message.peers:
            fp = fingerprint(entry.public_key)
            if fp != self._fingerprint and fp not in self._links and dialable(entry.host):
                self._planner.learn(fp, Address(entry.host, entry.port), Source.EXCHANGE, now)
        self._changed.set()

    async def consume_adverts(
        self, adverts: trio.MemoryReceiveChannel[discovery.DiscoveryEvent]
    ) -> None:
        async for event in adverts:
            if isinstance(event, discovery.PeerWithdrawn):
                self._directory.withdrawn(event.instance)
                continue
            if event.fingerprint_hint == self._fingerprint or event.version != PROTOCOL_VERSION:
                continue
            if not self._directory.advertised(event):
                continue
            now = trio.current_time()
            for host in event.addresses:
                self._planner.learn(
                    event.fingerprint_hint, Address(host, event.port), Source.MDNS, now
                )
            self._changed.set()
            await self._emit(
                events.PeerDiscovered(
                    event.fingerprint_hint, event.nick, event.addresses, event.port, event.status
                )
            )

    # ---- the loops ----------------------------------------------------------------------

    async def run(self) -> None:
        """Dial what is due and exchange peer lists, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._exchange_loop)
            while True:
                self._changed = trio.Event()
                for target in self._planner.due(trio.current_time()):
                    nursery.start_soon(self._dial, target)
                deadline = self._planner.next_due()
                with trio.move_on_at(math.inf if deadline is None else deadline):
                    await self._changed.wait()

    async def _dial(self, target: Target) -> None:
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
            self._planner.dial_finished(target, now, fingerprint=fp)
        else:
            failed_at, error = failures[-1] if failures else (None, "no address")
            self._planner.dial_finished(target, now, error=error, address=failed_at)
        self._changed.set()
        for address, reason in failures:
            await self._emit(events.DialFailed(target.fingerprint, str(address), reason))

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
                        nursery.start_soon(link.send_quietly, message, self.config.presence_timeout)
            await trio.sleep(EXCHANGE_MIN_INTERVAL)  # coalesce bursts of connects
