"""How numbers, times and states read on screen (pure)."""

from __future__ import annotations

import time
from datetime import datetime

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


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


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


def same_day(a_ms: int, b_ms: int) -> bool:
    return datetime.fromtimestamp(a_ms / 1000).date() == datetime.fromtimestamp(b_ms / 1000).date()


def now_ms() -> int:
    return int(time.time() * 1000)


def grouped(digits: str, width: int = 5) -> str:
    """A safety number or fingerprint in groups, as people read it aloud."""
    return " ".join(digits[i : i + width] for i in range(0, len(digits), width))


def is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES)
