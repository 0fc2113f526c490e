"""Docs that restate the code must match it."""

from __future__ import annotations

from pathlib import Path

from p2pim.wire.connection import state_diagram

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_protocol_doc_embeds_the_state_diagram_generated_from_the_table() -> None:
    text = (DOCS / "protocol.md").read_text()
    assert f"```mermaid\n{state_diagram()}\n```" in text
