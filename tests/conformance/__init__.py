"""Socket conformance suite: what Linux TCP/UDP/Unix sockets do, as seen from Python.

The tests pin down exact exception types, errno values and return values of
the socket API on Linux loopback so that ``simnet.fakesock.FakeNetwork`` can be
held to the same behaviour. Every test receives a *backend* (see
:mod:`.backends`) from the ``backend`` fixture; today the only backend is the
real kernel (``RealBackend``), and adding a fake backend to
``backends.BACKENDS`` runs the whole suite against it.

Layout:

* ``backends.py``  -- the backend interface, ``RealBackend``, the table of
  verified Linux facts;
* ``harness.py``   -- outcome recording (``outcome``, ``expect_error``) and
  ``run_ops``, the op-sequence interpreter used for differential testing;
* ``test_tcp_*.py``, ``test_udp.py``, ``test_unix.py``, ``test_readiness.py``
  -- explicit facts;
* ``test_ops.py``  -- Hypothesis-generated op sequences on a TCP pair;
* ``profiles.py``, ``test_profiles.py``, ``run_ops.py`` -- op-sequence
  profiles (tcp, unix-stream, makefile, timeout, udp, unix-dgram), a few
  examples each in the suite and thousands off-suite
  (``python -m tests.conformance.run_ops --profile all --examples 5000``).
"""
