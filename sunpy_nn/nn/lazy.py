"""
Lazy (dask-backed) arrays: `is_dask` and `lazy_tiled`, which runs an image-to-image function block by block.

One concept, one room: recognising a dask array and tiling it with the network's receptive field as overlap (so
that results equal in-memory processing) is needed by Enhance (`sunpy_nn.enhance`) and the denoiser
(`sunpy_nn.denoise`) alike, below the map batches of `sunpy_nn.batch`. This module imports numpy only, and dask
only when a lazy array is processed (torch too, for the thread policy: `_edges`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["is_dask", "lazy_tiled"]

log = logging.getLogger(__name__)

#: The smallest block edge (px) to which `lazy_tiled` cuts an array of too few chunks: at 8 x the overlap or more,
#: the overlap adds at most about half a block's pixels.
MIN_EDGE = 256

#: The share of the available memory (`_available_memory`) that the blocks of such a cut may take while they run:
#: the rest is left to the chunks dask holds and to other processes.
MEMORY_SHARE = 0.5

_MEMINFO = Path("/proc/meminfo")


def is_dask(x) -> bool:
    """
    Whether ``x`` is a dask array (recognised without importing dask, which need not be installed).

    Parameters
    ----------
    x : object
        Anything: an array, a cube's data, a scalar.

    Returns
    -------
    bool
        `True` for an object of a dask module that has ``chunks`` (a `dask.array.Array`), `False` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.nn.lazy import is_dask
    >>> is_dask(np.zeros(3))
    False
    """
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks")


def _split(size: int, edge: int, depth: int, align: int) -> tuple[int, ...]:
    """
    Chunk sizes along one spatial axis: multiples of ``align`` (but the last), none smaller than the overlap.

    Dask's overlap needs every chunk at least as large as the overlap depth (it would merge chunks otherwise);
    chunk starts on multiples of ``align`` keep a U-Net's down-sampling grid the same as on the whole image.
    """
    edge = max(int(edge), depth, align)
    edge = -(-edge // align) * align
    if edge >= size:
        return (size,)
    sizes = [edge] * (size // edge)
    rest = size - sum(sizes)
    if rest:
        if rest < depth:
            sizes[-1] += rest  # too small to stand alone: the last chunk takes it
        else:
            sizes.append(rest)
    return tuple(sizes)


def _meminfo_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes; elsewhere (macOS, Windows) psutil's, where it is installed
    (dask's distributed scheduler brings it); None otherwise."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import psutil

        return int(psutil.virtual_memory().available)
    return None


def _cgroup_limit_left(folder: Path, v2: bool) -> int | None:
    """What one cgroup's memory limit leaves: its limit less its usage, the inactive page cache counted as free (the
    kernel reclaims it; usage less that cache is the kubelet's "working set"); None without a limit there."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        limit = (folder / ("memory.max" if v2 else "memory.limit_in_bytes")).read_text().split()[0]
        if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as a huge number
            return None
        usage = int((folder / ("memory.current" if v2 else "memory.usage_in_bytes")).read_text().split()[0])
        cache = 0
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = dict(line.split()[:2] for line in (folder / "memory.stat").read_text().splitlines())
            cache = int(stat.get("inactive_file" if v2 else "total_inactive_file", 0))
        return max(0, int(limit) - usage + cache)
    return None


def _cgroup_available() -> int | None:
    """The memory this process's cgroups (a container, a batch job) may still take: the least that the limits of its
    cgroup and of every cgroup above it leave (SLURM and systemd set the limit on a parent: the job, a user's slice);
    None where no limit is set or readable."""
    from sunpy_nn.nn import device

    left = []
    for path in device._cgroup_files("memory.max", "memory", "memory.limit_in_bytes", ("memory",)):
        folder, v2 = path.parent, path.name == "memory.max"
        top = device._CGROUP if v2 else device._CGROUP / path.relative_to(device._CGROUP).parts[0]
        while True:
            left.append(_cgroup_limit_left(folder, v2))
            if folder == top or top not in folder.parents:
                break
            folder = folder.parent
    known = [m for m in left if m is not None]
    return min(known) if known else None


def _available_memory() -> int | None:
    """Bytes this process may still allocate: the machine's available memory, capped by its cgroups'; None where
    neither is known."""
    known = [m for m in (_meminfo_available(), _cgroup_available()) if m is not None]
    return min(known) if known else None


def _edges(
    array, tile: int | None, depth: int, align: int, fill_cpus: bool, workspace: Callable[[int, int], int] | None
) -> list[int]:
    """
    Spatial chunk edges (y, x) for `lazy_tiled`: ``tile``, else the array's, halved (the longer first) while the
    array has fewer blocks than dask's pool threads need to fill the CPUs (`~sunpy_nn.nn.device._pool_blocks`), the
    halves stay at least ``MIN_EDGE`` px and 8 x the overlap, and the blocks' ``workspace`` (bytes of a block of
    ``(h, w)`` px, overlap included), all running at once, stays within ``MEMORY_SHARE`` of `_available_memory`.
    """
    if tile:
        return [tile, tile]
    edges = [max(array.chunks[a]) for a in (-2, -1)]
    if not fill_cpus:
        return edges
    from sunpy_nn.nn.device import _pool_blocks  # torch: imported only where a network runs

    wanted = _pool_blocks()
    leading = math.prod(len(c) for c in array.chunks[:-2])
    smallest = max(MIN_EDGE, 8 * depth)
    shape = [array.shape[a] for a in (-2, -1)]

    def blocks(edges: list[int]) -> int:  # as `_split` will cut them
        return leading * math.prod(len(_split(n, e, depth, align)) for n, e in zip(shape, edges, strict=True))

    def fits(edges: list[int]) -> bool:  # the blocks of this cut, all running at once, in their share of memory
        if free is None:
            return True
        h, w = (min(n, e + 2 * depth) for n, e in zip(shape, edges, strict=True))
        return blocks(edges) * workspace(h, w) <= MEMORY_SHARE * free

    before = blocks(edges)
    free = _available_memory() if workspace is not None and before < wanted else None  # read only where it may cut
    while blocks(edges) < wanted:
        a = 0 if edges[0] >= edges[1] else 1
        cut = list(edges)
        cut[a] = -(-edges[a] // 2)
        if cut[a] < smallest:
            break
        if not fits(cut):
            log.debug(
                "lazy_tiled: not cut into %d blocks, which would take more than %g of the %.1f GB available",
                blocks(cut),
                MEMORY_SHARE,
                free / 1e9,
            )
            break
        edges = cut
    if blocks(edges) != before:
        log.debug("lazy_tiled: %d block(s) cut into %d, one per CPU the pool threads may use", before, blocks(edges))
    return edges


def lazy_tiled(
    array,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    depth: int,
    scale: int = 1,
    align: int = 1,
    tile: int | None = None,
    n_out: int | None = None,
    dtype=np.float32,
    with_location: bool = False,
    fill_cpus: bool = False,
    workspace: Callable[[int, int], int] | None = None,
):
    """
    Apply an image-to-image function lazily to a dask array, block by block with overlap, exactly.

    The last two axes are spatial; every leading index is processed on its own (``fn`` gets ``(..., y, x)``
    blocks with the leading chunk shape). Each block is extended by ``depth`` pixels from its neighbours (none
    at the image border, so ``fn`` sees the true border as it would in memory) and the output is cropped back,
    so when ``depth`` covers everything an output pixel depends on, the result equals ``fn`` on the whole array.

    Parameters
    ----------
    array : `dask.array.Array`
        Input, ``(..., H, W)``.
    fn : callable
        ``fn(block) -> out`` with ``out.shape[-2:] == scale * block.shape[-2:]`` and, if ``n_out`` is given, a new
        leading axis of length ``n_out``.
    depth : int
        Overlap in input pixels (rounded up to a multiple of ``align``).
    scale : int
        Output pixels per input pixel.
    align : int
        Spatial chunk boundaries and the overlap are multiples of this (``2**depth`` for U-Nets).
    tile : int, optional
        Spatial chunk edge; default: keep the array's chunks (rounded to ``align``), cut finer where ``fill_cpus``
        asks.
    n_out : int, optional
        Length of a new leading output axis (e.g. value and uncertainty).
    dtype : numpy dtype
        Output type.
    with_location : bool
        Call ``fn(block, chunk_location)`` with the block's chunk indices (e.g. to know its Stokes parameter).
    fill_cpus : bool
        Without ``tile``, cut an array of fewer blocks than the CPUs into one block per CPU (spatial halves, the
        longer axis first, down to blocks of ``MIN_EDGE`` px and 8 x ``depth``): a block runs one torch thread on
        dask's threads (`sunpy_nn.nn.device`, rule 4). Only for an ``fn`` whose result does not depend on the
        blocks (not, e.g., random draws seeded per block, or statistics of a block), since the blocks then depend on
        the machine's CPUs and their load. Default: keep the chunks.
    workspace : callable, optional
        With ``fill_cpus``: ``workspace(h, w)``, the bytes ``fn`` takes on a block of ``h x w`` px (overlap
        included). The array is then cut only so far that its blocks, all running at once, take at most
        ``MEMORY_SHARE`` (half) of the memory available to this process (``/proc/meminfo``'s ``MemAvailable``, capped
        by what the limits of its cgroup and the cgroups above it leave: a container, a batch job; elsewhere psutil's
        figure, where psutil is installed). Default, or where the memory is unknown: the cut counts the CPUs only.

    Returns
    -------
    `dask.array.Array`
        Lazy output of shape ``([n_out,] ..., scale*H, scale*W)``.
    """
    import dask.array as da

    depth = -(-int(depth) // align) * align
    edges = _edges(array, tile, depth, align, fill_cpus, workspace)
    spatial = tuple(_split(array.shape[a], e, depth, align) for a, e in zip((-2, -1), edges, strict=True))
    if spatial != array.chunks[-2:]:
        array = array.rechunk(array.chunks[:-2] + spatial)
    lead = array.ndim - 2
    # One chunk along an axis needs no overlap (and dask refuses an overlap larger than the axis).
    dy, dx = (depth if len(array.chunks[a]) > 1 else 0 for a in (-2, -1))
    overlapped = da.overlap.overlap(array, depth={lead: dy, lead + 1: dx}, boundary="none")
    out_chunks = array.chunks[:-2] + tuple(tuple(scale * c for c in ch) for ch in array.chunks[-2:])
    if n_out is not None:
        out_chunks = ((n_out,), *out_chunks)
    n_y, n_x = len(array.chunks[-2]), len(array.chunks[-1])

    def block(x, block_info=None):
        loc = block_info[0]["chunk-location"]
        iy, ix = loc[-2], loc[-1]
        top, left = (dy if iy > 0 else 0), (dx if ix > 0 else 0)
        bottom, right = (dy if iy < n_y - 1 else 0), (dx if ix < n_x - 1 else 0)
        y = np.asarray(fn(np.asarray(x), tuple(loc)) if with_location else fn(np.asarray(x)), dtype=dtype)
        h, w = x.shape[-2] - top - bottom, x.shape[-1] - left - right
        return y[..., scale * top : scale * (top + h), scale * left : scale * (left + w)]

    return da.map_blocks(
        block,
        overlapped,
        chunks=out_chunks,
        dtype=dtype,
        new_axis=[0] if n_out is not None else None,
        meta=np.empty((0,) * (len(out_chunks)), dtype=dtype),
    )
