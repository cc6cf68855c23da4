"""Differential tests: the stdlib asyncore/asynchat against simnet's drop-ins.

Every scenario is written once, against a module pair taken from a *target*
(see :mod:`.harness`), and run on each target in ``harness.TARGETS``; the
recorded callback sequences must be equal, and each test also checks the
sequence it expects.
"""
