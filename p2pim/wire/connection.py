"""One peer link as a sans-IO state machine: Noise XX handshake, then framed messages.

Bytes from the network go into `receive_data()`, which returns events; messages to send
go into `send()`; whatever must be written to the network is collected by
`data_to_send()`.  Time and sockets belong to the caller.

The handshake (Noise XX, `noise.PROTOCOL_NAME`, prologue `PROLOGUE`):

    initiator -> responder   e                    (payload empty)
    responder -> initiator   e, ee, s, es         (payload: Hello)
    initiator -> responder   s, se                (payload: Hello)

After it, `remote_static` is the peer's identity and every frame is one AEAD-sealed
msgpack message.  A `RemoteProtocolError` moves the connection to ERROR for good: the
cipher nonces may have advanced, so the only way on is a new connection.

Pairing (a one-time code typed on both sides) puts one SPAKE2 exchange in front:

    initiator -> responder   PAIRING_MARKER + SPAKE2 message
    responder -> initiator   PAIRING_MARKER + SPAKE2 message

and then runs `PAIRING_PROTOCOL_NAME` (XXpsk2) with the SPAKE2 key as PSK and both SPAKE2
messages bound into the prologue.  With a wrong code the initiator fails to read message 2
and the responder never receives message 3: the handshake itself is the code check.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from p2pim.wire import codec, noise, pake
from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError
from p2pim.wire.framing import FrameDecoder, encode_frame
from p2pim.wire.messages import PROTOCOL_VERSION, Bye, Hello, Message

PROLOGUE = b"p2pim/1"
# Pre-authentication bound: handshake frames carry keys plus a small Hello.
MAX_HANDSHAKE_FRAME = 1024
MESSAGE_1_SIZE = 32  # the initiator's bare ephemeral key
PAIRING_MARKER = b"p2pim-pake"
PAIRING_PROTOCOL_NAME = "Noise_XXpsk2_25519_AESGCM_SHA256"


class State(enum.Enum):
    HANDSHAKE = "handshake"
    ESTABLISHED = "established"
    CLOSED = "closed"
    ERROR = "error"


class Input(enum.Enum):
    HANDSHAKE_DONE = "handshake done"
    BYE = "bye sent or received"
    CLOSE = "local close"
    REMOTE_ERROR = "remote protocol error"


# The whole life of a connection.  Anything not listed is a LocalProtocolError.
TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.HANDSHAKE, Input.HANDSHAKE_DONE): State.ESTABLISHED,
    (State.HANDSHAKE, Input.CLOSE): State.CLOSED,
    (State.HANDSHAKE, Input.REMOTE_ERROR): State.ERROR,
    (State.ESTABLISHED, Input.BYE): State.CLOSED,
    (State.ESTABLISHED, Input.CLOSE): State.CLOSED,
    (State.ESTABLISHED, Input.REMOTE_ERROR): State.ERROR,
    (State.CLOSED, Input.CLOSE): State.CLOSED,
    (State.ERROR, Input.CLOSE): State.ERROR,
}


def state_diagram() -> str:
    """The transition table as a Mermaid diagram (docs/protocol.md embeds this text)."""
    lines = ["stateDiagram-v2", "    [*] --> handshake"]
    for (src, event), dst in TRANSITIONS.items():
        if src is not dst:
            lines.append(f"    {src.value} --> {dst.value}: {event.value}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Established:
    """The handshake finished: `remote_static` is the authenticated peer identity."""

    remote_static: bytes
    hello: Hello


Event = Established | Message


class UnexpectedPeerKey(RemoteProtocolError):
    """The peer authenticated with a static key the caller did not expect."""

    def __init__(self, remote_static: bytes) -> None:
        super().__init__("peer presented an unexpected static key")
        self.remote_static = remote_static


class Connection:
    """`accept_remote`, if given, vets the peer's static key the moment it is known; an
    initiator that rejects it never sends message 3, so an impostor learns nothing of us.

    An initiator given `pairing` pairs instead of connecting plainly.  A responder asks
    `on_pairing_request` for a `Pairing` when a peer opens with a pairing exchange; None
    (or no callback) refuses it.
    """

    def __init__(
        self,
        *,
        initiator: bool,
        static_private: bytes,
        hello: Hello,
        accept_remote: Callable[[bytes], bool] | None = None,
        pairing: pake.Pairing | None = None,
        on_pairing_request: Callable[[], pake.Pairing | None] | None = None,
    ) -> None:
        self.initiator = initiator
        self.state = State.HANDSHAKE
        self.remote_static: bytes | None = None
        self.remote_hello: Hello | None = None
        self.paired = False  # the handshake proved both sides typed the same code
        self._static = static_private
        self._hello = hello
        self._accept_remote = accept_remote
        self._pairing = pairing
        self._on_pairing_request = on_pairing_request
        self._handshake: noise.HandshakeState | None = None
        self._send_cipher: noise.CipherState | None = None
        self._recv_cipher: noise.CipherState | None = None
        self._decoder = FrameDecoder(MAX_HANDSHAKE_FRAME)
        self._outgoing = bytearray()
        self._frames_seen = 0
        if initiator and pairing is not None:
            self._outgoing += encode_frame(PAIRING_MARKER + pairing.message())
        elif initiator:
            self._start_noise(None)
            assert self._handshake is not None
            self._outgoing += encode_frame(self._handshake.write_message())

    def _start_noise(self, pairing: pake.Pairing | None, psk: bytes = b"") -> None:
        if pairing is None:
            self._handshake = noise.HandshakeState(
                noise.PROTOCOL_NAME, initiator=self.initiator, prologue=PROLOGUE, s=self._static
            )
            return
        self._handshake = noise.HandshakeState(
            PAIRING_PROTOCOL_NAME,
            initiator=self.initiator,
            prologue=PROLOGUE + pake.PAIRING_MAGIC + pairing.transcript(),
            s=self._static,
            psks=[psk],
        )

    def _move(self, event: Input) -> None:
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            raise LocalProtocolError(f"{event.value} is not allowed in state {self.state.value}")
        self.state = target

    @property
    def handshake_hash(self) -> bytes | None:
        return self._handshake.handshake_hash if self._handshake else None

    def data_to_send(self) -> bytes:
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes | bytearray) -> list[Event]:
        """Feed bytes from the peer; returns the events they complete."""
        if self.state not in (State.HANDSHAKE, State.ESTABLISHED):
            raise LocalProtocolError(f"receive_data in state {self.state.value}")
        events: list[Event] = []
        try:
            self._decoder.feed(data)
            while self.state in (State.HANDSHAKE, State.ESTABLISHED):
                frame = self._decoder.next_frame()
                if frame is None:
                    break
                event = self._on_frame(frame)
                if event is not None:
                    events.append(event)
        except RemoteProtocolError:
            self._move(Input.REMOTE_ERROR)
            raise
        return events

    def _on_frame(self, frame: bytes) -> Event | None:
        if self.state is State.ESTABLISHED:
            assert self._recv_cipher is not None
            message = codec.decode(self._recv_cipher.decrypt_with_ad(b"", frame))
            if isinstance(message, Hello):
                raise RemoteProtocolError("hello after the handshake")
            if isinstance(message, Bye):
                if self._decoder.buffered:
                    raise RemoteProtocolError("data after bye")
                self._move(Input.BYE)
            return message
        return self._on_handshake_frame(frame)

    def _on_pairing_frame(self, frame: bytes) -> None:
        if not frame.startswith(PAIRING_MARKER):
            raise RemoteProtocolError("expected the pairing exchange")
        peer_message = frame[len(PAIRING_MARKER) :]
        pairing = self._pairing
        if not self.initiator:
            pairing = self._on_pairing_request() if self._on_pairing_request else None
            if pairing is None:
                raise RemoteProtocolError("pairing requested, but none is in progress here")
            self._outgoing += encode_frame(PAIRING_MARKER + pairing.message())
        assert pairing is not None
        psk = pairing.finish(peer_message)
        self._start_noise(pairing, psk)
        self.paired = True  # provisionally: only a completed handshake proves the code
        if self.initiator:
            assert self._handshake is not None
            self._outgoing += encode_frame(self._handshake.write_message())

    def _on_handshake_frame(self, frame: bytes) -> Event | None:
        if self._handshake is None:  # the first frame: a pairing exchange or Noise message 1
            if self.initiator or frame.startswith(PAIRING_MARKER):
                self._on_pairing_frame(frame)
                return None
            self._start_noise(None)
        assert self._handshake is not None
        self._frames_seen += 1
        # With a PSK, message 1's empty payload already carries an AEAD tag.
        expected_size = MESSAGE_1_SIZE + (noise.TAG_LEN if self.paired else 0)
        if not self.initiator and self._frames_seen == 1 and len(frame) != expected_size:
            raise RemoteProtocolError("handshake message 1 must be a bare ephemeral key")
        payload = self._handshake.read_message(frame)
        if not self.initiator and self._frames_seen == 1:
            self._outgoing += encode_frame(self._handshake.write_message(self._hello_bytes()))
            return None
        remote = self._handshake.remote_static
        if remote is None:
            raise LocalProtocolError("handshake pattern did not transmit the static key")
        if self._accept_remote is not None and not self._accept_remote(remote):
            raise UnexpectedPeerKey(remote)
        hello = codec.decode(payload)
        if not isinstance(hello, Hello):
            raise RemoteProtocolError(f"expected hello in the handshake, got {hello.TYPE}")
        if hello.version != PROTOCOL_VERSION:
            raise RemoteProtocolError(f"unsupported protocol version {hello.version}")
        if self.initiator:
            self._outgoing += encode_frame(self._handshake.write_message(self._hello_bytes()))
        return self._finish_handshake(hello)

    def _hello_bytes(self) -> bytes:
        return codec.encode(self._hello)

    def _finish_handshake(self, hello: Hello) -> Established:
        assert self._handshake is not None and self._handshake.complete
        remote = self._handshake.remote_static
        assert remote is not None
        self._send_cipher, self._recv_cipher = self._handshake.split()
        self.remote_static, self.remote_hello = remote, hello
        self._decoder.max_frame_size = 65535
        self._move(Input.HANDSHAKE_DONE)
        return Established(remote, hello)

    def send(self, message: Message) -> None:
        """Queue one message; a Bye also ends the connection."""
        if self.state is not State.ESTABLISHED or self._send_cipher is None:
            raise LocalProtocolError(f"send in state {self.state.value}")
        if isinstance(message, Hello):
            raise LocalProtocolError("hello belongs to the handshake")
        sealed = self._send_cipher.encrypt_with_ad(b"", codec.encode(message))
        self._outgoing += encode_frame(sealed)
        if isinstance(message, Bye):
            self._move(Input.BYE)

    def close(self) -> None:
        """Forget the connection locally (the transport is closing)."""
        self._move(Input.CLOSE)
        self._handshake = None
