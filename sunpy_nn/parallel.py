"""
Scale-out with dask, as it was importable before issue #15: map batches and lazy (dask-backed) arrays.

This module only re-exports, on first use: ``import sunpy_nn.parallel`` loads neither torch nor sunpy.map. The
batch runner is `sunpy_nn.batch` (`~sunpy_nn.batch.run_batch`, handed the task it runs, `~sunpy_nn.batch.BatchError`,
`~sunpy_nn.batch.MapFailure`, `~sunpy_nn.batch.resolve_scheduler`); the Enhance task it runs over many maps is
`sunpy_nn.enhance_map` of a list (also ``sunpy_nn.enhance.enhance_batch``); lazy arrays are `sunpy_nn.nn.lazy`
(`~sunpy_nn.nn.lazy.is_dask`, `~sunpy_nn.nn.lazy.lazy_tiled`). Maps become dask tasks run by whatever dask runs them
(threads, processes, a ``dask.distributed`` cluster, an HPC cluster through dask-jobqueue), and lazy arrays are
processed block by block with the network's receptive field as overlap, so results equal in-memory processing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and linters; at run time each name is imported on first use (__getattr__)
    from sunpy_nn.batch import SCHEDULERS as SCHEDULERS
    from sunpy_nn.batch import BatchError, MapFailure, resolve_scheduler
    from sunpy_nn.enhance import enhance_batch as enhance_batch
    from sunpy_nn.nn.lazy import is_dask, lazy_tiled

__all__ = ["BatchError", "MapFailure", "is_dask", "lazy_tiled", "resolve_scheduler"]

# Where each name lives now; SCHEDULERS and enhance_batch are importable from here as before, but not listed in
# __all__ (they were not).
_BATCH = ("SCHEDULERS", "BatchError", "MapFailure", "resolve_scheduler")
_LAZY = ("is_dask", "lazy_tiled")


def __getattr__(name: str) -> Any:
    # Imported on first use: sunpy_nn.enhance loads torch and sunpy.map, sunpy_nn.nn.lazy loads torch.
    if name in _BATCH:
        from sunpy_nn import batch

        value = getattr(batch, name)
    elif name in _LAZY:
        from sunpy_nn.nn import lazy

        value = getattr(lazy, name)
    elif name == "enhance_batch":
        from sunpy_nn.enhance import enhance_batch as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_BATCH, *_LAZY, "enhance_batch"})
