"""Received session messages are routed by one table: each type has exactly one handler."""

from __future__ import annotations

import pytest

from p2pim.routes import merge
from p2pim.wire.messages import (
    MESSAGE_TYPES,
    PAYLOAD_ONLY,
    TRANSFER_ONLY,
    Bye,
    Heartbeat,
    Hello,
    Presence,
    Text,
)
from tests.support.nodes import running

# Hello only travels in the handshake (the wire core refuses it after); the session layer
# consumes Bye and Heartbeat itself.  Everything else a session carries reaches the node.
NOT_ROUTED = {Hello, Bye, Heartbeat, *TRANSFER_ONLY, *PAYLOAD_ONLY}


async def test_every_session_message_type_has_one_handler_and_file_data_none() -> None:
    async with running("ann") as (node,):
        routed = set(node._wiring.routes)  # built from every part's routes() at start
    assert routed == set(MESSAGE_TYPES) - NOT_ROUTED
    assert not routed & {*TRANSFER_ONLY, *PAYLOAD_ONLY}


async def _handler(link: object, message: object) -> None:
    raise AssertionError("never called")


def test_a_type_claimed_by_two_parts_is_refused_when_the_table_is_built() -> None:
    assert merge({Text: _handler}, {Presence: _handler}).keys() == {Text, Presence}
    with pytest.raises(ValueError, match="Text has two handlers"):
        merge({Text: _handler}, {Text: _handler})
