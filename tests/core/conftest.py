"""Pure cores and trio managers driven with cheap fakes (fake clocks, fake links, memory
stores): no sockets, no processes.  Add a layer-wide fixture here when two modules need it.
No shared fixtures yet."""
