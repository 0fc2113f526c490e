"""Fuzzing in CI (issue 9): hypothesis properties at 10,000 examples per target.

DESIGN.md §1 rule 4: any bytes a peer sends either parse or raise `RemoteProtocolError`,
never another exception and never a hang.  Three targets, each checked against an
independent model of what the answer must be, not only for "no other exception":

* the frame decoder, fed arbitrary streams in arbitrary chunkings (with the frame limit
  raised mid-stream, as a connection does after its handshake), against a reference
  parser: the same frames, the error at the very chunk that completes a bad header, and
  never more than one frame's worth of bytes buffered;
* the codec, fed arbitrary msgpack values (nested containers, ext types and timestamps,
  64-bit boundary integers, maps that name a real message type but carry wrong or extra
  fields), encoded canonically or with needlessly wide msgpack formats, and byte-mutated
  valid messages: a typed message that re-encodes to exactly what arrived, or
  `RemoteProtocolError`; the encoding's width never changes the answer; valid messages
  round-trip;
* two `Connection`s wired back to back through an adversary that drops, duplicates,
  reorders, truncates, extends, bit-flips, replays, reflects and splices in frames of
  another session or low-order keys, and peers that are themselves malicious (an
  impostor key, a bad Hello, any payload sealed with their own keys): every event is the
  genuine one (the peer's key and hello, the peer's messages in order), a forged,
  misplaced or refusable whole frame fails at once with `RemoteProtocolError`, and an
  undisturbed link completes and delivers everything.

The longer-running coverage-guided harnesses in tests/fuzz/ drive the same oracles (see
docs/fuzzing.md).  Nearly all the time goes to hypothesis generating examples, so the
per-example work is kept small (keys made once, big frames built as `bytes * n`, chunkings
and streams drawn as one `binary`): the file takes about a minute and a half on a 2-core
machine.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import struct
import typing
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from p2pim.wire import codec, noise
from p2pim.wire.connection import (
    MAX_HANDSHAKE_FRAME,
    MESSAGE_1_SIZE,
    Connection,
    Established,
    Event,
    State,
    UnexpectedPeerKey,
)
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.framing import HEADER_SIZE, MAX_FRAME_SIZE, FrameDecoder, encode_frame
from p2pim.wire.messages import (
    MAX_CHUNK_BYTES,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Chunk,
    Heartbeat,
    Hello,
    Message,
    PeerAddress,
    PeerList,
    Presence,
    Text,
    Typing,
)
from tests.support.wire import schema

FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def chunks(data: bytes, plan: bytes) -> Iterator[bytes]:
    """`data` in pieces, one per byte of `plan`: 0..191 stand for 1..192 bytes (headers
    split between reads), 192..255 for 1..64 KiB; the rest comes in one last piece."""
    pos = 0
    for b in plan:
        if pos >= len(data):
            return
        size = b + 1 if b < 192 else (b - 191) * 1024
        yield data[pos : pos + size]
        pos += size
    if pos < len(data):
        yield data[pos:]


# One draw for a whole chunking: hypothesis spends far less per example on a binary than
# on a list of integers.
PLANS = st.binary(max_size=24)


# ======================================================================================
# (a) Frame decoder: arbitrary streams, arbitrary chunkings, a limit raised mid-stream
# ======================================================================================


def header(length: int) -> bytes:
    return min(max(length, 0), 0xFFFF).to_bytes(HEADER_SIZE, "big")


LIMITS = st.one_of(
    st.sampled_from([1, 2, 3, 255, 256, MAX_HANDSHAKE_FRAME, MAX_FRAME_SIZE]),
    st.integers(1, MAX_FRAME_SIZE),
)


def build_stream(program: bytes, limit: int) -> bytes:
    """A stream mixing good frames (some over the limit), bare headers and junk, built
    from a byte `program`: one draw, which hypothesis generates and shrinks cheaply."""
    out = bytearray()
    ops = iter(program)
    for op in ops:
        arg = next(ops, 0) << 8 | next(ops, 0)
        kind = op % 6
        if kind == 0:  # a small frame
            body = bytes(itertools.islice(ops, arg % 300 + 1)) or b"\x00"
            out += encode_frame(body)
        elif kind == 1:  # a big frame, cheap to build: its size is what matters
            out += encode_frame(bytes([op]) * (arg or MAX_FRAME_SIZE))
        elif kind == 2:  # a header at the limit: its body may never come
            out += header(limit + arg % 3 - 1)
        elif kind == 3:  # any header
            out += header(arg)
        elif kind == 4:  # junk
            out += bytes(itertools.islice(ops, arg % 41))
        else:  # a frame of exactly the limit
            out += encode_frame(bytes([op]) * min(limit, MAX_FRAME_SIZE))
    return bytes(out)


def reference_parse(
    stream: bytes, ends: list[int], limit_at: list[int]
) -> tuple[list[bytes], int | None, int]:
    """What the decoder must do when fed chunks ending at `ends` (cumulative) with the
    limit `limit_at[j]` in force while chunk j is read: (frames, index of the chunk that
    raises or None, bytes left buffered).  A header is judged by the limit in force when
    it is complete; limits only grow, so a header that passed stays good."""
    frames: list[bytes] = []
    pos = 0
    while len(stream) - pos >= HEADER_SIZE:
        length = int.from_bytes(stream[pos : pos + HEADER_SIZE], "big")
        j = next(i for i, end in enumerate(ends) if end >= pos + HEADER_SIZE)
        if length == 0 or length > limit_at[j]:
            return frames, j, len(stream) - pos
        if len(stream) - pos - HEADER_SIZE < length:
            break
        frames.append(stream[pos + HEADER_SIZE : pos + HEADER_SIZE + length])
        pos += HEADER_SIZE + length
    return frames, None, len(stream) - pos


@FUZZ
@given(LIMITS, st.booleans(), st.binary(max_size=1024), PLANS, st.integers(0, 24))
@example(1, True, b"\x00\x00", b"", 30)
@example(1024, True, b"\xff\xff" + b"x" * 100, b"\x00", 30)
@example(1024, True, encode_frame(b"x" * 2000), b"\x01\x63", 1)
@example(256, False, b"\x02\x00\x02\x01\x00\x00", b"", 30)
def test_frame_decoder_any_stream_any_chunking(
    limit: int, raw: bool, program: bytes, plan: bytes, raise_at: int
) -> None:
    check_frame_stream(program if raw else build_stream(program, limit), limit, plan, raise_at)


def check_frame_stream(stream: bytes, limit: int, plan: bytes, raise_at: int) -> None:
    """The frame property (also driven by tests/fuzz/fuzz_frames.py)."""
    pieces = list(chunks(stream, plan)) or [b""]
    ends = list(itertools.accumulate(len(p) for p in pieces))
    # After `raise_at` chunks the limit goes up to the maximum, as after a handshake.
    limit_at = [limit if j < raise_at else MAX_FRAME_SIZE for j in range(len(pieces))]
    want_frames, want_error_at, want_left = reference_parse(stream, ends, limit_at)

    decoder = FrameDecoder(max_frame_size=limit)
    got: list[bytes] = []
    error_at = None
    for j, piece in enumerate(pieces):
        decoder.max_frame_size = limit_at[j]
        decoder.feed(piece)
        try:
            while (frame := decoder.next_frame()) is not None:
                assert 1 <= len(frame) <= limit_at[j]
                got.append(frame)
        except RemoteProtocolError:
            error_at = j
            break
        # Bounded buffering: at most one (incomplete) frame under the current limit.
        assert decoder.buffered <= HEADER_SIZE - 1 + limit_at[j]
    assert got == want_frames
    # The error comes with the very read that completes a bad header: not before, and not
    # after waiting for a body that is never going to be accepted.
    assert error_at == want_error_at
    if error_at is None:
        assert decoder.buffered == want_left


# ======================================================================================
# (b) Codec: arbitrary msgpack values, loose encodings, mutated payloads
# ======================================================================================

INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # all msgpack can carry
_EDGES = (0, 1, -1, -32, -33, 127, 128, 255, 256, 2**15, 2**16 - 1, 2**16, 2**16 + 1, 2**31)
BOUNDARY_INTS = st.sampled_from(
    [*_EDGES, 2**32 - 1, 2**32, 2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]
)
# msgpack-python builds ext codes 0..127 only; reserved negative codes (malformed
# timestamps) come as raw bytes in the mutated-payload examples below.
EXT = st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=20))
TIMESTAMPS = st.builds(msgpack.Timestamp, st.integers(-(2**34), 2**34), st.integers(0, 10**9 - 1))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    BOUNDARY_INTS,
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=20),
    EXT,
    TIMESTAMPS,
)
KEYS = st.one_of(
    st.sampled_from(["t", "id", "body", "reason", "peers", "ids"]),
    st.text(max_size=8),
    st.binary(max_size=8),
    INT64,
    st.none(),
    st.booleans(),
)
ANY = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(KEYS, children, max_size=4),
    ),
    max_leaves=10,
)


SEEDS = st.integers(0, 2**32)  # for the loose packer's choices of formats
HELLO = Hello(version=PROTOCOL_VERSION, nick="alice")


def to_wire(value: object) -> object:
    """A message (or record, or field value) as the msgpack tree the codec sends."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        tree = {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
        type_tag = getattr(value, "TYPE", None)
        return tree if type_tag is None else {"t": type_tag, **tree}
    if type(value) is tuple:  # not ExtType, itself a namedtuple
        return [to_wire(item) for item in value]
    return value


def valid_field(kind: object, meta: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Small valid values of a field, and its exact bounds (derived from its metadata the
    way the codec derives its checks, so new messages and fields are fuzzed too)."""
    if kind is str:
        if "choices" in meta:
            return st.sampled_from(meta["choices"])
        top = meta["max"]
        return st.one_of(st.text(max_size=min(top // 4, 24)), st.just("a" * top))
    if kind is bytes:
        if "size" in meta:
            return st.binary(min_size=meta["size"], max_size=meta["size"])
        return st.one_of(st.binary(max_size=min(meta["max"], 24)), st.just(b"\xff" * meta["max"]))
    if kind is int:
        low, high = meta.get("min", 0), meta["max"]
        return st.one_of(st.integers(low, high), st.sampled_from([low, high]))
    if kind is bool:
        return st.booleans()
    item = typing.get_args(kind)[0]
    if item is bytes:
        ids = st.binary(min_size=meta["item_size"], max_size=meta["item_size"])
        return st.lists(ids, max_size=3).map(tuple)
    return st.lists(valid_message(item), max_size=3).map(tuple)


def invalid_field(kind: object, meta: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Wire values just outside a field's bounds, or of a near-miss type."""
    wrong_types = st.sampled_from([None, True, 1, 1.5, "x", b"x", [], {}, ["x"]])
    if kind is str:
        top = meta["max"]
        over = ["a" * (top + 1), "é" * (top // 2 + 1), b"a"]
        return st.one_of(st.sampled_from(over), wrong_types)
    if kind is bytes:
        size = meta.get("size", meta.get("max"))
        return st.one_of(st.sampled_from([b"\x00" * (size + 1), "a" * size]), wrong_types)
    if kind is int:
        low, high = meta.get("min", 0), meta["max"]
        # bool is an int subclass in Python, and 1.0 == 1: in bounds, of the wrong type.
        return st.sampled_from([low - 1, high + 1, 2**64 - 1, -(2**63), True, False, float(low)])
    if kind is bool:
        return st.sampled_from([0, 1, None, "true"])
    if typing.get_args(kind)[0] is bytes:
        size = meta["item_size"]
        return st.sampled_from([[b"\x00" * (size - 1)], [b"\x00" * size] * (meta["max"] + 1)])
    return st.sampled_from([[None], [{}], [[1, 2]], ({},)])


def valid_message(cls: type) -> st.SearchStrategy[Any]:
    return st.builds(cls, **{name: valid_field(k, m) for name, k, m in schema(cls)})


VALID = {cls: valid_message(cls) for cls in MESSAGE_TYPES}
VALID_MESSAGES = st.one_of(list(VALID.values()))
# Per type and field: any value a peer might put there, right or wrong.
FIELD_VALUES = {
    cls: {
        name: st.one_of(valid_field(k, m), invalid_field(k, m), SCALARS, ANY)
        for name, k, m in schema(cls)
    }
    for cls in MESSAGE_TYPES
}

FIELD_NAMES = {cls: st.sampled_from(sorted(FIELD_VALUES[cls]) or [""]) for cls in MESSAGE_TYPES}
TAGS = st.one_of(st.sampled_from([cls.TYPE for cls in MESSAGE_TYPES]), SCALARS, ANY)


@st.composite
def message_trees(draw: st.DrawFn) -> tuple[object, bool]:
    """A real message as a msgpack tree, often with a field, key or tag made wrong.
    Returns (tree, still exactly valid)."""
    cls = draw(st.sampled_from(MESSAGE_TYPES))
    message = draw(VALID[cls])
    tree = to_wire(message)
    assert isinstance(tree, dict)
    fields = FIELD_VALUES[cls]
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(["field", "field", "drop", "extra", "tag"]))
        if how == "field" and fields:
            name = draw(FIELD_NAMES[cls])
            tree[name] = to_wire(draw(fields[name]))
        elif how == "drop" and tree:
            tree.pop(draw(st.sampled_from(list(tree))))
        elif how == "extra":
            tree[draw(KEYS)] = draw(SCALARS)
        elif how == "tag":
            tree["t"] = draw(TAGS)
    return tree, strictly_equal(tree, to_wire(message))


def strictly_equal(a: object, b: object) -> bool:
    """Equality that tells True from 1 and 1.0, bytes from str, list from tuple."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(map(strictly_equal, a, b))
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)  # type: ignore[arg-type]
    return a == b


def pack_loose(obj: object, rnd: random.Random, bin_as_str: bool) -> bytes:
    """Valid msgpack for `obj`, each item in a randomly chosen format wide enough for it
    (uint64 for 1, str32 for "a", float32 where exact...), as other packers may send."""
    out = bytearray()

    def sized(value: int, forms: list[tuple[int, int]]) -> None:
        marker, width = rnd.choice([(m, w) for m, w in forms if value < 1 << (8 * w)])
        out.append(marker)
        out.extend(value.to_bytes(width, "big"))

    def write(o: object) -> None:
        if o is None:
            out.append(0xC0)
        elif o is True or o is False:
            out.append(0xC3 if o else 0xC2)
        elif isinstance(o, int):
            forms: list[bytes] = []
            if 0 <= o <= 0x7F:
                forms.append(bytes([o]))
            if -32 <= o < 0:
                forms.append(o.to_bytes(1, "big", signed=True))
            for marker, width in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
                if 0 <= o < 1 << (8 * width):
                    forms.append(bytes([marker]) + o.to_bytes(width, "big"))
            for marker, width in ((0xD0, 1), (0xD1, 2), (0xD2, 4), (0xD3, 8)):
                if -(1 << (8 * width - 1)) <= o < 1 << (8 * width - 1):
                    forms.append(bytes([marker]) + o.to_bytes(width, "big", signed=True))
            out.extend(rnd.choice(forms))
        elif isinstance(o, float):
            forms = [b"\xcb" + struct.pack(">d", o)]
            try:
                single = struct.pack(">f", o)
            except OverflowError:
                pass
            else:
                if struct.unpack(">f", single)[0] == o or math.isnan(o):
                    forms.append(b"\xca" + single)
            out.extend(rnd.choice(forms))
        elif isinstance(o, str) or (isinstance(o, bytes) and bin_as_str):
            data = o.encode("utf-8") if isinstance(o, str) else o
            if len(data) < 32 and rnd.random() < 0.5:
                out.append(0xA0 | len(data))
            else:
                sized(len(data), [(0xD9, 1), (0xDA, 2), (0xDB, 4)])
            out.extend(data)
        elif isinstance(o, bytes):
            sized(len(o), [(0xC4, 1), (0xC5, 2), (0xC6, 4)])
            out.extend(o)
        elif isinstance(o, msgpack.ExtType | msgpack.Timestamp):
            code, data = (-1, o.to_bytes()) if isinstance(o, msgpack.Timestamp) else o
            fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
            if len(data) in fixed and rnd.random() < 0.5:
                out.append(fixed[len(data)])
            else:
                sized(len(data), [(0xC7, 1), (0xC8, 2), (0xC9, 4)])
            out.extend(code.to_bytes(1, "big", signed=True))
            out.extend(data)
        elif isinstance(o, list | tuple):  # after ExtType, itself a tuple
            if len(o) < 16 and rnd.random() < 0.5:
                out.append(0x90 | len(o))
            else:
                sized(len(o), [(0xDC, 2), (0xDD, 4)])
            for item in o:
                write(item)
        elif isinstance(o, dict):
            if len(o) < 16 and rnd.random() < 0.5:
                out.append(0x80 | len(o))
            else:
                sized(len(o), [(0xDE, 2), (0xDF, 4)])
            for key, item in o.items():
                write(key)
                write(item)
        else:
            raise AssertionError(f"cannot pack {o!r}")

    write(obj)
    return bytes(out)


def contains_ext(o: object) -> bool:
    if isinstance(o, msgpack.ExtType | msgpack.Timestamp):
        return True
    if isinstance(o, list | tuple):
        return any(contains_ext(i) for i in o)
    if isinstance(o, dict):
        return any(contains_ext(k) or contains_ext(v) for k, v in o.items())
    return False


def unpacked(payload: bytes) -> str:
    """What a lenient unpacker makes of `payload` (repr: NaN equals itself here)."""
    try:
        return repr(msgpack.unpackb(payload, raw=True, strict_map_key=False))
    except ValueError as exc:  # an ext type -1 that is not a valid timestamp
        return f"error: {exc}"


def assert_well_typed(obj: object) -> None:
    """Every field of a decoded message (or record) has exactly its declared type and lies
    within its metadata's bounds: an oracle written from the schema, not from the codec."""
    for name, kind, meta in schema(type(obj)):
        value = getattr(obj, name)
        if kind is str:
            assert type(value) is str, name
            assert len(value.encode("utf-8")) <= meta["max"], name
            assert "choices" not in meta or value in meta["choices"], name
        elif kind is bytes:
            assert type(value) is bytes, name
            assert len(value) == meta["size"] if "size" in meta else len(value) <= meta["max"]
        elif kind is int:
            assert type(value) is int, name
            assert meta.get("min", 0) <= value <= meta["max"], name
        elif kind is bool:
            assert type(value) is bool, name
        else:
            assert type(value) is tuple, name
            assert len(value) <= meta["max"], name
            for item in value:
                if typing.get_args(kind)[0] is bytes:
                    assert type(item) is bytes, name
                    assert len(item) == meta["item_size"], name
                else:
                    assert type(item) is typing.get_args(kind)[0], name
                    assert_well_typed(item)


def decode_or_rpe(payload: bytes) -> Message | None:
    """Rule 4 for one payload, plus: what was accepted is exactly what arrived."""
    try:
        message = codec.decode(payload)
    except RemoteProtocolError:
        return None
    assert type(message) in MESSAGE_TYPES
    assert_well_typed(message)
    # Nothing was coerced, defaulted or dropped: the canonical encoding of the message is
    # the very tree the peer sent (bool is not int, bytes is not str, no extra keys).
    sent = msgpack.unpackb(payload, raw=False)
    assert strictly_equal(msgpack.unpackb(codec.encode(message), raw=False), sent)
    assert codec.decode(codec.encode(message)) == message
    return message


@FUZZ
@given(st.one_of(ANY.map(lambda t: (t, False)), message_trees()), st.booleans(), SEEDS)
@example(({"t": "typing", "active": 1}, False), False, 0)
@example(({"t": "bye", "reason": msgpack.Timestamp(1, 0)}, False), False, 0)
@example(({"t": "bye", "reason": msgpack.ExtType(5, b"abc")}, False), False, 0)
@example(({"t": ["bye"], "reason": "quit"}, False), False, 0)
@example(({"t": "hello", "version": True, "nick": "x"}, False), False, 0)
@example((to_wire(HELLO) | {"version": True}, False), False, 0)
@example(({"t": "pull", "index": False, "offset": 0}, False), False, 0)
@example(({"t": "pull", "index": 0, "offset": 0.0}, False), False, 0)
def test_codec_any_msgpack_value(
    tree_valid: tuple[object, bool], bin_as_str: bool, seed: int
) -> None:
    tree, exactly_valid = tree_valid
    canonical = msgpack.packb(tree, use_bin_type=not bin_as_str)
    loose = pack_loose(tree, random.Random(seed), bin_as_str)
    assert unpacked(loose) == unpacked(canonical)  # the two packers agree on the value
    accepted = decode_or_rpe(canonical)
    # The width of the encoding never changes the answer (only the size limit can).
    if len(loose) <= codec.MAX_PAYLOAD_SIZE:
        assert decode_or_rpe(loose) == accepted
    if contains_ext(tree):  # strict decoding: no ext types, timestamps included
        assert accepted is None
    if exactly_valid and not bin_as_str:  # a valid message is never refused
        assert accepted is not None
        assert strictly_equal(to_wire(accepted), tree)


def mutate(payload: bytes, program: bytes) -> bytes:
    """`payload` edited by a byte `program` of (operation, position, value) triples."""
    data = bytearray(payload)
    ops = iter(program)
    for op, pos, value in zip(ops, ops, ops, strict=False):
        at = pos * len(data) // 256
        kind = op % 6
        if kind == 0 and data:
            data[at] ^= 1 << value % 8
        elif kind == 1 and data:
            data[at] = (0x00, 0x7F, 0x80, 0xC1, 0xD4, 0xDD, 0xDF, 0xFF, value)[op // 6 % 9]
        elif kind == 2:
            data[at:at] = bytes([value]) * (op // 6 % 9 + 1)
        elif kind == 3:
            del data[at : at + value % 9 + 1]
        elif kind == 4:
            del data[at:]
        else:
            data += bytes([value]) * (op // 6 % 9 + 1)
    return bytes(data)


RAW = [  # payloads no packer would write, among them ext types msgpack-python cannot build
    b"\x82\xa1t\xa3bye\xa6reason\xdb\xff\xff\xff\xffquit",  # a str claiming 4 GiB
    b"\x81\xa1t\xa9heartbeat\xc0",  # trailing bytes
    b"\xdd\xff\xff\xff\xff",  # an array claiming 4 G items
    b"\x82\xa1t\xa3bye\xa6reason\xc7\x03\xff\x00\x00\x01",  # a 3-byte timestamp
    b"\x82\xa1t\xa3bye\xa6reason\xd4\xfb\x00",  # reserved ext type -5
    b"\x82\xd6\xff\x00\x00\x00\x01\xa3bye\xa6reason\xa0",  # a timestamp as a key
]


@FUZZ
@given(VALID_MESSAGES, SEEDS, st.binary(max_size=15))
@example(Heartbeat(), 0, b"")
@example(Heartbeat(), 0, b"\xff\x00")  # each of RAW, unchanged
@example(Heartbeat(), 0, b"\xff\x01")
@example(Heartbeat(), 0, b"\xff\x02")
@example(Heartbeat(), 0, b"\xff\x03")
@example(Heartbeat(), 0, b"\xff\x04")
@example(Heartbeat(), 0, b"\xff\x05")
def test_codec_mutated_valid_payloads(message: Message, seed: int, program: bytes) -> None:
    # Seed 0: the codec's own encoding; any other: a loose one (see pack_loose).
    payload = codec.encode(message)
    if seed:
        payload = pack_loose(to_wire(message), random.Random(seed), False)
    if program[:1] == b"\xff":  # now and then, a hand-written payload instead
        payload = RAW[program[-1] % len(RAW)]
    mutated = mutate(payload, program)
    accepted = decode_or_rpe(mutated)
    if mutated == payload and program[:1] != b"\xff":
        assert accepted == message  # valid messages round-trip, whichever packer wrote them


# ======================================================================================
# (c) Two connections through an adversary
# ======================================================================================

I_KEY, I_PUB = noise.generate_keypair()
R_KEY, R_PUB = noise.generate_keypair()
M_KEY, M_PUB = noise.generate_keypair()  # an impostor answering in the responder's place

HELLOS = [
    Hello(version=PROTOCOL_VERSION, nick="alice"),
    Hello(version=PROTOCOL_VERSION, nick="bob ☕", status="busy", listen_port=4242),
    Hello(version=PROTOCOL_VERSION, nick="c" * 64, status_text="s" * 128, transfer=b"o" * 16),
]
POOL: list[Message] = [
    Text(id=b"\x01" * 16, sent_at=1_700_000_000_000, body="hello", lamport=1),
    Text(id=b"\x02" * 16, sent_at=0, body="é" * 16_000),  # over the pre-auth frame limit
    Chunk(data=b"\xab" * MAX_CHUNK_BYTES),  # a frame near the 65535-byte maximum
    Heartbeat(),
    Typing(True),
    Ack(ids=(b"\x03" * 16, b"\x04" * 16)),
    Presence(status="away", status_text="lunch"),
    PeerList(peers=(PeerAddress(public_key=b"\x05" * 32, host="10.0.0.7", port=4000),)),
    Bye("quit"),
]
LIVE = (State.HANDSHAKE, State.ESTABLISHED)
# What a malicious peer (with valid keys) may carry in place of its Hello.
EVIL_HELLOS = {
    "version": codec.encode(Hello(version=PROTOCOL_VERSION + 1, nick="from the future")),
    "not-hello": codec.encode(Heartbeat()),
    "junk": b"\xc1",
}
EVIL = st.sampled_from(["", "", "", "", "", "", "version", "not-hello", "junk"])
# X25519 points of small order (and their twins with the ignored top bit set): a DH with
# one yields all zeros, which the Noise layer must refuse as the peer's fault.
_P = 2**255 - 19
LOW_ORDER = [x.to_bytes(32, "little") for x in (0, 1, _P - 1, _P, _P + 1, 2**255 + 1)] + [
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
]


def split_frames(data: bytes) -> list[bytes]:
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    assert decoder.buffered == 0
    return frames


def record_foreign_session() -> list[list[bytes]]:
    """Every frame of another session between the same two identities, per direction."""
    i = Connection(initiator=True, static_private=I_KEY, hello=HELLOS[0])
    r = Connection(initiator=False, static_private=R_KEY, hello=HELLOS[1])
    wires: list[list[bytes]] = [[], []]

    def move(src: Connection, dst: Connection, d: int) -> None:
        data = src.data_to_send()
        wires[d] += split_frames(data)
        dst.receive_data(data)

    move(i, r, 0)
    move(r, i, 1)
    move(i, r, 0)
    for n, message in enumerate(POOL[:-1]):
        (i if n % 2 else r).send(message)
    move(i, r, 0)
    move(r, i, 1)
    return wires


FOREIGN = record_foreign_session()


@dataclass
class Genuine:
    """A frame as one side produced it."""

    body: bytes
    producer_in_sync: bool | None  # None: the producer had been fed bytes we cannot model
    message: Message | None = None  # transport frames: what it carries
    refused: bool = False  # authentic, but what it says must be refused


@dataclass
class Outcome:
    must_fail: bool = False
    may_fail: bool = False
    events: list[Event] = field(default_factory=list)
    consumed: int = 0
    in_sync: bool = True
    unknown: bool = False


class Link:
    """Side 0 is the initiator, side 1 the responder; direction d carries side d's frames.

    Every frame either side writes is kept (`genuine`), so the model knows what each
    receiver must accept next: the peer's frame number `consumed[dst]`, byte for byte."""

    def __init__(
        self,
        hellos: tuple[Hello, Hello],
        impostor: bool,
        vet_responder: bool,
        evil: tuple[str, str] = ("", ""),
    ) -> None:
        self.impostor = impostor
        self.evil = evil  # per side: what a malicious peer puts in place of its Hello
        self.pubs = [I_PUB, M_PUB if impostor else R_PUB]
        self.hellos = hellos
        self.conns = [
            Connection(
                initiator=True,
                static_private=I_KEY,
                hello=hellos[0],
                accept_remote=lambda key: key == R_PUB,  # it dialled a known identity
            ),
            Connection(
                initiator=False,
                static_private=M_KEY if impostor else R_KEY,
                hello=hellos[1],
                accept_remote=(lambda key: key == I_PUB) if vet_responder else None,
            ),
        ]
        for conn, how in zip(self.conns, evil, strict=True):
            if how:  # a peer with valid keys may still send any handshake payload
                conn._hello_bytes = lambda payload=EVIL_HELLOS[how]: payload  # type: ignore[method-assign]
        self.queue: list[deque[int]] = [deque(), deque()]  # indices into genuine[d]
        self.genuine: list[list[Genuine]] = [[], []]
        self.sent: list[list[Message]] = [[], []]
        self.received: list[list[Message]] = [[], []]
        self.established: list[Established | None] = [None, None]
        self.consumed = [0, 0]  # whole frames each side has accepted from its peer
        self.in_sync = [True, True]  # ... and all of them were its peer's genuine ones
        self.tracked = [True, True]  # the model still knows where its decoder stands
        self.tampered = False
        self.pull(0)

    def pull(self, side: int, message: Message | None = None) -> None:
        if self.conns[side].state is State.ERROR:
            self.conns[side].data_to_send()  # the shell closes the socket unflushed
            return
        sync = self.in_sync[side] if self.tracked[side] else None
        for body in split_frames(self.conns[side].data_to_send()):
            self.queue[side].append(len(self.genuine[side]))
            self.genuine[side].append(Genuine(body, sync, message))

    def send(self, side: int, message: Message) -> None:
        if self.conns[side].state is State.ESTABLISHED:
            self.conns[side].send(message)
            self.sent[side].append(message)
            self.pull(side, message)

    def predict(self, dst: int, frames: list[bytes]) -> Outcome:
        """What `dst` must do with these whole frames, fed after its last whole frame."""
        src = 1 - dst
        out = Outcome(consumed=self.consumed[dst], in_sync=self.in_sync[dst])
        for n, body in enumerate(frames):
            c = out.consumed
            genuine = self.genuine[src][c] if c < len(self.genuine[src]) else None
            is_genuine = out.in_sync and genuine is not None and genuine.body == body
            if dst == 1 and c == 0:  # message 1 is a bare, unauthenticated key
                if len(body) != MESSAGE_1_SIZE:
                    out.must_fail = True
                    return out
                if not is_genuine:  # another key: answered, or refused (low order)
                    out.may_fail, out.in_sync = True, False
                out.consumed += 1
                continue
            if not is_genuine:  # forged, replayed, reordered, reflected, foreign, late
                out.must_fail = True
                return out
            assert genuine is not None
            if genuine.producer_in_sync is None:
                out.unknown = True
                return out
            if not genuine.producer_in_sync or (self.impostor and dst == 0):
                out.must_fail = True  # the peer was fooled earlier, or is an impostor
                return out
            if genuine.refused or (genuine.message is None and self.evil[src]):
                out.must_fail = True  # authentic, but a bad payload: no hello, a hello late
                return out
            if genuine.message is not None:
                out.events.append(genuine.message)
            else:  # message 2 for the initiator, 3 for the responder: the last one
                out.events.append(Established(self.pubs[src], self.hellos[src]))
            out.consumed += 1
            if isinstance(genuine.message, Bye):  # nothing may follow a bye
                out.may_fail = out.may_fail or n < len(frames) - 1
                return out
        return out

    def deliver(self, dst: int, data: bytes, plan: bytes, frames: list[bytes] | None) -> None:
        """Feed `data` to `dst` in pieces; `frames` lists its whole frames if it is well
        framed (None for raw bytes: the model then stops predicting for `dst`)."""
        conn = self.conns[dst]
        if conn.state not in LIVE or not data:
            return
        predicted = None
        if frames is not None and self.tracked[dst]:
            predicted = self.predict(dst, frames)
            if predicted.unknown:
                predicted = None
        if predicted is None:
            self.tracked[dst] = False
        events: list[Event] = []
        failed = False
        for piece in chunks(data, plan):
            if conn.state not in LIVE:
                break  # a bye closed it: the shell reads no further
            try:
                events += conn.receive_data(piece)
            except RemoteProtocolError as exc:
                assert conn.state is State.ERROR
                if self.impostor and dst == 0 and isinstance(exc, UnexpectedPeerKey):
                    assert exc.remote_static == M_PUB  # noqa: PT017 (an oracle, not a test)
                failed = True
                break
        self.check_events(dst, events)
        if predicted is not None:
            if predicted.must_fail:
                assert failed, f"side {dst} accepted a forged or misplaced frame"
            elif not failed or not predicted.may_fail:
                assert not failed, f"side {dst} refused its peer's genuine frame"
                assert events == predicted.events
                self.consumed[dst], self.in_sync[dst] = predicted.consumed, predicted.in_sync
        self.pull(dst)

    def check_events(self, dst: int, events: list[Event]) -> None:
        """Whatever a side reports is genuine, whether or not the model is tracking it."""
        src = 1 - dst
        for event in events:
            if isinstance(event, Established):
                assert self.established[dst] is None
                assert not (self.impostor and dst == 0), "initiator accepted an impostor"
                assert event == Established(self.pubs[src], self.hellos[src])
                assert self.conns[dst].remote_static == self.pubs[src]
                self.established[dst] = event
            else:
                assert self.established[dst] is not None
                k = len(self.received[dst])
                # Never corrupted, replayed, skipped or reordered plaintext: the next
                # message the peer actually sent.
                assert k < len(self.sent[src])
                assert event == self.sent[src][k]
                self.received[dst].append(event)
        if all(self.established):
            assert self.conns[0].handshake_hash == self.conns[1].handshake_hash

    # ---- what the adversary can do to direction d (side d's frames to side 1 - d) ----

    def head(self, d: int) -> bytes | None:
        return self.genuine[d][self.queue[d][0]].body if self.queue[d] else None

    def act(self, kind: str, d: int, n: int, blob: bytes) -> None:
        """One move; `blob` is junk where one is needed, and the chunking (`chunks`) of
        whatever is delivered."""
        plan = blob
        dst, queue = 1 - d, self.queue[d]
        body = self.head(d)
        if kind == "deliver":  # faithfully, in arbitrary pieces
            if body is not None:
                queue.popleft()
                self.deliver(dst, encode_frame(body), plan, [body])
        elif kind == "merge":  # everything in flight, in arbitrary pieces
            bodies = [self.genuine[d][i].body for i in queue]
            queue.clear()
            self.deliver(dst, b"".join(map(encode_frame, bodies)), plan, bodies)
        elif kind == "send":
            self.send(d, POOL[n % len(POOL)])
        elif kind == "drop":
            if queue:
                queue.popleft()
                self.tampered = True
        elif kind == "duplicate":
            if body is not None:
                queue.insert(1, queue[0])
                self.tampered = True
        elif kind == "swap":
            if len(queue) >= 2:
                queue[0], queue[1] = queue[1], queue[0]
                self.tampered = True
        elif kind in ("flip", "truncate", "extend", "replace", "low-order"):
            if body is None:
                body = blob or b"\x00"
            else:
                queue.popleft()
            if kind == "flip":
                wire = bytearray(encode_frame(body))
                wire[n % len(wire)] ^= 1 << (n // len(wire) % 8)
                if n % len(wire) < HEADER_SIZE:  # a corrupt length: raw bytes now
                    self.deliver(dst, bytes(wire), plan, None)
                    self.tampered = True
                    return
                mutated = bytes(wire[HEADER_SIZE:])
            elif kind == "truncate":
                mutated = body[: n % len(body)]
                if not mutated or n & 1:  # the header kept: the body never ends
                    self.deliver(dst, encode_frame(body)[: HEADER_SIZE + len(mutated)], [], None)
                    self.tampered = True
                    return
            elif kind == "extend":
                mutated = (body + (blob or b"\x00"))[:MAX_FRAME_SIZE]
            elif kind == "low-order":  # in place of the ephemeral key that opens 1 and 2
                mutated = LOW_ORDER[n % len(LOW_ORDER)] + body[32:]
            else:
                mutated = (blob or b"\x00")[:MAX_FRAME_SIZE]
            self.deliver(dst, encode_frame(mutated), plan, [mutated])
            self.tampered = True
        elif kind == "inject":  # raw bytes, not necessarily a frame
            if blob:
                self.deliver(dst, blob, plan, None)
                self.tampered = True
        elif kind == "replay":  # an earlier genuine frame of this direction
            if self.genuine[d]:
                old = self.genuine[d][n % len(self.genuine[d])].body
                self.deliver(dst, encode_frame(old), plan, [old])
                self.tampered = True
        elif kind == "reflect":  # the frame goes back to its own writer
            if body is not None:
                queue.popleft()
                self.deliver(d, encode_frame(body), plan, [body])
                self.tampered = True
        elif kind == "malicious":  # the peer itself seals a payload of its own choosing
            self.seal_as_peer(d, n, blob)
        elif kind == "foreign":  # a frame of another session between the same identities
            other = FOREIGN[d][n % len(FOREIGN[d])]
            self.deliver(dst, encode_frame(other), plan, [other])
            self.tampered = True
        else:
            raise AssertionError(kind)

    def seal_as_peer(self, side: int, n: int, blob: bytes) -> None:
        """Side `side` is malicious but has its keys: it encrypts what it likes.  The
        receiver must deliver exactly the message that decodes, or refuse it."""
        conn = self.conns[side]
        if conn.state is not State.ESTABLISHED or not self.tracked[side]:
            return
        choice, n = n % 4, n // 4
        if choice == 0:
            payload = blob  # anything at all
        elif choice == 1:
            payload = codec.encode(HELLOS[n % len(HELLOS)])  # a hello after the handshake
        elif choice == 2:
            payload = codec.encode(POOL[n % len(POOL)]) + blob[:1]  # maybe a trailing byte
        else:
            payload = pack_loose(to_wire(POOL[n % len(POOL)]), random.Random(n), False)
        try:
            message: Message | None = codec.decode(payload)
        except RemoteProtocolError:
            message = None
        refused = message is None or isinstance(message, Hello)
        body = conn._send_cipher.encrypt_with_ad(b"", payload)  # type: ignore[union-attr]
        self.queue[side].append(len(self.genuine[side]))
        self.genuine[side].append(Genuine(body, self.in_sync[side], message, refused))
        if not refused:
            assert message is not None
            self.sent[side].append(message)
        self.tampered = True

    def drain(self) -> None:
        """Deliver whatever is in flight, both ways, until nothing moves."""
        for _ in range(8):
            moved = False
            for d in (0, 1):
                if self.queue[d]:
                    moved = True
                    self.act("merge", d, 0, b"")
            if not moved:
                return


FAITHFUL = ["deliver"] * 5 + ["merge"] * 2 + ["send"] * 6
ATTACKS = ["drop", "duplicate", "swap", "flip", "flip", "truncate", "extend", "replace"]
ATTACKS += ["low-order", "malicious"]
ATTACKS += ["inject", "replay", "reflect", "foreign"]
ACTION = st.tuples(
    st.sampled_from(FAITHFUL + ATTACKS),
    st.integers(0, 1),  # the direction
    st.integers(0, 2**20),  # which byte, bit, frame or message
    st.binary(max_size=80),  # junk, and the chunking of what is delivered
)


@FUZZ
@given(
    st.lists(ACTION, max_size=16),
    st.integers(0, 16),
    st.booleans(),
    st.sampled_from(HELLOS),
    st.sampled_from(HELLOS),
    st.sampled_from([False, False, False, True]),  # an impostor in one example of four
    st.booleans(),
    st.tuples(EVIL, EVIL),
)
@example([("replace", 0, 0, bytes(32))], 0, False, HELLOS[0], HELLOS[1], False, False, ("", ""))
@example([], 0, False, HELLOS[0], HELLOS[1], True, True, ("", ""))
@example([], 0, False, HELLOS[0], HELLOS[1], False, False, ("version", ""))
@example([], 0, False, HELLOS[0], HELLOS[1], False, False, ("", "not-hello"))
@example([("malicious", 0, 1, b"")], 0, True, HELLOS[0], HELLOS[1], False, False, ("", ""))
def test_handshake_and_transport_through_an_adversary(
    actions: list[tuple[str, int, int, bytes]],
    attack_from: int,
    handshake_first: bool,
    hello_i: Hello,
    hello_r: Hello,
    impostor: bool,
    vet_responder: bool,
    evil: tuple[str, str],
) -> None:
    hellos = (hello_i, hello_r)
    run_link(actions, attack_from, handshake_first, hellos, impostor, vet_responder, evil)


def run_link(
    actions: list[tuple[str, int, int, bytes]],
    attack_from: int,
    handshake_first: bool,
    hellos: tuple[Hello, Hello],
    impostor: bool,
    vet_responder: bool,
    evil: tuple[str, str] = ("", ""),
) -> Link:
    """The link property (also driven by tests/fuzz/fuzz_handshake.py)."""
    link = Link(hellos, impostor, vet_responder, evil)
    if handshake_first:  # half the examples attack established links
        for d in (0, 1, 0):
            link.act("deliver", d, 0, b"")
    for n, (kind, d, k, blob) in enumerate(actions):
        # The adversary lets the first actions through faithfully (often the whole
        # handshake and some messages): that is how attacks on established links happen.
        link.act("deliver" if n < attack_from and kind in ATTACKS else kind, d, k, blob)
    link.drain()
    for side in (0, 1):  # both still talk once the handshake is done, then drain again
        link.send(side, POOL[side])
    link.drain()

    i, r = link.conns
    if impostor:
        assert link.established[0] is None
        assert i.state is not State.ESTABLISHED
        assert i.remote_static is None
    for side in (0, 1):
        if evil[1 - side]:  # a bad handshake payload never establishes its receiver
            assert link.established[side] is None
    if not link.tampered and not impostor and not any(evil):
        # An undisturbed link, however it was chunked, completes and delivers everything.
        assert link.established[0] is not None
        assert link.established[1] is not None
        for side in (0, 1):
            # All the peer sent, unless this side said bye first and stopped reading.
            if Bye("quit") not in link.sent[side]:
                assert link.received[side] == link.sent[1 - side]
        assert i.state in (State.ESTABLISHED, State.CLOSED)
        assert r.state in (State.ESTABLISHED, State.CLOSED)
    return link


def test_the_models_see_their_targets() -> None:
    """The fuzzed link gets through the handshake and transport in the model's eyes."""
    link = Link((HELLOS[0], HELLOS[1]), impostor=False, vet_responder=True)
    for kind, d in [("deliver", 0), ("deliver", 1), ("send", 0), ("merge", 0), ("send", 1)]:
        link.act(kind, d, 0, b"")
    link.drain()
    assert link.tracked == [True, True]
    assert link.consumed == [2, 3]
    assert link.received == [[POOL[0]], [POOL[0]]]
    assert link.established[0] == Established(R_PUB, HELLOS[1])
    frames, error_at, left = reference_parse(encode_frame(b"ab") + b"\x00", [5], [2])
    assert (frames, error_at, left) == ([b"ab"], None, 1)
    assert decode_or_rpe(pack_loose(to_wire(POOL[5]), random.Random(1), False)) == POOL[5]
