"""Pick files or folders to send: a path input with Tab completion, and a tree."""

from __future__ import annotations

import os
from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, DirectoryTree, Input, Label

from p2pim.ui.dialogs import Dialog
from p2pim.ui.keys import Field


def complete(text: str, base: Path) -> str:
    """Tab completion: the longest common extension of the entries `text` starts (a
    relative `text` is taken from `base`)."""
    path = base / os.path.expanduser(text)
    # Nothing typed: the base folder's own entries, not its siblings (splitting it into
    # parent and name completed "" to "/").
    folder, stem = (path, "") if not text or text.endswith("/") else (path.parent, path.name)
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(stem)]
    except OSError:
        return text
    if not names:
        return text
    common = os.path.commonprefix(names)  # noqa: RUF071 - names, not paths
    completed = text + common[len(stem) :]
    if len(names) == 1 and (folder / names[0]).is_dir():
        completed += "/"
    return completed


class PathInput(Field):
    def __init__(self, value: str, *, base: Path, **kwargs: object) -> None:
        super().__init__(value, **kwargs)  # type: ignore[arg-type]
        self.base = base

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "tab":
            event.stop()
            event.prevent_default()
            self.value = complete(self.value, self.base)
            self.cursor_position = len(self.value)
        else:
            await super()._on_key(event)


class FilePicker(Dialog):
    """Dismisses with a list of paths (several: separate them with `;`), or None."""

    DEFAULT_CSS = """
    FilePicker DirectoryTree { height: 14; margin-top: 1; }
    """

    def __init__(self, start: Path) -> None:
        super().__init__()
        self._start = start

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Send files or folders", classes="title")
            # The cursor after the folder, nothing selected: what is typed goes on the end
            # of the path (selected, the folder was replaced by the first key).
            yield PathInput(
                str(self._start) + "/",
                placeholder="path (Tab completes; ; separates several)",
                id="path",
                base=self._start,
                select_on_focus=False,
            )
            yield DirectoryTree(self._start)
            yield Label(
                "Enter sends · Tab completes · pick in the tree to fill the path", classes="hint"
            )
            yield self.buttons(
                Button("Send", variant="primary", id="ok"), Button("Cancel", id="cancel")
            )

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self._fill(event.path)

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self._fill(event.path)

    def _fill(self, path: Path) -> None:
        field = self.query_one("#path", Input)
        field.value = str(path)
        field.focus()

    def on_input_submitted(self) -> None:
        self._done()

    def _done(self) -> None:
        """The paths typed, a relative one taken from the folder the picker shows (not
        from wherever p2pim was started)."""
        raw = self.query_one("#path", Input).value
        paths = [
            str(self._start / os.path.expanduser(p.strip())).rstrip("/") or "/"
            for p in raw.split(";")
            if p.strip()
        ]
        self.close(paths or None)
