"""One-shot commands for messages, as real processes against real daemons (loopback only):
text from standard input, rooms in `export` and `history`, nicks in `--json`, and what a
command does when no node runs on the profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import trio

from p2pim.testing.daemon_process import text_from
from tests.support.cli import Spawn, introduce, one_shot, p2pim, run


async def test_send_dash_reads_the_message_from_standard_input(
    tmp_path: Path, spawn: Spawn
) -> None:
    a, b = await spawn(tmp_path / "A", "a"), await spawn(tmp_path / "B", "b")
    await introduce(a, b)
    fp_a = (await a.call("identity"))["fingerprint"]
    sent = await run(one_shot(tmp_path / "A", "send", "b", "-"), stdin=b"first line\nsecond\n")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == b"delivered\n"
    with trio.fail_after(20):
        await b.wait_event(text_from(fp_a, "first line\nsecond"))
    assert not [e for e in b.events if text_from(fp_a, "-")(e)]

    empty = await run(one_shot(tmp_path / "A", "send", "b", "-"), stdin=b"")
    assert empty.returncode == 2
    assert b"standard input was empty" in empty.stderr


async def test_export_and_history_of_a_room_by_its_name(tmp_path: Path, spawn: Spawn) -> None:
    a = await spawn(tmp_path / "A", "a")
    room = (await a.call("create_room", name="planning"))["room"]
    await a.call("post", room=room, text="the agenda")

    markdown = await run(one_shot(tmp_path / "A", "export", "planning", "--format", "markdown"))
    assert markdown.returncode == 0, markdown.stderr
    text = markdown.stdout.decode()
    assert "planning" in text.splitlines()[0]
    assert "the agenda" in text

    as_json = await run(one_shot(tmp_path / "A", "export", f"room:{room[:8]}", "--json"))
    assert as_json.returncode == 0, as_json.stderr
    assert [m["body"] for m in json.loads(as_json.stdout)] == ["the agenda"]

    history = await run(one_shot(tmp_path / "A", "history", "planning"))
    assert history.returncode == 0, history.stderr
    assert history.stdout.decode().rstrip().endswith("me: the agenda")


async def test_history_json_names_the_authors(tmp_path: Path, spawn: Spawn) -> None:
    a, b = await spawn(tmp_path / "A", "alice"), await spawn(tmp_path / "B", "bob")
    [fp_b] = await introduce(a, b)
    fp_a = (await a.call("identity"))["fingerprint"]
    with trio.fail_after(20):
        await a.call("send", peer=fp_b, text="hello bob")
        await b.wait_event(text_from(fp_a, "hello bob"))
        await b.call("send", peer=fp_a, text="hello alice")
        await a.wait_event(text_from(fp_b, "hello alice"))

    history = await run(one_shot(tmp_path / "A", "history", "bob", "--json"))
    assert history.returncode == 0, history.stderr
    rows = [(m["body"], m["author_nick"], m["peer_nick"]) for m in json.loads(history.stdout)]
    assert rows == [("hello bob", "alice", "bob"), ("hello alice", "bob", "bob")]

    found = await run(one_shot(tmp_path / "A", "search", "hello", "--json"))
    assert {m["author_nick"] for m in json.loads(found.stdout)} == {"alice", "bob"}


async def test_without_a_node_a_command_says_it_runs_one_and_no_start_refuses(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "A"
    refused = await run(one_shot(profile, "peers", "--no-start"))
    assert refused.returncode == 1
    assert refused.stdout == b""
    assert b"no p2pim node is running on this profile" in refused.stderr
    assert b"--no-start" in refused.stderr
    assert not list(profile.glob("*.db*"))
    assert not (profile / "identity.key").exists()

    ran = await run(one_shot(profile, "peers"))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == b"no peers known yet\n"
    assert b"starting one for this command" in ran.stderr
    assert b"without mDNS" in ran.stderr  # LOOPBACK has --no-discovery


async def test_a_command_to_a_running_node_loads_neither_the_node_nor_trio(
    tmp_path: Path, spawn: Spawn
) -> None:
    await spawn(tmp_path / "A", "a")
    argv = p2pim(tmp_path / "A", "room", "list", "--no-start")
    traced = await run([argv[0], "-X", "importtime", *argv[1:]])
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout.startswith(b"no rooms")
    loaded = {line.rsplit(b"|", 1)[-1].strip() for line in traced.stderr.splitlines()}
    assert b"p2pim.blocking_client" in loaded  # the trace is of a command that ran
    for heavy in (b"trio", b"p2pim.node", b"cryptography", b"textual", b"zeroconf"):
        assert heavy not in loaded, heavy


def test_the_cli_module_and_help_load_no_heavy_library() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "import p2pim.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    p2pim.cli.main(['--help'])\n"
        "heavy = ('trio', 'textual', 'zeroconf', 'cryptography', 'p2pim.node', 'sqlite3')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert loaded.stdout == b"[]\n", loaded.stderr


def test_the_cli_knows_the_rpc_error_code_for_an_unknown_peer() -> None:
    from p2pim import oneshot, rpc

    assert oneshot.UNKNOWN_PEER == rpc.UNKNOWN_PEER


async def test_a_temporary_node_goes_by_the_profiles_saved_nick(
    tmp_path: Path, spawn: Spawn
) -> None:
    first = await spawn(tmp_path / "A", "Alice Martin")  # --nick is kept in the profile
    await first.stop()
    b = await spawn(tmp_path / "B", "bob")
    peer = f"127.0.0.1:{(await b.call('identity'))['port']}"
    sent = await run(one_shot(tmp_path / "A", "send", "--peer", peer, "--wait", "5", "bob", "hi"))
    assert sent.returncode == 0, sent.stderr
    [alice] = await b.call("peers")
    assert alice["nick"] == "Alice Martin"
