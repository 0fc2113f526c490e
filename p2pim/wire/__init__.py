"""The sans-IO protocol core: bytes in, events out; no sockets, no clocks, no trio."""
