#!/usr/bin/env python
"""
Why temporal mode's Stokes V error bars come out narrow on the weak-field cube (issue 14): exploratory, not a docs
producer.

Fits ``Denoiser(temporal=2)`` on a cube of ``benchmarks/denoise_science.py`` (``--part``, the weak-field one by
default; seed 0, one torch thread), keeping the inputs of each Stokes parameter's calibration
(``_calibration._temporal_bins``), and denoises the cube:

- as fitted;
- with the bootstrap's propagated variance averaged over ``--window`` px instead of ``PROPAGATION_WINDOW`` (7), at
  prediction only (the factors stay those calibrated at 7 px): two
  draws over 7 x 7 px are few, and a variance estimated that roughly gives bars too narrow by chance where it comes
  out low (the mean of ``1 / estimate`` exceeds ``1 / mean``), however right its mean;
- with the quiet channels' weak-signal test at ``--weak-sigmas`` standard errors instead of ``WEAK_SIGMAS`` (2): the
  calibration recomputed from the kept inputs.

Prints, for each, the coverage within 1 and 2 sigma, the rms of error / sigma of Q, U and V and by ``|truth| /
sigma``; then, for each quiet channel (spectral component) of each Stokes parameter, its error measured without the
truth over the bootstrap's propagated variance and the scans' agreement in standard errors (the weak-signal test's
statistic). About 12 minutes on one thread.

Run from the repository root::

    python benchmarks/denoise_weak_bars.py                    # the weak-field cube
    python benchmarks/denoise_weak_bars.py --part correlated  # the same levers on correlated noise
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package of this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

STRENGTH_EDGES = (0.0, 0.3, 1.0, 3.0, 10.0, np.inf)  # |truth| / sigma


def _report(name: str, est: np.ndarray, sd: np.ndarray, truth: np.ndarray, noise: float) -> None:
    z = (est - truth) / sd
    strength = np.abs(truth) / noise
    per_stokes = ", ".join(
        f"{lab} {np.sqrt(np.nanmean(z[:, s] ** 2)):.3f}" for s, lab in ((1, "Q"), (2, "U"), (3, "V"))
    )
    pol = z[:, 1:]
    by = []
    for lo, hi in itertools.pairwise(STRENGTH_EDGES):
        m = (strength[:, 1:] >= lo) & (strength[:, 1:] < hi)
        by.append(f"{lo:g}-{hi:g}: {np.sqrt(np.nanmean(pol[m] ** 2)):.3f}" if m.any() else f"{lo:g}-{hi:g}: -")
    print(
        f"  {name:<34s} within 1 / 2 sigma {np.nanmean(np.abs(pol) < 1):.3f} / {np.nanmean(np.abs(pol) < 2):.3f}; "
        f"rms z {np.sqrt(np.nanmean(pol**2)):.3f} ({per_stokes}); by |truth|: {'; '.join(by)}",
        flush=True,
    )


def _predict(den, cube):
    """``predict``'s defaults with the fit's own noise levels, as `denoise_cube` passes them (not estimated again)."""
    args = (("Q", "U", "V"), None, "aleatoric", 20, None, None, "float32", False, False)
    return den._predict(cube, *args, noise=dict(den.noise))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--part", default="weak", choices=["white", "correlated", "weak", "fast", "evolving"])
    p.add_argument("--window", type=int, default=15, help="the bootstrap's averaging window of the second variant")
    p.add_argument("--weak-sigmas", type=float, default=1.0, help="the weak-signal test of the third variant")
    args = p.parse_args(argv)

    import denoise_science
    import torch

    torch.set_num_threads(1)
    from sunpy_nn import Denoiser
    from sunpy_nn.denoise import _calibration

    cube, truth = denoise_science._cube(args.part)
    noise = denoise_science.NOISE
    kept = []
    real = _calibration._temporal_bins

    def keep(*inputs):
        kept.append(inputs)
        return real(*inputs)

    _calibration._temporal_bins = keep
    try:
        den = Denoiser(temporal=2).fit(cube, seed=0, progress=False)
    finally:
        _calibration._temporal_bins = real
    labels = list(den.calibration_bins)  # the order the calibration ran in: one call per Stokes parameter
    print(
        f"{args.part} cube, temporal=2, seed 0; quiet channels: "
        + "; ".join(
            f"{lab} noise {b['noise_channels']}, weak {b['weak_channels']} (x {b['weak_factor']:.2f})"
            for lab, b in den.calibration_bins.items()
        )
    )

    out = _predict(den, cube)
    _report("as fitted", np.asarray(out.data), out.uncertainty.array, truth, noise)

    wide = copy.deepcopy(den)
    wide._bootstrap = (den._bootstrap[0], args.window)
    out = _predict(wide, cube)
    _report(f"bootstrap averaged over {args.window} px", np.asarray(out.data), out.uncertainty.array, truth, noise)

    test = copy.deepcopy(den)
    before = _calibration.WEAK_SIGMAS
    _calibration.WEAK_SIGMAS = args.weak_sigmas
    try:
        test.calibration_bins = {lab: real(*inputs) for lab, inputs in zip(labels, kept, strict=True)}
    finally:
        _calibration.WEAK_SIGMAS = before
    weak = "; ".join(
        f"{lab} {b['weak_channels']} (x {b['weak_factor']:.2f})" for lab, b in test.calibration_bins.items()
    )
    out = _predict(test, cube)
    _report(f"weak-signal test at {args.weak_sigmas:g} SE", np.asarray(out.data), out.uncertainty.array, truth, noise)
    print(f"    weak channels then: {weak}")

    print("quiet channels: error without the truth / propagated variance, the scans' agreement in standard errors")
    for lab, (r2, _head, prop, block, chan, y2, ynear) in zip(labels, kept, strict=True):
        b = den.calibration_bins[lab]
        cells = []
        for c in b["noise_channels"] + b["weak_channels"]:
            m = chan == c
            error = float(_calibration._missed_error(r2[m], y2[m], ynear[m]).sum())
            agreement = _calibration._agreement(ynear[m], block[m])
            cells.append(f"c{c} {error / float(prop[m].sum()):.2f} ({agreement:+.1f})")
        print(f"  {lab}: " + ", ".join(sorted(cells, key=lambda s: int(s.split()[0][1:]))), flush=True)


if __name__ == "__main__":
    main()
