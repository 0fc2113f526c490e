"""Who I am on the LAN (issue 14, defects 4 and 5): a nick chosen once and kept, changed
live (connected peers see it without reconnecting), and an own status that every face
hears of and that a restart brings back.

Real nodes on 127.0.0.1 (no mDNS), real SQLite, the real settings file; the last test
drives real `p2pim daemon` processes and the one-shot `p2pim nick` / `p2pim status`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from p2pim import Identity, NodeConfig
from p2pim import events as ev
from p2pim.config import default_nick
from p2pim.node import Node, open_node
from p2pim.settings import Settings, who_i_am
from p2pim.testing.daemon_process import (
    DaemonProcess,
    connected_to,
    daemon_argv,
    since,
    start_daemon,
)
from p2pim.testing.vlan import LoopbackNamespace
from p2pim.wire.messages import Presence
from tests.support.nodes import loopback_config, next_event

HOST = "127.0.0.1"


def is_(kind: type, **fields: object) -> object:
    return lambda e: isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())


def peer_named(node: Node, fingerprint: str) -> tuple[str, bool]:
    (info,) = [p for p in node.peers() if p.fingerprint == fingerprint]
    return info.nick, info.connected


async def test_a_rename_reaches_a_connected_peer_at_once_without_reconnecting(
    tmp_path: Path,
) -> None:
    alice_id = Identity.generate()
    async with open_node(
        Identity.generate(), loopback_config("bob"), store_path=tmp_path / "b"
    ) as bob:
        bob_events = bob.subscribe()
        async with open_node(
            alice_id, loopback_config("alice"), store_path=tmp_path / "a"
        ) as alice:
            alice_events = alice.subscribe()
            assert bob.port is not None
            await alice.connect(HOST, bob.port)
            await next_event(bob_events, is_(ev.PeerConnected, fingerprint=alice.fingerprint))

            await alice.set_nick("Alice Martin")
            mine = await next_event(alice_events, is_(ev.SelfChanged))
            assert (mine.nick, mine.status, mine.automatic) == ("Alice Martin", "online", False)  # type: ignore[attr-defined]

            seen: list[ev.NodeEvent] = []

            def renamed(event: ev.NodeEvent) -> bool:
                seen.append(event)
                return isinstance(event, ev.PeerRenamed)

            event = await next_event(bob_events, renamed)
            assert event == ev.PeerRenamed(alice.fingerprint, "Alice Martin", "alice")
            # The same session all along: nothing went down or came up in between.
            assert not [e for e in seen if isinstance(e, ev.PeerDisconnected | ev.PeerConnected)]
            assert peer_named(bob, alice.fingerprint) == ("Alice Martin", True)
            assert alice.config.nick == "Alice Martin"

            # What alice sends now carries her new name.
            await alice.send_text(bob.fingerprint, "it is me")
            message = await next_event(bob_events, is_(ev.MessageReceived, text="it is me"))
            assert message.nick == "Alice Martin"  # type: ignore[attr-defined]

            # A status change alone leaves the name as it is; a bad name changes nothing.
            await alice.set_status("busy", "on a call")
            status = await next_event(bob_events, is_(ev.PeerStatusChanged))
            assert (status.status, status.status_text) == ("busy", "on a call")  # type: ignore[attr-defined]
            for bad in ("", "   ", "two\nlines", "x" * 65):
                with pytest.raises(ValueError, match="a nick"):
                    await alice.set_nick(bad)
            assert alice.config.nick == "Alice Martin"

        # Offline now: bob's stored record has the new name (rooms, exports, next start).
        await next_event(bob_events, is_(ev.PeerDisconnected, fingerprint=alice_id.fingerprint))
        assert peer_named(bob, alice_id.fingerprint) == ("Alice Martin", False)


async def test_a_presence_without_a_nick_changes_no_name(tmp_path: Path) -> None:
    """`nick: ""` on the wire means "unchanged" (docs/protocol.md, `presence`)."""
    async with open_node(
        Identity.generate(), loopback_config("bob"), store_path=tmp_path / "b"
    ) as bob:
        events = bob.subscribe()
        async with open_node(Identity.generate(), loopback_config("carol")) as carol:
            assert bob.port is not None
            await carol.connect(HOST, bob.port)
            await next_event(events, is_(ev.PeerConnected, fingerprint=carol.fingerprint))
            link = carol._links[bob.fingerprint]  # an independent client's bare presence
            await link.send(Presence("away", "gone fishing"))
            seen: list[ev.NodeEvent] = []

            def status(event: ev.NodeEvent) -> bool:
                seen.append(event)
                return isinstance(event, ev.PeerStatusChanged)

            await next_event(events, status)
            assert not [e for e in seen if isinstance(e, ev.PeerRenamed)]
            assert peer_named(bob, carol.fingerprint) == ("carol", True)


async def test_own_status_is_an_event_and_a_restart_brings_it_back(tmp_path: Path) -> None:
    profile, alice_id = tmp_path / "alice", Identity.generate()
    config = loopback_config("ignored")
    who_i_am(profile, config, "alice")
    async with open_node(alice_id, config, store_path=profile / "db") as alice:
        events = alice.subscribe()
        await alice.set_status("away", "in a meeting")
        mine = await next_event(events, is_(ev.SelfChanged))
        assert mine == ev.SelfChanged("alice", "away", "in a meeting", False)
        # Auto-away's changes are announced too, but not kept: a restart means the user
        # is back, with the status they chose.
        await alice.set_status("online", "in a meeting", automatic=True)
        automatic = await next_event(events, is_(ev.SelfChanged))
        assert (automatic.status, automatic.automatic) == ("online", True)  # type: ignore[attr-defined]
    saved = Settings.load(profile)
    assert (saved.nick, saved.status, saved.status_text) == ("alice", "away", "in a meeting")

    config = loopback_config("ignored")
    who_i_am(profile, config, None)
    async with (
        open_node(Identity.generate(), loopback_config("bob")) as bob,
        open_node(alice_id, config, store_path=profile / "db") as alice,
    ):
        assert alice.status == Presence("away", "in a meeting")
        assert (alice.config.nick, alice.config.profile) == ("alice", profile)
        events = bob.subscribe()
        assert alice.port is not None
        await bob.connect(HOST, alice.port)
        hello = await next_event(events, is_(ev.PeerConnected, fingerprint=alice.fingerprint))
        assert (hello.nick, hello.status, hello.status_text) == ("alice", "away", "in a meeting")  # type: ignore[attr-defined]


def test_a_nick_given_once_is_kept_and_a_fresh_profile_has_none(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    config = NodeConfig()
    settings = who_i_am(fresh, config, None)
    assert settings.nick == ""
    assert config.nick == default_nick()
    assert not (fresh / "settings.json").exists()

    profile = tmp_path / "zoe"
    who_i_am(profile, NodeConfig(), "Zoë Quinn")
    config = NodeConfig()
    assert who_i_am(profile, config, None).nick == "Zoë Quinn" == config.nick
    data = json.loads((profile / "settings.json").read_text(encoding="utf-8"))
    assert data["nick"] == "Zoë Quinn"

    with pytest.raises(ValueError, match="a nick"):
        who_i_am(profile, NodeConfig(), "bad\x1bname")
    # A one-shot node uses the saved name and changes nothing in the profile.
    config = NodeConfig()
    who_i_am(profile, config, "just once", remember=False)
    assert config.nick == "just once"
    assert config.profile is None
    assert Settings.load(profile).nick == "Zoë Quinn"


def test_the_default_nick_is_the_accounts_full_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    class Entry:
        pw_gecos = "Zoë Quinn,Room 4,,"

    monkeypatch.setattr(pwd, "getpwuid", lambda uid: Entry())
    assert default_nick() == "Zoë Quinn"
    Entry.pw_gecos = ""
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "zq")
    assert default_nick() == "zq"


# ---- the real processes: `p2pim daemon`, `p2pim nick`, `p2pim status` ---------------------


def p2pim(profile: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "p2pim", "--profile", str(profile), *args]


async def one_shot(profile: Path, *args: str) -> str:
    done = await trio.run_process(
        p2pim(profile, *args),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


async def test_p2pim_nick_and_status_change_a_running_daemon_live_and_for_good(
    tmp_path: Path,
) -> None:
    alice_profile = tmp_path / "alice"
    restarted = p2pim(alice_profile, "daemon", "--stdio", "--listen", f"{HOST}:0")
    restarted += ["--no-discovery", "--presence-timeout", "30"]
    async with trio.open_nursery() as nursery:
        bob = await start_daemon(
            nursery, daemon_argv(tmp_path / "bob", "bob", HOST, "--no-discovery")
        )
        alice: DaemonProcess | None = None
        try:
            with trio.fail_after(30):
                bob_port = (await bob.call("identity"))["port"]
                argv = daemon_argv(alice_profile, "alice", HOST, "--no-discovery")
                alice = await start_daemon(nursery, [*argv, "--peer", f"{HOST}:{bob_port}"])
                alice_fp = (await alice.call("identity"))["fingerprint"]
                await bob.wait_event(connected_to(alice_fp))

                renamed = since(bob, lambda e: e["type"] == "peer_renamed")
                assert (await one_shot(alice_profile, "nick", "Alice Martin")).strip() == (
                    "Alice Martin"
                )
                event = await bob.wait_event(renamed)
                assert (event["nick"], event["previous_nick"]) == ("Alice Martin", "alice")
                peers = await bob.call("peers")
                assert [(p["nick"], p["connected"]) for p in peers] == [("Alice Martin", True)]
                await one_shot(alice_profile, "status", "away", "in a meeting")

            await alice.stop()
            alice = await start_daemon(nursery, restarted)  # no --nick this time
            with trio.fail_after(30):
                me = await alice.call("identity")
            assert (me["nick"], me["status"], me["status_text"]) == (
                "Alice Martin",
                "away",
                "in a meeting",
            )
        finally:
            with trio.CancelScope(shield=True):
                if alice is not None:
                    await alice.stop()
                await bob.stop()
            nursery.cancel_scope.cancel()

    # Without a running node, `p2pim nick` changes what the next start uses (it never
    # starts a node).
    assert "next start" in await one_shot(alice_profile, "nick", "Alice M.")
    saved = Settings.load(alice_profile)
    assert (saved.nick, saved.status, saved.status_text) == ("Alice M.", "away", "in a meeting")


# ---- mDNS: the TXT record follows a rename ------------------------------------------------


@pytest.mark.netns
async def test_a_rename_is_re_announced_in_the_mdns_txt(
    loopback_ns: LoopbackNamespace, tmp_path: Path
) -> None:
    """Peers that only know us from mDNS (not connected yet, or never) see the new name
    too: the record's TXT `nick` is re-announced (namespace with multicast on lo)."""
    async with trio.open_nursery() as nursery:
        alice = await start_daemon(
            nursery, loopback_ns.command(daemon_argv(tmp_path / "alice", "alice", HOST))
        )
        bob = await start_daemon(
            nursery, loopback_ns.command(daemon_argv(tmp_path / "bob", "bob", HOST))
        )
        try:
            with trio.fail_after(30):
                alice_fp = (await alice.call("identity"))["fingerprint"]
                await bob.wait_event(connected_to(alice_fp))  # found by mDNS, then dialled

                advert = since(
                    bob,
                    lambda e: (
                        e["type"] == "peer_discovered"
                        and e["fingerprint_hint"] == alice_fp
                        and e["nick"] == "Alice Martin"
                    ),
                )
                await alice.call("set_nick", nick="Alice Martin")
                await bob.wait_event(advert)
        finally:
            with trio.CancelScope(shield=True):
                await alice.stop()
                await bob.stop()
            nursery.cancel_scope.cancel()
