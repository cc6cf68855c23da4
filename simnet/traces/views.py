"""Trace views: what a trace says, ready to show.

:class:`TraceView` analyses a :class:`~simnet.traces.trace.Trace` -- its sockets
(lifelines), connections, the bytes paired send to read, the fault plan --
and the text renderers turn it into the timeline and summary that
``simnet trace show`` prints (:func:`timeline_rows`, :func:`timeline_lines`,
:func:`summary_lines`, :func:`summary_text`, :func:`header_lines`). They take
a *style* function (``click.style``'s signature) so that the CLI colours
them and the pytest plugin prints them plain. The HTML sequence diagram is
in :mod:`simnet.traces.html`.
"""

from __future__ import annotations

import errno as _errno
import json
import sys
from typing import Any, Callable, Iterable, TextIO

from simnet.faults import FaultPlan, PlanError, Rule
from simnet.traces.trace import Trace, TraceError

__all__ = ["KINDS", "DEFAULT_KINDS", "TraceView", "Sock", "Message", "timeline_rows",
           "timeline_lines", "summary_lines", "summary_text", "header_lines", "plain",
           "arrows_ok"]

#: trace event kinds, and ``note`` (a remark a demo program made)
KINDS = ("socket", "bind", "listen", "connect", "accept", "send", "recv", "shutdown",
         "close", "fault", "timer", "ready", "note")
#: what ``trace show`` and the demo print unless ``--kind`` says otherwise
DEFAULT_KINDS = frozenset(KINDS) - {"ready", "socket"}

_FAKE_FD_BASE = 2_000_000_000
_SOCK_STREAM = 1
_IN_PROGRESS = {_errno.EINPROGRESS, _errno.EALREADY, _errno.EAGAIN}
_CONNECTED = {0, _errno.EISCONN}
_SHUT_WR = {1, 2}


def _fmt_addr(addr: Any) -> str:
    """``127.0.0.1:7000``, ``[::1]:7000``, a Unix path, or ``?``."""
    if isinstance(addr, (list, tuple)) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if addr is None or addr == "":
        return "?"
    return str(addr)


def _nbytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


def _errname(code: Any) -> str:
    """``EINPROGRESS`` for 115, a string unchanged."""
    if isinstance(code, int):
        return _errno.errorcode.get(code, f"errno {code}")
    return str(code)


class Sock:
    """One socket's life in a trace: a lifeline of the sequence diagram.

    A file number that is closed and reused starts a new :class:`Sock`.
    ``role`` is ``listener``, ``client`` (it connected), ``server`` (it came
    from accept), ``udp`` or ``socket`` (nothing told yet).
    """

    def __init__(self, key: int, fd: int, start: int) -> None:
        self.key = key
        self.fd = fd
        self.start = start
        self.end: int | None = None
        self.type: int | None = None
        self.role = "socket"
        self.local: str | None = None
        self.peer: str | None = None
        self.conn: int | None = None
        self.listener: Sock | None = None
        self.state = "new"
        self.connect_at: int | None = None
        self.fin_at: int | None = None
        self.sent = 0
        self.received = 0
        self.sends: list[tuple[int, int, int]] = []  # (event index, offset, bytes)
        self.recvs: list[tuple[int, int, int]] = []
        self.eofs: list[int] = []
        self.label = ""

    def __repr__(self) -> str:
        return f"<Sock {self.label or self.fd} {self.role} conn={self.conn}>"

    @property
    def short_fd(self) -> str:
        """The file number, fake ones counted from the fake base."""
        return f"#{self.fd - _FAKE_FD_BASE}" if self.fd >= _FAKE_FD_BASE else str(self.fd)


class Message:
    """An arrow of the diagram: ``data`` (bytes sent and read), ``connect``
    (connect to accept), ``fin`` (close/shutdown to end of stream) or
    ``lost`` (bytes sent and never read; ``dst_index`` is None)."""

    def __init__(self, kind: str, src: Sock, dst: Sock, src_index: int,
                 dst_index: int | None, nbytes: int = 0) -> None:
        self.kind = kind
        self.src = src
        self.dst = dst
        self.src_index = src_index
        self.dst_index = dst_index
        self.nbytes = nbytes


class TraceView:
    """What a trace says, ready to show: its sockets (lifelines), which
    socket each event belongs to, the connections, the arrows, the fault
    plan, and the demo's notes and labels if the header has them.

    Raises :class:`~simnet.traces.trace.TraceError` when the trace is
    inconsistent in a way that stops it being shown.
    """

    def __init__(self, trace: Trace, name: str = "trace") -> None:
        self.trace = trace
        self.name = name
        self.header = trace.header
        self.events: list[list[Any]] = trace.normalised()
        try:
            self.plan = FaultPlan(self.header.get("faults") or [])
        except (PlanError, TypeError, ValueError, RecursionError) as exc:
            raise TraceError(f"{name}:1: the header's fault plan is invalid: {exc}") from None
        demo = self.header.get("demo")
        self.demo: dict[str, Any] = demo if isinstance(demo, dict) else {}
        self.notes = self._read_notes(self.demo.get("notes"))
        labels = self.demo.get("labels")
        self.labels: dict[str, str] = labels if isinstance(labels, dict) else {}
        self.sockets: list[Sock] = []
        self._by_fd: dict[int, list[Sock]] = {}
        self.owner: list[Sock | None] = []
        self.conns: dict[int, dict[str, Sock]] = {}
        self.messages: list[Message] = []
        self.fired: dict[int, int] = {}
        self._analyse()
        self._name_sockets()
        self._pair_streams()

    @staticmethod
    def _read_notes(raw: Any) -> list[tuple[int, float, str, str]]:
        notes = []
        if isinstance(raw, list):
            for item in raw:
                if (isinstance(item, list) and len(item) == 4 and isinstance(item[0], int)
                        and isinstance(item[1], (int, float))):
                    notes.append((item[0], float(item[1]), str(item[2]), str(item[3])))
        return notes

    # -- analysis ---------------------------------------------------------------
    def _new_sock(self, fd: int, index: int) -> Sock:
        sock = Sock(len(self.sockets), fd, index)
        self.sockets.append(sock)
        self._by_fd.setdefault(fd, []).append(sock)
        return sock

    def _analyse(self) -> None:
        """One pass over the events: lifelines, roles, addresses, byte offsets."""
        live: dict[int, Sock] = {}
        next_conn = 0
        for i, ev in enumerate(self.events):
            kind, fd = ev[1], ev[2]
            if not isinstance(fd, int):
                raise TraceError(f"{self.name}:{i + 2}: event {i} has a file number {fd!r}, not an int")
            if kind == "socket":
                old = live.pop(fd, None)
                if old is not None and old.end is None:
                    old.end = i - 1
                sock = live[fd] = self._new_sock(fd, i)
                if len(ev) > 4 and isinstance(ev[4], int):
                    sock.type = ev[4]
                    if ev[4] != _SOCK_STREAM:
                        sock.role = "udp"
                self.owner.append(sock)
                continue
            if fd == -1:
                self.owner.append(None)
                if kind == "fault" and len(ev) > 3 and isinstance(ev[3], int):
                    self.fired[ev[3]] = self.fired.get(ev[3], 0) + 1
                continue
            sock = live.get(fd)
            if sock is None:  # a socket the trace did not see being made
                sock = live[fd] = self._new_sock(fd, i)
            self.owner.append(sock)
            arg = ev[3] if len(ev) > 3 else None
            if kind == "bind":
                sock.local = _fmt_addr(arg)
            elif kind == "listen":
                sock.role = "listener"
            elif kind == "connect":
                result = ev[4] if len(ev) > 4 else None
                if sock.role == "udp":
                    sock.peer = _fmt_addr(arg)
                    continue
                if sock.state == "new":
                    next_conn += 1
                    sock.conn, sock.role, sock.peer = next_conn, "client", _fmt_addr(arg)
                    sock.connect_at = i
                    self.conns.setdefault(next_conn, {})["client"] = sock
                    sock.state = "connecting"
                if result in _CONNECTED:
                    sock.state = "connected"
                elif result not in _IN_PROGRESS:
                    sock.state = "new"  # failed: the next connect is a new attempt
            elif kind == "accept":
                new_fd = arg
                conn = ev[5] if len(ev) > 5 else None
                if isinstance(new_fd, int):
                    new = live.get(new_fd)
                    if new is None or new.role != "socket":
                        new = live[new_fd] = self._new_sock(new_fd, i)
                    new.role, new.listener = "server", sock
                    new.local, new.peer = sock.local, _fmt_addr(ev[4] if len(ev) > 4 else None)
                    if isinstance(conn, int):
                        new.conn = conn
                        pair = self.conns.setdefault(conn, {})
                        pair["server"] = new
                        client = pair.get("client")
                        if client is not None:
                            client.local = new.peer
                            if client.connect_at is not None:
                                self.messages.append(Message("connect", client, new,
                                                             client.connect_at, i))
            elif kind == "send":
                taken = ev[4] if len(ev) > 4 else None
                if isinstance(taken, int) and taken > 0:
                    sock.sends.append((i, sock.sent, taken))
                    sock.sent += taken
            elif kind == "recv":
                got = ev[4] if len(ev) > 4 else None
                if isinstance(got, int):
                    if got > 0:
                        sock.recvs.append((i, sock.received, got))
                        sock.received += got
                    elif isinstance(arg, int) and arg > 0:
                        sock.eofs.append(i)
            elif kind == "shutdown":
                if arg in _SHUT_WR and sock.fin_at is None:
                    sock.fin_at = i
            elif kind == "close":
                if sock.fin_at is None:
                    sock.fin_at = i
                sock.end = i
                live.pop(fd, None)
            elif kind == "fault" and isinstance(arg, int):
                self.fired[arg] = self.fired.get(arg, 0) + 1

    def _name_sockets(self) -> None:
        """Give every socket a label: the demo's name for its address, else
        ``client#N`` / ``server#N`` / ``listener :port``."""
        for sock in self.sockets:
            named = self.labels.get(sock.local or "")
            if sock.role == "listener":
                port = (sock.local or "?").rpartition(":")[2]
                sock.label = named or f"listener :{port}"
            elif sock.role == "client":
                sock.label = named or f"client#{sock.conn}"
            elif sock.role == "server":
                base = self.labels.get(sock.listener.local or "") if sock.listener else None
                sock.label = f"{base or 'server'}#{sock.conn}"
            else:
                sock.label = f"{sock.role} {sock.short_fd}"

    def _pair_streams(self) -> None:
        """Arrows for the bytes of each connection, both ways: a send's bytes
        go to the recv (or recvs) that read them; bytes never read are lost."""
        for pair in self.conns.values():
            client, server = pair.get("client"), pair.get("server")
            if client is None or server is None:
                continue
            for src, dst in ((client, server), (server, client)):
                self._pair(src, dst)
                if src.fin_at is not None and dst.eofs:
                    self.messages.append(Message("fin", src, dst, src.fin_at, dst.eofs[0]))

    def _pair(self, src: Sock, dst: Sock) -> None:
        sends, recvs = src.sends, dst.recvs
        i = j = 0
        read_upto = dst.received
        while i < len(sends) and j < len(recvs):
            s_idx, s_off, s_n = sends[i]
            r_idx, r_off, r_n = recvs[j]
            lo, hi = max(s_off, r_off), min(s_off + s_n, r_off + r_n)
            if hi > lo:
                self.messages.append(Message("data", src, dst, s_idx, r_idx, hi - lo))
            if s_off + s_n <= r_off + r_n:
                i += 1
            else:
                j += 1
        for s_idx, s_off, s_n in sends[i:]:
            unread = s_off + s_n - max(s_off, read_upto)
            if unread > 0:
                self.messages.append(Message("lost", src, dst, s_idx, None, unread))

    # -- questions ----------------------------------------------------------------
    def rule_text(self, number: Any, where: bool = True) -> str:
        """Rule *number* (from 1) of the plan, in English (*where*: with its
        where-clause; without, just what goes wrong)."""
        if isinstance(number, int) and 1 <= number <= len(self.plan.rules):
            rule = self.plan.rules[number - 1]
            if not where and rule.where:
                rule = Rule(rule.fault, **rule.params)
            return rule.describe()
        return f"rule {number} (not in the header's plan)"

    def fault_summary(self) -> list[str]:
        """Each rule with how often it fired, as ``net.faults.summary()`` says it."""
        return [f"{n}. {rule.describe()}: fired {self.fired.get(n, 0)} time(s)"
                for n, rule in enumerate(self.plan.rules, 1)]

    def duration(self) -> float:
        """Seconds from the first event to the last."""
        if not self.events:
            return 0.0
        return float(self.events[-1][0]) - float(self.events[0][0])

    def ordered_sockets(self) -> list[Sock]:
        """Lifelines left to right: each connection's client next to its
        accepted socket (so its arrows cross nothing), then the listeners,
        then the rest."""
        order: list[Sock] = []
        for number in sorted(self.conns):
            pair = self.conns[number]
            order.extend(pair[side] for side in ("client", "server") if side in pair)
        seen = {s.key for s in order}
        rest = [s for s in self.sockets if s.key not in seen]
        order.extend(s for s in rest if s.role == "listener")
        order.extend(s for s in rest if s.role != "listener")
        return order

    def conn_of_event(self, index: int) -> int | None:
        """The connection event *index* belongs to, if any."""
        ev = self.events[index]
        if ev[1] == "fault":
            return ev[5] if len(ev) > 5 and isinstance(ev[5], int) else None
        if ev[1] == "accept":
            return ev[5] if len(ev) > 5 and isinstance(ev[5], int) else None
        sock = self.owner[index]
        return sock.conn if sock is not None else None

    def describe(self, index: int) -> tuple[str, str]:
        """Event *index* as ``(what, tone)``; tone is '', 'fault', 'error',
        'partial' or 'quiet'."""
        ev = self.events[index]
        kind = ev[1]
        a = ev[3:]
        get = (lambda k: a[k] if len(a) > k else None)
        if kind == "socket":
            kind_name = {1: "TCP", 2: "UDP"}.get(get(1), f"type {get(1)}")
            family = {1: "unix", 2: "IPv4", 10: "IPv6"}.get(get(0), f"family {get(0)}")
            return f"socket ({kind_name}, {family})", "quiet"
        if kind == "bind":
            return f"bind {_fmt_addr(get(0))}", "quiet"
        if kind == "listen":
            return f"listen (backlog {get(0)})", "quiet"
        if kind == "connect":
            result = get(1)
            if result in _CONNECTED:
                outcome = "connected"
            elif result in _IN_PROGRESS:
                outcome = f"in progress ({_errname(result)})"
            else:
                return f"connect {_fmt_addr(get(0))} -> {_errname(result)}", "error"
            return f"connect {_fmt_addr(get(0))} -> {outcome}", ""
        if kind == "accept":
            if not isinstance(get(0), int):
                return f"accept -> {_errname(get(0))}", "error"
            return f"accept conn {get(2)} from {_fmt_addr(get(1))}", ""
        if kind == "send":
            offered, taken = get(0), get(1)
            if not isinstance(taken, int):
                return f"send {offered} bytes -> {_errname(taken)}", "error"
            if taken < (offered or 0):
                return f"send {taken} of {offered} bytes (partial)", "partial"
            return f"send {_nbytes(taken)}", ""
        if kind == "recv":
            got = get(1)
            if not isinstance(got, int):
                return f"recv -> {_errname(got)}", "error"
            if got == 0:
                return "recv -> end of stream", ""
            return f"recv {_nbytes(got)}", ""
        if kind == "shutdown":
            how = {0: "SHUT_RD", 1: "SHUT_WR", 2: "SHUT_RDWR"}.get(get(0), get(0))
            return f"shutdown {how}", ""
        if kind == "close":
            return "close", "quiet"
        if kind == "fault":
            return f"fault {get(0)}: {self.rule_text(get(0), where=False)}", "fault"
        if kind == "timer":
            return f"timer {get(0)}", ""
        if kind == "ready":
            return (f"ready: read {self._fd_names(get(0), index)}, "
                    f"write {self._fd_names(get(1), index)}", "quiet")
        return f"{kind} {json.dumps(list(a))}", ""

    def _fd_names(self, fds: Any, index: int) -> str:
        """The labels of the sockets with file numbers *fds* at event *index*."""
        if not isinstance(fds, list) or not fds:
            return "-"
        names = []
        for item in fds:
            fd = item[0] if isinstance(item, list) and item else item
            sock = next((s for s in self._by_fd.get(fd, ()) if s.start <= index
                         and (s.end is None or s.end >= index)), None)
            names.append(sock.label if sock is not None else str(fd))
        return ",".join(names)




# -- text output -------------------------------------------------------

_PALETTE = ("cyan", "magenta", "yellow", "green", "blue", "bright_cyan", "bright_magenta",
            "bright_green")

#: a styling function with ``click.style``'s signature (text, fg=, bold=, dim=, italic=)
Style = Callable[..., str]


def plain(text: str, **_styles: Any) -> str:
    """The no-colour *style*: *text* unchanged."""
    return text


def arrows_ok(stream: TextIO | None = None) -> bool:
    """Can *stream* (default: stdout) show a few non-ASCII glyphs?"""
    stream = sys.stdout if stream is None else stream
    enc = getattr(stream, "encoding", None) or "ascii"
    try:
        "→⚡»".encode(enc)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def timeline_rows(view: TraceView, kinds: Iterable[str] = DEFAULT_KINDS,
                  conn: int | None = None) -> list[tuple[float, str, str, str]]:
    """The timeline as ``(time, who, what, tone)`` rows: events of *kinds*
    (``note``: the demo's remarks, placed among the events) of connection
    *conn* (None: all)."""
    kinds = set(kinds)
    rows: list[tuple[float, str, str, str]] = []
    notes = sorted(view.notes, key=lambda n: n[0]) if "note" in kinds else []
    conn_labels: set[str] | None = None
    if conn is not None:
        pair = view.conns.get(conn, {})
        conn_labels = {s.label for s in pair.values()}
        conn_labels |= {s.listener.label for s in pair.values() if s.listener is not None}
    k = 0

    def flush(upto: int) -> None:
        nonlocal k
        while k < len(notes) and notes[k][0] <= upto:
            _, t, who, what = notes[k]
            if conn_labels is None or who in conn_labels:
                rows.append((t, who, what, "note"))
            k += 1

    for i, ev in enumerate(view.events):
        flush(i)
        if ev[1] not in kinds:
            continue
        if conn is not None and view.conn_of_event(i) != conn:
            continue
        sock = view.owner[i]
        who = sock.label if sock is not None else "network"
        what, tone = view.describe(i)
        rows.append((float(ev[0]), who, what, tone))
    flush(len(view.events) + len(notes) + 1)
    return rows


def _styled_row(row: tuple[float, str, str, str], who_width: int, colours: dict[str, str],
                fancy: bool, style: Style) -> str:
    t, who, what, tone = row
    stamp = style(f"{t:11.6f}", dim=True)
    name = style(f"{who[:who_width]:<{who_width}}", fg=colours.get(who, "white"), bold=True)
    if fancy:
        what = what.replace(" -> ", " → ")
    if tone == "note":
        text = style(("» " if fancy else "> ") + what, fg="bright_black", italic=True)
    elif tone == "fault":
        text = style(("⚡ " if fancy else "!! ") + what, fg="red", bold=True)
    elif tone == "error":
        text = style(what, fg="red")
    elif tone == "partial":
        text = style(what, fg="yellow")
    elif tone == "quiet":
        text = style(what, dim=True)
    else:
        text = what
    return f"  {stamp}  {name}  {text}"


def timeline_lines(view: TraceView, rows: list[tuple[float, str, str, str]],
                   limit: int | None = None, *, style: Style = plain,
                   fancy: bool | None = None, more_hint: str = "raise --limit to see them"
                   ) -> list[str]:
    """*rows* (at most *limit*) as aligned lines under a heading, as
    ``simnet trace show`` prints them; *style* colours them (default:
    :func:`plain`), *fancy* allows arrows and bolts (default: if stdout
    can show them). With *limit*, the last line counts the rows left out."""
    fancy = arrows_ok() if fancy is None else fancy
    order = [s.label for s in view.ordered_sockets()]
    colours = {label: _PALETTE[n % len(_PALETTE)] for n, label in enumerate(dict.fromkeys(order))}
    for _, who, _, tone in rows:
        if tone == "note" and who not in colours:
            colours[who] = _PALETTE[len(colours) % len(_PALETTE)]
    shown = rows if limit is None else rows[:limit]
    width = min(16, max([len(r[1]) for r in shown] + [4]))
    clock = "virtual" if view.header.get("backend", "fake") == "fake" else "wall-clock"
    out = [style(f"  {'time (s)':>11}  {'who':<{width}}  what   ({clock} seconds)", bold=True)]
    for row in shown:
        out.append(_styled_row(row, width, colours, fancy, style))
    if limit is not None and len(rows) > limit:
        out.append(style(f"  ... {len(rows) - limit} more ({more_hint})", dim=True))
    return out


def summary_lines(view: TraceView, wall: float | None = None,
                  trace_path: str | None = None) -> list[tuple[str, str]]:
    """The summary as ``(heading, text)`` pairs: result, connections, bytes
    each way per connection, faults fired per rule, virtual/wall time."""
    out: list[tuple[str, str]] = []
    if view.demo:
        ok = view.demo.get("ok")
        out.append(("result", f"{'ok' if ok else 'FAILED'}: {view.demo.get('result', '')}"))
    clients = sum(1 for p in view.conns.values() if "client" in p)
    accepted = sum(1 for p in view.conns.values() if "server" in p)
    out.append(("connections", f"{clients} made, {accepted} accepted"))
    for number in sorted(view.conns):
        pair = view.conns[number]
        client, server = pair.get("client"), pair.get("server")
        if client is not None and server is not None:
            text = (f"{client.label} -> {server.label}: {client.sent} bytes sent, {server.received} read; "
                    f"back: {server.sent} sent, {client.received} read")
        else:
            one = client or server
            text = f"{one.label}: {one.sent} bytes sent, {one.received} read (peer not in the trace)"
        out.append((f"conn {number}", text))
    fired = view.fault_summary()
    if fired:
        for n, line in enumerate(fired):
            out.append(("faults fired" if n == 0 else "", line))
    else:
        out.append(("faults fired", "no fault plan"))
    if view.header.get("backend", "fake") == "fake":
        timing = f"{view.duration():.6f} s virtual"
        if wall is not None:
            timing += f", {wall:.3f} s wall"
    else:
        timing = f"{view.duration():.6f} s wall (real sockets)"
    out.append(("time", timing))
    out.append(("events", str(len(view.events))))
    if trace_path is not None:
        out.append(("trace", trace_path))
    return out


def summary_text(lines: list[tuple[str, str]], *, style: Style = plain,
                 fancy: bool | None = None) -> list[str]:
    """A summary from :func:`summary_lines` as printed lines."""
    fancy = arrows_ok() if fancy is None else fancy
    out = [style("summary", bold=True)]
    width = max(len(h) for h, _ in lines)
    for heading, text in lines:
        if fancy:
            text = text.replace(" -> ", " → ")
        if heading == "result":
            text = style(text, fg="green" if text.startswith("ok") else "red", bold=True)
        out.append(f"  {heading:<{width}}  {text}")
    return out


def header_lines(view: TraceView, title: str, *, style: Style = plain) -> list[str]:
    """What a trace is -- backend, scenario, seed, links, the plan in
    English -- under *title*, then an empty line."""
    h = view.header
    out = [style(title, bold=True)]
    backend = h.get("backend", "fake")
    bits = [f"{backend} network"]
    if backend == "fake":
        bits.append(f"seed {h.get('seed')}")
    if h.get("scenario"):
        bits.append(f"scenario {h.get('scenario')}")
    if h.get("test"):
        bits.append(f"test {h.get('test')}")
    out.append("  " + ", ".join(bits))
    net = h.get("network") or {}
    if not isinstance(net, dict):
        net = {}
    if net.get("latency") or net.get("bandwidth"):
        out.append(f"  links: {net.get('latency', 0):g} s latency"
                   + (f", {net['bandwidth']:g} bytes/s" if net.get("bandwidth") else ""))
    out.append("  faults:" if view.plan else "  faults: none")
    for line in view.plan.describe().splitlines() if view.plan else ():
        out.append("    " + line)
    out.append("")
    return out
