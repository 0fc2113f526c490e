"""How numbers, times and states read on screen (pure)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from p2pim.terminal import size as size  # one byte-size format for the TUI and the CLI

PRESENCE_GLYPH = {"online": "●", "away": "◐", "busy": "⊘", "offline": "○"}
PRESENCE_STYLE = {
    "online": "bold green",
    "away": "yellow",
    "busy": "red",
    "offline": "dim",
}
TRUST_MARK = {"verified": "✔", "key_changed": "⚠", "unverified": "", None: ""}
DELIVERY_MARK = {
    "": "",
    "queued": "◷",
    "sent": "✓",
    "delivered": "✓✓",
    "read": "✓✓ read",
    "failed": "✗",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")

# Author colours.  Every one has the same relative luminance (about 0.165), the value
# that reads equally on Textual's dark background (#121212) and its light one (#E0E0E0):
# a contrast of 3.6:1 or more on both, which is as far as one colour can go on both.
# They differ by hue, 20 degrees apart at least.  Your own name has the blue, which no
# one else gets; red stays for failures.
OWN_COLOUR = "#136ce8"
AUTHOR_COLOURS = (
    "#b6550f",  # orange
    "#8d6d0b",  # ochre
    "#0b841f",  # green
    "#0a8063",  # sea green
    "#0c7b92",  # teal
    "#834df1",  # violet
    "#b614ec",  # purple
    "#d011a1",  # magenta
    "#dd1256",  # crimson
)


def rate(bytes_per_second: float) -> str:
    return f"{size(bytes_per_second)}/s"


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M")


def day(ms: int) -> str:
    """The day separator's label: absolute, so a screen reads the same tomorrow."""
    return datetime.fromtimestamp(ms / 1000).strftime("%A %-d %B %Y")


def short_day(ms: int) -> str:
    """A compact absolute date for a list row: "7 Dec 2026"."""
    return datetime.fromtimestamp(ms / 1000).strftime("%-d %b %Y")


def same_day(a_ms: int, b_ms: int) -> bool:
    return datetime.fromtimestamp(a_ms / 1000).date() == datetime.fromtimestamp(b_ms / 1000).date()


def author_colour(fingerprint: str, *, own: bool = False) -> str:
    """The colour of an author's name: the same for a fingerprint in every conversation
    and every run (a hash, not an order of arrival)."""
    if own:
        return OWN_COLOUR
    digest = hashlib.blake2b(fingerprint.encode(), digest_size=4).digest()
    return AUTHOR_COLOURS[int.from_bytes(digest, "big") % len(AUTHOR_COLOURS)]


def is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES)
