"""A new user's journey, as a person takes it: the real `p2pim` executable in a terminal on
each of two hosts of a virtual LAN, real mDNS, and nothing read but the screen.

Each step types keys and waits for what a person would look for.  The journey: first run
and the name prompt; the peer appears; chat both ways; a file offered and accepted with
Enter on the dialog's focused button arrives byte-identical; a room created with a
member picked, joined from the invitation, posts both ways; quit, which the other side
sees at once.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from p2pim.testing.vlan import Host, VirtualLan
from tests.support.pty_screen import PtyScreen

pytestmark = pytest.mark.netns

SIZES = [(80, 24), (120, 36)]


def ui_env(home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEXTUAL", "NO_COLOR", "COLUMNS", "LINES"))
    }
    env.update(HOME=str(home), TERM="xterm-256color", PYTHONUNBUFFERED="1", LANG="C.UTF-8")
    return env


def open_ui(host: Host, home: Path, size: tuple[int, int]) -> PtyScreen:
    home.mkdir(parents=True, exist_ok=True)
    argv = host.command([sys.executable, "-m", "p2pim", "--profile", str(home / "profile")])
    columns, rows = size
    return PtyScreen(argv, ui_env(home), columns=columns, rows=rows, cwd=str(home))


def first_run(screen: PtyScreen, name: str) -> None:
    """The name prompt comes first; a person replaces the suggestion with their name."""
    screen.wait_for("Which name should people on your network see?", timeout=20)
    screen.press("end", "ctrl+u")  # clear the suggestion (the account's name)
    screen.type(name)
    screen.press("enter")
    screen.wait_for(lambda s: "Which name" not in s and f"p2pim  {name}" in s)


def send(screen: PtyScreen, text: str) -> None:
    screen.type(text)
    screen.press("enter")


def open_conversation(screen: PtyScreen, name: str) -> None:
    """Ctrl+K: jump to a person or room by typing part of its name."""
    screen.press("ctrl+k")
    screen.wait_for("Jump to")
    screen.type(name)
    screen.press("enter")
    # As a person does, look that it is open (its name heads the chat) before typing.
    heads = (f"▎ {name} ", f"▎ #{name}")  # a person's chat, or a room's
    screen.wait_for(lambda s: any(h in s for h in heads) and "Jump to" not in s)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_new_user_chats_sends_a_file_and_meets_in_a_room(
    vlan2: VirtualLan, tmp_path: Path, size: tuple[int, int]
) -> None:
    h0, h1 = vlan2.hosts
    ann = open_ui(h0, tmp_path / "ann", size)
    ben = open_ui(h1, tmp_path / "ben", size)
    try:
        first_run(ann, "ann")
        first_run(ben, "ben")

        # Discovery over real mDNS: each sees the other in the people list.
        ann.wait_for("ben", timeout=20)
        ben.wait_for("ann", timeout=20)

        # Chat both ways.
        open_conversation(ann, "ben")
        send(ann, "hello ben, ann here")
        open_conversation(ben, "ann")
        ben.wait_for("hello ben, ann here")
        send(ben, "hi ann!")
        ann.wait_for("hi ann!")
        ann.wait_for("✓✓")  # delivered (then read) receipts on ann's own line

        # A file: /send in the conversation, the offer dialog opens on ben's screen and
        # Enter on its focused Accept button takes it.
        payload = os.urandom(300_000)
        source = tmp_path / "ann" / "report.bin"
        source.write_bytes(payload)
        send(ann, f"/send {source}")
        ben.wait_for("Accept")
        ben.press("enter")
        ben.wait_for("Received", timeout=30)
        ann.wait_for("completed")  # the sender's file card
        saved = tmp_path / "ben" / "Downloads" / "p2pim" / "report.bin"  # the default folder
        assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(payload).digest()

        # A room: Ctrl+N with a name and ben picked; ben joins from the invitation.
        ann.press("ctrl+n")
        ann.wait_for("New room")
        ann.type("standup")
        ann.wait_for("standup")  # as a person sees it typed, then on with the mouse
        ann.click("▐X▌ ben")  # the member list's row: a click picks ben
        ann.click("Create")
        ann.wait_for("# standup")
        ben.wait_for("Join", timeout=15)
        ben.click("Join")
        ben.wait_for(lambda s: "# standup" in s and "(invited)" not in s)
        open_conversation(ben, "standup")
        send(ben, "morning all")
        ann.wait_for("morning all")
        send(ann, "morning ben")
        ben.wait_for("morning ben")
        ann.wait_for("ben joined")  # a system line in the room

        # Quit: the other side sees ann go offline at once, not at the presence timeout.
        ann.press("ctrl+q")
        assert ann.wait_exit(5) == 0
        ben.wait_for("○ ann", timeout=5)
    finally:
        ann.close()
        ben.close()
