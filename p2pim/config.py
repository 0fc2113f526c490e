"""Where a profile lives and what a node is configured with."""

from __future__ import annotations

import argparse
import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs


def default_profile_dir() -> Path:
    return Path(platformdirs.user_data_dir("p2pim", appauthor=False))


def default_download_dir() -> Path:
    return Path(platformdirs.user_downloads_dir()) / "p2pim"


def default_nick() -> str:
    """The account's full name (the GECOS field up to its first comma), else the login
    name: what the first run offers, so two "root"s on a LAN are rare."""
    full = ""
    try:
        import pwd  # POSIX only

        full = pwd.getpwuid(os.getuid()).pw_gecos.split(",")[0].strip()
    except (ImportError, KeyError, OSError):
        pass
    if not full:
        try:
            full = getpass.getuser()
        except (KeyError, OSError):
            full = ""
    # A nick is at most 64 UTF-8 bytes (wire.messages.MAX_NICK_BYTES); cut on a character.
    return full.encode()[:64].decode(errors="ignore").strip() or "p2pim"


@dataclass(slots=True)
class NodeConfig:
    """Everything a node needs besides its identity.  Defaults suit a desktop user."""

    nick: str = field(default_factory=default_nick)
    # Our presence at start (the one remembered in the profile, see `profile`).
    status: str = "online"
    status_text: str = ""
    # Where the node remembers a nick or status the user sets while it runs (the profile
    # directory's settings.json, `p2pim.settings`); None: nowhere (tests, one-shot nodes).
    profile: Path | None = None
    # Address the peer listener binds; port 0 lets the OS choose (mDNS advertises it).
    listen_host: str = "0.0.0.0"
    listen_port: int = 0
    # Interface names or IPv4 addresses for mDNS; None = every non-virtual interface.
    interfaces: list[str] | None = None
    discovery: bool = True
    handshake_timeout: float = 5.0
    max_pending_handshakes: int = 64
    max_pending_per_address: int = 8
    max_sessions: int = 256
    # A peer silent this long is offline; heartbeats flow on idle links every third of it.
    presence_timeout: float = 5.0
    # Redialling known peers: exponential backoff from base to max seconds, jittered.
    reconnect_base_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    # Seconds without `Node.note_activity()` before "online" turns "away" (None: never).
    auto_away_after: float | None = None
    # Files: where accepted files go unless the user picks a folder; how long an offer
    # waits for an answer; how many transfers run at once each way (others wait).
    download_dir: Path = field(default_factory=default_download_dir)
    offer_ttl: float = 24 * 3600.0
    max_transfers: int = 4
    max_uploads: int = 16


DB_FILE = "p2pim.sqlite3"


def database_path(profile_dir: Path) -> Path:
    """The profile's database: everything the node keeps (p2pim.storage opens it)."""
    return profile_dir / DB_FILE


def node_config(args: argparse.Namespace) -> NodeConfig:
    """The node's configuration from the command line (the TUI, the daemon, one-shots)."""
    host, port = args.listen
    return NodeConfig(
        nick=args.nick or default_nick(),
        listen_host=host,
        listen_port=port,
        interfaces=args.interface,
        discovery=not args.no_discovery,
        presence_timeout=args.presence_timeout,
        reconnect_max_delay=args.reconnect_max_delay,
    )
