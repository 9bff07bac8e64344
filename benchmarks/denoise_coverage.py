#!/usr/bin/env python
"""
Why temporal mode's error bars miss the 1-sigma coverage target on a cube with spatially correlated noise (issue
#14): exploratory, its figures are not in the documentation.

Run from the repository root::

    python benchmarks/denoise_coverage.py                 # the correlated cube, about 6 minutes on one thread
    python benchmarks/denoise_coverage.py --part white

Denoises a synthetic cube of ``benchmarks/denoise_science.py`` (``--part``) with the defaults of `denoise_cube`
(temporal mode on its six scans), then compares the errors against the truth (Stokes Q, U, V, in units of the
noise) in five ways:

1. the coverage, the rms and the kurtosis of ``z = error / sigma`` as the package gives sigma;
2. ``z`` against the local rms of the true error over windows of 5, 9 and 15 px (an oracle): if the errors are
   Gaussian given their local level, this ``z`` has a kurtosis near 3 and the heavy tails come from sigma not
   following the error's level from place to place;
3. sigma rescaled with the truth (oracles) to the error's variance: one factor per Stokes parameter and tuning;
   by bins of the prediction's magnitude; by bins of the prediction's magnitude and of its gradient. These use
   only what is known at prediction time to choose the bins: they bound what a calibration on those quantities
   could reach, if it could measure the error's variance in each bin (a truth-free calibration has only the
   Noise2Noise pairs, whose noise swamps the error where the signal is weak);
4. the rms error against the rms sigma in quintiles of sigma;
5. the coverage at each tuning.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package of this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

MAGNITUDE_EDGES = [0.5, 1, 2, 3, 6, 10]  # |prediction| / noise
GRADIENT_EDGES = [0.2, 0.5, 1, 2]  # |gradient of the prediction| / noise per px


def _line(name: str, err: np.ndarray, sd: np.ndarray) -> str:
    z = err / sd
    z = z[np.isfinite(z)]
    kurtosis = np.mean(z**4) / np.mean(z**2) ** 2
    return (
        f"  {name:<52s} within 1 sigma {np.mean(np.abs(z) < 1):.3f}, 2 sigma {np.mean(np.abs(z) < 2):.3f}; "
        f"rms z {np.sqrt(np.mean(z**2)):.3f}, kurtosis {kurtosis:.2f}"
    )


def _rescaled(err: np.ndarray, sd: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """sigma times the factor that matches the error's variance in each group (an oracle: it uses the error)."""
    out = sd.copy()
    ok = np.isfinite(err) & np.isfinite(sd)
    for g in np.unique(groups[ok]):
        m = ok & (groups == g)
        if m.sum() >= 30:
            out[m] *= np.sqrt(np.mean(err[m] ** 2) / np.mean(sd[m] ** 2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--part", default="correlated", choices=["white", "correlated", "fast", "weak", "evolving"])
    args = parser.parse_args(argv)
    import denoise_science
    import torch

    from sunpy_nn import denoise_cube

    torch.set_num_threads(1)
    cube, truth = denoise_science._cube(args.part)
    t0 = time.perf_counter()
    res = denoise_cube(cube, seed=0, progress=False)
    print(f"{args.part} cube {cube.data.shape}, denoise_cube defaults: {time.perf_counter() - t0:.0f} s, one thread")
    noise = denoise_science.NOISE
    est = np.asarray(res.data, np.float64)[:, 1:] / noise  # Q, U, V in units of the noise
    sd = np.asarray(res.uncertainty.array, np.float64)[:, 1:] / noise
    err = est - truth[:, 1:] / noise

    print("1. as the package gives sigma")
    print(_line("sigma", err, sd))
    print("2. against the local rms of the true error (oracle)")
    for w in (5, 9, 15):
        local = np.sqrt(ndimage.uniform_filter(err**2, size=(1, 1, 1, w, w), mode="reflect"))
        print(_line(f"local rms over {w} x {w} px", err, local))
    print("3. sigma rescaled to the error's variance (oracles), per Stokes parameter and tuning")
    stokes_tuning = np.broadcast_to(np.arange(err.shape[1] * err.shape[2]).reshape(1, *err.shape[1:3], 1, 1), err.shape)
    magnitude = np.digitize(np.abs(est), MAGNITUDE_EDGES)
    gradient = np.digitize(np.hypot(*np.gradient(est, axis=(-2, -1))), GRADIENT_EDGES)
    n_m, n_g = len(MAGNITUDE_EDGES) + 1, len(GRADIENT_EDGES) + 1
    for name, groups in (
        ("one factor each", stokes_tuning),
        ("by bins of |prediction|", stokes_tuning * n_m + magnitude),
        ("by bins of |prediction| and |its gradient|", (stokes_tuning * n_m + magnitude) * n_g + gradient),
    ):
        print(_line(name, err, _rescaled(err, sd, groups)))
    print("4. rms error and rms sigma in quintiles of sigma")
    ok = np.isfinite(err) & np.isfinite(sd)
    edges = np.quantile(sd[ok], [0.2, 0.4, 0.6, 0.8])
    which = np.digitize(sd, edges)
    for b in range(5):
        m = ok & (which == b)
        print(
            f"  quintile {b + 1}: rms error {np.sqrt(np.mean(err[m] ** 2)):.3f}, rms sigma "
            f"{np.sqrt(np.mean(sd[m] ** 2)):.3f}, within 1 sigma {np.mean(np.abs(err[m] / sd[m]) < 1):.3f}"
        )
    print("5. each tuning (Q, U, V pooled)")
    for w in range(err.shape[2]):
        e, v = err[:, :, w], sd[:, :, w]
        z = (e / v)[np.isfinite(e / v)]
        print(
            f"  tuning {w}: rms error {np.sqrt(np.nanmean(e**2)):.3f}, within 1 sigma {np.mean(np.abs(z) < 1):.3f}, "
            f"rms z {np.sqrt(np.mean(z**2)):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
