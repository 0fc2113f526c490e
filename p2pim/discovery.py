"""mDNS discovery: advertise this node and browse for others (the only home of zeroconf).

zeroconf runs its own thread and event loop (never trio's, never Textual's); its
callbacks cross into trio through a bounded channel.  Everything learned here is a *hint*
of where to dial and which key to expect: mDNS is unauthenticated, so the node checks
the handshake key against `fingerprint_hint` before trusting anything.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ifaddr
import trio
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

from p2pim.config import NodeConfig
from p2pim.identity import Identity
from p2pim.wire.messages import PROTOCOL_VERSION, STATUSES

log = logging.getLogger(__name__)

SERVICE_TYPE = "_p2pim._tcp.local."
RESOLVE_TIMEOUT_MS = 3000
MAX_QUEUED_CHANGES = 4096  # service names waiting to be looked at (coalesced by name)
MAX_QUEUED_RESOLVES = 256  # names not in the cache, waiting for a network resolve
MAX_CONCURRENT_RESOLVES = 4
INTERFACE_POLL = 2.0  # seconds between looks at the mDNS interfaces' addresses
# Virtual and container interfaces are skipped unless named explicitly (DESIGN.md §3).
VIRTUAL_PREFIXES = (
    "lo",
    "docker",
    "veth",
    "virbr",
    "br-",
    "vmnet",
    "vboxnet",
    "tun",
    "tap",
    "zt",
    "tailscale",
    "wg",
    "cni",
    "flannel",
    "podman",
    "lxc",
    "lxd",
)


@dataclass(frozen=True, slots=True)
class PeerAdvertised:
    """A peer's service record appeared or changed."""

    instance: str
    fingerprint_hint: str
    nick: str
    addresses: tuple[str, ...]
    port: int
    version: int
    status: str  # as advertised: a courtesy for peers not yet connected


@dataclass(frozen=True, slots=True)
class PeerWithdrawn:
    """A peer's service record went away (goodbye packet or expiry)."""

    instance: str


DiscoveryEvent = PeerAdvertised | PeerWithdrawn


def resolve_interfaces(choices: list[str] | None, *, strict: bool = True) -> list[str]:
    """IPv4 addresses to run mDNS on, of those some interface holds now: the named
    interfaces' and addresses, or every real interface's.  None at all (only loopback:
    offline, in flight mode, before the Wi-Fi is up) is an empty list, not an error.
    `strict`: a name that is neither an interface nor an address is an error (a typo);
    otherwise it is skipped (an interface unplugged for now)."""
    adapters = ifaddr.get_adapters()
    held = {str(ip.ip) for adapter in adapters for ip in adapter.ips if isinstance(ip.ip, str)}
    addresses: list[str] = []
    for adapter in adapters:
        ipv4 = [str(ip.ip) for ip in adapter.ips if isinstance(ip.ip, str)]
        if choices is None:
            if not adapter.nice_name.startswith(VIRTUAL_PREFIXES):
                addresses += ipv4
        elif adapter.nice_name in choices:
            addresses += ipv4
    if choices is not None:
        for choice in choices:
            try:
                address = str(ipaddress.IPv4Address(choice))
            except ValueError:
                if strict and not any(a.nice_name == choice for a in adapters):
                    raise ValueError(f"no interface or IPv4 address named {choice!r}") from None
                continue
            if address in held:  # mDNS cannot bind an address no interface has (yet)
                addresses.append(address)
    return list(dict.fromkeys(addresses))


@dataclass(frozen=True, slots=True)
class InterfaceState:
    """An address mDNS runs on, and whether its interface can carry multicast."""

    name: str  # "" if no interface holds the address
    address: str
    up: bool
    multicast: bool


IFF_UP, IFF_MULTICAST = 0x1, 0x1000


def interface_states(addresses: list[str]) -> list[InterfaceState]:
    """For `p2pim doctor`: each address with its interface's flags (Linux sysfs)."""
    names = {str(ip.ip): a.nice_name for a in ifaddr.get_adapters() for ip in a.ips}
    states = []
    for address in addresses:
        name = names.get(address, "")
        try:
            flags = int(Path(f"/sys/class/net/{name}/flags").read_text(), 16) if name else 0
        except (OSError, ValueError):
            flags = 0
        states.append(
            InterfaceState(name, address, bool(flags & IFF_UP), bool(flags & IFF_MULTICAST))
        )
    return states


def instance_name(nick: str, identity: Identity) -> str:
    # A DNS label holds 63 bytes; keep the nick readable and the fingerprint part intact.
    safe = re.sub(r"[^\w\- ]", "", nick).strip().encode()[:40].decode(errors="ignore")
    safe = safe or "p2pim"
    return f"{safe}-{identity.short_id}"


def _txt(info: ServiceInfo, key: bytes) -> str:
    value = info.properties.get(key)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def parse_service(instance: str, info: ServiceInfo) -> PeerAdvertised | None:
    """Turn a resolved record into an event; None if it is not a usable p2pim record."""
    try:
        version = int(_txt(info, b"v") or 0)
    except ValueError:
        return None
    fp = _txt(info, b"fp").lower()
    addresses = tuple(a for a in info.parsed_addresses(IPVersion.V4Only))
    if not re.fullmatch(r"[0-9a-f]{64}", fp) or not addresses or not info.port:
        return None
    status = _txt(info, b"status")
    return PeerAdvertised(
        instance,
        fp,
        _txt(info, b"nick")[:64],
        addresses,
        info.port,
        version,
        status if status in STATUSES else "online",
    )


class Discovery:
    """Advertises one node and reports other nodes' records to trio."""

    def __init__(
        self,
        identity: Identity,
        nick: str,
        port: int,
        interfaces: list[str],
        status: str = "online",
    ) -> None:
        if not interfaces:
            raise ValueError("mDNS needs at least one interface address")
        self.interfaces = interfaces
        self.instance = instance_name(nick, identity)
        self._info = ServiceInfo(
            SERVICE_TYPE,
            f"{self.instance}.{SERVICE_TYPE}",
            port=port,
            properties=self._properties(identity.fingerprint, nick, status),
            server=f"p2pim-{identity.short_id}.local.",
            parsed_addresses=interfaces,
        )
        self.dropped_changes = 0
        self._pending: dict[str, ServiceStateChange] = {}  # by service name, in order
        self._pending_posted = trio.Event()
        self._zc: Zeroconf | None = None

    @staticmethod
    def _properties(fp: str, nick: str, status: str) -> dict[str, str]:
        return {"v": str(PROTOCOL_VERSION), "fp": fp, "nick": nick, "status": status}

    async def update_status(self, status: str, nick: str | None = None) -> None:
        """Re-announce the record with a new status and maybe nick in its TXT (a courtesy:
        sessions carry the truth).  The instance name stays until the next start."""
        zc = self._zc
        if zc is None:
            return
        props = {k.decode(): (v or b"").decode() for k, v in self._info.properties.items()}
        nick = props["nick"] if nick is None else nick
        self._info = ServiceInfo(
            SERVICE_TYPE,
            self._info.name,
            port=self._info.port,
            properties=self._properties(props["fp"], nick, status),
            server=self._info.server,
            parsed_addresses=self.interfaces,
        )
        await trio.to_thread.run_sync(zc.update_service, self._info, abandon_on_cancel=True)

    async def run(
        self,
        events: trio.MemorySendChannel[DiscoveryEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Advertise and browse until cancelled; withdraw the record on the way out."""
        zc = self._zc = await trio.to_thread.run_sync(self._open)
        token = trio.lowlevel.current_trio_token()

        def on_change(**kwargs: Any) -> None:  # runs in zeroconf's thread
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._post, kwargs["state_change"], kwargs["name"])

        browser = None
        try:
            # Browse first: our own probing takes ~1.5 s and peers can be found meanwhile.
            browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change])
            to_resolve, resolving = trio.open_memory_channel[str](MAX_QUEUED_RESOLVES)
            async with trio.open_nursery() as nursery:
                # Handle what the browser finds while our own probing runs (~1.5 s): a
                # newcomer can dial the peers already there before it is announced.
                nursery.start_soon(self._handle_changes, zc, to_resolve, events)
                # A fixed pool of workers: a flood of records queues (bounded), never fans out.
                for _ in range(MAX_CONCURRENT_RESOLVES):
                    nursery.start_soon(self._resolve, zc, resolving.clone(), events)
                await trio.to_thread.run_sync(self._register, zc)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(3):
                await trio.to_thread.run_sync(self._close, zc, browser, abandon_on_cancel=True)

    def _post(self, state_change: ServiceStateChange, name: str) -> None:
        """Runs in trio.  Changes are kept by name (the latest wins), so a flood repeating
        the same records takes no more room, and a real peer among thousands of fakes
        is not lost while the queue holds fewer than MAX_QUEUED_CHANGES names."""
        if name in self._pending or len(self._pending) < MAX_QUEUED_CHANGES:
            self._pending[name] = state_change
            self._pending_posted.set()
        else:
            self.dropped_changes += 1  # a hint, not a fact: mDNS repeats itself

    def _open(self) -> Zeroconf:
        return Zeroconf(interfaces=self.interfaces, ip_version=IPVersion.V4Only, use_asyncio=False)

    def _register(self, zc: Zeroconf) -> None:
        zc.register_service(self._info, allow_name_change=True)

    def _close(self, zc: Zeroconf, browser: ServiceBrowser | None) -> None:
        if browser is not None:
            browser.cancel()
        try:
            zc.unregister_service(self._info)  # sends the mDNS goodbye
        except Exception as exc:  # zeroconf may already be unable to send
            log.debug("mDNS unregister failed: %s", exc)
        zc.close()

    async def _handle_changes(
        self,
        zc: Zeroconf,
        to_resolve: trio.MemorySendChannel[str],
        events: trio.MemorySendChannel[DiscoveryEvent],
    ) -> None:
        """Take every pending change at once; whatever zeroconf's cache already holds (a
        flood's responses carry all their records) is parsed in one thread call, and only
        the rest waits for a network resolve."""
        while True:
            await self._pending_posted.wait()
            self._pending_posted = trio.Event()
            changes, self._pending = self._pending, {}
            names = []
            for name, state_change in changes.items():
                if name == self._info.name:
                    continue
                if state_change is ServiceStateChange.Removed:
                    await events.send(PeerWithdrawn(name))
                else:
                    names.append(name)
            cached = await trio.to_thread.run_sync(_from_cache, zc, names, abandon_on_cancel=True)
            for name, advert in cached.items():
                if advert is not None:
                    await events.send(advert)
                    continue
                try:
                    to_resolve.send_nowait(name)
                except trio.WouldBlock:
                    self.dropped_changes += 1

    async def _resolve(
        self,
        zc: Zeroconf,
        names: trio.MemoryReceiveChannel[str],
        events: trio.MemorySendChannel[DiscoveryEvent],
    ) -> None:
        async for name in names:
            info = await trio.to_thread.run_sync(
                zc.get_service_info,
                SERVICE_TYPE,
                name,
                RESOLVE_TIMEOUT_MS,
                abandon_on_cancel=True,
            )
            advert = parse_service(name, info) if info is not None else None
            if advert is not None:
                await events.send(advert)


def _from_cache(zc: Zeroconf, names: list[str]) -> dict[str, PeerAdvertised | None]:
    """Runs in a worker thread (zeroconf's own `get_service_info` reads its cache from the
    caller's thread too): each name's advert if the cache holds all its records."""
    found: dict[str, PeerAdvertised | None] = {}
    for name in names:
        info = ServiceInfo(SERVICE_TYPE, name)
        found[name] = parse_service(name, info) if info.load_from_cache(zc) else None
    return found


@dataclass(frozen=True, slots=True)
class DiscoveryStatistics:
    addresses: int  # where mDNS runs now; 0: no network (or discovery off)
    changes_dropped: int  # service changes not looked at, the queues being full


class InterfaceFollower:
    """mDNS on the configured interfaces' addresses, following them: when they change
    (DHCP renewal, a new network), zeroconf is reopened on the new addresses and our
    record re-registered, so peers find us where we are now, under the same key.

    No address at all is no network (only loopback: offline, flight mode, a login
    before the Wi-Fi is up): the node runs without mDNS, says so (`network_changed`),
    and starts it as soon as an interface gets an address."""

    def __init__(
        self,
        identity: Identity,
        config: NodeConfig,
        status: Callable[[], str],
        network_changed: Callable[[tuple[str, ...]], Awaitable[None]],
    ) -> None:
        self.identity = identity
        self.config = config  # its nick and interfaces, as they are at each (re)start
        self._status = status
        self._network_changed = network_changed
        self._addresses: list[str] = []
        self._discovery: Discovery | None = None

    @property
    def addresses(self) -> list[str]:
        """Where mDNS runs now; none: no network."""
        return list(self._addresses)

    def interface_states(self) -> list[InterfaceState]:
        """Where mDNS runs now, with the interfaces' flags (none when discovery is off)."""
        return interface_states(self._addresses) if self.config.discovery else []

    def statistics(self) -> DiscoveryStatistics:
        dropped = self._discovery.dropped_changes if self._discovery else 0
        return DiscoveryStatistics(addresses=len(self._addresses), changes_dropped=dropped)

    async def update_status(self, status: str, nick: str) -> None:
        if self._discovery is not None:
            await self._discovery.update_status(status, nick)

    async def run(
        self,
        port: int,
        adverts: trio.MemorySendChannel[DiscoveryEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Advertise `port` and send what is heard to `adverts` until cancelled; ready once
        mDNS runs on the addresses there are now (or there are none)."""
        interfaces = resolve_interfaces(self.config.interfaces)  # a typo: an error
        started = False
        while True:
            if interfaces != self._addresses or not interfaces:
                self._addresses = interfaces
                if started or not interfaces:  # at start, only the absence is news
                    await self._network_changed(tuple(interfaces))
            try:
                async with trio.open_nursery() as nursery:
                    self._discovery = None
                    if interfaces:
                        self._discovery = Discovery(
                            self.identity, self.config.nick, port, interfaces, self._status()
                        )
                        await nursery.start(self._discovery.run, adverts)
                    if not started:
                        task_status.started()
                        started = True
                    interfaces = await self._until_addresses_change(interfaces)
                    nursery.cancel_scope.cancel()
            except Exception:
                if not started:
                    raise  # at start the caller hears of it
                log.exception("mDNS could not restart on %s; trying again", interfaces)
                await trio.sleep(INTERFACE_POLL)

    async def _until_addresses_change(self, interfaces: list[str]) -> list[str]:
        """The addresses, once they differ from `interfaces` (none left: no network)."""
        while True:
            await trio.sleep(INTERFACE_POLL)
            # Not strict: a named interface may be unplugged for now.
            now = resolve_interfaces(self.config.interfaces, strict=False)
            if now != interfaces:
                log.info("mDNS addresses changed: %s -> %s", interfaces, now or "none")
                return now
