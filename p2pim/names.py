"""Naming peers the way people do: by nick or fingerprint prefix, never ambiguously."""

from __future__ import annotations

from collections.abc import Iterable

MIN_PREFIX = 4


class PeerNameError(ValueError):
    """No peer, or more than one, answers to that name."""


def resolve_peer(name: str, peers: Iterable[tuple[str, str]]) -> str:
    """The fingerprint of the one peer in (fingerprint, nick) pairs named `name`: an exact
    fingerprint, else an exact nick, else a unique fingerprint prefix (≥ 4 hex digits)."""
    if not isinstance(name, str) or not name:
        raise PeerNameError("a peer is named by fingerprint, fingerprint prefix or nick")
    known = list(peers)
    wanted = name.lower()
    for matches in (
        [fp for fp, _ in known if fp == wanted],
        [fp for fp, nick in known if nick == name],
        [fp for fp, _ in known if len(wanted) >= MIN_PREFIX and fp.startswith(wanted)],
    ):
        unique = sorted(set(matches))
        if len(unique) == 1:
            return unique[0]
        if len(unique) > 1:
            nicks = dict(known)
            candidates = ", ".join(f"{nicks[fp]} ({fp})" for fp in unique)
            raise PeerNameError(
                f"{name!r} is ambiguous: {len(unique)} peers match: {candidates}; "
                "name one by a longer fingerprint prefix"
            )
    raise PeerNameError(f"no peer named {name!r}")
