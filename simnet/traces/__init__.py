"""Traces: one package for the format, recording, replay and the views.

:mod:`simnet.traces.trace`
    The trace format (JSON Lines: header, events, footer) and
    :class:`Trace`, which records events and checks a file when loading it.
    The bottom of the package: it imports nothing else from simnet, so both
    networks record through it.
:mod:`simnet.traces.replay`
    :func:`record` a scenario on the fake network, and :func:`replay` it
    strictly (:class:`ReplayDivergence` at the first event that differs).
:mod:`simnet.traces.views`
    :class:`TraceView` (what a trace says: sockets, connections, bytes paired
    send to read, faults) and the text timeline/summary renderers, shown by
    the ``simnet`` command and by the pytest plugin's failure reports.
:mod:`simnet.traces.html`
    :func:`render_html`, a self-contained page with a message sequence diagram.

``simnet.trace`` and ``simnet.replay`` (the modules' earlier homes) remain
importable as aliases of the first two.

The views are loaded on first use (a module ``__getattr__``), so importing
the format -- which the networks do while :mod:`simnet` itself is being
imported -- does not pull in the views and their imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from simnet.traces.trace import Trace, TraceError

_LAZY = {
    "TraceView": "views", "timeline_rows": "views", "timeline_lines": "views",
    "summary_lines": "views", "summary_text": "views", "header_lines": "views",
    "KINDS": "views", "DEFAULT_KINDS": "views", "render_html": "html",
    "record": "replay", "ReplayDivergence": "replay",
}

__all__ = ["Trace", "TraceError", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simnet.traces' has no attribute {name!r}")
    value = getattr(import_module(f"simnet.traces.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
