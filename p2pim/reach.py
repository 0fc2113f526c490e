"""Which peers to dial, where, and when (pure logic: the node feeds it facts and the time).

Each target is an identity we want a session with (or a manual `host:port` whose identity
we have not met yet), with candidate addresses from mDNS, the user, memory or peer
exchange.  Failed dials back off exponentially, capped and jittered; every attempt's
outcome is kept so the node can explain one-way visibility.  Everything is bounded.
"""

from __future__ import annotations

import collections
import enum
import ipaddress
import random
from dataclasses import dataclass, field

MAX_TARGETS = 1024
MAX_ADDRESSES_PER_TARGET = 8
MAX_DIALS_PER_HOST = 2


def dialable(host: str) -> bool:
    """Peer exchange names hosts by IPv4 address only: no DNS lookups on a peer's say-so,
    and nothing that is not a single host."""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return not (address.is_multicast or address.is_unspecified or address.is_reserved)


class Source(enum.IntEnum):
    """Where an address came from; lower values are tried first."""

    MDNS = 0
    MANUAL = 1
    REMEMBERED = 2
    EXCHANGE = 3


def parse_address(text: str, default_port: int | None = None) -> tuple[str, int]:
    """HOST:PORT, or HOST alone when there is a `default_port` (0: any port, listen only).
    ValueError, saying what is wrong, for anything else."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, "" if default_port is None else str(default_port)
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r} is not HOST:PORT") from None
    lowest = 0 if default_port is not None else 1
    if not host or not lowest <= port <= 65535:
        raise ValueError(f"{text!r}: a host and a port {lowest}..65535")
    return host, port


@dataclass(frozen=True, slots=True, order=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(slots=True)
class Target:
    key: str  # the fingerprint, or "manual:host:port" for an address the user gave
    fingerprint: str | None  # for a manual address: whoever answered there last
    addresses: dict[Address, Source] = field(default_factory=dict)
    attempts: int = 0
    due_at: float = 0.0
    dialing: bool = False
    last_error: str | None = None
    last_error_address: Address | None = None
    last_attempt_at: float | None = None
    inbound_seen: bool = False  # the peer has dialled us: it can reach us

    @property
    def manual(self) -> bool:
        return self.key != self.fingerprint

    def ordered_addresses(self) -> list[Address]:
        return sorted(self.addresses, key=lambda a: self.addresses[a])


def _host(target: Target) -> str:
    """Where a dial goes first."""
    return target.ordered_addresses()[0].host


class ReachPlanner:
    def __init__(
        self,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        max_concurrent: int = 8,
        rng: random.Random | None = None,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_concurrent = max_concurrent
        self._rng = rng or random.Random()
        self._targets: dict[str, Target] = {}
        self._connected: set[str] = set()

    # ---- facts -----------------------------------------------------------------------

    def learn(
        self, fingerprint: str, address: Address, source: Source, now: float
    ) -> Target | None:
        """A hint that `fingerprint` may be reachable at `address`.

        mDNS is the freshest evidence that a peer is back, so it cuts a pending backoff
        short; hints from memory or other peers never do (no storms from stale lists).
        """
        target = self._targets.get(fingerprint)
        if target is None:
            if len(self._targets) >= MAX_TARGETS and not self._evict_one():
                return None
            target = self._targets[fingerprint] = Target(fingerprint, fingerprint, due_at=now)
        known = target.addresses.get(address)
        if known is None and len(target.addresses) >= MAX_ADDRESSES_PER_TARGET:
            worst = max(target.addresses, key=lambda a: target.addresses[a])
            if target.addresses[worst] <= source:
                return target
            del target.addresses[worst]
        if known is None or source < known:
            target.addresses[address] = source
        if source is Source.MDNS and not target.dialing:
            target.attempts = 0
            target.due_at = min(target.due_at, now)
        return target

    def _evict_one(self) -> bool:
        """Make room by dropping the learned target that failed most often (a flood of
        bogus hints must not lock real peers out of a bounded table)."""
        candidates = [
            t
            for t in self._targets.values()
            if not t.manual and not t.dialing and t.attempts and not self._satisfied(t)
        ]
        if not candidates:
            return False
        del self._targets[max(candidates, key=lambda t: t.attempts).key]
        return True

    def add_manual(self, address: Address, now: float) -> Target | None:
        key = f"manual:{address}"
        if key not in self._targets and len(self._targets) >= MAX_TARGETS and not self._evict_one():
            return None
        target = self._targets.setdefault(key, Target(key, None, due_at=now))
        target.addresses[address] = Source.MANUAL
        return target

    def remove_manual(self, address: Address) -> None:
        self._targets.pop(f"manual:{address}", None)

    def connected(self, fingerprint: str, *, inbound: bool) -> None:
        self._connected.add(fingerprint)
        target = self._targets.get(fingerprint)
        if target is not None:
            target.inbound_seen = target.inbound_seen or inbound

    def disconnected(self, fingerprint: str, now: float, *, refused: bool = False) -> None:
        """The session ended: try again soon (both sides do; the tie-break keeps one).

        `refused`: the peer turned the session away (it is full): back off as for a failed
        dial, or a full node would be redialled in a tight loop.
        """
        self._connected.discard(fingerprint)
        for target in self._targets.values():
            if target.fingerprint == fingerprint and not target.dialing:
                if refused:
                    target.last_error = "busy"
                    target.attempts += 1
                else:
                    target.attempts = 0
                target.due_at = now + self._delay(target.attempts)

    # ---- scheduling --------------------------------------------------------------------

    def _satisfied(self, target: Target) -> bool:
        return target.fingerprint is not None and target.fingerprint in self._connected

    def due(self, now: float) -> list[Target]:
        """Targets to dial now, marked as dialling; never more than `max_concurrent` at once
        nor `MAX_DIALS_PER_HOST` to one host, so a host announcing many identities (a
        tarpit that holds each dial until the handshake deadline) cannot take every slot.
        Targets known from more than mDNS (manual, remembered, exchanged) go first."""
        room = self.max_concurrent - sum(t.dialing for t in self._targets.values())
        per_host = collections.Counter(
            _host(t) for t in self._targets.values() if t.dialing and t.addresses
        )
        ready = [
            t
            for t in self._targets.values()
            if not t.dialing and t.addresses and t.due_at <= now and not self._satisfied(t)
        ]
        ready.sort(key=lambda t: (max(t.addresses.values()) is Source.MDNS, t.due_at))
        chosen: list[Target] = []
        for target in ready:
            if len(chosen) >= room:
                break
            host = _host(target)
            if per_host[host] >= MAX_DIALS_PER_HOST:
                continue
            per_host[host] += 1
            target.dialing = True
            target.last_attempt_at = now
            chosen.append(target)
        return chosen

    def next_due(self) -> float | None:
        waiting = [
            t.due_at
            for t in self._targets.values()
            if not t.dialing and t.addresses and not self._satisfied(t)
        ]
        return min(waiting, default=None)

    def dial_finished(
        self,
        target: Target,
        now: float,
        *,
        fingerprint: str | None = None,
        error: str | None = None,
        address: Address | None = None,
    ) -> None:
        target.dialing = False
        if error is None:
            # Attempts are reset when a session ends normally, not here: a peer that
            # accepts the handshake and then refuses the session must keep backing off.
            target.last_error = None
            if target.manual:
                target.fingerprint = fingerprint  # whoever answers at the address now
            return
        target.last_error, target.last_error_address = error, address
        target.due_at = now + self._delay(target.attempts)
        target.attempts += 1

    def _delay(self, attempts: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempts, 32))
        return float(
            ceiling * self._rng.uniform(0.5, 1.0)
        )  # jitter keeps peers from dialling in step

    # ---- queries -----------------------------------------------------------------------

    def target(self, key: str) -> Target | None:
        return self._targets.get(key)

    def targets(self) -> list[Target]:
        return list(self._targets.values())
