"""Running a one-shot command (`p2pim send`, `receive`, `room post`, `transfer list`...):
reach the profile's node, hand the command a `Job`, turn failures into exit codes.

The commands are blocking functions of a `Job` (p2pim.commands.*).  They talk JSON-RPC
to the node running on the profile through its control socket; when none runs, a node
runs in a thread of this process just long enough (p2pim.oneshot_node), serving the same
socket, so every command has one code path.  That temporary node is announced on stderr
and `--no-start` refuses it.  Talking to a running node loads no trio, no node and no
crypto library: such a command answers in a few tens of milliseconds.

Exit codes: 0 success, 1 the operation failed (or no node runs and --no-start), 2 bad
usage or an unknown or ambiguous name, 3 nothing arrived in time (`receive --timeout`),
130 interrupted (docs/api.md, "Command line").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pim import profile as profiles
from p2pim.blocking_client import BlockingClient, RpcFailed

OK, FAILED, USAGE, TIMED_OUT, INTERRUPTED = 0, 1, 2, 3, 130
UNKNOWN_PEER = 2  # p2pim.rpc.UNKNOWN_PEER (not imported: it loads the node; a test checks)
NO_NODE = "no p2pim node is running on this profile"
CONNECT_PATIENCE = 10.0  # a node holding the profile lock may still be binding its socket
POLL_INTERVAL = 0.05


class CommandError(Exception):
    """The command failed: a message for the user, and the exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Job:
    rpc: BlockingClient
    args: argparse.Namespace
    profile: Path
    temporary: bool  # the node runs only for this command

    def show(self, result: Any, text: str) -> None:
        """The result on stdout: as JSON with --json, else as text for people."""
        print(json.dumps(result) if self.args.json else text, flush=True)

    @property
    def discovery(self) -> bool:
        """Does the node use mDNS?  (A temporary one does unless --no-discovery.)"""
        return bool(self.rpc.call("identity")["discovery"])


Command = Callable[[Job], int]


def run(command: Command, args: argparse.Namespace, profile: Path) -> int:
    """Run `command` against the profile's node to the end; its exit code.  Failures are
    reported on stderr."""
    try:
        with reach_node(profile, args) as (rpc, temporary):
            try:
                return command(Job(rpc, args, profile, temporary))
            except RpcFailed as exc:
                if exc.code != UNKNOWN_PEER:
                    raise
                hint = "" if "ambiguous" in exc.message else " (`p2pim peers` lists known peers)"
                raise CommandError(exc.message + hint, USAGE) from None
    except BaseException as exc:
        return exit_code(exc)


def run_direct(
    command: Callable[[argparse.Namespace, Path], int], args: argparse.Namespace, profile: Path
) -> int:
    """Run a command that reaches the node itself (or does without one): `status`."""
    try:
        return command(args, profile)
    except BaseException as exc:
        return exit_code(exc)


def exit_code(exc: BaseException) -> int:
    """Report a failure on stderr and return its exit code; re-raise the unexpected."""
    error = exc
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]  # trio's nurseries (in a temporary node) wrap errors
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(error, CommandError):
        code, message = error.code, str(error)
    elif isinstance(error, RpcFailed):
        code, message = (USAGE if error.code == UNKNOWN_PEER else FAILED), error.message
    elif isinstance(error, (OSError, EOFError)):
        code, message = FAILED, str(error)
    else:
        raise exc
    print(f"p2pim: {message}", file=sys.stderr)
    return code


# ---- reaching the profile's node ---------------------------------------------------------


@contextlib.contextmanager
def reach_node(profile: Path, args: argparse.Namespace) -> Iterator[tuple[BlockingClient, bool]]:
    """(a client of the profile's node, whether that node runs only for this command).
    Taking the profile's lock decides, with no race: if we get it, no node runs."""
    with contextlib.ExitStack() as lock:
        try:
            lock.enter_context(profiles.hold_profile(profile))
        except profiles.ProfileInUse:
            with running_node_client(profile) as client:
                yield client, False
            return
        if getattr(args, "no_start", False):
            raise CommandError(f"{NO_NODE} (and --no-start says not to run one)")
        print(f"p2pim: {temporary_node_notice(args)}", file=sys.stderr, flush=True)
        from p2pim.config import node_config  # loads the node's configuration only now
        from p2pim.oneshot_node import BadSetting, TemporaryNode  # loads trio and the node

        node = TemporaryNode(
            profile, socket_path(profile), node_config(args), args.peer, nick=args.nick
        )
        try:
            path = lock.enter_context(node)
        except BadSetting as exc:
            raise CommandError(str(exc), USAGE) from None
        with BlockingClient.connect(path) as client:
            yield client, True


def temporary_node_notice(args: argparse.Namespace) -> str:
    if args.no_discovery:
        seen = "without mDNS, it reaches --peer and remembered peers only"
    else:
        seen = "it announces itself on the local network (mDNS) until the command ends"
    return (
        f"{NO_NODE}: starting one for this command; {seen} "
        "(--no-start refuses; `p2pim daemon` keeps a node running)"
    )


@contextlib.contextmanager
def running_node_client(profile: Path) -> Iterator[BlockingClient]:
    """A client of the node already running on `profile`, which may still be starting."""
    path = socket_path(profile)
    deadline = time.monotonic() + CONNECT_PATIENCE
    while True:
        try:
            client = BlockingClient.connect(path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if not profiles.node_running(profile):
                raise CommandError("the p2pim node of this profile has stopped") from None
            if time.monotonic() > deadline:
                raise CommandError(
                    f"the p2pim node of this profile does not answer on {path}"
                ) from None
            time.sleep(POLL_INTERVAL)  # polling a socket another process is binding
    with client:
        yield client


def socket_path(profile: Path) -> Path:
    path = profiles.socket_path(profile)
    if len(os.fsencode(path)) > profiles.MAX_SOCKET_PATH:
        raise CommandError(f"the profile path is too long for a control socket: {path}")
    return path


# ---- helpers the commands share ----------------------------------------------------------


def text_argument(text: str, what: str = "message") -> str:
    """The text of a message: the argument itself, or standard input for `-` (up to its
    end; trailing newlines dropped, so `echo hi | p2pim send bob -` sends "hi")."""
    if text != "-":
        return text
    if sys.stdin.isatty():
        print(f"p2pim: type the {what}, then Ctrl-D on a line of its own", file=sys.stderr)
    try:
        read = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"standard input is not UTF-8 text: no {what} sent", USAGE) from None
    read = read.rstrip("\r\n")
    if not read:
        raise CommandError(f"standard input was empty: no {what} sent", USAGE)
    return read


def deadline_after(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds
