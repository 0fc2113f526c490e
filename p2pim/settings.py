"""The user's settings, kept in the profile as `settings.json` (the UI edits them).

Command-line options win over the file for one run; the file is what the next plain
`p2pim` starts with.  Who the user is on the LAN is kept here too: the nick (chosen at
the first run, or given with `--nick`, which is remembered) and the status with its text,
which the running node writes whenever they change (`NodeConfig.profile`).  A missing,
unreadable or partly wrong file gives the defaults for whatever is wrong, with a warning,
never a crash.  Writers change only their own keys (`Settings.remember`), so the node and
the UI never undo each other's changes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from p2pim.config import NodeConfig, default_download_dir, default_nick
from p2pim.wire.messages import MAX_NICK_BYTES, MAX_STATUS_TEXT_BYTES, STATUSES

log = logging.getLogger(__name__)
FILE = "settings.json"
_WRITING = threading.Lock()  # read-change-write of the file, from the UI and the node
# What the Settings screen edits; the nick and the status are the node's to write.
PREFERENCES = ("download_dir", "interfaces", "auto_away_minutes", "bell", "desktop_notifications")


@dataclass(slots=True)
class Settings:
    nick: str = ""  # "": never chosen, so the first run asks (config.default_nick offers)
    download_dir: str = field(default_factory=lambda: str(default_download_dir()))
    interfaces: list[str] = field(default_factory=list)  # empty: every real interface
    auto_away_minutes: float = 5.0  # 0: never
    bell: bool = True
    desktop_notifications: bool = False
    status: str = "online"  # the status and text the user last chose (not auto-away's)
    status_text: str = ""

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
        if settings.nick and check_nick(settings.nick) is not None:
            log.warning("ignoring nick in %s: %s", profile / FILE, check_nick(settings.nick))
            settings.nick = defaults.nick
        if settings.status not in STATUSES:
            log.warning("ignoring status in %s: not one of %s", profile / FILE, STATUSES)
            settings.status = defaults.status
        if len(settings.status_text.encode()) > MAX_STATUS_TEXT_BYTES:
            log.warning("ignoring status_text in %s: too long", profile / FILE)
            settings.status_text = defaults.status_text
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

    @classmethod
    def remember(cls, profile: Path, **changes: Any) -> Settings:
        """Change these settings in the profile's file, keeping every other one as the file
        has it (not as some older copy in memory has it); the new settings."""
        with _WRITING:
            settings = replace(cls.load(profile), **changes)
            settings.save(profile)
            return settings


def check_nick(nick: object) -> str | None:
    """What is wrong with `nick` as a display name, in plain words; None if nothing."""
    if not isinstance(nick, str) or not nick.strip():
        return "a nick cannot be empty"
    if len(nick.encode()) > MAX_NICK_BYTES:
        return f"a nick is at most {MAX_NICK_BYTES} bytes (UTF-8)"
    if any(not c.isprintable() for c in nick):
        return "a nick has no control characters or line breaks"
    return None


def who_i_am(
    profile: Path, config: NodeConfig, given_nick: str | None, *, remember: bool = True
) -> Settings:
    """Set `config`'s nick and status from the profile: a nick given on the command line
    wins and (with `remember`) is kept for the next start; without one, the saved nick, or
    the account's name until one is chosen.  With `remember`, the node keeps its later
    changes in the profile too.  Raises ValueError for a bad given nick."""
    settings = Settings.load(profile)
    if given_nick:
        problem = check_nick(given_nick)
        if problem is not None:
            raise ValueError(problem)
        if remember and given_nick != settings.nick:
            settings = Settings.remember(profile, nick=given_nick)
        else:
            settings = replace(settings, nick=given_nick)
    config.nick = settings.nick or default_nick()
    config.status, config.status_text = settings.status, settings.status_text
    config.profile = profile if remember else None
    return settings
