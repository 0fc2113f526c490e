"""Pairing codes through SPAKE2 into a Noise PSK (p2pim.wire.pake).

Whatever a peer can send to `finish` must end in RemoteProtocolError, never a `spake2` or
ValueError leak; misuse by our own code ends in LocalProtocolError.  A wrong code is not
detected by SPAKE2 itself: the PSKs differ and the Noise XXpsk2 handshake fails.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pim.wire import noise
from p2pim.wire.errors import LocalProtocolError, RemoteProtocolError
from p2pim.wire.pake import (
    MESSAGE_LEN,
    PAIRING_MAGIC,
    PSK_LEN,
    Pairing,
    format_code,
    generate_code,
    normalize_code,
)

PSK_PROTOCOL = "Noise_XXpsk2_25519_AESGCM_SHA256"  # what p2pim pairs with
# Field prime of Curve25519/Ed25519; encodings of y >= P are non-canonical.
P = 2**255 - 19


def _exchange(code_i: str, code_r: str) -> tuple[Pairing, Pairing, bytes, bytes]:
    initiator = Pairing(code_i, initiator=True)
    responder = Pairing(code_r, initiator=False)
    psk_i = initiator.finish(responder.message())
    psk_r = responder.finish(initiator.message())
    return initiator, responder, psk_i, psk_r


# --- the exchange ---------------------------------------------------------------------


def test_same_code_same_psk_and_transcript() -> None:
    initiator, responder, psk_i, psk_r = _exchange("493027", "493-027")
    assert psk_i == psk_r
    assert len(psk_i) == PSK_LEN
    assert initiator.transcript() == responder.transcript()
    assert initiator.transcript() == initiator.message() + responder.message()
    assert len(initiator.transcript()) == 2 * MESSAGE_LEN


def test_wrong_code_different_psk_without_raising() -> None:
    _, _, psk_i, psk_r = _exchange("493027", "493028")
    assert psk_i != psk_r


def test_every_run_gives_a_fresh_psk() -> None:
    _, _, first, _ = _exchange("111111", "111111")
    _, _, second, _ = _exchange("111111", "111111")
    assert first != second


def test_message_is_stable_and_side_tagged() -> None:
    initiator = Pairing("123456", initiator=True)
    responder = Pairing("123456", initiator=False)
    assert initiator.message() == initiator.message()
    assert len(initiator.message()) == len(responder.message()) == MESSAGE_LEN
    assert initiator.message()[:1] == b"A"
    assert responder.message()[:1] == b"B"


def test_finish_twice_is_local_error() -> None:
    initiator = Pairing("123456", initiator=True)
    responder = Pairing("123456", initiator=False)
    initiator.finish(responder.message())
    with pytest.raises(LocalProtocolError):
        initiator.finish(responder.message())


def test_finish_after_a_failed_finish_is_local_error() -> None:
    # One guess per attempt: a rejected message consumes the pairing.
    initiator = Pairing("123456", initiator=True)
    responder = Pairing("123456", initiator=False)
    with pytest.raises(RemoteProtocolError):
        initiator.finish(b"")
    with pytest.raises(LocalProtocolError):
        initiator.finish(responder.message())


def test_transcript_before_finish_is_local_error() -> None:
    initiator = Pairing("123456", initiator=True)
    with pytest.raises(LocalProtocolError):
        initiator.transcript()
    with pytest.raises(RemoteProtocolError):
        initiator.finish(b"B")
    with pytest.raises(LocalProtocolError):
        initiator.transcript()


def test_pairing_rejects_a_malformed_code() -> None:
    with pytest.raises(ValueError, match="6 digits"):
        Pairing("12a456", initiator=True)


# --- malformed peer messages ----------------------------------------------------------


def _valid_responder_message() -> bytes:
    return Pairing("123456", initiator=False).message()


def _malformed() -> list[tuple[str, bytes]]:
    good = _valid_responder_message()
    return [
        ("empty", b""),
        ("side byte only", b"B"),
        ("truncated", good[:-1]),
        ("half", good[:17]),
        ("oversized by one", good + b"\x00"),
        ("oversized", good + bytes(1000)),
        ("unknown side", b"C" + good[1:]),
        ("no side byte", good[1:] + b"\x00"),
        ("identity element", b"B" + bytes(32)),
        ("neutral point y=1", b"B" + (1).to_bytes(32, "little")),
        ("low order y=-1", b"B" + (P - 1).to_bytes(32, "little")),
        # y = p+1 is a second encoding of the neutral point, which spake2 alone accepts.
        ("non-canonical y=p+1", b"B" + (P + 1).to_bytes(32, "little")),
        ("non-canonical x=0 with sign bit", b"B" + (1 | 1 << 255).to_bytes(32, "little")),
        ("all ones", b"B" + b"\xff" * 32),
        ("not on the curve y=2", b"B" + (2).to_bytes(32, "little")),
    ]


@pytest.mark.parametrize(("name", "message"), _malformed(), ids=[n for n, _ in _malformed()])
def test_malformed_peer_message_is_remote_error(name: str, message: bytes) -> None:
    initiator = Pairing("123456", initiator=True)
    with pytest.raises(RemoteProtocolError):
        initiator.finish(message)


def test_message_from_the_same_side_is_remote_error() -> None:
    initiator = Pairing("123456", initiator=True)
    other_initiator = Pairing("123456", initiator=True)
    with pytest.raises(RemoteProtocolError):
        initiator.finish(other_initiator.message())
    responder = Pairing("123456", initiator=False)
    other_responder = Pairing("123456", initiator=False)
    with pytest.raises(RemoteProtocolError):
        responder.finish(other_responder.message())


def test_reflected_message_is_remote_error() -> None:
    initiator = Pairing("123456", initiator=True)
    with pytest.raises(RemoteProtocolError):
        initiator.finish(initiator.message())
    initiator = Pairing("123456", initiator=True)
    with pytest.raises(RemoteProtocolError):
        initiator.finish(b"B" + initiator.message()[1:])


@settings(max_examples=200, deadline=None)
@given(
    message=st.one_of(
        st.binary(max_size=100),
        st.binary(min_size=32, max_size=32).map(lambda body: b"B" + body),
    )
)
def test_arbitrary_peer_message_is_psk_or_remote_error(message: bytes) -> None:
    initiator = Pairing("123456", initiator=True)
    try:
        psk = initiator.finish(message)
    except RemoteProtocolError:
        return
    assert len(psk) == PSK_LEN
    assert initiator.transcript() == initiator.message() + message


# --- codes ----------------------------------------------------------------------------


def test_generated_codes_are_six_ascii_digits() -> None:
    for _ in range(50):
        code = generate_code()
        assert len(code) == 6
        assert all(c in "0123456789" for c in code)


def test_generated_codes_length_is_configurable() -> None:
    code = generate_code(8)
    assert len(code) == 8
    assert normalize_code(code, digits=8) == code.encode()
    with pytest.raises(ValueError, match="at least 6 digits"):
        generate_code(4)


def test_generated_codes_look_random() -> None:
    codes = [generate_code() for _ in range(300)]
    # 300 draws from 10**6: a collision has probability ~4.5 %, three or more are
    # vanishingly unlikely; a constant or low-entropy generator fails at once.
    assert len(set(codes)) >= 297
    digits = "".join(codes)
    assert set(digits) == set("0123456789")
    # Each digit appears about 180 times in 1800; bounds far outside chance.
    assert all(80 < digits.count(d) < 300 for d in "0123456789")


def test_format_code_round_trips() -> None:
    assert format_code("493027") == "493-027"
    code = generate_code()
    assert normalize_code(format_code(code)) == code.encode()


@pytest.mark.parametrize("text", ["123456", "123 456", "123-456", " 123-456 ", "1-2-3 4 5 6"])
def test_normalize_accepts_separators(text: str) -> None:
    assert normalize_code(text) == b"123456"


@pytest.mark.parametrize(
    "text",
    [
        "12a456",
        "12345",
        "1234567",
        "",
        "------",
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "12345\u0666",
        "123_456",
    ],
)
def test_normalize_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="6 digits"):
        normalize_code(text)


# --- end to end with Noise XXpsk2 -----------------------------------------------------


def _noise_pair(
    code_i: str, code_r: str
) -> tuple[noise.HandshakeState, noise.HandshakeState, bytes, bytes]:
    pair_i, pair_r, psk_i, psk_r = _exchange(code_i, code_r)
    s_i, pub_i = noise.generate_keypair()
    s_r, pub_r = noise.generate_keypair()
    hs_i = noise.HandshakeState(
        PSK_PROTOCOL,
        initiator=True,
        prologue=PAIRING_MAGIC + pair_i.transcript(),
        s=s_i,
        psks=[psk_i],
    )
    hs_r = noise.HandshakeState(
        PSK_PROTOCOL,
        initiator=False,
        prologue=PAIRING_MAGIC + pair_r.transcript(),
        s=s_r,
        psks=[psk_r],
    )
    return hs_i, hs_r, pub_i, pub_r


def test_noise_handshake_completes_with_the_same_code() -> None:
    hs_i, hs_r, pub_i, pub_r = _noise_pair("493027", "493 027")
    assert hs_r.read_message(hs_i.write_message(b"")) == b""
    assert hs_i.read_message(hs_r.write_message(b"two")) == b"two"
    assert hs_r.read_message(hs_i.write_message(b"three")) == b"three"
    assert hs_i.complete
    assert hs_r.complete
    assert hs_i.remote_static == pub_r
    assert hs_r.remote_static == pub_i
    send_i, recv_i = hs_i.split()
    send_r, recv_r = hs_r.split()
    assert recv_r.decrypt_with_ad(b"", send_i.encrypt_with_ad(b"", b"hi")) == b"hi"
    assert recv_i.decrypt_with_ad(b"", send_r.encrypt_with_ad(b"", b"yo")) == b"yo"


def test_noise_handshake_fails_with_a_different_code() -> None:
    hs_i, hs_r, _, _ = _noise_pair("493027", "493028")
    hs_r.read_message(hs_i.write_message(b""))
    # psk2: the PSK is mixed in at the end of message 2, so the initiator detects the wrong
    # code there and never sends message 3 (which would carry its static key).
    with pytest.raises(RemoteProtocolError):
        hs_i.read_message(hs_r.write_message(b""))
    assert not hs_i.complete
    assert hs_i.remote_static is None


def test_noise_handshake_fails_when_the_transcript_differs() -> None:
    # A man in the middle who relays different SPAKE2 messages to each side changes the
    # prologue even if the PSKs were to agree; the handshake must not complete.
    pair_i, _, psk_i, psk_r = _exchange("493027", "493027")
    s_i, _ = noise.generate_keypair()
    s_r, _ = noise.generate_keypair()
    hs_i = noise.HandshakeState(
        PSK_PROTOCOL,
        initiator=True,
        prologue=PAIRING_MAGIC + pair_i.transcript(),
        s=s_i,
        psks=[psk_i],
    )
    hs_r = noise.HandshakeState(
        PSK_PROTOCOL,
        initiator=False,
        prologue=PAIRING_MAGIC + bytes(2 * MESSAGE_LEN),
        s=s_r,
        psks=[psk_r],
    )
    # psk mode mixes e into the key, so even message 1's (empty) payload is sealed under
    # the prologue hash: the responder rejects the very first message.
    with pytest.raises(RemoteProtocolError):
        hs_r.read_message(hs_i.write_message(b""))
    assert not hs_r.complete
