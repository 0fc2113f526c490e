"""The trio shell around the wire core: a `wire.Connection` driven over a trio stream
(`link`: the handshake under the caller's deadline, then an authenticated `PeerLink`)."""
