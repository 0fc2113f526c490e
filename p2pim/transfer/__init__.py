"""File transfer: offers, streaming, resume."""
