"""The user's settings, kept in the profile as `settings.json` (the UI edits them).

Command-line options win over the file for one run; the file is what the next plain
`p2pim` starts with.  A missing, unreadable or partly wrong file gives the defaults for
whatever is wrong, with a warning, never a crash.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from p2pim.config import default_download_dir, default_nick
from p2pim.wire.messages import MAX_NICK_BYTES

log = logging.getLogger(__name__)
FILE = "settings.json"


@dataclass(slots=True)
class Settings:
    nick: str = field(default_factory=default_nick)
    download_dir: str = field(default_factory=lambda: str(default_download_dir()))
    interfaces: list[str] = field(default_factory=list)  # empty: every real interface
    auto_away_minutes: float = 5.0  # 0: never
    bell: bool = True
    desktop_notifications: bool = False

    @classmethod
    def load(cls, profile: Path) -> Settings:
        settings = cls()
        try:
            data = json.loads((profile / FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return settings
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", profile / FILE, exc)
            return settings
        if not isinstance(data, dict):
            log.warning("ignoring %s: not a JSON object", profile / FILE)
            return settings
        for f in fields(cls):
            value = data.get(f.name)
            default = getattr(settings, f.name)
            if value is None:
                continue
            if isinstance(default, bool) != isinstance(value, bool) or not isinstance(
                value, type(default) if not isinstance(default, float) else (int, float)
            ):
                log.warning("ignoring %s in %s: wrong type", f.name, profile / FILE)
                continue
            setattr(settings, f.name, value)
        defaults = cls()
        if not all(isinstance(i, str) for i in settings.interfaces):
            settings.interfaces = []
        # Values of the right type that a node refuses (or trio chokes on) would stop the
        # start: an empty or too long nick, a negative, NaN or infinite away time.
        if not 0 < len(settings.nick.encode()) <= MAX_NICK_BYTES:
            log.warning("ignoring nick in %s: 1 to %d bytes", profile / FILE, MAX_NICK_BYTES)
            settings.nick = defaults.nick
        minutes = settings.auto_away_minutes
        if not (math.isfinite(minutes) and minutes >= 0):
            log.warning("ignoring auto_away_minutes in %s: not a number >= 0", profile / FILE)
            settings.auto_away_minutes = defaults.auto_away_minutes
        return settings

    def save(self, profile: Path) -> None:
        """Atomically: a crash leaves the old file or the new one, never half of one."""
        profile.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = profile / f".{FILE}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(self), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, profile / FILE)
