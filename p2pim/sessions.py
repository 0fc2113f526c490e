"""Sessions: at most one authenticated link per peer identity.

Accepts connections under the pre-authentication limits, dials, runs the handshake under
a deadline, applies the tie-break when two links to one peer exist, keeps idle links
alive with heartbeats and ends a link whose peer falls silent.  What a session *means*
(trust, presence, messages) is the node's business, reached through `SessionHooks`.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from p2pim import events
from p2pim.api import PairingError, PeerRejectedError
from p2pim.config import NodeConfig
from p2pim.identity import Identity, fingerprint
from p2pim.net.link import LinkClosed, PeerLink, perform_handshake
from p2pim.wire import pake
from p2pim.wire.connection import UnexpectedPeerKey
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import BYE_BUSY, BYE_DUPLICATE, BYE_QUIT, Bye, Heartbeat, Hello, Message

log = logging.getLogger(__name__)


def classify_dial_error(exc: BaseException) -> str:
    if isinstance(exc, PeerRejectedError):
        return exc.reason
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    # trio's open_tcp_stream wraps the per-address errors in an ExceptionGroup cause.
    related: list[BaseException] = [exc]
    for linked in (exc.__cause__, exc.__context__):
        if isinstance(linked, BaseExceptionGroup):
            related.extend(linked.exceptions)
        elif linked is not None:
            related.append(linked)
    codes = {getattr(e, "errno", None) for e in related}
    if errno.ECONNREFUSED in codes:
        return "refused"
    if codes & {errno.ETIMEDOUT}:
        return "timed out"
    return f"unreachable ({exc})"


class Adoption(enum.Enum):
    ADOPTED = "adopted"  # the link is now the peer's session
    DUPLICATE = "duplicate"  # another link to the peer won the tie-break
    REFUSED = "refused"  # no room: session cap or trust store full
    FAILED = "failed"  # we could not record the session (a local error, e.g. the disk)


@dataclass(frozen=True, slots=True)
class SessionHooks:
    """How sessions reach the node that gives them meaning."""

    hello: Callable[[], Hello]  # what we tell a peer about ourselves
    may_open: Callable[[str], bool]  # may a session with this new identity start?
    # A session was adopted (`replaced` False), or a second link to a peer with a session
    # was resolved by the tie-break (`replaced` True; `link` may be the loser, now closed).
    opened: Callable[[PeerLink, bool], Awaitable[None]]
    received: Callable[[PeerLink, Message], Awaitable[None]]
    # The peer's session ended (never called for a link that lost a tie-break).
    closed: Callable[[PeerLink, str], Awaitable[None]]
    # An authenticated transfer connection (its hello names an offer): serve it, then return.
    transfer: Callable[[PeerLink], Awaitable[None]]
    emit: Callable[[events.NodeEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    sessions: int
    pending_handshakes: int
    pending_handshakes_max_per_address: int


class Sessions:
    _hooks: SessionHooks  # given at `start`: what sessions mean needs the node's parts

    def __init__(self, identity: Identity, config: NodeConfig) -> None:
        self.identity = identity
        self.config = config
        self.links: dict[str, PeerLink] = {}
        self.pending_total = 0
        self.pending_by_address: Counter[str] = Counter()
        self._nursery: trio.Nursery | None = None
        self._pairing_code: tuple[str, float] | None = None  # offered, and until when

    def start(self, nursery: trio.Nursery, hooks: SessionHooks) -> None:
        """Link tasks (readers, heartbeats) run in `nursery`; `hooks` give sessions meaning.

        Given here, not at construction: the parts the hooks lead to (transfers, for one)
        are built with this object, once the node's store is open."""
        self._nursery = nursery
        self._hooks = hooks

    def statistics(self) -> SessionStatistics:
        return SessionStatistics(
            sessions=len(self.links),
            pending_handshakes=self.pending_total,
            pending_handshakes_max_per_address=max(self.pending_by_address.values(), default=0),
        )

    async def goodbye_all(self) -> None:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for link in list(self.links.values()):
                    nursery.start_soon(link.say_goodbye, BYE_QUIT)

    # ---- opening ------------------------------------------------------------------------

    def offer_pairing(self, timeout: float) -> str:
        """A one-time code for the other side's `pair()`.  It allows ONE attempt: a wrong
        guess burns it, so a code cannot be brute-forced even online."""
        code = pake.generate_code()
        self._pairing_code = (code, trio.current_time() + timeout)
        return pake.format_code(code)

    def _take_pairing(self) -> pake.Pairing | None:
        """The offered pairing, if still valid; spends the code either way."""
        offer, self._pairing_code = self._pairing_code, None
        if offer is None or trio.current_time() > offer[1]:
            return None
        return pake.Pairing(offer[0], initiator=False)

    async def pair(self, host: str, port: int, code: str) -> str:
        """Dial host:port proving `code`; returns the peer's fingerprint."""
        pairing = pake.Pairing(code, initiator=True)
        try:
            return await self.dial(host, port, pairing=pairing)
        except PeerRejectedError as exc:
            await self._hooks.emit(events.PairingFailed(str(exc)))
            raise PairingError(f"pairing with {host}:{port} failed: wrong code?") from exc

    async def dial(
        self,
        host: str,
        port: int,
        *,
        expected_fingerprint: str | None = None,
        pairing: pake.Pairing | None = None,
    ) -> str:
        """Dial, authenticate and adopt; returns the peer's fingerprint.

        With `expected_fingerprint`, a peer holding any other key is dropped during the
        handshake, before we reveal our identity or send any data (PeerRejectedError).
        """
        expected = expected_fingerprint.lower() if expected_fingerprint else None

        def accept(remote_static: bytes) -> bool:
            return expected in (None, fingerprint(remote_static))

        try:
            with trio.fail_after(self.config.handshake_timeout):
                stream = await trio.open_tcp_stream(host, port)
                link = await perform_handshake(
                    stream,
                    initiator=True,
                    static_private=self.identity.private_key,
                    hello=self._hooks.hello(),
                    address=host,
                    port=port,
                    accept_remote=accept,
                    pairing=pairing,
                )
        except UnexpectedPeerKey as exc:  # reported outside the deadline: it is not the peer's
            actual = fingerprint(exc.remote_static)
            await self._hooks.emit(
                events.PeerRejected(host, "key does not match", expected, actual)
            )
            raise PeerRejectedError(f"{host}:{port} is not {expected}", "key mismatch") from exc
        except (RemoteProtocolError, LinkClosed) as exc:
            await self._hooks.emit(events.PeerRejected(host, f"handshake failed: {exc}"))
            raise PeerRejectedError(
                f"handshake with {host}:{port} failed: {exc}", "handshake failed"
            ) from exc
        if link.remote_static == self.identity.public_key:
            await link.close()
            raise PeerRejectedError(f"{host}:{port} is this node itself", "self")
        outcome = await self._adopt(link)
        if outcome is Adoption.REFUSED:  # we are full: a failure, so the dialler backs off
            raise PeerRejectedError(f"no room for a session with {host}:{port}", "local limit")
        if outcome is Adoption.FAILED:
            raise PeerRejectedError(f"could not open a session with {host}:{port}", "local error")
        if outcome is Adoption.ADOPTED:
            assert self._nursery is not None
            self._nursery.start_soon(self._read, link)
        return link.fingerprint

    async def open_transfer(self, host: str, port: int, peer: str, offer: bytes) -> PeerLink:
        """Dial a transfer connection to `peer` for `offer`: authenticated like a session
        (the same key is required), but never adopted as one."""
        hello = dataclasses.replace(self._hooks.hello(), transfer=offer)
        try:
            with trio.fail_after(self.config.handshake_timeout):
                stream = await trio.open_tcp_stream(host, port)
                return await perform_handshake(
                    stream,
                    initiator=True,
                    static_private=self.identity.private_key,
                    hello=hello,
                    address=host,
                    port=port,
                    accept_remote=lambda key: fingerprint(key) == peer,
                )
        except UnexpectedPeerKey as exc:
            raise PeerRejectedError(f"{host}:{port} is not {peer}", "key mismatch") from exc

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on the configured address and accept every connection; reports the port
        once listening (a connection made before the first accept waits in the backlog)."""
        config = self.config
        listeners = await trio.open_tcp_listeners(config.listen_port, host=config.listen_host)
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self.accept, listeners)

    async def accept(self, stream: trio.SocketStream) -> None:
        """Serve one inbound connection (the listener's handler)."""
        try:
            address = str(stream.socket.getpeername()[0])
        except OSError:  # reset between the kernel's accept and now: nothing to serve
            await trio.aclose_forcefully(stream)
            return
        if (
            self.pending_total >= self.config.max_pending_handshakes
            or self.pending_by_address[address] >= self.config.max_pending_per_address
        ):
            await trio.aclose_forcefully(stream)  # pre-auth limits: refuse at once
            return
        self.pending_total += 1
        self.pending_by_address[address] += 1
        link = None
        code_spent = False

        def on_pairing_request() -> pake.Pairing | None:
            nonlocal code_spent
            pairing = self._take_pairing()
            code_spent = pairing is not None
            return pairing

        try:
            with trio.move_on_after(self.config.handshake_timeout):
                link = await perform_handshake(
                    stream,
                    initiator=False,
                    static_private=self.identity.private_key,
                    hello=self._hooks.hello(),
                    address=address,
                    on_pairing_request=on_pairing_request,
                )
        except (RemoteProtocolError, LinkClosed) as exc:
            log.info("inbound handshake from %s failed: %s", address, exc)
        finally:
            self.pending_total -= 1
            self.pending_by_address[address] -= 1
            if not self.pending_by_address[address]:
                del self.pending_by_address[address]
        if code_spent and link is None:
            await self._hooks.emit(events.PairingFailed(f"pairing attempt from {address} failed"))
        if link is not None and link.remote_static == self.identity.public_key:
            await link.close()  # we dialled ourselves
        elif link is not None and link.hello.transfer:
            try:
                await self._hooks.transfer(link)
            finally:
                await link.close()
        elif link is not None and await self._adopt(link) is Adoption.ADOPTED:
            await self._read(link)

    def _dialer_key(self, link: PeerLink) -> bytes:
        return self.identity.public_key if link.initiator else link.remote_static

    async def _adopt(self, link: PeerLink) -> Adoption:
        """Make `link` the peer's session unless an existing one wins the tie-break.

        Both ends apply the same rule, so they agree without talking: between links
        dialled in the same direction the newer wins (the older is probably dead); between
        links dialled from opposite ends, the one dialled by the lower key wins.  The
        decision and the table update happen before any await, so two links of one peer
        adopted concurrently cannot both win.
        """
        fp = link.fingerprint
        existing = self.links.get(fp)
        if existing is not None and not existing.closed:
            same_direction = self._dialer_key(existing) == self._dialer_key(link)
            keep_existing = not same_direction and (
                self._dialer_key(existing) < self._dialer_key(link)
            )
            if not keep_existing:
                self.links[fp] = link
                self._start_keepalive(link)
            await (link if keep_existing else existing).say_goodbye(BYE_DUPLICATE)
            outcome = Adoption.DUPLICATE if keep_existing else Adoption.ADOPTED
            return await self._opened(link, outcome, replaced=True)
        if len(self.links) >= self.config.max_sessions or not self._hooks.may_open(fp):
            await link.say_goodbye(BYE_BUSY)
            return Adoption.REFUSED
        self.links[fp] = link
        self._start_keepalive(link)
        return await self._opened(link, Adoption.ADOPTED, replaced=False)

    async def _opened(self, link: PeerLink, outcome: Adoption, *, replaced: bool) -> Adoption:
        """Tell the node; if that fails (say the disk is full), drop this session only."""
        try:
            await self._hooks.opened(link, replaced)
        except Exception:
            log.exception("could not open a session with %s", link.fingerprint[:8])
            if self.links.get(link.fingerprint) is link:
                del self.links[link.fingerprint]
            await link.close()
            return Adoption.FAILED
        return outcome

    # ---- running ------------------------------------------------------------------------

    def _start_keepalive(self, link: PeerLink) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._keep_alive, link)

    async def _keep_alive(self, link: PeerLink) -> None:
        """Heartbeats only while the link is idle: any traffic already proves we are here."""
        # Often enough for whichever of us gives up on silence sooner.
        interval = min(self.config.presence_timeout, link.hello.silence_timeout_ms / 1000) / 3
        while not link.closed:
            wait = link.last_sent + interval - trio.current_time()
            if wait > 0:
                await trio.sleep(wait)
                continue
            try:
                await link.send(Heartbeat())
            except LinkClosed:
                return

    async def _read(self, link: PeerLink) -> None:
        reason = "closed"
        timeout = self.config.presence_timeout
        try:
            while True:
                # Silence counts only while we listen: time spent delivering events to a
                # slow subscriber is not the peer's fault.
                with trio.move_on_after(timeout) as silence:
                    message = await link.receive()
                if silence.cancelled_caught:
                    reason = f"silent for {timeout:g} s"
                    break
                if isinstance(message, Bye):
                    reason = message.reason
                    break
                if not isinstance(message, Heartbeat):  # its arrival was the point
                    await self._hooks.received(link, message)
        except LinkClosed as exc:
            reason = link.goodbye_reason or str(exc)  # ours, if we were the ones leaving
        except RemoteProtocolError as exc:
            reason = f"protocol error: {exc}"
            log.warning("closing session with %s: %s", link.fingerprint[:8], exc)
        except Exception as exc:  # e.g. the disk is full: lose this session, not the node
            reason = f"local error: {exc.__class__.__name__}: {exc}"
            log.exception("closing session with %s", link.fingerprint[:8])
        finally:
            await link.close()
            if self.links.get(link.fingerprint) is link:
                del self.links[link.fingerprint]
                await self._hooks.closed(link, reason)
