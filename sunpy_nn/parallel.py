"""
Scale-out with dask, as it was importable before issue #15: map batches and lazy (dask-backed) arrays.

This module only re-exports. The batch runner is `sunpy_nn.batch` (`~sunpy_nn.batch.run_batch`, handed the task it
runs, `~sunpy_nn.batch.BatchError`, `~sunpy_nn.batch.MapFailure`, `~sunpy_nn.batch.resolve_scheduler`); the Enhance
task it runs over many maps is `sunpy_nn.enhance.enhance_batch`; lazy arrays are `sunpy_nn.nn.lazy`
(`~sunpy_nn.nn.lazy.is_dask`, `~sunpy_nn.nn.lazy.lazy_tiled`). Maps become dask tasks run by whatever dask runs them
(threads, processes, a ``dask.distributed`` cluster, an HPC cluster through dask-jobqueue), and lazy arrays are
processed block by block with the network's receptive field as overlap, so results equal in-memory processing.
"""

from sunpy_nn.batch import SCHEDULERS as SCHEDULERS  # importable from here as before, documented in sunpy_nn.batch
from sunpy_nn.batch import BatchError, MapFailure, resolve_scheduler
from sunpy_nn.enhance import enhance_batch as enhance_batch  # as before; defined in sunpy_nn.enhance
from sunpy_nn.nn.lazy import is_dask, lazy_tiled

__all__ = ["BatchError", "MapFailure", "is_dask", "lazy_tiled", "resolve_scheduler"]
