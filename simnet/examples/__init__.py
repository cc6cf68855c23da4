"""Example dispatcher programs; each runs on real sockets or on a fake network."""
