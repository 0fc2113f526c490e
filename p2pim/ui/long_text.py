"""A message too long to be a message: kept, explained, and offered as a file instead.

A message holds at most `MAX_TEXT_BYTES` (32 KiB) of UTF-8; a pasted log or a long
document goes better as a file anyway.  Nothing the person typed is ever thrown away:
the text goes back into the input until they choose, and "Send as a file" writes it to
a text file of its own in the profile (it must outlive this run: a transfer resumes
after a restart of either side) and offers that file to the open conversation.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from p2pim.api import MAX_TEXT_BYTES
from p2pim.ui import format as fmt

OUTGOING = "outgoing"  # folder in the profile for texts sent as files


def too_long(text: str) -> bool:
    return len(text.encode("utf-8")) > MAX_TEXT_BYTES


def question(text: str) -> str:
    size = fmt.size(len(text.encode("utf-8")))
    return (
        f"This message is {size}; a message holds at most {fmt.size(MAX_TEXT_BYTES)}.\n\n"
        "Send it as a text file instead? (Your text stays in the input either way until "
        "it is sent.)"
    )


def write_text_file(folder: Path, text: str, now: datetime | None = None) -> Path:
    """`text` in a new file `message-YYYYMMDD-HHMMSS.txt` under `folder` (owner-only);
    an existing name gets a counter, never overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = folder / (f"message-{stamp}.txt" if n == 0 else f"message-{stamp}-{n}.txt")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        return path
    raise FileExistsError(f"no free name for message-{stamp}.txt in {folder}")
