"""Text typed right after Ctrl+K opens a conversation, while that conversation's history
still loads, goes to that conversation: it used to be submitted before the conversation
was open, and went nowhere ("Pick a person…") or to the one open before.

Deterministic: the history load is held open (the node's `history` waits on a trio event)
until the app has handled the Enter; only then is the load let go.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from textual.pilot import Pilot

from p2pim import Identity, NodeConfig
from p2pim.node import Node
from p2pim.storage import Database
from p2pim.ui.app import P2pimApp
from p2pim.ui.composer import Composer
from p2pim.ui.jump import JumpScreen

ME, BEN = Identity.from_seed(b"\1" * 32), Identity.from_seed(b"\2" * 32)
WAIT = 10  # seconds any one step may take before the test fails


class SubmitProbe(P2pimApp):
    """The app, telling the test when it has handled a submitted text."""

    handled: asyncio.Event

    async def on_composer_submitted(self, message: Composer.Submitted) -> None:
        await super().on_composer_submitted(message)
        message.prevent_default()  # the base class's handler ran just now, through super()
        self.handled.set()


def make_app(home: Path, *others: tuple[Identity, str]) -> SubmitProbe:
    """A node that knows ben (offline: a message to him is queued), and has no history."""
    home.mkdir(parents=True, exist_ok=True)
    with Database.open(home / "p2pim.sqlite") as db:
        for identity, nick in [(BEN, "ben"), *others]:
            db.pin_peer(identity.public_key, identity.fingerprint, nick, 0, "unverified")
    config = NodeConfig(
        nick="me", listen_host="127.0.0.1", discovery=False, download_dir=home / "downloads"
    )
    return SubmitProbe(Node(ME, config, store_path=home / "p2pim.sqlite"))


async def settle(pilot: Pilot[None], done: Callable[[], bool]) -> None:
    """Until `done()`, for at most WAIT seconds (the assertions after it say what was wrong)."""
    deadline = time.monotonic() + WAIT
    while not done() and time.monotonic() < deadline:
        await pilot.pause(0.02)


def sent(app: P2pimApp) -> bool:
    return any(line.outgoing for line in app.model.conversations.get(BEN.fingerprint, []))


def test_text_typed_while_the_jumped_to_conversation_loads_goes_there(tmp_path: Path) -> None:
    app = make_app(tmp_path / "me")
    loading, release = asyncio.Event(), trio.Event()
    history = app.node.history

    async def held_history(peer: str, **kwargs: Any) -> Any:
        loading.set()  # trio runs as a guest on the app's loop: same thread
        await release.wait()
        return await history(peer, **kwargs)

    app.node.history = held_history  # type: ignore[method-assign]

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, JumpScreen)
        await pilot.press(*"ben", "enter")
        await asyncio.wait_for(loading.wait(), WAIT)  # ben's history is being read
        assert app.model.current is None  # not open yet
        await pilot.press(*"right away", "enter")
        await asyncio.wait_for(app.handled.wait(), WAIT)
        await app.call(release.set)
        await settle(pilot, lambda: sent(app))

    async def main() -> None:
        app.handled = asyncio.Event()
        async with app.run_test() as pilot:
            await scenario(pilot)
            assert app.model.current == BEN.fingerprint
            lines = app.model.conversations.get(BEN.fingerprint, [])
            assert [(line.text, line.outgoing) for line in lines] == [("right away", True)]
            stored = await app.call(history, BEN.fingerprint)
            assert [m.body for m in stored] == ["right away"]  # queued for ben

    asyncio.run(main())


def test_text_typed_in_the_same_burst_as_the_jump_goes_to_the_conversation(
    tmp_path: Path,
) -> None:
    """Ctrl+K, the name, Enter and the message in one burst (typing ahead, a paste): the
    keys after Enter reached the jump dialog's field while it closed, and were lost.  And
    Enter chooses what the name typed just ahead of it matches, not amy (first in the
    list before the name's change message came round)."""
    from textual import events

    app = make_app(tmp_path / "me", (Identity.from_seed(b"\3" * 32), "amy"))

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, JumpScreen)
        burst = [*[(c, c) for c in "ben"], ("enter", None), *[(c, c) for c in "hi ben"]]
        for key, character in [*burst, ("enter", None)]:  # queued together, no await between
            app.post_message(events.Key(key, character))
        await asyncio.wait_for(app.handled.wait(), WAIT)
        await settle(pilot, lambda: sent(app))

    async def main() -> None:
        app.handled = asyncio.Event()
        async with app.run_test() as pilot:
            await scenario(pilot)
            assert app.model.current == BEN.fingerprint
            lines = app.model.conversations.get(BEN.fingerprint, [])
            assert [(line.text, line.outgoing) for line in lines] == [("hi ben", True)]
            assert not isinstance(app.screen, JumpScreen)

    asyncio.run(main())


def test_text_typed_for_a_conversation_that_fails_to_open_goes_back_to_the_input(
    tmp_path: Path,
) -> None:
    """The jumped-to conversation's history is refused: what was typed for it is not sent
    to the conversation open before (amy's here), it waits in the input, with a notice."""
    amy = Identity.from_seed(b"\3" * 32)
    app = make_app(tmp_path / "me", (amy, "amy"))
    loading, release = asyncio.Event(), trio.Event()
    history = app.node.history

    async def refused_for_ben(peer: str, **kwargs: Any) -> Any:
        if peer != BEN.fingerprint:
            return await history(peer, **kwargs)
        loading.set()
        await release.wait()
        raise ValueError("ben's history cannot be read")

    app.node.history = refused_for_ben  # type: ignore[method-assign]

    async def scenario(pilot: Pilot[None]) -> None:
        for name in ("amy", "ben"):
            await pilot.press("ctrl+k")
            assert isinstance(app.screen, JumpScreen)
            await pilot.press(*name, "enter")
            if name == "amy":
                await settle(pilot, lambda: app.model.current == amy.fingerprint)
        await asyncio.wait_for(loading.wait(), WAIT)
        await pilot.press(*"for ben", "enter")
        await asyncio.wait_for(app.handled.wait(), WAIT)
        await app.call(release.set)
        composer = app.query_one(Composer)
        await settle(pilot, lambda: composer.text == "for ben")

    async def main() -> None:
        app.handled = asyncio.Event()
        async with app.run_test() as pilot:
            await scenario(pilot)
            assert app.query_one(Composer).text == "for ben"
            assert app.model.current == amy.fingerprint  # still amy's, and nothing sent there
            assert not any(line.outgoing for line in app.model.conversations[amy.fingerprint])
            assert [m.body for m in await app.call(history, amy.fingerprint)] == []
            notices = [n.message for n in app._notifications]
            assert any("Not sent" in n for n in notices), notices

    asyncio.run(main())
