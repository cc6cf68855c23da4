"""The simulated network (see the fake-network issue): not built yet.

``simnet.fakesock.FakeNetwork`` will be a deterministic in-memory network with
virtual time; the dispatcher layer already asks the network seam
(``simnet.network.Network``) for sockets, waiting and time, so it plugs in
without changes above the seam.
"""
