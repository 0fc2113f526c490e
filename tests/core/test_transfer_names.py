"""Paths offered by an untrusted peer become safe local names (p2pim.transfer.names)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pim.transfer.names import (
    FALLBACK_NAME,
    MAX_COMPONENT_BYTES,
    MAX_DEPTH,
    MAX_PATH_BYTES,
    numbered,
    sanitize_component,
    sanitize_path,
)


def nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


# -- hostile paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("../../x", ("x",)),
        ("/etc/x", ("etc", "x")),
        ("a/../../x", ("a", "x")),
        ("a/./b", ("a", "b")),
        ("\\..\\..\\win.ini", ("win.ini",)),
        ("C:\\Windows\\system.ini", ("C_", "Windows", "system.ini")),
        ("\\\\server\\share\\x", ("server", "share", "x")),
        ("a//b///c", ("a", "b", "c")),
        ("x\x00y", ("xy",)),
        ("evil\u202etxt.exe", ("eviltxt.exe",)),
        ("\u2066a\u2069\u200e\u200f\u200b\ufeffb", ("ab",)),
        ("a\nb", ("ab",)),
        ("a\u2028b\u2029c", ("abc",)),
        ("a\x7fb\x1bc", ("abc",)),
        ("CON", ("_CON",)),
        ("con", ("_con",)),
        ("nul.txt", ("_nul.txt",)),
        ("dir/COM1.tar.gz", ("dir", "_COM1.tar.gz")),
        ("LPT9", ("_LPT9",)),
        ("Con .txt", ("_Con .txt",)),
        ("CONSOLE", ("CONSOLE",)),
        ("COM10", ("COM10",)),
        ("..", (FALLBACK_NAME,)),
        (".", (FALLBACK_NAME,)),
        ("", (FALLBACK_NAME,)),
        ("/", (FALLBACK_NAME,)),
        ("\x01\x02\x1f\x7f", (FALLBACK_NAME,)),
        ("a/\x00\x01/b", ("a", "b")),
        (".\x00.", (FALLBACK_NAME,)),
        ("a/..\u200b/b", ("a", "b")),
        ('what?<is>:this|"*', ("what__is__this___",)),
        ("  padded name.txt  ", ("padded name.txt",)),
        ("trailing...", ("trailing",)),
        ("trailing. . .", ("trailing",)),
        ("-rf", ("-rf",)),
        (".bashrc", (".bashrc",)),
        ("docs/readme.md", ("docs", "readme.md")),
        ("e\u0301t\u0301e\u0301", ("\u00e9t\u0301\u00e9",)),  # NFC
        ("\ud800name", ("name",)),  # a lone surrogate cannot even be encoded
    ],
)
def test_hostile_paths(path: str, expected: tuple[str, ...]) -> None:
    assert sanitize_path(path) == expected


@pytest.mark.parametrize("name", [".", "..", "", " ", "...", "\x00", "\u202e", " . "])
def test_components_with_nothing_usable(name: str) -> None:
    assert sanitize_component(name) is None


def test_a_remaining_separator_in_a_component_is_replaced() -> None:
    assert sanitize_component("a/b\\c") == "a_b_c"


def test_a_removed_format_character_lets_its_neighbours_compose() -> None:
    assert sanitize_component("e\u200b\u0301") == "\u00e9"


def test_a_long_name_keeps_its_extension() -> None:
    name = "a" * 996 + ".txt"
    assert nbytes(name) == 1000
    (safe,) = sanitize_path(name)
    assert safe == "a" * (MAX_COMPONENT_BYTES - 4) + ".txt"


@pytest.mark.parametrize("letter", ["é", "€", "😀", "e\u0301\u0302"])
def test_a_long_name_is_not_cut_inside_a_character(letter: str) -> None:
    safe = sanitize_component(letter * 400 + ".tar.gz")
    assert safe is not None
    assert nbytes(safe) <= MAX_COMPONENT_BYTES
    assert safe.endswith(".tar.gz")
    stem = safe.removesuffix(".tar.gz")
    normal = unicodedata.normalize("NFC", letter)
    assert stem == normal * (len(stem) // len(normal))


def test_a_long_name_with_a_long_suffix_is_cut_as_a_whole() -> None:
    safe = sanitize_component("x" * 300 + "." + "y" * 300)
    assert safe == "x" * MAX_COMPONENT_BYTES


def test_a_cut_that_reveals_a_device_name_is_caught() -> None:
    assert sanitize_component("CON" + " " * 300 + "x") == "_CON"


def test_depth_keeps_the_first_directories_and_the_file_name() -> None:
    path = "/".join([f"d{i}" for i in range(50)] + ["file.txt"])
    safe = sanitize_path(path)
    assert len(safe) == MAX_DEPTH
    assert safe == (*(f"d{i}" for i in range(MAX_DEPTH - 1)), "file.txt")


def test_a_long_path_loses_directories_from_the_middle() -> None:
    dirs = [f"{i}" * 200 for i in range(9)]
    safe = sanitize_path("/".join([*dirs, "f" * 250]))
    assert nbytes("/".join(safe)) <= MAX_PATH_BYTES
    assert safe[0] == dirs[0]
    assert safe[-1] == "f" * 250
    assert set(safe[1:-1]) < set(dirs[1:])
    assert len(safe) == 4  # 3 x 200 + 250 + 3 separators fits, 4 x 200 would not


# -- numbered alternatives ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "n", "expected"),
    [
        ("report.pdf", 1, "report (1).pdf"),
        ("a.tar.gz", 2, "a (2).tar.gz"),
        ("A.TAR.BZ2", 1, "A (1).TAR.BZ2"),
        (".bashrc", 1, ".bashrc (1)"),
        ("noext", 3, "noext (3)"),
        ("Mr. Smith", 1, "Mr. Smith (1)"),
        ("a.b.c", 12, "a.b (12).c"),
        ("tar.gz", 1, "tar (1).gz"),
    ],
)
def test_numbered(name: str, n: int, expected: str) -> None:
    assert numbered(name, n) == expected


def test_numbered_stays_short_enough() -> None:
    name = "a" * 251 + ".txt"
    alternative = numbered(name, 123)
    assert nbytes(alternative) <= MAX_COMPONENT_BYTES
    assert alternative.endswith(" (123).txt")


def test_numbered_counts_from_one() -> None:
    with pytest.raises(ValueError, match="numbered from 1"):
        numbered("a.txt", 0)


# -- properties ---------------------------------------------------------------------------

REMOVED = {"Cc", "Cf", "Zl", "Zp", "Cs"}

# Pieces that a hostile path is made of, so the properties meet them often.
pieces = st.one_of(
    st.text(),
    st.sampled_from(["", ".", "..", "...", " ", "CON", "nul.txt", "a.tar.gz", "\x00", "\u202e"]),
    st.text(st.characters(codec="utf-8"), min_size=60, max_size=300),
    st.text(st.sampled_from("ab. \u0301\u202e\x00<:"), max_size=300),
)
paths = st.one_of(
    st.text(),
    st.lists(pieces, max_size=40).map("/".join),
    st.lists(pieces, max_size=10).map("\\".join),
)


def check_safe(result: tuple[str, ...]) -> None:
    assert isinstance(result, tuple)
    assert result
    assert len(result) <= MAX_DEPTH
    assert nbytes("/".join(result)) <= MAX_PATH_BYTES
    for part in result:
        assert part not in ("", ".", "..")
        assert "/" not in part
        assert "\\" not in part
        assert "\x00" not in part
        assert not any(unicodedata.category(ch) in REMOVED for ch in part)
        assert nbytes(part) <= MAX_COMPONENT_BYTES
        assert part == part.strip()
        assert not part.endswith(".")
        assert unicodedata.is_normalized("NFC", part)


@given(st.text())
def test_any_text_becomes_a_safe_path(path: str) -> None:
    check_safe(sanitize_path(path))


@settings(max_examples=500)
@given(paths)
def test_any_path_becomes_a_safe_path_and_stays_so(path: str) -> None:
    result = sanitize_path(path)
    check_safe(result)
    assert sanitize_path("/".join(result)) == result


@given(st.text())
def test_sanitising_a_component_is_idempotent(name: str) -> None:
    safe = sanitize_component(name)
    if safe is not None:
        assert sanitize_component(safe) == safe


@given(st.lists(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}[A-Za-z0-9_]", fullmatch=True)))
def test_a_clean_relative_path_is_unchanged(parts: list[str]) -> None:
    devices = {"CON", "PRN", "AUX", "NUL"} | {
        f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789"
    }
    parts = [p for p in parts if p.split(".")[0].upper() not in devices]
    clean = tuple(parts[:MAX_DEPTH]) or ("docs", "readme.md")
    assert sanitize_path("/".join(clean)) == clean


@given(pieces, st.integers(min_value=1, max_value=10**6))
def test_numbered_alternatives_are_safe_names(name: str, n: int) -> None:
    safe = sanitize_component(name) or FALLBACK_NAME
    alternative = numbered(safe, n)
    assert alternative != safe
    assert nbytes(alternative) <= MAX_COMPONENT_BYTES
    assert sanitize_component(alternative) == alternative
