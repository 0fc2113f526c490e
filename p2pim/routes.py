"""Routing received session messages: each feature declares the message types it handles.

`p2pim.wiring.SessionWiring` builds one table from every part's `routes()` when the node
starts; a received message goes to the one handler of its type.  A type claimed twice is a
wiring bug, found at start (`merge`), not a message silently taken by whichever feature
was asked first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from p2pim.net.link import PeerLink
from p2pim.wire.messages import Message

# Any: each handler takes the one message type it is registered for.
Handler = Callable[[PeerLink, Any], Awaitable[None]]
Routes = Mapping[type[Message], Handler]


def merge(*tables: Routes) -> dict[type[Message], Handler]:
    """One table from several; a message type claimed by two of them is refused."""
    merged: dict[type[Message], Handler] = {}
    for table in tables:
        for kind, handler in table.items():
            if kind in merged:
                raise ValueError(f"{kind.__name__} has two handlers")
            merged[kind] = handler
    return merged
