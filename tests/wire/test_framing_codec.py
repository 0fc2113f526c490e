"""Sans-IO tests of the frame layer (`p2pim.wire.framing`) and the strict msgpack codec
(`p2pim.wire.codec`).  No sockets, no time: bytes in, frames/messages or errors out."""

from __future__ import annotations

import dataclasses
import random
import typing
from collections.abc import Mapping
from typing import Any

import msgpack
import pytest

from p2pim.wire import codec
from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError
from p2pim.wire.framing import HEADER_SIZE, MAX_FRAME_SIZE, FrameDecoder, encode_frame
from p2pim.wire.messages import (
    MAX_NICK_BYTES,
    MAX_TEXT_BYTES,
    MAX_TIMESTAMP_MS,
    MESSAGE_ID_SIZE,
    MESSAGE_TYPES,
    Bye,
    Hello,
    Message,
    Text,
)

MSG_ID = bytes(range(MESSAGE_ID_SIZE))

# --------------------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------------------


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


@pytest.mark.parametrize("size", [1, 2, 255, 256, 1024, 65534, MAX_FRAME_SIZE])
def test_frame_round_trip(size: int) -> None:
    body = bytes(random.Random(size).randrange(256) for _ in range(size))
    wire = encode_frame(body)
    assert wire[:HEADER_SIZE] == size.to_bytes(2, "big")
    assert len(wire) == HEADER_SIZE + size
    decoder = FrameDecoder()
    decoder.feed(wire)
    assert decoder.next_frame() == body
    assert decoder.next_frame() is None
    assert decoder.buffered == 0


def test_frame_header_is_big_endian() -> None:
    assert encode_frame(b"x" * 0x0102)[:2] == b"\x01\x02"
    assert encode_frame(b"x") == b"\x00\x01x"


def test_several_frames_in_one_feed() -> None:
    bodies = [b"a", b"bc" * 300, b"\x00" * 7, b"z" * 1000]
    decoder = FrameDecoder()
    decoder.feed(b"".join(encode_frame(b) for b in bodies))
    assert drain(decoder) == bodies
    assert decoder.buffered == 0


def test_frames_fed_byte_by_byte() -> None:
    bodies = [b"hello", b"\xff" * 258, b"!"]
    wire = b"".join(encode_frame(b) for b in bodies)
    decoder = FrameDecoder()
    got: list[bytes] = []
    for i in range(len(wire)):
        decoder.feed(wire[i : i + 1])
        frame = decoder.next_frame()
        if frame is not None:
            got.append(frame)
            # A frame is released exactly when its last byte arrives.
            assert i + 1 == sum(HEADER_SIZE + len(b) for b in got)
        assert decoder.next_frame() is None
    assert got == bodies
    assert decoder.buffered == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 42])
def test_frames_fed_in_random_chunks(seed: int) -> None:
    rng = random.Random(seed)
    bodies = [rng.randbytes(rng.randint(1, 3000)) for _ in range(20)]
    wire = b"".join(encode_frame(b) for b in bodies)
    decoder = FrameDecoder()
    got: list[bytes] = []
    pos = 0
    while pos < len(wire):
        step = rng.randint(1, 700)
        decoder.feed(wire[pos : pos + step])
        pos += step
        got.extend(drain(decoder))
    assert got == bodies


def test_partial_frame_waits() -> None:
    decoder = FrameDecoder()
    assert decoder.next_frame() is None
    decoder.feed(b"\x00")
    assert decoder.next_frame() is None
    decoder.feed(b"\x03ab")
    assert decoder.next_frame() is None
    assert decoder.buffered == 4
    decoder.feed(b"c\x00")
    assert decoder.next_frame() == b"abc"
    assert decoder.buffered == 1


@pytest.mark.parametrize(("limit", "claimed"), [(1024, 1025), (100, 101), (100, 0xFFFF), (1, 2)])
def test_oversized_header_rejected_from_header_alone(limit: int, claimed: int) -> None:
    decoder = FrameDecoder(max_frame_size=limit)
    decoder.feed(claimed.to_bytes(2, "big")[:1])
    assert decoder.next_frame() is None  # one byte is not yet a header
    decoder.feed(claimed.to_bytes(2, "big")[1:])
    # Only the 2 header bytes were fed: the error cannot be waiting for a body.
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()


def test_header_at_limit_waits_for_body() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.feed((100).to_bytes(2, "big"))
    assert decoder.next_frame() is None
    decoder.feed(b"q" * 100)
    assert decoder.next_frame() == b"q" * 100


def test_limit_can_be_raised_later() -> None:
    decoder = FrameDecoder(max_frame_size=10)
    decoder.max_frame_size = 2000
    decoder.feed(encode_frame(b"y" * 2000))
    assert decoder.next_frame() == b"y" * 2000


def test_zero_length_frame_rejected() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00")
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()


def test_zero_length_frame_after_a_good_one_rejected() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"ok") + b"\x00\x00")
    assert decoder.next_frame() == b"ok"
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()


@pytest.mark.parametrize("size", [0, MAX_FRAME_SIZE + 1, 100_000])
def test_encode_frame_refuses_bad_sizes(size: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(b"x" * size)


# --------------------------------------------------------------------------------------
# Codec: round trips
# --------------------------------------------------------------------------------------

VALID_MESSAGES = [
    Hello(version=1, nick="alice"),
    Hello(version=1, nick=""),
    Hello(version=2**16, nick="é" * (MAX_NICK_BYTES // 2)),
    Hello(version=1, nick="😀" * (MAX_NICK_BYTES // 4)),
    Text(id=MSG_ID, sent_at=1_700_000_000_000, body="hi there"),
    Text(id=bytes(16), sent_at=0, body=""),
    Text(id=b"\xff" * 16, sent_at=MAX_TIMESTAMP_MS, body="x" * MAX_TEXT_BYTES),
    Text(id=MSG_ID, sent_at=5, body="€" * (MAX_TEXT_BYTES // 3) + "é"),  # 32 KiB exactly
    Text(id=MSG_ID, sent_at=5, body="line1\nline2\x00\t🙂"),
    Bye(reason="quit"),
    Bye(reason="duplicate"),
    Bye(reason=""),
    Bye(reason="r" * 64),
]


@pytest.mark.parametrize("message", VALID_MESSAGES, ids=repr)
def test_codec_round_trip(message: Hello | Text | Bye) -> None:
    payload = codec.encode(message)
    assert len(payload) <= codec.MAX_PAYLOAD_SIZE
    decoded = codec.decode(payload)
    assert type(decoded) is type(message)
    assert decoded == message


def test_hand_picked_cases_cover_the_original_types() -> None:
    assert {type(m) for m in VALID_MESSAGES} == {Hello, Text, Bye}


# Every message type, built from its schema metadata at both ends of every bound, so a
# type added to MESSAGE_TYPES is covered without editing this file.


def boundary_value(kind: object, meta: Mapping[str, Any], high: bool) -> object:
    if kind is str:
        if "choices" in meta:
            return meta["choices"][-1 if high else 0]
        limit = meta["max"]
        return "é" * (limit // 2) + "a" * (limit % 2) if high else ""  # exactly `max` bytes
    if kind is bytes:
        if "size" in meta:
            return (b"\xff" if high else b"\x00") * meta["size"]
        return b"\xff" * meta["max"] if high else b""
    if kind is int:
        return meta["max"] if high else meta.get("min", 0)
    if kind is bool:
        return high
    if typing.get_origin(kind) is tuple and typing.get_args(kind)[0] is bytes:
        return (b"\xff" * meta["item_size"],) * meta["max"] if high else ()
    if typing.get_origin(kind) is tuple:
        record = typing.get_args(kind)[0]
        return tuple(boundary_instance(record, high) for _ in range(meta["max"])) if high else ()
    raise AssertionError(f"this test does not know field type {kind!r}")


def boundary_instance(cls: type, high: bool) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(
        **{f.name: boundary_value(hints[f.name], f.metadata, high) for f in dataclasses.fields(cls)}
    )


@pytest.mark.parametrize("high", [False, True], ids=["low", "high"])
@pytest.mark.parametrize("cls", MESSAGE_TYPES, ids=lambda c: c.TYPE)
def test_every_type_round_trips_at_its_bounds(cls: type[Message], high: bool) -> None:
    message = boundary_instance(cls, high)
    assert codec.decode(codec.encode(message)) == message


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


FIELDS = [(cls, name) for cls in MESSAGE_TYPES for name in field_names(cls)]


@pytest.mark.parametrize(("cls", "name"), FIELDS, ids=[f"{c.TYPE}.{n}" for c, n in FIELDS])
def test_every_field_is_required_and_typed(cls: type[Message], name: str) -> None:
    good = msgpack.unpackb(codec.encode(boundary_instance(cls, True)), raw=False)
    assert codec.decode(pack(good)) == boundary_instance(cls, True)
    with pytest.raises(RemoteProtocolError):
        codec.decode(pack(without(good, name)))
    for wrong in (None, 1.5, [good[name]], {"v": 1}):
        with pytest.raises(RemoteProtocolError):
            codec.decode(pack({**good, name: wrong}))


@pytest.mark.parametrize("cls", MESSAGE_TYPES, ids=lambda c: c.TYPE)
def test_every_type_rejects_an_extra_key(cls: type[Message]) -> None:
    good = msgpack.unpackb(codec.encode(boundary_instance(cls, False)), raw=False)
    with pytest.raises(RemoteProtocolError):
        codec.decode(pack({**good, "zz_extra": 0}))


def test_encoding_is_a_msgpack_map_with_type_tag() -> None:
    obj = msgpack.unpackb(codec.encode(Text(id=MSG_ID, sent_at=7, body="b")), raw=False)
    assert obj == {"t": "text", "id": MSG_ID, "sent_at": 7, "body": "b", "lamport": 0}


# --------------------------------------------------------------------------------------
# Codec: strict decoding.  Each payload is built by hand with msgpack.
# --------------------------------------------------------------------------------------


BASE_HELLO = Hello(version=1, nick="alice")


def hello_map(**over: object) -> dict[object, object]:
    # From the encoder, so optional Hello fields added later are present too.
    return {**msgpack.unpackb(codec.encode(BASE_HELLO), raw=False), **over}


def text_map(**over: object) -> dict[object, object]:
    return {"t": "text", "id": MSG_ID, "sent_at": 123, "body": "hi", "lamport": 0, **over}


def bye_map(**over: object) -> dict[object, object]:
    return {"t": "bye", "reason": "quit", **over}


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def without(d: dict[object, object], key: str) -> dict[object, object]:
    return {k: v for k, v in d.items() if k != key}


def test_hand_built_maps_are_valid() -> None:
    # Positive control: the rejects below differ from these in exactly one respect.
    assert codec.decode(pack(hello_map())) == BASE_HELLO
    assert codec.decode(pack(text_map())) == Text(id=MSG_ID, sent_at=123, body="hi")
    assert codec.decode(pack(bye_map())) == Bye(reason="quit")


BAD_OBJECTS = {
    # type tag
    "unknown type": {"t": "nope", "reason": "quit"},
    "unknown type, empty": {"t": ""},
    "type in wrong case": bye_map(t="Bye"),
    "missing t": without(text_map(), "t"),
    "t is int": bye_map(t=1),
    "t is bytes": bye_map(t=b"bye"),
    "t is nil": bye_map(t=None),
    "t is bool": bye_map(t=True),
    "t is float": bye_map(t=1.5),
    "empty map": {},
    # key set
    "extra key": text_map(extra=1),
    "extra key nil": bye_map(more=None),
    "missing id": without(text_map(), "id"),
    "missing body": without(text_map(), "body"),
    "missing nick": without(hello_map(), "nick"),
    "missing reason": without(bye_map(), "reason"),
    "other type's fields": {"t": "bye", "version": 1, "nick": "x"},
    # wrong value types
    "bool where int (version)": hello_map(version=True),
    "bool where int (sent_at)": text_map(sent_at=False),
    "float where int": text_map(sent_at=1.0),
    "str where int": hello_map(version="1"),
    "nil where int": text_map(sent_at=None),
    "int where str (nick)": hello_map(nick=1),
    "int where str (body)": text_map(body=7),
    "bytes where str": text_map(body=b"hi"),
    "nil where str": bye_map(reason=None),
    "list where str": bye_map(reason=["quit"]),
    "str where bytes": text_map(id="x" * 16),
    "list where bytes": text_map(id=list(MSG_ID)),
    "map where bytes": text_map(id={"a": 1}),
    # ints out of range
    "version 0": hello_map(version=0),
    "version -1": hello_map(version=-1),
    "version too big": hello_map(version=2**16 + 1),
    "sent_at -1": text_map(sent_at=-1),
    "sent_at 2**63": text_map(sent_at=2**63),
    "sent_at 2**64-1": text_map(sent_at=2**64 - 1),
    "sent_at min int64": text_map(sent_at=-(2**63)),
    # strings too long, counted in UTF-8 bytes
    "nick 65 ascii bytes": hello_map(nick="a" * (MAX_NICK_BYTES + 1)),
    "nick 64 chars 128 bytes": hello_map(nick="é" * MAX_NICK_BYTES),
    "nick 33 chars 65 bytes": hello_map(nick="é" * 32 + "a"),
    "nick 17 emoji 68 bytes": hello_map(nick="😀" * 17),
    "nick 63 bytes + 2-byte char": hello_map(nick="€" * 21 + "é"),
    "body one byte over": text_map(body="x" * (MAX_TEXT_BYTES + 1)),
    "body multibyte over": text_map(body="€" * (MAX_TEXT_BYTES // 3) + "éa"),
    "body chars under, bytes over": text_map(body="😀" * (MAX_TEXT_BYTES // 4 + 1)),
    "reason 65 bytes": bye_map(reason="r" * 65),
    # id size
    "id 15 bytes": text_map(id=bytes(15)),
    "id 17 bytes": text_map(id=bytes(17)),
    "id empty": text_map(id=b""),
    # ext types
    "ext as field": text_map(body=msgpack.ExtType(1, b"hi")),
    "ext as t": {"t": msgpack.ExtType(5, b"bye"), "reason": "quit"},
    "ext as top level": msgpack.ExtType(0, b""),
    "ext in nested list": bye_map(extra=[msgpack.ExtType(127, b"x" * 300)]),
    "timestamp ext as field": text_map(sent_at=msgpack.Timestamp(1, 0)),
    "timestamp ext top level": msgpack.Timestamp(1, 0),
    # not a map
    "top-level list": ["text", MSG_ID, 1, "hi"],
    "top-level int": 5,
    "top-level str": "bye",
    "top-level bytes": b"\x81\xa1t\xa3bye",
    "top-level nil": None,
    "top-level bool": True,
    "top-level float": 1.5,
    # keys that are not str
    "bytes keys": {b"t": "bye", b"reason": "quit"},
    "bytes key for a field": {"t": "bye", b"reason": "quit"},
    "bytes t key plus str fields": {b"t": "bye", "reason": "quit"},
    "int key": {**bye_map(), 1: "x"},
    "nil key": {None: 1, "t": "bye", "reason": "quit"},
}


@pytest.mark.parametrize("obj", list(BAD_OBJECTS.values()), ids=list(BAD_OBJECTS))
def test_decode_rejects(obj: object) -> None:
    payload = pack(obj)
    assert len(payload) <= codec.MAX_PAYLOAD_SIZE  # rejected for content, not size
    with pytest.raises(RemoteProtocolError):
        codec.decode(payload)


@pytest.mark.parametrize("tag", [[], ["bye"], {}, {"t": "bye"}], ids=repr)
def test_decode_rejects_unhashable_type_tag(tag: object) -> None:
    with pytest.raises(RemoteProtocolError):
        codec.decode(pack({"t": tag, "reason": "quit"}))


RAW_BAD_PAYLOADS = {
    "empty": b"",
    "reserved byte 0xc1": b"\xc1",
    "truncated map": pack(text_map())[:-1],
    "truncated header": b"\xdf\x00",
    "map claims more entries": b"\x83\xa1t\xa3bye",
    "huge array header": b"\xdd\xff\xff\xff\xff",
    "huge str header": b"\xdb\xff\xff\xff\xff",
    "trailing zero": pack(bye_map()) + b"\x00",
    "two messages": pack(bye_map()) + pack(bye_map()),
    "trailing junk": pack(text_map()) + b"\xc1",
    "invalid utf-8 in str": b"\x82\xa1t\xa3bye\xa6reason\xa2\xff\xfe",
    "utf-8 surrogate in str": b"\x82\xa1t\xa3bye\xa6reason\xa3\xed\xa0\x80",
    "overlong utf-8": b"\x82\xa1t\xa3bye\xa6reason\xa2\xc0\xaf",
    "invalid utf-8 key": b"\x82\xa1t\xa3bye\xa2\xff\xff\xa1x",
    "deep arrays": b"\x91" * 100_000 + b"\xc0",
    "deep maps": b"\x81\xa1a" * 20_000 + b"\xc0",
    "deep arrays in a field": b"\x82\xa1t\xa3bye\xa6reason" + b"\x91" * 50_000 + b"\xc0",
}


@pytest.mark.parametrize("payload", list(RAW_BAD_PAYLOADS.values()), ids=list(RAW_BAD_PAYLOADS))
def test_decode_rejects_raw(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        codec.decode(payload)


def test_raw_str_family_accepted_for_str() -> None:
    # msgpack's old "raw" encoding (use_bin_type=False) is still a str family: accepted for
    # str fields, but then a bytes field cannot be expressed, so a Text is rejected.
    legacy = msgpack.packb(bye_map(), use_bin_type=False)
    assert codec.decode(legacy) == Bye(reason="quit")
    with pytest.raises(RemoteProtocolError):
        codec.decode(msgpack.packb(text_map(), use_bin_type=False))


def test_payload_over_max_size_rejected() -> None:
    # A structurally valid-looking Text whose body alone is over the payload limit.
    payload = pack(text_map(body="x" * codec.MAX_PAYLOAD_SIZE))
    assert len(payload) > codec.MAX_PAYLOAD_SIZE
    with pytest.raises(RemoteProtocolError):
        codec.decode(payload)


def test_payload_one_over_max_size_rejected_before_parsing() -> None:
    # Valid msgpack (a bin 16 of the right length) but one byte over: the size decides.
    size = codec.MAX_PAYLOAD_SIZE + 1
    payload = b"\xc5" + (size - 3).to_bytes(2, "big") + bytes(size - 3)
    assert len(payload) == size
    with pytest.raises(RemoteProtocolError, match="too large"):
        codec.decode(payload)


# --------------------------------------------------------------------------------------
# Codec: encoding out-of-bounds values is our own bug
# --------------------------------------------------------------------------------------

BAD_OUTGOING = {
    "hello version 0": Hello(version=0, nick="a"),
    "hello version too big": Hello(version=2**16 + 1, nick="a"),
    "hello version bool": Hello(version=True, nick="a"),
    "nick too long ascii": Hello(version=1, nick="a" * 65),
    "nick too long utf-8": Hello(version=1, nick="é" * 33),
    "nick bytes": Hello(version=1, nick=b"alice"),  # type: ignore[arg-type]
    "text id short": Text(id=bytes(15), sent_at=0, body=""),
    "text id long": Text(id=bytes(17), sent_at=0, body=""),
    "text id str": Text(id="x" * 16, sent_at=0, body=""),  # type: ignore[arg-type]
    "text id bytearray": Text(id=bytearray(16), sent_at=0, body=""),  # type: ignore[arg-type]
    "sent_at negative": Text(id=MSG_ID, sent_at=-1, body=""),
    "sent_at too big": Text(id=MSG_ID, sent_at=MAX_TIMESTAMP_MS + 1, body=""),
    "sent_at float": Text(id=MSG_ID, sent_at=1.0, body=""),  # type: ignore[arg-type]
    "sent_at bool": Text(id=MSG_ID, sent_at=True, body=""),
    "body too long": Text(id=MSG_ID, sent_at=0, body="x" * (MAX_TEXT_BYTES + 1)),
    "body too long utf-8": Text(id=MSG_ID, sent_at=0, body="é" * (MAX_TEXT_BYTES // 2 + 1)),
    "body none": Text(id=MSG_ID, sent_at=0, body=None),  # type: ignore[arg-type]
    "bye reason too long": Bye(reason="r" * 65),
    "bye reason int": Bye(reason=1),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("message", list(BAD_OUTGOING.values()), ids=list(BAD_OUTGOING))
def test_encode_rejects_out_of_bounds(message: Hello | Text | Bye) -> None:
    with pytest.raises(LocalProtocolError):
        codec.encode(message)


@pytest.mark.parametrize(
    "message",
    [Text(id=MSG_ID, sent_at=0, body="a\ud800b"), Hello(version=1, nick="\udfff")],
    ids=["text-body", "hello-nick"],
)
def test_encode_rejects_lone_surrogate(message: Hello | Text) -> None:
    # Regression: a lone surrogate once passed the size check ('surrogatepass') and then
    # escaped from msgpack.packb as UnicodeEncodeError.
    with pytest.raises(LocalProtocolError):
        codec.encode(message)


@pytest.mark.parametrize("obj", [42, "text", {"t": "bye", "reason": "x"}], ids=repr)
def test_encode_rejects_non_messages(obj: object) -> None:
    with pytest.raises(LocalProtocolError):
        codec.encode(obj)  # type: ignore[arg-type]


def test_encode_rejects_lookalike_with_type_attribute() -> None:
    class Fake:
        TYPE = "bye"
        reason = "quit"

    with pytest.raises(LocalProtocolError):
        codec.encode(Fake())  # type: ignore[arg-type]


def test_decode_rejects_duplicate_map_keys() -> None:
    # {"t": "bye", "reason": "a", "reason": "b"}: last-one-wins would let two parsers of the
    # same bytes disagree, so a repeated key is malformed.
    payload = bytes.fromhex("83a174a3627965a6726561736f6ea161a6726561736f6ea162")
    with pytest.raises(RemoteProtocolError):
        codec.decode(payload)
