"""The training pool of a lazy cube whose wavelengths are computed together (`Noise2NoisePairs`, ``whole_spectra``)."""

from __future__ import annotations

import numpy as np


def check_finite_or_nan(frames: np.ndarray) -> None:
    """A `ValueError` for frames with infinite values (NaN marks masked pixels)."""
    if np.isinf(frames).any():
        raise ValueError("The cube has infinite values: replace them with NaN or mask them")


def whole_spectra_pool(pairs, n_pairs: int) -> list:
    """
    The pool of a lazy cube whose wavelengths are computed together (``whole_spectra``): stacks of all
    wavelengths, at least one per Stokes parameter (drawn in turn, so that an epoch does not train on one Stokes
    parameter alone), read one at a time (only one stack's spectra in memory beyond the pool), of which as many
    wavelengths as the pool holds are kept, drawn at random. Entries ``(Stokes index, stack, target)`` as
    `Noise2NoisePairs.refresh` makes them.
    """
    rng, d = pairs.rng, pairs.data
    n_w = d.shape[2]
    n_keys = min(pairs.pool_entries, max(len(pairs.stokes_idx), pairs.pool_entries // n_w))
    keep = min(n_w, max(1, pairs.pool_entries // n_keys))
    keys = set()
    for i in range(4 * n_keys):
        if len(keys) == n_keys:
            break
        start, target = stack_start(pairs, n_pairs, rng)
        keys.add((start, int(pairs.stokes_idx[i % len(pairs.stokes_idx)]), target))
    pool = []
    for t, s, target in sorted(keys, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2])):
        a, b, crop = read_columns(pairs, [t], n_pairs, target)
        stack = np.asarray(d[t : t + n_pairs, s, :, :, a:b])
        check_finite_or_nan(stack)
        if pairs.register is not None:  # a pair's scans registered onto one another, as a cube in memory is
            stack = pairs.register([t], [stack], crop, target)[0]
        pool += [(s, np.ascontiguousarray(stack[:, w : w + 1]), target) for w in sorted(rng.choice(n_w, keep, False))]
    return pool


def read_columns(pairs, first: list[int], n_pairs: int, reference=None) -> tuple[int, int, slice | None]:
    """
    The columns ``[a, b)`` to read for the stacks of ``n_pairs`` scans from each scan of ``first``, and the part of
    them that is the pairs' ``x_range`` (`None` when they are the same): with a registration (``pairs.register``),
    as many more columns on each side as the shifts (onto ``reference``, see `stack_start`) bring in, so that the
    crop holds data, not NaN bands, as the crop of a cube aligned whole does.
    """
    x0, x1 = pairs.x_range
    if pairs.register is None:
        return x0, x1, None
    m = pairs.register.margin(first, n_pairs, reference)
    a, b = max(x0 - m, 0), min(x1 + m, pairs.data.shape[4])
    return a, b, slice(x0 - a, x0 - a + x1 - x0)


def stack_start(pairs, n_pairs: int, rng) -> tuple[int, int | None]:
    """
    The first scan of a pool stack of ``n_pairs`` consecutive scans, and (temporal mode) the index in it of the
    pair's target, scan t: drawn over the whole series, its window shifted inward at the ends as
    `temporal_neighbours` does, so that the first and last scans are targets too, as in memory (`None` otherwise).
    """
    if not pairs.temporal:
        return int(rng.integers(0, pairs.n_t - n_pairs + 1)), None
    t = int(rng.integers(0, pairs.n_t))
    start = min(max(t - pairs.temporal, 0), pairs.n_t - n_pairs)
    return start, t - start


def lost_frames(pairs) -> list[int]:
    """
    The scans of a `Noise2NoisePairs`'s cube that hold no data at its Stokes parameters (lost frames), for the error
    that names them. A lazy cube is read one frame per scan (the first Stokes parameter and wavelength), and in
    whole only where that frame is empty: this runs once, after the draws failed.
    """
    d, stokes = pairs.data, list(pairs.stokes_idx)
    if isinstance(d, np.ndarray):
        return [t for t in range(pairs.n_t) if not np.isfinite(d[t, stokes]).any()]
    import dask.array as da

    # reductions to one flag per scan: a long series is never held whole
    empty = np.flatnonzero(~da.isfinite(d[:, stokes[0], 0]).any(axis=(-2, -1)).compute()).tolist()
    if not empty:
        return []
    has_data = da.isfinite(d[empty][:, stokes]).any(axis=tuple(range(1, d.ndim))).compute()
    return [t for t, found in zip(empty, has_data, strict=True) if not found]
