"""The simulated network: deterministic, in memory, in virtual time.

``FakeNetwork(seed=...)`` is a network of TCP, UDP and Unix sockets that
behave like Linux's through the socket API. Entered as a context manager it
becomes the current network: dispatchers create their sockets on it, and
``simnet.loop()`` waits on it in virtual time (idle time is skipped)::

    from simnet.fakesock import FakeNetwork

    with FakeNetwork(seed=7) as net:
        server = EchoServer(("127.0.0.1", 7000))
        client = EchoClient(("127.0.0.1", 7000))
        net.run(until=lambda: client.done, timeout=30)

Within ``net.patch()``, unmodified blocking clients (``smtplib`` ...) use it
too.
"""

from simnet.fakesock.network import Deadlock, FakeNetwork, Host, SimulationTimeout
from simnet.fakesock.sockets import FakeSocket

__all__ = ["FakeNetwork", "FakeSocket", "Deadlock", "SimulationTimeout", "Host"]
