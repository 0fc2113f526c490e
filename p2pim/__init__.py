"""p2pim: a serverless peer-to-peer instant messenger for local networks.

The public names load on first use (PEP 562), so that `p2pim --help` and the one-shot
commands, which import submodules of this package, do not load the node, trio and the
crypto library they do not need."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2pim.api import (
        Notice,
        NotYourMessage,
        PairingError,
        PeerBlockedError,
        PeerInfo,
        PeerKeyChangedError,
        PeerRejectedError,
        PeerUnknown,
        Reachability,
        RoomError,
        RoomInfo,
        StorageError,
        StoredMessage,
        TransferError,
        TransferInfo,
        TransferState,
        UnknownMessage,
    )
    from p2pim.config import NodeConfig
    from p2pim.identity import Identity, load_or_create
    from p2pim.node import Node, open_node

_HOMES = {
    "Identity": "p2pim.identity",
    "Node": "p2pim.node",
    "NodeConfig": "p2pim.config",
    "NotYourMessage": "p2pim.api",
    "Notice": "p2pim.api",
    "PairingError": "p2pim.api",
    "PeerBlockedError": "p2pim.api",
    "PeerInfo": "p2pim.api",
    "PeerKeyChangedError": "p2pim.api",
    "PeerRejectedError": "p2pim.api",
    "PeerUnknown": "p2pim.api",
    "Reachability": "p2pim.api",
    "RoomError": "p2pim.api",
    "RoomInfo": "p2pim.api",
    "StorageError": "p2pim.api",
    "StoredMessage": "p2pim.api",
    "TransferError": "p2pim.api",
    "TransferInfo": "p2pim.api",
    "TransferState": "p2pim.api",
    "UnknownMessage": "p2pim.api",
    "load_or_create": "p2pim.identity",
    "open_node": "p2pim.node",
}

__all__ = [
    "Identity",
    "Node",
    "NodeConfig",
    "NotYourMessage",
    "Notice",
    "PairingError",
    "PeerBlockedError",
    "PeerInfo",
    "PeerKeyChangedError",
    "PeerRejectedError",
    "PeerUnknown",
    "Reachability",
    "RoomError",
    "RoomInfo",
    "StorageError",
    "StoredMessage",
    "TransferError",
    "TransferInfo",
    "TransferState",
    "UnknownMessage",
    "load_or_create",
    "open_node",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'p2pim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next access is a plain lookup
    return value
