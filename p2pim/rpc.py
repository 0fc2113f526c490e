"""JSON-RPC 2.0 onto `Node`: the method table, error codes and line framing shared by
every transport (the daemon's stdio, the control socket).  docs/api.md lists the methods
and notifications."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from p2pim import events as ev
from p2pim.api import (
    NotYourMessage,
    PairingError,
    PeerBlockedError,
    PeerKeyChangedError,
    PeerRejectedError,
    PeerUnknown,
    RoomError,
    StoredMessage,
    TransferError,
    TransferState,
    UnknownMessage,
)
from p2pim.identity import FINGERPRINT_HEX
from p2pim.names import PeerNameError, resolve_peer
from p2pim.node import Node

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

# JSON-RPC 2.0 error codes; the application's own are positive and stable.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
INTERNAL_ERROR = -32603
PEER_NOT_CONNECTED, UNKNOWN_PEER, PEER_REJECTED, KEY_CHANGED, PAIRING_FAILED = 1, 2, 3, 4, 5
BAD_MESSAGE = 6  # no such message, or not ours to edit or delete
TRANSFER_REFUSED = 7  # no such offer in that state, no space, unreadable file...
ROOM_REFUSED = 8  # no such room, or not allowed in it (not a member, not an admin...)
PEER_BLOCKED = 9  # we blocked that peer: unblock it first


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def event_name(cls: type) -> str:
    """`PeerConnected` -> `peer_connected`: the notification's `type`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def event_to_json(event: ev.NodeEvent) -> dict[str, Any]:
    return {"type": event_name(type(event)), **dataclasses.asdict(event)}


class Subscription(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class RpcServer:
    """Maps JSON-RPC requests onto `Node` methods.  Transport-agnostic: lines in, lines out."""

    METHODS = (
        "identity",
        "peers",
        "connect",
        "send",
        "edit",
        "delete",
        "mark_read",
        "set_typing",
        "history",
        "search",
        "set_status",
        "set_nick",
        "add_peer",
        "remove_peer",
        "reachability",
        "safety_number",
        "verify",
        "start_pairing",
        "pair",
        "send_files",
        "accept_offer",
        "decline_offer",
        "cancel_transfer",
        "transfers",
        "create_room",
        "invite",
        "join_room",
        "decline_room",
        "leave_room",
        "remove_member",
        "make_admin",
        "set_topic",
        "post",
        "edit_post",
        "delete_post",
        "rooms",
        "room_history",
        "send_files_to_room",
        "set_group",
        "groups",
        "send_to_group",
        "broadcast",
        "export",
        "stats",
        "block",
        "unblock",
        "blocked",
        "mute",
        "unmute",
        "muted",
        "subscribe",
        "unsubscribe",
        "shutdown",
    )

    def __init__(self, node: Node, subscription: Subscription | None = None) -> None:
        """`subscription` switches this client's event notifications on and off; without
        one (stdio) they always flow."""
        self.node = node
        self._subscription = subscription
        self.methods: dict[str, Callable[..., Awaitable[Any]]] = {
            name: getattr(self, name) for name in self.METHODS
        }

    async def identity(self) -> dict[str, Any]:
        node = self.node
        return {
            "fingerprint": node.fingerprint,
            "nick": node.config.nick,
            "port": node.port,
            "status": node.status.status,
            "status_text": node.status.status_text,
            "listen_host": node.config.listen_host,
            "discovery": node.config.discovery,
            "interfaces": [dataclasses.asdict(i) for i in node.interfaces()],
        }

    async def peers(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(p) for p in self.node.peers()]

    async def connect(self, host: str, port: int, fingerprint: str | None = None) -> dict[str, str]:
        try:
            return {"fingerprint": await self.node.connect(host, port, fingerprint)}
        except PeerRejectedError as exc:
            raise RpcError(PEER_REJECTED, str(exc)) from exc
        except (OSError, trio.TooSlowError) as exc:
            raise RpcError(PEER_NOT_CONNECTED, f"cannot reach {host}:{port}: {exc}") from exc

    async def send(self, peer: str, text: str) -> dict[str, Any]:
        fp = self.resolve_peer(peer)
        message_id = await self.node.send_text(fp, text)
        return {"id": message_id, "queued": not self.node.is_connected(fp)}

    async def edit(self, peer: str, id: str, text: str) -> None:
        await self.node.edit(self.resolve_peer(peer), _hex_id(id), text)

    async def delete(self, peer: str, id: str) -> None:
        await self.node.delete(self.resolve_peer(peer), _hex_id(id))

    async def mark_read(self, peer: str, up_to: str | None = None) -> dict[str, list[str]]:
        up_to = _hex_id(up_to) if up_to is not None else None
        return {"read": await self.node.mark_read(self.resolve_peer(peer), up_to)}

    async def set_typing(self, peer: str, typing: bool = True) -> None:
        if not isinstance(typing, bool):
            raise ValueError("typing is true or false")
        await self.node.set_typing(self.resolve_peer(peer), typing)

    async def history(
        self, peer: str, before: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        found = await self.node.history(self.resolve_peer(peer), **_page(before, limit))
        return [message_to_json(m) for m in found]

    async def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]:
        if not isinstance(query, str) or type(limit) is not int:
            raise ValueError("query is a string and limit an integer")
        return [message_to_json(m) for m in await self.node.search(query, limit=limit)]

    async def set_status(self, status: str, text: str = "") -> None:
        try:
            await self.node.set_status(status, text)
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from exc

    async def set_nick(self, nick: str) -> None:
        try:
            await self.node.set_nick(nick)
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from exc

    async def add_peer(self, host: str, port: int) -> None:
        await self.node.add_peer(host, port)

    async def remove_peer(self, host: str, port: int) -> None:
        await self.node.remove_peer(host, port)

    async def reachability(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in self.node.reachability()]

    async def safety_number(self, peer: str) -> dict[str, str]:
        return {"safety_number": self.node.safety_number(self.resolve_peer(peer))}

    async def verify(self, peer: str) -> None:
        await self.node.verify(self.resolve_peer(peer))

    async def start_pairing(self) -> dict[str, str]:
        return {"code": self.node.start_pairing()}

    async def pair(self, host: str, port: int, code: str) -> dict[str, str]:
        try:
            return {"fingerprint": await self.node.pair(host, port, code)}
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from exc
        except PairingError as exc:
            raise RpcError(PAIRING_FAILED, str(exc)) from exc
        except (OSError, trio.TooSlowError) as exc:
            raise RpcError(PEER_NOT_CONNECTED, f"cannot reach {host}:{port}: {exc}") from exc

    async def send_files(
        self, peers: list[str], paths: list[str], ttl: float | None = None
    ) -> dict[str, str]:
        if not isinstance(peers, list) or not isinstance(paths, list):
            raise ValueError("peers and paths are lists")
        if not all(isinstance(p, str) for p in paths):
            raise ValueError("paths are strings")
        fps = [self.resolve_peer(peer) for peer in peers]
        return {"offer": await self.node.send_files(fps, paths, ttl=ttl)}

    async def accept_offer(
        self,
        peer: str,
        offer: str,
        files: list[int] | None = None,
        directory: str | None = None,
    ) -> dict[str, str]:
        if files is not None and not all(type(i) is int for i in files):
            raise ValueError("files is a list of file indices")
        await self.node.accept_offer(
            self.resolve_peer(peer), _hex_id(offer), files=files, directory=directory
        )
        return {"state": TransferState.ACCEPTED}

    async def decline_offer(self, peer: str, offer: str) -> None:
        await self.node.decline_offer(self.resolve_peer(peer), _hex_id(offer))

    async def cancel_transfer(self, peer: str, offer: str) -> None:
        await self.node.cancel_transfer(self.resolve_peer(peer), _hex_id(offer))

    async def transfers(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(t) for t in await self.node.transfers()]

    async def create_room(
        self, name: str, topic: str = "", members: list[str] | None = None
    ) -> dict[str, str]:
        if members is not None and not isinstance(members, list):
            raise ValueError("members is a list of peers")
        invited = [self.resolve_peer(m) for m in members or []]
        return {"room": await self.node.create_room(name, topic, invited)}

    async def invite(self, room: str, peer: str) -> None:
        await self.node.invite_to_room(room, self.resolve_peer(peer))

    async def join_room(self, room: str) -> None:
        await self.node.join_room(room)

    async def decline_room(self, room: str) -> None:
        await self.node.decline_room(room)

    async def leave_room(self, room: str) -> None:
        await self.node.leave_room(room)

    async def remove_member(self, room: str, peer: str) -> None:
        await self.node.remove_from_room(room, self.resolve_peer(peer))

    async def make_admin(self, room: str, peer: str) -> None:
        await self.node.make_room_admin(room, self.resolve_peer(peer))

    async def set_topic(self, room: str, topic: str) -> None:
        await self.node.set_room_topic(room, topic)

    async def post(self, room: str, text: str) -> dict[str, str]:
        return {"id": await self.node.post_to_room(room, text)}

    async def edit_post(self, room: str, id: str, text: str) -> None:
        await self.node.edit_room_post(room, _hex_id(id), text)

    async def delete_post(self, room: str, id: str) -> None:
        await self.node.delete_room_post(room, _hex_id(id))

    async def rooms(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in self.node.rooms()]

    async def room_history(
        self, room: str, before: str | None = None, limit: int = 50, system: bool = False
    ) -> list[dict[str, Any]]:
        if not isinstance(system, bool):
            raise ValueError("system is true or false")
        found = await self.node.room_history(room, **_page(before, limit), system=system)
        return [{"kind": "post", **message_to_json(m)} for m in found]

    async def send_files_to_room(
        self, room: str, paths: list[str], ttl: float | None = None
    ) -> dict[str, str]:
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError("paths is a list of strings")
        return {"offer": await self.node.send_files_to_room(room, paths, ttl=ttl)}

    async def set_group(self, name: str, members: list[str]) -> None:
        if not isinstance(members, list):
            raise ValueError("members is a list of peers")
        await self.node.set_group(name, [self.resolve_peer(m) for m in members])

    async def groups(self) -> dict[str, list[str]]:
        return await self.node.groups()

    async def send_to_group(self, name: str, text: str) -> dict[str, dict[str, str]]:
        return {"ids": await self.node.send_to_group(name, text)}

    async def broadcast(self, text: str) -> dict[str, dict[str, str]]:
        return {"ids": await self.node.broadcast(text)}

    async def export(
        self, peer: str | None = None, room: str | None = None, format: str = "jsonl"
    ) -> dict[str, str]:
        fp = self.resolve_peer(peer) if peer is not None else None
        return {"text": await self.node.export(peer=fp, room=room, fmt=format)}

    async def stats(self) -> dict[str, int]:
        return self.node.stats()

    async def block(self, peer: str) -> None:
        await self.node.block(self._any_peer(peer))

    async def unblock(self, peer: str) -> None:
        await self.node.unblock(self._any_peer(peer))

    async def blocked(self) -> list[dict[str, Any]]:
        nicks = {p.fingerprint: p.nick for p in self.node.peers()}
        return [{"fingerprint": fp, "nick": nicks.get(fp)} for fp in self.node.blocked()]

    async def mute(self, peer: str | None = None, room: str | None = None) -> None:
        await self.node.mute(self._conversation(peer, room))

    async def unmute(self, peer: str | None = None, room: str | None = None) -> None:
        await self.node.unmute(self._conversation(peer, room))

    async def muted(self) -> list[str]:
        return self.node.muted()

    def _any_peer(self, name: str) -> str:
        """A known peer by name, or any full fingerprint: a nuisance may be blocked before
        it ever connects."""
        if isinstance(name, str) and len(name) == FINGERPRINT_HEX:
            return name.lower()
        return self.resolve_peer(name)

    def _conversation(self, peer: str | None, room: str | None) -> str:
        if (peer is None) == (room is None):
            raise ValueError("name a peer or a room")
        if room is not None:
            return self.node.room_conversation(room)
        return self.resolve_peer(peer)  # type: ignore[arg-type]

    async def subscribe(self) -> dict[str, bool]:
        if self._subscription is not None:
            self._subscription.start()
        return {"subscribed": True}

    async def unsubscribe(self) -> dict[str, bool]:
        if self._subscription is None:
            raise RpcError(INVALID_REQUEST, "events always flow on stdio")
        self._subscription.stop()
        return {"subscribed": False}

    async def shutdown(self) -> None:
        await self.node.stop()

    def resolve_peer(self, name: str) -> str:
        """A peer by full fingerprint, unique fingerprint prefix, or unique nick."""
        try:
            return resolve_peer(name, ((p.fingerprint, p.nick) for p in self.node.peers()))
        except PeerNameError as exc:
            raise RpcError(UNKNOWN_PEER, str(exc)) from exc

    async def handle_line(self, line: bytes) -> dict[str, Any] | None:
        """One request line in, one response out (None for notifications)."""
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            return error_response(None, PARSE_ERROR, "invalid JSON")
        if not isinstance(request, dict):
            return error_response(None, INVALID_REQUEST, "a request is a JSON object")
        rid = request.get("id")
        if rid is not None and (type(rid) not in (int, str)):
            return error_response(None, INVALID_REQUEST, "an id is a string, an integer or null")
        method, params = request.get("method"), request.get("params", {})
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return error_response(rid, INVALID_REQUEST, "not a JSON-RPC 2.0 request")
        handler = self.methods.get(method)
        if handler is None:
            return error_response(rid, METHOD_NOT_FOUND, f"no method {method!r}")
        try:
            if isinstance(params, dict):
                result = await handler(**params)
            elif isinstance(params, list):
                result = await handler(*params)
            else:
                raise TypeError("params must be an object or an array")
        except RpcError as exc:
            response = error_response(rid, exc.code, str(exc))
        except PeerUnknown as exc:
            response = error_response(rid, UNKNOWN_PEER, str(exc))
        except PeerKeyChangedError as exc:
            response = error_response(rid, KEY_CHANGED, str(exc))
        except (UnknownMessage, NotYourMessage) as exc:
            response = error_response(rid, BAD_MESSAGE, str(exc))
        except TransferError as exc:
            response = error_response(rid, TRANSFER_REFUSED, str(exc))
        except RoomError as exc:
            response = error_response(rid, ROOM_REFUSED, str(exc))
        except PeerBlockedError as exc:
            response = error_response(rid, PEER_BLOCKED, str(exc))
        except (TypeError, ValueError) as exc:
            response = error_response(rid, INVALID_PARAMS, str(exc))
        except Exception as exc:  # a bad request must never take the daemon down
            log.exception("request %r failed", method)
            response = error_response(rid, INTERNAL_ERROR, f"{exc.__class__.__name__}: {exc}")
        else:
            response = {"jsonrpc": "2.0", "id": rid, "result": result}
        return response if "id" in request else None  # notifications get no reply


def _page(before: object, limit: object) -> dict[str, Any]:
    """A page of history: messages before the id `before` (or the newest), `limit` many."""
    if type(limit) is not int:
        raise ValueError("limit is an integer")
    return {"before": _hex_id(before) if before is not None else None, "limit": limit}


def _hex_id(text: object) -> str:
    if not isinstance(text, str) or len(text) != 32 or not all(c in HEX_DIGITS for c in text):
        raise ValueError("a message id is 32 hex digits")
    return text.lower()


def message_to_json(message: StoredMessage) -> dict[str, Any]:
    fields = dataclasses.asdict(message)
    fields["id"] = message.id.hex()
    return fields


def error_response(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}
