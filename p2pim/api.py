"""The public vocabulary: the records and errors a user of `Node` sees.

Every face (the TUI, the RPC, the daemon, the one-shot commands) and every script gets
these from here (or from the package, which re-exports them); the modules that build them
import them from here too, so each name has one home.  Nothing here does I/O.
"""

from __future__ import annotations

# ---- peers --------------------------------------------------------------------------

# ---- messages -----------------------------------------------------------------------

# ---- transfers ----------------------------------------------------------------------

# ---- rooms --------------------------------------------------------------------------
