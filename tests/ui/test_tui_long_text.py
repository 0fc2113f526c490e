"""A message over the size limit: a plain-language question, the text kept in the input,
and "Send as a file" offering it as a text file that arrives intact.

Two real nodes on 127.0.0.1 (no mDNS), each UI on a thread of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot

from p2pim.ui.app import P2pimApp
from p2pim.ui.composer import Composer
from p2pim.ui.dialogs import Confirm
from p2pim.ui.long_text import too_long, write_text_file
from p2pim.wire.messages import MAX_TEXT_BYTES
from tests.support.nodes import loopback_node
from tests.support.tui_harness import UiThread

LONG = "".join(f"line {i}: a pasted log that goes on and on\n" for i in range(1200))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[UiThread, UiThread]]:
    uis: list[UiThread] = []
    try:
        for nick in ("ann", "ben"):
            uis.append(UiThread(P2pimApp(loopback_node(nick, tmp_path / nick))))
        ann, ben = uis
        port = ben.app.node.port
        assert port is not None

        async def add(pilot: Pilot[None]) -> None:
            await ann.app.call(ann.app.node.add_peer, "127.0.0.1", port)

        ann.do(add)
        ann.wait_until(lambda app: any(c.status == "online" for c in app.model.contacts.values()))
        ben.wait_until(lambda app: any(c.status == "online" for c in app.model.contacts.values()))
        yield ann, ben
    finally:
        for ui in reversed(uis):
            ui.close()


def test_the_limit_is_counted_in_utf8_bytes() -> None:
    assert not too_long("x" * MAX_TEXT_BYTES)
    assert too_long("x" * (MAX_TEXT_BYTES + 1))
    assert too_long("é" * (MAX_TEXT_BYTES // 2 + 1))  # two bytes each


def test_a_text_file_never_overwrites_one_already_there(tmp_path: Path) -> None:
    now = datetime(2026, 12, 7, 17, 0, 0, tzinfo=UTC)
    first = write_text_file(tmp_path, "one", now)
    second = write_text_file(tmp_path, "two", now)
    assert first.name == "message-20261207-170000.txt"
    assert second.name == "message-20261207-170000-1.txt"
    assert (first.read_text(), second.read_text()) == ("one", "two")
    assert first.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("how", ["click", "enter"])
def test_a_too_long_message_is_kept_and_can_go_as_a_file(
    pair: tuple[UiThread, UiThread], how: str
) -> None:
    ann, ben = pair
    ben_fp = ben.app.node.fingerprint

    async def open_ben(pilot: Pilot[None]) -> None:
        pilot.app.open_conversation(ben_fp)

    ann.do(open_ben)
    ann.wait_until(lambda app: app.model.current == ben_fp)

    async def paste_and_send(pilot: Pilot[None]) -> None:
        composer = pilot.app.query_one(Composer)
        composer.focus()
        composer.insert(LONG)
        await pilot.press("enter")

    ann.do(paste_and_send)
    ann.wait_until(lambda app: isinstance(app.screen, Confirm))
    assert "a message holds at most" in str(ann.app.screen.query_one("Static").render())
    assert ann.app.query_one(Composer).text == LONG.strip("\n")  # nothing lost

    async def keep_editing(pilot: Pilot[None]) -> None:
        if how == "click":
            await pilot.click("#no")
        else:
            pilot.app.screen.query_one("#no").focus()
            await pilot.press("enter")

    ann.do(keep_editing)
    ann.wait_until(lambda app: not isinstance(app.screen, Confirm))
    assert ann.app.query_one(Composer).text == LONG.strip("\n")
    assert ann.app.is_running

    async def send_again_as_file(pilot: Pilot[None]) -> None:
        pilot.app.query_one(Composer).focus()
        await pilot.press("enter")

    ann.do(send_again_as_file)
    ann.wait_until(lambda app: isinstance(app.screen, Confirm))

    async def as_file(pilot: Pilot[None]) -> None:
        if how == "click":
            await pilot.click("#yes")
        else:
            pilot.app.screen.query_one("#yes").focus()
            await pilot.press("enter")

    ann.do(as_file)
    offer = ben.wait_until(lambda app: next(iter(app.model.offers.values()), None), timeout=15)
    assert offer.files[0].path.startswith("message-")
    assert offer.files[0].size == len(LONG.strip("\n").encode())
    ann.wait_until(lambda app: app.query_one(Composer).text == "")
