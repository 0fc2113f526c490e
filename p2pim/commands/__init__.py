"""The one-shot commands, each a blocking function of a `p2pim.oneshot.Job` that returns
an exit code.  p2pim.cli's command table names them; they load only when run."""
