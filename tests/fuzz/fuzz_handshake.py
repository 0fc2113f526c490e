#!/usr/bin/env python3
"""Atheris harness: two `p2pim.wire.connection.Connection`s wired through an adversary.

    pip install atheris
    python tests/fuzz/fuzz_handshake.py [CORPUS_DIR ...] -max_total_time=600

The input is a script for the adversary between an initiator and a responder (keys made
once, at start-up): deliver, coalesce, send a message, or drop, duplicate, reorder,
bit-flip, truncate, extend, replace, inject raw bytes, replay, reflect, splice in a frame
of another session, or put a low-order key in place of an ephemeral one; or one side is
itself malicious and seals any payload it likes, a bad Hello included.  Sometimes the
responder is an impostor, sometimes the handshake completes before the attacks start.
The oracle is the CI property's (`run_link` in tests/wire/test_fuzz_properties.py): every
`Established` names the real peer, every message is the peer's next one, a forged or
misplaced whole frame fails at once, an undisturbed link completes.

One input in sixteen pairs instead (SPAKE2 code, then Noise XXpsk2), with the same or a
different code on each side and the adversary flipping, cutting, replacing or dropping
frames: a wrong code or a touched frame must never complete, and a completed pairing
names the real peer.  Pairing costs two SPAKE2 runs (milliseconds), so it is rare.

`RemoteProtocolError` is the expected answer to anything bad; any other exception, or a
failed assertion, is a crash.  See docs/fuzzing.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # p2pim and the shared oracles (tests.wire)

with atheris.instrument_imports(
    include=["p2pim.wire", "tests.wire.test_fuzz_properties", "tests.support.wire"]
):
    import tests.wire.test_fuzz_properties as oracle
    from p2pim.wire.connection import Connection, Established, State
    from p2pim.wire.errors import RemoteProtocolError
    from p2pim.wire.messages import Message
    from p2pim.wire.pake import Pairing

KINDS = oracle.FAITHFUL + oracle.ATTACKS
HELLOS = oracle.HELLOS
EVILS = ("", "", "", "", "", "", *oracle.EVIL_HELLOS)  # a malicious peer's Hello, if any
CODES = ("123456", "654321")
LIVE = (State.HANDSHAKE, State.ESTABLISHED)


def pair_through_an_adversary(fdp: Any) -> None:
    same_code = fdp.ConsumeBool()
    willing = fdp.ConsumeIntInRange(0, 7) != 0  # the responder may refuse to pair
    initiator = Connection(
        initiator=True,
        static_private=oracle.I_KEY,
        hello=HELLOS[0],
        pairing=Pairing(CODES[0], initiator=True),
    )
    code = CODES[0] if same_code else CODES[1]
    responder = Connection(
        initiator=False,
        static_private=oracle.R_KEY,
        hello=HELLOS[1],
        on_pairing_request=lambda: Pairing(code, initiator=False) if willing else None,
    )
    conns = (initiator, responder)
    pubs, tampered = (oracle.I_PUB, oracle.R_PUB), False
    established: list[Established | None] = [None, None]
    sent: list[list[Message]] = [[], []]
    received: list[list[Message]] = [[], []]
    for step in range(10):
        src = step % 2
        dst = 1 - src
        if conns[src].state is State.ESTABLISHED and fdp.ConsumeBool():
            message = oracle.POOL[fdp.ConsumeIntInRange(0, len(oracle.POOL) - 2)]  # no bye
            conns[src].send(message)
            sent[src].append(message)
        data = conns[src].data_to_send()
        if not data or conns[dst].state not in LIVE:
            continue
        move = fdp.ConsumeIntInRange(0, 7) if fdp.remaining_bytes() else 0
        at = fdp.ConsumeIntInRange(0, len(data) - 1)
        if move == 4:  # flip a bit
            data = data[:at] + bytes([data[at] ^ 1 << fdp.ConsumeIntInRange(0, 7)]) + data[at + 1 :]
        elif move == 5:  # cut short
            data = data[:at]
        elif move == 6:  # replace from `at` on
            data = data[:at] + fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 64))
        elif move == 7:  # drop
            data = b""
        tampered = tampered or move >= 4
        if not data:
            continue
        try:
            events = conns[dst].receive_data(data)
        except RemoteProtocolError:
            assert conns[dst].state is State.ERROR
            continue
        for event in events:
            if isinstance(event, Established):
                assert established[dst] is None
                assert same_code
                assert willing
                assert event == Established(pubs[src], HELLOS[src])
                assert conns[dst].paired
                established[dst] = event
            else:
                assert established[dst] is not None
                assert event == sent[src][len(received[dst])]
                received[dst].append(event)
    if same_code and willing and not tampered:
        assert established[0] is not None
        assert established[1] is not None
        assert initiator.handshake_hash == responder.handshake_hash


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 15)
    if mode == 0:
        pair_through_an_adversary(fdp)
        return
    impostor = mode == 1
    vet_responder = bool(mode & 2)
    handshake_first = bool(mode & 4)
    hellos = (HELLOS[fdp.ConsumeIntInRange(0, 2)], HELLOS[fdp.ConsumeIntInRange(0, 2)])
    evil = (EVILS[fdp.ConsumeIntInRange(0, 8)], EVILS[fdp.ConsumeIntInRange(0, 8)])
    attack_from = fdp.ConsumeIntInRange(0, 32)
    actions: list[tuple[str, int, int, bytes]] = []
    while fdp.remaining_bytes() and len(actions) < 48:
        kind = KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)]
        direction = fdp.ConsumeIntInRange(0, 1)
        n = fdp.ConsumeIntInRange(0, 2**20)
        blob = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80))
        actions.append((kind, direction, n, blob))
    oracle.run_link(actions, attack_from, handshake_first, hellos, impostor, vet_responder, evil)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
