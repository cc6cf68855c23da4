"""Realistic asyncore/asynchat programs driven by unmodified stdlib clients.

Each program here is written as a user writes a legacy application: it does
``import simnet.asyncore as asyncore`` (and ``asynchat``) and nothing else of
simnet. The tests run every program on four networks (see ``conftest.py``):
the fake network without and with the standard fault mix, and real loopback
without and with the same mix (the rules kernel sockets can show). One body
of assertions serves all four: a program that passes on loopback must pass on
the fake network.

(``legacy_chat.py`` is a script run by ``tests/test_api.py``, not part of
this suite.)
"""
