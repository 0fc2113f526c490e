"""The message input: Enter sends, Ctrl+J (or Alt+Enter) starts a new line, Up and Down
recall what was sent before, and a leading `/` makes it a command.  Editing keys
(Backspace, the arrows, Ctrl+W…) run as they arrive, in order with the characters
around them (p2pim.ui.keys says why).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from p2pim.ui.keys import actions_by_key, run_in_order

HISTORY = 100

EDITING_ACTIONS = actions_by_key(TextArea.BINDINGS)  # Backspace → delete_left, …


class Composer(TextArea):
    # The border stays TextArea's, dim until focused: an accent border here made the
    # input look focused when it was not (and brighter than when it was).
    DEFAULT_CSS = """
    Composer { height: auto; max-height: 8; min-height: 3; }
    Composer:disabled { border: tall $error; }
    """

    @dataclass
    class Submitted(Message):
        composer: Composer
        text: str

    @dataclass
    class Typing(Message):
        active: bool

    def __init__(self, **kwargs: object) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, **kwargs)  # type: ignore[arg-type]
        self._history: list[str] = []
        self._recall: int | None = None

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self._submit()
        elif event.key in ("ctrl+j", "alt+enter"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
        elif event.key == "up" and self.cursor_location[0] == 0 and self._history:
            event.stop()
            event.prevent_default()
            self._step(-1)
        elif event.key == "down" and self._recall is not None and self._on_last_line():
            event.stop()
            event.prevent_default()
            self._step(+1)
        elif not await run_in_order(self, EDITING_ACTIONS, event):
            await super()._on_key(event)

    def _on_last_line(self) -> bool:
        return self.cursor_location[0] == self.document.line_count - 1

    def _step(self, direction: int) -> None:
        index = len(self._history) if self._recall is None else self._recall
        index += direction
        if index >= len(self._history):
            self._recall = None
            self.load_text("")
            return
        self._recall = max(0, index)
        self.load_text(self._history[self._recall])
        self.move_cursor(self.document.end)

    def _submit(self) -> None:
        text = self.text.strip("\n")
        if not text.strip():
            return
        if not self._history or self._history[-1] != text:
            self._history = [*self._history, text][-HISTORY:]
        self._recall = None
        self.load_text("")
        self.post_message(self.Typing(False))
        self.post_message(self.Submitted(self, text))

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area is self and self.text:
            self.post_message(self.Typing(True))
