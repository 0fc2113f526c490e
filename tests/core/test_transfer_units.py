"""Unit tests of the synchronous parts of file transfers: offer packing, the accepted-files
bitmap, placement, progress, the file system side (collecting, hashing, writing received
files safely, reading sent ones) and the transfer tables of the database."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pim.storage import Database, FileRecord, UnknownTransfer
from p2pim.transfer.files import (
    HASH_BLOCK,
    Hasher,
    HashMismatch,
    IncomingFile,
    OutgoingFile,
    SourceChanged,
    collect,
    hash_file,
)
from p2pim.transfer.offers import clean_path, from_bitmap, pack_parts, placement, to_bitmap
from p2pim.transfer.progress import REPORT_INTERVAL, Progress
from p2pim.transfer.state import IllegalTransition, Input, TransferState
from p2pim.wire.codec import MAX_PAYLOAD_SIZE, encode
from p2pim.wire.messages import (
    MAX_FILE_SIZE,
    MAX_FILES_PER_PART,
    MAX_OFFER_FILES,
    MAX_OFFER_PATH_BYTES,
    MAX_OFFER_TTL_MS,
    MAX_TIMESTAMP_MS,
    FileOffer,
    OfferedFile,
)

EMPTY_BLAKE3 = bytes.fromhex("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")


def digest(data: bytes) -> bytes:
    hasher = Hasher()
    hasher.update(data)
    return hasher.digest()


# -- offers: packing ----------------------------------------------------------------------------


def encode_part(part: list[OfferedFile]) -> bytes:
    """A part encoded with every other field at its largest, the worst case for size."""
    return encode(
        FileOffer(
            id=os.urandom(16),
            offer=os.urandom(16),
            sent_at=MAX_TIMESTAMP_MS,
            ttl_ms=MAX_OFFER_TTL_MS,
            total_files=MAX_OFFER_FILES,
            total_size=MAX_OFFER_FILES * MAX_FILE_SIZE,
            first=MAX_OFFER_FILES - 1,
            files=tuple(part),
            room=os.urandom(16),  # shared in a room: the longest room field
        )
    )


def check_parts(files: list[OfferedFile]) -> list[list[OfferedFile]]:
    parts = pack_parts(files)
    assert [f for part in parts for f in part] == files  # order kept, nothing lost or added
    for part in parts:
        if files:
            assert part, "an empty part in a non-empty offer"
        assert len(part) <= MAX_FILES_PER_PART
        if part:
            assert len(encode_part(part)) <= MAX_PAYLOAD_SIZE
    return parts


def test_pack_parts_many_short_paths() -> None:
    files = [OfferedFile(f"d/f{i}.txt", i, os.urandom(32)) for i in range(1000)]
    parts = check_parts(files)
    assert len(parts) == -(-1000 // MAX_FILES_PER_PART)  # short paths: only the count limits


@pytest.mark.parametrize("char", ["a", "é", "€", "\U0001f600"])
def test_pack_parts_maximal_paths(char: str) -> None:
    path = char * (MAX_OFFER_PATH_BYTES // len(char.encode("utf-8")))
    path += "a" * (MAX_OFFER_PATH_BYTES - len(path.encode("utf-8")))
    assert len(path.encode("utf-8")) == MAX_OFFER_PATH_BYTES
    files = [OfferedFile(path, MAX_FILE_SIZE, b"\xff" * 32) for _ in range(300)]
    parts = check_parts(files)
    assert len(parts) >= 300 // MAX_FILES_PER_PART


def test_pack_parts_single_file() -> None:
    file = OfferedFile("x", 0, bytes(32))
    assert pack_parts([file]) == [[file]]


def test_pack_parts_nothing() -> None:
    assert [f for part in pack_parts([]) for f in part] == []


_CHARS = ["a", "/", "é", "€", "\U0001f600", " "]


@st.composite
def offered_files(draw: st.DrawFn) -> OfferedFile:
    char = draw(st.sampled_from(_CHARS))
    limit = MAX_OFFER_PATH_BYTES // len(char.encode("utf-8"))
    length = draw(st.one_of(st.integers(1, 20), st.integers(1, limit), st.just(limit)))
    size = draw(st.one_of(st.integers(0, 10), st.just(MAX_FILE_SIZE)))
    return OfferedFile(char * length, size, draw(st.binary(min_size=32, max_size=32)))


@settings(max_examples=30, deadline=None)
@given(st.lists(offered_files(), max_size=150))
def test_pack_parts_property(files: list[OfferedFile]) -> None:
    check_parts(files)


# -- offers: bitmap, paths, placement -----------------------------------------------------------


def test_bitmap_layout() -> None:
    assert to_bitmap([0, 3, 8, 15], 16) == bytes([0b0000_1001, 0b1000_0001])
    assert to_bitmap([], 9) == bytes(2)
    assert to_bitmap([], 0) == b""
    assert len(to_bitmap([0], 8)) == 1


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 300).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)) if n else st.just(set()))
    )
)
def test_bitmap_round_trip(case: tuple[int, set[int]]) -> None:
    count, indices = case
    bitmap = to_bitmap(indices, count)
    assert len(bitmap) == (count + 7) // 8
    assert from_bitmap(bitmap, count) == sorted(indices)


def test_bitmap_bits_beyond_count_are_ignored() -> None:
    assert from_bitmap(b"\xff\xff", 10) == list(range(10))
    assert from_bitmap(b"\xff" * 4, 3) == [0, 1, 2]
    assert from_bitmap(b"\x80", 7) == []
    assert from_bitmap(b"\x01", 100) == [0]  # a short bitmap is fine: missing bytes are 0
    assert from_bitmap(b"", 5) == []


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("a/b/c.txt", "a/b/c.txt"),
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/x", "abs/x"),
        ("a\\..\\b", "a/b"),
        ("", "unnamed"),
        ("..", "unnamed"),
        ("dir/CON", "dir/_CON"),
        ("x\x00y/z", "xy/z"),
    ],
)
def test_clean_path(received: str, expected: str) -> None:
    assert clean_path(received) == expected
    assert clean_path(expected) == expected


def taken_in(names: set[str]):  # type: ignore[no-untyped-def]
    return lambda name: name in names


def test_placement_renames_a_taken_folder_only() -> None:
    paths = {0: "photos/a.jpg", 1: "photos/sub/b.jpg", 2: "notes.txt", 3: "music/x.mp3"}
    placed = placement(paths, taken_in({"photos", "notes.txt"}))
    assert placed == {
        0: "photos (1)/a.jpg",
        1: "photos (1)/sub/b.jpg",
        2: "notes.txt",  # loose files are numbered when saved, not here
        3: "music/x.mp3",
    }


def test_placement_skips_every_taken_number() -> None:
    placed = placement({0: "photos/a"}, taken_in({"photos", "photos (1)", "photos (2)"}))
    assert placed == {0: "photos (3)/a"}


def test_placement_two_taken_roots() -> None:
    placed = placement({0: "a/x", 1: "b/y", 2: "a/z"}, taken_in({"a", "b"}))
    assert placed == {0: "a (1)/x", 1: "b (1)/y", 2: "a (1)/z"}


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_placement_roots_never_merge(order: tuple[int, int]) -> None:
    """ "photos" is taken and the offer also has a folder "photos (1)": the renamed
    "photos" must not land in it."""
    both = {0: "photos (1)/x", 1: "photos/y"}
    paths = {i: both[i] for i in order}
    placed = placement(paths, taken_in({"photos"}))
    roots = {placed[0].split("/")[0], placed[1].split("/")[0]}
    assert len(roots) == 2
    assert "photos" not in roots
    assert placed[0].endswith("/x")
    assert placed[1].endswith("/y")


def test_placement_nothing_taken_keeps_everything() -> None:
    paths = {5: "a/b/c", 7: "d", 9: "a/e"}
    assert placement(paths, taken_in(set())) == paths


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.integers(0, 50),
        st.tuples(st.sampled_from(["a", "b", "a (1)", "b (2)", "c"]), st.sampled_from(["x", "y"])),
        max_size=12,
    ),
    st.sets(st.sampled_from(["a", "b", "a (1)", "a (2)", "b (1)", "c"])),
)
def test_placement_property(entries: dict[int, tuple[str, str]], taken: set[str]) -> None:
    paths = {i: f"{root}/{name}" for i, (root, name) in entries.items()}
    placed = placement(paths, taken_in(taken))
    assert placed.keys() == paths.keys()
    mapping: dict[str, str] = {}
    for i, path in paths.items():
        root, rest = path.split("/", 1)
        new_root, new_rest = placed[i].split("/", 1)
        assert new_rest == rest
        assert new_root not in taken
        assert mapping.setdefault(root, new_root) == new_root  # one root, one new name
    assert len(set(mapping.values())) == len(mapping)  # different roots, different names


# -- progress -----------------------------------------------------------------------------------


def test_progress_due_at_most_every_interval() -> None:
    progress = Progress(0, 1000, now=10.0)
    assert progress.due(10.0)  # the first report is due at once
    assert not progress.due(10.125)
    assert not progress.due(10.0 + REPORT_INTERVAL / 2)
    assert progress.due(10.25)
    assert not progress.due(10.375)
    assert progress.due(10.5)
    assert progress.due(11.5)


def test_progress_due_spacing_over_many_polls() -> None:
    progress = Progress(0, 10**6, now=0.0)
    times = [i / 64 for i in range(64 * 5)]  # polled 64 times a second for 5 s
    reported = [t for t in times if progress.due(t)]
    assert all(b - a >= REPORT_INTERVAL for a, b in itertools.pairwise(reported))
    assert len(reported) == 5 / REPORT_INTERVAL


def test_progress_rate_and_eta_after_steady_progress() -> None:
    total = 20_000_000
    progress = Progress(0, total, now=0.0)
    assert progress.eta is None
    assert progress.due(0.0)
    assert progress.eta is None  # no time has passed: no rate yet
    for step in range(1, 21):  # 1 MB/s, reported every 0.5 s
        progress.add(500_000)
        assert progress.due(step / 2)
    assert progress.done == 10_000_000
    assert progress.rate == pytest.approx(1_000_000)
    assert progress.eta == pytest.approx(10.0)


def test_progress_eta_none_before_any_rate() -> None:
    progress = Progress(0, 100, now=0.0)
    assert progress.eta is None
    assert progress.due(1.0)  # a second with no bytes
    assert progress.rate == 0
    assert progress.eta is None


def test_progress_resumed_counts_only_new_bytes() -> None:
    progress = Progress(400, 1000, now=0.0)
    progress.add(100)
    assert progress.due(0.5)
    assert progress.rate == pytest.approx(200)
    assert progress.eta == pytest.approx(2.5)


def test_progress_rate_follows_a_change_of_speed_smoothly() -> None:
    progress = Progress(0, 10**9, now=0.0)
    progress.due(0.0)
    t = 0.0
    for _ in range(8):
        t += 0.5
        progress.add(500_000)
        progress.due(t)
    t += 0.5
    progress.add(1_000_000)  # now 2 MB/s
    progress.due(t)
    assert 1_000_000 < progress.rate < 2_000_000
    for _ in range(40):
        t += 0.5
        progress.add(1_000_000)
        progress.due(t)
    assert progress.rate == pytest.approx(2_000_000, rel=1e-3)


def test_progress_eta_never_negative() -> None:
    progress = Progress(0, 100, now=0.0)
    progress.add(150)
    assert progress.due(1.0)
    assert progress.eta == 0.0


# -- files: collecting --------------------------------------------------------------------------


def write(path: Path, data: bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def test_collect_files_and_folders(tmp_path: Path) -> None:
    write(tmp_path / "single.txt", b"one")
    folder = tmp_path / "folder"
    write(folder / "b.txt", b"bb")
    write(folder / "a.txt", b"a")
    write(folder / "sub" / "c.txt", b"ccc")
    write(folder / "sub" / "deeper" / "d.txt", b"")
    write(tmp_path / "other" / "secret.txt", b"not chosen")
    (folder / "link.txt").symlink_to(tmp_path / "single.txt")
    (folder / "dirlink").symlink_to(tmp_path / "other", target_is_directory=True)
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(folder / "fifo")

    found = collect([str(tmp_path / "single.txt"), str(folder)])
    assert [f.path for f in found] == [
        "single.txt",
        "folder/a.txt",
        "folder/b.txt",
        "folder/sub/c.txt",
        "folder/sub/deeper/d.txt",
    ]
    for file in found:
        assert os.path.isabs(file.source)
        info = os.stat(file.source)
        assert (file.size, file.mtime_ns) == (info.st_size, info.st_mtime_ns)
    assert found[0].source == str(tmp_path / "single.txt")
    assert found[3].source == str(folder / "sub" / "c.txt")


def test_collect_follows_a_chosen_link(tmp_path: Path) -> None:
    write(tmp_path / "target.bin", b"12345")
    (tmp_path / "alias.bin").symlink_to(tmp_path / "target.bin")
    (found,) = collect([str(tmp_path / "alias.bin")])
    assert (found.path, found.size) == ("alias.bin", 5)


def test_collect_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "photos" / "a.jpg", b"x")
    write(tmp_path / "loose.txt", b"y")
    monkeypatch.chdir(tmp_path)
    found = collect(["photos", "loose.txt"])
    assert [f.path for f in found] == ["photos/a.jpg", "loose.txt"]
    assert found[0].source == str(tmp_path / "photos" / "a.jpg")


def test_collect_keeps_the_name_of_a_folder_given_as_dot_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "A folder keeps its own name as the first component", however it is spelled."""
    write(tmp_path / "photos" / "a.jpg", b"x")
    (tmp_path / "photos" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "photos" / "sub")
    assert [f.path for f in collect([".."])] == ["photos/a.jpg"]


def test_collect_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert collect([str(tmp_path / "empty")]) == []


def test_collect_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        collect([str(tmp_path / "missing")])


def test_collect_special_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="neither a file nor a folder"):
        collect([str(tmp_path / "fifo")])


# -- files: hashing -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, HASH_BLOCK - 1, HASH_BLOCK, 2 * HASH_BLOCK + 12345])
def test_hash_file_equals_hasher(tmp_path: Path, size: int) -> None:
    data = write(tmp_path / "f", os.urandom(size))
    hasher = Hasher()
    for start in range(0, size, 7777):  # odd pieces: the hash does not depend on them
        hasher.update(data[start : start + 7777])
    assert hash_file(str(tmp_path / "f")) == hasher.digest() == digest(data)
    assert len(hasher.digest()) == 32


def test_hash_of_nothing_is_blake3() -> None:
    assert Hasher().digest() == EMPTY_BLAKE3


# -- files: receiving ---------------------------------------------------------------------------

PARTIAL = ".p2pim-partial"


@pytest.fixture
def download(tmp_path: Path) -> Path:
    path = tmp_path / "download"
    path.mkdir()
    return path


def incoming(directory: Path, path: str, data: bytes) -> IncomingFile:
    return IncomingFile(str(directory), path, PARTIAL, len(data), digest(data))


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_incoming_file_is_written_and_placed(download: Path) -> None:
    data = os.urandom(100_000)
    file = incoming(download, "photos/2024/a.jpg", data)
    assert file.open(0) == 0
    file.write(data[:30_000])
    file.write(data[30_000:])
    file.sync()
    assert file.done == len(data)
    assert file.finish() == "photos/2024/a.jpg"
    assert (download / "photos/2024/a.jpg").read_bytes() == data
    assert tree(download) == {"photos", "photos/2024", "photos/2024/a.jpg"}  # no partial left
    umask = os.umask(0)
    os.umask(umask)
    assert (download / "photos/2024/a.jpg").stat().st_mode & 0o777 == 0o666 & ~umask


def test_incoming_empty_file(download: Path) -> None:
    file = incoming(download, "empty", b"")
    assert file.open(0) == 0
    assert file.finish() == "empty"
    assert (download / "empty").read_bytes() == b""


def test_incoming_file_never_overwrites(download: Path) -> None:
    write(download / "doc.txt", b"old")
    write(download / "doc (1).txt", b"older")
    (download / "doc (2).txt").symlink_to(download / "nowhere")
    file = incoming(download, "doc.txt", b"new")
    file.open(0)
    file.write(b"new")
    assert file.finish() == "doc (3).txt"
    assert (download / "doc.txt").read_bytes() == b"old"
    assert (download / "doc (1).txt").read_bytes() == b"older"
    assert not (download / "nowhere").exists()
    assert (download / "doc (3).txt").read_bytes() == b"new"
    assert not (download / PARTIAL).exists()


def test_incoming_file_into_a_taken_directory_name(download: Path) -> None:
    (download / "a.bin").mkdir()
    file = incoming(download, "a.bin", b"x")
    file.open(0)
    file.write(b"x")
    assert file.finish() == "a (1).bin"


def test_incoming_wrong_bytes_raise_hash_mismatch(download: Path) -> None:
    data = b"the promised bytes"
    file = incoming(download, "f.txt", data)
    file.open(0)
    file.write(b"the promised bytez")
    with pytest.raises(HashMismatch):
        file.finish()
    assert not (download / "f.txt").exists()
    file.discard()
    assert tree(download) == set()


def test_incoming_short_file_raises_hash_mismatch(download: Path) -> None:
    data = b"0123456789"
    file = incoming(download, "f.txt", data)
    file.open(0)
    file.write(data[:5])
    with pytest.raises(HashMismatch):
        file.finish()
    file.discard()
    assert tree(download) == set()


def test_incoming_resume_truncates_beyond_durable(download: Path) -> None:
    data = os.urandom(50_000)
    first = incoming(download, "sub/f.bin", data)
    first.open(0)
    first.write(data[:20_000])
    first.write(b"garbage that was never synced")
    first.close()

    second = incoming(download, "sub/f.bin", data)
    assert second.open(20_000) == 20_000
    assert (download / "sub" / PARTIAL).stat().st_size == 20_000
    second.write(data[20_000:])
    assert second.finish() == "sub/f.bin"
    assert (download / "sub/f.bin").read_bytes() == data


def test_incoming_resume_keeps_no_more_than_is_there(download: Path) -> None:
    data = os.urandom(10_000)
    first = incoming(download, "f.bin", data)
    first.open(0)
    first.write(data[:3000])
    first.close()

    second = incoming(download, "f.bin", data)
    assert second.open(10**9) == 3000  # durable larger than the partial file
    second.write(data[3000:])
    assert second.finish() == "f.bin"
    assert (download / "f.bin").read_bytes() == data


def test_incoming_resume_never_keeps_more_than_the_size(download: Path) -> None:
    data = b"abcdef"
    write(download / PARTIAL, data + b"extra bytes")
    file = incoming(download, "f.bin", data)
    assert file.open(10**6) == len(data)
    assert file.finish() == "f.bin"
    assert (download / "f.bin").read_bytes() == data


def test_incoming_open_without_a_partial_file_starts_at_zero(download: Path) -> None:
    file = incoming(download, "f.bin", b"abc")
    assert file.open(500) == 0
    file.discard()


@pytest.mark.parametrize(
    ("link", "path"),
    [("sub", "sub/f.bin"), ("sub", "sub/deeper/f.bin"), ("real/sub", "real/sub/f.bin")],
)
def test_incoming_symlinked_directory_is_refused(
    tmp_path: Path, download: Path, link: str, path: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (download / link).parent.mkdir(parents=True, exist_ok=True)
    (download / link).symlink_to(elsewhere, target_is_directory=True)
    file = incoming(download, path, b"payload")
    with pytest.raises(NotADirectoryError):
        file.open(0)
    file.close()
    assert list(elsewhere.iterdir()) == []


def test_incoming_symlink_at_the_partial_name_is_refused(tmp_path: Path, download: Path) -> None:
    target = write(tmp_path / "victim", b"precious")
    (download / PARTIAL).symlink_to(tmp_path / "victim")
    file = incoming(download, "f.bin", b"payload")
    with pytest.raises(OSError, match="symbolic links"):
        file.open(0)
    file.close()
    assert (tmp_path / "victim").read_bytes() == target


def test_incoming_dangling_symlink_at_the_partial_name_is_refused(
    tmp_path: Path, download: Path
) -> None:
    (download / PARTIAL).symlink_to(tmp_path / "created")
    file = incoming(download, "f.bin", b"payload")
    with pytest.raises(OSError, match="symbolic links"):
        file.open(0)
    file.close()
    assert not (tmp_path / "created").exists()


def test_incoming_special_file_at_the_partial_name_is_refused(download: Path) -> None:
    os.mkfifo(download / PARTIAL)
    file = incoming(download, "f.bin", b"payload")
    with pytest.raises(OSError, match="not a regular file"):
        file.open(0)
    file.close()


def test_discard_removes_the_partial_file(download: Path) -> None:
    file = incoming(download, "dir/f.bin", b"0123456789")
    file.open(0)
    file.write(b"01234")
    assert (download / "dir" / PARTIAL).exists()
    file.discard()
    assert tree(download) == {"dir"}
    file.discard()  # again: nothing to do, no error


def test_discard_without_open(download: Path) -> None:
    write(download / "dir" / PARTIAL, b"left from before")
    incoming(download, "dir/f.bin", b"x").discard()
    assert tree(download) == {"dir"}
    incoming(download, "missing/f.bin", b"x").discard()  # creates nothing
    assert tree(download) == {"dir"}


# -- files: sending -----------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, bytes, os.stat_result]:
    data = write(tmp_path / "source.bin", os.urandom(5000))
    return str(tmp_path / "source.bin"), data, os.stat(tmp_path / "source.bin")


def test_outgoing_file_reads(source: tuple[str, bytes, os.stat_result]) -> None:
    path, data, info = source
    file = OutgoingFile(path, info.st_size, info.st_mtime_ns)
    try:
        assert file.read(0, 100) == data[:100]
        assert file.read(4000, 1000) == data[4000:]
        assert file.read(5000, 0) == b""
    finally:
        file.close()


def test_outgoing_file_vanished(source: tuple[str, bytes, os.stat_result]) -> None:
    path, _, info = source
    os.unlink(path)
    with pytest.raises(SourceChanged):
        OutgoingFile(path, info.st_size, info.st_mtime_ns)


@pytest.mark.parametrize(("size_delta", "mtime_delta"), [(1, 0), (-1, 0), (0, 1), (0, -1000)])
def test_outgoing_file_changed(
    source: tuple[str, bytes, os.stat_result], size_delta: int, mtime_delta: int
) -> None:
    path, _, info = source
    with pytest.raises(SourceChanged):
        OutgoingFile(path, info.st_size + size_delta, info.st_mtime_ns + mtime_delta)


def test_outgoing_file_shrank_while_sending(source: tuple[str, bytes, os.stat_result]) -> None:
    path, _, info = source
    file = OutgoingFile(path, info.st_size, info.st_mtime_ns)
    try:
        os.truncate(path, 3000)
        assert len(file.read(0, 3000)) == 3000
        with pytest.raises(SourceChanged):
            file.read(2500, 1000)
        with pytest.raises(SourceChanged):
            file.read(4000, 1000)
    finally:
        file.close()


# -- storage ------------------------------------------------------------------------------------

PEER, OTHER = "peer-a", "peer-b"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "db") as database:
        yield database


def oid() -> bytes:
    return os.urandom(16)


def outgoing_files(n: int) -> list[FileRecord]:
    return [
        FileRecord(i, f"dir/f{i}", 100 + i, os.urandom(32), f"/src/f{i}", 1_000 + i)
        for i in range(n)
    ]


def incoming_files(first: int, n: int) -> list[FileRecord]:
    return [FileRecord(i, f"in/f{i}", i, bytes([i]) * 32) for i in range(first, first + n)]


def payloads(db: Database, peer: str) -> list[bytes]:
    return [payload for _, _, payload in db.outbox(peer)]


def make_offer(db: Database, n: int = 3, peers: tuple[str, ...] = (PEER,)) -> bytes:
    offer = oid()
    parts = {p: [(oid(), f"part{k} to {p}".encode()) for k in range(2)] for p in peers}
    db.create_offer(offer, peers, outgoing_files(n), parts, now_ms=1000, expires_at=9000)
    return offer


def make_incoming(db: Database, n: int = 3, peer: str = PEER) -> bytes:
    offer = oid()
    record = db.store_offer_part(oid(), offer, peer, n, incoming_files(0, n), 1000, 9000)
    assert record is not None
    assert record.state == "offered"
    return offer


def test_create_offer_records_and_queues(db: Database) -> None:
    offer = oid()
    files = outgoing_files(3)
    parts = {
        PEER: [(oid(), b"p1 a"), (oid(), b"p2 a")],
        OTHER: [(oid(), b"p1 b")],
    }
    db.create_offer(offer, [PEER, OTHER], files, parts, now_ms=1000, expires_at=9000)
    assert payloads(db, PEER) == [b"p1 a", b"p2 a"]
    assert payloads(db, OTHER) == [b"p1 b"]
    for peer in (PEER, OTHER):
        record = db.get_transfer(offer, peer, True)
        assert record is not None
        assert (record.state, record.total_files, record.outgoing) == ("offered", 3, True)
        assert (record.created_at, record.expires_at, record.directory) == (1000, 9000, None)
        assert record.files == files
        assert record.key == (offer, peer, True)
    assert db.get_transfer(offer, PEER, False) is None
    assert len(db.transfers(live_only=True)) == 2


def test_create_offer_checks_the_id(db: Database) -> None:
    with pytest.raises(ValueError, match="offer must be 16 bytes"):
        db.create_offer(b"short", [PEER], outgoing_files(1), {PEER: []}, 0, 1)


def test_record_reply_accepts_once(db: Database) -> None:
    offer = make_offer(db, 3)
    op = oid()
    record = db.record_reply(op, offer, PEER, [0, 2], 2000)
    assert record is not None
    assert record.state == "accepted"
    assert [f.accepted for f in record.files] == [True, False, True]
    assert db.record_reply(op, offer, PEER, [1], 2001) is None  # a repeat
    # A second, different answer does not count once the first did.
    again = db.record_reply(oid(), offer, PEER, [1], 2002)
    assert again is not None
    assert again.state == "accepted"
    assert [f.accepted for f in again.files] == [True, False, True]


def test_record_reply_declined(db: Database) -> None:
    offer = make_offer(db, 2)
    record = db.record_reply(oid(), offer, PEER, [], 2000)
    assert record is not None
    assert record.state == "declined"
    assert not any(f.accepted for f in record.files)


def test_record_reply_ignores_indices_out_of_range(db: Database) -> None:
    offer = make_offer(db, 2)
    record = db.record_reply(oid(), offer, PEER, [2, 5, -1], 2000)
    assert record is not None
    assert record.state == "declined"
    offer = make_offer(db, 2)
    record = db.record_reply(oid(), offer, PEER, [1, 9], 2000)
    assert record is not None
    assert record.state == "accepted"
    assert [f.accepted for f in record.files] == [False, True]


def test_record_reply_unknown_offer(db: Database) -> None:
    make_offer(db)
    assert db.record_reply(oid(), oid(), PEER, [0], 2000) is None
    offer = make_offer(db)
    assert db.record_reply(oid(), offer, OTHER, [0], 2000) is None  # not offered to them


def test_record_result_completed(db: Database) -> None:
    offer = make_offer(db, 3)
    db.record_reply(oid(), offer, PEER, [0, 2], 2000)
    op = oid()
    record = db.record_result(op, offer, PEER, ["ok", "not-accepted", "ok"], "", 3000)
    assert record is not None
    assert (record.state, record.reason) == ("completed", "")
    assert [f.outcome for f in record.files] == ["ok", "not-accepted", "ok"]
    assert db.record_result(op, offer, PEER, ["ok", "not-accepted", "ok"], "", 3001) is None
    # Already final: another result changes nothing.
    assert db.record_result(oid(), offer, PEER, ["hash-mismatch"] * 3, "bad", 3002) is None
    final = db.get_transfer(offer, PEER, True)
    assert final is not None
    assert final.state == "completed"
    assert [f.outcome for f in final.files] == ["ok", "not-accepted", "ok"]


def test_record_result_failed(db: Database) -> None:
    offer = make_offer(db, 3)
    db.record_reply(oid(), offer, PEER, [0, 2], 2000)
    outcomes = ["ok", "not-accepted", "hash-mismatch"]
    record = db.record_result(oid(), offer, PEER, outcomes, "1 file(s) failed", 3000)
    assert record is not None
    assert (record.state, record.reason) == ("failed", "1 file(s) failed")
    assert [f.outcome for f in record.files] == outcomes


def test_record_result_missing_outcomes_become_cancelled(db: Database) -> None:
    offer = make_offer(db, 3)
    db.record_reply(oid(), offer, PEER, [0, 1, 2], 2000)
    record = db.record_result(oid(), offer, PEER, ["ok"], "short", 3000)
    assert record is not None
    assert record.state == "failed"
    assert [f.outcome for f in record.files] == ["ok", "cancelled", "cancelled"]


def test_record_result_before_an_answer_is_ignored(db: Database) -> None:
    offer = make_offer(db, 2)
    assert db.record_result(oid(), offer, PEER, ["ok", "ok"], "", 3000) is None
    record = db.get_transfer(offer, PEER, True)
    assert record is not None
    assert record.state == "offered"
    assert all(f.outcome is None for f in record.files)
    assert db.record_result(oid(), oid(), PEER, ["ok"], "", 3000) is None  # unknown offer


def test_store_offer_part_completes_on_the_last_part(db: Database) -> None:
    offer, op1 = oid(), oid()
    assert db.store_offer_part(op1, offer, PEER, 5, incoming_files(0, 3), 1000, 9000) is None
    arriving = db.get_transfer(offer, PEER, False)
    assert arriving is not None
    assert arriving.state == "arriving"
    assert len(arriving.files) == 3
    # The same part again (even carrying other files) is ignored.
    assert db.store_offer_part(op1, offer, PEER, 5, incoming_files(3, 2), 1001, 9000) is None
    arriving = db.get_transfer(offer, PEER, False)
    assert arriving is not None
    assert len(arriving.files) == 3
    record = db.store_offer_part(oid(), offer, PEER, 5, incoming_files(3, 2), 1002, 9000)
    assert record is not None
    assert (record.state, record.outgoing, record.total_files) == ("offered", False, 5)
    assert record.files == incoming_files(0, 5)
    assert (record.created_at, record.expires_at) == (1000, 9000)
    assert db.outbox(PEER) == []  # receiving queues nothing
    # Anything more for a complete offer is ignored.
    assert db.store_offer_part(oid(), offer, PEER, 5, incoming_files(0, 1), 1003, 9000) is None


def test_store_offer_part_ignores_inconsistent_parts(db: Database) -> None:
    offer = oid()
    files = [*incoming_files(0, 2), FileRecord(7, "beyond", 1, bytes(32))]
    assert db.store_offer_part(oid(), offer, PEER, 3, files, 1000, 9000) is None
    # Another total for the same offer is ignored.
    assert db.store_offer_part(oid(), offer, PEER, 2, incoming_files(2, 1), 1001, 9000) is None
    record = db.store_offer_part(oid(), offer, PEER, 3, incoming_files(2, 1), 1002, 9000)
    assert record is not None
    assert [f.index for f in record.files] == [0, 1, 2]


def test_answer_offer_accept(db: Database) -> None:
    offer = make_incoming(db, 3)
    reply_op = oid()
    record = db.answer_offer(
        offer, PEER, {0: "in (1)/f0", 2: "in (1)/f2"}, "/downloads", (reply_op, b"reply"), 2000
    )
    assert record.state == "accepted"
    assert record.directory == "/downloads"
    assert [(f.accepted, f.path) for f in record.files] == [
        (True, "in (1)/f0"),
        (False, "in/f1"),
        (True, "in (1)/f2"),
    ]
    assert db.outbox(PEER) == [(db.outbox(PEER)[0][0], reply_op, b"reply")]
    with pytest.raises(UnknownTransfer):
        db.answer_offer(offer, PEER, {1: "x"}, "/d", (oid(), b"again"), 2001)
    assert payloads(db, PEER) == [b"reply"]


def test_answer_offer_decline(db: Database) -> None:
    offer = make_incoming(db, 2)
    record = db.answer_offer(offer, PEER, {}, None, (oid(), b"no"), 2000)
    assert record.state == "declined"
    assert record.directory is None
    assert not any(f.accepted for f in record.files)
    assert payloads(db, PEER) == [b"no"]


def test_answer_offer_requires_an_offered_transfer(db: Database) -> None:
    with pytest.raises(UnknownTransfer):
        db.answer_offer(oid(), PEER, {0: "x"}, "/d", (oid(), b"r"), 2000)
    arriving = oid()
    db.store_offer_part(oid(), arriving, PEER, 2, incoming_files(0, 1), 1000, 9000)
    with pytest.raises(UnknownTransfer):
        db.answer_offer(arriving, PEER, {0: "x"}, "/d", (oid(), b"r"), 2000)
    outgoing = make_offer(db)  # our own offer is not ours to answer
    with pytest.raises(UnknownTransfer):
        db.answer_offer(outgoing, PEER, {0: "x"}, "/d", (oid(), b"r"), 2000)
    assert payloads(db, PEER) == [b"part0 to peer-a", b"part1 to peer-a"]  # nothing queued


def test_finish_transfer_cancels_unfinished_files(db: Database) -> None:
    offer = make_incoming(db, 3)
    db.answer_offer(offer, PEER, {0: "in/f0", 1: "in/f1"}, "/d", (oid(), b"reply"), 2000)
    db.save_progress(offer, PEER, 1, 12345)
    db.finish_file(offer, PEER, 0, "ok", "in/f0 (1)")
    record = db.finish_transfer(
        offer, PEER, False, Input.RESULT_FAILED, "disk full", (oid(), b"res"), 3000
    )
    assert record is not None
    assert (record.state, record.reason) == ("failed", "disk full")
    assert [(f.outcome, f.saved_as, f.done) for f in record.files] == [
        ("ok", "in/f0 (1)", 0),
        ("cancelled", None, 12345),
        (None, None, 0),  # never accepted: no outcome
    ]
    assert payloads(db, PEER) == [b"reply", b"res"]
    # Already final: nothing changes and nothing more is queued.
    assert db.finish_transfer(offer, PEER, False, Input.CANCEL, "", (oid(), b"x"), 3001) is None
    final = db.get_transfer(offer, PEER, False)
    assert final is not None
    assert final.state == "failed"
    assert payloads(db, PEER) == [b"reply", b"res"]


def test_finish_transfer_outgoing_without_message(db: Database) -> None:
    offer = make_offer(db, 2)
    record = db.finish_transfer(offer, PEER, True, Input.EXPIRE, "expired", None, 3000)
    assert record is not None
    assert record.state == "expired"
    assert len(db.outbox(PEER)) == 2  # only the parts
    assert db.transfers(live_only=True) == []


def test_finish_transfer_refuses_a_move_the_table_lacks(db: Database) -> None:
    offer = make_offer(db)
    with pytest.raises(IllegalTransition):  # an unanswered offer has no result
        db.finish_transfer(offer, PEER, True, Input.RESULT_OK, "", None, 3000)
    unchanged = db.get_transfer(offer, PEER, True)
    assert unchanged is not None
    assert unchanged.state is TransferState.OFFERED
    assert db.finish_transfer(oid(), PEER, True, Input.CANCEL, "", None, 3000) is None


def test_record_cancel_of_our_offer(db: Database) -> None:
    offer = make_offer(db, 2)
    db.record_reply(oid(), offer, PEER, [1], 2000)
    op = oid()
    record = db.record_cancel(op, offer, PEER, "user", 3000)
    assert record is not None
    assert record.outgoing
    assert (record.state, record.reason) == ("cancelled", "user")
    assert [f.outcome for f in record.files] == [None, "cancelled"]
    assert db.record_cancel(op, offer, PEER, "user", 3001) is None
    assert db.record_cancel(oid(), offer, PEER, "user", 3002) is None  # already final


def test_record_cancel_of_their_offer(db: Database) -> None:
    offer = make_incoming(db, 2)
    record = db.record_cancel(oid(), offer, PEER, "expired", 3000)
    assert record is not None
    assert not record.outgoing
    assert (record.state, record.reason) == ("expired", "expired")


def test_record_cancel_of_an_arriving_offer(db: Database) -> None:
    offer = oid()
    db.store_offer_part(oid(), offer, PEER, 2, incoming_files(0, 1), 1000, 9000)
    record = db.record_cancel(oid(), offer, PEER, "gone", 3000)
    assert record is not None
    assert record.state == "cancelled"


def test_record_cancel_only_from_the_peer_concerned(db: Database) -> None:
    offer = make_offer(db, 1, peers=(PEER, OTHER))
    assert db.record_cancel(oid(), offer, OTHER, "no", 3000) is not None
    mine = db.get_transfer(offer, PEER, True)
    assert mine is not None
    assert mine.state == "offered"
    assert db.record_cancel(oid(), oid(), PEER, "no", 3000) is None


def test_transfers_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db"
    reply_op = oid()
    with Database.open(path) as first:
        offer = make_offer(first, 3)
        incoming_offer = make_incoming(first, 2, peer=OTHER)
        first.record_reply(reply_op, offer, PEER, [0, 1], 2000)
        first.answer_offer(incoming_offer, OTHER, {1: "x/y"}, "/d", (oid(), b"reply"), 2000)
        first.save_progress(incoming_offer, OTHER, 1, 77)
        before = first.transfers()
        outbox = first.outbox(PEER), first.outbox(OTHER)
    with Database.open(path) as second:
        assert second.transfers() == before
        assert (second.outbox(PEER), second.outbox(OTHER)) == outbox
        assert second.record_reply(reply_op, offer, PEER, [2], 2001) is None  # still applied
        record = second.get_transfer(incoming_offer, OTHER, False)
        assert record is not None
        assert record.files[1].done == 77
