"""Helpers for tests and benchmarks; `p2pim.testing.vlan` builds virtual LANs from netns."""
