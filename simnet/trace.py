"""The former home of :mod:`simnet.traces.trace`, kept so that existing
``import simnet.trace`` and ``from simnet.trace import ...`` lines keep working.

This module *is* :mod:`simnet.traces.trace` (one module object under two
names), so monkeypatching either name patches both. New code imports
:mod:`simnet.traces.trace`.
"""

import sys

from simnet.traces import trace as _module

sys.modules[__name__] = _module
