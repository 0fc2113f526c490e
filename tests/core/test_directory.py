"""`PeerDirectory` on a memory store with stand-in links: trust on first use, key changes,
the trust store's bound, verification, renames, the advert table's bounds, and block and
mute persisting.  No sockets: what a link tells the directory is a few attributes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import pytest

from p2pim import directory as directory_module
from p2pim import events, trust
from p2pim.api import PeerKeyChangedError, PeerUnknown
from p2pim.config import NodeConfig
from p2pim.directory import MAX_ADVERTS_PER_ADDRESS, PeerDirectory
from p2pim.discovery import PeerAdvertised
from p2pim.identity import Identity, fingerprint, safety_number
from p2pim.net.link import PeerLink
from p2pim.storage import Database, Store
from p2pim.wire.messages import PROTOCOL_VERSION, Hello, Presence


@dataclass
class StandInLink:
    """The attributes of a `PeerLink` the directory reads."""

    remote_static: bytes
    hello: Hello
    paired: bool = False
    address: str = "192.0.2.1"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.remote_static)

    @property
    def remote_nick(self) -> str:
        return self.hello.nick


def link_of(identity: Identity, nick: str, *, paired: bool = False) -> PeerLink:
    hello = Hello(PROTOCOL_VERSION, nick, "online", "", 0, 10_000)
    return cast(PeerLink, StandInLink(identity.public_key, hello, paired))


@dataclass
class Setup:
    directory: PeerDirectory
    store: Store
    links: dict[str, PeerLink]
    heard: list[events.NodeEvent] = field(default_factory=list)


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    me = Identity.generate()
    links: dict[str, PeerLink] = {}
    heard: list[events.NodeEvent] = []

    async def emit(event: events.NodeEvent) -> None:
        heard.append(event)

    async with Store.open(":memory:") as store:
        directory = PeerDirectory(me, NodeConfig(nick="me"), links, emit)
        await directory.load(store)
        yield Setup(directory, store, links, heard)


async def test_a_first_key_is_pinned_unverified_and_kept(setup: Setup) -> None:
    ann = Identity.generate()
    record = await setup.directory.pin(link_of(ann, "ann"))
    assert record.trust == trust.UNVERIFIED
    assert setup.directory.knows(ann.fingerprint)
    assert setup.directory.public_key(ann.fingerprint) == ann.public_key
    [stored] = await setup.store.run(Database.peers)
    assert (stored.fingerprint, stored.nick) == (ann.fingerprint, "ann")
    me = setup.directory.identity
    expected = safety_number(me.public_key, ann.public_key)
    assert setup.directory.safety_number(ann.fingerprint) == expected


async def test_a_new_key_under_a_known_offline_nick_is_a_key_change(setup: Setup) -> None:
    old, new = Identity.generate(), Identity.generate()
    await setup.directory.pin(link_of(old, "ann"))
    record = await setup.directory.pin(link_of(new, "ann"))
    assert record.trust == trust.KEY_CHANGED
    assert events.PeerKeyChanged(new.fingerprint, "ann", old.fingerprint) in setup.heard
    with pytest.raises(PeerKeyChangedError):
        setup.directory.check_sendable(new.fingerprint)
    assert not setup.directory.may_message(new.fingerprint)
    await setup.directory.verify(new.fingerprint)
    setup.directory.check_sendable(new.fingerprint)  # verified: allowed again
    assert events.PeerTrustChanged(new.fingerprint, trust.VERIFIED) in setup.heard


async def test_a_paired_link_is_verified_at_once(setup: Setup) -> None:
    bob = Identity.generate()
    record = await setup.directory.pin(link_of(bob, "bob", paired=True))
    assert record.trust == trust.VERIFIED


async def test_a_full_trust_store_refuses_new_keys_only(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directory_module, "MAX_KNOWN_PEERS", 1)
    ann = Identity.generate()
    assert setup.directory.can_pin(ann.fingerprint)
    await setup.directory.pin(link_of(ann, "ann"))
    assert setup.directory.can_pin(ann.fingerprint)  # a known key still may
    assert not setup.directory.can_pin(Identity.generate().fingerprint)


async def test_unknown_peers_are_refused(setup: Setup) -> None:
    stranger = Identity.generate().fingerprint
    with pytest.raises(PeerUnknown):
        setup.directory.safety_number(stranger)
    with pytest.raises(PeerUnknown):
        await setup.directory.verify(stranger)
    with pytest.raises(PeerUnknown):
        setup.directory.check_sendable(stranger)
    with pytest.raises(PeerUnknown):
        await setup.directory.set_group("team", [stranger])


async def test_a_rename_is_kept_and_reported(setup: Setup) -> None:
    ann = Identity.generate()
    link = link_of(ann, "ann")
    await setup.directory.pin(link)
    setup.links[ann.fingerprint] = link
    await setup.directory.on_presence(link, Presence("away", "lunch", "annie"))
    assert events.PeerRenamed(ann.fingerprint, "annie", "ann") in setup.heard
    assert setup.directory.nick_of(ann.fingerprint) == "annie"
    [info] = setup.directory.peers()
    assert (info.nick, info.status, info.status_text) == ("annie", "away", "lunch")
    [stored] = await setup.store.run(Database.peers)
    assert stored.nick == "annie"


def advert(instance: str, host: str) -> PeerAdvertised:
    hint = Identity.generate().fingerprint
    return PeerAdvertised(instance, hint, instance, (host,), 4000, PROTOCOL_VERSION, "online")


async def test_one_address_gets_a_few_advert_slots(setup: Setup) -> None:
    kept = [setup.directory.advertised(advert(f"n{i}", "192.0.2.7")) for i in range(20)]
    assert kept.count(True) == MAX_ADVERTS_PER_ADDRESS
    assert setup.directory.advertised(advert("other", "192.0.2.8"))  # others still fit
    setup.directory.withdrawn("n0")
    assert setup.directory.statistics().adverts == MAX_ADVERTS_PER_ADDRESS


async def test_block_and_mute_persist(setup: Setup) -> None:
    peer = Identity.generate().fingerprint
    await setup.directory.block(peer)
    await setup.directory.mute(peer)
    with pytest.raises(ValueError, match="yourself"):
        await setup.directory.block(setup.directory.identity.fingerprint)
    reloaded = PeerDirectory(setup.directory.identity, NodeConfig(nick="me"), {}, _ignore)
    await reloaded.load(setup.store)
    assert peer in reloaded.blocked
    assert peer in reloaded.muted
    await reloaded.unblock(peer)
    assert peer not in reloaded.blocked


async def _ignore(event: events.NodeEvent) -> None:
    pass
