"""The life of one transfer, as one table: every state, and every move between them.

An incoming offer starts "arriving" and is "offered" once all its parts are here; an
outgoing one starts "offered".  Either is then accepted or declined (by us, or by the
peer's reply), and an accepted one ends with the receiver's verdict.  A live transfer can
be cancelled or expire (an unanswered offer's deadline, or the sender's expiry crossing
our acceptance), and a download whose sender no longer offers it fails.

The storage writes a state only through `advance`, so a move not in `TRANSITIONS` is
refused where it would be written.  The values are what the database and every face
(RPC, events) spell, so they never change.
"""

from __future__ import annotations

import enum


class TransferState(enum.StrEnum):
    ARRIVING = "arriving"  # incoming: parts of the offer still coming
    OFFERED = "offered"  # waiting for an answer
    ACCEPTED = "accepted"  # some files accepted: the receiver pulls them
    COMPLETED = "completed"  # every accepted file arrived
    FAILED = "failed"
    CANCELLED = "cancelled"
    DECLINED = "declined"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        """Nothing moves a transfer on from here (the table lists no way out)."""
        return self in FINAL


class Input(enum.Enum):
    PARTS_COMPLETE = "last part arrived"
    ACCEPT = "accept"
    DECLINE = "decline"
    RESULT_OK = "every file arrived"
    RESULT_FAILED = "a file failed"
    CANCEL = "cancel"
    EXPIRE = "expire"
    SENDER_GONE = "sender no longer offers it"


# Where each kind of transfer starts.
INCOMING_START = TransferState.ARRIVING
OUTGOING_START = TransferState.OFFERED

# The whole life of a transfer.  Anything not listed is refused by `advance`.
TRANSITIONS: dict[tuple[TransferState, Input], TransferState] = {
    (TransferState.ARRIVING, Input.PARTS_COMPLETE): TransferState.OFFERED,
    (TransferState.OFFERED, Input.ACCEPT): TransferState.ACCEPTED,
    (TransferState.OFFERED, Input.DECLINE): TransferState.DECLINED,
    (TransferState.ACCEPTED, Input.RESULT_OK): TransferState.COMPLETED,
    (TransferState.ACCEPTED, Input.RESULT_FAILED): TransferState.FAILED,
    (TransferState.ACCEPTED, Input.SENDER_GONE): TransferState.FAILED,
    **{
        (state, Input.CANCEL): TransferState.CANCELLED
        for state in (TransferState.ARRIVING, TransferState.OFFERED, TransferState.ACCEPTED)
    },
    # Accepted too: the sender's expiry can cross our acceptance on the way.
    **{
        (state, Input.EXPIRE): TransferState.EXPIRED
        for state in (TransferState.ARRIVING, TransferState.OFFERED, TransferState.ACCEPTED)
    },
}

LIVE = frozenset(state for state, _ in TRANSITIONS)  # has a way out
FINAL = frozenset(TRANSITIONS.values()) - LIVE
# Not answered yet: such an offer expires at its deadline.
UNANSWERED = frozenset({TransferState.ARRIVING, TransferState.OFFERED})


class IllegalTransition(ValueError):
    """A move the table does not list: a bug in the caller, never the peer's doing."""


def advance(state: TransferState, event: Input) -> TransferState:
    """The state `event` moves a transfer in `state` to."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise IllegalTransition(f"a transfer {state} cannot take {event.name}") from None


def state_diagram() -> str:
    """The transition table as a Mermaid diagram (docs/protocol.md embeds this text)."""
    lines = ["stateDiagram-v2"]
    lines += [f"    [*] --> {start.value}" for start in (INCOMING_START, OUTGOING_START)]
    for (src, event), dst in TRANSITIONS.items():
        lines.append(f"    {src.value} --> {dst.value}: {event.value}")
    return "\n".join(lines)
