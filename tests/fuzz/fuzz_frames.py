#!/usr/bin/env python3
"""Atheris harness: the frame decoder (`p2pim.wire.framing`) fed any stream, cut any way.

    pip install atheris
    python tests/fuzz/fuzz_frames.py [CORPUS_DIR ...] -max_total_time=600

The input chooses the frame limit, after how many reads it is raised to the maximum (as a
connection does after its handshake), how the stream is cut into reads, and the stream:
raw bytes, or a small program of frames, headers and junk.  The oracle is the one the CI
property uses (`check_frame_stream` in tests/wire/test_fuzz_properties.py: a reference parser,
the error at the read that completes a bad header, bounded buffering).
`RemoteProtocolError` is the expected answer to bad bytes; any other exception, or a failed
assertion, is a crash.  See docs/fuzzing.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # p2pim and the shared oracles (tests.wire)

with atheris.instrument_imports(
    include=["p2pim.wire", "tests.wire.test_fuzz_properties", "tests.support.wire"]
):
    import tests.wire.test_fuzz_properties as oracle
    from p2pim.wire.connection import MAX_HANDSHAKE_FRAME
    from p2pim.wire.framing import MAX_FRAME_SIZE

SPECIAL_LIMITS = (1, 2, 3, 255, 256, MAX_HANDSHAKE_FRAME, MAX_FRAME_SIZE - 1, MAX_FRAME_SIZE)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    pick = fdp.ConsumeIntInRange(0, len(SPECIAL_LIMITS))
    if pick < len(SPECIAL_LIMITS):
        limit = SPECIAL_LIMITS[pick]
    else:
        limit = fdp.ConsumeIntInRange(1, MAX_FRAME_SIZE)
    raise_at = fdp.ConsumeIntInRange(0, 25)
    plan = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 32))
    raw = fdp.ConsumeBool()
    rest = fdp.ConsumeBytes(fdp.remaining_bytes())
    stream = rest if raw else oracle.build_stream(rest, limit)
    oracle.check_frame_stream(stream, limit, plan, raise_at)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
