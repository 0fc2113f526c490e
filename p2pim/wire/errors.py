"""Errors of the protocol core, each carrying blame.

`RemoteProtocolError`: the peer sent something invalid. Close that one session and keep
the node running.  `LocalProtocolError`: our own code misused the core; a bug.
"""


class ProtocolError(Exception):
    """Base of both blame classes."""


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol (bad frame, bad crypto, bad schema)."""


class LocalProtocolError(ProtocolError):
    """This side called the protocol core in a way it does not allow."""
