"""Command palette entries (Ctrl+P): every action of the app, searchable by name (the
actions run `do(name)`, the app's entries of `actions.table.KEY_ACTIONS`)."""

from __future__ import annotations

from functools import partial

from textual.command import Hit, Hits, Provider

ENTRIES: tuple[tuple[str, str, str], ...] = (
    ("Jump to…", "jump", "open a person, room or group by typing part of its name (Ctrl+K)"),
    ("Send a file or folder", "do('send_files')", "offer files to this conversation (Ctrl+O)"),
    ("Transfers", "do('transfers')", "progress, accept, decline, cancel, open folder (F3)"),
    ("Search history", "do('search')", "search every conversation (Ctrl+F)"),
    ("New room", "do('new_room')", "create a group room (Ctrl+N)"),
    ("Invite to this room", "do('invite')", "ask people into the open room"),
    ("Leave this room", "do('leave_room')", "leave the open room"),
    ("New or edit contact group", "do('new_group')", "a label for several people (Ctrl+G)"),
    ("Broadcast", "do('broadcast')", "one message to everyone online (Ctrl+B)"),
    ("Set status", "do('status')", "online, away or busy, and a status text (F2)"),
    ("Verify this peer", "do('verify')", "safety number or pairing code (Ctrl+R)"),
    ("Block or unblock this person", "do('toggle_block')", "nothing they send reaches you"),
    ("Mute or unmute this conversation", "do('toggle_mute')", "no toast, bell or notification"),
    ("Add a peer by address", "do('add_peer')", "reach a peer on another subnet"),
    ("Export this conversation", "do('export')", "Markdown file in the download folder"),
    ("Settings", "do('settings')", "nick, download folder, interfaces, away timer (F4)"),
    ("Help", "do('help')", "keys and slash commands (F1)"),
    ("Quit", "quit", "say goodbye to peers and quit (Ctrl+Q)"),
)


class P2pimCommands(Provider):
    async def discover(self) -> Hits:
        for name, action, help_text in ENTRIES:
            yield Hit(1.0, name, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in ENTRIES:
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(name),
                    partial(self.app.run_action, action),
                    help=help_text,
                )
