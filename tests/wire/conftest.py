"""The sans-IO wire: framing, the codec, Noise, SPAKE2, the `Connection` machine and their
properties; no sockets, no trio.  Shared strategies live in tests.support.wire (the fuzz
harnesses in tests/fuzz/ reuse this folder's oracles).  No shared fixtures yet."""
