"""Looking at traces: the text timeline and the HTML sequence diagram.

The trace format and recording are :mod:`simnet.trace`, strict replay is
:mod:`simnet.replay`; this package holds the views both the ``simnet``
command and the pytest plugin show:

:mod:`simnet.traces.views`
    :class:`TraceView` (what a trace says: sockets, connections, bytes paired
    send to read, faults) and the text timeline/summary renderers.
:mod:`simnet.traces.html`
    :func:`render_html`, a self-contained page with a message sequence diagram.
"""

from simnet.traces.html import render_html
from simnet.traces.views import (DEFAULT_KINDS, KINDS, TraceView, header_lines, summary_lines,
                                 summary_text, timeline_lines, timeline_rows)

__all__ = ["TraceView", "timeline_rows", "timeline_lines", "summary_lines", "summary_text",
           "header_lines", "render_html", "KINDS", "DEFAULT_KINDS"]
