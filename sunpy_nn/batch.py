"""
Run one task over many items (files, maps...): serially, or as dask tasks on threads, processes or a cluster.

Nothing here knows what the task does: `run_batch` is handed a picklable callable ``task(item, index)`` and runs
it once per item with whatever dask runs it (threads, processes, a ``dask.distributed`` cluster, an HPC cluster
through dask-jobqueue). The task object is sent to each worker once (a network it holds travels once, not once per
item); an item that fails never stops the others; warnings raised on a worker reach the caller; and torch's CPU
threads are split between the tasks that share a host (`sunpy_nn.nn.device.threads_per_task`: the package's one
thread policy, or the user's thread count, shared out). `sunpy_nn.enhance.enhance_batch` is the Enhance task run
this way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sunpy_nn.utils import SunpyNNUserWarning

__all__ = ["ERRORS", "SCHEDULERS", "BatchError", "MapFailure", "resolve_scheduler", "run_batch"]

log = logging.getLogger(__name__)

#: The dask schedulers a batch can run on (besides ``"serial"`` and a `distributed.Client`).
SCHEDULERS = ("threads", "processes", "synchronous", "distributed")
#: What a batch does when items fail: raise a `BatchError` after all are done, or warn for each.
ERRORS = ("raise", "warn")


# -------------------------------------------------------------------------------------------------- scheduling
def _current_client():
    try:
        from distributed import Client
    except ImportError:
        return None
    try:
        return Client.current()
    except ValueError:  # no active client
        return None


def resolve_scheduler(scheduler=None):
    """
    What runs a batch: ``("serial", None)``, ``("client", client)`` or ``(name, None)`` for dask's local schedulers.

    Parameters
    ----------
    scheduler : {None, "serial", "threads", "processes", "synchronous", "distributed"} or `distributed.Client`
        `None` uses the active `distributed.Client` when there is one, else runs serially in this process;
        ``"distributed"`` needs an active client; any object with ``submit`` and ``gather`` is taken as a client.

    Returns
    -------
    tuple of (str, `distributed.Client` or None)
        The mode (``"serial"``, ``"client"``, ``"threads"``, ``"processes"`` or ``"synchronous"``) and the client
        for ``"client"`` (`None` otherwise).

    Raises
    ------
    ValueError
        ``scheduler`` is an unknown name, or ``"distributed"`` without an active `distributed.Client`.
    TypeError
        ``scheduler`` is neither a string nor a client.
    ImportError
        ``"threads"``, ``"processes"`` or ``"synchronous"`` without dask installed.

    Examples
    --------
    >>> from sunpy_nn.batch import resolve_scheduler
    >>> resolve_scheduler("serial")
    ('serial', None)
    """
    if scheduler is None:
        client = _current_client()
        return ("client", client) if client is not None else ("serial", None)
    if isinstance(scheduler, str):
        if scheduler == "serial":
            return "serial", None
        if scheduler == "distributed":
            client = _current_client()
            if client is None:
                raise ValueError("scheduler='distributed' needs an active dask.distributed.Client; create one first")
            return "client", client
        if scheduler in ("threads", "processes", "synchronous"):
            _require_dask()
            return scheduler, None
        raise ValueError(f"scheduler must be one of {(*SCHEDULERS, 'serial')} or a dask Client, not {scheduler!r}")
    if hasattr(scheduler, "submit") and hasattr(scheduler, "gather"):
        return "client", scheduler
    raise TypeError(f"scheduler must be a string or a dask.distributed.Client, not {type(scheduler).__name__}")


def _require_dask():
    try:
        import dask  # noqa: F401
    except ImportError:
        raise ImportError("This needs dask: pip install 'sunpy-nn[dask]'") from None


def _check_travels(job: _Job, mode: str, client=None) -> None:
    """
    Refuse, before any work, a task that cannot be pickled to reach worker processes, or pickled cannot be
    unpickled (a ``__setstate__`` or ``__reduce__`` that fails): with ``"processes"``, dask would otherwise fail every
    item with the same error, and a ``dask.distributed`` client with worker processes raised a serialisation error
    that named the runner's wrapper, not the task. The round trip runs here: a module that a worker lacks is not
    caught.
    """
    if mode == "client" and _in_process(client):  # workers in this process (processes=False): nothing is pickled
        return
    if mode not in ("processes", "client"):
        return
    import cloudpickle  # (dask's own serialiser, installed with it)

    try:
        blob = cloudpickle.dumps(job.task)
    except Exception as exc:
        raise TypeError(
            f"The task ({type(job.task).__qualname__}) cannot be pickled to reach dask's worker processes "
            f"({type(exc).__name__}: {exc}): give run_batch a module-level function or an instance of a module-level "
            "class that holds no lock, open socket or other live resource, or use scheduler='threads'"
        ) from exc
    try:
        cloudpickle.loads(blob)
    except Exception as exc:
        raise TypeError(
            f"The task ({type(job.task).__qualname__}) pickles but cannot be unpickled, as dask's worker processes "
            f"would have to ({type(exc).__name__}: {exc}): mend its __setstate__ or __reduce__, or use "
            "scheduler='threads'"
        ) from exc


def _in_process(client) -> bool:
    """Whether every worker of a ``dask.distributed`` client runs in this process (``inproc://`` addresses)."""
    try:
        workers = client.scheduler_info().get("workers", {})
    except Exception:  # no answer: assume worker processes, and check
        return False
    return bool(workers) and all(str(address).startswith("inproc://") for address in workers)


def _check_errors(errors: str) -> None:
    """Refuse an ``errors`` argument that is not one of `ERRORS` (before any work)."""
    if errors not in ERRORS:
        raise ValueError(f"errors must be 'raise' or 'warn', not {errors!r}")


# ------------------------------------------------------------------------------------------------------ failures
@dataclass(frozen=True)
class MapFailure:
    """
    One map of a batch that failed: its position, what it was, and the error.

    Parameters
    ----------
    index : int
        Position of the item in the batch's input (from 0).
    source : str
        How the item is named in messages: its path, or its position, name and date.
    error : str
        The exception the task raised, as ``"Type: message"``.
    """

    index: int
    source: str
    error: str


class BatchError(RuntimeError):
    """
    Some maps of a batch failed; all others were processed.

    Raised by `run_batch` with ``errors="raise"`` after all items are done. The arguments are kept as attributes
    of the same names.

    Parameters
    ----------
    results : list
        The results in input order, one per item, `None` where an item failed.
    failures : list of `MapFailure`
        One for each item that failed, in input order.
    unit : str
        What an item is called in the message (e.g. ``"map"``, ``"cube"``).
    """

    def __init__(self, results: list, failures: list[MapFailure], unit: str = "map"):
        self.results, self.failures, self.unit = results, failures, unit
        lines = "\n".join(f"  [{f.index}] {f.source}: {f.error}" for f in failures)
        ok = sum(r is not None for r in results)
        super().__init__(
            f"{len(failures)} of {len(results)} {unit}s failed ({ok} succeeded; their results are in .results):\n"
            f"{lines}"
        )

    def __reduce__(self):
        # Exceptions pickle as cls(*self.args), here the message alone: rebuild from what the message is made of
        # (a batch's error travels back from a dask worker, or to a process pool of the caller).
        return type(self), (self.results, self.failures, self.unit)


def _source_name(item, index: int, unit: str = "map") -> str:
    """How an item is named in messages: its path, or its position, name and date."""
    if isinstance(item, str | Path):
        return str(item)
    date = getattr(item, "date", None)
    name = getattr(item, "name", type(item).__name__)
    return f"{unit} {index} ({name}{', ' + date.isot if date is not None else ''})"


# ------------------------------------------------------------------------------------------------------- threads
def _threads_per_task(mode: str, client, num_workers: int | None) -> dict:
    """
    torch threads per task so that concurrent tasks on a host share its cores instead of oversubscribing.

    The budget of this host is the package's thread policy for this process (or the user's count), measured here:
    `sunpy_nn.nn.device.threads_per_task`. Another host of a cluster gets ``("tasks", n)``: its workers share out
    their own host's usable CPUs (its load is not known here, and there their sibling workers would count as load).
    """
    if mode in ("serial", "synchronous"):  # one task at a time, in this process: nothing to share out
        return {}
    from sunpy_nn.nn.device import _available_cpus, threads_per_task

    if mode == "client":
        per_host: dict[str, int] = {}
        for addr, info in client.scheduler_info().get("workers", {}).items():
            host = addr.split("://")[-1].rsplit(":", 1)[0]
            per_host[host] = per_host.get(host, 0) + int(info.get("nthreads", 1))
        return {h: threads_per_task(n) if _is_this_host(h) else ("tasks", n) for h, n in per_host.items()}
    # dask's own default: one worker per logical CPU
    return {"local": threads_per_task(num_workers or _available_cpus())}


def _is_this_host(host: str) -> bool:
    import socket

    names = {"localhost", "127.0.0.1", "::1", "[::1]"}
    with contextlib.suppress(OSError):
        names |= {socket.gethostname(), socket.gethostbyname(socket.gethostname())}
    return host in names


def _worker_host() -> str:
    """The host of the dask.distributed worker this runs on, as in its address; ``"local"`` elsewhere."""
    try:
        from distributed import get_worker

        return get_worker().address.split("://")[-1].rsplit(":", 1)[0]
    except (ImportError, ValueError):
        return "local"


def _set_threads(threads: dict, client_pid: int) -> None:
    # torch's thread count is per process: worker processes set it for good; in the caller's process run_batch
    # sets it for the batch and puts it back (_threads_during), and each dask thread joins that count.
    if not threads:
        return
    from sunpy_nn.nn.device import _join_threads, _set_worker_threads, _usable_cpus, threads_per_task

    if os.getpid() == client_pid:
        _join_threads()
        return

    host = _worker_host()
    n = threads.get(host, threads.get("local"))
    if isinstance(n, tuple):  # another host than the caller's: share out its own usable CPUs
        n = threads_per_task(n[1], cpus=_usable_cpus())
    if n:
        _set_worker_threads(n)


# --------------------------------------------------------------------------------------------------------- tasks
@dataclass
class _Job:
    """The task and how to run it, sent once per worker (it may hold a network)."""

    task: Callable[[Any, int], Any]
    threads: dict = field(default_factory=dict)  # host -> torch threads per task there
    client_pid: int = field(default_factory=os.getpid)


_CAPTURE_LOCK = threading.Lock()
_CAPTURE: dict = {"tasks": 0, "saved": None}  # tasks running in this process, and the warnings state they replaced
_TASK = threading.local()  # the running task's list of warnings, in each thread


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` while tasks run: into the list of the task of this thread, else as before."""
    caught = getattr(_TASK, "caught", None)
    if caught is None:
        _CAPTURE["saved"][1](message, category, filename, lineno, file, line)
    else:
        caught.append(str(message))


@contextlib.contextmanager
def _warnings_of_this_task():
    """
    The warnings the task running in this thread raises, each kept for it (``SunpyNNUserWarning`` every time): for
    tasks running side by side on the threads of one process, where `warnings.catch_warnings` swaps the process's
    filters and display for each and so mixes up and loses them. The first task to start replaces them, the last
    to end puts them back.
    """
    with _CAPTURE_LOCK:
        if _CAPTURE["tasks"] == 0:
            _CAPTURE["saved"] = (warnings.filters, warnings.showwarning)
            warnings.filters = list(warnings.filters)
            warnings.simplefilter("always", SunpyNNUserWarning)
            warnings.showwarning = _show
        _CAPTURE["tasks"] += 1
    outer = getattr(_TASK, "caught", None)  # a batch run by a task of another batch: its list comes back after
    _TASK.caught = caught = []
    try:
        yield caught
    finally:
        _TASK.caught = outer
        with _CAPTURE_LOCK:
            _CAPTURE["tasks"] -= 1
            if _CAPTURE["tasks"] == 0:
                warnings.filters, warnings.showwarning = _CAPTURE["saved"]
                warnings._filters_mutated()  # as catch_warnings does on exit: the filters' caches are stale


def _run_one(item, index: int, job: _Job) -> tuple:
    """Run the task on one item, on a worker; errors are returned, not raised, so that the others go on."""
    try:
        _set_threads(job.threads, job.client_pid)
        with _warnings_of_this_task() as caught:
            value = job.task(item, index)
        return index, "ok", value, caught
    except Exception as exc:
        return index, "error", f"{type(exc).__name__}: {exc}", []


def _died(exc: BaseException) -> str:
    """The failure of an item whose worker died (killed by the OS, out of memory, or a crash in native code)."""
    return (
        f"{type(exc).__name__}: {exc} (a worker died before this item finished: out of memory or a crash in "
        "native code, in this item or another; retry the failed items with fewer workers)"
    )


def run_batch(
    items: Sequence,
    task: Callable[[Any, int], Any],
    *,
    scheduler=None,
    num_workers: int | None = None,
    errors: str = "raise",
    progress: bool = True,
    desc: str = "batch",
    unit: str = "map",
    stacklevel: int = 1,
) -> list:
    """
    Run ``task(item, index)`` for every item, serially or on dask, and collect the results in input order.

    Parameters
    ----------
    items : sequence
        What the task is run on (file names, maps...): each item is one task.
    task : callable
        ``task(item, index)`` returns the result for one item; it is pickled to reach dask workers (a module-level
        function or an instance of a module-level class), once per worker. Exceptions it raises mark the item as
        failed; warnings it raises reach the caller as `~sunpy_nn.SunpyNNUserWarning` naming the item.
    scheduler : {None, "serial", "threads", "processes", "synchronous", "distributed"} or `distributed.Client`
        What runs the tasks (see `resolve_scheduler`). `None` uses the active `distributed.Client` if there is one,
        else runs them one after the other in this process.
    num_workers : int, optional
        Workers of the ``"threads"`` and ``"processes"`` schedulers (default: one per core). torch's CPU threads
        are split between the tasks that run at once on a host.
    errors : {"raise", "warn"}
        ``"raise"`` raises a `BatchError` after all items are done; ``"warn"`` warns for each failure.
    progress : bool
        Show a progress bar.
    desc : str
        What the batch is called in the progress bar, the log and the warnings (e.g. ``"enhance_map"``).
    unit : str
        What an item is called in messages.
    stacklevel : int
        ``stacklevel`` of the warnings as the caller of `run_batch` would pass it to `warnings.warn` (1: the line
        that called `run_batch`).

    Returns
    -------
    list
        The results of the items that succeeded, in input order (a task that succeeds with `None` keeps its place;
        failed items are left out).

    Raises
    ------
    BatchError
        With ``errors="raise"``, after all items are done, if any failed: it lists each failure and holds the
        successful results.
    ValueError, TypeError
        A bad ``errors`` or ``scheduler``.
    TypeError
        With worker processes (``"processes"``, a `distributed.Client` whose workers are processes), a ``task``
        that cannot be pickled, or pickled cannot be unpickled (before any item runs).
    ImportError
        A dask scheduler without dask installed.

    Examples
    --------
    >>> from sunpy_nn.batch import run_batch
    >>> run_batch([3, 4, 5], pow, scheduler="serial", progress=False)  # pow(item, index)
    [1, 4, 25]
    """
    from tqdm.auto import tqdm

    _check_errors(errors)
    mode, client = resolve_scheduler(scheduler)
    job = _Job(task, _threads_per_task(mode, client, num_workers))
    _check_travels(job, mode, client)
    items = list(items)
    outcomes: list = [None] * len(items)
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress)
    log.info("%s: %d %ss, scheduler %s", desc, len(items), unit, mode if client is None else client)
    from sunpy_nn.nn.runner import keep_freed_memory  # not at the top: batch stays importable without torch

    if mode == "serial":
        with keep_freed_memory():  # one heap for all items in this process, not trimmed between them (issue #16)
            for i, item in enumerate(items):
                outcomes[i] = _run_one(item, i, job)
                bar.update()
    elif mode == "client":
        from distributed import as_completed

        # hash=False: a fresh key, so that releasing an earlier batch's identical job cannot cancel this one
        job_future = client.scatter(job, broadcast=True, hash=False)  # the task travels to each worker once
        futures = [client.submit(_run_one, item, i, job_future, pure=False) for i, item in enumerate(items)]
        index_of = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            try:
                index, *rest = future.result()
                outcomes[index] = (index, *rest)
            except Exception as exc:  # the task catches its own errors: a worker died (KilledWorker), or the result
                why = _died(exc) if type(exc).__name__ == "KilledWorker" else f"{type(exc).__name__}: {exc}"
                outcomes[index_of[future.key]] = (index_of[future.key], "error", why, [])
            future.release()
            bar.update()
    else:
        import dask
        from dask.callbacks import Callback

        from sunpy_nn.nn.device import _threads_during

        job_d = dask.delayed(job, pure=True)
        tasks = [dask.delayed(_run_one, pure=False)(item, i, job_d) for i, item in enumerate(items)]

        keys, finished = {t.key for t in tasks}, {}

        class _Bar(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                if key in keys:  # this batch's items only (dask's callbacks see every compute in the process)
                    finished[result[0]] = result  # kept as it arrives: a pool that breaks returns nothing
                    bar.update()

        # dask threads share this process's torch threads: each task's share for the batch, then all as it was
        share = _threads_during(job.threads["local"]) if mode == "threads" else contextlib.nullcontext()
        keep = keep_freed_memory() if mode in ("threads", "synchronous") else contextlib.nullcontext()
        from concurrent.futures.process import BrokenProcessPool

        try:
            with share, keep, _Bar():
                # one item per submission: an item's result comes back when it is done, not with a chunk's
                chunks = {"chunksize": 1} if mode == "processes" else {}
                results = dask.compute(*tasks, scheduler=mode, num_workers=num_workers, **chunks)
        except Exception as exc:  # dask stops at the first: a worker process died, or a result could not travel
            why = _died(exc) if isinstance(exc, BrokenProcessPool) else f"{type(exc).__name__}: {exc}"
            results = [finished.get(i) or (i, "error", why, []) for i in range(len(items))]  # the finished: kept
        for index, *rest in results:
            outcomes[index] = (index, *rest)
    bar.close()

    results, failures = [], []
    for i, (_, status, value, messages) in enumerate(outcomes):
        source = _source_name(items[i], i, unit)
        if status == "ok":
            results.append(value)
            # warnings raised on a worker (e.g. a pixel scale far from HMI's) reach the caller, once per item
            for message in messages:
                warnings.warn(f"{source}: {message}", SunpyNNUserWarning, stacklevel=stacklevel + 1)
        else:
            results.append(None)
            failures.append(MapFailure(i, source, value))
            log.error("%s: %s failed: %s", desc, source, value)
    if failures and errors == "raise":
        raise BatchError(results, failures, unit)
    for f in failures:
        warnings.warn(f"{desc} skipped {f.source}: {f.error}", SunpyNNUserWarning, stacklevel=stacklevel + 1)
    # by status, not by value: a task may succeed with None
    return [value for _, status, value, _ in outcomes if status == "ok"]
