"""Text for people: tables, message lines, safety numbers and a progress bar for the
one-shot commands.  Everything a peer chose (nicks, texts, status) goes through `clean`.
Byte sizes and safety-number groups are the TUI's too: one format for both faces."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, TextIO

from p2pim.api import ROOM_PREFIX, TransferState

Event = dict[str, Any]


def clean(text: str, *, newlines: bool = False) -> str:
    """Text from peers made safe for a terminal: control and format characters (escape
    sequences, bidi overrides) are shown as \\uXXXX."""
    return "".join(
        c if c.isprintable() or (newlines and c == "\n") else f"\\u{ord(c):04x}" for c in text
    )


def peer_table(peers: list[dict[str, Any]]) -> str:
    if not peers:
        return "no peers known yet"
    rows = [("NICK", "ID", "STATUS", "TRUST", "ADDRESSES")]
    for p in peers:
        state = p["status"] + (f": {p['status_text']}" if p["status_text"] else "")
        trust = "KEY CHANGED" if p["trust"] == "key_changed" else p["trust"] or "-"
        addresses = ", ".join(p["addresses"]) or "-"
        rows.append((clean(p["nick"]), p["fingerprint"][:8], clean(state), trust, addresses))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[4]]))
    return "\n".join(lines)


def message_line(m: dict[str, Any], *, conversation: bool = False) -> str:
    """`2026-11-25 10:19  bob: text`.  `m` carries `author_nick`, and `peer_nick` or
    `room_name` (p2pim.commands.names.with_nicks); with `conversation`, a line says where
    it was written."""
    room = m["peer"].startswith(ROOM_PREFIX)
    name = m.get("room_name") if room else m.get("peer_nick")
    where = ("#" if room else "") + clean(name or m["peer"].removeprefix(ROOM_PREFIX)[:8])
    author = clean(m.get("author_nick") or m["author"][:8])
    if m["outgoing"]:
        who = f"me -> {where}" if conversation else "me"
    else:
        who = f"{author} in {where}" if conversation and room else author
    notes = []
    if m["edited_at"] is not None and not m["deleted"]:
        notes.append("edited")
    if m["outgoing"] and not m["deleted"] and not room:  # receipts are for 1:1 messages
        if m["read_at"] is not None:
            notes.append("read")
        elif m["delivered_at"] is None:
            notes.append("queued")
    head = f"{local_time(m['sent_at'], m['stored_at'])}  {who}: "
    body = "(deleted)" if m["deleted"] else clean(m["body"], newlines=True)
    tail = f"  ({', '.join(notes)})" if notes else ""
    return head + body.replace("\n", "\n" + " " * len(head)) + tail


def local_time(sent_at: int, stored_at: int) -> str:
    """The author's clock, unless it is absurd (a peer chooses it): then ours."""
    try:
        when = datetime.fromtimestamp(sent_at / 1000)
    except (OverflowError, OSError, ValueError):
        when = datetime.fromtimestamp(stored_at / 1000)
    return f"{when:%Y-%m-%d %H:%M}"


def verify_text(
    number: str, peer: dict[str, Any], me: dict[str, Any], name: str, *, done: bool
) -> str:
    """The safety number as 12 groups of 5 digits, and what to do with it."""
    groups = format_safety_number(number).split()
    rows = ["    " + " ".join(groups[i : i + 4]) for i in range(0, len(groups), 4)]
    who = f"{clean(peer['nick'])} ({peer['fingerprint'][:8]})"
    head = [f"Safety number with {who}:", "", *rows, ""]
    if done:
        return "\n".join([*head, f"{who} is now verified."])
    advice = [
        f"Trust now: {peer['trust'] or 'nothing pinned'}.",
        f"Compare it with the number {clean(peer['nick'])} sees (`p2pim verify "
        f"{me['fingerprint'][:8]}` on their side), in person or over a call you trust.",
        f"If all 60 digits match, run `p2pim verify {name} --yes`.",
    ]
    return "\n".join(head + advice)


def format_safety_number(number: str) -> str:
    """Group a safety number for reading aloud: 12 groups of 5 digits, `12345 67890 ...`
    (both faces show it so)."""
    if len(number) != 60 or not number.isascii() or not number.isdigit():
        raise ValueError("a safety number is 60 digits")
    return " ".join(number[i : i + 5] for i in range(0, len(number), 5))


def size(n: float) -> str:
    """A byte count for people, the same in every face (the TUI shows this too): binary
    units, as the limits are powers of two (a message holds 32 KiB, not 32.8 kB)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def progress_line(done: int, total: int, rate: float, eta: float | None, width: int = 24) -> str:
    """`[#########---------------]  38%  3.8 MiB / 10.0 MiB  2.1 MiB/s  ETA 0:03`"""
    fraction = min(max(done / total, 0.0), 1.0) if total else 1.0
    filled = round(fraction * width)
    left = "--:--" if eta is None else duration(eta)
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {fraction:4.0%}  "
        f"{size(done)} / {size(total)}  {size(rate)}/s  ETA {left}"
    )


class ProgressBar:
    """A transfer's progress on one line of `stream`, redrawn in place on a terminal;
    elsewhere only the final line is written."""

    def __init__(self, stream: TextIO, verb: str = "sent") -> None:
        self._stream = stream
        self._verb = verb  # "sent" or "received", in the summary line
        self._live = stream.isatty()
        self._shown = 0  # length of the line now on screen
        self._last: Event | None = None
        self._answered_at: float | None = None

    def note(self, text: str) -> None:
        if self._live:
            self._write(text)

    def start_clock(self) -> None:
        """The summary's time counts from now (the offer was accepted)."""
        self._answered_at = time.monotonic()

    def answered(self, files: int) -> None:
        self.start_clock()
        self.note(f"accepted {files} file(s)" if files else TransferState.DECLINED)

    def update(self, event: Event) -> None:
        self._last = event
        if self._live:
            self._write(progress_line(event["done"], event["total"], event["rate"], event["eta"]))

    def finish(self, finished: Event | None) -> None:
        """Replace the line with a summary of the outcome (always written)."""
        line = ""
        if finished is not None and finished["state"] == TransferState.COMPLETED:
            ok = [f for f in finished["files"] if f["outcome"] == "ok"]
            nbytes = sum(f["size"] for f in ok)
            line = f"{self._verb} {len(ok)} file(s), {size(nbytes)}"
            if self._answered_at is not None:  # else no clock to tell the time by
                elapsed = time.monotonic() - self._answered_at
                rate = f", {size(nbytes / elapsed)}/s" if elapsed > 0 else ""
                line += f" in {elapsed:.1f} s{rate}"
        elif (last := self._last) is not None:
            line = progress_line(last["done"], last["total"], last["rate"], None)
        if line:
            self._write(line)
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = 0

    def _write(self, line: str) -> None:
        if self._live:
            self._stream.write("\r" + line.ljust(self._shown))
        else:
            self._stream.write(line)
        self._stream.flush()
        self._shown = max(len(line), 1)
