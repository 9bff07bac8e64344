"""
Memory that the networks free, kept in the process between layers, tiles, frames and calls (issue #16).

glibc only: elsewhere (macOS, Windows, musl) `keep_freed_memory` does nothing. There is no library for this;
PyTorch's CPU allocator returns large blocks to the OS at once, and TensorFlow's keeps them for the life of the
process.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform
import threading
from collections.abc import Iterator

__all__ = ["HEAP_LINGER_S", "keep_freed_memory", "release_freed_memory"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
# Restored afterwards. Any mallopt() call switches glibc's adaptive mmap threshold off for good, so its defaults
# (128 KiB) would stay fixed and every later array above 128 KiB would be mmap()ed afresh; these are instead the
# values the adaptive threshold settles at once large blocks have been freed (32 MiB on 64-bit, trimming above twice
# that), which is where it stood while the networks ran.
_GLIBC_AFTER = {_M_TRIM_THRESHOLD: 64 << 20, _M_MMAP_THRESHOLD: 32 << 20, _M_MMAP_MAX: 65536}

#: Seconds the freed memory is kept after the last `keep_freed_memory` context closes, so that the next call (the
#: next map of a loop, the next round of a benchmark) reuses the pages instead of faulting them in again. An
#: 800 x 800 U-Net frame faults in 130,000-170,000 pages (~650 MB), 0.2-0.9 s of system time on top of ~1.1 s of
#: computation, on a 2-core AMD EPYC (``python benchmarks/unet_levers.py --series 4``: 1.33 s per frame with the
#: memory released after each call, 1.17 s for consecutive calls).
HEAP_LINGER_S = 5.0


class _HeapKeeper:
    """The process's count of open `keep_freed_memory` contexts, over all threads, and the pending release."""

    lock = threading.Lock()
    depth = 0
    libc = None  # while glibc's settings are changed: contexts open, or the linger after the last one
    generation = 0  # counts the openings from depth 0; a pending release made stale by a later one does nothing
    timer: threading.Timer | None = None
    pid = os.getpid()  # the process whose contexts these are (a forked child starts afresh)


@functools.cache  # find_library runs ldconfig: once per process, not at every call
def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 -- both must exist
    except (OSError, AttributeError):
        return None
    return libc


def _restore() -> None:
    """glibc's settings back and the kept memory returned to the OS; the caller holds the lock."""
    libc, _HeapKeeper.libc, _HeapKeeper.timer = _HeapKeeper.libc, None, None
    if libc is not None:
        for param, value in _GLIBC_AFTER.items():
            libc.mallopt(param, value)
        libc.malloc_trim(0)


def _release(generation: int) -> None:
    """The linger's end: restore unless a context opened (and maybe closed) since it was scheduled."""
    with _HeapKeeper.lock:
        if _HeapKeeper.depth == 0 and _HeapKeeper.generation == generation:
            _restore()


def release_freed_memory() -> None:
    """
    Give the memory kept by `keep_freed_memory` back to the OS now, instead of when its linger ends.

    The linger is ``sunpy_nn.nn.heap.HEAP_LINGER_S`` (5 s) after the last context closed. Contexts still open (in any
    thread) keep the memory until the last closes. Elsewhere than glibc it does nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.nn import UNet, release_freed_memory, run_tiled
    >>> net = UNet(1, 1, 4, 2).eval()
    >>> out = run_tiled(net, np.zeros((64, 64), np.float32), halo=net.receptive_radius, align=net.align)
    >>> release_freed_memory()  # e.g. before a memory-hungry step of your own
    """
    with _HeapKeeper.lock:
        if _HeapKeeper.depth == 0:
            if _HeapKeeper.timer is not None:
                _HeapKeeper.timer.cancel()
            if _HeapKeeper.libc is not None:
                _restore()
            elif (libc := _glibc()) is not None:  # no linger pending: still trim what the heap holds free
                libc.malloc_trim(0)


def _before_fork() -> None:
    # No fork lands between a mallopt() and the bookkeeping that records it (ctypes releases the GIL).
    _HeapKeeper.lock.acquire()


def _after_fork_in_parent() -> None:
    _HeapKeeper.lock.release()


def _after_fork_in_child() -> None:
    # The child has only the forking thread: no timer, and no other thread to close the contexts open at the fork
    # (the forking thread's own skip their close: _HeapKeeper.pid). glibc's settings come back at once, so the child's
    # heap is glibc's again; a child of a process that never kept its heap makes no mallopt() call.
    _HeapKeeper.lock = threading.Lock()
    _HeapKeeper.timer = None
    _HeapKeeper.depth = 0
    _HeapKeeper.generation += 1
    _HeapKeeper.pid = os.getpid()
    _restore()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def keep_freed_memory(device=None) -> Iterator[None]:
    """
    Keep memory that tensors free inside the process while networks run, instead of returning it to the OS.

    glibc serves allocations above 32 MiB (an Enhance activation of a 512 px tile is 64-256 MiB) with fresh mmap()s,
    so every layer of every tile page-faults its output in again: 470,000 minor faults and ~0.35 s of system time
    per 512 px tile, ~15 % on top of the computation. Inside this context mmap is off and trimming deferred, so
    later layers, tiles and frames reuse the pages of earlier ones (0 faults from the second frame on).
    `run_tiled` (so `~sunpy_nn.enhance_map` and `~sunpy_nn.enhance.enhance_array`) opens it for each call, over all
    its tiles; `Denoiser.predict <sunpy_nn.denoise.Denoiser.predict>` (so `~sunpy_nn.denoise_cube`) and
    `~sunpy_nn.batch.run_batch` on this process's schedulers hold it over all their frames and items. Wrap your own
    loop over many calls in it for the same gain.

    The memory is still kept for 5 s (``sunpy_nn.nn.heap.HEAP_LINGER_S``) after the last context closes, so that
    consecutive calls (maps of a loop) reuse it too; then glibc's settings are restored and the heap trimmed, unless
    another context opened meanwhile. On a virtual machine that hands freed pages back to its host (free-page
    reporting), faulting them in again can cost many times the usual system time: hold this context over a loop whose
    calls are further apart than the linger. `release_freed_memory` gives it back at once. The contexts nest and may be
    open in several threads at once (dask). The peak memory of the networks is unchanged (the largest frame's working
    set); while it is kept, large arrays of the thread that ran them reuse it, but other threads' allocations come on
    top (`release_freed_memory` gives it back first). A forked child (multiprocessing) gets glibc's settings back.
    Elsewhere than glibc (macOS, Windows, musl) it does nothing.

    Parameters
    ----------
    device : str or `torch.device`, optional
        The device the networks run on: only ``"cpu"`` keeps memory (a GPU's activations are not in this heap);
        `None` (the default): keep it.

    Yields
    ------
    None
        Control returns to the ``with`` block; nothing is bound by ``as``.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.nn import UNet, keep_freed_memory, run_tiled
    >>> net = UNet(1, 1, 4, 2).eval()
    >>> frames = np.zeros((3, 64, 64), np.float32)
    >>> with keep_freed_memory():  # one heap for the whole series
    ...     out = [run_tiled(net, f, halo=net.receptive_radius, align=net.align, progress=False) for f in frames]
    >>> len(out), out[0].shape
    (3, (64, 64))
    """
    if device is not None and str(device).split(":")[0] != "cpu":
        yield
        return
    with _HeapKeeper.lock:
        if _HeapKeeper.depth == 0:
            _HeapKeeper.generation += 1
            if _HeapKeeper.timer is not None:  # a linger in progress: its settings still hold
                _HeapKeeper.timer.cancel()
                _HeapKeeper.timer = None
            if _HeapKeeper.libc is None:
                libc = _glibc()
                if libc is not None and not (libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)):
                    libc = None
                _HeapKeeper.libc = libc
        _HeapKeeper.depth += 1
        pid = _HeapKeeper.pid
    try:
        yield
    finally:
        with _HeapKeeper.lock:
            if _HeapKeeper.pid == pid:  # else opened before a fork, closed in the child: the count starts afresh there
                _HeapKeeper.depth -= 1
                if _HeapKeeper.depth == 0 and _HeapKeeper.libc is not None:
                    _close_last()


def _close_last() -> None:
    """The last context closed: keep the memory for the linger, or give it back now; the caller holds the lock."""
    if HEAP_LINGER_S <= 0:
        _restore()
        return
    timer = threading.Timer(HEAP_LINGER_S, _release, (_HeapKeeper.generation,))
    timer.daemon = True  # never holds up the interpreter's exit
    try:
        timer.start()
    except RuntimeError:  # no new thread (a thread limit, or interpreter shutdown): give it back now
        _restore()
        return
    _HeapKeeper.timer = timer
