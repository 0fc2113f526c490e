"""Helpers for tests and benchmarks: virtual LANs from network namespaces (`vlan`), a
chaos proxy (`chaos`), and a driver for `p2pim daemon --stdio` processes (`daemon_process`)."""
