"""The transfer lifecycle table: every listed move, the refusal of any other, LIVE/FINAL."""

from __future__ import annotations

import itertools

import pytest

from p2pim.transfer.state import (
    FINAL,
    LIVE,
    TRANSITIONS,
    UNANSWERED,
    IllegalTransition,
    Input,
    TransferState,
    advance,
)

S = TransferState

# Written out by hand, apart from the table, so a change to it shows here.
EXPECTED = {
    (S.ARRIVING, Input.PARTS_COMPLETE): S.OFFERED,
    (S.ARRIVING, Input.CANCEL): S.CANCELLED,
    (S.ARRIVING, Input.EXPIRE): S.EXPIRED,
    (S.OFFERED, Input.ACCEPT): S.ACCEPTED,
    (S.OFFERED, Input.DECLINE): S.DECLINED,
    (S.OFFERED, Input.CANCEL): S.CANCELLED,
    (S.OFFERED, Input.EXPIRE): S.EXPIRED,
    (S.ACCEPTED, Input.RESULT_OK): S.COMPLETED,
    (S.ACCEPTED, Input.RESULT_FAILED): S.FAILED,
    (S.ACCEPTED, Input.SENDER_GONE): S.FAILED,
    (S.ACCEPTED, Input.CANCEL): S.CANCELLED,
    (S.ACCEPTED, Input.EXPIRE): S.EXPIRED,
}


def test_the_values_are_the_stored_spellings() -> None:
    assert [s.value for s in S] == [
        "arriving", "offered", "accepted", "completed",
        "failed", "cancelled", "declined", "expired",
    ]  # fmt: skip


@pytest.mark.parametrize(("move", "to"), EXPECTED.items(), ids=lambda v: str(v))
def test_every_listed_move(move: tuple[TransferState, Input], to: TransferState) -> None:
    assert advance(*move) is to


def test_the_table_lists_exactly_these_moves() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(
    "move", [m for m in itertools.product(S, Input) if m not in EXPECTED], ids=str
)
def test_any_other_move_is_refused(move: tuple[TransferState, Input]) -> None:
    with pytest.raises(IllegalTransition):
        advance(*move)


def test_live_and_final_split_the_states() -> None:
    assert {S.ARRIVING, S.OFFERED, S.ACCEPTED} == LIVE
    assert {S.COMPLETED, S.FAILED, S.CANCELLED, S.DECLINED, S.EXPIRED} == FINAL
    assert set(S) == LIVE | FINAL
    assert not LIVE & FINAL
    assert UNANSWERED < LIVE
    assert S.ACCEPTED not in UNANSWERED


def test_a_final_state_has_no_way_out() -> None:
    for state, event in itertools.product(FINAL, Input):
        with pytest.raises(IllegalTransition):
            advance(state, event)
