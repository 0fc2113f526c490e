"""The Signal-style 60-digit safety number (p2pim.identity.safety_number)."""

from __future__ import annotations

import hashlib

import pytest

from p2pim.identity import Identity, safety_number
from p2pim.terminal import format_safety_number

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
# Pinned: a refactor must not silently change what two people compare.  Cross-checked
# against an independent implementation of the same construction when it was pinned.
KNOWN_A_B = "047411029323127203832186402010257559384113265304292350735074"


def _flip(key: bytes, index: int = 0) -> bytes:
    return key[:index] + bytes([key[index] ^ 1]) + key[index + 1 :]


def test_known_answer() -> None:
    assert safety_number(KEY_A, KEY_B) == KNOWN_A_B


def test_known_answer_halves_follow_the_documented_construction() -> None:
    def half(key: bytes) -> str:
        h = hashlib.sha512(b"\x00\x00" + key + key).digest()
        for _ in range(5199):
            h = hashlib.sha512(h + key).digest()
        return "".join(
            str(int.from_bytes(h[i : i + 5], "big") % 100000).zfill(5)
            for i in (0, 5, 10, 15, 20, 25)
        )

    assert "".join(sorted([half(KEY_A), half(KEY_B)])) == KNOWN_A_B


def test_symmetric() -> None:
    a, b = Identity.generate().public_key, Identity.generate().public_key
    assert safety_number(a, b) == safety_number(b, a)


def test_sixty_ascii_digits() -> None:
    number = safety_number(Identity.generate().public_key, Identity.generate().public_key)
    assert len(number) == 60
    assert all(c in "0123456789" for c in number)


@pytest.mark.parametrize("index", [0, 17, 31])
def test_changes_when_either_key_changes(index: int) -> None:
    base = safety_number(KEY_A, KEY_B)
    changed_a = safety_number(_flip(KEY_A, index), KEY_B)
    changed_b = safety_number(KEY_A, _flip(KEY_B, index))
    assert len({base, changed_a, changed_b}) == 3
    # The unchanged key keeps its half: each key owns 30 digits.
    assert set(_halves(base)) & set(_halves(changed_a)) == {_halves(safety_number(KEY_B, KEY_B))[0]}
    assert set(_halves(base)) & set(_halves(changed_b)) == {_halves(safety_number(KEY_A, KEY_A))[0]}


def _halves(number: str) -> tuple[str, str]:
    return number[:30], number[30:]


def test_same_key_twice_is_two_equal_halves() -> None:
    first, second = _halves(safety_number(KEY_A, KEY_A))
    assert first == second


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33)])
def test_rejects_keys_of_the_wrong_length(bad: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        safety_number(bad, KEY_B)
    with pytest.raises(ValueError, match="32 bytes"):
        safety_number(KEY_A, bad)


def test_format_groups() -> None:
    formatted = format_safety_number(KNOWN_A_B)
    groups = formatted.split(" ")
    assert len(groups) == 12
    assert all(len(g) == 5 and g.isdigit() for g in groups)
    assert "".join(groups) == KNOWN_A_B
    assert formatted.startswith("04741 10293 23127 ")


@pytest.mark.parametrize("bad", ["", "1" * 59, "1" * 61, "1" * 59 + "a", "\uff11" * 60])
def test_format_rejects_what_is_not_a_safety_number(bad: str) -> None:
    with pytest.raises(ValueError, match="60 digits"):
        format_safety_number(bad)
