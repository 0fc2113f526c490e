"""The one-shot commands' text for people (p2pim.terminal): pure functions."""

from __future__ import annotations

from typing import Any

from p2pim.terminal import clean, message_line, progress_line


def message(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "peer": "b" * 64, "author": "b" * 64, "outgoing": False, "sent_at": 0,
        "stored_at": 0, "body": "hi", "edited_at": None, "deleted": False,
        "delivered_at": None, "read_at": None, "author_nick": "bob", "peer_nick": "bob",
    }  # fmt: skip
    return base | fields


def test_message_lines_name_the_author_and_where_it_was_written() -> None:
    assert message_line(message()).endswith("  bob: hi")
    mine = message(outgoing=True, author="a" * 64, author_nick="alice")
    assert message_line(mine).endswith("  me: hi  (queued)")
    assert message_line(mine, conversation=True).endswith("  me -> bob: hi  (queued)")
    post = message(peer="room:" + "c" * 32, room_name="planning")
    del post["peer_nick"]
    assert message_line(post, conversation=True).endswith("  bob in #planning: hi")
    own_post = post | {"outgoing": True}
    assert message_line(own_post).endswith("  me: hi")  # no receipts in rooms: no "queued"


def test_peer_text_cannot_drive_the_terminal() -> None:
    line = message_line(message(body="\x1b[2Jgone\nnext", author_nick="\u202ebob"))
    assert "\x1b" not in line
    assert "\u202e" not in line
    assert "\\u001b[2Jgone" in line
    assert "\\u202ebob" in line
    assert clean("a\nb") == "a\\u000ab"


def test_progress_line() -> None:
    assert progress_line(512, 1024, 2 << 20, 65.0, width=10) == (
        "[#####-----]  50%  512 B / 1.0 KiB  2.0 MiB/s  ETA 1:05"
    )
    assert progress_line(0, 0, 0, None, width=4).startswith("[####] 100%")


def test_a_summary_never_shows_a_time_it_has_no_clock_for() -> None:
    import io

    from p2pim.terminal import ProgressBar

    finished = {
        "state": "completed",
        "files": [{"outcome": "ok", "size": 11, "saved_as": "/x/agenda.md"}],
    }
    out = io.StringIO()
    ProgressBar(out, "received").finish(finished)  # never told when it was accepted
    assert out.getvalue() == "received 1 file(s), 11 B\n"  # was "... in -0.0 s"
    out = io.StringIO()
    bar = ProgressBar(out, "received")
    bar.start_clock()
    bar.finish(finished)
    assert out.getvalue().startswith("received 1 file(s), 11 B in 0.0 s")
