"""Shared by the wire properties and the fuzz properties (and, through them, the fuzz
harnesses): the messages' own schema metadata, from which strategies are derived."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any


def schema(cls: type) -> list[tuple[str, object, Mapping[str, Any]]]:
    """(name, type, metadata) of each field of a message dataclass."""
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name], f.metadata) for f in dataclasses.fields(cls)]
