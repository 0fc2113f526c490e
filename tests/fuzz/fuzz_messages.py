#!/usr/bin/env python3
"""Atheris harness: the message codec (`p2pim.wire.codec.decode`) fed any payload.

    pip install atheris
    python tests/fuzz/fuzz_messages.py [CORPUS_DIR ...] -max_total_time=600

The first input byte picks how the rest becomes a payload:

0. raw bytes, as a peer could send them;
1. a valid message of every type in turn (at its low or high bounds), encoded by the codec
   or by a loose packer that picks needlessly wide msgpack formats, then edited by a small
   program of bit flips, overwrites, insertions, deletions and truncations;
2. a msgpack value built from the input (nested arrays and maps, ext types, timestamps,
   64-bit boundary integers, floats, str and bin), packed with or without the bin type;
3. a valid message's map with one field, key or the type tag replaced by such a value.

The oracle is the CI property's (`decode_or_rpe` in tests/wire/test_fuzz_properties.py): a
typed, well-typed message that re-encodes to exactly what arrived, or
`RemoteProtocolError`; plus: any ext type is refused, and untouched valid messages decode
to themselves.  Any other exception, or a failed assertion, is a crash.  See
docs/fuzzing.md.
"""

from __future__ import annotations

import random
import sys
import typing
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]
import msgpack

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # p2pim and the shared oracles (tests.wire)

with atheris.instrument_imports(
    include=["p2pim.wire", "tests.wire.test_fuzz_properties", "tests.support.wire"]
):
    import tests.wire.test_fuzz_properties as oracle
    from p2pim.wire import codec
    from p2pim.wire.messages import MESSAGE_TYPES, Message

INT_EDGES = (
    *(0, 1, -1, -32, -33, 127, 128, 255, 256, 2**16 - 1, 2**16, 2**31, 2**32 - 1, 2**32),
    *(2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)),
)
NAMES = sorted(
    {"t", *(cls.TYPE for cls in MESSAGE_TYPES)}
    | {name for cls in MESSAGE_TYPES for name, _, _ in oracle.schema(cls)}
)


def bound_value(kind: object, meta: Any, high: bool) -> object:
    """A field's value at its low or high bound (records and lists get one item)."""
    if kind is str:
        if "choices" in meta:
            return meta["choices"][-1 if high else 0]
        return "é" * (meta["max"] // 2) if high else ""
    if kind is bytes:
        if "size" in meta:
            return b"\x01" * meta["size"]
        return b"\x01" * meta["max"] if high else b""
    if kind is int:
        return meta["max"] if high else meta.get("min", 0)
    if kind is bool:
        return high
    item = typing.get_args(kind)[0]
    if item is bytes:
        return (b"\x02" * meta["item_size"],) * (meta["max"] if high else 1)
    return (bound_message(item, high),)


def bound_message(cls: type, high: bool) -> Any:
    return cls(**{name: bound_value(k, m, high) for name, k, m in oracle.schema(cls)})


SEEDS: list[Message] = []
for _cls in MESSAGE_TYPES:
    for _high in (False, True):
        _message = bound_message(_cls, _high)
        if len(codec.encode(_message)) <= codec.MAX_PAYLOAD_SIZE:
            SEEDS.append(_message)


def build_value(fdp: Any, depth: int = 0) -> object:
    """A msgpack value from the input: what a peer's packer could put on the wire."""
    kind = fdp.ConsumeIntInRange(0, 12 if depth < 4 else 9)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeIntInRange(-(2**63), 2**64 - 1)
    if kind == 3:
        return INT_EDGES[fdp.ConsumeIntInRange(0, len(INT_EDGES) - 1)]
    if kind == 4:
        return fdp.ConsumeFloat()
    if kind == 5:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if kind == 6:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
    if kind == 7:
        return NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
    if kind == 8:
        code = fdp.ConsumeIntInRange(0, 127)
        return msgpack.ExtType(code, fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 20)))
    if kind == 9:
        seconds = fdp.ConsumeIntInRange(-(2**34), 2**34)
        return msgpack.Timestamp(seconds, fdp.ConsumeIntInRange(0, 10**9 - 1))
    if kind == 10:
        return [build_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 5))]
    if kind == 11:
        return tuple(build_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3)))
    mapping: dict[object, object] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 5)):
        key = build_value(fdp, 99)  # a scalar (depth 99 allows no containers)
        if isinstance(key, msgpack.ExtType | msgpack.Timestamp | float):
            key = NAMES[0]
        mapping[key] = build_value(fdp, depth + 1)
    return mapping


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:
        oracle.decode_or_rpe(fdp.ConsumeBytes(fdp.remaining_bytes()))
        return
    if mode == 2:
        value = build_value(fdp)
        payload = msgpack.packb(value, use_bin_type=fdp.ConsumeBool())
        accepted = oracle.decode_or_rpe(payload)
        assert accepted is None or not oracle.contains_ext(value)
        return
    message = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
    if mode == 1:
        seed = fdp.ConsumeIntInRange(0, 2**32)
        if seed:
            payload = oracle.pack_loose(oracle.to_wire(message), random.Random(seed), False)
        else:
            payload = codec.encode(message)
        mutated = oracle.mutate(payload, fdp.ConsumeBytes(fdp.remaining_bytes()))
        accepted = oracle.decode_or_rpe(mutated)
        if mutated == payload:
            assert accepted == message
        return
    tree = oracle.to_wire(message)
    assert isinstance(tree, dict)
    key: object = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
    if fdp.ConsumeBool():  # a key of any type instead of a known name
        key = build_value(fdp, 99)
    if isinstance(key, msgpack.ExtType | msgpack.Timestamp | float):
        key = "t"
    tree[key] = build_value(fdp)
    oracle.decode_or_rpe(msgpack.packb(tree, use_bin_type=True))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
