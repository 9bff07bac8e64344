#!/usr/bin/env python
"""
A trained temporal denoiser applied to other cubes (issue 14): do its error bars still hold?

`Denoiser.predict` (and ``denoise_cube(cube, denoiser=...)``) scales a new cube by the training cube's noise and
combines its prediction with scan t by the new cube's own noise level. The calibration of the variance head, by bins
of the head's variance (`Denoiser.calibration_bins`), was measured on the training cube: on a noisier cube the
neighbours pass on more noise and the head reacts to it, so pixels may move between bins. Here a denoiser is fitted
once on the science benchmark's cube (``benchmarks/denoise_science.py``, seed 0, white and correlated noise) with the
defaults of `denoise_cube` (``temporal=2``, ``seed=0``) and applied to:

- the training cube itself (the figures of `denoise_cube`);
- the same scene with a new draw of the noise at the same level, and that draw at 0.7 and at 1.4 times it (the same
  spatial correlation): another night's seeing or exposure, the targets differing in the noise's level alone;
- another scene (the cube drawn with seed 3, ``benchmarks/denoise_seeds.py``'s seed 2) at the same noise.

Run from the repository root::

    python benchmarks/denoise_reuse.py               # 2 fits and 10 predictions, about 20 minutes on 2 cores
    python benchmarks/denoise_reuse.py --docs        # also the docs' copy, which the denoising guide quotes
    python benchmarks/denoise_reuse.py --quick       # smoke test of the script (numbers meaningless)

The docs' copy (0.1.dev728, ``--docs``, its default two workers) took 1236 s on a 2-core AMD EPYC with AVX2 only.

Prints, per training cube and target, Q/U/V rms error in units of the target's noise, the coverage within 1 and
2 sigma, the rms of error / sigma over all pixels and where the truth exceeds 3 times the noise; writes
``benchmarks/results/denoise_reuse.json`` (with ``--docs`` also ``docs/_static/denoise_science/reuse.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package of this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

OUT = Path(__file__).parent / "results" / "denoise_reuse.json"
DOCS = Path(__file__).parents[1] / "docs" / "_static" / "denoise_science" / "reuse.json"
PARTS = ("white", "correlated")
# (name, noise multiple, scene): the training cube itself, its scene with a new noise draw, or another scene
TARGETS = (
    ("training cube", 1.0, "training"),
    ("same scene, new noise", 1.0, "same"),
    ("same scene, noise x0.7", 0.7, "same"),
    ("same scene, noise x1.4", 1.4, "same"),
    ("another scene", 1.0, "other"),
)
OTHER_SEED = 3  # the cube of benchmarks/denoise_seeds.py's seed 2
NOISE_SEED = 101  # the new draw of the noise, one for the three levels


def _renoised(truth: np.ndarray, level: float, correlation: float) -> np.ndarray:
    """``truth`` plus the new draw of Gaussian noise (`NOISE_SEED`) of standard deviation ``level``, correlated as
    the cube's was (`synthetic_crisp_cube` draws it the same way)."""
    from sunpy_nn.noise import _unit_noise

    noise = _unit_noise(np.random.default_rng(NOISE_SEED), truth.shape, correlation)
    return (truth + level * noise).astype(np.float32)


def _score(res, truth: np.ndarray, level: float) -> dict:
    import denoise_science

    from sunpy_nn.metrics import binned_standardised_error

    est, sd = np.asarray(res.data, np.float64), np.asarray(res.uncertainty.array, np.float64)
    row = denoise_science._evaluate("temporal mode (temporal=2)", est, sd, truth, sigma=level)
    # Q, U and V together where the truth exceeds 3 times the noise: the pooled coverage hides the strong pixels
    weak, strong = binned_standardised_error(est[:, 1:], truth[:, 1:], sd[:, 1:], level, bins=(0, 3, np.inf))
    # the metric leaves out pixels without a finite value or a positive sigma: here there must be none
    assert weak["n"] + strong["n"] == est[:, 1:].size, "a NaN or non-positive sigma in Q, U or V"
    row["strong"] = {"fraction": strong["n"] / (weak["n"] + strong["n"]), "z_rms": strong["rms"]}
    row["strong"]["within_1_sigma"] = strong["coverage"][0]
    return row


def run(part: str) -> dict:
    """Fit a temporal denoiser on the science cube ``part`` and score it on each of `TARGETS`."""
    import denoise_science
    import torch
    from ndcube import NDCube

    from sunpy_nn import Denoiser
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    torch.set_num_threads(1)
    cube, truth = denoise_science._cube(part)
    t0 = time.perf_counter()
    # denoise_cube's defaults for a cube of 6 scans
    den = Denoiser(temporal=2, align=True).fit(cube, epochs=1 if denoise_science.QUICK else 10, seed=0, progress=False)
    out = {"part": part, "fit_s": time.perf_counter() - t0, "calibration_bins": den.calibration_bins, "targets": []}
    correlation = denoise_science.CUBES[part].get("noise_correlation", 0.0)
    for name, multiple, scene in TARGETS:
        target, true = cube, truth
        if scene == "other":  # drawn as the training cube was, with another seed
            kw = {"v_peak": 60.0, "qu_peak": 30.0, "seed": OTHER_SEED} | denoise_science.CUBES[part]
            target, true = synthetic_crisp_cube(truth.shape[-1], n_wavelengths=truth.shape[2], n_scans=6, **kw)
        level = multiple * denoise_science.NOISE
        if scene == "same":
            data = _renoised(truth, level, correlation)
            target = NDCube(data, wcs=cube.wcs, unit=cube.unit, meta=dict(cube.meta, noise=level))
        t1 = time.perf_counter()
        res = den.predict(target, seed=0, progress=False)
        row = {"target": name, "noise_multiple": multiple, "time_s": time.perf_counter() - t1}
        out["targets"].append(row | _score(res, true, level))
    return out


def main() -> None:
    import sunpy_nn
    from sunpy_nn.nn.device import _cpu_flags

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=2, help="fits in parallel, one torch thread each")
    p.add_argument("--docs", action="store_true", help="also write the docs' copy of the results")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny cubes, one epoch")
    args = p.parse_args()
    if args.quick:  # read by denoise_science in the workers: tiny cubes, one epoch
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        parts = list(pool.map(run, PARTS))
    print(f"{'cube':11s} {'target':24s} {'rms Q/U/V':>17s} {'1/2 sigma':>11s} {'z rms':>6s} {'strong z':>8s}")
    for part in parts:
        for r in part["targets"]:
            rms = "/".join(f"{r[f'rms_{s}']:.3f}" for s in "QUV")
            cov = f"{100 * r['coverage']['1sigma']:.1f}/{100 * r['coverage']['2sigma']:.1f}"
            line = f"{part['part']:11s} {r['target']:24s} {rms:>17s} {cov:>11s} {r['z']['rms']:6.2f}"
            print(f"{line} {r['strong']['z_rms']:8.2f}")
    if not args.quick:
        flags = sorted(f for f in _cpu_flags() if f.startswith(("avx", "amx")))
        result = {"sunpy_nn_version": sunpy_nn.__version__, "machine": platform.machine(), "cpu_flags": flags}
        result |= {"command": "python benchmarks/denoise_reuse.py --docs", "parts": parts}
        result["wall_s"] = time.perf_counter() - t0
        OUT.parent.mkdir(parents=True, exist_ok=True)
        for path in (OUT, DOCS) if args.docs else (OUT,):
            path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
