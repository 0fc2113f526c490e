"""Trust on first use, and what counts as a key change (pure decisions, no I/O).

Identity is the key.  A nick is only a label, but it is the label people recognise: a
new key arriving under the nick of a known peer that is not online is how a key change
looks from the outside (reinstalled machine, or someone impersonating).  Such a key is
pinned as `key_changed` and sending to it is refused until the user verifies it.  A
new key under a nick whose known holder is online right now is a look-alike: listed as
its own unverified peer, never merged.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final, Literal, Protocol

Trust = Literal["unverified", "verified", "key_changed"]
UNVERIFIED: Final = "unverified"
VERIFIED: Final = "verified"
KEY_CHANGED: Final = "key_changed"


class KnownPeer(Protocol):
    @property
    def fingerprint(self) -> str: ...
    @property
    def nick(self) -> str: ...
    @property
    def last_seen(self) -> int: ...


def trust_for_new_key(
    fingerprint: str, nick: str, known: Iterable[KnownPeer], online: Collection[str]
) -> tuple[Trust, str | None]:
    """(trust, previous fingerprint) for a key seen for the first time."""
    same_nick = [
        p for p in known if p.nick.casefold() == nick.casefold() and p.fingerprint != fingerprint
    ]
    if not same_nick or any(p.fingerprint in online for p in same_nick):
        return UNVERIFIED, None
    previous = max(same_nick, key=lambda p: p.last_seen)
    return KEY_CHANGED, previous.fingerprint
