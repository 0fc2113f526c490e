"""Pure helpers for offers: packing a file list into messages, the accepted-files bitmap,
where accepted files go, the receiver's verdict (one outcome code per file), and a
transfer as `Node.transfers()` reports it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

from p2pim.api import TransferInfo
from p2pim.events import TransferFile
from p2pim.storage import FileRecord, TransferRecord
from p2pim.transfer.names import numbered, sanitize_path
from p2pim.transfer.state import UNANSWERED
from p2pim.wire.codec import MAX_PAYLOAD_SIZE
from p2pim.wire.messages import MAX_FILES_PER_PART, OUTCOMES, FileOffer, OfferedFile, Outcome

PART_OVERHEAD = 256  # the FileOffer map around its files, generously
FILE_OVERHEAD = 64  # one OfferedFile's keys, size, hash and msgpack headers, generously


def offer_parts(
    offer: bytes,
    files: Sequence[OfferedFile],
    sent_at: int,
    ttl_ms: int,
    room: bytes,
    new_id: Callable[[], bytes],
) -> list[FileOffer]:
    """The messages that carry an offer of `files` to one peer (each has an id of its own)."""
    parts, first = [], 0
    for run in pack_parts(files):
        parts.append(
            FileOffer(
                id=new_id(),
                offer=offer,
                sent_at=sent_at,
                ttl_ms=ttl_ms,
                total_files=len(files),
                total_size=sum(f.size for f in files),
                first=first,
                files=tuple(run),
                room=room,
            )
        )
        first += len(run)
    return parts


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


def result(files: Sequence[FileRecord]) -> tuple[bytes, str]:
    """The receiver's verdict on an offer of these files: one outcome code per file (an
    accepted file without an outcome was cut short), and why it failed ("" if it did not)."""
    codes = {outcome: code for code, outcome in enumerate(OUTCOMES)}
    outcomes = bytes(codes[f.outcome or Outcome.CANCELLED] if f.accepted else 0 for f in files)
    return outcomes, failure_reason([f.outcome or Outcome.CANCELLED for f in files if f.accepted])


def verdict(
    files: Sequence[FileRecord], total_files: int, codes: bytes
) -> tuple[list[Outcome], str]:
    """Per-file outcomes from a receiver's result (an accepted file it left out counts as
    cancelled), and why the transfer failed ("" if it did not)."""
    outcomes = [
        OUTCOMES[codes[i]] if i < len(codes) and codes[i] < len(OUTCOMES) else Outcome.CANCELLED
        for i in range(total_files)
    ]
    return outcomes, failure_reason([outcomes[f.index] for f in files if f.accepted])


def failure_reason(outcomes: Sequence[Outcome]) -> str:
    """Why a transfer with these per-file outcomes failed ("" if it did not)."""
    failed = [o for o in outcomes if o not in (Outcome.OK, Outcome.NOT_ACCEPTED)]
    if not failed:
        return ""
    if Outcome.NO_SPACE in failed:
        return "the receiver ran out of disk space"
    if Outcome.WRITE_ERROR in failed:
        return "the receiver could not write a file"
    return f"{len(failed)} file(s) failed: " + ", ".join(sorted(set(failed)))


def transfer_info(record: TransferRecord, live_done: int | None) -> TransferInfo:
    """`record` as the node reports it; `live_done`: the bytes a running download or upload
    has moved so far (None: the record's own count is the latest)."""
    answered = record.state not in UNANSWERED
    counted = [f for f in record.files if f.accepted or not answered]
    files = tuple(
        TransferFile(
            index=f.index,
            path=f.path,
            size=f.size,
            done=f.size if f.outcome is Outcome.OK else f.done,
            outcome=f.outcome,
            saved_as=os.path.join(record.directory, f.saved_as)
            if record.directory and f.saved_as
            else None,
        )
        for f in record.files
    )
    counted_indices = {f.index for f in counted}
    if live_done is None:
        live_done = sum(f.done for f in files if f.index in counted_indices)
    return TransferInfo(
        offer=record.offer.hex(),
        peer=record.peer,
        outgoing=record.outgoing,
        state=record.state,
        reason=record.reason,
        total=sum(f.size for f in counted),
        done=live_done,
        files=files,
        expires_at=record.expires_at,
        room=record.room.hex(),
    )
