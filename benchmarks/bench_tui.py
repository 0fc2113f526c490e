"""Terminal UI responsiveness: key-to-render latency while the UI receives a big file.

A p2pim UI (Textual, its node a trio guest on the UI's own loop, as `p2pim` runs it, here
headless under Textual's Pilot) receives a file of random bytes (default 1 GiB) from a
`p2pim daemon --stdio --no-discovery` process on 127.0.0.1, accepting it in the offer
modal.  A thread types into the composer, one key every 10 ms after the previous one
showed, first with the UI idle (the baseline, same process, same run), then for as long
as the transfer runs.  A sample is the time from handing the key to the app as Textual's
terminal driver does, from another thread, to the first frame rendered after the
character reached the composer (the compositor update and its terminal escape sequences,
everything but the write to a real terminal; see `FrameProbe` in tests/support/tui_harness.py).
The copy is checked (SHA-256): a wrong copy is an error, never a number.

Reported: p50, p95 and max for idle and during the transfer, the ratio during/idle (the
number to watch: 1 means the transfer costs the user nothing), the transfer's throughput
as the UI's node achieved it, and the load average before and after (run it on a quiet
machine; the temporary directory follows TMPDIR).

    python -m benchmarks.bench_tui [--size-mib N] [--samples N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run as a script: import p2pim and tests from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.tui_harness import measure_transfer_latency


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def report(document: dict[str, Any]) -> None:
    size = document["size_bytes"]
    print(f"file: {size / (1 << 20):.0f} MiB, received by the UI's node, SHA-256 checked")
    print(
        f"transfer: {document['transfer_seconds']:.2f} s, {document['mb_per_s']:.1f} MB/s, "
        f"{document['frames_during_transfer']} frames rendered meanwhile"
    )
    print(f"\n{'key-to-render (ms)':<22}{'samples':>8}{'p50':>9}{'p95':>9}{'max':>9}")
    for label, key in (("idle", "idle"), ("during transfer", "during_transfer")):
        row = document[key]
        print(
            f"  {label:<20}{row['samples']:>8}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}"
            f"{row['max_ms']:>9.2f}"
        )
    ratio = document["ratio_during_over_idle"]
    print(
        f"  {'during / idle':<20}{'':>8}{ratio.get('p50_ms', 0):>8.2f}x"
        f"{ratio.get('p95_ms', 0):>8.2f}x{ratio.get('max_ms', 0):>8.2f}x"
    )
    before, after = document["load_before"], document["load_after"]
    print(f"\nload average (1, 5, 15 min): before {before}, after {after}")


async def measure(size_mib: int, samples: int) -> dict[str, Any]:
    """The report as a dict (see `report`); "transfer_state" and "identical" tell whether
    the copy completed and is right.  For callers such as benchmarks/run_all.py."""
    before = load()
    with tempfile.TemporaryDirectory(prefix="bench_tui-") as tmp:
        result = await measure_transfer_latency(Path(tmp), size_mib << 20, samples=samples)
    return {**result.report(), "load_before": before, "load_after": load()}


async def main(size_mib: int, samples: int, json_path: Path | None) -> int:
    document = await measure(size_mib, samples)
    state, identical = document["transfer_state"], document["identical"]
    if state != "completed" or not identical:
        print(f"error: transfer {state}, identical copy: {identical}")
        return 1
    report(document)
    if json_path is not None:
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--samples", type=int, default=100, help="idle key presses (default 100)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    sys.exit(trio.run(main, args.size_mib, args.samples, args.json))
