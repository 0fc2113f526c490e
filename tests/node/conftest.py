"""Real nodes on loopback TCP (no mDNS), with real SQLite stores where a test needs them.
Helpers (loopback_config, loopback_node, running, meet, form_room, next_event, raw_session)
live in tests.support.nodes; the `identity` fixture is in tests/conftest.py."""
