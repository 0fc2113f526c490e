"""Group rooms: a signed, replicated log per room, and the contact groups beside them."""
