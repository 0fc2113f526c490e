"""Failure behaviour of p2pim.wire.noise on the XX protocol p2pim uses, with fresh keys.

Whatever a peer can send must end in RemoteProtocolError (never a `cryptography` or
ValueError leak, never a completed handshake with mismatched keys); misuse by our own code
ends in LocalProtocolError.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pim.wire.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from p2pim.wire.noise import (
    PROTOCOL_NAME,
    CipherState,
    HandshakeState,
    generate_keypair,
    public_key,
)

KEY_LEN = 32
TAG_LEN = 16


def _pair(
    init_prologue: bytes = b"p2pim test", resp_prologue: bytes = b"p2pim test"
) -> tuple[HandshakeState, HandshakeState, bytes, bytes]:
    init_s, init_pub = generate_keypair()
    resp_s, resp_pub = generate_keypair()
    initiator = HandshakeState(PROTOCOL_NAME, initiator=True, prologue=init_prologue, s=init_s)
    responder = HandshakeState(PROTOCOL_NAME, initiator=False, prologue=resp_prologue, s=resp_s)
    return initiator, responder, init_pub, resp_pub


def _handshake() -> tuple[tuple[CipherState, CipherState], tuple[CipherState, CipherState]]:
    initiator, responder, _, _ = _pair()
    responder.read_message(initiator.write_message(b"one"))
    initiator.read_message(responder.write_message(b"two"))
    responder.read_message(initiator.write_message(b"three"))
    return initiator.split(), responder.split()


def _flip(message: bytes, index: int) -> bytes:
    return message[:index] + bytes([message[index] ^ 0x01]) + message[index + 1 :]


# --- positive -------------------------------------------------------------------------


def test_round_trip() -> None:
    initiator, responder, init_pub, resp_pub = _pair()
    assert responder.read_message(initiator.write_message(b"hello")) == b"hello"
    assert initiator.read_message(responder.write_message(b"hi")) == b"hi"
    assert not initiator.complete
    assert not responder.complete
    assert responder.read_message(initiator.write_message(b"done")) == b"done"
    assert initiator.complete
    assert responder.complete
    assert initiator.messages_remaining == responder.messages_remaining == 0
    assert initiator.remote_static == resp_pub
    assert responder.remote_static == init_pub
    assert initiator.handshake_hash == responder.handshake_hash
    (i_send, i_recv), (r_send, r_recv) = initiator.split(), responder.split()
    for n in range(1000):
        data = n.to_bytes(4, "big") * (n % 7)
        assert r_recv.decrypt_with_ad(b"", i_send.encrypt_with_ad(b"", data)) == data
        assert i_recv.decrypt_with_ad(b"ad", r_send.encrypt_with_ad(b"ad", data)) == data
    assert i_send.n == r_recv.n == r_send.n == i_recv.n == 1000


def test_keypair_helpers() -> None:
    private, public = generate_keypair()
    assert len(private) == len(public) == KEY_LEN
    assert public_key(private) == public
    with pytest.raises(LocalProtocolError):
        public_key(private[:31])


def test_one_way_pattern_completes_after_one_message() -> None:
    resp_s, resp_pub = generate_keypair()
    initiator = HandshakeState("Noise_N_25519_ChaChaPoly_BLAKE2s", initiator=True, rs=resp_pub)
    responder = HandshakeState("Noise_N_25519_ChaChaPoly_BLAKE2s", initiator=False, s=resp_s)
    assert responder.read_message(initiator.write_message(b"x")) == b"x"
    assert initiator.complete
    assert responder.complete
    send, _ = initiator.split()
    _, receive = responder.split()
    assert receive.decrypt_with_ad(b"", send.encrypt_with_ad(b"", b"y")) == b"y"


def test_rekey_keeps_both_sides_in_step() -> None:
    (i_send, _), (_, r_recv) = _handshake()
    r_recv.decrypt_with_ad(b"", i_send.encrypt_with_ad(b"", b"before"))
    i_send.rekey()
    r_recv.rekey()
    assert r_recv.decrypt_with_ad(b"", i_send.encrypt_with_ad(b"", b"after")) == b"after"


# --- the peer misbehaves --------------------------------------------------------------


def test_wrong_prologue_fails_at_first_authenticated_message() -> None:
    initiator, responder, _, _ = _pair(b"prologue A", b"prologue B")
    # Message 1 of XX carries no key yet, so nothing can be checked there.
    responder.read_message(initiator.write_message())
    with pytest.raises(RemoteProtocolError):
        initiator.read_message(responder.write_message())
    assert not initiator.complete
    assert not responder.complete
    with pytest.raises(ProtocolError):
        initiator.write_message()


@pytest.mark.parametrize("index", [0, 17, 31, KEY_LEN, KEY_LEN + 5])
def test_flipped_byte_in_message_1_never_completes(index: int) -> None:
    # Message 1 is plaintext: the flip in the ephemeral key or payload is only caught
    # by the next authenticated message, which must fail on one side or the other.
    initiator, responder, _, _ = _pair()
    message = _flip(initiator.write_message(b"payload"), index)

    def finish_handshake() -> None:
        responder.read_message(message)
        initiator.read_message(responder.write_message())
        responder.read_message(initiator.write_message())

    with pytest.raises(RemoteProtocolError):
        finish_handshake()
    assert not (initiator.complete and responder.complete)


@pytest.mark.parametrize(
    "index",
    [0, KEY_LEN - 1, KEY_LEN, KEY_LEN + 47, KEY_LEN + 48, -1],
    ids=["e-first", "e-last", "s-first", "s-tag", "payload-first", "payload-tag"],
)
def test_flipped_byte_in_message_2(index: int) -> None:
    initiator, responder, _, _ = _pair()
    responder.read_message(initiator.write_message())
    message = responder.write_message(b"payload")
    with pytest.raises(RemoteProtocolError):
        initiator.read_message(_flip(message, index % len(message)))
    assert not initiator.complete
    assert initiator.remote_static is None  # even if only the payload tag was bad


@pytest.mark.parametrize(
    "index", [0, 47, 48, -1], ids=["s-first", "s-tag", "payload-first", "payload-tag"]
)
def test_flipped_byte_in_message_3(index: int) -> None:
    initiator, responder, _, _ = _pair()
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    message = initiator.write_message(b"payload")
    assert initiator.complete
    with pytest.raises(RemoteProtocolError):
        responder.read_message(_flip(message, index % len(message)))
    assert not responder.complete
    with pytest.raises(LocalProtocolError):
        responder.split()


@pytest.mark.parametrize("length", [0, 1, KEY_LEN - 1, KEY_LEN, KEY_LEN + 47, KEY_LEN + 63])
def test_truncated_message_2(length: int) -> None:
    initiator, responder, _, _ = _pair()
    responder.read_message(initiator.write_message())
    message = responder.write_message(b"payload")
    with pytest.raises(RemoteProtocolError):
        initiator.read_message(message[:length])


def test_truncated_message_1() -> None:
    initiator, responder, _, _ = _pair()
    with pytest.raises(RemoteProtocolError):
        responder.read_message(initiator.write_message()[: KEY_LEN - 1])


@pytest.mark.parametrize("length", [0, 1, TAG_LEN - 1, TAG_LEN, TAG_LEN + 4])
def test_truncated_transport_message(length: int) -> None:
    (i_send, _), (_, r_recv) = _handshake()
    ciphertext = i_send.encrypt_with_ad(b"", b"hello world")
    with pytest.raises(RemoteProtocolError):
        r_recv.decrypt_with_ad(b"", ciphertext[:length])


def test_replayed_transport_message() -> None:
    (i_send, _), (_, r_recv) = _handshake()
    ciphertext = i_send.encrypt_with_ad(b"", b"pay me once")
    assert r_recv.decrypt_with_ad(b"", ciphertext) == b"pay me once"
    with pytest.raises(RemoteProtocolError):
        r_recv.decrypt_with_ad(b"", ciphertext)


def test_reordered_transport_messages() -> None:
    (i_send, _), (_, r_recv) = _handshake()
    first = i_send.encrypt_with_ad(b"", b"1")
    second = i_send.encrypt_with_ad(b"", b"2")
    with pytest.raises(RemoteProtocolError):
        r_recv.decrypt_with_ad(b"", second)
    del first


def test_transport_message_reflected_to_its_sender() -> None:
    (i_send, i_recv), _ = _handshake()
    with pytest.raises(RemoteProtocolError):
        i_recv.decrypt_with_ad(b"", i_send.encrypt_with_ad(b"", b"echo"))


def test_wrong_associated_data() -> None:
    (i_send, _), (_, r_recv) = _handshake()
    with pytest.raises(RemoteProtocolError):
        r_recv.decrypt_with_ad(b"other", i_send.encrypt_with_ad(b"ad", b"x"))


def test_nothing_decrypts_after_a_transport_failure() -> None:
    (i_send, _), (_, r_recv) = _handshake()
    good = i_send.encrypt_with_ad(b"", b"genuine")
    with pytest.raises(RemoteProtocolError):
        r_recv.decrypt_with_ad(b"", _flip(good, 0))
    # Even the genuine frame is refused now: the session is dead, not resynchronised.
    with pytest.raises(RemoteProtocolError):
        r_recv.decrypt_with_ad(b"", good)


def test_nothing_proceeds_after_a_handshake_failure() -> None:
    initiator, responder, _, _ = _pair()
    responder.read_message(initiator.write_message())
    good = responder.write_message()
    with pytest.raises(RemoteProtocolError):
        initiator.read_message(_flip(good, KEY_LEN + 3))
    with pytest.raises(ProtocolError):
        initiator.read_message(good)
    with pytest.raises(ProtocolError):
        initiator.write_message()
    with pytest.raises(LocalProtocolError):
        initiator.split()
    assert not initiator.complete


def test_low_order_ephemeral_key_is_rejected() -> None:
    # An all-zero X25519 key gives an all-zero shared secret; the peer must be blamed.
    initiator, responder, _, _ = _pair()
    initiator.write_message()
    responder.read_message(bytes(KEY_LEN))
    with pytest.raises(RemoteProtocolError):
        responder.write_message()

    initiator, responder, _, _ = _pair()
    responder.read_message(initiator.write_message())
    message = responder.write_message()
    with pytest.raises(RemoteProtocolError):
        initiator.read_message(bytes(KEY_LEN) + message[KEY_LEN:])


@settings(max_examples=200, deadline=None)
@given(step=st.integers(min_value=0, max_value=3), junk=st.binary(max_size=200))
def test_garbage_only_raises_remote_protocol_error(step: int, junk: bytes) -> None:
    initiator, responder, _, _ = _pair()
    if step == 0:
        if len(junk) >= KEY_LEN:
            responder.read_message(junk)  # message 1 is unauthenticated: any key will do
        else:
            with pytest.raises(RemoteProtocolError):
                responder.read_message(junk)
        return
    responder.read_message(initiator.write_message())
    if step == 1:
        with pytest.raises(RemoteProtocolError):
            initiator.read_message(junk)
        return
    initiator.read_message(responder.write_message())
    if step == 2:
        with pytest.raises(RemoteProtocolError):
            responder.read_message(junk)
        return
    responder.read_message(initiator.write_message())
    _, receive = responder.split()
    with pytest.raises(RemoteProtocolError):
        receive.decrypt_with_ad(b"", junk)


def test_garbage_message_1_shorter_than_a_key() -> None:
    _, responder, _, _ = _pair()
    with pytest.raises(RemoteProtocolError):
        responder.read_message(b"short")


def test_oversized_handshake_message() -> None:
    initiator, responder, _, _ = _pair()
    with pytest.raises(RemoteProtocolError):
        responder.read_message(bytes(65536))
    with pytest.raises(LocalProtocolError):
        initiator.write_message(bytes(65535))


def test_peer_exhausting_nonces() -> None:
    (_, _), (_, r_recv) = _handshake()
    r_recv.n = 2**64 - 1
    with pytest.raises(RemoteProtocolError):
        r_recv.decrypt_with_ad(b"", bytes(TAG_LEN + 1))


# --- our own code misbehaves ----------------------------------------------------------


def test_message_to_the_wrong_role() -> None:
    initiator, responder, _, _ = _pair()
    other_initiator, _, _, _ = _pair()
    message_1 = initiator.write_message()
    # An initiator waiting to write must not be fed a message; a responder must not write first.
    with pytest.raises(LocalProtocolError):
        other_initiator.read_message(message_1)
    with pytest.raises(LocalProtocolError):
        responder.write_message()
    with pytest.raises(LocalProtocolError):
        initiator.write_message()  # message 2 is the responder's
    responder.read_message(message_1)  # the misuse above left the states usable
    initiator.read_message(responder.write_message())


def test_handshake_message_reflected_to_its_sender() -> None:
    initiator, _, _, _ = _pair()
    message_1 = initiator.write_message(bytes(64))  # long enough to parse as message 2
    with pytest.raises(RemoteProtocolError):
        initiator.read_message(message_1)


def test_use_after_complete_and_double_split() -> None:
    initiator, responder, _, _ = _pair()
    responder.read_message(initiator.write_message())
    with pytest.raises(LocalProtocolError):
        responder.split()
    initiator.read_message(responder.write_message())
    responder.read_message(initiator.write_message())
    with pytest.raises(LocalProtocolError):
        initiator.write_message()
    with pytest.raises(LocalProtocolError):
        responder.read_message(b"")
    initiator.split()
    with pytest.raises(LocalProtocolError):
        initiator.split()


def test_encrypting_past_the_last_nonce() -> None:
    (i_send, _), _ = _handshake()
    i_send.n = 2**64 - 2
    i_send.encrypt_with_ad(b"", b"last one")
    with pytest.raises(LocalProtocolError):
        i_send.encrypt_with_ad(b"", b"one too many")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"s": bytes(31)},
        {"e": bytes(33)},
        {"rs": bytes(16)},
        {"psks": [bytes(32)]},  # XX has no psk token
    ],
)
def test_bad_local_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        HandshakeState(PROTOCOL_NAME, initiator=True, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "Noise_XX_25519_AESGCM",
        "Noise_ZZ_25519_AESGCM_SHA256",
        "Noise_XX_25518_AESGCM_SHA256",
        "Noise_XX_25519_AES_SHA256",
        "Noise_XX_25519_AESGCM_MD5",
        "Noise_XXpsk9_25519_AESGCM_SHA256",
        "Noise_XXfallback_25519_AESGCM_SHA256",
    ],
)
def test_bad_protocol_names(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        HandshakeState(name, initiator=True, s=generate_keypair()[0])


def test_missing_static_key_for_the_pattern() -> None:
    initiator = HandshakeState(PROTOCOL_NAME, initiator=True)  # XX needs s at message 3
    responder = HandshakeState(PROTOCOL_NAME, initiator=False, s=generate_keypair()[0])
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    with pytest.raises(LocalProtocolError):
        initiator.write_message()
    with pytest.raises(LocalProtocolError):
        HandshakeState("Noise_NK_25519_AESGCM_SHA256", initiator=True)  # needs rs
