"""What the action handlers may do with the app: the `UiContext` Protocol.

The handlers (chat, rooms, files, peers, profile) are plain functions over this narrow
surface; `P2pimApp` provides it, and mypy checks that it does.  Node calls go through the
typed bridge: `call` gives the result or raises what the node raised; `try_call` shows a
refusal to the user (once) and gives None instead, and `try_do`, for a call without a
result, says whether the node took it (the bool a None result could not tell).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload

from textual.notifications import SeverityLevel
from textual.screen import Screen

from p2pim import events as ev
from p2pim.api import ROOM_PREFIX
from p2pim.node import Node
from p2pim.settings import Settings
from p2pim.ui.model import GROUP_PREFIX, HISTORY_PAGE, Model

if TYPE_CHECKING:
    from p2pim.ui.composer import Composer
    from p2pim.ui.conversation import Conversation

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


class UiContext(Protocol):
    node: Node
    model: Model
    settings: Settings | None
    profile: Path | None

    # ---- the node, through the bridge ------------------------------------------------
    @overload
    async def call(self, fn: Callable[P, Awaitable[T]], *a: P.args, **k: P.kwargs) -> T: ...
    @overload
    async def call(self, fn: Callable[P, T], *a: P.args, **k: P.kwargs) -> T: ...

    # ---- Textual, in the few forms the handlers use ------------------------------------
    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...

    def spawn(self, work: Awaitable[object]) -> None:
        """Run `work` as a worker (a dialog's answer acted on, say)."""
        ...

    def show(self, screen: Screen[R], then: Callable[[R | None], None] | None = None) -> None:
        """Push `screen`; `then` gets what it is dismissed with."""
        ...

    async def ask(self, screen: Screen[R]) -> R | None:
        """Push `screen` and wait for its answer (only from a worker)."""
        ...

    def call_later(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> bool: ...

    @property
    def screen_stack(self) -> list[Screen[Any]]: ...

    @property
    def view(self) -> Conversation: ...

    @property
    def composer(self) -> Composer: ...

    # ---- the app's own state and views -------------------------------------------------
    def open_conversation(self, key: str | None, *, reload: bool = True) -> None: ...

    async def open_now(self, key: str) -> None:
        """Load the conversation's history and show it, before returning."""
        ...

    async def load_older(self, key: str, limit: int = HISTORY_PAGE) -> bool: ...

    async def load_transfers(self) -> None: ...

    def refresh_transfers(self, event: ev.NodeEvent) -> None: ...

    def refresh_sidebar(self) -> None: ...

    def refresh_status(self) -> None: ...

    async def action_quit(self) -> None: ...


def room_of(key: str | None) -> str | None:
    """The room id of a room's conversation key, else None."""
    return key.removeprefix(ROOM_PREFIX) if key and key.startswith(ROOM_PREFIX) else None


def peer_of(key: str | None) -> str | None:
    """The fingerprint of a conversation with one person, else None."""
    return key if key and not key.startswith((ROOM_PREFIX, GROUP_PREFIX)) else None


def chat_of(key: str | None) -> str | None:
    """A conversation with a person or a room (not a group), else None."""
    return key if room_of(key) or peer_of(key) else None


@overload
async def try_call(
    ui: UiContext, fn: Callable[P, Awaitable[T]], *a: P.args, **k: P.kwargs
) -> T | None: ...
@overload
async def try_call(ui: UiContext, fn: Callable[P, T], *a: P.args, **k: P.kwargs) -> T | None: ...
async def try_call(ui: UiContext, fn: Callable[P, Any], *a: P.args, **k: P.kwargs) -> Any:
    """A node call whose refusal is shown to the user (and gives None), not raised."""
    try:
        return await ui.call(fn, *a, **k)
    except Exception as exc:  # every refusal reaches the user as a message
        _refused(ui, exc)
        return None


async def try_do(
    ui: UiContext, fn: Callable[P, Awaitable[None] | None], *a: P.args, **k: P.kwargs
) -> bool:
    """A node call without a result: whether the node took it (a refusal is shown)."""
    try:
        await ui.call(fn, *a, **k)
    except Exception as exc:  # every refusal reaches the user as a message
        _refused(ui, exc)
        return False
    return True


def _refused(ui: UiContext, exc: Exception) -> None:
    ui.notify(str(exc) or type(exc).__name__, severity="error", timeout=8)
