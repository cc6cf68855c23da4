"""Socket-method arguments converted as CPython's ``socketmodule.c`` converts them.

A real socket parses its arguments before it looks at its descriptor (a
closed socket given a bad argument raises ``TypeError``, not EBADF), with
the ``PyArg_Parse`` formats of each method: ``"n"`` (C ``Py_ssize_t``),
``"i"`` (C ``int``, by way of a C ``long``), ``"I"`` (C ``unsigned int``,
masked), ``"y*"`` (a readable bytes-like object), ``"w*"`` (a writable,
C-contiguous one), and ``getsockaddrarg`` for addresses. These helpers raise
the same exception types with the same messages (measured on CPython 3.11,
3.12 and 3.13, which agree; ``tests/conformance/test_misuse.py`` pins them
against real sockets). :class:`~simnet.fakesock.sockets.FakeSocket` calls
them at the top of each method, except on its fast paths, which take only
exact ``bytes``/``int`` arguments already in range.
"""

from __future__ import annotations

import math
import operator
import os
from typing import Any

from simnet._pyversion import PYTIME_OVERFLOW

_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
SSIZE_MAX = (1 << 63) - 1

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE
_IMMUTABLETYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE


def tpname(obj: Any) -> str:
    """``Py_TYPE(obj)->tp_name``: a class defined in Python by its name, a C
    type by its dotted name outside ``builtins`` (``decimal.Decimal``,
    ``array.array``). (A C type made from a spec without the immutable flag
    passes for a Python class: none in the standard library does.)"""
    cls = type(obj)
    if cls.__flags__ & _HEAPTYPE and not cls.__flags__ & _IMMUTABLETYPE:
        return cls.__name__
    module = cls.__module__
    if module == "builtins":
        return cls.__name__
    return f"{module}.{cls.__name__}"


def pytime_ns(value: Any, unit_ns: int = 1_000_000_000, type_error: str | None = None) -> int:
    """CPython's ``_PyTime_FromObject`` (what ``settimeout``, ``time.sleep``,
    ``select`` and ``poll`` do with a time): *value* units of *unit_ns*
    nanoseconds each, as 64-bit nanoseconds rounded away from zero. A float
    or an ``__index__`` integer (not ``__float__`` alone); NaN is a
    ValueError, a float out of range "timestamp out of range for platform
    time_t", an integer out of range the running version's ``PyTime_t``
    message, anything else a TypeError (*type_error*, or CPython's "'T'
    object cannot be interpreted as an integer")."""
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("Invalid value NaN (not a number)")
        d = value * unit_ns
        if not -9223372036854775808.0 <= d < 9223372036854775808.0:
            raise OverflowError("timestamp out of range for platform time_t")
        return int(math.ceil(d) if d >= 0.0 else math.floor(d))
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(type_error or f"'{tpname(value)}' object cannot be interpreted as an "
                        "integer") from None
    ns = number * unit_ns
    if not -(1 << 63) <= number < (1 << 63) or not -(1 << 63) <= ns < (1 << 63):
        raise OverflowError(PYTIME_OVERFLOW)
    return ns


def index(value: Any) -> int:
    """``value.__index__()`` with CPython's TypeError for a non-integer."""
    if type(value) is int:
        return value
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"'{tpname(value)}' object cannot be interpreted as an integer") from None


def c_long(value: Any) -> int:
    """A C ``long`` (``PyLong_AsLong``)."""
    n = index(value)
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError("Python int too large to convert to C long")
    return n


def c_int(value: Any) -> int:
    """The ``"i"`` format: a C ``long``, then the ``int`` range."""
    n = c_long(value)
    if n > INT_MAX:
        raise OverflowError("signed integer is greater than maximum")
    if n < INT_MIN:
        raise OverflowError("signed integer is less than minimum")
    return n


def c_int_direct(value: Any) -> int:
    """``_PyLong_AsInt`` (``shutdown(how)``): one OverflowError either way."""
    n = index(value)
    if not INT_MIN <= n <= INT_MAX:
        raise OverflowError("Python int too large to convert to C int")
    return n


def c_ssize(value: Any) -> int:
    """The ``"n"`` format: a C ``Py_ssize_t``."""
    n = index(value)
    if not -SSIZE_MAX - 1 <= n <= SSIZE_MAX:
        raise OverflowError("Python int too large to convert to C ssize_t")
    return n


def c_uint_mask(value: Any) -> int:
    """The ``"I"`` format: any integer, its low 32 bits (no overflow check)."""
    return index(value) & 0xFFFFFFFF


def read_buffer(data: Any) -> Any:
    """The ``"y*"`` format: *data* itself if ``bytes``/``bytearray``, else a
    flat byte view of it."""
    if type(data) is bytes or type(data) is bytearray:
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{tpname(data)}'") from None
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def write_buffer(data: Any, what: str, position: int = 1) -> memoryview:
    """The ``"w*"`` format: a writable C-contiguous buffer, as a flat byte view."""
    try:
        view = memoryview(data)
    except TypeError:
        view = None
    if view is None or view.readonly or not view.c_contiguous:
        name = "None" if data is None else tpname(data)
        raise TypeError(f"{what}() argument {position} must be read-write bytes-like object, "
                        f"not {name}")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def sequence(value: Any, message: str) -> list | tuple:
    """``PySequence_Fast``: a list or tuple as is, any other iterable as a
    list; TypeError(*message*) for a non-iterable."""
    if type(value) is list or type(value) is tuple:
        return value
    try:
        it = iter(value)
    except TypeError:
        raise TypeError(message) from None
    return list(it)


def _is_sequence(value: Any) -> bool:
    """``PySequence_Check``: a ``__getitem__`` that is not a dict's."""
    return not isinstance(value, dict) and hasattr(type(value), "__getitem__")


def ancillary_item(item: Any) -> tuple[int, int, Any]:
    """One ``sendmsg()`` ancillary item: ``(level, type, data)`` as the
    ``"(iiy*)"`` format takes it."""
    where = "[sendmsg() ancillary data items]() argument"
    if not _is_sequence(item) or isinstance(item, bytes):
        name = "None" if item is None else tpname(item)
        raise TypeError(f"{where} must be 3-item sequence, not {name}")
    n = len(item)
    if n != 3:
        raise TypeError(f"{where} must be sequence of length 3, not {n}")
    return c_int(item[0]), c_int(item[1]), read_buffer(item[2])


def host(value: Any) -> str:
    """``idna_converter``: an address's host as a str -- ASCII text as is,
    other text through the ``idna`` codec, bytes decoded (ASCII, else one
    character a byte)."""
    if isinstance(value, str):
        if value.isascii():
            text = value
        else:
            try:
                text = value.encode("idna").decode("ascii")
            except UnicodeError:
                raise TypeError("encoding of hostname failed") from None
    elif isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            text = bytes(value).decode("latin-1")
    else:
        raise TypeError(f"str, bytes or bytearray expected, not {tpname(value)}")
    if "\0" in text:
        raise TypeError("host name must not contain null character")
    return text


def inet_address(address: Any, family_name: str, what: str) -> tuple[Any, int, int, int]:
    """An AF_INET / AF_INET6 address tuple's ``(host, port, flowinfo,
    scope_id)`` as ``getsockaddrarg`` parses it, before the host is
    resolved (the caller resolves it, then calls :func:`check_port`)."""
    if not isinstance(address, tuple):
        raise TypeError(f"{what}(): {family_name} address must be tuple, not {tpname(address)}")
    if family_name == "AF_INET":
        if len(address) != 2:
            raise TypeError("AF_INET address must be a pair (host, port)")
    elif not 2 <= len(address) <= 4:
        raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
    name = host(address[0])
    try:
        port = c_int(address[1])
    except OverflowError:
        raise OverflowError(f"{what}(): port must be 0-65535.") from None
    flowinfo = c_uint_mask(address[2]) if len(address) > 2 else 0
    scope_id = c_uint_mask(address[3]) if len(address) > 3 else 0
    return name, port, flowinfo, scope_id


#: ``sizeof(struct sockaddr_un.sun_path)`` on Linux
SUN_PATH = 108


def unix_address(address: Any) -> bytes:
    """An AF_UNIX address as ``getsockaddrarg`` takes it: a str (encoded
    with the file system encoding) or any bytes-like object; a path must
    leave room for its NUL, an abstract name (leading NUL) may fill
    ``sun_path``."""
    if isinstance(address, str):
        raw = os.fsencode(address)
    else:
        raw = bytes(read_buffer(address))
    if len(raw) > SUN_PATH or (raw[:1] not in (b"", b"\0") and len(raw) >= SUN_PATH):
        raise OSError("AF_UNIX path too long")
    return raw


def check_port(port: int, flowinfo: int, what: str) -> None:
    """The range checks ``getsockaddrarg`` makes after resolving the host."""
    if not 0 <= port <= 0xFFFF:
        raise OverflowError(f"{what}(): port must be 0-65535.")
    if flowinfo > 0xFFFFF:
        raise OverflowError(f"{what}(): flowinfo must be 0-1048575.")
