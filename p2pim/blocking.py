"""Block and mute: what a blocked peer's messages come to, and which events are hidden.

Pure decisions, no I/O.  The node asks `verdict` at its one choke point for received
session messages (`p2pim.wiring.SessionWiring`, through `PeerDirectory.drops`) and `hidden`
at its one choke point for events (where `Node` emits them); storage keeps the two sets
(`p2pim.storage.blocking`).

Why a blocked peer's messages are acknowledged and then dropped, rather than refused:
the sender keeps every unacknowledged message in its outbox and resends it on every new
session, so an unanswered nuisance would grow its own outbox forever and resend it all at
each reconnection.  An ack ends that at once, stores nothing here, and tells the sender
no more than a person who never reads its messages would ("delivered", never "read").
The session itself stays up: refusing it would make the blocked node redial with backoff
forever, would reveal the block, and would cut a shared room's relaying through it.
"""

from __future__ import annotations

import enum
from collections.abc import Set

from p2pim import events
from p2pim.api import ROOM_PREFIX
from p2pim.identity import FINGERPRINT_HEX, fingerprint
from p2pim.wire import codec
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import (
    Delete,
    Edit,
    FileOffer,
    Message,
    ReadReceipt,
    RoomEvent,
    RoomOp,
    Text,
    Typing,
)


def check_fingerprint(peer: object) -> str:
    """A full fingerprint: blocking is by identity, never by a name someone can take."""
    if (
        not isinstance(peer, str)
        or len(peer) != FINGERPRINT_HEX
        or any(c not in "0123456789abcdef" for c in peer)
    ):
        raise ValueError("a peer to block is named by its full fingerprint (64 hex digits)")
    return peer


def check_conversation(conversation: object) -> str:
    """A peer's fingerprint or `room:<32 hex digits>`, as `messages.peer` names them."""
    if isinstance(conversation, str) and conversation.startswith(ROOM_PREFIX):
        room = conversation[len(ROOM_PREFIX) :]
        if len(room) == 32 and all(c in "0123456789abcdef" for c in room):
            return conversation
        raise ValueError("a room's conversation is room:<32 hex digits>")
    try:
        return check_fingerprint(conversation)
    except ValueError:
        raise ValueError("mute a peer (its fingerprint) or a room (room:<id>)") from None


class Verdict(enum.Enum):
    PASS = "pass"  # handled as if anyone had sent it
    DROP = "drop"  # ignored: nothing stored, nothing shown, nothing answered
    ACK_AND_DROP = "ack and drop"  # acknowledged so the sender's outbox drains, then ignored


# What each message from a blocked peer's session comes to.  Not listed: PASS.  Passing
# are acks, replies and results about OUR offers (our own data), presence, heartbeats,
# peer lists (reachability only) and room traffic: a shared room's signed log must
# converge for every member, so its events are kept and relayed; what a blocked author
# wrote there is hidden from the screen by `hidden` instead (see `invitation_from`).
VERDICTS: dict[type[Message], Verdict] = {
    Text: Verdict.ACK_AND_DROP,
    Edit: Verdict.ACK_AND_DROP,
    Delete: Verdict.ACK_AND_DROP,
    ReadReceipt: Verdict.ACK_AND_DROP,
    FileOffer: Verdict.ACK_AND_DROP,  # left unanswered: the sender sees it expire
    Typing: Verdict.DROP,  # ephemeral: nothing to acknowledge
}


def verdict(message: Message) -> Verdict:
    """What a message from a blocked peer's session comes to."""
    return VERDICTS.get(type(message), Verdict.PASS)


def op_id(message: Message) -> bytes | None:
    """The id to acknowledge for an ACK_AND_DROP message."""
    return getattr(message, "id", None)


def invitation_from(event: RoomEvent, me: bytes) -> tuple[bytes, str] | None:
    """(room, author's fingerprint) if `event` invites us (`me`: our public key) to a
    room; None for anything else.  The node drops such an invitation when its author is
    blocked and the room is not one we hold already, whoever relays it, so the room never
    reaches the disk through it (another member's invitation to the same room still
    does).  In a room we hold, the log stays whole and `hidden` keeps it quiet.
    Undecodable payloads are None: the room code rejects them itself.  The payload is
    signed, so a forger cannot make us drop another author's event: a forgery fails
    verification either way."""
    try:
        op = codec.decode(event.payload)
    except RemoteProtocolError:
        return None
    if not isinstance(op, RoomOp) or op.kind != "invite" or op.subject != me:
        return None
    return op.room, fingerprint(op.author)


# A room post, and what its author does to it later: hidden when the author is blocked.
# A room's system lines (joined, left, topic...) are not: who can read a room stays visible.
ROOM_POST_EVENTS = (events.RoomMessage, events.RoomMessageEdited, events.RoomMessageDeleted)


def author_of(event: events.NodeEvent) -> str | None:
    """The peer whose doing the event shows, for the events a block hides.  A typing
    indicator that stops is not one: it clears what was shown before the block."""
    if isinstance(event, events.MessageReceived):
        return event.sender
    if isinstance(event, events.MessageEdited | events.MessageDeleted):
        return event.peer
    if isinstance(event, events.TypingChanged):
        return event.peer if event.typing else None
    if isinstance(event, events.OfferReceived):
        return event.peer
    if isinstance(event, ROOM_POST_EVENTS):
        return event.author
    if isinstance(event, events.RoomInvited):
        return event.inviter
    return None


def hidden(event: events.NodeEvent, blocked: Set[str]) -> bool:
    """True if the event shows something a blocked peer did (a post in a shared room, an
    invitation there): such events are not delivered to any face."""
    author = author_of(event)
    return author is not None and author in blocked
