"""`Reacher` fed facts without a network: manual peers, exchanged peer lists and mDNS
adverts become reach targets (or are refused), and `reachability()` reports them.  Its
loops are not run here: nothing is dialled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import pytest
import trio

from p2pim import events
from p2pim.config import NodeConfig
from p2pim.directory import PeerDirectory
from p2pim.discovery import DiscoveryEvent, PeerAdvertised, PeerWithdrawn
from p2pim.identity import Identity
from p2pim.net.link import PeerLink
from p2pim.reaching import Reacher
from p2pim.sessions import Sessions
from p2pim.storage import Database, Store
from p2pim.wire.messages import PROTOCOL_VERSION, PeerAddress, PeerList


@dataclass
class Setup:
    me: Identity
    reacher: Reacher
    directory: PeerDirectory
    store: Store
    heard: list[events.NodeEvent] = field(default_factory=list)


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    me, config = Identity.generate(), NodeConfig(nick="me")
    heard: list[events.NodeEvent] = []

    async def emit(event: events.NodeEvent) -> None:
        heard.append(event)

    sessions = Sessions(me, config)
    async with Store.open(":memory:") as store:
        directory = PeerDirectory(me, config, sessions.links, emit)
        await directory.load(store)
        reacher = Reacher(config, sessions, directory, emit)
        await reacher.load(store)
        yield Setup(me, reacher, directory, store, heard)


async def test_a_manual_peer_is_checked_kept_and_reported(setup: Setup) -> None:
    with pytest.raises(ValueError, match="host"):
        await setup.reacher.add_manual("", 4000)
    with pytest.raises(ValueError, match="port"):
        await setup.reacher.add_manual("192.0.2.1", 0)
    await setup.reacher.add_manual("192.0.2.1", 4000)
    assert await setup.store.run(Database.manual_peers) == [("192.0.2.1", 4000)]
    [report] = setup.reacher.reachability()
    assert (report.fingerprint, report.addresses) == (None, ("192.0.2.1:4000",))
    assert report.diagnosis == "not tried yet or no failure"
    await setup.reacher.remove_manual("192.0.2.1", 4000)
    assert setup.reacher.reachability() == []


async def test_an_exchanged_list_teaches_only_dialable_strangers(setup: Setup) -> None:
    ann, bob = Identity.generate(), Identity.generate()
    peers = (
        PeerAddress(ann.public_key, "192.0.2.5", 4000),
        PeerAddress(bob.public_key, "not-an-address", 4000),  # no DNS on a peer's say-so
        PeerAddress(setup.me.public_key, "192.0.2.6", 4000),  # ourselves
    )
    await setup.reacher.on_peer_list(cast(PeerLink, None), PeerList(peers))
    [report] = setup.reacher.reachability()
    assert (report.fingerprint, report.addresses) == (ann.fingerprint, ("192.0.2.5:4000",))
    assert setup.reacher.statistics().targets == 1


async def test_adverts_become_targets_and_events(setup: Setup) -> None:
    ann = Identity.generate().fingerprint
    send, receive = trio.open_memory_channel[DiscoveryEvent](8)
    async with send:
        await send.send(PeerAdvertised("me", setup.me.fingerprint, "me", ("192.0.2.9",), 1, 1, ""))
        await send.send(PeerAdvertised("old", ann, "ann", ("192.0.2.8",), 1, 0, "online"))
        await send.send(
            PeerAdvertised("ann", ann, "ann", ("192.0.2.7",), 4000, PROTOCOL_VERSION, "away")
        )
        await send.send(PeerWithdrawn("ann"))
    await setup.reacher.consume_adverts(receive)
    assert setup.heard == [events.PeerDiscovered(ann, "ann", ("192.0.2.7",), 4000, "away")]
    [report] = setup.reacher.reachability()
    assert report.addresses == ("192.0.2.7:4000",)  # still worth a try after the withdrawal
    assert setup.directory.statistics().adverts == 0
