"""Pilot tests of the terminal UI against real nodes on loopback: two UIs meet, chat,
and one quits gracefully."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from p2pim.ui.app import P2pimApp
from p2pim.ui.conversation import MessageView
from p2pim.ui.sidebar import Sidebar
from tests.support.nodes import loopback_node
from tests.support.tui_harness import UiThread


def sidebar_text(app: P2pimApp) -> str:
    sidebar = app.query_one(Sidebar)
    return "\n".join(
        str(sidebar.get_option_at_index(i).prompt) for i in range(sidebar.option_count)
    )


def shown_messages(app: P2pimApp) -> list[str]:
    return [str(view.render()) for view in app.query(MessageView)]


@pytest.fixture
def two_uis(tmp_path: Path) -> Iterator[tuple[UiThread, UiThread]]:
    alice = UiThread(P2pimApp(loopback_node("alice", tmp_path / "alice")))
    try:
        bob = UiThread(P2pimApp(loopback_node("bob", tmp_path / "bob")))
        try:
            yield alice, bob
        finally:
            bob.close()
    finally:
        alice.close()


def connect(alice: UiThread, bob: UiThread) -> None:
    port = bob.app.node.port
    assert port is not None

    async def add(pilot: Pilot[None]) -> None:
        await alice.app.call(alice.app.node.add_peer, "127.0.0.1", port)

    alice.do(add)


def test_two_uis_see_each_other_appear_and_chat(two_uis: tuple[UiThread, UiThread]) -> None:
    alice, bob = two_uis
    assert "nobody yet" in sidebar_text(alice.app)
    connect(alice, bob)
    alice.wait_until(lambda app: "● bob" in sidebar_text(app))
    bob.wait_until(lambda app: "● alice" in sidebar_text(app))

    async def say_hello(pilot: Pilot[None]) -> None:
        await pilot.click(Sidebar)  # focus the list, then pick bob with the keyboard
        sidebar = pilot.app.query_one(Sidebar)
        sidebar.highlighted = sidebar.get_option_index(bob.app.node.fingerprint)
        await pilot.press("enter")
        await pilot.press(*"hello bob", "enter")

    alice.do(say_hello)
    alice.wait_until(lambda app: any("hello bob" in m for m in shown_messages(app)))
    alice.wait_until(lambda app: any("✓✓" in m for m in shown_messages(app)))  # delivered
    bob.wait_until(lambda app: "alice 1" in sidebar_text(app))  # unread badge

    async def open_alice(pilot: Pilot[None]) -> None:
        pilot.app.open_conversation(alice.app.node.fingerprint)

    bob.do(open_alice)
    bob.wait_until(lambda app: any("alice: hello bob" in m for m in shown_messages(app)))
    alice.wait_until(lambda app: any("read" in m for m in shown_messages(app)))


def test_quitting_says_goodbye_and_leaves_no_thread(two_uis: tuple[UiThread, UiThread]) -> None:
    alice, bob = two_uis
    connect(alice, bob)
    alice.wait_until(lambda app: "● bob" in sidebar_text(app))
    before = {t.ident for t in threading.enumerate()}

    bob.quit()
    # A goodbye, not a timeout: alice sees bob offline well before presence_timeout (5 s).
    alice.wait_until(lambda app: "○ bob" in sidebar_text(app), timeout=2)
    assert bob.app.return_code == 0
    assert not bob.app.bridge.running
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert all(t.name.startswith("Trio thread") and t.daemon for t in leftover), leftover
