"""What is on disk: the ordered schema migrations.

MIGRATIONS[i] takes a database from version i to i + 1 (`PRAGMA user_version`).  Never edit a
released entry; append a new one.  Each runs in one transaction with the version bump, so a
database is always at exactly one version.  `core._migrate` reads `MIGRATIONS` from this
module at call time, so a test can substitute its own list.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # v1: peers pinned by key (trust on first use), their last-known addresses, manual peers.
    """
    CREATE TABLE peers (
        fingerprint TEXT PRIMARY KEY,
        public_key BLOB NOT NULL
            CHECK (typeof(public_key) = 'blob' AND length(public_key) = 32),
        nick TEXT NOT NULL,
        trust TEXT NOT NULL CHECK (trust IN ('unverified', 'verified', 'key_changed')),
        previous_fingerprint TEXT NULL,
        first_seen INTEGER NOT NULL,  -- ms since the epoch
        last_seen INTEGER NOT NULL    -- ms since the epoch
    );
    CREATE TABLE peer_addresses (
        fingerprint TEXT NOT NULL REFERENCES peers ON DELETE CASCADE,
        host TEXT NOT NULL,
        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        last_ok INTEGER NOT NULL,     -- ms since the epoch
        PRIMARY KEY (fingerprint, host, port)
    );
    CREATE TABLE manual_peers (
        host TEXT NOT NULL,
        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        added INTEGER NOT NULL,       -- ms since the epoch
        PRIMARY KEY (host, port)
    );
    """,
    # v2: durable direct messages, exactly-once operations, the outbox, one Lamport clock,
    # and full-text search.  Times are ms since the epoch; ids are 16 random bytes.
    """
    -- Small named values.  'lamport' is the node's single Lamport clock, shared by every
    -- conversation: one counter is simpler than one per peer and orders messages the same.
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('lamport', 0);

    -- One row per direct message, sent or received.  `seq` is the rowid made explicit: the
    -- full-text index refers to rows by it, and only an INTEGER PRIMARY KEY rowid is
    -- guaranteed to survive VACUUM.  `id` is the message's global identity.
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        id BLOB NOT NULL UNIQUE CHECK (typeof(id) = 'blob' AND length(id) = 16),
        peer TEXT NOT NULL,                -- the conversation: the other party's fingerprint
        author TEXT NOT NULL,              -- who wrote it: us or the peer
        outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
        sent_at INTEGER NOT NULL,          -- the author's clock
        lamport INTEGER NOT NULL CHECK (lamport >= 0),
        stored_at INTEGER NOT NULL,        -- our clock
        body TEXT NOT NULL,                -- '' once deleted
        edited_at INTEGER NULL,            -- the author's clock, at the last edit
        deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
        delivered_at INTEGER NULL,         -- outgoing: when the peer acked storing it
        read_at INTEGER NULL               -- outgoing: the peer read it; incoming: we did
    );
    CREATE INDEX messages_by_conversation ON messages (peer, lamport, id);
    -- What we have not read yet, per conversation (mark_read_locally uses these terms).
    CREATE INDEX messages_unread ON messages (peer, lamport, id)
        WHERE outgoing = 0 AND read_at IS NULL;

    -- Edits, deletes and read receipts already applied: a re-delivered one is a no-op.
    CREATE TABLE applied_ops (
        id BLOB PRIMARY KEY CHECK (typeof(id) = 'blob' AND length(id) = 16),
        applied_at INTEGER NOT NULL
    );

    -- What still has to reach each peer, in order.  The payload is the encoded wire
    -- message, opaque here; the peer acks `id` and the entry goes.
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE CHECK (typeof(id) = 'blob' AND length(id) = 16),
        peer TEXT NOT NULL,
        payload BLOB NOT NULL CHECK (typeof(payload) = 'blob'),
        created_at INTEGER NOT NULL
    );
    CREATE INDEX outbox_by_peer ON outbox (peer, seq);

    -- Full-text index over bodies.  External content: the text lives only in `messages`,
    -- and the triggers keep the index in step.  A delete empties the body, so a deleted
    -- message cannot be found.  remove_diacritics 2 lets "cafe" find "café".
    CREATE VIRTUAL TABLE messages_fts USING fts5 (
        body,
        content = 'messages',
        content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, body) VALUES (new.seq, new.body);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF seq, body ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
        INSERT INTO messages_fts (rowid, body) VALUES (new.seq, new.body);
    END;
    """,
    # v3: file transfers in both directions (see storage/transfers.py for the states).
    """
    CREATE TABLE transfers (
        offer BLOB NOT NULL CHECK (typeof(offer) = 'blob' AND length(offer) = 16),
        peer TEXT NOT NULL,
        outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
        state TEXT NOT NULL CHECK (state IN ('arriving', 'offered', 'accepted', 'completed',
                                             'failed', 'cancelled', 'declined', 'expired')),
        total_files INTEGER NOT NULL CHECK (total_files > 0),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        directory TEXT NULL,               -- incoming, once accepted: where files go
        reason TEXT NOT NULL DEFAULT '',   -- why it failed or was cancelled
        PRIMARY KEY (offer, peer, outgoing)
    );
    CREATE TABLE transfer_files (
        offer BLOB NOT NULL,
        peer TEXT NOT NULL,
        outgoing INTEGER NOT NULL,
        idx INTEGER NOT NULL CHECK (idx >= 0),
        path TEXT NOT NULL,                -- relative; incoming: sanitised, as saved
        size INTEGER NOT NULL CHECK (size >= 0),
        hash BLOB NOT NULL,                -- BLAKE3 of the whole file
        source TEXT NULL,                  -- outgoing: the local file
        mtime_ns INTEGER NULL,             -- outgoing: its mtime when offered
        accepted INTEGER NOT NULL DEFAULT 0 CHECK (accepted IN (0, 1)),
        done INTEGER NOT NULL DEFAULT 0,   -- incoming: bytes durably in the partial file
        outcome TEXT NULL,
        saved_as TEXT NULL,                -- incoming: final path relative to `directory`
        PRIMARY KEY (offer, peer, outgoing, idx),
        FOREIGN KEY (offer, peer, outgoing) REFERENCES transfers ON DELETE CASCADE
    );
    """,
    # v4: rooms (their signed logs; accepted posts go to `messages` as `room:<hex>`) and
    # contact groups (local labels).
    """
    CREATE TABLE room_events (
        room BLOB NOT NULL CHECK (typeof(room) = 'blob' AND length(room) = 16),
        author TEXT NOT NULL,              -- fingerprint
        seq INTEGER NOT NULL CHECK (seq >= 1),
        id BLOB NOT NULL CHECK (typeof(id) = 'blob' AND length(id) = 16),
        payload BLOB NOT NULL,             -- the encoded room op, as signed
        sig BLOB NOT NULL,
        stored_at INTEGER NOT NULL,
        PRIMARY KEY (room, author, seq)
    );
    CREATE TABLE declined_rooms (          -- invitations we declined: never shown again
        room BLOB PRIMARY KEY
    );
    CREATE TABLE contact_groups (
        name TEXT NOT NULL,
        member TEXT NOT NULL,              -- fingerprint
        PRIMARY KEY (name, member)
    );
    """,
    # v5: block and mute (p2pim/blocking.py).  A blocked peer's texts, offers and
    # invitations are dropped before they reach any other table; a muted conversation (a
    # peer's fingerprint or `room:<hex>`, as in `messages.peer`) still stores everything
    # but raises no notification.
    """
    CREATE TABLE blocked_peers (
        fingerprint TEXT PRIMARY KEY,
        blocked_at INTEGER NOT NULL        -- ms since the epoch
    );
    CREATE TABLE muted_conversations (
        conversation TEXT PRIMARY KEY,
        muted_at INTEGER NOT NULL          -- ms since the epoch
    );
    """,
    # v6: files shared in a room.  `room` is the room's 16-byte id when the offer was made
    # there (incoming: only if the claim checked out on arrival), NULL for a private offer.
    # Outgoing `transfer_files.done` now counts the bytes sent, kept across restarts.
    """
    ALTER TABLE transfers ADD COLUMN room BLOB NULL
        CHECK (room IS NULL OR (typeof(room) = 'blob' AND length(room) = 16));
    """,
    # v7: a message id is unique within its conversation, no longer across all of them.
    # Room posts share `messages` with direct messages, and a room member learns every
    # post's id while a peer picks its direct messages' ids freely: with one id space, a
    # direct message carrying a post's id kept the post out of the room for good, and a
    # direct edit or delete of that id changed the post.  SQLite cannot drop a UNIQUE
    # constraint, so the table is rebuilt (its indexes and triggers with it); `seq` is
    # copied as is, so the full-text index, which refers to rows by it, stays valid.
    """
    CREATE TABLE messages_v7 (
        seq INTEGER PRIMARY KEY,
        id BLOB NOT NULL CHECK (typeof(id) = 'blob' AND length(id) = 16),
        peer TEXT NOT NULL,                -- the conversation: a fingerprint or room:<hex>
        author TEXT NOT NULL,
        outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
        sent_at INTEGER NOT NULL,
        lamport INTEGER NOT NULL CHECK (lamport >= 0),
        stored_at INTEGER NOT NULL,
        body TEXT NOT NULL,
        edited_at INTEGER NULL,
        deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
        delivered_at INTEGER NULL,
        read_at INTEGER NULL,
        UNIQUE (peer, id)                  -- every lookup by id names the conversation
    );
    INSERT INTO messages_v7 SELECT seq, id, peer, author, outgoing, sent_at, lamport,
        stored_at, body, edited_at, deleted, delivered_at, read_at FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v7 RENAME TO messages;
    CREATE INDEX messages_by_conversation ON messages (peer, lamport, id);
    CREATE INDEX messages_unread ON messages (peer, lamport, id)
        WHERE outgoing = 0 AND read_at IS NULL;
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, body) VALUES (new.seq, new.body);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF seq, body ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
        INSERT INTO messages_fts (rowid, body) VALUES (new.seq, new.body);
    END;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
