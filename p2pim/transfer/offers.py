"""Pure helpers for offers: packing a file list into messages, the accepted-files bitmap,
and where accepted files go."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from p2pim.transfer.names import numbered, sanitize_path
from p2pim.wire.codec import MAX_PAYLOAD_SIZE
from p2pim.wire.messages import MAX_FILES_PER_PART, OfferedFile

PART_OVERHEAD = 256  # the FileOffer map around its files, generously
FILE_OVERHEAD = 64  # one OfferedFile's keys, size, hash and msgpack headers, generously


def pack_parts(files: Sequence[OfferedFile]) -> list[list[OfferedFile]]:
    """Split an offer's files into runs that each fit one FileOffer message."""
    parts: list[list[OfferedFile]] = [[]]
    size = PART_OVERHEAD
    for file in files:
        cost = FILE_OVERHEAD + len(file.path.encode("utf-8")) + len(file.hash)
        full = len(parts[-1]) == MAX_FILES_PER_PART or size + cost > MAX_PAYLOAD_SIZE
        if parts[-1] and full:
            parts.append([])
            size = PART_OVERHEAD
        parts[-1].append(file)
        size += cost
    return parts


def to_bitmap(indices: Iterable[int], count: int) -> bytes:
    bitmap = bytearray((count + 7) // 8)
    for i in indices:
        bitmap[i // 8] |= 1 << (i % 8)
    return bytes(bitmap)


def from_bitmap(bitmap: bytes, count: int) -> list[int]:
    """The indices whose bit is set (bits past `count` are ignored)."""
    return [i for i in range(min(count, len(bitmap) * 8)) if bitmap[i // 8] >> (i % 8) & 1]


def clean_path(received: str) -> str:
    """A received path made safe to create under the download directory."""
    return "/".join(sanitize_path(received))


def placement(paths: dict[int, str], taken: Callable[[str], bool]) -> dict[int, str]:
    """Where each accepted file goes, relative to the download directory.

    Files inside a folder keep the folder; a folder whose name is taken there gets a
    numbered name ("photos (1)"), so a second copy never mixes with the first.  Loose
    files get a numbered name, if needed, only when they are saved."""
    renamed: dict[str, str] = {}
    placed: dict[int, str] = {}
    for index, path in paths.items():
        root, sep, rest = path.partition("/")
        if sep:
            if root not in renamed:
                n, name = 0, root
                while taken(name) or name in renamed.values():
                    n += 1
                    name = numbered(root, n)
                renamed[root] = name
            path = f"{renamed[root]}/{rest}"
        placed[index] = path
    return placed
