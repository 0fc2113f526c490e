"""p2pim: a serverless peer-to-peer instant messenger for local networks."""

from p2pim.config import NodeConfig
from p2pim.identity import Identity, load_or_create
from p2pim.node import Node, PeerInfo, PeerUnknown, open_node
from p2pim.sessions import PeerRejectedError

__all__ = [
    "Identity",
    "Node",
    "NodeConfig",
    "PeerInfo",
    "PeerRejectedError",
    "PeerUnknown",
    "load_or_create",
    "open_node",
]
