"""
Scale-out with dask: many maps on a cluster, and lazy (dask-backed) images and cubes.

Nothing here schedules work itself: maps become dask tasks run by whatever dask runs them (threads, processes,
a ``dask.distributed`` cluster, an HPC cluster through dask-jobqueue), and lazy arrays are processed block by
block with the network's receptive field as overlap, so results equal in-memory processing (`is_dask` and
`lazy_tiled` live in `sunpy_nn.nn.lazy` and are importable from here too).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sunpy_nn.nn.lazy import is_dask, lazy_tiled
from sunpy_nn.utils import SunpyNNUserWarning

__all__ = ["BatchError", "MapFailure", "is_dask", "lazy_tiled", "resolve_scheduler"]

log = logging.getLogger(__name__)

SCHEDULERS = ("threads", "processes", "synchronous", "distributed")
# Per-process model cache: each worker loads a model once, whatever number of maps it processes.
_MODELS: dict = {}
_MODEL_LOADS = 0


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

    `None` uses the active `distributed.Client` when there is one, else runs serially in this process.
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


# -------------------------------------------------------------------------------------------------- map batches
@dataclass(frozen=True)
class MapFailure:
    """One map of a batch that failed: its position, what it was, and the error."""

    index: int
    source: str
    error: str


class BatchError(RuntimeError):
    """
    Some maps of a batch failed; all others were processed.

    ``results`` holds the successful results in input order (`None` where a map failed) and ``failures`` a
    `MapFailure` for each map that failed.
    """

    def __init__(self, results: list, failures: list[MapFailure]):
        self.results, self.failures = results, failures
        lines = "\n".join(f"  [{f.index}] {f.source}: {f.error}" for f in failures)
        ok = sum(r is not None for r in results)
        super().__init__(
            f"{len(failures)} of {len(results)} maps failed ({ok} succeeded; their results are in .results):\n{lines}"
        )


@dataclass
class _EnhanceJob:
    """Everything a worker needs besides the map, sent once per task (small) or once per worker (the model)."""

    kind: str | None
    weights: object
    device: str | None
    tile_size: int | None
    normalisation: str
    output_dir: str | None
    overwrite: bool
    precision: str | None = "float32"
    compile: bool = False
    threads: dict = field(default_factory=dict)  # host -> torch threads per task there
    client_pid: int = field(default_factory=os.getpid)


def _worker_model(weights, kind: str):
    """The network for ``kind``, loaded once per process (registered names and weight files are cached)."""
    global _MODEL_LOADS
    from sunpy_nn.enhance import load_enhance_model

    if weights is not None and not isinstance(weights, str | Path):
        return load_enhance_model(weights, kind)  # a network object: no file to load
    key = (kind, None if weights is None else str(weights))
    if weights is not None and Path(weights).exists():
        key += (Path(weights).stat().st_mtime,)
    if key not in _MODELS:
        _MODELS[key] = load_enhance_model(weights, kind)
        _MODEL_LOADS += 1
    return _MODELS[key]


def _source_name(item, index: int) -> str:
    if isinstance(item, str | Path):
        return str(item)
    date = getattr(item, "date", None)
    return f"map {index} ({getattr(item, 'name', type(item).__name__)}{', ' + date.isot if date is not None else ''})"


def _output_name(item, index: int) -> str:
    if isinstance(item, str | Path):
        name = Path(item).name
        for suffix in (".gz", ".fz", ".fits", ".fts", ".fit"):
            name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
        return f"{name}_enhanced.fits"
    date = getattr(item, "date", None)
    stamp = date.strftime("%Y%m%d_%H%M%S") if date is not None else "nodate"
    return f"map{index:05d}_{stamp}_enhanced.fits"


def _set_threads(threads: dict, client_pid: int) -> None:
    # torch's thread count is per process: only worker processes set it (in the caller's process the
    # batch sets it and puts it back, see enhance_batch).
    if not threads or os.getpid() == client_pid:
        return
    import torch

    host = "local"
    try:
        from distributed import get_worker

        host = get_worker().address.split("://")[-1].rsplit(":", 1)[0]
    except (ImportError, ValueError):
        pass
    n = threads.get(host, threads.get("local"))
    if n and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _enhance_task(item, index: int, job: _EnhanceJob):
    """Enhance one map (a file or a Map) on a worker; errors are returned, not raised, so others go on."""
    try:
        import sunpy.map

        from sunpy_nn.enhance import _enhance_one, detect_kind
        from sunpy_nn.nn import resolve_device

        _set_threads(job.threads, job.client_pid)
        smap = sunpy.map.Map(item) if isinstance(item, str | Path) else item
        if not isinstance(smap, sunpy.map.GenericMap):
            raise TypeError(f"{_source_name(item, index)} is not one 2-D map but {type(smap).__name__}")
        kind = job.kind or detect_kind(smap)
        model, info = _worker_model(job.weights, kind)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SunpyNNUserWarning)
            out = _enhance_one(
                smap,
                kind,
                model,
                info,
                resolve_device(job.device),
                job.tile_size,
                job.normalisation,
                False,
                job.precision,
                job.compile,
                kind_given=job.kind is not None,
            )
        if job.output_dir is None:
            return index, "ok", out, [str(w.message) for w in caught]
        path = Path(job.output_dir) / _output_name(item, index)
        out.save(path, overwrite=job.overwrite)
        return index, "ok", str(path), [str(w.message) for w in caught]
    except Exception as exc:
        return index, "error", f"{type(exc).__name__}: {exc}", []


def _threads_per_task(kind: str, client, num_workers: int | None) -> dict:
    """torch threads per task so that concurrent tasks on a host share its cores instead of oversubscribing."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if kind == "serial":
        return {}
    if kind == "client":
        per_host: dict[str, int] = {}
        for addr, info in client.scheduler_info().get("workers", {}).items():
            host = addr.split("://")[-1].rsplit(":", 1)[0]
            per_host[host] = per_host.get(host, 0) + int(info.get("nthreads", 1))
        # remote hosts: assume as many cores as this machine has unless they report otherwise
        return {h: max(1, cores // n) for h, n in per_host.items()}
    n = num_workers or cores
    return {"local": max(1, cores // n)}


def enhance_batch(
    items: Sequence,
    *,
    kind=None,
    weights=None,
    device=None,
    tile_size=None,
    normalisation="auto",
    scheduler=None,
    num_workers: int | None = None,
    output_dir=None,
    overwrite: bool = False,
    errors: str = "raise",
    precision: str | None = "float32",
    compile: bool = False,
    progress: bool = True,
) -> list:
    """
    Enhance many maps (files or Maps) serially or on dask; the engine behind `~sunpy_nn.enhance_map` for lists.

    Returns the results in input order: Maps, or the paths written when ``output_dir`` is given. See
    `~sunpy_nn.enhance_map` for the parameters.
    """
    from tqdm.auto import tqdm

    if errors not in ("raise", "warn"):
        raise ValueError(f"errors must be 'raise' or 'warn', not {errors!r}")
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    mode, client = resolve_scheduler(scheduler)
    job = _EnhanceJob(
        kind,
        weights,
        None if device is None else str(device),
        tile_size,
        normalisation,
        None if output_dir is None else str(output_dir),
        overwrite,
        precision,
        compile,
    )
    job.threads = _threads_per_task(mode, client, num_workers)
    items = list(items)
    outcomes: list = [None] * len(items)
    bar = tqdm(total=len(items), desc="enhance_map", unit="map", disable=not progress)
    log.info("enhance_map: %d maps, scheduler %s", len(items), mode if client is None else client)
    if mode == "serial":
        for i, item in enumerate(items):
            outcomes[i] = _enhance_task(item, i, job)
            bar.update()
    elif mode == "client":
        from distributed import as_completed

        # hash=False: a fresh key, so that releasing an earlier batch's identical job cannot cancel this one
        job_future = client.scatter(job, broadcast=True, hash=False)  # the model travels to each worker once
        futures = [client.submit(_enhance_task, item, i, job_future, pure=False) for i, item in enumerate(items)]
        for future in as_completed(futures):
            index, *rest = future.result()
            outcomes[index] = (index, *rest)
            future.release()
            bar.update()
    else:
        import dask
        from dask.callbacks import Callback

        job_d = dask.delayed(job, pure=True)
        tasks = [dask.delayed(_enhance_task, pure=False)(item, i, job_d) for i, item in enumerate(items)]

        class _Bar(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                if isinstance(result, tuple) and len(result) == 4:
                    bar.update()

        import torch

        before = torch.get_num_threads()
        if mode == "threads":  # the tasks share this process's torch threads: split the cores between them
            torch.set_num_threads(job.threads.get("local", before))
        try:
            with _Bar():
                results = dask.compute(*tasks, scheduler=mode, num_workers=num_workers)
        finally:
            torch.set_num_threads(before)
        for index, *rest in results:
            outcomes[index] = (index, *rest)
    bar.close()

    results, failures = [], []
    for i, (_, status, value, messages) in enumerate(outcomes):
        if status == "ok":
            results.append(value)
            # warnings raised on a worker (e.g. a pixel scale far from HMI's) reach the caller, once per map
            for message in messages:
                warnings.warn(f"{_source_name(items[i], i)}: {message}", SunpyNNUserWarning, stacklevel=3)
        else:
            results.append(None)
            failures.append(MapFailure(i, _source_name(items[i], i), value))
            log.error("enhance_map: %s failed: %s", _source_name(items[i], i), value)
    if failures and errors == "raise":
        raise BatchError(results, failures)
    for f in failures:
        warnings.warn(f"enhance_map skipped {f.source}: {f.error}", SunpyNNUserWarning, stacklevel=3)
    return [r for r in results if r is not None]
