"""The trio shell around the wire core: streams, handshakes under deadlines, listeners."""
