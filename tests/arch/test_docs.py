"""Docs that restate the code must match it."""

from __future__ import annotations

from p2pim.transfer import state as transfer_state
from p2pim.wire.connection import state_diagram
from tests.support import REPO

DOCS = REPO / "docs"


def test_protocol_doc_embeds_the_state_diagram_generated_from_the_table() -> None:
    text = (DOCS / "protocol.md").read_text()
    assert f"```mermaid\n{state_diagram()}\n```" in text


def test_protocol_doc_embeds_the_transfer_diagram_generated_from_the_table() -> None:
    text = (DOCS / "protocol.md").read_text()
    assert f"```mermaid\n{transfer_state.state_diagram()}\n```" in text


def _headings(section: str) -> set[str]:
    text = (DOCS / "api.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return {line[5:-1] for line in body.splitlines() if line.startswith("### `")}


def test_api_doc_lists_every_rpc_method() -> None:
    from p2pim.rpc import RpcServer

    assert _headings("Methods") == set(RpcServer.METHODS)


def test_api_doc_lists_every_notification() -> None:
    import typing

    from p2pim import events
    from p2pim.rpc import event_name

    types = {event_name(cls) for cls in typing.get_args(events.NodeEvent)}
    assert _headings("Notifications") == types
