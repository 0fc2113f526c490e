"""A drop folder: every file that appears in a directory is sent to one peer.

    python examples/drop_folder.py [--profile DIR] [--settle 1.0] [--interval 0.2]
                                   [--move-to DONE_DIR] FOLDER PEER

It drives the user's running node (`p2pim daemon`) through the control socket of its
profile (default: the standard profile), with `send_files`. PEER is a fingerprint, a
fingerprint prefix or a nick (scripts should prefer fingerprints: docs/api.md).

The folder is polled every `--interval` seconds. A file is sent once its size and
modification time have not changed for `--settle` seconds, so a file still being copied
in is not offered half-written. Hidden files (".name") and subfolders are ignored. Sent
files are remembered by name, size and mtime while the script runs, so each version of a
file is sent once; with `--move-to`, a file is moved there once the peer has received it
all (`transfer_finished`, state `completed`). Leave files in place until then: the node
reads them when the peer downloads them. Progress goes to stdout, one line each:
"settling NAME", "sent NAME OFFER", "moved NAME DEST", "failed NAME STATE REASON".
"""

from __future__ import annotations

import argparse
import contextlib
import stat
import sys
from pathlib import Path

import trio

from p2pim.client import RpcClient, RpcFailed, connect
from p2pim.config import default_profile_dir
from p2pim.control import socket_path

Version = tuple[str, int, int]  # name, size, mtime (ns): what "the same file" means here


def scan(folder: Path) -> dict[str, Version]:
    versions = {}
    for entry in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):  # gone between listing and stat
            st = entry.lstat()
            if stat.S_ISREG(st.st_mode) and not entry.name.startswith("."):
                versions[entry.name] = (entry.name, st.st_size, st.st_mtime_ns)
    return versions


def settle_moves(node: RpcClient, waiting: dict[str, Path], move_to: Path) -> None:
    """Move the files of every offer the peer has finished with (if it completed)."""
    finished = [e for e in node.events if e["type"] == "transfer_finished" and e["outgoing"]]
    node.events.clear()  # this client accumulates events; keep only what is still needed
    for event in finished:
        if (path := waiting.pop(event["offer"], None)) is None:
            continue
        if event["state"] == "completed":
            dest = move_to / path.name
            if dest.exists():  # never overwrite an earlier file of the same name
                dest = move_to / f"{event['offer'][:8]}-{path.name}"
            try:
                path.rename(dest)  # --move-to must be on the same file system
                print("moved", path.name, dest, flush=True)
            except OSError as exc:
                print("failed", path.name, "move", exc, flush=True)
        else:
            print("failed", path.name, event["state"], event["reason"], flush=True)


async def main(args: argparse.Namespace) -> None:
    folder = args.folder.resolve()  # the node resolves relative paths against *its* cwd
    async with connect(socket_path(args.profile)) as node:
        if args.move_to:
            args.move_to.mkdir(parents=True, exist_ok=True)
            await node.call("subscribe")
        sent: set[Version] = set()
        seen: dict[str, tuple[Version, float]] = {}  # name -> last version, since when
        waiting: dict[str, Path] = {}  # offer -> file to move once it is received
        while not node.closed.is_set():
            now = trio.current_time()
            versions = scan(folder)
            seen = {n: s for n, s in seen.items() if n in versions}  # forget deleted files
            for name, version in sorted(versions.items()):
                if version in sent:
                    continue
                if name not in seen:
                    print("settling", name, flush=True)
                if seen.get(name, (None,))[0] != version:
                    seen[name] = (version, now)  # new or changed: start settling again
                elif now - seen[name][1] >= args.settle:
                    sent.add(version)
                    del seen[name]  # a later version settles (and is announced) afresh
                    paths = [str(folder / name)]
                    try:
                        result = await node.call("send_files", peers=[args.peer], paths=paths)
                    except RpcFailed as exc:
                        if exc.code != 7:  # unknown peer, key changed...: give up
                            raise
                        print("failed", name, "refused", exc.message, flush=True)
                        continue
                    print("sent", name, result["offer"], flush=True)
                    if args.move_to:
                        waiting[result["offer"]] = folder / name
            if args.move_to:
                settle_moves(node, waiting, args.move_to)
            await trio.sleep(args.interval)
        raise EOFError("the node has gone")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the directory to watch")
    parser.add_argument("peer", help="fingerprint, fingerprint prefix or nick")
    parser.add_argument("--profile", type=Path, default=default_profile_dir())
    parser.add_argument("--settle", type=float, default=1.0, help="seconds unchanged (1)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between scans")
    parser.add_argument("--move-to", type=Path, help="move files here once received")
    try:
        trio.run(main, parser.parse_args())
    except* KeyboardInterrupt:
        pass
    except* (OSError, RpcFailed, EOFError) as group:  # no node running, unknown peer...
        sys.exit(f"drop_folder: {group.exceptions[0]}")
