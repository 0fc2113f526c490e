"""Trust on first use, key changes, safety numbers and pairing, between real nodes on
loopback TCP with real SQLite stores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from p2pim import Identity, open_node
from p2pim.api import PairingError, PeerKeyChangedError
from p2pim.events import (
    PairingFailed,
    PeerConnected,
    PeerDisconnected,
    PeerKeyChanged,
    PeerTrustChanged,
)
from p2pim.node import Node
from p2pim.trust import KEY_CHANGED, UNVERIFIED, VERIFIED, trust_for_new_key
from tests.support.nodes import loopback_config, next_event

config = loopback_config
wait_for = next_event


def trust_of(node: Node, fp: str) -> str | None:
    return next((p.trust for p in node.peers() if p.fingerprint == fp), None)


@dataclass
class Known:
    fingerprint: str
    nick: str
    last_seen: int


def test_trust_rules() -> None:
    old = Known("1" * 64, "Bob", 10)
    older = Known("2" * 64, "bob", 5)
    assert trust_for_new_key("3" * 64, "carol", [old], set()) == (UNVERIFIED, None)
    assert trust_for_new_key("3" * 64, "BOB", [old, older], set()) == (KEY_CHANGED, old.fingerprint)
    # The known holder of the nick is online right now: a look-alike, not a key change.
    assert trust_for_new_key("3" * 64, "bob", [old], {old.fingerprint}) == (UNVERIFIED, None)


async def test_new_key_under_a_known_nick_blocks_sending_until_verified(tmp_path: Path) -> None:
    async with open_node(Identity.generate(), config("alice"), store_path=tmp_path / "a.db") as a:
        events = a.subscribe()
        first_bob = Identity.generate()
        async with open_node(first_bob, config("bob")) as bob:
            await bob.connect("127.0.0.1", a.port, a.fingerprint)
            await wait_for(events, lambda e: isinstance(e, PeerConnected))
        await wait_for(events, lambda e: isinstance(e, PeerDisconnected))

        # "bob" comes back with a fresh key (reinstall, or someone pretending).
        async with open_node(Identity.generate(), config("bob")) as new_bob:
            await new_bob.connect("127.0.0.1", a.port, a.fingerprint)
            changed = await wait_for(events, lambda e: isinstance(e, PeerKeyChanged))
            assert isinstance(changed, PeerKeyChanged)
            assert (changed.fingerprint, changed.previous_fingerprint) == (
                new_bob.fingerprint,
                first_bob.fingerprint,
            )
            connected = await wait_for(events, lambda e: isinstance(e, PeerConnected))
            assert connected.trust == KEY_CHANGED  # type: ignore[union-attr]
            with pytest.raises(PeerKeyChangedError):
                await a.send_text(new_bob.fingerprint, "are you really bob?")

            assert a.safety_number(new_bob.fingerprint) == new_bob.safety_number(a.fingerprint)
            await a.verify(new_bob.fingerprint)  # numbers compared out of band
            assert trust_of(a, new_bob.fingerprint) == VERIFIED
            await a.send_text(new_bob.fingerprint, "welcome back")


async def test_pins_survive_restarts(tmp_path: Path) -> None:
    alice, bob = Identity.generate(), Identity.generate()
    for expected in (UNVERIFIED, VERIFIED):
        async with (
            open_node(alice, config("alice"), store_path=tmp_path / "a.db") as a,
            open_node(bob, config("bob")) as b,
        ):
            events = a.subscribe()
            await b.connect("127.0.0.1", a.port, a.fingerprint)
            connected = await wait_for(events, lambda e: isinstance(e, PeerConnected))
            assert connected.trust == expected  # type: ignore[union-attr]
            await a.verify(bob.fingerprint)
    async with open_node(alice, config("alice"), store_path=tmp_path / "a.db") as a:
        assert trust_of(a, bob.fingerprint) == VERIFIED  # no session, still remembered


async def test_pairing_with_the_right_code_verifies_both_sides() -> None:
    async with (
        open_node(Identity.generate(), config("a")) as a,
        open_node(Identity.generate(), config("b")) as b,
    ):
        b_events = b.subscribe()
        code = b.start_pairing()
        assert await a.pair("127.0.0.1", b.port, code) == b.fingerprint
        await wait_for(b_events, lambda e: isinstance(e, PeerTrustChanged))
        assert trust_of(a, b.fingerprint) == VERIFIED
        assert trust_of(b, a.fingerprint) == VERIFIED
        assert a.safety_number(b.fingerprint) == b.safety_number(a.fingerprint)


async def test_a_wrong_code_fails_pins_nothing_and_burns_the_code() -> None:
    async with (
        open_node(Identity.generate(), config("a")) as a,
        open_node(Identity.generate(), config("b")) as b,
    ):
        b_events = b.subscribe()
        code = b.start_pairing()
        wrong = "000000" if code.replace("-", "") != "000000" else "000001"
        with pytest.raises(PairingError):
            await a.pair("127.0.0.1", b.port, wrong)
        await wait_for(b_events, lambda e: isinstance(e, PairingFailed))
        assert a.peers() == []
        assert b.peers() == []
        # One guess per code: even the right code is now refused.
        with pytest.raises(PairingError):
            await a.pair("127.0.0.1", b.port, code)
        assert a.peers() == []
        assert b.peers() == []


async def test_pairing_without_a_code_on_the_other_side_fails() -> None:
    async with (
        open_node(Identity.generate(), config("a")) as a,
        open_node(Identity.generate(), config("b")) as b,
    ):
        b_events = b.subscribe()
        with pytest.raises(PairingError):
            await a.pair("127.0.0.1", b.port, "123456")
        assert b.peers() == []
        # No code was spent, so there was no pairing to fail on b's side.
        assert b_events.statistics().current_buffer_used == 0


async def test_pairing_an_already_connected_peer_verifies_it() -> None:
    async with (
        open_node(Identity.generate(), config("a")) as a,
        open_node(Identity.generate(), config("b")) as b,
    ):
        events = a.subscribe()
        await a.connect("127.0.0.1", b.port, b.fingerprint)
        await wait_for(events, lambda e: isinstance(e, PeerConnected))
        assert trust_of(a, b.fingerprint) == UNVERIFIED
        await a.pair("127.0.0.1", b.port, b.start_pairing())
        await wait_for(events, lambda e: isinstance(e, PeerTrustChanged))
        assert trust_of(a, b.fingerprint) == VERIFIED


async def test_a_full_trust_store_refuses_new_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("p2pim.directory.MAX_KNOWN_PEERS", 1)
    async with open_node(Identity.generate(), config("a")) as a:
        events = a.subscribe()
        async with open_node(Identity.generate(), config("b")) as b:
            await b.connect("127.0.0.1", a.port, a.fingerprint)
            await wait_for(events, lambda e: isinstance(e, PeerConnected))
        async with open_node(Identity.generate(), config("c")) as c:
            c_events = c.subscribe()
            await c.connect("127.0.0.1", a.port, a.fingerprint)
            gone = await wait_for(c_events, lambda e: isinstance(e, PeerDisconnected))
            assert gone.reason == "busy"  # type: ignore[union-attr]
        assert [p.nick for p in a.peers()] == ["b"]
