"""The whole-frame Noise2Noise pairs of `Noise2NoisePairs`: for the calibration of the uncertainty after training."""

from __future__ import annotations

import numpy as np

from sunpy_nn.nn.lazy import is_dask
from sunpy_nn.training.noise2noise import Noise2NoisePairs, _neighbour_pair, temporal_neighbours


def _calibration_frames(pairs: Noise2NoisePairs, rng: np.random.Generator) -> tuple[list[tuple], float]:
    """
    The whole frames ``(scan, wavelength)`` whose pairs calibrate the uncertainty (`~sunpy_nn.Denoiser.fit`), and
    ``a = v_y / (v_x + v_y)`` of these pairs, the part of ``E[(y - x)^2]`` that is the target's noise variance.

    A sample drawn with ``rng``: enough frames for millions of pixels, yet a small part of a long series (or of a
    lazy cube). The wavelength is None in spectral mode (all wavelengths).
    """
    data = pairs.data
    n_t, n_w = data.shape[0], data.shape[2]
    if pairs.symmetric:
        times, a = list(range(1, n_t - 1)), 1 / 3
    elif pairs.temporal or pairs.self_supervised_single:
        times, a = list(range(n_t)), 0.5
    else:
        times, a = [0, 1], 0.5
    waves = [None] if pairs.mode == "spectral" else list(range(n_w))
    combos = [(t, w) for t in times for w in waves]
    n_pick = min(len(combos), 2 if is_dask(data) else 24)
    return [combos[i] for i in sorted(rng.choice(len(combos), n_pick, replace=False))], a


def _frame_pair(pairs: Noise2NoisePairs, t: int, s: int, w: int | None, rng: np.random.Generator):
    """
    The pair of `Noise2NoisePairs` made of whole frames (scan ``t``, Stokes ``s``, wavelength ``w`` or all for
    None), not augmented: ``(input, target, base)``, where ``base`` is the frame whose difference to the target
    holds the pair's noise (scan t, or the input of a neighbour sub-sampling pair).
    """
    data = pairs.data
    ws = slice(None) if w is None else slice(w, w + 1)
    x = np.asarray(data[t, s, ws])
    if pairs.temporal:
        near = temporal_neighbours(t, pairs.n_t, pairs.temporal)
        if pairs.register is None:
            inp = np.concatenate([np.asarray(data[u, s, ws]) for u in near])
            return inp, x, x
        # a lazy cube's scans (consecutive, t among them), registered onto scan t as the pool's are
        first = min(near[0], t)
        stack = np.stack([np.asarray(data[u, s, ws]) if u != t else x for u in range(first, max(near[-1], t) + 1)])
        stack = pairs.register([first], [stack], None, t - first)[0]
        return np.concatenate([stack[u - first] for u in near]), stack[t - first], stack[t - first]
    if pairs.self_supervised_single:
        d = pairs.shuffle  # the network sees one phase of the pixel-shuffled image
        sub = x[:, ::d, ::d]
        inp, y = _neighbour_pair(sub[:, : sub.shape[1] // 2 * 2, : sub.shape[2] // 2 * 2], rng)
        return inp, y, inp
    first = t - 1 if pairs.symmetric else 0
    stack = np.stack(
        [np.asarray(data[u, s, ws]) if u != t else x for u in range(first, first + (3 if pairs.symmetric else 2))]
    )
    if pairs.register is not None:  # a lazy cube's scans, registered onto one another as the pool's are
        stack = pairs.register([first], [stack])[0]
    x = stack[t - first]
    y = 0.5 * (stack[0] + stack[2]) if pairs.symmetric else stack[1 - t]
    return x, y, x
