"""msgpack <-> message dataclasses, decoded strictly.

A payload is one msgpack map: `"t"` holds the message type, the other keys are exactly the
dataclass's fields.  Anything else (ext types, unknown types or keys, wrong value types,
values out of bounds, trailing bytes) raises `RemoteProtocolError`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import msgpack

from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError
from p2pim.wire.messages import MESSAGE_TYPES, Message

TYPE_KEY = "t"
MAX_PAYLOAD_SIZE = 65535 - 16  # a Noise message minus its AEAD tag

Check = Callable[[object], bool]


def _field_check(kind: object, meta: typing.Mapping[str, Any]) -> Check:
    if kind is str:
        limit = meta["max"]
        return lambda v: type(v) is str and len(v.encode("utf-8", "surrogatepass")) <= limit
    if kind is bytes:
        if "size" in meta:
            size = meta["size"]
            return lambda v: type(v) is bytes and len(v) == size
        limit = meta["max"]
        return lambda v: type(v) is bytes and len(v) <= limit
    if kind is int:
        low, high = meta.get("min", 0), meta["max"]
        return lambda v: type(v) is int and low <= v <= high
    if kind is bool:
        return lambda v: type(v) is bool
    raise TypeError(f"no wire encoding for field type {kind!r}")


def _schema(cls: type[Message]) -> dict[str, Check]:
    hints = typing.get_type_hints(cls)
    return {f.name: _field_check(hints[f.name], f.metadata) for f in dataclasses.fields(cls)}


_SCHEMAS: dict[str, tuple[type[Message], dict[str, Check]]] = {
    cls.TYPE: (cls, _schema(cls)) for cls in MESSAGE_TYPES
}


def _reject_ext(code: int, data: bytes) -> object:
    raise RemoteProtocolError(f"msgpack ext type {code} is not allowed")


def encode(message: Message) -> bytes:
    entry = _SCHEMAS.get(message.TYPE)
    if entry is None or not isinstance(message, entry[0]):
        raise LocalProtocolError(f"not a protocol message: {message!r}")
    fields = {name: getattr(message, name) for name in entry[1]}
    for name, check in entry[1].items():
        if not check(fields[name]):
            raise LocalProtocolError(f"{message.TYPE}.{name} is out of bounds")
    payload: bytes = msgpack.packb({TYPE_KEY: message.TYPE, **fields}, use_bin_type=True)
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise LocalProtocolError(f"{message.TYPE} encodes to {len(payload)} bytes")
    return payload


def decode(payload: bytes) -> Message:
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise RemoteProtocolError(f"payload of {len(payload)} bytes is too large")
    try:
        obj = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            ext_hook=_reject_ext,
        )
    except RemoteProtocolError:
        raise
    except Exception as exc:  # any failure to parse peer bytes is the peer's fault
        raise RemoteProtocolError(f"undecodable payload: {exc.__class__.__name__}") from None
    if type(obj) is not dict:
        raise RemoteProtocolError("payload is not a map")
    tag = obj.pop(TYPE_KEY, None)
    entry = _SCHEMAS.get(tag) if type(tag) is str else None
    if entry is None:
        raise RemoteProtocolError("unknown or missing message type")
    cls, schema = entry
    if obj.keys() != schema.keys():
        raise RemoteProtocolError(f"{cls.TYPE} has keys {sorted(map(str, obj))}")
    for name, check in schema.items():
        if not check(obj[name]):
            raise RemoteProtocolError(f"{cls.TYPE}.{name} is ill-typed or out of bounds")
    return cls(**obj)
