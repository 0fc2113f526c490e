"""msgpack <-> message dataclasses, decoded strictly.

A payload is one msgpack map: `"t"` holds the message type, the other keys are exactly the
dataclass's fields.  A `tuple[Record, ...]` field is a msgpack array of maps, each holding
exactly the record's fields.  Anything else (ext types, unknown types or keys, wrong value
types, values out of bounds, trailing bytes) raises `RemoteProtocolError`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any

import msgpack

from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError
from p2pim.wire.messages import MESSAGE_TYPES, Message

TYPE_KEY = "t"
MAX_PAYLOAD_SIZE = 65535 - 16  # a Noise message minus its AEAD tag

# A converter takes a decoded msgpack value and returns the field's value, or raises _Invalid.
Converter = Callable[[object], object]


class _Invalid(Exception):
    pass


def _utf8_size(value: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: only local code can produce them
        raise _Invalid from None


def _scalar(check: Callable[[Any], bool]) -> Converter:
    def convert(value: object) -> object:
        if not check(value):
            raise _Invalid
        return value

    return convert


def _converter(kind: object, meta: Mapping[str, Any]) -> Converter:
    if kind is str:
        limit, choices = meta["max"], meta.get("choices")
        return _scalar(
            lambda v: (
                type(v) is str and _utf8_size(v) <= limit and (choices is None or v in choices)
            )
        )
    if kind is bytes:
        if "size" in meta:
            size = meta["size"]
            return _scalar(lambda v: type(v) is bytes and len(v) == size)
        limit = meta["max"]
        return _scalar(lambda v: type(v) is bytes and len(v) <= limit)
    if kind is int:
        low, high = meta.get("min", 0), meta["max"]
        return _scalar(lambda v: type(v) is int and low <= v <= high)
    if kind is bool:
        return _scalar(lambda v: type(v) is bool)
    if typing.get_origin(kind) is tuple:
        item_type, _ = typing.get_args(kind)
        limit = meta["max"]
        if item_type is bytes:  # a list of fixed-size ids
            size = meta["item_size"]

            def convert_ids(value: object) -> object:
                if not isinstance(value, list) or len(value) > limit:
                    raise _Invalid
                if not all(type(i) is bytes and len(i) == size for i in value):
                    raise _Invalid
                return tuple(value)

            return convert_ids
        record = _record_converter(item_type)

        def convert_list(value: object) -> object:
            if type(value) is not list or len(value) > limit:
                raise _Invalid
            return tuple(record(item) for item in value)

        return convert_list
    raise TypeError(f"no wire encoding for field type {kind!r}")


def _fields(cls: type) -> dict[str, Converter]:
    hints = typing.get_type_hints(cls)
    return {f.name: _converter(hints[f.name], f.metadata) for f in dataclasses.fields(cls)}


def _record_converter(cls: type) -> Converter:
    fields = _fields(cls)

    def convert(value: object) -> object:
        if type(value) is not dict or value.keys() != fields.keys():
            raise _Invalid
        return cls(**{name: conv(value[name]) for name, conv in fields.items()})

    return convert


_SCHEMAS: dict[str, tuple[type[Message], dict[str, Converter]]] = {
    cls.TYPE: (cls, _fields(cls)) for cls in MESSAGE_TYPES
}


def _to_wire(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_to_wire(item) for item in value]
    return value


def _reject_ext(code: int, data: bytes) -> object:
    raise RemoteProtocolError(f"msgpack ext type {code} is not allowed")


def _unique_keys(pairs: list[tuple[object, object]]) -> dict[object, object]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):  # last-one-wins would let two parsers disagree
        raise RemoteProtocolError("repeated map key")
    return mapping


def encode(message: Message) -> bytes:
    entry = _SCHEMAS.get(getattr(message, "TYPE", None))  # type: ignore[arg-type]
    if entry is None or not isinstance(message, entry[0]):
        raise LocalProtocolError(f"not a protocol message: {message!r}")
    fields = {name: _to_wire(getattr(message, name)) for name in entry[1]}
    for name, convert in entry[1].items():
        try:
            convert(fields[name])
        except _Invalid:
            raise LocalProtocolError(f"{message.TYPE}.{name} is out of bounds") from None
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
            object_pairs_hook=_unique_keys,
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
    cls, fields = entry
    if obj.keys() != fields.keys():
        raise RemoteProtocolError(f"{cls.TYPE} has keys {sorted(map(str, obj))}")
    values: dict[str, Any] = {}
    for name, convert in fields.items():
        try:
            values[name] = convert(obj[name])
        except _Invalid:
            raise RemoteProtocolError(f"{cls.TYPE}.{name} is ill-typed or out of bounds") from None
    return cls(**values)
