"""The control-socket examples run for real, as subprocesses, against two real daemons on
loopback (no mDNS): drop_folder.py, announce.sh and mini_client.py drive A's node through
A's control socket, and B observes the result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from p2pim.testing.daemon_process import (
    DaemonProcess,
    Event,
    connected_to,
    since,
    start_daemon,
    text_from,
)
from tests.support import REPO

EXAMPLES = REPO / "examples"
TIMEOUT = 20  # seconds: a bound for every wait, never a delay


@dataclass
class Nodes:
    a: DaemonProcess  # the node the examples drive, through its control socket
    b: DaemonProcess  # the peer that observes
    a_profile: Path
    a_fp: str
    b_fp: str


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    """Daemons `a` and `b` on 127.0.0.1, connected to each other."""

    def argv(nick: str) -> list[str]:
        profile = tmp_path / nick
        return [sys.executable, "-m", "p2pim", "--profile", str(profile), "daemon", "--stdio"]

    loopback = ["--no-discovery", "--listen", "127.0.0.1:0"]
    async with trio.open_nursery() as nursery:
        a = await start_daemon(nursery, [*argv("a"), "--nick", "a", *loopback])
        b = await start_daemon(nursery, [*argv("b"), "--nick", "b", *loopback])
        try:
            with trio.fail_after(TIMEOUT):
                # The control socket is served before stdio answers anything.
                ident_a, ident_b = await a.call("identity"), await b.call("identity")
                a_fp, b_fp = ident_a["fingerprint"], ident_b["fingerprint"]
                await b.call("connect", host="127.0.0.1", port=ident_a["port"], fingerprint=a_fp)
                await a.wait_event(connected_to(b_fp))
            yield Nodes(a, b, tmp_path / "a", a_fp, b_fp)
        finally:
            await a.stop()
            await b.stop()
            nursery.cancel_scope.cancel()


class Lines:
    """The lines a subprocess writes, awaited one at a time."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""
        self.seen: list[str] = []

    async def wait_for(self, predicate: Callable[[str], bool]) -> str:
        while True:
            while b"\n" not in self._buffer:
                chunk = await self._stream.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"the example ended; it wrote {self.seen}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\n", 1)
            self.seen.append(line := raw.decode())
            if predicate(line):
                return line


def offers(b: DaemonProcess) -> list[Event]:
    return [e for e in b.events if e["type"] == "offer_received"]


def offered(a_fp: str, name: str) -> Callable[[Event], bool]:
    return lambda e: (
        e["type"] == "offer_received" and e["peer"] == a_fp and e["files"][0]["path"] == name
    )


def finished(offer: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "transfer_finished" and e["offer"] == offer


async def start_drop_folder(nodes: Nodes, folder: Path, *extra: str) -> trio.Process:
    argv = [sys.executable, str(EXAMPLES / "drop_folder.py"), str(folder), nodes.b_fp[:12]]
    argv += ["--profile", str(nodes.a_profile), "--settle", "1", "--interval", "0.05", *extra]
    return await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE)


async def stop(process: trio.Process) -> None:
    process.terminate()
    with trio.fail_after(TIMEOUT):
        await process.wait()


async def test_drop_folder_sends_each_settled_file_once(nodes: Nodes, tmp_path: Path) -> None:
    folder, inbox = tmp_path / "outbox", tmp_path / "inbox"
    folder.mkdir()
    inbox.mkdir()
    drop = await start_drop_folder(nodes, folder)
    try:
        assert drop.stdout is not None
        out = Lines(drop.stdout)
        # big.bin keeps growing, slowly (with pauses longer than the scan interval, shorter
        # than the settle time), until first.txt, complete from the start, has settled and
        # been sent (1 s of scans later): big.bin must not be sent before it is whole.
        content = bytearray()
        with (folder / "big.bin").open("wb") as big, trio.fail_after(TIMEOUT):
            (folder / "first.txt").write_text("first")
            async with trio.open_nursery() as nursery:

                async def keep_writing() -> None:
                    while True:
                        content.extend(chunk := os.urandom(4096))
                        big.write(chunk)
                        big.flush()
                        await trio.sleep(0.1)  # a slow writer; this synchronises nothing

                nursery.start_soon(keep_writing)
                await out.wait_for(lambda line: line.startswith("sent first.txt "))
                nursery.cancel_scope.cancel()
        with trio.fail_after(TIMEOUT):
            offer = await nodes.b.wait_event(offered(nodes.a_fp, "big.bin"))
            assert [(f["path"], f["size"]) for f in offer["files"]] == [("big.bin", len(content))]
            await nodes.b.call(
                "accept_offer", peer=nodes.a_fp, offer=offer["offer"], directory=str(inbox)
            )
            done = await nodes.b.wait_event(finished(offer["offer"]))
        assert done["state"] == "completed", done
        assert (inbox / "big.bin").read_bytes() == content

        # big.bin stays in the folder while another file settles and is sent: by the time
        # that one arrives, big.bin has been scanned again many times and never resent.
        (folder / "note.txt").write_text("second ✓\n", encoding="utf-8")
        (folder / ".hidden").write_text("never sent")
        with trio.fail_after(TIMEOUT):
            await nodes.b.wait_event(offered(nodes.a_fp, "note.txt"))
            await out.wait_for(lambda line: line.startswith("sent note.txt "))
        sent = ["first.txt", "big.bin", "note.txt"]
        assert [o["files"][0]["path"] for o in offers(nodes.b)] == sent
        assert [line.split()[1] for line in out.seen if line.startswith("sent ")] == sent
        assert "settling big.bin" in out.seen
    finally:
        await stop(drop)


async def test_drop_folder_moves_what_was_received(nodes: Nodes, tmp_path: Path) -> None:
    folder, inbox, sent = tmp_path / "outbox", tmp_path / "inbox", tmp_path / "sent"
    for directory in (folder, inbox, sent):
        directory.mkdir()
    drop = await start_drop_folder(nodes, folder, "--move-to", str(sent))
    try:
        assert drop.stdout is not None
        out = Lines(drop.stdout)
        (folder / "declined.txt").write_text("no thanks")
        with trio.fail_after(TIMEOUT):
            offer = await nodes.b.wait_event(offered(nodes.a_fp, "declined.txt"))
            await nodes.b.call("decline_offer", peer=nodes.a_fp, offer=offer["offer"])
            line = await out.wait_for(lambda line: line.startswith("failed declined.txt"))
        assert line == "failed declined.txt declined "
        assert (folder / "declined.txt").exists()  # not received: left in place

        (folder / "report.txt").write_text("all done")
        with trio.fail_after(TIMEOUT):
            offer = await nodes.b.wait_event(offered(nodes.a_fp, "report.txt"))
            await nodes.b.call(
                "accept_offer", peer=nodes.a_fp, offer=offer["offer"], directory=str(inbox)
            )
            line = await out.wait_for(lambda line: line.startswith("moved report.txt"))
        assert line == f"moved report.txt {sent / 'report.txt'}"
        assert (sent / "report.txt").read_text() == "all done"
        assert (inbox / "report.txt").read_text() == "all done"
        assert not (folder / "report.txt").exists()
        assert len(offers(nodes.b)) == 2  # declined.txt, still there, was not offered again
    finally:
        await stop(drop)


TRICKY = ['He said "hi"', "and left a \\back\\slash,", "a\nnewline", "ünïcödé ✓ 🎉 $HOME\n"]


async def announce(nodes: Nodes, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    argv = [shutil.which("sh") or "/bin/sh", str(EXAMPLES / "announce.sh"), *args]
    environment = {**os.environ, "P2PIM_PROFILE": str(nodes.a_profile), **env}
    with trio.fail_after(TIMEOUT):
        return await trio.run_process(
            argv, env=environment, capture_stdout=True, capture_stderr=True, check=False
        )


@pytest.mark.parametrize("via", ["python", "socat", "nc"])
async def test_announce_sends_the_exact_text(nodes: Nodes, via: str) -> None:
    if via != "python" and shutil.which(via) is None:
        pytest.skip(f"{via} is not installed")
    words = [*TRICKY, f"(via {via})"]
    arrived = since(nodes.b, text_from(nodes.a_fp, " ".join(words)))
    done = await announce(nodes, nodes.b_fp, *words, ANNOUNCE_VIA=via)
    assert done.returncode == 0, done
    assert b'"result":' in done.stdout
    assert b'"error"' not in done.stdout
    with trio.fail_after(TIMEOUT):
        await nodes.b.wait_event(arrived)


@pytest.mark.parametrize("tools", [(), ("socat",), ("nc", "grep")])
async def test_announce_needs_only_python3(
    nodes: Nodes, tmp_path: Path, tools: tuple[str, ...]
) -> None:
    """No jq on PATH, and perhaps no socat or nc: python3 builds the request (and talks
    to the socket when there is nothing else)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    for tool in tools:
        if (found := shutil.which(tool)) is None:
            pytest.skip(f"{tool} is not installed")
        (bin_dir / tool).symlink_to(found)
    text = " ".join(TRICKY)
    arrived = since(nodes.b, text_from(nodes.a_fp, text))
    done = await announce(nodes, "b", text, PATH=str(bin_dir))  # by nick, this time
    assert done.returncode == 0, done
    with trio.fail_after(TIMEOUT):
        await nodes.b.wait_event(arrived)


async def test_announce_fails_for_an_unknown_peer(nodes: Nodes) -> None:
    for env in ({"ANNOUNCE_VIA": "python"}, {}):  # python, and whatever is installed
        done = await announce(nodes, "nobody-here", "hello?", **env)
        assert done.returncode != 0, done
        assert b'"error":{"code":2,' in done.stdout
    usage = await announce(nodes, "only-a-peer")
    assert usage.returncode == 2
    assert b"usage:" in usage.stderr
    no_node = await announce(nodes, "b", "hi", P2PIM_PROFILE=str(nodes.a_profile / "none"))
    assert no_node.returncode == 1
    assert b"no node runs" in no_node.stderr


async def test_mini_client_prints_and_sends(nodes: Nodes) -> None:
    argv = [sys.executable, str(EXAMPLES / "mini_client.py"), "--profile", str(nodes.a_profile)]
    argv += ["--count", "1", nodes.b_fp[:8]]
    client = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert client.stdin is not None
        assert client.stdout is not None
        out = Lines(client.stdout)
        with trio.fail_after(TIMEOUT):
            await out.wait_for(lambda line: line.startswith("# ready"))
        assert out.seen[0] == f"# I am a ({nodes.a_fp[:8]})"
        assert out.seen[1] == f"# peer b ({nodes.b_fp[:8]}): online"

        typed = 'typed on stdin: "quoted" \\ ✓'
        arrived = since(nodes.b, text_from(nodes.a_fp, typed))
        await client.stdin.send_all(typed.encode() + b"\n")
        await client.stdin.aclose()  # end of input; --count 1 keeps it running
        with trio.fail_after(TIMEOUT):
            await nodes.b.wait_event(arrived)
            await nodes.b.call("send", peer=nodes.a_fp, text="hello from b, ünïcödé ✓")
            await out.wait_for(lambda line: not line.startswith("#"))
            assert await client.wait() == 0  # one message arrived: it quits by itself
        assert out.seen[-1] == "b: hello from b, ünïcödé ✓"
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
