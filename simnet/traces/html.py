"""The HTML page of a trace: a message sequence diagram (sockets as
lifelines, bytes as arrows, faults marked) and every event in a table;
self-contained (no scripts, no external resources). ``simnet trace html``
writes it; :func:`render_html` makes it from a
:class:`~simnet.traces.views.TraceView`.
"""

from __future__ import annotations

import bisect
import html
from typing import Any

from simnet import __version__
from simnet.traces.views import KINDS, Message, TraceView, timeline_rows

__all__ = ["render_html"]

_CSS = """
:root { --ink:#1f2430; --muted:#6b7280; --line:#d5d9e0; --data:#2563eb; --back:#0f766e;
        --fault:#dc2626; --partial:#d97706; --note:#7c3aed; --bg:#fbfbfd; }
* { box-sizing: border-box; }
body { margin: 0; padding: 18px 28px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
       Roboto, Helvetica, Arial, sans-serif; color: var(--ink); background: var(--bg); }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 22px 0 8px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 14px;
         align-items: start; }
@media (max-width: 900px) { .cards { grid-template-columns: 1fr; } }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
table.kv td { padding: 1px 10px 1px 0; vertical-align: top; }
table.kv td:first-child { color: var(--muted); }
ol.plan { margin: 0; padding-left: 22px; }
ol.plan li { margin: 2px 0; }
.fired { display: inline-block; min-width: 22px; padding: 0 6px; margin-left: 6px; border-radius: 9px;
         font-size: 12px; text-align: center; background: #eef0f4; color: var(--muted); }
.fired.hot { background: #fde2e2; color: var(--fault); font-weight: 600; }
.ok { color: #15803d; font-weight: 600; } .bad { color: var(--fault); font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; color: var(--muted); font-size: 12.5px;
          margin: 6px 0 10px; align-items: center; }
.legend svg { vertical-align: middle; margin-right: 4px; }
.diagram { background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow-x: auto; }
svg text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 11.5px; }
svg .head text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
svg .t { fill: var(--muted); }
svg .desc { fill: var(--ink); }
svg .quiet { fill: var(--muted); }
svg .note { fill: var(--note); font-style: italic; }
svg .fault { fill: var(--fault); font-weight: 600; }
svg .error { fill: var(--fault); }
svg .partial { fill: var(--partial); }
svg .lbl { fill: var(--ink); font-size: 10.5px; }
details { margin-top: 18px; } summary { cursor: pointer; color: var(--muted); }
table.ev { border-collapse: collapse; font: 12px ui-monospace, Menlo, Consolas, monospace; margin-top: 8px; }
table.ev td { padding: 1px 10px 1px 0; white-space: nowrap; }
table.ev tr.note td:last-child { color: var(--note); font-style: italic; }
table.ev tr.fault td:last-child { color: var(--fault); font-weight: 600; }
table.ev tr.error td:last-child { color: var(--fault); }
table.ev tr.quiet td:last-child { color: var(--muted); }
"""

_DIAGRAM_KINDS = frozenset(KINDS) - {"ready", "socket"}
_ROLE_COLOURS = {"client": "#2563eb", "server": "#0f766e", "listener": "#475569"}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


class _Diagram:
    """Lays out the sequence diagram: one column per socket, one row per event."""

    ROW = 22
    TOP = 64
    TIME_W = 92

    def __init__(self, view: TraceView, limit: int) -> None:
        self.view = view
        self.socks = view.ordered_sockets()
        if any(o is None and ev[1] in ("fault", "timer")
               for o, ev in zip(view.owner, view.events)):
            self.net_col = True
        else:
            self.net_col = False
        ncols = len(self.socks)
        self.col_w = 136 if ncols <= 4 else 120 if ncols <= 6 else 104
        self.x_of = {s.key: self.TIME_W + self.col_w * (n + 0.5) for n, s in enumerate(self.socks)}
        net_w = 70 if self.net_col else 0
        self.net_x = self.TIME_W + self.col_w * ncols + net_w / 2
        self.desc_x = self.TIME_W + self.col_w * ncols + net_w + 12
        # rows: ("event", index) or ("note", note)
        rows: list[tuple[str, Any]] = []
        notes = sorted(view.notes, key=lambda n: n[0])
        k = 0
        for i, ev in enumerate(view.events):
            while k < len(notes) and notes[k][0] <= i:
                rows.append(("note", notes[k]))
                k += 1
            if ev[1] in _DIAGRAM_KINDS:
                rows.append(("event", i))
        rows.extend(("note", n) for n in notes[k:])
        self.truncated = max(0, len(rows) - limit)
        self.rows = rows[:limit]
        # the row of each event (events not drawn take the next drawn row)
        self.y_of_event: dict[int, float] = {}
        for r, (kind, item) in enumerate(self.rows):
            if kind == "event":
                self.y_of_event[item] = self._y(r)
        self._drawn = sorted(self.y_of_event)
        self.height = self.TOP + self.ROW * (len(self.rows) + 1) + 10
        longest = 0
        for kind, item in self.rows:
            if kind == "note":
                longest = max(longest, len(item[2]) + len(item[3]) + 2)
            else:
                owner = view.owner[item]
                longest = max(longest, len(view.describe(item)[0]) + 2
                              + len(owner.label if owner is not None else "network"))
        self.width = int(self.desc_x + max(300, 7.1 * longest + 16))

    def _y(self, row: int) -> float:
        return self.TOP + self.ROW * (row + 0.5)

    def _event_y(self, index: int | None) -> float | None:
        if index is None:
            return None
        y = self.y_of_event.get(index)
        if y is None:  # not drawn (socket/ready event): the next drawn row
            at = bisect.bisect_right(self._drawn, index)
            y = self.y_of_event[self._drawn[at]] if at < len(self._drawn) else None
        return y

    def svg(self) -> str:
        """The diagram as one ``<svg>`` element."""
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
               f'viewBox="0 0 {self.width} {self.height}" role="img" '
               f'aria-label="message sequence diagram">',
               "<defs>",
               _marker("ah-data", "#2563eb"), _marker("ah-back", "#0f766e"),
               _marker("ah-conn", "#6b7280"), _marker("ah-fin", "#9ca3af"),
               "</defs>"]
        out.extend(self._stripes())
        out.extend(self._lifelines())
        out.extend(self._arrows())
        out.extend(self._marks())
        out.append("</svg>")
        return "\n".join(out)

    def _stripes(self) -> list[str]:
        out = []
        last_t = None
        for r, (kind, item) in enumerate(self.rows):
            y = self._y(r)
            if r % 2 == 0:
                out.append(f'<rect x="0" y="{y - self.ROW / 2:.1f}" width="{self.width}" '
                           f'height="{self.ROW}" fill="#f7f8fb"/>')
            t = self.view.events[item][0] if kind == "event" else item[1]
            stamp = f"{float(t):.6f}"
            if stamp != last_t:
                out.append(f'<text class="t" x="{self.TIME_W - 10}" y="{y + 4:.1f}" '
                           f'text-anchor="end">{stamp}</text>')
                last_t = stamp
        out.append(f'<text class="t" x="{self.TIME_W - 10}" y="{self.TOP - 10}" '
                   f'text-anchor="end">time (s)</text>')
        return out

    def _lifelines(self) -> list[str]:
        out = ['<g class="head">']
        bottom = self.height - 8
        columns = [(s, self.x_of[s.key]) for s in self.socks]
        for sock, x in columns:
            y0 = self._event_y(sock.start) or self.TOP
            y1 = self._event_y(sock.end) if sock.end is not None else bottom
            y1 = bottom if y1 is None else y1
            colour = _ROLE_COLOURS.get(sock.role, "#6b7280")
            out.append(f'<line x1="{x:.1f}" y1="{max(y0, self.TOP):.1f}" x2="{x:.1f}" y2="{y1:.1f}" '
                       f'stroke="{colour}" stroke-opacity="0.45" stroke-width="2"/>')
            w = self.col_w - 14
            sub = sock.local or sock.role
            if len(sub) * 6.4 > w - 8 and ":" in sub:
                sub = ":" + sub.rpartition(":")[2]  # narrow column: the port alone
            out.append(f'<rect x="{x - w / 2:.1f}" y="8" width="{w}" height="40" rx="6" '
                       f'fill="#fff" stroke="{colour}" stroke-width="1.5"/>')
            size = min(13.0, (w - 8) / (0.62 * max(1, len(sock.label))))
            out.append(f'<text x="{x:.1f}" y="25" text-anchor="middle" font-weight="600" '
                       f'fill="{colour}" font-size="{size:.1f}">{_e(sock.label)}</text>')
            out.append(f'<text x="{x:.1f}" y="40" text-anchor="middle" fill="#6b7280" '
                       f'font-size="10.5">{_e(sub)}</text>')
            out.append(f'<title>{_e(sock.label)}: {_e(sock.role)} socket fd {sock.fd}'
                       f'{", conn " + str(sock.conn) if sock.conn else ""}</title>')
        if self.net_col:
            x = self.net_x
            out.append(f'<line x1="{x:.1f}" y1="{self.TOP}" x2="{x:.1f}" y2="{bottom}" '
                       f'stroke="#9ca3af" stroke-dasharray="2 4" stroke-width="1.5"/>')
            out.append(f'<text x="{x:.1f}" y="30" text-anchor="middle" fill="#6b7280" '
                       f'font-size="13" font-weight="600">network</text>')
        out.append("</g>")
        return out

    def _arrows(self) -> list[str]:
        out = []
        fanout: dict[int, int] = {}
        for msg in self.view.messages:
            y1 = self.y_of_event.get(msg.src_index)
            if y1 is None:
                continue
            x1, x2 = self.x_of[msg.src.key], self.x_of[msg.dst.key]
            if msg.kind == "lost":
                direction = 1 if x2 > x1 else -1
                xe = x1 + direction * min(abs(x2 - x1) * 0.45, 60)
                out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{xe:.1f}" y2="{y1 + 8:.1f}" '
                           f'stroke="#dc2626" stroke-width="1.5" stroke-dasharray="4 3"/>')
                out.append(f'<text class="error" x="{xe + direction * 4:.1f}" y="{y1 + 12:.1f}" '
                           f'text-anchor="{"start" if direction > 0 else "end"}">'
                           f'× {msg.nbytes} B never read</text>')
                continue
            y2 = self._event_y(msg.dst_index)
            if y2 is None:
                continue
            inset = 5 if x2 > x1 else -5
            if msg.kind == "data":
                colour, marker, dash, width = (("#2563eb", "ah-data", "", 1.6)
                                               if msg.src.role == "client"
                                               else ("#0f766e", "ah-back", "", 1.6))
            elif msg.kind == "connect":
                colour, marker, dash, width = "#6b7280", "ah-conn", ' stroke-dasharray="6 4"', 1.3
            else:
                colour, marker, dash, width = "#9ca3af", "ah-fin", ' stroke-dasharray="2 3"', 1.3
            out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2 - inset:.1f}" y2="{y2:.1f}" '
                       f'stroke="{colour}" stroke-width="{width}"{dash} marker-end="url(#{marker})">'
                       f'<title>{_e(self._arrow_title(msg))}</title></line>')
            label = {"data": f"{msg.nbytes} B", "connect": "connect", "fin": "FIN"}[msg.kind]
            # arrows leaving one event: stagger their labels along them
            k = fanout[msg.src_index] = fanout.get(msg.src_index, -1) + 1
            at = (0.5, 0.75, 0.3, 0.62, 0.4)[k % 5]
            mx, my = x1 + (x2 - x1) * at, y1 + (y2 - y1) * at
            w = 7 * len(label) + 6
            out.append(f'<rect x="{mx - w / 2:.1f}" y="{my - 8:.1f}" width="{w}" height="13" rx="3" '
                       f'fill="#fff" fill-opacity="0.9"/>')
            out.append(f'<text class="lbl" x="{mx:.1f}" y="{my + 2:.1f}" text-anchor="middle" '
                       f'fill="{colour}">{_e(label)}</text>')
        return out

    def _arrow_title(self, msg: Message) -> str:
        t1 = self.view.events[msg.src_index][0]
        t2 = self.view.events[msg.dst_index][0] if msg.dst_index is not None else None
        what = {"data": f"{msg.nbytes} bytes", "connect": "connection", "fin": "end of stream"}[msg.kind]
        return f"{what}: {msg.src.label} at {t1:.6f}s -> {msg.dst.label} at {t2:.6f}s"

    def _marks(self) -> list[str]:
        out = []
        view = self.view
        labels = {s.label: self.x_of[s.key] for s in self.socks}
        for r, (kind, item) in enumerate(self.rows):
            y = self._y(r)
            if kind == "note":
                _, t, who, what = item
                x = labels.get(who)
                if x is not None:
                    out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#7c3aed" '
                               f'fill-opacity="0.7"/>')
                out.append(f'<text class="note" x="{self.desc_x}" y="{y + 4:.1f}">'
                           f'{_e(who)}: {_e(what)}</text>')
                continue
            index = item
            ev = view.events[index]
            sock = view.owner[index]
            what, tone = view.describe(index)
            x = self.x_of[sock.key] if sock is not None else self.net_x
            who = sock.label if sock is not None else "network"
            title = f"event {index} at {float(ev[0]):.6f}s: {who}: {what}"
            if tone == "fault":
                out.append(_bolt(x, y, title))
            elif ev[1] == "close":
                out.append(f'<path d="M{x - 5:.1f},{y - 5:.1f} l10,10 m0,-10 l-10,10" '
                           f'stroke="#374151" stroke-width="2"><title>{_e(title)}</title></path>')
            else:
                fill = {"error": "#dc2626", "partial": "#d97706", "quiet": "#9ca3af"}.get(tone, "#1f2430")
                radius = 3 if tone == "quiet" else 4
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{fill}">'
                           f'<title>{_e(title)}</title></circle>')
            css = tone or "desc"
            text = what.replace(" -> ", " → ")
            out.append(f'<text class="{css}" x="{self.desc_x}" y="{y + 4:.1f}">'
                       f'<tspan font-weight="600">{_e(who)}</tspan>  {_e(text)}</text>')
        return out


def _marker(name: str, colour: str) -> str:
    return (f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{colour}"/></marker>')


def _bolt(x: float, y: float, title: str) -> str:
    """A red lightning bolt centred on (x, y): a fault that fired."""
    return (f'<path d="M{x + 2:.1f},{y - 9:.1f} L{x - 5:.1f},{y + 1:.1f} L{x - 0.5:.1f},{y + 1:.1f} '
            f'L{x - 2.5:.1f},{y + 9:.1f} L{x + 5:.1f},{y - 2:.1f} L{x + 0.5:.1f},{y - 2:.1f} z" '
            f'fill="#dc2626" stroke="#fff" stroke-width="1"><title>{_e(title)}</title></path>')


def _legend() -> str:
    def item(svg: str, text: str) -> str:
        return f'<span><svg width="34" height="12">{svg}</svg>{_e(text)}</span>'

    return ('<div class="legend">'
            + item('<line x1="2" y1="6" x2="30" y2="6" stroke="#2563eb" stroke-width="2"/>',
                   "bytes from a client, sent → read")
            + item('<line x1="2" y1="6" x2="30" y2="6" stroke="#0f766e" stroke-width="2"/>',
                   "bytes back")
            + item('<line x1="2" y1="6" x2="30" y2="6" stroke="#6b7280" stroke-dasharray="6 4"/>',
                   "connect → accept")
            + item('<line x1="2" y1="6" x2="30" y2="6" stroke="#9ca3af" stroke-dasharray="2 3"/>',
                   "close → end of stream")
            + item(_bolt(17, 6, "fault").replace("<title>fault</title>", ""), "a fault fired")
            + item('<circle cx="17" cy="6" r="4" fill="#d97706"/>', "partial send")
            + item('<circle cx="17" cy="6" r="4" fill="#dc2626"/>', "error (EAGAIN, reset...)")
            + item('<circle cx="17" cy="6" r="3.5" fill="#7c3aed" fill-opacity="0.7"/>',
                   "the program's own remark")
            + "</div>")


def render_html(view: TraceView, title: str, limit: int = 2000) -> str:
    """A self-contained HTML page for *view*: the header (backend, seed,
    scenario, the plan in English with how often each rule fired), the
    message sequence diagram as inline SVG, and every event in a table.
    No scripts, no external resources."""
    h = view.header
    diagram = _Diagram(view, limit)
    backend = h.get("backend", "fake")
    kv = [("backend", f"{backend} network")]
    if backend == "fake":
        kv.append(("seed", h.get("seed")))
    if h.get("scenario"):
        kv.append(("scenario", h.get("scenario")))
    net = h.get("network") or {}
    shaped = [f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
              for k, v in net.items() if k in ("latency", "bandwidth", "shuffle") and v]
    if shaped:
        kv.append(("network", ", ".join(shaped)))
    kv.append(("events", f"{len(view.events)} in {view.duration():.6f} s "
                         f"({'virtual' if backend == 'fake' else 'wall-clock'})"))
    if view.demo:
        ok = bool(view.demo.get("ok"))
        kv.append(("result", f'<span class="{"ok" if ok else "bad"}">{"ok" if ok else "FAILED"}</span>: '
                             f'{_e(view.demo.get("result", ""))}'))
    if view.plan:
        items = []
        for n, rule in enumerate(view.plan.rules, 1):
            fired = view.fired.get(n, 0)
            items.append(f'<li>{_e(rule.describe())}<span class="fired{" hot" if fired else ""}" '
                         f'title="fired {fired} time(s)">{fired}×</span></li>')
        plan = f'<ol class="plan">{"".join(items)}</ol>'
    else:
        plan = '<p class="sub">No faults: the network behaved.</p>'
    for number in sorted(view.conns):
        pair = view.conns[number]
        client, server = pair.get("client"), pair.get("server")
        if client is not None and server is not None:
            kv.append((f"conn {number}", f"{client.label} → {server.label}: {client.sent} bytes, "
                                         f"{server.sent} back"))
    rows_kv = "".join(f"<tr><td>{_e(k)}</td><td>{v if k == 'result' else _e(v)}</td></tr>"
                      for k, v in kv)
    more = (f'<p class="sub">Diagram cut after {limit} rows; {diagram.truncated} more are in '
            f"the table below.</p>" if diagram.truncated else "")
    table = []
    for t, who, what, tone in timeline_rows(view, KINDS):
        table.append(f'<tr class="{tone}"><td>{t:.6f}</td><td>{_e(who)}</td>'
                     f'<td>{_e(what.replace(" -> ", " → "))}</td></tr>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="sub">simnet {_e(__version__)} trace: who sent what to whom, and which faults fired.</p>
<div class="cards">
<div class="card"><table class="kv">{rows_kv}</table></div>
<div class="card"><b>Fault plan</b>{plan}</div>
</div>
<h2>Message sequence</h2>
{_legend()}
{more}
<div class="diagram">
{diagram.svg()}
</div>
<details>
<summary>Every event ({len(view.events)}, with the program's remarks)</summary>
<table class="ev">{"".join(table)}</table>
</details>
</body>
</html>
"""

