"""Blocked peers and muted conversations: two small sets, kept so they survive restarts.

Which messages a block stops is decided in `p2pim.blocking`; here are only the rows.
"""

from __future__ import annotations

from p2pim.storage.core import Connection


class BlockTables(Connection):
    """The block and mute methods of `Database`; each is one transaction."""

    def block_peer(self, fingerprint: str, now_ms: int) -> bool:
        """True if the peer was not blocked before."""
        with self._transaction(write=True) as conn:
            return bool(
                conn.execute(
                    "INSERT INTO blocked_peers (fingerprint, blocked_at) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (fingerprint, now_ms),
                ).rowcount
            )

    def unblock_peer(self, fingerprint: str) -> bool:
        """True if the peer was blocked."""
        with self._transaction(write=True) as conn:
            return bool(
                conn.execute(
                    "DELETE FROM blocked_peers WHERE fingerprint = ?", (fingerprint,)
                ).rowcount
            )

    def blocked_peers(self) -> list[str]:
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT fingerprint FROM blocked_peers ORDER BY blocked_at")
            return [fp for (fp,) in rows]

    def mute_conversation(self, conversation: str, now_ms: int) -> bool:
        """True if the conversation was not muted before."""
        with self._transaction(write=True) as conn:
            return bool(
                conn.execute(
                    "INSERT INTO muted_conversations (conversation, muted_at) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (conversation, now_ms),
                ).rowcount
            )

    def unmute_conversation(self, conversation: str) -> bool:
        with self._transaction(write=True) as conn:
            return bool(
                conn.execute(
                    "DELETE FROM muted_conversations WHERE conversation = ?", (conversation,)
                ).rowcount
            )

    def muted_conversations(self) -> list[str]:
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT conversation FROM muted_conversations ORDER BY muted_at")
            return [c for (c,) in rows]
