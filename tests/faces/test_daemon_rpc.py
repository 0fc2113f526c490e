"""The JSON-RPC surface: malformed requests get errors, never a dead daemon."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from p2pim import Identity, NodeConfig, open_node
from p2pim.rpc import RpcServer
from p2pim.rpc_stream import LineSplitter


@pytest.fixture
async def server() -> AsyncIterator[RpcServer]:
    config = NodeConfig(nick="rpc", listen_host="127.0.0.1", discovery=False)
    async with open_node(Identity.generate(), config) as node:
        yield RpcServer(node)


def request(method: object, params: object = None, rid: object = 1) -> bytes:
    body: dict[str, object] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        body["params"] = params
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"{not json", -32700),
        (b"\xff\xfe", -32700),
        (b"[1, 2]", -32600),
        (b"42", -32600),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "peers"}', -32600),
        (request(7), -32600),
        (request("no_such_method"), -32601),
        (request("peers", "not params"), -32602),
        (request("send", {"peer": "x"}), -32602),
        (request("send", {"peer": 5, "text": "hi"}), 2),
        (request("send", {"peer": "nobody", "text": "hi"}), 2),
        (request("add_peer", {"host": "198.18.0.1", "port": 70000}), -32602),
        (request("add_peer", {"host": ["x"], "port": 1}), -32602),
        (request("set_status", {"status": "away", "text": 5}), -32602),
        (request("set_status", {"status": "gone"}), -32602),
        (request("pair", {"host": "127.0.0.1", "port": 1, "code": "abc"}), -32602),
        (request("verify", {"peer": "nobody"}), 2),
        (request("identity", {"surprise": 1}), -32602),
    ],
)
async def test_bad_requests_get_clear_errors(server: RpcServer, line: bytes, code: int) -> None:
    response = await server.handle_line(line)
    assert response is not None, response
    assert response["error"]["code"] == code, response
    assert (await server.handle_line(request("identity")))["result"]["nick"] == "rpc"  # type: ignore[index]


async def test_notifications_get_no_response(server: RpcServer) -> None:
    body = {"jsonrpc": "2.0", "method": "stats"}
    assert await server.handle_line(json.dumps(body).encode()) is None


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(RpcServer.METHODS),
    params=st.one_of(
        st.dictionaries(
            st.sampled_from(["peer", "text", "host", "port", "status", "code"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda c: st.lists(c, max_size=3),
                max_leaves=5,
            ),
        ),
        st.lists(st.integers() | st.text(max_size=5), max_size=4),
    ),
)
async def test_arbitrary_params_never_raise(server: RpcServer, method: str, params: object) -> None:
    if method in ("shutdown", "connect", "pair"):  # would stop the node or dial out
        return
    response = await server.handle_line(request(method, params))
    assert response is not None
    assert "result" in response or "error" in response


def test_line_splitter_bounds_lines_and_skips_overlong_ones() -> None:
    splitter = LineSplitter(10)
    assert splitter.feed(b"short\nalso") == [b"short"]
    assert splitter.feed(b" fine\n") == [b"also fine"]
    assert splitter.feed(b"x" * 25) == [None]  # reported once, nothing held
    assert splitter.feed(b"x" * 25 + b"tail\nnext\n") == [b"next"]
    assert splitter.feed(b"y" * 11 + b"\n") == [None]


async def test_failed_notifications_get_no_reply_either(server: RpcServer) -> None:
    body = {"jsonrpc": "2.0", "method": "send", "params": {"peer": "nobody", "text": "x"}}
    assert await server.handle_line(json.dumps(body).encode()) is None
