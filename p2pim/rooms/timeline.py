"""A room's system lines ("alice joined", "bob left"...) and its history with them (pure).

The lines are not stored anywhere of their own: they are the room's log, read back.  Each
operation that counts, other than a post, an edit or a delete, is one line, in the log's
total order; so every member shows the same lines in the same places, live or after a
restart, and a line can never be forged apart from the signed operation it stands for.

A `Notice` is a `StoredMessage` (the conversation `room:<hex>`, the operation's id,
author and clocks) with `kind` and `subject` added and its `body` the line in words, so
anything that lists a conversation's messages lists these too; `kind` tells them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from p2pim.api import Notice, StoredMessage, describe
from p2pim.identity import fingerprint
from p2pim.rooms import state as rs

# A log operation's kind -> the kind of line it shows as.  Posts, edits and deletes are
# not lines of their own: they are messages, or change one.
NOTICE_KINDS = {
    "create": "created",
    "invite": "invited",
    "join": "joined",
    "leave": "left",
    "remove": "removed",
    "admin": "admin",
    "topic": "topic",
}


def notice(op: rs.Op, conversation: str, me: str, nick_of: Callable[[str], str]) -> Notice:
    """The line an accepted operation shows as (its kind must be in NOTICE_KINDS)."""
    o = op.op
    kind = NOTICE_KINDS[o.kind]
    subject = fingerprint(o.subject) if o.kind in rs.SUBJECT_KINDS else ""
    text = o.text if o.kind in ("create", "topic") else ""
    body = describe(kind, nick_of(op.author), nick_of(subject) if subject else "", text)
    return Notice(
        op.id, conversation, op.author, op.author == me, o.sent_at, o.lamport, o.sent_at,
        body, None, False, None, None, kind, subject, text,
    )  # fmt: skip


def notices(
    state: rs.RoomState, conversation: str, me: str, nick_of: Callable[[str], str]
) -> list[Notice]:
    """Every system line of the room, in the log's order."""
    return [
        notice(op, conversation, me, nick_of) for op in state.accepted if op.op.kind in NOTICE_KINDS
    ]


def order(message: StoredMessage) -> tuple[int, bytes]:
    """Where a post or a line stands in the room: the log's total order."""
    return (message.lamport, message.id)


def merge_page(
    posts: Sequence[StoredMessage],
    lines: Sequence[Notice],
    anchor: tuple[int, bytes] | None,
    limit: int,
) -> list[StoredMessage]:
    """The `limit` newest of posts and lines before `anchor` (all if None), oldest first.
    `posts` must hold the newest `limit` posts before the anchor (fewer only if there are
    no more): then the newest `limit` of the union are among them and the lines."""
    before = [n for n in lines if anchor is None or order(n) < anchor]
    merged = sorted([*posts, *before], key=order)
    return merged[-limit:] if limit else []
