"""Drop-in replacement for CPython 3.11's ``asyncore`` (removed in 3.12).

Same public names, same callbacks in the same order, same errors. Two things
are added without changing any of the old behaviour:

* the network seam: sockets come from, and waiting goes through, the current
  network (real by default, or a ``simnet.fakesock.FakeNetwork``);
* timers (``simnet.call_later``), run by :func:`poll`/:func:`poll2`, which never
  wait past the next deadline; and ``loop(poller="epoll")``, a poller that keeps
  its registrations between passes for maps of thousands of channels.

This module reads ``socket``, ``select``, ``time`` and ``os`` from its own
globals at call time, so tests that monkeypatch ``asyncore.socket`` or
``asyncore.select`` affect it exactly as they affect the stdlib module.

Use it as ``import simnet.asyncore as asyncore``, or call ``simnet.install()``
so that a plain ``import asyncore`` finds it.

(PYTEST_DONT_REWRITE: pytest, which loads simnet as a plugin, leaves this
module as it is, so its namespace stays exactly the stdlib's.)
"""

import math as _math
import os
import select
import socket
import sys
import time
import warnings
from errno import (EAGAIN, EALREADY, EBADF, ECONNABORTED, ECONNRESET, EINPROGRESS,
                   EINVAL, EISCONN, ENOTCONN, EPIPE, ESHUTDOWN, EWOULDBLOCK, errorcode)

from simnet import _state
# Only the bottom layers: simnet.real (the real network as a value, the epoll
# poller) imports this module and is reached through _state's hooks instead.
from simnet import timers as _timers

# Errors that mean "the peer or the socket is gone": the channel is closed
# rather than reported through handle_error.
_DISCONNECTED = frozenset({ECONNRESET, ENOTCONN, ESHUTDOWN, ECONNABORTED, EPIPE, EBADF})

try:
    socket_map  # noqa: B018 -- keep the map across importlib.reload(), as the stdlib does
except NameError:
    #: The default channel map: file number -> dispatcher.
    socket_map = {}

_POLL_RW_FLAGS = select.POLLIN | select.POLLPRI
_POLLOUT = select.POLLOUT


def _strerror(err):
    """Text for an errno value, never raising."""
    try:
        return os.strerror(err)
    except (ValueError, OverflowError, NameError):
        if err in errorcode:
            return errorcode[err]
        return "Unknown error %s" % err


class ExitNow(Exception):
    """Raise from a handler to leave ``loop()``; it is never turned into
    ``handle_error``."""


_reraised_exceptions = (ExitNow, KeyboardInterrupt, SystemExit)


def read(obj):
    """Deliver a read event to *obj*; any error other than ExitNow,
    KeyboardInterrupt or SystemExit goes to ``obj.handle_error()``."""
    try:
        obj.handle_read_event()
    except _reraised_exceptions:
        raise
    except:  # noqa: E722 -- asyncore routes every other exception to handle_error
        obj.handle_error()


def write(obj):
    """Deliver a write event to *obj* (errors as in :func:`read`)."""
    try:
        obj.handle_write_event()
    except _reraised_exceptions:
        raise
    except:  # noqa: E722
        obj.handle_error()


def _exception(obj):
    """Deliver an exceptional-condition event to *obj* (errors as in :func:`read`)."""
    try:
        obj.handle_expt_event()
    except _reraised_exceptions:
        raise
    except:  # noqa: E722
        obj.handle_error()


def readwrite(obj, flags):
    """Deliver the events of a ``poll()`` result *flags* to *obj*.

    Read, then write, then priority; hang-up, error and invalid-fd flags call
    ``handle_close``. A disconnect ``OSError`` closes the channel instead of
    calling ``handle_error``.
    """
    try:
        if flags & select.POLLIN:
            obj.handle_read_event()
        if flags & select.POLLOUT:
            obj.handle_write_event()
        if flags & select.POLLPRI:
            obj.handle_expt_event()
        if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            obj.handle_close()
    except OSError as e:
        if e.errno in _DISCONNECTED:
            obj.handle_close()
        else:
            obj.handle_error()
    except _reraised_exceptions:
        raise
    except:  # noqa: E722
        obj.handle_error()


_REAL_TIMERS = _timers.real_timers  # the default real network's timers (never replaced)


def _default_real():
    """The default real network as a value (it waits through this module's
    ``select``/``time`` globals, like the fast path)."""
    global _DEFAULT_REAL
    if _DEFAULT_REAL is None:
        _DEFAULT_REAL = _state.make_real_network()
    return _DEFAULT_REAL


_DEFAULT_REAL = None


def _timers_of(net):
    return _REAL_TIMERS if net is None else net.timers


def poll(timeout=0.0, map=None):
    """One pass of the loop with ``select()``: wait up to *timeout* seconds
    (bounded by the next timer), dispatch read, write and exceptional events,
    then run the timers that are due.

    While a fake network without a fault plan is current, the pass is fused
    (see the comments below): every channel is still asked ``readable()`` and
    ``writable()`` in map order, the readiness is still one snapshot taken
    after all of them answered, and the handlers run in the same order; only
    the bookkeeping between those steps is cut."""
    if map is None:
        map = socket_map
    if not map:
        _run_timers_without_map()
        return
    if not _state.simple:
        net = _state.current
        if net is not None and net.is_fake and not net._faulty:
            # -- the fused pass ------------------------------------------------
            items = list(map.items())
            r = []
            w = []
            odd = None  # listening channels that are only "writable" (in e alone)
            for fd, obj in items:
                is_r = obj.readable()
                is_w = obj.writable()
                if is_r:
                    r.append(fd)
                    # a listening socket is never offered for writing
                    if is_w and not obj.accepting:
                        w.append(fd)
                elif is_w:
                    if not obj.accepting:
                        w.append(fd)
                    elif odd is None:
                        odd = [fd]
                    else:
                        odd.append(fd)
            # Does *net* own the map? The verdict is kept between passes
            # (_state.fast_map) until a channel is added or removed or a file
            # number released; e (the channels in r or w or odd, in map
            # order) is only needed when select() itself must run.
            if (_state.fast_map is not map or _state.fast_net is not net or net._faulty) \
                    and not _fast_owner(map, net):
                _finish_pass(_state.network_for_map(map) or _default_real(), map, r, w,
                             _e_list(items, r, w, odd), timeout)
                return
            timers = net.timers
            pending = timers._heap  # the live list (never replaced)
            asked = timeout
            if pending:
                # TimerQueue.bound(), inlined for the usual case
                if timers._new or timers._small or (first := pending[-1]).cancelled:
                    timeout = timers.bound(timeout)[0]
                else:
                    remaining = first.when - net._now
                    if not remaining > 0.0:
                        remaining = 0.0
                    if timeout is None or remaining < timeout:
                        timeout = remaining
            if not (r or w or odd):
                if not map.keys() <= net._fds.keys():  # (the verdict is stale)
                    _state.fast_map = None
                    _finish_pass(_state.network_for_map(map) or _default_real(), map, r, w,
                                 _e_list(items, r, w, odd), asked)
                    return
                net.sleep(timeout)
                if pending:
                    timers.run_due()
                return
            events = net._events
            rw = None
            if (not (events and events[0][0] <= net._now)
                    and (timeout is None
                         or (timeout.__class__ is float and 0.0 <= timeout < 9.2e9))):
                # no network event due, so select() would run none: readiness
                # is read straight from the sockets
                rw = _select_fake(net, r, w, odd or (), timeout)
            if rw is None:
                e = _e_list(items, r, w, odd)
                if not map.keys() <= net._fds.keys():
                    # a file number closed, or the map was changed behind the
                    # dispatchers' back: the full lookup says whose it is
                    _state.fast_map = None
                    owner = _state.network_for_map(map) or _default_real()
                    if owner is not net:
                        _finish_pass(owner, map, r, w, e, asked)
                        return
                r, w, e = net.select(r, w, e, timeout)
                _dispatch(map, r, w, e)
            else:
                # (read() and write() stay frames of their own: compact_traceback()
                # lists them in handle_error's report, as the stdlib's does)
                r, w = rw
                for fd in r:
                    obj = map.get(fd)
                    if obj is not None:
                        read(obj)
                for fd in w:
                    obj = map.get(fd)
                    if obj is not None:
                        write(obj)
            # timers.run_due() when it has anything to do
            if pending and (pending[-1].when <= net._now or timers._new or timers._small):
                timers.run_due()
            return
    r = []
    w = []
    e = []
    for fd, obj in list(map.items()):
        is_r = obj.readable()
        is_w = obj.writable()
        if is_r:
            r.append(fd)
        # a listening socket is never offered for writing
        if is_w and not obj.accepting:
            w.append(fd)
        if is_r or is_w:
            e.append(fd)
    if not _state.simple:
        _finish_pass(_state.network_for_map(map) or _default_real(), map, r, w, e, timeout)
        return
    # the default real network: no network entered and no fake socket exists
    timers = _REAL_TIMERS
    pending = timers._heap  # the live heap list (never replaced)
    if pending:
        timeout = timers.bound(timeout)[0]
    if not e:  # nothing readable or writable: just wait
        time.sleep(timeout)
        if pending:
            timers.run_due()
        return
    r, w, e = select.select(r, w, e, timeout)
    _dispatch(map, r, w, e)
    if pending:
        timers.run_due()


def _finish_pass(net, map, r, w, e, timeout):
    """The rest of a :func:`poll` pass once the lists are built, on *net*
    (any network): wait through it, dispatch, run the timers due."""
    if net.is_fake:
        net._note_map(map)
    timers = net.timers
    pending = timers._heap  # the live heap list (never replaced)
    if pending:
        timeout = timers.bound(timeout)[0]
    if not e:
        net.sleep(timeout)
        if pending:
            timers.run_due()
        return
    r, w, e = net.select(r, w, e, timeout)
    _dispatch(map, r, w, e)
    if pending:
        timers.run_due()


def _dispatch(map, r, w, e):
    """Deliver what ``select()`` returned: reads, then writes, then
    exceptional conditions, to the channels still in *map*."""
    for fd in r:
        obj = map.get(fd)
        if obj is not None:
            read(obj)
    for fd in w:
        obj = map.get(fd)
        if obj is not None:
            write(obj)
    for fd in e:
        obj = map.get(fd)
        if obj is not None:
            _exception(obj)


def _fast_owner(map, net):
    """Is *map* all sockets of the fake network *net* (every key an open file
    number of it, its first channel's socket *net*'s), with no fault plan?
    Then :func:`poll` and :func:`poll2` take their fused pass, and the
    verdict is remembered (``_state.fast_map``) until a channel is added or
    removed or a file number released."""
    if (map and not net._faulty and map.keys() <= net._fds.keys()
            and getattr(getattr(next(iter(map.values())), "socket", None), "network", net) is net):
        net._note_map(map)
        _state.fast_map = map
        _state.fast_net = net
        _state.fast_len = len(map)
        return True
    return False


def _e_list(items, r, w, odd):
    """The ``e`` list :func:`poll` gives ``select()``: the channels that are
    readable or writable, in map order (*items*)."""
    chosen = set(r)
    chosen.update(w)
    if odd:
        chosen.update(odd)
    return [fd for fd, _ in items if fd in chosen]


def _select_fake(net, r, w, x, timeout):
    """``net.select(r, w, ...)`` when *net* has no fault plan and no event
    due, and *timeout* is None or a valid float: the same steps in the same
    order as ``FakeNetwork.select``, without its generic checks. Returns
    ``(readable, writable)``, or None when a file number is not open (then
    ``select`` itself must run, and raise)."""
    fds = net._fds
    try:
        for fd in x:  # only when a channel is in x alone (else x is in r or w)
            fds[fd]
        # (FakeSocket._sel_r/_sel_w inlined for connected streams, as in select)
        # (fds holds open sockets only; StreamEnd.r_event/w_event: readiness
        # other than data and room, kept where the state changes)
        rr = [fd for fd in r
              if ((y := (s := fds[fd])._end) is not None and (y.rbuf or y.r_event))
              or (y is None and s._sel_r())] if r else []
        wr = [fd for fd in w
              if ((y := (s := fds[fd])._end) is not None and (y.w_event or len(y.sq) < y.scap))
              or (y is None and s._sel_w())] if w else []
    except KeyError:
        return None
    pumping = net._pumping
    if not pumping:
        # the idle-pass accounting (FakeNetwork._pass_start, inlined); when
        # the pass was idle and the clock moved, readiness is read again if
        # anything happened meanwhile (an event ran)
        if net._mark == (net.activity, net._now):
            if rr or wr or timeout == 0:
                # an idle pass that does not wait: what _pass_start(True) does,
                # FakeNetwork._spin() inlined for the usual case (not the last
                # pass before a livelock; no deadline or event within pass_cost)
                before = net.activity
                spins = net._spins + 1
                cost = net.pass_cost
                target = net._now + cost
                limit = net._block_deadline if net._blocking else net._run_deadline
                events = net._events
                if (spins < net._STALL_LIMIT and cost and (limit is None or limit >= target)
                        and not (events and events[0][0] <= target)):
                    net._spins = spins
                    net._now = target
                else:
                    net._spin()
                if net.activity != before:
                    rr = [fd for fd in r if fds[fd]._sel_r()]
                    wr = [fd for fd in w if fds[fd]._sel_w()]
            else:
                net._pass_start(False)
        elif net._spins:
            net._end_streak()
    if not (rr or wr) and timeout != 0:
        rs = [fds[fd] for fd in r]
        ws = [fds[fd] for fd in w]

        def ready():
            return any(s._sel_r() for s in rs) or any(s._sel_w() for s in ws)

        net._wait(timeout, ready)
        rr = [fd for fd, s in zip(r, rs) if s._sel_r()]
        wr = [fd for fd, s in zip(w, ws) if s._sel_w()]
    if pumping:
        if rr or wr:
            net._served += len(rr) + len(wr)  # (read by FakeNetwork._block, around a pump)
    else:
        net._mark = (net.activity, net._now)
    if net.shuffle:
        rr, wr = net._order(rr), net._order(wr)
    tr = net._tr
    if tr is not None:
        tr += (5, net._now, "ready", -1, rr, wr)
        if net._tr_bytes > 1 << 26:
            # bound the payload bytes a long traced run keeps in memory
            net.trace.digest_flat()
            net._tr_bytes = 0
    return rr, wr


def _run_timers_without_map():
    # An empty map has nothing to wait for (the stdlib returns at once), but
    # timers that are already due still run.
    timers = _timers_of(_state.current)
    if timers._heap:
        timers.run_due()


def poll2(timeout=0.0, map=None):
    """One pass of the loop with ``poll()`` (*timeout* in seconds; None blocks),
    then run the timers that are due."""
    if map is None:
        map = socket_map
    if timeout is not None:
        timeout_ms = int(timeout * 1000)
    else:
        timeout_ms = None
    if not map:
        _run_timers_without_map()
        return
    fused = False
    if _state.simple:
        net = None
        timers = _REAL_TIMERS
        pollster = select.poll()
    else:
        net = _state.current
        if (net is not None and _state.fast_map is map and _state.fast_net is net
                and _state.fast_len == len(map) and not net._faulty):
            # the fused pass (see poll()): the map is known to be the current
            # fake network's, so its file numbers go straight into the poller
            fused = True
        else:
            net = _state.network_for_map(map) or _default_real()
            if net.is_fake:
                net._note_map(map)
                if net is _state.current and not net._faulty:
                    fused = _fast_owner(map, net)
        timers = net.timers
        pollster = net.poll()
    if fused:
        registered = pollster._fds  # (what register() fills, for checked numbers)
        for fd, obj in list(map.items()):
            flags = 0
            if obj.readable():
                flags = _POLL_RW_FLAGS
            # a listening socket is never offered for writing
            if obj.writable() and not obj.accepting:
                flags |= _POLLOUT
            if flags:
                registered[fd] = flags
    else:
        for fd, obj in list(map.items()):
            flags = 0
            if obj.readable():
                flags = _POLL_RW_FLAGS
            # a listening socket is never offered for writing
            if obj.writable() and not obj.accepting:
                flags |= _POLLOUT
            if flags:
                pollster.register(fd, flags)
    pending = timers._heap  # the live heap list (never replaced)
    if pending:
        if fused and not (timers._new or timers._small or (first := pending[-1]).cancelled):
            # TimerQueue.bound(), inlined for the usual case (as in poll())
            bounded = first.when - net._now
            if not bounded > 0.0:
                bounded = 0.0
            clamped = timeout is None or bounded < timeout
        else:
            bounded, clamped = timers.bound(timeout)
        if clamped:
            # round a timer's wait up, so the loop does not spin for the last
            # fraction of a millisecond
            timeout_ms = _math.ceil(bounded * 1000)
    if fused and (timeout_ms is None or 0 <= timeout_ms <= 2147483647):
        ready = pollster._poll(None if timeout_ms is None else timeout_ms / 1000.0)
    else:
        ready = pollster.poll(timeout_ms)
    for fd, flags in ready:
        obj = map.get(fd)
        if obj is not None:
            readwrite(obj, flags)
    if pending and (not fused or pending[-1].when <= net._now or timers._new or timers._small):
        timers.run_due()


poll3 = poll2  # alias kept for backward compatibility


_POLLERS = ("select", "poll", "epoll")


def loop(timeout=30.0, use_poll=False, map=None, count=None, *, poller=None):
    """Run passes until the map is empty (or *count* passes have run).

    *timeout* bounds each pass's wait, in seconds. ``use_poll=True`` waits with
    ``poll()`` instead of ``select()``. simnet adds *poller*, which overrides
    *use_poll*: ``"select"``, ``"poll"``, or ``"epoll"`` -- an epoll poller
    (``selectors`` elsewhere) that keeps its registrations between passes, so
    a map of 10,000 channels works (``select()`` stops at 1024 fds) and each
    pass only tells the kernel what changed::

        simnet.loop(timeout=1.0, poller="epoll")

    Like the stdlib, ``loop()`` returns as soon as the map is empty, even if
    timers are still pending.
    """
    if map is None:
        map = socket_map
    if poller is None:
        poller = "poll" if use_poll else "select"
    elif poller not in _POLLERS:
        raise ValueError(f"poller must be one of 'select', 'poll', 'epoll' (or None to "
                         f"follow use_poll); got {poller!r}")
    if poller == "epoll":
        with _state.make_epoll_poller(map) as ep:
            _run(ep.poll, timeout, map, count)
        return
    if poller == "poll" and hasattr(select, "poll"):
        poll_fun = poll2
    else:
        poll_fun = poll
    _run(poll_fun, timeout, map, count)


def _run(poll_fun, timeout, map, count):
    if count is None:
        while map:
            poll_fun(timeout, map)
    else:
        while map and count > 0:
            poll_fun(timeout, map)
            count = count - 1


def _module_name(cls):
    """The module name a repr shows for *cls*: CPython's ``__module__``, except
    that simnet's own modules go by ``asyncore``/``asynchat`` once
    ``simnet.install()`` registered them under those names (so reprs read as
    the stdlib's: ``<asyncore.dispatcher at 0x...>``)."""
    name = cls.__module__
    if name in ("simnet.asyncore", "simnet.asynchat"):
        short = name[7:]
        mod = sys.modules.get(short)
        if mod is not None and mod is sys.modules.get(name):
            return short
    return name


class dispatcher:
    """A thin wrapper around a non-blocking socket, driven by :func:`loop`.

    Subclass it and override the ``handle_*`` methods. The predicates
    :meth:`readable` and :meth:`writable` decide, on every pass, which events
    the loop waits for.
    """

    debug = False
    connected = False
    accepting = False
    connecting = False
    closing = False
    addr = None
    ignore_log_types = frozenset({"warning"})

    def __init__(self, sock=None, map=None):
        self._map = socket_map if map is None else map
        self._fileno = None
        if not sock:
            self.socket = None
            return
        # A socket from a blocking source (accept(), a caller) is made
        # non-blocking before it joins the map.
        sock.setblocking(False)
        self.set_socket(sock, map)
        self.connected = True
        # The socket need not be connected yet.
        try:
            self.addr = sock.getpeername()
        except OSError as err:
            if err.errno not in (ENOTCONN, EINVAL):
                # Broken in a way we cannot tell: keep it out of the map so
                # the loop never polls it, and let the caller know.
                self.del_channel(map)
                raise
            self.connected = False

    def __repr__(self):
        cls = type(self)
        words = [_module_name(cls) + "." + cls.__qualname__]
        if self.accepting and self.addr:
            words.append("listening")
        elif self.connected:
            words.append("connected")
        if self.addr is not None:
            try:
                words.append("%s:%d" % self.addr)
            except TypeError:
                words.append(repr(self.addr))
        return "<%s at %#x>" % (" ".join(words), id(self))

    # -- the channel map ------------------------------------------------
    def add_channel(self, map=None):
        """Put this channel in *map* (default: the map given at construction)."""
        if map is None:
            map = self._map
        map[self._fileno] = self
        _state.fast_map = None  # (poll()'s verdict on a map: see _fast_owner)
        if not _state.simple and self._fileno is not None and self._fileno >= _state.FAKE_FD_BASE:
            # a fake network serves this map when a blocking call waits on it
            net = getattr(self.socket, "network", None)
            if net is not None:
                net._note_map(map)

    def del_channel(self, map=None):
        """Take this channel out of *map* (default: its own map)."""
        fd = self._fileno
        if map is None:
            map = self._map
        if fd in map:
            del map[fd]
            _state.fast_map = None
        self._fileno = None

    def create_socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        """Make a non-blocking socket on the current network and adopt it."""
        self.family_and_type = family, type
        net = _state.current
        if net is None:
            sock = socket.socket(family, type)
        else:
            sock = net.socket(family, type)
        sock.setblocking(False)
        self.set_socket(sock)

    def set_socket(self, sock, map=None):
        """Adopt *sock* and add the channel to the map under its file number."""
        self.socket = sock
        self._fileno = sock.fileno()
        self.add_channel(map)

    def set_reuse_addr(self):
        """Set SO_REUSEADDR so a server can rebind a port in TIME_WAIT."""
        try:
            current = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, current | 1)
        except OSError:
            pass

    # -- predicates for the poller ---------------------------------------
    def readable(self):
        """Should the loop wait for this channel to become readable?"""
        return True

    def writable(self):
        """Should the loop wait for this channel to become writable?"""
        return True

    # -- socket methods --------------------------------------------------
    def listen(self, num):
        """Listen with backlog *num*; the channel becomes an accepting one."""
        self.accepting = True
        if os.name == "nt" and num > 5:
            num = 5
        return self.socket.listen(num)

    def bind(self, addr):
        """Bind the socket to *addr* (also kept as ``self.addr``)."""
        self.addr = addr
        return self.socket.bind(addr)

    def connect(self, address):
        """Start a non-blocking connect; ``handle_connect`` runs when it completes.

        Raises ``OSError`` at once for errors the kernel reports synchronously
        (e.g. ECONNREFUSED on some local connects).
        """
        self.connected = False
        self.connecting = True
        err = self.socket.connect_ex(address)
        if err in (EINPROGRESS, EALREADY, EWOULDBLOCK) or (err == EINVAL and os.name == "nt"):
            self.addr = address
            return
        if err in (0, EISCONN):
            self.addr = address
            self.handle_connect_event()
            return
        raise OSError(err, errorcode[err])

    def accept(self):
        """Accept a connection: ``(sock, addr)``, or ``None`` when there is
        none after all (EWOULDBLOCK, EAGAIN, ECONNABORTED)."""
        try:
            conn, addr = self.socket.accept()
        except TypeError:
            return None
        except OSError as why:
            if why.errno in (EWOULDBLOCK, ECONNABORTED, EAGAIN):
                return None
            raise
        return conn, addr

    def send(self, data):
        """Send what the socket takes; returns the count (0 when it would
        block). A disconnect error calls ``handle_close`` and returns 0."""
        try:
            return self.socket.send(data)
        except OSError as why:
            if why.errno == EWOULDBLOCK:
                return 0
            if why.errno in _DISCONNECTED:
                self.handle_close()
                return 0
            raise

    def recv(self, buffer_size):
        """Receive up to *buffer_size* bytes. End of stream or a disconnect
        error calls ``handle_close`` and returns ``b''``."""
        try:
            data = self.socket.recv(buffer_size)
            if not data:
                # the peer closed: readable with nothing to read. (Inside the
                # try, as in the stdlib: a disconnect error raised by this
                # handle_close is absorbed by the except below.)
                self.handle_close()
                return b""
            return data
        except OSError as why:
            if why.errno in _DISCONNECTED:
                self.handle_close()
                return b""
            raise

    def close(self):
        """Leave the map and close the socket."""
        self.connected = False
        self.accepting = False
        self.connecting = False
        self.del_channel()
        if self.socket is not None:
            try:
                self.socket.close()
            except OSError as why:
                if why.errno not in (ENOTCONN, EBADF):
                    raise

    # -- logging -----------------------------------------------------------
    def log(self, message):
        """'Hit' logging, to stderr."""
        sys.stderr.write("log: %s\n" % str(message))

    def log_info(self, message, type="info"):
        """Informational, warning and error logging, to stdout; types in
        ``ignore_log_types`` are dropped."""
        if type not in self.ignore_log_types:
            print("%s: %s" % (type, message))

    # -- events, as the loop delivers them ------------------------------------
    def handle_read_event(self):
        if self.accepting:
            # a listening socket's readability means a connection to accept
            self.handle_accept()
        elif not self.connected:
            if self.connecting:
                self.handle_connect_event()
            self.handle_read()
        else:
            self.handle_read()

    def handle_connect_event(self):
        err = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, _strerror(err))
        self.handle_connect()
        self.connected = True
        self.connecting = False

    def handle_write_event(self):
        if self.accepting:
            # listening sockets are not offered for writing; ignore it if it happens
            return
        if not self.connected and self.connecting:
            self.handle_connect_event()
        self.handle_write()

    def handle_expt_event(self):
        # An exceptional condition is a pending socket error or OOB data.
        err = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            # treat the error like a read of end-of-stream: close the channel
            self.handle_close()
        else:
            self.handle_expt()

    def handle_error(self):
        """Called for an uncaught exception in a handler: log it and close."""
        nil, t, v, tbinfo = compact_traceback()
        try:
            self_repr = repr(self)
        except:  # noqa: E722 -- a user's __repr__ may fail in any way
            self_repr = "<__repr__(self) failed for object at %0x>" % id(self)
        self.log_info(
            "uncaptured python exception, closing channel %s (%s:%s %s)"
            % (self_repr, t, v, tbinfo),
            "error",
        )
        self.handle_close()

    def handle_expt(self):
        self.log_info("unhandled incoming priority event", "warning")

    def handle_read(self):
        self.log_info("unhandled read event", "warning")

    def handle_write(self):
        self.log_info("unhandled write event", "warning")

    def handle_connect(self):
        self.log_info("unhandled connect event", "warning")

    def handle_accept(self):
        pair = self.accept()
        if pair is not None:
            self.handle_accepted(*pair)

    def handle_accepted(self, sock, addr):
        sock.close()
        self.log_info("unhandled accepted event", "warning")

    def handle_close(self):
        self.log_info("unhandled close event", "warning")
        self.close()


class dispatcher_with_send(dispatcher):
    """A dispatcher with an output buffer: ``send()`` queues, the loop drains."""

    def __init__(self, sock=None, map=None):
        dispatcher.__init__(self, sock, map)
        self.out_buffer = b""

    def initiate_send(self):
        num_sent = dispatcher.send(self, self.out_buffer[:65536])
        self.out_buffer = self.out_buffer[num_sent:]

    def handle_write(self):
        self.initiate_send()

    def writable(self):
        return (not self.connected) or len(self.out_buffer)

    def send(self, data):
        if self.debug:
            self.log_info("sending %s" % repr(data))
        self.out_buffer = self.out_buffer + data
        self.initiate_send()


def compact_traceback():
    """Summarise the exception being handled: ``((file, function, line),
    type, value, "[file|function|line] ...")``."""
    t, v, tb = sys.exc_info()
    if not tb:
        raise AssertionError("traceback does not exist")
    frames = []
    while tb:
        code = tb.tb_frame.f_code
        frames.append((code.co_filename, code.co_name, str(tb.tb_lineno)))
        tb = tb.tb_next
    del tb
    info = " ".join("[%s|%s|%s]" % frame for frame in frames)
    return frames[-1], t, v, info


def close_all(map=None, ignore_all=False):
    """Close every channel of *map* and empty it. EBADF is ignored; other
    errors propagate unless *ignore_all*."""
    if map is None:
        map = socket_map
    for x in list(map.values()):
        try:
            x.close()
        except OSError as err:
            if err.errno == EBADF:
                pass
            elif not ignore_all:
                raise
        except _reraised_exceptions:
            raise
        except:  # noqa: E722
            if not ignore_all:
                raise
    map.clear()


if os.name == "posix":

    class file_wrapper:
        """Make a file descriptor look enough like a socket for asyncore.
        The descriptor passed in is duplicated; ``close()`` closes the copy."""

        def __init__(self, fd):
            self.fd = os.dup(fd)

        def __del__(self):
            if self.fd >= 0:
                warnings.warn("unclosed file %r" % self, ResourceWarning, source=self)
            self.close()

        def recv(self, *args):
            return os.read(self.fd, *args)

        def send(self, *args):
            return os.write(self.fd, *args)

        def getsockopt(self, level, optname, buflen=None):
            if level == socket.SOL_SOCKET and optname == socket.SO_ERROR and not buflen:
                return 0
            raise NotImplementedError("Only asyncore specific behaviour implemented.")

        read = recv
        write = send

        def close(self):
            if self.fd < 0:
                return
            fd = self.fd
            self.fd = -1
            os.close(fd)

        def fileno(self):
            return self.fd

    class file_dispatcher(dispatcher):
        """A dispatcher for a pipe, terminal or other file descriptor."""

        def __init__(self, fd, map=None):
            dispatcher.__init__(self, None, map)
            self.connected = True
            try:
                fd = fd.fileno()
            except AttributeError:
                pass
            self.set_file(fd)
            os.set_blocking(fd, False)

        def set_file(self, fd):
            self.socket = file_wrapper(fd)
            self._fileno = self.socket.fileno()
            self.add_channel()
