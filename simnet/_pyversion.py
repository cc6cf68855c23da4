"""Where CPython's behaviour changed between 3.11, 3.12 and 3.13, and simnet
follows the interpreter it runs on (a fake socket does what a real one does
*here*). Each flag is measured on real sockets by the tests that use it."""

from __future__ import annotations

import sys

#: ``socket.setblocking(flag)``: 3.11 converts *flag* to a C long (TypeError
#: for a non-integer, OverflowError beyond 64 bits); 3.12 on takes any
#: object's truth value (whatever its ``__bool__`` raises propagates).
SETBLOCKING_TAKES_TRUTH = sys.version_info >= (3, 12)

#: The C type named by "timestamp too large to convert to C ..." (an integer
#: timeout beyond 2**63 ns): ``_PyTime_t`` up to 3.12, ``PyTime_t`` from 3.13,
#: which made the type public.
PYTIME_T = "PyTime_t" if sys.version_info >= (3, 13) else "_PyTime_t"

#: The OverflowError message of an integer timeout out of CPython's range.
PYTIME_OVERFLOW = f"timestamp too large to convert to C {PYTIME_T}"

#: ``socket.sendfile(file, offset, count)`` hands ``os.sendfile`` at most
#: 1 GiB a call from 3.13 on, with a count too; before, the whole remaining
#: count, so a count of 2**63 or more is an OverflowError (C ssize_t).
SENDFILE_BLOCKS_CAPPED = sys.version_info >= (3, 13)

#: ``datetime.datetime.utcnow()`` warns from 3.12 on (DeprecationWarning, at
#: the caller), with this message.
UTCNOW_DEPRECATED = sys.version_info >= (3, 12)
UTCNOW_WARNING = ("datetime.datetime.utcnow() is deprecated and scheduled for removal in a future "
                  "version. Use timezone-aware objects to represent datetimes in UTC: "
                  "datetime.datetime.now(datetime.UTC).")
