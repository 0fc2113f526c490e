"""Fixtures of the namespace tests, over `p2pim.testing.vlan`.

Tests needing namespaces are skipped, with the reason, where those are unavailable (not
root, no iproute2, no kernel support) if they are marked `@pytest.mark.netns` (this
conftest's hook) or use the `vlan2` / `vlan3` / `routed_lans` / `loopback_ns` fixtures.
"""

import os
from collections.abc import Iterator

import pytest

from p2pim.testing.vlan import LoopbackNamespace, RoutedLans, VirtualLan
from tests.support.netns import NETNS_AVAILABLE, SKIP_REASON, require_netns

# CI runs as root, where these tests must run: P2PIM_REQUIRE_NETNS=1 turns a skip into a failure.
if os.environ.get("P2PIM_REQUIRE_NETNS") == "1" and not NETNS_AVAILABLE:
    raise pytest.UsageError(f"P2PIM_REQUIRE_NETNS=1 but {SKIP_REASON}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("netns") is not None:
        require_netns()


@pytest.fixture
def vlan2() -> Iterator[VirtualLan]:
    """Two hosts h0, h1 on one switch, torn down after the test."""
    require_netns()
    with VirtualLan(2) as lan:
        yield lan


@pytest.fixture
def vlan3() -> Iterator[VirtualLan]:
    """Three hosts h0..h2 on one switch, torn down after the test."""
    require_netns()
    with VirtualLan(3) as lan:
        yield lan


@pytest.fixture
def routed_lans() -> Iterator[RoutedLans]:
    """Two subnets joined by a router: h0, h1 on subnet 0 and h2 on subnet 1."""
    require_netns()
    with RoutedLans((2, 1)) as lans:
        yield lans


@pytest.fixture
def loopback_ns() -> Iterator[LoopbackNamespace]:
    """A fresh namespace whose peers share 127.0.0.1, multicast working on lo."""
    require_netns()
    with LoopbackNamespace() as ns:
        yield ns
