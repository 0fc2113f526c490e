"""Run a harness's `test_one_input` on saved inputs, without libFuzzer: for line coverage
(libFuzzer leaves through `_exit`, so coverage.py never gets to save its data) and for
stepping through a crash in a debugger.

    python -m coverage run --source=p2pim/wire tests/fuzz/replay.py frames CORPUS_DIR ...
    python -m coverage report -m

The first argument names the harness (frames, messages or handshake); the others are
files or directories of inputs.  An input that fails raises, with its traceback, after
its path is printed.  See docs/fuzzing.md.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in ("frames", "messages", "handshake"):
        raise SystemExit(__doc__)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    harness = importlib.import_module(f"fuzz_{argv[0]}")
    paths = [Path(arg) for arg in argv[1:]]
    inputs = sorted(f for p in paths for f in (p.iterdir() if p.is_dir() else [p]))
    for path in inputs:
        try:
            harness.test_one_input(path.read_bytes())
        except BaseException:
            print(f"failed on {path}", file=sys.stderr)
            raise
    print(f"{len(inputs)} inputs replayed through fuzz_{argv[0]}: no failure")


if __name__ == "__main__":
    main(sys.argv[1:])
