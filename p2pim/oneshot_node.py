"""A node run in a thread of a one-shot command's process, for as long as the command
runs, when none runs on the profile.  It serves the profile's control socket, as the
daemon does, so the command talks to it exactly as to a running node."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import trio

from p2pim import control
from p2pim import identity as ident
from p2pim.config import NodeConfig, database_path
from p2pim.node import Node
from p2pim.settings import who_i_am

POLL_INTERVAL = 0.05


class BadSetting(ValueError):
    """A setting the node refuses (--nick, --presence-timeout, a --peer address)."""


class TemporaryNode:
    """`with TemporaryNode(...) as socket:` runs a node (the caller holds the profile's
    lock) until the block is left; then the node says goodbye to its peers and stops.
    The node runs `trio.run` in its own thread; signals stay with the main thread, so
    Ctrl-C reaches the command, which leaves the block."""

    def __init__(
        self,
        profile: Path,
        socket: Path,
        config: NodeConfig,
        peers: Sequence[tuple[str, int]],
        *,
        nick: str | None = None,
    ) -> None:
        self._profile = profile
        self._nick = nick  # --nick, for this run only; else the profile's saved nick
        self._config = config
        self._peers = list(peers)
        self._path = socket
        self._ready = threading.Event()  # serving, or failed to start
        self._lock = threading.Lock()
        self._stop_asked = False
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="p2pim-node", daemon=True)

    def __enter__(self) -> Path:
        self._thread.start()
        try:
            self._ready.wait()
        except BaseException:  # Ctrl-C while it starts
            self._shut_down()
            raise
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self._path

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._shut_down()
        if exc is None and self._error is not None:
            raise self._error

    def _shut_down(self) -> None:
        with self._lock:
            self._stop_asked = True
            token, stop = self._token, self._stop
        if token is not None and stop is not None:
            with contextlib.suppress(trio.RunFinishedError):  # it has stopped already
                trio.from_thread.run_sync(stop.set, trio_token=token)
        self._thread.join()

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # handed to the command's thread
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        try:
            # The profile's saved nick and status (a --nick here is for this run only).
            who_i_am(self._profile, self._config, self._nick, remember=False)
            node = Node(
                ident.load_or_create(self._profile),
                self._config,
                store_path=database_path(self._profile),
            )
        except ValueError as exc:  # --nick, --presence-timeout
            raise BadSetting(str(exc)) from None
        stop = trio.Event()
        with self._lock:
            self._token, self._stop = trio.lowlevel.current_trio_token(), stop
            if self._stop_asked:
                stop.set()
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run_then_cancel, nursery.cancel_scope)
            try:
                await nursery.start(control.serve_control, node, self._path)
                await _reach_manual_peers(
                    node, self._peers, patience=2 * node.config.handshake_timeout
                )
                self._ready.set()
                await stop.wait()
            finally:
                await node.stop()


async def _reach_manual_peers(
    node: Node, peers: Sequence[tuple[str, int]], *, patience: float
) -> None:
    """Remember the `--peer` addresses and give each one a chance to answer (a session, or
    a failed dial) before the command runs, so the peer behind it can be named."""
    for host, port in peers:
        try:
            await node.add_peer(host, port)
        except ValueError as exc:
            raise BadSetting(f"--peer {host}:{port}: {exc}") from None
    wanted = {f"{host}:{port}" for host, port in peers}
    with trio.move_on_after(patience):
        # Polled: "settled" joins two tables (dial outcomes, pinned sessions) that no
        # one event reports together, and the dials run in the node's own tasks.
        while not wanted <= _settled_addresses(node):  # noqa: ASYNC110
            await trio.sleep(POLL_INTERVAL)


def _settled_addresses(node: Node) -> set[str]:
    """Addresses whose dial failed, or whose peer has a session and a pinned key."""
    pinned = {p.fingerprint for p in node.peers() if p.connected and p.trust is not None}
    settled: set[str] = set()
    for target in node.reachability():
        if target.last_error is not None or target.fingerprint in pinned:
            settled.update(target.addresses)
    return settled
