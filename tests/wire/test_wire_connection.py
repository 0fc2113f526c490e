"""The sans-IO `Connection` state machine, tested with two connections wired back to back.

No sockets and no time: `ConnectionPair.deliver()` moves one side's `data_to_send()` into
the other's `receive_data()`, whole, byte by byte or in random-size chunks (h11's
ConnectionPair style).  Misbehaving peers are built by driving `noise.HandshakeState`
by hand with the connection's prologue and protocol name.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator

import pytest

from p2pim.wire import codec, noise
from p2pim.wire.connection import (
    MAX_HANDSHAKE_FRAME,
    MESSAGE_1_SIZE,
    PROLOGUE,
    TRANSITIONS,
    Connection,
    Established,
    Event,
    Input,
    State,
    UnexpectedPeerKey,
    state_diagram,
)
from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError
from p2pim.wire.framing import HEADER_SIZE, FrameDecoder, encode_frame
from p2pim.wire.messages import MAX_TEXT_BYTES, PROTOCOL_VERSION, Bye, Hello, Message, Text

HELLO_I = Hello(version=PROTOCOL_VERSION, nick="alice")
HELLO_R = Hello(version=PROTOCOL_VERSION, nick="bob ☕")

Chunker = Callable[[bytes], Iterator[bytes]]


def whole(data: bytes) -> Iterator[bytes]:
    if data:
        yield data


def bytewise(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def random_chunks(seed: int, max_chunk: int = 40) -> Chunker:
    rng = random.Random(seed)

    def chunks(data: bytes) -> Iterator[bytes]:
        pos = 0
        while pos < len(data):
            step = rng.randint(1, max_chunk)
            yield data[pos : pos + step]
            pos += step

    return chunks


CHUNKERS: dict[str, Chunker] = {
    "whole": whole,
    "bytewise": bytewise,
    **{f"random-{seed}": random_chunks(seed) for seed in (0, 1, 2, 1234)},
    "random-big-7": random_chunks(7, max_chunk=5000),
}


def text(n: int, body: str | None = None) -> Text:
    return Text(id=n.to_bytes(16, "big"), sent_at=1_700_000_000_000 + n, body=body or f"m{n}")


def split_frames(data: bytes) -> list[bytes]:
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    assert decoder.buffered == 0
    return frames


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


class ConnectionPair:
    def __init__(
        self,
        *,
        initiator_hello: Hello = HELLO_I,
        responder_hello: Hello = HELLO_R,
        accept_i: Callable[[bytes], bool] | None = None,
        accept_r: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.i_priv, self.i_pub = noise.generate_keypair()
        self.r_priv, self.r_pub = noise.generate_keypair()
        self.initiator = Connection(
            initiator=True,
            static_private=self.i_priv,
            hello=initiator_hello,
            accept_remote=accept_i,
        )
        self.responder = Connection(
            initiator=False,
            static_private=self.r_priv,
            hello=responder_hello,
            accept_remote=accept_r,
        )

    def other(self, conn: Connection) -> Connection:
        return self.responder if conn is self.initiator else self.initiator

    def deliver(self, src: Connection, chunker: Chunker = whole) -> list[Event]:
        dst = self.other(src)
        events: list[Event] = []
        for chunk in chunker(src.data_to_send()):
            events.extend(dst.receive_data(chunk))
        return events

    def handshake(self, chunker: Chunker = whole) -> tuple[list[Event], list[Event]]:
        assert self.deliver(self.initiator, chunker) == []
        events_i = self.deliver(self.responder, chunker)
        events_r = self.deliver(self.initiator, chunker)
        return events_i, events_r

    def established(self) -> ConnectionPair:
        events_i, events_r = self.handshake()
        assert events_i == [Established(self.r_pub, HELLO_R)]
        assert events_r == [Established(self.i_pub, HELLO_I)]
        return self


def established_pair() -> ConnectionPair:
    return ConnectionPair().established()


# --------------------------------------------------------------------------------------
# The good path
# --------------------------------------------------------------------------------------


def test_handshake_step_by_step() -> None:
    pair = ConnectionPair()
    i, r = pair.initiator, pair.responder
    assert i.state is State.HANDSHAKE
    assert r.state is State.HANDSHAKE
    assert r.data_to_send() == b""  # the responder speaks second

    msg1 = i.data_to_send()
    assert len(msg1) == HEADER_SIZE + MESSAGE_1_SIZE
    assert i.data_to_send() == b""  # data_to_send drains
    assert r.receive_data(msg1) == []
    assert r.state is State.HANDSHAKE
    assert r.remote_static is None
    assert r.remote_hello is None

    msg2 = r.data_to_send()
    assert len(msg2) <= HEADER_SIZE + MAX_HANDSHAKE_FRAME
    assert pair.r_pub not in msg2  # the responder's identity travels encrypted
    assert i.receive_data(msg2) == [Established(pair.r_pub, HELLO_R)]
    assert i.state is State.ESTABLISHED
    assert i.remote_static == pair.r_pub
    assert i.remote_hello == HELLO_R

    msg3 = i.data_to_send()
    assert msg3
    assert pair.i_pub not in msg3
    assert r.receive_data(msg3) == [Established(pair.i_pub, HELLO_I)]
    assert r.state is State.ESTABLISHED
    assert r.remote_static == pair.i_pub
    assert r.remote_hello == HELLO_I

    assert i.handshake_hash is not None
    assert i.handshake_hash == r.handshake_hash
    assert i.data_to_send() == b""
    assert r.data_to_send() == b""


def test_distinct_sessions_have_distinct_handshake_hashes() -> None:
    a, b = established_pair(), established_pair()
    assert a.initiator.handshake_hash != b.initiator.handshake_hash


@pytest.mark.parametrize("chunker", list(CHUNKERS.values()), ids=list(CHUNKERS))
def test_full_conversation(chunker: Chunker) -> None:
    pair = ConnectionPair()
    i, r = pair.initiator, pair.responder
    seen: dict[str, list[Event]] = {"i": [], "r": []}

    events_i, events_r = pair.handshake(chunker)
    seen["i"] += events_i
    seen["r"] += events_r
    assert i.state is State.ESTABLISHED
    assert r.state is State.ESTABLISHED
    assert i.remote_static == pair.r_pub
    assert r.remote_static == pair.i_pub
    assert i.remote_hello == HELLO_R
    assert r.remote_hello == HELLO_I

    to_r = [text(1), text(2, "ünïcødé 🙂"), text(3, "x" * MAX_TEXT_BYTES)]
    to_i = [text(10, "reply"), text(11, "y" * 5000)]
    for m in to_r:
        i.send(m)
    for m in to_i:
        r.send(m)
    got_r = pair.deliver(i, chunker)
    got_i = pair.deliver(r, chunker)
    assert got_r == to_r
    assert got_i == to_i
    seen["i"] += got_i
    seen["r"] += got_r

    i.send(Bye(reason="quit"))
    assert i.state is State.CLOSED
    bye = pair.deliver(i, chunker)
    assert bye == [Bye(reason="quit")]
    assert r.state is State.CLOSED
    seen["r"] += bye

    for side in ("i", "r"):
        assert sum(isinstance(e, Established) for e in seen[side]) == 1
        assert isinstance(seen[side][0], Established)


@pytest.mark.parametrize("chunker", list(CHUNKERS.values()), ids=list(CHUNKERS))
def test_transport_in_same_chunk_as_message_3(chunker: Chunker) -> None:
    pair = ConnectionPair()
    i, r = pair.initiator, pair.responder
    assert pair.deliver(i) == []
    assert pair.deliver(r) == [Established(pair.r_pub, HELLO_R)]
    # The initiator is established before message 3 has left: it may send at once.
    # The big message is a frame over MAX_HANDSHAKE_FRAME right behind message 3.
    early = [text(1), text(2, "z" * MAX_TEXT_BYTES), Bye(reason="quit")]
    for m in early:
        i.send(m)
    events = pair.deliver(i, chunker)
    assert events == [Established(pair.i_pub, HELLO_I), *early]
    assert r.state is State.CLOSED


def test_responder_transport_in_same_chunk_as_initiator_sends() -> None:
    pair = ConnectionPair()
    i, r = pair.initiator, pair.responder
    pair.deliver(i)
    pair.deliver(r)
    i.send(text(1))
    data = i.data_to_send()
    events = r.receive_data(data)
    assert events == [Established(pair.i_pub, HELLO_I), text(1)]
    r.send(text(2))
    assert pair.deliver(r) == [text(2)]


def test_bye_from_responder() -> None:
    pair = established_pair()
    pair.responder.send(Bye(reason="duplicate"))
    assert pair.deliver(pair.responder) == [Bye(reason="duplicate")]
    assert pair.initiator.state is State.CLOSED
    assert pair.responder.state is State.CLOSED


@pytest.mark.parametrize("trailer", [b"\x00", b"\x00\x05hello", b"\x00\x00"], ids=repr)
def test_data_after_bye_in_same_chunk(trailer: bytes) -> None:
    # Regression: this once raised LocalProtocolError (no CLOSED + REMOTE_ERROR transition).
    pair = established_pair()
    pair.initiator.send(Bye(reason="quit"))
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(pair.initiator.data_to_send() + trailer)
    assert pair.responder.state is State.ERROR


def test_data_after_bye_in_later_call() -> None:
    # After the Bye event the caller must stop feeding: another receive_data is a
    # misuse of the closed connection (the peer's extra bytes are never interpreted).
    pair = established_pair()
    pair.initiator.send(Bye(reason="quit"))
    assert pair.deliver(pair.initiator) == [Bye(reason="quit")]
    with pytest.raises(LocalProtocolError):
        pair.responder.receive_data(b"\x00\x05hello")
    assert pair.responder.state is State.CLOSED


# --------------------------------------------------------------------------------------
# Handshake size limits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 31, 33, 64, MAX_HANDSHAKE_FRAME])
def test_message_1_of_wrong_size(size: int) -> None:
    pair = ConnectionPair()
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(encode_frame(b"\x09" * size))
    assert pair.responder.state is State.ERROR
    assert pair.responder.data_to_send() == b""  # no message 2 for a bad message 1


def test_message_1_of_right_size_is_answered() -> None:
    pair = ConnectionPair()
    assert pair.responder.receive_data(encode_frame(b"\x09" * MESSAGE_1_SIZE)) == []
    assert pair.responder.state is State.HANDSHAKE
    assert pair.responder.data_to_send() != b""


@pytest.mark.parametrize("claimed", [MAX_HANDSHAKE_FRAME + 1, 0xFFFF])
def test_oversized_handshake_header_responder(claimed: int) -> None:
    pair = ConnectionPair()
    # Only the header: the error must not wait for a body that may never come.
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(claimed.to_bytes(2, "big"))
    assert pair.responder.state is State.ERROR


@pytest.mark.parametrize("claimed", [MAX_HANDSHAKE_FRAME + 1, 0xFFFF])
def test_oversized_handshake_header_initiator(claimed: int) -> None:
    pair = ConnectionPair()
    pair.deliver(pair.initiator)
    with pytest.raises(RemoteProtocolError):
        pair.initiator.receive_data(claimed.to_bytes(2, "big"))
    assert pair.initiator.state is State.ERROR


def test_oversized_message_3_header() -> None:
    pair = ConnectionPair()
    pair.deliver(pair.initiator)
    pair.deliver(pair.responder)
    pair.initiator.data_to_send()
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data((MAX_HANDSHAKE_FRAME + 1).to_bytes(2, "big"))
    assert pair.responder.state is State.ERROR


def test_handshake_header_at_limit_waits() -> None:
    pair = ConnectionPair()
    pair.deliver(pair.initiator)
    assert pair.initiator.receive_data(MAX_HANDSHAKE_FRAME.to_bytes(2, "big")) == []
    assert pair.initiator.state is State.HANDSHAKE


def test_zero_length_frame_in_handshake() -> None:
    pair = ConnectionPair()
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(b"\x00\x00")
    assert pair.responder.state is State.ERROR


def test_all_zero_ephemeral_key_rejected() -> None:
    # A low-order point makes the responder's ee DH all zeros: the peer's fault.
    pair = ConnectionPair()
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(encode_frame(bytes(MESSAGE_1_SIZE)))
    assert pair.responder.state is State.ERROR


# --------------------------------------------------------------------------------------
# Hello contents and protocol version
# --------------------------------------------------------------------------------------


def test_responder_with_other_version_is_rejected() -> None:
    pair = ConnectionPair(responder_hello=Hello(version=2, nick="bob"))
    pair.deliver(pair.initiator)
    with pytest.raises(RemoteProtocolError, match="version"):
        pair.deliver(pair.responder)
    assert pair.initiator.state is State.ERROR
    assert pair.initiator.remote_static is None
    assert pair.initiator.data_to_send() == b""  # message 3 never sent


def test_initiator_with_other_version_is_rejected() -> None:
    pair = ConnectionPair(initiator_hello=Hello(version=2, nick="alice"))
    pair.deliver(pair.initiator)
    pair.deliver(pair.responder)
    with pytest.raises(RemoteProtocolError, match="version"):
        pair.deliver(pair.initiator)
    assert pair.responder.state is State.ERROR
    assert pair.responder.remote_hello is None


def manual_initiator(static: bytes | None = None) -> noise.HandshakeState:
    s = static if static is not None else noise.generate_keypair()[0]
    return noise.HandshakeState(noise.PROTOCOL_NAME, initiator=True, prologue=PROLOGUE, s=s)


def manual_responder(static: bytes | None = None) -> noise.HandshakeState:
    s = static if static is not None else noise.generate_keypair()[0]
    return noise.HandshakeState(noise.PROTOCOL_NAME, initiator=False, prologue=PROLOGUE, s=s)


def handshake_payload_to_initiator(payload: bytes) -> Connection:
    """A hand-driven responder answers a real initiator with `payload` in message 2."""
    priv, _ = noise.generate_keypair()
    conn = Connection(initiator=True, static_private=priv, hello=HELLO_I)
    hs = manual_responder()
    [msg1] = split_frames(conn.data_to_send())
    assert hs.read_message(msg1) == b""
    conn.receive_data(encode_frame(hs.write_message(payload)))
    return conn


def handshake_payload_to_responder(payload: bytes) -> Connection:
    """A hand-driven initiator completes message 3 to a real responder with `payload`."""
    priv, _ = noise.generate_keypair()
    conn = Connection(initiator=False, static_private=priv, hello=HELLO_R)
    hs = manual_initiator()
    assert conn.receive_data(encode_frame(hs.write_message())) == []
    [msg2] = split_frames(conn.data_to_send())
    assert codec.decode(hs.read_message(msg2)) == HELLO_R
    conn.receive_data(encode_frame(hs.write_message(payload)))
    return conn


def test_manual_peers_interoperate() -> None:
    # Positive control for the hand-driven handshakes below.
    conn = handshake_payload_to_initiator(codec.encode(Hello(version=1, nick="manual")))
    assert conn.state is State.ESTABLISHED
    assert conn.remote_hello == Hello(version=1, nick="manual")
    conn = handshake_payload_to_responder(codec.encode(Hello(version=1, nick="manual")))
    assert conn.state is State.ESTABLISHED
    assert conn.remote_hello == Hello(version=1, nick="manual")


NON_HELLO_PAYLOADS = {
    "text": codec.encode(text(1)),
    "bye": codec.encode(Bye(reason="quit")),
    "empty": b"",
    "not msgpack": b"\xc1",
    "hello missing nick": b"\x82\xa1t\xa5hello\xa7version\x01",
    "hello version 0": b"\x83\xa1t\xa5hello\xa7version\x00\xa4nick\xa1x",
    "hello plus trailing": codec.encode(HELLO_I) + b"\x00",
    "array": b"\x92\x01\x02",
}


@pytest.mark.parametrize("payload", list(NON_HELLO_PAYLOADS.values()), ids=list(NON_HELLO_PAYLOADS))
def test_non_hello_in_message_2(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        handshake_payload_to_initiator(payload)
    assert not isinstance(info.value, UnexpectedPeerKey)


@pytest.mark.parametrize("payload", list(NON_HELLO_PAYLOADS.values()), ids=list(NON_HELLO_PAYLOADS))
def test_non_hello_in_message_3(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        handshake_payload_to_responder(payload)


def test_non_hello_leaves_error_state_and_no_reply() -> None:
    priv, _ = noise.generate_keypair()
    conn = Connection(initiator=True, static_private=priv, hello=HELLO_I)
    hs = manual_responder()
    hs.read_message(split_frames(conn.data_to_send())[0])
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(encode_frame(hs.write_message(codec.encode(text(1)))))
    assert conn.state is State.ERROR
    assert conn.data_to_send() == b""
    assert conn.remote_static is None


def test_hello_after_handshake() -> None:
    priv, _ = noise.generate_keypair()
    conn = Connection(initiator=False, static_private=priv, hello=HELLO_R)
    hs = manual_initiator()
    conn.receive_data(encode_frame(hs.write_message()))
    hs.read_message(split_frames(conn.data_to_send())[0])
    events = conn.receive_data(encode_frame(hs.write_message(codec.encode(HELLO_I))))
    assert [type(e) for e in events] == [Established]
    send, recv = hs.split()

    # Positive control: the hand-made cipher states speak to the connection.
    assert conn.receive_data(encode_frame(send.encrypt_with_ad(b"", codec.encode(text(1))))) == [
        text(1)
    ]
    conn.send(text(2))
    [frame] = split_frames(conn.data_to_send())
    assert codec.decode(recv.decrypt_with_ad(b"", frame)) == text(2)

    with pytest.raises(RemoteProtocolError, match="hello"):
        conn.receive_data(encode_frame(send.encrypt_with_ad(b"", codec.encode(HELLO_I))))
    assert conn.state is State.ERROR


# --------------------------------------------------------------------------------------
# Tampering and replay
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "bit"), [(0, 0), (15, 3), (31, 0), (31, 7)])
def test_tampered_message_1(offset: int, bit: int) -> None:
    # Message 1 is a bare key: the responder cannot tell, but the transcripts diverge
    # and the initiator rejects message 2.  (31, 7) is the bit X25519 itself ignores.
    pair = ConnectionPair()
    msg1 = pair.initiator.data_to_send()
    assert pair.responder.receive_data(flip(msg1, HEADER_SIZE + offset, bit)) == []
    with pytest.raises(RemoteProtocolError):
        pair.deliver(pair.responder)
    assert pair.initiator.state is State.ERROR
    assert pair.initiator.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        pair.initiator.receive_data(b"\x00")


# Offsets into message 2: e (0..31), encrypted s (32..79), encrypted hello and tag (80..).
@pytest.mark.parametrize("offset", [0, 31, 32, 64, 79, 80, -17, -1])
def test_tampered_message_2(offset: int) -> None:
    pair = ConnectionPair()
    pair.deliver(pair.initiator)
    msg2 = pair.responder.data_to_send()
    index = HEADER_SIZE + offset if offset >= 0 else len(msg2) + offset
    with pytest.raises(RemoteProtocolError):
        pair.initiator.receive_data(flip(msg2, index))
    assert pair.initiator.state is State.ERROR
    assert pair.initiator.remote_static is None
    assert pair.initiator.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        pair.initiator.receive_data(msg2)  # not even the genuine message is accepted now


# Offsets into message 3: encrypted s (0..47), encrypted hello and tag (48..).
@pytest.mark.parametrize("offset", [0, 20, 47, 48, -17, -1])
def test_tampered_message_3(offset: int) -> None:
    pair = ConnectionPair()
    pair.deliver(pair.initiator)
    pair.deliver(pair.responder)
    msg3 = pair.initiator.data_to_send()
    index = HEADER_SIZE + offset if offset >= 0 else len(msg3) + offset
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(flip(msg3, index))
    assert pair.responder.state is State.ERROR
    assert pair.responder.remote_static is None
    with pytest.raises(LocalProtocolError):
        pair.responder.receive_data(msg3)


@pytest.mark.parametrize("offset", [0, 1, 10, -17, -1])
@pytest.mark.parametrize("direction", ["i->r", "r->i"])
def test_tampered_transport_frame(offset: int, direction: str) -> None:
    pair = established_pair()
    src = pair.initiator if direction == "i->r" else pair.responder
    dst = pair.other(src)
    src.send(text(1, "attack at dawn"))
    frame = src.data_to_send()
    index = HEADER_SIZE + offset if offset >= 0 else len(frame) + offset
    with pytest.raises(RemoteProtocolError):
        dst.receive_data(flip(frame, index, bit=offset % 8))
    assert dst.state is State.ERROR
    with pytest.raises(LocalProtocolError):
        dst.receive_data(frame)
    with pytest.raises(LocalProtocolError):
        dst.receive_data(b"")


def test_tampered_frame_after_good_ones_in_same_chunk() -> None:
    pair = established_pair()
    pair.initiator.send(text(1))
    good = pair.initiator.data_to_send()
    pair.initiator.send(text(2))
    bad = flip(pair.initiator.data_to_send(), HEADER_SIZE + 3)
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(good + bad)
    assert pair.responder.state is State.ERROR


def test_replayed_transport_frame() -> None:
    pair = established_pair()
    pair.initiator.send(text(1))
    frame = pair.initiator.data_to_send()
    assert pair.responder.receive_data(frame) == [text(1)]
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(frame)
    assert pair.responder.state is State.ERROR


def test_reordered_transport_frames() -> None:
    pair = established_pair()
    pair.initiator.send(text(1))
    first = pair.initiator.data_to_send()
    pair.initiator.send(text(2))
    second = pair.initiator.data_to_send()
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(second + first)
    assert pair.responder.state is State.ERROR


def test_reflected_transport_frame() -> None:
    # A frame sealed by the initiator is not accepted by the initiator itself.
    pair = established_pair()
    pair.initiator.send(text(1))
    with pytest.raises(RemoteProtocolError):
        pair.initiator.receive_data(pair.initiator.data_to_send())


def test_cross_session_frame() -> None:
    a, b = established_pair(), established_pair()
    a.initiator.send(text(1))
    with pytest.raises(RemoteProtocolError):
        b.responder.receive_data(a.initiator.data_to_send())


def test_handshake_with_wrong_prologue_fails() -> None:
    priv, _ = noise.generate_keypair()
    conn = Connection(initiator=False, static_private=priv, hello=HELLO_R)
    hs = noise.HandshakeState(
        noise.PROTOCOL_NAME, initiator=True, prologue=b"p2pim/2", s=noise.generate_keypair()[0]
    )
    conn.receive_data(encode_frame(hs.write_message()))
    with pytest.raises(RemoteProtocolError):
        hs.read_message(split_frames(conn.data_to_send())[0])


# --------------------------------------------------------------------------------------
# Vetting the peer's key
# --------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, verdict: bool) -> None:
        self.verdict = verdict
        self.calls: list[bytes] = []

    def __call__(self, key: bytes) -> bool:
        self.calls.append(key)
        return self.verdict


def test_initiator_rejects_responder_key() -> None:
    vet = Recorder(False)
    pair = ConnectionPair(accept_i=vet)
    pair.deliver(pair.initiator)
    with pytest.raises(UnexpectedPeerKey) as info:
        pair.deliver(pair.responder)
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.remote_static == pair.r_pub
    assert vet.calls == [pair.r_pub]
    assert pair.initiator.state is State.ERROR
    assert pair.initiator.remote_static is None
    assert pair.initiator.data_to_send() == b""  # message 3 never leaves
    assert pair.responder.state is State.HANDSHAKE


def test_responder_rejects_initiator_key() -> None:
    vet = Recorder(False)
    pair = ConnectionPair(accept_r=vet)
    pair.deliver(pair.initiator)
    pair.deliver(pair.responder)
    with pytest.raises(UnexpectedPeerKey) as info:
        pair.deliver(pair.initiator)
    assert info.value.remote_static == pair.i_pub
    assert vet.calls == [pair.i_pub]
    assert pair.responder.state is State.ERROR
    assert pair.responder.data_to_send() == b""


def test_accepting_vetters_are_called_once_with_the_peer_key() -> None:
    vet_i, vet_r = Recorder(True), Recorder(True)
    pair = ConnectionPair(accept_i=vet_i, accept_r=vet_r).established()
    assert vet_i.calls == [pair.r_pub]
    assert vet_r.calls == [pair.i_pub]


# --------------------------------------------------------------------------------------
# Local misuse
# --------------------------------------------------------------------------------------


def test_send_before_handshake() -> None:
    pair = ConnectionPair()
    for conn in (pair.initiator, pair.responder):
        with pytest.raises(LocalProtocolError):
            conn.send(text(1))
    pair.deliver(pair.initiator)
    with pytest.raises(LocalProtocolError):
        pair.responder.send(text(1))  # mid-handshake
    # The failed sends changed nothing: the handshake still completes.
    pair.established()


@pytest.mark.parametrize("message", [text(1), Bye(reason="quit")], ids=["text", "bye"])
def test_send_after_close(message: Message) -> None:
    pair = established_pair()
    pair.initiator.close()
    assert pair.initiator.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.initiator.send(message)
    assert pair.initiator.data_to_send() == b""


def test_send_after_sending_bye() -> None:
    pair = established_pair()
    pair.initiator.send(Bye(reason="quit"))
    with pytest.raises(LocalProtocolError):
        pair.initiator.send(text(1))
    with pytest.raises(LocalProtocolError):
        pair.initiator.send(Bye(reason="quit"))
    assert pair.deliver(pair.initiator) == [Bye(reason="quit")]


def test_send_after_receiving_bye() -> None:
    pair = established_pair()
    pair.initiator.send(Bye(reason="quit"))
    pair.deliver(pair.initiator)
    with pytest.raises(LocalProtocolError):
        pair.responder.send(text(1))


def test_send_after_error() -> None:
    pair = established_pair()
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(b"\x00\x00")
    with pytest.raises(LocalProtocolError):
        pair.responder.send(text(1))


def test_hello_cannot_be_sent_after_handshake() -> None:
    pair = established_pair()
    with pytest.raises(LocalProtocolError):
        pair.initiator.send(HELLO_I)
    assert pair.initiator.state is State.ESTABLISHED
    assert pair.initiator.data_to_send() == b""
    # No nonce was spent: the next message still decrypts on the other side.
    pair.initiator.send(text(1))
    assert pair.deliver(pair.initiator) == [text(1)]


def test_out_of_bounds_send_spends_no_nonce() -> None:
    pair = established_pair()
    with pytest.raises(LocalProtocolError):
        pair.initiator.send(Text(id=b"short", sent_at=0, body=""))
    with pytest.raises(LocalProtocolError):
        pair.initiator.send(text(1, "x" * (MAX_TEXT_BYTES + 1)))
    assert pair.initiator.state is State.ESTABLISHED
    assert pair.initiator.data_to_send() == b""
    pair.initiator.send(text(2))
    assert pair.deliver(pair.initiator) == [text(2)]


def test_close_during_handshake() -> None:
    pair = ConnectionPair()
    pair.responder.close()
    assert pair.responder.state is State.CLOSED
    assert pair.responder.handshake_hash is None
    with pytest.raises(LocalProtocolError):
        pair.responder.receive_data(pair.initiator.data_to_send())
    pair.responder.close()  # closing twice is allowed
    assert pair.responder.state is State.CLOSED


def test_close_after_error_keeps_error() -> None:
    pair = ConnectionPair()
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(b"\xff\xff")
    pair.responder.close()
    assert pair.responder.state is State.ERROR


# --------------------------------------------------------------------------------------
# The transition table and its diagram
# --------------------------------------------------------------------------------------


def reachable_from(start: State) -> set[State]:
    seen = {start}
    todo = deque([start])
    while todo:
        state = todo.popleft()
        for (src, _), dst in TRANSITIONS.items():
            if src is state and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


def terminal_states() -> set[State]:
    return {s for s in State if all(dst is s for (src, _), dst in TRANSITIONS.items() if src is s)}


def test_terminal_states_are_closed_and_error() -> None:
    assert terminal_states() == {State.CLOSED, State.ERROR}


def test_every_state_reachable_from_handshake() -> None:
    assert reachable_from(State.HANDSHAKE) == set(State)
    # Every non-terminal state can still reach a terminal one.
    for state in set(State) - terminal_states():
        assert reachable_from(state) & terminal_states()


def test_table_only_uses_known_names() -> None:
    for (src, event), dst in TRANSITIONS.items():
        assert isinstance(src, State)
        assert isinstance(event, Input)
        assert isinstance(dst, State)


def test_state_diagram_matches_table() -> None:
    lines = state_diagram().splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert f"[*] --> {State.HANDSHAKE.value}" in lines[1]
    arrows = [line.strip() for line in lines[2:] if "-->" in line]
    expected = [
        f"{src.value} --> {dst.value}: {event.value}"
        for (src, event), dst in TRANSITIONS.items()
        if src is not dst
    ]
    assert len(expected) == 6
    assert sorted(arrows) == sorted(expected)
    assert len(lines) == 2 + len(expected)
