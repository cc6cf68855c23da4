"""Fault exploration on a Dask cluster (the ``simnet[distributed]`` extra).

:func:`simnet.explore.explore` cuts its seeds into chunks; on one machine a
process pool runs them. Given ``scheduler="tcp://HOST:PORT"`` (or a
``distributed.Client``) the chunks go to Dask's distributed scheduler
instead (:func:`map_chunks`): each chunk is one task, a worker runs its
seeds and returns, per distinct failure, its smallest failing seeds; then
each distinct failure is shrunk as one more task on a worker
(:func:`call_each`), and the traces are written on the caller's machine
(workers share no file system with it). A worker that dies mid-task has its
task resubmitted by the scheduler; Ctrl-C, or the end of a ``stop`` run,
cancels the tasks still pending.

Results do not depend on which worker ran what: a chunk's result depends on
its seeds alone, and :func:`simnet.explore.explore` merges the chunks'
findings independently of the order they arrive in.

A cluster on one machine, then a run through it::

    dask scheduler --host 127.0.0.1 --port 8786
    dask worker tcp://127.0.0.1:8786 --nthreads 1       # one per core, on each machine
    simnet explore myproto.tests:scenario --seeds 100000 --scheduler tcp://127.0.0.1:8786

Workers import the scenario by its ``module:function`` name, so its module
must be importable on every worker; simnet must be installed, the same
version, on the scheduler too (it unpickles the tasks, which name simnet's
functions).
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator, Sequence

__all__ = ["submit", "map_chunks", "call_each", "connect", "require", "parse_shard", "MissingExtra",
           "ClusterError", "EXTRA_HINT"]

#: What to install for ``scheduler=`` / ``--scheduler``.
EXTRA_HINT = "pip install 'simnet[distributed]'"

#: Seconds to wait for the scheduler to answer before giving up.
CONNECT_TIMEOUT = 10


class MissingExtra(ImportError):
    """``scheduler=`` was given but Dask's ``distributed`` is not installed."""


class ClusterError(RuntimeError):
    """The cluster could not run the exploration: the scheduler is
    unreachable, or a chunk kept killing the workers that ran it."""


def parse_shard(shard: str | tuple[int, int]) -> tuple[int, int]:
    """``"I/N"`` (or ``(I, N)``) as ``(I, N)``, checked: 1 <= I <= N.

    A shard is the I-th of N disjoint slices of a seed search, for a CI
    matrix of N jobs without a scheduler (``simnet explore --shard I/N``,
    ``pytest --simnet-seeds K --simnet-shard I/N``). Needs no extra.
    """
    if isinstance(shard, str):
        parts = shard.strip().split("/")
        if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            raise ValueError(f"shard must be I/N with whole numbers 1 <= I <= N, got {shard!r}")
        i, n = (int(p) for p in parts)
    elif (isinstance(shard, tuple) and len(shard) == 2
          and all(isinstance(p, int) and not isinstance(p, bool) for p in shard)):
        i, n = shard
    else:
        raise ValueError(f"shard must be 'I/N' or a tuple (I, N), got {shard!r}")
    if not 1 <= i <= n:
        raise ValueError(f"shard must be I/N with 1 <= I <= N, got {i}/{n}")
    return i, n


def require() -> Any:
    """The ``distributed`` module, or :class:`MissingExtra` naming the extra."""
    try:
        import distributed
    except ImportError:
        raise MissingExtra("exploring on a Dask cluster (--scheduler) needs the 'distributed' "
                           f"extra, which is not installed: {EXTRA_HINT}") from None
    return distributed


def connect(scheduler: Any, timeout: float | None = None) -> tuple[Any, bool]:
    """A ``distributed.Client`` for *scheduler* -- an address such as
    ``"tcp://10.0.0.5:8786"``, or a client, used as is -- and whether the
    caller owns it (and so must close it). *timeout*: seconds to wait for
    the scheduler (default :data:`CONNECT_TIMEOUT`)."""
    distributed = require()
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    if not isinstance(scheduler, str) or "://" not in scheduler or scheduler.endswith("://"):
        raise ValueError("scheduler must be a Dask scheduler address like tcp://HOST:PORT "
                         f"or a distributed.Client, got {scheduler!r}")
    try:
        client = distributed.Client(scheduler, set_as_default=False,
                                    timeout=CONNECT_TIMEOUT if timeout is None else timeout)
    except Exception as exc:  # noqa: BLE001 -- unreachable, refused, bad address: one line
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {detail}") from None
    return client, True


def submit(scheduler: Any, func: Callable[..., Any], tasks: Sequence[Sequence[Any]],
           name: str = "simnet-explore") -> Iterator[tuple[int, Any]]:
    """Run ``func(*task)`` for each of *tasks* as one Dask task each, on the
    cluster at *scheduler*; yield ``(i, result)`` for ``tasks[i]`` as they
    complete, in whatever order. A task whose worker died is rerun elsewhere by the scheduler.
    Closing the generator early (a ``stop`` run) or an exception while
    waiting (Ctrl-C) cancels the tasks not yet done, and a client this
    function opened is closed."""
    distributed = require()
    client, owned = connect(scheduler)
    futures: list[Any] = []
    try:
        run = uuid.uuid4().hex[:12]
        keys = [f"{name}-{run}-{i}" for i in range(len(tasks))]
        columns = [list(column) for column in zip(*tasks)] if tasks else []
        futures = client.map(func, *columns, key=keys, pure=False) if tasks else []
        number = {future.key: i for i, future in enumerate(futures)}
        for future in distributed.as_completed(futures, loop=client.loop):
            try:
                result = future.result()
            except distributed.KilledWorker as exc:
                raise ClusterError(f"task {number[future.key]} ({tasks[number[future.key]]!r}) "
                                   "killed every worker that ran it (does the scenario crash "
                                   f"the process?): {exc}") from None
            except ValueError as exc:  # e.g. the scenario cannot be imported on the worker
                raise ValueError(f"on a Dask worker: {' '.join(str(exc).split())}") from None
            except Exception as exc:  # noqa: BLE001 -- the cluster's trouble, in one line
                detail = " ".join(str(exc).split()) or "(no message)"
                raise ClusterError(
                    f"task {number[future.key]} failed on the cluster: {type(exc).__name__}: "
                    f"{detail[:300]} (are simnet and the scenario's module installed, the same "
                    "versions, on the scheduler and every worker?)") from None
            yield number[future.key], result
    finally:
        pending = [f for f in futures if not f.done()]
        try:
            if pending:
                client.cancel(pending)
        finally:
            if owned:
                client.close()


def map_chunks(scheduler: Any) -> Callable[[Callable[..., Any], Sequence[Sequence[Any]]], Iterator[Any]]:
    """A ``map_chunks`` for :func:`simnet.explore.explore` that runs the
    chunks on the Dask cluster at *scheduler*: ``fn(run_chunk, tasks)``
    yields ``run_chunk(*task)`` for each task, as they complete."""
    require()

    def run(func: Callable[..., Any], tasks: Sequence[Sequence[Any]]) -> Iterator[Any]:
        for _, result in submit(scheduler, func, tasks):
            yield result

    return run


def call_each(scheduler: Any, func: Callable[..., Any], tasks: Sequence[Sequence[Any]]) -> list[Any]:
    """``[func(*task) for task in tasks]``, each call a task on the Dask
    cluster at *scheduler* (explore shrinks each distinct failure so)."""
    results: list[Any] = [None] * len(tasks)
    for i, result in submit(scheduler, func, tasks, name="simnet-explore-shrink"):
        results[i] = result
    return results
