"""pytest plugin for `p2pim.testing.vlan`: tests/conftest.py loads it for every layer.

Tests needing namespaces are skipped, with the reason, where those are unavailable (not
root, no iproute2, no kernel support) if they are marked `@pytest.mark.netns` (this
plugin's hook), decorated `@requires_netns`, or use the `vlan3` / `routed_lans` /
`loopback_ns` fixtures.
"""

import os
from collections.abc import Iterator

import pytest

from p2pim.testing.vlan import LoopbackNamespace, RoutedLans, VirtualLan, namespaces_available

NETNS_AVAILABLE, NETNS_REASON = namespaces_available()
_SKIP_REASON = f"network namespaces unavailable: {NETNS_REASON}"

requires_netns = pytest.mark.skipif(not NETNS_AVAILABLE, reason=_SKIP_REASON)

# CI runs as root, where these tests must run: P2PIM_REQUIRE_NETNS=1 turns a skip into a failure.
if os.environ.get("P2PIM_REQUIRE_NETNS") == "1" and not NETNS_AVAILABLE:
    raise pytest.UsageError(f"P2PIM_REQUIRE_NETNS=1 but {_SKIP_REASON}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("netns") is not None and not NETNS_AVAILABLE:
        pytest.skip(_SKIP_REASON)


@pytest.fixture
def vlan3() -> Iterator[VirtualLan]:
    """Three hosts h0..h2 on one switch, torn down after the test."""
    if not NETNS_AVAILABLE:
        pytest.skip(_SKIP_REASON)
    with VirtualLan(3) as lan:
        yield lan


@pytest.fixture
def routed_lans() -> Iterator[RoutedLans]:
    """Two subnets joined by a router: h0, h1 on subnet 0 and h2 on subnet 1."""
    if not NETNS_AVAILABLE:
        pytest.skip(_SKIP_REASON)
    with RoutedLans((2, 1)) as lans:
        yield lans


@pytest.fixture
def loopback_ns() -> Iterator[LoopbackNamespace]:
    """A fresh namespace whose peers share 127.0.0.1, multicast working on lo."""
    if not NETNS_AVAILABLE:
        pytest.skip(_SKIP_REASON)
    with LoopbackNamespace() as ns:
        yield ns
