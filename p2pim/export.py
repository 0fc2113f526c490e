"""A conversation as JSON Lines (for programs) or Markdown (for people)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from p2pim.api import ROOM_PREFIX, StoredMessage

FORMATS = ("jsonl", "markdown")


def to_jsonl(messages: list[StoredMessage], nicks: dict[str, str]) -> Iterator[str]:
    for m in messages:
        yield json.dumps(
            {
                "id": m.id.hex(),
                "author": m.author,
                "author_nick": nicks.get(m.author, ""),
                "outgoing": m.outgoing,
                "sent_at": m.sent_at,
                "lamport": m.lamport,
                "body": m.body,
                "edited_at": m.edited_at,
                "deleted": m.deleted,
                "delivered_at": m.delivered_at,
                "read_at": m.read_at,
            },
            ensure_ascii=False,
        )


def to_markdown(messages: list[StoredMessage], nicks: dict[str, str], peer: str) -> Iterator[str]:
    short = peer.removeprefix(ROOM_PREFIX)[:8]  # a peer's fingerprint, or a room's id
    yield f"# Conversation with {nicks.get(peer) or short} ({short})"
    day = None
    for m in messages:
        sent = _local_time(m.sent_at, m.stored_at)
        if sent.date() != day:
            day = sent.date()
            yield f"\n## {day.isoformat()}\n"
        who = nicks.get(m.author) or m.author[:8]
        body = "*(deleted)*" if m.deleted else m.body.replace("\n", "  \n")
        edited = " *(edited)*" if m.edited_at is not None and not m.deleted else ""
        yield f"**{who}** {sent:%H:%M}: {body}{edited}\n"  # a paragraph per message


def _local_time(sent_at: int, stored_at: int) -> datetime:
    """The author's clock, unless it is absurd (a peer chooses it): then ours."""
    try:
        return datetime.fromtimestamp(sent_at / 1000).astimezone()
    except (OverflowError, OSError, ValueError):
        return datetime.fromtimestamp(stored_at / 1000).astimezone()


def export(messages: list[StoredMessage], nicks: dict[str, str], peer: str, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format is one of {', '.join(FORMATS)}")
    lines = to_jsonl(messages, nicks) if fmt == "jsonl" else to_markdown(messages, nicks, peer)
    return "".join(f"{line}\n" for line in lines)
