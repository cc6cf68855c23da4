"""Traces: every socket operation, readiness answer, timer and fault, replayable.

A trace is JSON Lines: a header object, one JSON array per event, and a
footer object that makes truncation detectable::

    {"simnet_trace": 1, "backend": "fake", "seed": 7, "faults": [...], "network": {...}, "scenario": "pkg.mod:fn"}
    [0.0, "socket", 2000000003, 2, 1]
    [0.0, "connect", 2000000003, ["127.0.0.1", 7000], 115]
    [0.0, "send", 2000000003, 64, 64, 1234567]
    ...
    {"end": 42}

Events are ``[time, kind, fd, ...]`` -- virtual time on a fake network,
``time.monotonic()`` offsets on a real one -- with these kinds:

=========  ===============================================================
socket     fd, family, type
bind       fd, address
listen     fd, backlog
connect    fd, address, result (0, an errno value such as 115 EINPROGRESS)
accept     fd, new fd (or an error name), peer address, connection number
send       fd, bytes offered, bytes taken (or an error name), CRC-32 of them
recv       fd, buffer size, bytes returned (or an error name), CRC-32
shutdown   fd, how
close      fd
ready      (fd -1) readable fds, writable fds -- one loop pass's answer
timer      (fd -1) callback name
fault      fd (or -1), rule number (from 1), operation, connection
conn       fd, connection number (from 1, in connect order), side
           ("client" for a connecting socket, "server" for an accepted one)
=========  ===============================================================

Error names are ``"E" + errno name`` (``"EAGAIN"``, ``"ECONNRESET"`` ...).
"""

from __future__ import annotations

import errno as _errno
import json
import math
import os
import zlib
from typing import Any, Iterable

__all__ = ["Trace", "TraceError", "FORMAT", "error_name", "check_network"]

FORMAT = 1


class TraceError(ValueError):
    """A trace file that cannot be used: missing, truncated or corrupt. The
    message gives the line number."""


def error_name(exc: BaseException) -> str:
    """``"ECONNRESET"`` for an OSError, ``"timeout"`` for a timeout, else the
    exception's class name."""
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return "timeout"
    code = getattr(exc, "errno", None)
    if code is not None:
        return _errno.errorcode.get(code, f"E{code}")
    return type(exc).__name__


class Trace:
    """A recording: ``header`` (a dict) and ``events`` (a list of lists/tuples)."""

    def __init__(self, header: dict[str, Any] | None = None,
                 events: Iterable[Any] | None = None) -> None:
        self.header: dict[str, Any] = {"simnet_trace": FORMAT}
        if header:
            self.header.update(header)
        self._events: list[Any] = list(events) if events is not None else []
        #: where a network records: a flat list of (length, *fields) runs.
        #: Flat, because retaining one tuple per event made tracing costly
        #: (allocator and GC pressure); events are built when first read.
        self.flat: list[Any] = []
        self._flat_digested = 0
        self._digested = 0

    @property
    def events(self) -> list[Any]:
        """The events, as tuples (or lists, for a loaded trace)."""
        flat = self.flat
        if flat:
            out = self._events
            i, n = 0, len(flat)
            while i < n:
                k = flat[i]
                out.append(tuple(flat[i + 1:i + 1 + k]))
                i += 1 + k
            del flat[:]
            self._flat_digested = 0
        return self._events

    def record(self, *event: Any) -> None:
        """Append one event ``(time, kind, fd, ...)``."""
        self.flat += (len(event),) + event

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        h = self.header
        return (f"<Trace {h.get('backend', '?')} seed={h.get('seed')} "
                f"scenario={h.get('scenario')} events={len(self.events)}>")

    def digest(self, start: int | None = None) -> None:
        """Replace recorded payloads (bytes) by their CRC-32, from event
        *start* on. Recording keeps the bytes object -- a reference, no copy
        -- because hashing on every send would make tracing costly; the
        digest is taken when the trace is compared or written (and in
        batches while a long run records, to bound memory)."""
        events = self.events
        if start is None:
            start = self._digested
        for i in range(start, len(events)):
            ev = events[i]
            if type(ev[-1]) is bytes:
                events[i] = ev[:-1] + (zlib.crc32(ev[-1]),) if type(ev) is tuple \
                    else ev[:-1] + [zlib.crc32(ev[-1])]
        self._digested = len(events)

    def digest_flat(self) -> None:
        """Digest payloads still in the flat recording area, in place."""
        flat = self.flat
        start = self._flat_digested if self._flat_digested <= len(flat) else 0
        for i in range(start, len(flat)):
            if type(flat[i]) is bytes:
                flat[i] = zlib.crc32(flat[i])
        self._flat_digested = len(flat)

    def normalised(self) -> list[list[Any]]:
        """The events as JSON would give them back (tuples become lists)."""
        self.digest()
        return json.loads(json.dumps(self.events))

    def lines(self) -> Iterable[str]:
        self.digest()
        yield json.dumps(self.header, sort_keys=True)
        for event in self.events:
            yield json.dumps(event, separators=(",", ":"))
        yield json.dumps({"end": len(self.events)})

    def write(self, path: str | os.PathLike[str]) -> str:
        """Write the trace as JSON Lines; returns the path."""
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        tmp = path + ".part"
        with open(tmp, "w", encoding="utf-8") as f:
            for line in self.lines():
                f.write(line)
                f.write("\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read and fully check a trace file before anything uses it."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise TraceError(f"{path}: no such trace file") from None
        except IsADirectoryError:
            raise TraceError(f"{path}: is a directory, not a trace file") from None
        except UnicodeDecodeError as exc:
            raise TraceError(f"{path}: not a text trace file ({exc.reason})") from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, name: str = "<trace>") -> Trace:
        lines = text.splitlines()
        if not lines:
            raise TraceError(f"{name}: empty file, not a simnet trace")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError as exc:
            raise TraceError(f"{name}:1: header is not JSON ({exc.msg})") from None
        except RecursionError:
            raise TraceError(f"{name}:1: header is nested too deeply") from None
        if not isinstance(header, dict) or "simnet_trace" not in header:
            raise TraceError(f"{name}:1: not a simnet trace (no 'simnet_trace' header)")
        version = header["simnet_trace"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise TraceError(f"{name}:1: header field 'simnet_trace' must be the format "
                             f"number {FORMAT}, got {version!r}")
        if version != FORMAT:
            raise TraceError(f"{name}:1: trace format {version!r}, "
                             f"this simnet reads format {FORMAT}")
        _check_header(header, name)
        events = []
        footer = None
        for lineno, line in enumerate(lines[1:], 2):
            if footer is not None:
                raise TraceError(f"{name}:{lineno}: data after the end marker")
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{name}:{lineno}: corrupt event ({exc.msg})") from None
            except RecursionError:
                raise TraceError(f"{name}:{lineno}: corrupt event (nested too deeply)") from None
            if isinstance(item, dict):
                if set(item) != {"end"}:
                    raise TraceError(f"{name}:{lineno}: unexpected object {line[:60]!r}")
                footer = item
                continue
            if (not isinstance(item, list) or len(item) < 3 or not isinstance(item[0], (int, float))
                    or not isinstance(item[1], str)):
                raise TraceError(f"{name}:{lineno}: not an event [time, kind, fd, ...]: {line[:60]!r}")
            events.append(item)
        if footer is None:
            raise TraceError(f"{name}:{len(lines)}: truncated trace (no end marker after "
                             f"{len(events)} events)")
        if footer["end"] != len(events):
            raise TraceError(f"{name}:{len(lines)}: the end marker says {footer['end']} events, "
                             f"the file has {len(events)}")
        return cls(header, events)


#: header fields and the JSON types they must have (None is allowed for each)
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "backend": (str,), "seed": (int,), "faults": (list,), "network": (dict,),
    "scenario": (str,), "test": (str,), "outcome": (str,), "rootdir": (str,), "demo": (dict,),
}
_JSON_NAMES = {str: "a string", int: "a whole number", list: "a list", dict: "an object"}


def _check_header(header: dict[str, Any], name: str) -> None:
    """TraceError naming the first header field of the wrong type."""
    for key, types in _HEADER_TYPES.items():
        value = header.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            raise TraceError(f"{name}:1: header field {key!r} must be "
                             f"{_JSON_NAMES[types[0]]}, got {value!r}"[:300])
    try:
        check_network(header.get("network") or {})
    except ValueError as exc:
        raise TraceError(f"{name}:1: header field 'network': {exc}") from None


def _number(name: str, value: Any, positive: bool = False) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0 or (positive and value == 0)):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")


def check_network(settings: dict[str, Any]) -> None:
    """ValueError naming the first fake-network setting (latency, bandwidth,
    sndbuf, rcvbuf, shuffle, start_time, pass_cost) whose value a FakeNetwork cannot take
    (NaN and infinities included); other keys are left alone."""
    if not isinstance(settings, dict):
        raise ValueError(f"network settings must be an object, got {settings!r}")
    for key, value in settings.items():
        if key in ("latency", "start_time", "pass_cost"):
            _number(key, value)
        elif key == "bandwidth":
            if value is not None:
                _number(key, value, positive=True)
        elif key in ("sndbuf", "rcvbuf"):
            # None: Linux's defaults (and autotuning)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{key} must be a whole number of bytes >= 1 or None, "
                                 f"got {value!r}")
        elif key == "shuffle":
            if not isinstance(value, bool):
                raise ValueError(f"shuffle must be True or False, got {value!r}")
