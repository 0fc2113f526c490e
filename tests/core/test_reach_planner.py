"""The dialling plan: backoff, hint precedence and bounds (pure logic, fake time)."""

from __future__ import annotations

import random

from p2pim.reach import (
    MAX_ADDRESSES_PER_TARGET,
    MAX_TARGETS,
    Address,
    ReachPlanner,
    Source,
)

FP = "a" * 64
HERE = Address("198.18.0.10", 4000)


def planner(**kw: object) -> ReachPlanner:
    return ReachPlanner(rng=random.Random(7), **kw)  # type: ignore[arg-type]


def fail(p: ReachPlanner, now: float) -> float:
    """Dial the only target at `now`, fail, and return when it is due again."""
    [target] = p.due(now)
    p.dial_finished(target, now, error="refused", address=HERE)
    due = p.next_due()
    assert due is not None
    return due - now


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    p = planner(base_delay=0.5, max_delay=8.0)
    p.learn(FP, HERE, Source.REMEMBERED, 0.0)
    now, delays = 0.0, []
    for _ in range(10):
        delay = fail(p, now)
        delays.append(delay)
        now += delay
    for attempt, delay in enumerate(delays):
        ceiling = min(8.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays[6:]) <= 8.0


def test_nothing_is_due_while_waiting_or_dialling() -> None:
    p = planner()
    p.learn(FP, HERE, Source.REMEMBERED, 0.0)
    [target] = p.due(0.0)
    assert p.due(0.0) == []  # one dial in flight per target
    assert p.next_due() is None
    p.dial_finished(target, 0.0, error="timed out")
    assert p.due(0.0) == []


def test_mdns_cuts_backoff_short_but_hearsay_does_not() -> None:
    p = planner(base_delay=1.0, max_delay=60.0)
    p.learn(FP, HERE, Source.REMEMBERED, 0.0)
    now = 0.0
    for _ in range(5):
        now += fail(p, now)
    now -= 0.001  # just before the sixth attempt is due
    p.learn(FP, Address("198.18.1.10", 4000), Source.EXCHANGE, now)
    assert p.due(now) == []  # stale lists from other peers cause no storm
    p.learn(FP, HERE, Source.MDNS, now)
    assert [t.fingerprint for t in p.due(now)] == [FP]


def test_connected_peers_are_not_dialled_and_a_lost_one_is_retried_soon() -> None:
    p = planner(base_delay=0.5)
    p.learn(FP, HERE, Source.MDNS, 0.0)
    p.connected(FP, inbound=True)
    assert p.due(100.0) == []
    p.disconnected(FP, 100.0)
    due = p.next_due()
    assert due is not None
    assert 100.0 < due <= 100.5
    assert p.target(FP) is not None
    assert p.target(FP).inbound_seen


def test_addresses_prefer_better_sources_and_stay_bounded() -> None:
    p = planner()
    for i in range(3 * MAX_ADDRESSES_PER_TARGET):
        p.learn(FP, Address(f"10.0.0.{i}", 1), Source.EXCHANGE, 0.0)
    p.learn(FP, HERE, Source.MDNS, 0.0)
    target = p.target(FP)
    assert target is not None
    assert len(target.addresses) == MAX_ADDRESSES_PER_TARGET
    assert target.ordered_addresses()[0] == HERE


def test_targets_are_bounded() -> None:
    p = planner()
    for i in range(MAX_TARGETS + 10):
        p.learn(f"{i:064x}", HERE, Source.EXCHANGE, 0.0)
    assert len(p.targets()) == MAX_TARGETS


def test_concurrent_dials_are_capped() -> None:
    p = planner(max_concurrent=3)
    for i in range(10):
        p.learn(f"{i:064x}", Address(f"192.0.2.{i + 1}", 4000), Source.MDNS, 0.0)
    assert len(p.due(0.0)) == 3
    assert p.due(0.0) == []


def test_one_host_announcing_many_identities_gets_two_dials_and_real_peers_go_first() -> None:
    """A tarpit announcing a thousand fake identities cannot hold every dial slot."""
    p = planner(max_concurrent=8)
    for i in range(1000):
        p.learn(f"{i:064x}", Address("192.0.2.66", 4000 + i), Source.MDNS, 0.0)
    p.learn(FP, Address("192.0.2.7", 4000), Source.MDNS, 1.0)  # a real peer, announced later
    remembered = "e" * 64
    p.learn(remembered, Address("192.0.2.8", 4000), Source.REMEMBERED, 1.0)
    dialled = p.due(1.0)
    assert dialled[0].key == remembered  # known from more than mDNS: first
    assert FP in [t.key for t in dialled]
    assert sum(t.ordered_addresses()[0].host == "192.0.2.66" for t in dialled) == 2
    assert p.due(1.0) == []  # the tarpit's two slots are taken; nothing else is due


def test_a_manual_address_learns_its_identity() -> None:
    p = planner()
    target = p.add_manual(HERE, 0.0)
    assert target is not None
    assert target.fingerprint is None
    [dialled] = p.due(0.0)
    p.dial_finished(dialled, 0.0, fingerprint=FP)
    p.connected(FP, inbound=False)
    assert p.due(1000.0) == []  # satisfied by the session with the identity found there
    p.remove_manual(HERE)
    assert p.targets() == []


def test_a_peer_that_refuses_sessions_is_backed_off_not_hammered() -> None:
    p = planner(base_delay=0.5, max_delay=30.0)
    p.learn(FP, HERE, Source.MDNS, 0.0)
    now, delays = 0.0, []
    for _ in range(6):  # handshake succeeds, then the peer says bye("busy")
        [target] = p.due(now)
        p.dial_finished(target, now, fingerprint=FP)
        p.connected(FP, inbound=False)
        p.disconnected(FP, now, refused=True)
        due = p.next_due()
        assert due is not None
        delays.append(due - now)
        now = due
    assert delays[-1] > 4 * delays[0]
    assert p.target(FP).last_error == "busy"  # type: ignore[union-attr]


def test_a_full_table_evicts_the_most_failed_learned_target() -> None:
    p = planner(max_concurrent=MAX_TARGETS)
    for i in range(MAX_TARGETS):
        p.learn(f"{i:064x}", HERE, Source.EXCHANGE, 0.0)
    for target in p.due(0.0):  # every bogus hint fails
        p.dial_finished(target, 0.0, error="refused")
    real = "f" * 64
    assert p.learn(real, HERE, Source.MDNS, 1.0) is not None
    assert len(p.targets()) == MAX_TARGETS


def test_an_address_is_host_and_port_or_a_plain_refusal() -> None:
    import pytest

    from p2pim.reach import parse_address

    assert parse_address("10.0.0.2:7000") == ("10.0.0.2", 7000)
    assert parse_address("[::1]:7000") == ("[::1]", 7000)
    assert parse_address("0.0.0.0", 0) == ("0.0.0.0", 0)  # a listen address: any port
    for bad in ("10.0.0.2", ":7000", "host:port", "host:0", "host:70000"):
        with pytest.raises(ValueError, match=r"HOST:PORT|a host and a port"):
            parse_address(bad)
