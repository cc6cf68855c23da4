"""The former home of :mod:`simnet.traces.replay`, kept so that existing
``import simnet.replay`` and ``from simnet.replay import ...`` lines keep working.

This module *is* :mod:`simnet.traces.replay` (one module object under two
names), so monkeypatching either name patches both. New code imports
:mod:`simnet.traces.replay`.
"""

import sys

from simnet.traces import replay as _module

sys.modules[__name__] = _module
