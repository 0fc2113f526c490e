"""Runs p2pim.wire.noise against vendored public Noise test vectors (tests/wire/vectors/).

Each vector is its own test: both sides are built from the vector's keys, the handshake
messages must match byte for byte, then the transport messages through split() states.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from p2pim.wire.noise import CipherState, HandshakeState

VECTORS = Path(__file__).parent / "vectors"
# Exact counts, so a broken or emptied file can never pass by running nothing.
EXPECTED_COUNTS = {"cacophony-xx-25519.json": 16, "snow-xx-25519.json": 40}


def _load() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for filename in EXPECTED_COUNTS:
        data = json.loads((VECTORS / filename).read_text())
        cases += [(filename, vector) for vector in data["vectors"]]
    return cases


CASES = _load()


def _name(vector: dict[str, Any]) -> str:
    # cacophony says "name", snow says "protocol_name".
    name = vector.get("protocol_name", vector.get("name"))
    assert isinstance(name, str)
    return name


def _opt(vector: dict[str, Any], key: str) -> bytes | None:
    value = vector.get(key)
    return None if value is None else bytes.fromhex(value)


def _psks(vector: dict[str, Any], side: str) -> list[bytes]:
    # snow lists "init_psks"; cacophony gives a single "init_psk".
    if f"{side}_psks" in vector:
        return [bytes.fromhex(p) for p in vector[f"{side}_psks"]]
    if f"{side}_psk" in vector:
        return [bytes.fromhex(vector[f"{side}_psk"])]
    return []


def _side(vector: dict[str, Any], side: str) -> HandshakeState:
    known = {"prologue", "psk", "psks", "static", "ephemeral", "remote_static"}
    unknown = {k for k in vector if k.startswith(side + "_") and k[len(side) + 1 :] not in known}
    # Fail loudly on a feature (e.g. a remote ephemeral pre-message) this harness ignores.
    assert not unknown, f"vector uses fields this test does not handle: {unknown}"
    return HandshakeState(
        _name(vector),
        initiator=side == "init",
        prologue=bytes.fromhex(vector.get(f"{side}_prologue", "")),
        s=_opt(vector, f"{side}_static"),
        e=_opt(vector, f"{side}_ephemeral"),
        rs=_opt(vector, f"{side}_remote_static"),
        psks=_psks(vector, side),
    )


def test_vector_counts() -> None:
    for filename, expected in EXPECTED_COUNTS.items():
        assert sum(f == filename for f, _ in CASES) == expected, filename
    names = [(f, _name(v)) for f, v in CASES]
    assert len(set(names)) == len(names), "duplicate vector in a file"


@pytest.mark.parametrize(
    ("filename", "vector"), CASES, ids=[f"{f.split('-')[0]}:{_name(v)}" for f, v in CASES]
)
def test_vector(filename: str, vector: dict[str, Any]) -> None:
    name = _name(vector)
    pattern = name.split("_")[1]
    one_way = re.fullmatch(r"[NKX](psk\d+)?", pattern) is not None
    initiator, responder = _side(vector, "init"), _side(vector, "resp")
    messages = vector["messages"]
    assert messages, "vector without messages"

    transport: dict[bool, tuple[CipherState, CipherState]] = {}
    for i, message in enumerate(messages):
        payload = bytes.fromhex(message["payload"])
        expected = bytes.fromhex(message["ciphertext"])
        init_sends = True if one_way else i % 2 == 0
        if not initiator.complete:
            sender, receiver = (initiator, responder) if init_sends else (responder, initiator)
            assert sender.write_message(payload).hex() == expected.hex(), f"message {i}"
            assert receiver.read_message(expected) == payload, f"message {i}"
            if initiator.complete:
                assert responder.complete
                assert initiator.handshake_hash == responder.handshake_hash
                if "handshake_hash" in vector:
                    assert initiator.handshake_hash.hex() == vector["handshake_hash"]
                transport = {True: initiator.split(), False: responder.split()}
        else:
            send = transport[init_sends][0]
            receive = transport[not init_sends][1]
            assert send.encrypt_with_ad(b"", payload).hex() == expected.hex(), f"message {i}"
            assert receive.decrypt_with_ad(b"", expected) == payload, f"message {i}"
    assert initiator.complete, "vector ended mid-handshake"
    assert responder.complete, "vector ended mid-handshake"
