"""The ``simnet`` command (also ``python -m simnet``), built on click.

Commands:

``simnet demo``
    Runs an example dispatcher program (:mod:`simnet.examples.demo`) on the
    fake network under a fault mix -- or, with ``--real``, on loopback
    sockets -- prints its timeline and a summary, and writes its trace.
``simnet trace show FILE`` / ``simnet trace html FILE -o OUT.html``
    A trace's timeline in the terminal, or as a self-contained HTML page with
    a message sequence diagram.
``simnet replay FILE``
    Reruns a recorded scenario strictly; exit status 1 when it diverges.

Bad input -- a missing or corrupt trace, an invalid fault plan, an unknown
example, a bad option -- gets a one-line error and exit status 2, never a
traceback (:class:`SimnetGroup`). The trace analysis behind the timeline
and the diagram is :class:`TraceView`; the renderers are
:func:`timeline_rows`, :func:`summary_lines` and :func:`render_html`.
"""

from __future__ import annotations

import bisect
import errno as _errno
import html
import json
import os
import shlex
import sys
import time
from typing import Any, Iterable, Sequence

import click

from simnet import __version__
from simnet.examples import demo as demos
from simnet.faults import FaultPlan, PlanError, Rule
from simnet.replay import ReplayDivergence, load_scenario, record, replay as run_replay
from simnet.trace import Trace, TraceError

__all__ = ["main", "cli", "TraceView", "timeline_rows", "summary_lines", "render_html",
           "InputError", "SimnetGroup"]

#: trace event kinds, and ``note`` (a remark a demo program made)
KINDS = ("socket", "bind", "listen", "connect", "accept", "send", "recv", "shutdown",
         "close", "fault", "timer", "ready", "note")
#: what ``trace show`` and the demo print unless ``--kind`` says otherwise
DEFAULT_KINDS = frozenset(KINDS) - {"ready", "socket"}
DEFAULT_TRACE_PATH = "simnet-demo.jsonl"

_FAKE_FD_BASE = 2_000_000_000
_SOCK_STREAM = 1
_IN_PROGRESS = {_errno.EINPROGRESS, _errno.EALREADY, _errno.EAGAIN}
_CONNECTED = {0, _errno.EISCONN}
_SHUT_WR = {1, 2}


# -- errors -------------------------------------------------------------------------

class InputError(click.ClickException):
    """Bad input -- a file, a fault plan, an example: a one-line error and
    exit status 2. It names the command that was running when it was made."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))
        ctx = click.get_current_context(silent=True)
        self.command_path = ctx.command_path if ctx is not None else "simnet"


def _one_line(text: str) -> str:
    """*text* on one line: its lines joined with ``"; "``."""
    parts = [part.strip() for part in str(text).strip().splitlines() if part.strip()]
    return "; ".join(parts)


class SimnetGroup(click.Group):
    """The command group; its :meth:`main` turns every click error into one
    line on stderr (``simnet demo: error: ...``) with the error's exit
    status (2 for usage and input errors), never a usage block or a
    traceback."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Run the command line; return (or, standalone, exit with) its status."""
        code = self._run(args, prog_name or "simnet", complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, args: Sequence[str] | None, prog_name: str, complete_var: str | None,
             extra: dict[str, Any]) -> int:
        help_error = getattr(click.exceptions, "NoArgsIsHelpError", ())
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except help_error as exc:  # a group called without a command: its help
            exc.show()
            return 2
        except click.UsageError as exc:
            path = exc.ctx.command_path if exc.ctx is not None else prog_name
            hint = f" (see '{path} --help')" if exc.ctx is not None else ""
            click.echo(f"{path}: error: {_one_line(exc.format_message())}{hint}", err=True)
            return exc.exit_code
        except click.ClickException as exc:
            where = getattr(exc, "command_path", None) or prog_name
            click.echo(f"{where}: error: {_one_line(exc.format_message())}", err=True)
            return exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            return 1
        # (a closed stdout pipe, as in `simnet trace show ... | head`, is
        # click's: it exits with status 1 quietly)
        return rv if isinstance(rv, int) else 0


# -- reading traces -------------------------------------------------------------------

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

    Raises :class:`~simnet.trace.TraceError` when the trace is
    inconsistent in a way that stops it being shown.
    """

    def __init__(self, trace: Trace, name: str = "trace") -> None:
        self.trace = trace
        self.name = name
        self.header = trace.header
        self.events: list[list[Any]] = trace.normalised()
        try:
            self.plan = FaultPlan(self.header.get("faults") or [])
        except (PlanError, TypeError) as exc:
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


def load_view(path: str) -> TraceView:
    """Load and analyse the trace at *path*; bad input is an :class:`InputError`."""
    try:
        trace = Trace.load(path)
        return TraceView(trace, path)
    except TraceError as exc:
        raise InputError(str(exc)) from None


# -- text output -----------------------------------------------------------------------

_PALETTE = ("cyan", "magenta", "yellow", "green", "blue", "bright_cyan", "bright_magenta",
            "bright_green")


def _arrow_ok() -> bool:
    """Can stdout show a few non-ASCII glyphs?"""
    enc = getattr(sys.stdout, "encoding", None) or "ascii"
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
                fancy: bool) -> str:
    t, who, what, tone = row
    stamp = click.style(f"{t:11.6f}", dim=True)
    name = click.style(f"{who[:who_width]:<{who_width}}", fg=colours.get(who, "white"), bold=True)
    if fancy:
        what = what.replace(" -> ", " → ")
    if tone == "note":
        text = click.style(("» " if fancy else "> ") + what, fg="bright_black", italic=True)
    elif tone == "fault":
        text = click.style(("⚡ " if fancy else "!! ") + what, fg="red", bold=True)
    elif tone == "error":
        text = click.style(what, fg="red")
    elif tone == "partial":
        text = click.style(what, fg="yellow")
    elif tone == "quiet":
        text = click.style(what, dim=True)
    else:
        text = what
    return f"  {stamp}  {name}  {text}"


def echo_timeline(view: TraceView, rows: list[tuple[float, str, str, str]],
                  limit: int | None = None) -> None:
    """Print *rows* (at most *limit*) as aligned, coloured lines."""
    fancy = _arrow_ok()
    order = [s.label for s in view.ordered_sockets()]
    colours = {label: _PALETTE[n % len(_PALETTE)] for n, label in enumerate(dict.fromkeys(order))}
    for _, who, _, tone in rows:
        if tone == "note" and who not in colours:
            colours[who] = _PALETTE[len(colours) % len(_PALETTE)]
    shown = rows if limit is None else rows[:limit]
    width = min(16, max([len(r[1]) for r in shown] + [4]))
    clock = "virtual" if view.header.get("backend", "fake") == "fake" else "wall-clock"
    click.echo(click.style(f"  {'time (s)':>11}  {'who':<{width}}  what   ({clock} seconds)", bold=True))
    for row in shown:
        click.echo(_styled_row(row, width, colours, fancy))
    if limit is not None and len(rows) > limit:
        click.echo(click.style(f"  ... {len(rows) - limit} more (raise --limit to see them)", dim=True))


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


def echo_summary(lines: list[tuple[str, str]]) -> None:
    """Print a summary from :func:`summary_lines`."""
    fancy = _arrow_ok()
    click.echo(click.style("summary", bold=True))
    width = max(len(h) for h, _ in lines)
    for heading, text in lines:
        if fancy:
            text = text.replace(" -> ", " → ")
        if heading == "result":
            text = click.style(text, fg="green" if text.startswith("ok") else "red", bold=True)
        click.echo(f"  {heading:<{width}}  {text}")


def _plan_text(view: TraceView) -> str:
    return view.plan.describe() if view.plan else "no faults"


def echo_header(view: TraceView, title: str) -> None:
    """Print what a trace is: backend, scenario, seed and the plan in English."""
    h = view.header
    click.echo(click.style(title, bold=True))
    backend = h.get("backend", "fake")
    bits = [f"{backend} network"]
    if backend == "fake":
        bits.append(f"seed {h.get('seed')}")
    if h.get("scenario"):
        bits.append(f"scenario {h.get('scenario')}")
    click.echo("  " + ", ".join(bits))
    net = h.get("network") or {}
    if net.get("latency") or net.get("bandwidth"):
        click.echo(f"  links: {net.get('latency', 0):g} s latency"
                   + (f", {net['bandwidth']:g} bytes/s" if net.get("bandwidth") else ""))
    click.echo("  faults:" if view.plan else "  faults: none")
    for line in _plan_text(view).splitlines() if view.plan else ():
        click.echo("    " + line)
    click.echo()


# -- HTML -----------------------------------------------------------------------------------

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


# -- the commands ------------------------------------------------------------------------

class FaultPlanType(click.ParamType):
    """``--faults``: a JSON fault plan, or ``@FILE`` holding one."""

    name = "JSON|@FILE"

    def convert(self, value: Any, param: Any, ctx: Any) -> FaultPlan:
        if isinstance(value, FaultPlan):
            return value
        text = str(value)
        if text.startswith("@"):
            path = text[1:]
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as exc:
                self.fail(f"cannot read fault plan file {path!r}: {exc.strerror or exc}", param, ctx)
            except UnicodeDecodeError:
                self.fail(f"fault plan file {path!r} is not UTF-8 text", param, ctx)
        try:
            return FaultPlan.from_json(text)
        except PlanError as exc:
            self.fail(str(exc), param, ctx)


def _parse_kinds(ctx: Any, param: Any, value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    kinds = {k.strip() for k in value.split(",") if k.strip()}
    if "all" in kinds:
        return frozenset(KINDS)
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        raise click.BadParameter(f"unknown kind {', '.join(map(repr, unknown)) or repr(value)} "
                                 f"(known: {', '.join(KINDS)}, all)", ctx=ctx, param=param)
    return frozenset(kinds)


@click.group("simnet", cls=SimnetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="simnet", message="%(prog)s %(version)s")
def cli() -> None:
    """asyncore/asynchat on real sockets or a deterministic fake network.

    Start with `simnet demo`: an example program under injected faults,
    its timeline, and a trace you can show, render and replay.
    """


@cli.command(short_help="Run an example program under faults and show its timeline.")
@click.option("--seed", type=click.IntRange(min=0), default=None, metavar="N",
              help="Seed of the fake network (default 1): same seed, same run.")
@click.option("--faults", "plan", type=FaultPlanType(), default=None,
              help="The fault plan, as JSON or @FILE (default: a mix of latency, partial "
                   "sends, short reads and spurious EAGAINs; '[]' for none).")
@click.option("--example", type=click.Choice(list(demos.EXAMPLES)), default="echo",
              show_default=True, help="Which example program to run.")
@click.option("--trace", "trace_path", default=None, metavar="PATH",
              help=f"Where to write the trace (default {DEFAULT_TRACE_PATH}; "
                   "with --real, only if given).")
@click.option("--real", is_flag=True, help="Run on real loopback sockets instead (no faults).")
def demo(seed: int | None, plan: FaultPlan | None, example: str, trace_path: str | None,
         real: bool) -> None:
    """Run an example program and show what happened.

    By default the example runs on the fake network, in virtual time, under
    a mix of faults; the timeline shows every socket operation, each fault
    that fired and the program's own remarks, and the trace it writes
    replays with `simnet replay`.
    """
    if real and seed is not None:
        raise click.UsageError("--seed applies to the fake network; drop it or drop --real")
    if real and plan is not None:
        raise click.UsageError("--faults applies to the fake network; real sockets get no faults")
    started = time.perf_counter()
    if real:
        trace = demos.run_real(example)
    else:
        seed = demos.DEFAULT_SEED if seed is None else seed
        plan = FaultPlan(demos.DEFAULT_FAULTS) if plan is None else plan
        trace = record(demos.SCENARIOS[example], None, seed=seed, faults=plan)
    wall = time.perf_counter() - started
    if trace_path is None and not real:
        trace_path = DEFAULT_TRACE_PATH
    if trace_path is not None:
        try:
            trace.write(trace_path)
        except OSError as exc:
            raise InputError(f"cannot write the trace to {trace_path!r}: "
                             f"{exc.strerror or exc}") from None
    view = TraceView(trace, trace_path or "demo")
    where = "real loopback sockets" if real else "the fake network"
    echo_header(view, f"simnet {__version__} demo '{example}': {demos.EXAMPLES[example]}, on {where}")
    echo_timeline(view, timeline_rows(view, DEFAULT_KINDS))
    click.echo()
    lines = summary_lines(view, wall=wall)
    if real:
        lines = [(h, t) for h, t in lines if h != "faults fired"]
    if trace_path is not None:
        quoted = shlex.quote(trace_path)
        lines.append(("trace", trace_path))
        lines.append(("next", f"simnet trace html {quoted}" + (
            f"  ·  simnet replay {quoted}" if not real else "  (real sockets: no replay)")))
    echo_summary(lines)
    if not view.demo.get("ok"):
        click.get_current_context().exit(1)


@cli.group()
def trace() -> None:
    """Look at a trace file: its timeline, or an HTML sequence diagram."""


@trace.command("show", short_help="Print a trace's timeline.")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--conn", type=click.IntRange(min=1), default=None, metavar="N",
              help="Only the n-th connection's events.")
@click.option("--kind", "kinds", callback=_parse_kinds, default=None, metavar="K1,K2,...",
              help=f"Only these kinds ({', '.join(KINDS)}; 'all'). Default: all but ready and socket.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Show at most N lines.")
def trace_show(file: str, conn: int | None, kinds: frozenset[str] | None,
               limit: int | None) -> None:
    """Print the timeline of trace FILE."""
    view = load_view(file)
    if conn is not None and conn not in view.conns:
        known = ", ".join(map(str, sorted(view.conns))) or "none"
        raise InputError(f"{file} has no connection {conn} (connections: {known})")
    echo_header(view, f"trace {file}")
    echo_timeline(view, timeline_rows(view, kinds or DEFAULT_KINDS, conn), limit)
    if conn is None and kinds is None:
        click.echo()
        echo_summary(summary_lines(view))


@trace.command("html", short_help="Write a trace as an HTML message sequence diagram.")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("-o", "--output", default=None, metavar="OUT.html",
              help="Where to write the page (default: FILE with .html; '-' for stdout).")
@click.option("--limit", type=click.IntRange(min=1), default=2000, show_default=True,
              metavar="N", help="At most N rows in the diagram (the table has every event).")
def trace_html(file: str, output: str | None, limit: int) -> None:
    """Write trace FILE as a self-contained HTML page with a message sequence
    diagram: sockets as lifelines, bytes as arrows, faults marked."""
    view = load_view(file)
    page = render_html(view, f"simnet trace: {os.path.basename(file)}", limit)
    if output == "-":
        click.echo(page, nl=False)
        return
    if output is None:
        output = os.path.splitext(file)[0] + ".html"
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        raise InputError(f"cannot write {output!r}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output} ({len(view.events)} events, {len(view.sockets)} sockets)")


@cli.command(short_help="Rerun a trace's scenario and check it event by event.")
@click.argument("file", type=click.Path(dir_okay=True))
def replay(file: str) -> None:
    """Rerun the scenario recorded in trace FILE and check it event by event.

    Exit status 0: identical; 1: it diverged (the first difference is shown).
    """
    try:
        header = Trace.load(file).header
    except TraceError as exc:
        raise InputError(str(exc)) from None
    if header.get("backend", "fake") != "fake":
        raise InputError(f"{file}: recorded on the {header.get('backend')} network; "
                         "only fake-network traces can be replayed")
    if not header.get("scenario"):
        raise InputError(f"{file}: the header names no scenario, so there is nothing to "
                         "rerun (record it with simnet.record())")
    try:
        scenario = lookup_scenario(header["scenario"])
        FaultPlan(header.get("faults") or [])
    except (PlanError, ValueError, TypeError) as exc:
        raise InputError(f"{file}: cannot replay: {exc}") from None
    try:
        result = run_replay(file, scenario=scenario)
    except ReplayDivergence as exc:
        click.echo(click.style("diverged", fg="red", bold=True) + f": {file}")
        click.echo(str(exc))
        click.get_current_context().exit(1)
    except TraceError as exc:
        raise InputError(str(exc)) from None
    except Exception as exc:  # the scenario itself failed
        click.echo(f"simnet replay: error: the scenario raised {type(exc).__name__}: "
                   f"{_one_line(str(exc))}", err=True)
        click.get_current_context().exit(1)
    h = result.trace.header
    click.echo(click.style("identical", fg="green", bold=True)
               + f", {result.events} events ({file}: {h.get('scenario')}, seed {h.get('seed')})")
    if result.failure:
        click.echo(f"the recorded failure reproduced: {result.failure}")


def lookup_scenario(name: str) -> Any:
    """The scenario function *name* (``module:function``) names, imported as
    ``python -m`` would: the current directory is searched first, so a
    user's own module next to them is found (a console script's
    ``sys.path`` lacks it). Used by ``explore`` and by ``replay`` on the
    traces it writes. Bad names and modules that fail to import are a
    one-line :class:`ValueError` naming the scenario."""
    cwd = os.getcwd()
    if not any(entry in ("", ".", cwd) for entry in sys.path):
        sys.path.insert(0, cwd)
    if not isinstance(name, str) or name.count(":") != 1 or not all(
            part and all(p.isidentifier() for p in part.split("."))
            for part in name.split(":")):
        raise ValueError(f"scenario must be MODULE:FUNCTION (dotted names), got {name!r}")
    try:
        return load_scenario(name)
    except ValueError:
        raise
    except Exception as exc:  # the module itself raised while importing
        raise ValueError(f"cannot import scenario module {name.partition(':')[0]!r}: "
                         f"{type(exc).__name__}: {_one_line(str(exc))}") from None


class _FiniteSeconds(click.ParamType):
    name = "seconds"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not number >= 0 or number == float("inf"):
            self.fail(f"{value!r} is not a finite number of seconds >= 0", param, ctx)
        return number


#: the most worker processes `explore -j` starts
MAX_JOBS = 256


class _Progress:
    """Explore's progress: a bar on a terminal; elsewhere (a CI log, a pipe)
    a line every *every* seconds and one at the end."""

    def __init__(self, total: int, every: float, stream: Any = None, where: str = "exploring",
                 tasks: int | None = None) -> None:
        self.total = total
        self.where = where
        self.tasks = tasks  # with a total of tasks (a cluster run), count them: one call each
        self.tasks_done = 0
        self.every = every
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = self.last = time.monotonic()
        self.done = 0
        self.failures = 0
        self.bar: Any = None
        if self.tty:
            self.bar = click.progressbar(length=total, label=where, file=self.stream,
                                         show_pos=True)
            self.bar.__enter__()

    def __call__(self, done: int, total: int, failures: int) -> None:
        step, self.done, self.failures = done - self.done, done, failures
        self.tasks_done += 1
        if self.bar is not None:
            self.bar.label = (f"{self.where} ({failures} failure{'s' if failures != 1 else ''}"
                              f"{self._tasks()})")
            self.bar.update(step)
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        rate = self.done / (now - self.start) if now > self.start else 0.0
        click.echo(f"{self.where}: {self.done}/{self.total} runs{self._tasks()}, {self.failures} "
                   f"distinct failure{'s' if self.failures != 1 else ''}, {rate:.0f} runs/s",
                   file=self.stream)

    def _tasks(self) -> str:
        return f", {self.tasks_done}/{self.tasks} tasks" if self.tasks else ""

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        else:
            self._line(time.monotonic())


@cli.command(short_help="Search seeds and random fault plans for failures of a scenario.")
@click.argument("scenario", metavar="MODULE:FUNCTION")
@click.option("--seeds", type=click.IntRange(min=1), default=100, show_default=True,
              help="How many (seed, fault plan) pairs to try.")
@click.option("-j", "--jobs", type=click.IntRange(min=0, max=MAX_JOBS), default=1,
              show_default=True, help="Processes to run in parallel (0: one per core).")
@click.option("--faults", "kinds", default=None, metavar="KIND,...",
              help="Fault kinds to draw from (default: all but eintr).")
@click.option("--max-rules", type=click.IntRange(min=1, max=10), default=3, show_default=True,
              help="Largest plan tried.")
@click.option("--permanent", is_flag=True,
              help="Also draw faults that break the network for good (every connect "
                   "refused, forever): for programs that must give up cleanly.")
@click.option("--stop/--keep-going", default=False,
              help="Stop at the first failure, or search everything (default).")
@click.option("--trace-dir", default=None, metavar="DIR",
              help="Where the traces of failures go (default: a new temporary directory).")
@click.option("--progress-every", type=_FiniteSeconds(), default=5.0, show_default=True,
              metavar="SECONDS", help="When not on a terminal: a progress line this often.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run on the Dask cluster of this scheduler (needs simnet[distributed]).")
@click.option("--shard", default=None, metavar="I/N",
              help="Run the I-th of N disjoint slices of the seeds (a CI matrix of N jobs).")
def explore(scenario: str, seeds: int, jobs: int, kinds: str | None, max_rules: int,
            permanent: bool, stop: bool, trace_dir: str | None, progress_every: float,
            scheduler: str | None = None, shard: str | None = None) -> None:
    """Run MODULE:FUNCTION -- a function `scenario(net)` that raises when the
    program misbehaves -- under many seeds and random fault plans, on all
    the cores asked for. The plans are transient: every fault that could stop
    the network stops (after a few firings, a time window, one connection or
    one call), so a program that retries survives them and a failure is a
    bug. Each distinct failure is shrunk to its smallest plan and printed
    with its seed, how often it was seen and a replay command; a few traces
    of each are written. The program's own output is captured, and counted.

    Exit status 0: no failure found; 1: failures found; 2: bad input. For
    runs across machines, --scheduler tcp://HOST:PORT runs the search on a
    Dask cluster, and --shard I/N splits it over the jobs of a CI matrix.
    """
    from simnet import explore as explore_mod
    from simnet.distributed import ClusterError

    try:
        lookup_scenario(scenario)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    faults = [k.strip() for k in kinds.split(",")] if kinds is not None else None
    if faults is not None:
        from simnet.faults import FAULTS

        unknown = [k for k in faults if k not in FAULTS]
        if unknown or not faults:
            names = ", ".join(k or "''" for k in unknown)
            raise InputError(f"--faults: unknown fault kind(s) {names}; "
                             f"known: {', '.join(FAULTS)}")
    if trace_dir is not None:
        try:
            trace_dir = explore_mod.check_trace_dir(trace_dir)
        except ValueError as exc:
            raise InputError(f"--trace-dir: {exc}") from None
    client = _explore_cluster(scheduler, jobs, shard)  # None unless --scheduler
    if client is not None:
        bar = _Progress(seeds, progress_every, where=f"exploring on {scheduler}",
                        tasks=len(explore_mod.chunks(seeds)))
    else:
        bar = _Progress(seeds, progress_every)
    stats: dict[str, Any] = {}
    try:
        failures = explore_mod.explore(scenario, seeds=seeds, jobs=jobs, faults=faults,
                                       max_rules=max_rules, stop=stop, trace_dir=trace_dir,
                                       permanent=permanent, progress=bar, stats=stats,
                                       scheduler=client, shard=shard)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except ClusterError as exc:  # the cluster could not run it
        raise InputError(str(exc)) from None
    finally:
        bar.close()
        if client is not None:
            client.close()
    runs = stats.get("runs", seeds)
    if stats.get("output_lines"):
        top = next(iter(stats["output"].items()), None)
        common = f"; most often ({top[1]}x): {top[0]}" if top else ""
        click.echo(f"the program wrote {stats['output_lines']} line(s) of output over {runs} "
                   f"runs (captured){common}")
    if not failures:
        click.echo(click.style("no failure", fg="green", bold=True) + f" in {runs} runs of {scenario}")
        return
    click.echo(click.style(f"{len(failures)} distinct failure(s)", fg="red", bold=True)
               + f" in {runs} runs of {scenario}:")
    for i, failure in enumerate(failures, 1):
        click.echo(f"\n{i}. " + failure.describe())
    click.get_current_context().exit(1)


def _explore_cluster(scheduler: str | None, jobs: int, shard: str | None) -> Any:
    """Check ``explore``'s --shard and --scheduler; a ``distributed.Client``
    connected to the scheduler, or None without --scheduler."""
    from simnet import distributed

    if shard is not None:
        try:
            distributed.parse_shard(shard)
        except ValueError as exc:
            raise InputError(f"--shard: {exc}") from None
    if scheduler is None:
        return None
    if jobs != 1:
        raise InputError("-j/--jobs is for local runs; with --scheduler the cluster's "
                         "workers set the parallelism")
    try:
        return distributed.connect(scheduler)[0]
    except (distributed.MissingExtra, distributed.ClusterError, ValueError) as exc:
        raise InputError(f"--scheduler: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """The ``simnet`` console script: run the command line, return the exit status."""
    return cli.main(args=argv, prog_name="simnet", standalone_mode=False)
