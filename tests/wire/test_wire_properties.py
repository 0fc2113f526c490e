"""Hypothesis properties of the wire core: whatever a peer sends either parses or raises
`RemoteProtocolError` — never another exception — and valid messages round-trip.

`receive_data` and `decode` are synchronous, so returning at all is the proof of "no
hang"; input sizes are bounded to keep each example cheap.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Mapping
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from p2pim.wire import codec, noise
from p2pim.wire.connection import MESSAGE_1_SIZE, Connection, Established, State
from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError
from p2pim.wire.framing import FrameDecoder, encode_frame
from p2pim.wire.messages import (
    MAX_TEXT_BYTES,
    MAX_TIMESTAMP_MS,
    MESSAGE_ID_SIZE,
    MESSAGE_TYPES,
    Bye,
    Hello,
    Message,
    Text,
)
from tests.support.wire import schema

MAIN = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HELLO_I = Hello(version=1, nick="alice")
HELLO_R = Hello(version=1, nick="bob")


def decode_or_rpe(payload: bytes) -> Message | None:
    """The property itself: a Message or RemoteProtocolError; anything else propagates."""
    try:
        message = codec.decode(payload)
    except RemoteProtocolError:
        return None
    assert isinstance(message, MESSAGE_TYPES)
    # Whatever was accepted is a valid message: it re-encodes and decodes to itself.
    assert codec.decode(codec.encode(message)) == message
    return message


# --------------------------------------------------------------------------------------
# Codec: arbitrary bytes and arbitrary msgpack structures
# --------------------------------------------------------------------------------------


@MAIN
@given(st.binary(max_size=4096))
@example(b"")
@example(b"\xc1")
@example(b"\x91" * 5000 + b"\xc0")
@example(codec.encode(Bye(reason="quit")))
def test_decode_arbitrary_bytes(payload: bytes) -> None:
    decode_or_rpe(payload)


@SMALL
@given(st.binary(max_size=64), st.integers(min_value=1, max_value=4096), st.binary(max_size=64))
@example(codec.encode(Bye(reason="quit")), 1, b"")
def test_decode_oversized_bytes(head: bytes, over: int, tail: bytes) -> None:
    # Whatever the content (even a valid message up front), size alone decides.
    pad = codec.MAX_PAYLOAD_SIZE + over - len(head) - len(tail)
    payload = head + bytes(pad) + tail
    assert len(payload) > codec.MAX_PAYLOAD_SIZE
    with pytest.raises(RemoteProtocolError):
        codec.decode(payload)


INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # all msgpack can carry
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    st.sampled_from([0, -1, 1, 2**16, 2**16 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24),
    st.binary(max_size=24),
)
KEYS = st.one_of(st.text(max_size=10), st.binary(max_size=10), INT64, st.sampled_from(["t"]))
ANY = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
    ),
    max_leaves=8,
)


def utf8_at_most(limit: int, max_chars: int) -> st.SearchStrategy[str]:
    return st.text(max_size=max_chars).filter(lambda s: len(s.encode("utf-8")) <= limit)


# Strategies derived from the messages' own schema metadata (as the codec derives its
# checks), so message types and fields added later are fuzzed without editing this file.


def near_bounds(kind: object, meta: Mapping[str, Any]) -> st.SearchStrategy[object]:
    """Wire values of this field's type around its bounds: valid or just outside."""
    if kind is str:
        limit = meta["max"]
        strategies = [st.text(max_size=min(limit + 4, 80)), st.just("a" * (limit + 1))]
        if "choices" in meta:
            strategies.append(st.sampled_from(meta["choices"]))
        return st.one_of(strategies)
    if kind is bytes:
        if "size" in meta:
            return st.binary(min_size=meta["size"] - 1, max_size=meta["size"] + 1)
        return st.binary(max_size=meta["max"] + 2)
    if kind is int:
        low, high = meta.get("min", 0), meta["max"]
        return st.one_of(
            st.integers(low - 2, low + 2), st.integers(high - 2, high + 2), INT64
        ).filter(lambda v: -(2**63) <= v < 2**64)
    if kind is bool:
        return st.booleans()
    if typing.get_origin(kind) is tuple and typing.get_args(kind)[0] is bytes:
        size = meta["item_size"]
        return st.lists(st.binary(min_size=size - 1, max_size=size + 1), max_size=4)
    if typing.get_origin(kind) is tuple:
        record = typing.get_args(kind)[0]
        maps = st.fixed_dictionaries(
            {name: near_bounds(k, m) for name, k, m in schema(record)},
            optional={"zz_extra": SCALARS},
        )
        return st.lists(st.one_of(maps, SCALARS), max_size=4)
    raise AssertionError(f"this test does not know field type {kind!r}")


def valid_values(kind: object, meta: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    if kind is str:
        if "choices" in meta:
            return st.sampled_from(meta["choices"])
        return utf8_at_most(meta["max"], min(meta["max"], 2000))
    if kind is bytes:
        if "size" in meta:
            return st.binary(min_size=meta["size"], max_size=meta["size"])
        return st.binary(max_size=meta["max"])
    if kind is int:
        return st.integers(meta.get("min", 0), meta["max"])
    if kind is bool:
        return st.booleans()
    if typing.get_origin(kind) is tuple and typing.get_args(kind)[0] is bytes:
        size = meta["item_size"]
        ids = st.binary(min_size=size, max_size=size)
        return st.lists(ids, max_size=min(meta["max"], 4)).map(tuple)
    if typing.get_origin(kind) is tuple:
        record = typing.get_args(kind)[0]
        return st.lists(valid_instances(record), max_size=min(meta["max"], 4)).map(tuple)
    raise AssertionError(f"this test does not know field type {kind!r}")


def valid_instances(cls: type) -> st.SearchStrategy[Any]:
    return st.builds(cls, **{name: valid_values(k, m) for name, k, m in schema(cls)})


VALID_MESSAGES = st.one_of([valid_instances(cls) for cls in MESSAGE_TYPES])


@st.composite
def typed_maps(draw: st.DrawFn) -> dict[object, object]:
    """A map whose "t" names a real type, with its fields mostly present and near-valid."""
    cls = draw(st.sampled_from(MESSAGE_TYPES))
    obj: dict[object, object] = {"t": draw(st.sampled_from([cls.TYPE, cls.TYPE.upper()]))}
    for name, kind, meta in schema(cls):
        if draw(st.integers(0, 9)):  # usually present
            obj[name] = draw(st.one_of(near_bounds(kind, meta), SCALARS))
    obj.update(draw(st.dictionaries(KEYS, SCALARS, max_size=2)))
    return obj


@MAIN
@given(ANY, st.booleans())
@example({"t": "bye", "reason": "quit"}, True)
@example({"t": "text", "id": b"x" * 16, "sent_at": 0, "body": "", "x": None}, True)
@example({"t": "hello", "version": 1, "nick": "a"}, False)
@example({b"t": "bye", b"reason": "quit"}, True)
def test_decode_structured(obj: object, bin_type: bool) -> None:
    decode_or_rpe(msgpack.packb(obj, use_bin_type=bin_type))


@settings(MAIN, max_examples=500)
@given(typed_maps())
def test_decode_typed_maps_accept_only_exact_schema(obj: dict[object, object]) -> None:
    payload = msgpack.packb(obj, use_bin_type=True)
    message = decode_or_rpe(payload)
    if message is not None:
        # Accepted: exactly the schema's keys and every value as sent, so the canonical
        # encoding of the message is the very map that arrived.
        assert msgpack.unpackb(codec.encode(message), raw=False) == msgpack.unpackb(
            payload, raw=False
        )
        assert set(obj) == {"t", *(f.name for f in dataclasses.fields(message))}


@settings(SMALL, max_examples=150)
@given(st.one_of(st.lists(ANY, max_size=3), st.dictionaries(KEYS, ANY, max_size=3)), ANY)
def test_decode_unhashable_type_tag(tag: object, rest: object) -> None:
    # Regression: codec.py once raised TypeError looking up an unhashable "t" value.
    with pytest.raises(RemoteProtocolError):
        codec.decode(msgpack.packb({"t": tag, "reason": rest}, use_bin_type=True))


# --------------------------------------------------------------------------------------
# Codec: valid messages round-trip
# --------------------------------------------------------------------------------------


TEXTS = st.builds(
    Text,
    id=st.binary(min_size=MESSAGE_ID_SIZE, max_size=MESSAGE_ID_SIZE),
    sent_at=st.integers(min_value=0, max_value=MAX_TIMESTAMP_MS),
    body=st.one_of(
        utf8_at_most(MAX_TEXT_BYTES, 2000),
        # Near the limit, with multi-byte characters in the mix.
        st.tuples(st.integers(0, 2), st.text(max_size=8))
        .map(lambda t: "é" * (t[0] + MAX_TEXT_BYTES // 2 - 8) + t[1])
        .filter(lambda s: len(s.encode("utf-8")) <= MAX_TEXT_BYTES),
    ),
)


@MAIN
@given(TEXTS)
def test_text_round_trip(message: Text) -> None:
    payload = codec.encode(message)
    assert len(payload) <= codec.MAX_PAYLOAD_SIZE
    assert codec.decode(payload) == message


@SMALL
@given(VALID_MESSAGES)
def test_every_type_round_trips(message: Message) -> None:
    assert codec.decode(codec.encode(message)) == message


@SMALL
@given(
    st.binary(min_size=MESSAGE_ID_SIZE, max_size=MESSAGE_ID_SIZE),
    st.text(min_size=1, max_size=40),
    st.integers(min_value=1, max_value=4),
)
def test_text_over_limit_is_local_error(msg_id: bytes, unit: str, extra: int) -> None:
    body = unit * (MAX_TEXT_BYTES // len(unit.encode("utf-8")) + extra)
    assert len(body.encode("utf-8")) > MAX_TEXT_BYTES
    with pytest.raises(LocalProtocolError):
        codec.encode(Text(id=msg_id, sent_at=0, body=body))


# --------------------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------------------


@SMALL
@given(st.lists(st.binary(min_size=1, max_size=3000), max_size=8), st.data())
def test_frames_round_trip_any_split(bodies: list[bytes], data: st.DataObject) -> None:
    wire = b"".join(encode_frame(b) for b in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    decoder = FrameDecoder()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        decoder.feed(wire[start:end])
        while (frame := decoder.next_frame()) is not None:
            got.append(frame)
    assert got == bodies
    assert decoder.buffered == 0


@settings(MAIN, max_examples=1000)
@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=65535))
def test_frame_decoder_arbitrary_bytes(data: bytes, limit: int) -> None:
    decoder = FrameDecoder(max_frame_size=limit)
    decoder.feed(data)
    try:
        while (frame := decoder.next_frame()) is not None:
            assert 1 <= len(frame) <= limit
    except RemoteProtocolError:
        return
    assert decoder.buffered < 2 + limit  # never more than one frame's worth waits


# --------------------------------------------------------------------------------------
# Connections fed arbitrary bytes
# --------------------------------------------------------------------------------------

RESPONDER_KEY = noise.generate_keypair()[0]
MSG1_HEADER = MESSAGE_1_SIZE.to_bytes(2, "big")

# Arbitrary bytes; or a well-formed message 1 (a random key) followed by arbitrary bytes,
# possibly framed, so the fuzzing also reaches message 3 parsing.
HANDSHAKE_INPUT = st.one_of(
    st.binary(max_size=4096),
    st.tuples(
        st.binary(min_size=MESSAGE_1_SIZE, max_size=MESSAGE_1_SIZE),
        st.one_of(
            st.binary(max_size=1200),
            st.binary(min_size=1, max_size=1100).map(lambda b: len(b).to_bytes(2, "big") + b),
        ),
    ).map(lambda t: MSG1_HEADER + t[0] + t[1]),
)


def feed(conn: Connection, data: bytes, cuts: list[int]) -> list[object]:
    """Feed `data` split at `cuts`; only RemoteProtocolError may escape."""
    events: list[object] = []
    bounds = sorted({0, *cuts, len(data)})
    for start, end in itertools.pairwise(bounds):
        events.extend(conn.receive_data(data[start:end]))
    return events


@MAIN
@given(HANDSHAKE_INPUT, st.data())
@example(MSG1_HEADER + bytes(MESSAGE_1_SIZE), None)  # low-order ephemeral key
@example(b"\x00\x00", None)
@example(b"\xff\xff", None)
def test_responder_fed_arbitrary_bytes(data: bytes, split: st.DataObject | None) -> None:
    cuts: list[int] = []
    if split is not None:
        style = split.draw(st.sampled_from(["whole", "bytewise", "random"]))
        if style == "bytewise":
            cuts = list(range(len(data)))
        elif style == "random":
            cuts = split.draw(st.lists(st.integers(0, len(data)), max_size=30))
    conn = Connection(initiator=False, static_private=RESPONDER_KEY, hello=HELLO_R)
    try:
        events = feed(conn, data, cuts)
    except RemoteProtocolError:
        assert conn.state is State.ERROR
        assert conn.remote_static is None
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"\x00")
    else:
        # Without the peer's keys nothing can complete the handshake.
        assert events == []
        assert conn.state is State.HANDSHAKE


@settings(MAIN, max_examples=1000)
@given(HANDSHAKE_INPUT)
def test_initiator_fed_arbitrary_bytes(data: bytes) -> None:
    conn = Connection(initiator=True, static_private=RESPONDER_KEY, hello=HELLO_I)
    msg1 = conn.data_to_send()
    try:
        events = conn.receive_data(data)
    except RemoteProtocolError:
        assert conn.state is State.ERROR
        assert conn.data_to_send() == b""
    else:
        assert events == []
        assert conn.state is State.HANDSHAKE
        assert conn.data_to_send() == b""
    assert len(msg1) == 2 + MESSAGE_1_SIZE


def established_pair() -> tuple[Connection, Connection]:
    i_key, _ = noise.generate_keypair()
    r_key, _ = noise.generate_keypair()
    i = Connection(initiator=True, static_private=i_key, hello=HELLO_I)
    r = Connection(initiator=False, static_private=r_key, hello=HELLO_R)
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    [established] = r.receive_data(i.data_to_send())
    assert isinstance(established, Established)
    assert i.state is State.ESTABLISHED
    assert r.state is State.ESTABLISHED
    return i, r


ESTABLISHED_INPUT = st.one_of(
    st.binary(max_size=4096),
    # Well-framed junk reaches the AEAD instead of failing in the framing.
    st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=6).map(
        lambda bodies: b"".join(encode_frame(b) for b in bodies)
    ),
)


@MAIN
@given(ESTABLISHED_INPUT, st.lists(st.integers(0, 4096), max_size=20), st.booleans())
def test_established_fed_arbitrary_bytes(data: bytes, cuts: list[int], to_initiator: bool) -> None:
    i, r = established_pair()
    conn = i if to_initiator else r
    try:
        events = feed(conn, data, [c for c in cuts if c <= len(data)])
    except RemoteProtocolError:
        assert conn.state is State.ERROR
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"\x00")
    else:
        # Forging an AEAD frame is out of reach: at most a partial frame is waiting.
        assert events == []
        assert conn.state is State.ESTABLISHED


@settings(SMALL, max_examples=200)
@given(st.lists(TEXTS, min_size=1, max_size=4), st.data())
def test_texts_through_a_pair_arrive_equal(messages: list[Text], data: st.DataObject) -> None:
    i, r = established_pair()
    for m in messages:
        i.send(m)
    wire = i.data_to_send()
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=15))
    assert feed(r, wire, cuts) == messages
