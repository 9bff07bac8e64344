#!/usr/bin/env python
"""
Noise that differs between the tunings, as photon noise does (lower in the core of a line than in the continuum):
`sunpy_nn.denoise_cube` with a noise level per tuning (``noise_per_tuning=None``, the default, which switches it
on here) against one level per Stokes parameter (``noise_per_tuning=False``, as before). Issue 14: build for the
class of data (CRISP's noise is photon noise, its Q, U and V noise about ``sqrt(I)``).

Run from the repository root::

    python benchmarks/denoise_tuning_noise.py            # about 30 minutes on two idle cores (4 fits, 2 workers)
    python benchmarks/denoise_tuning_noise.py --docs     # also update the docs' copy, which the guide quotes
    python benchmarks/denoise_tuning_noise.py --quick    # smoke test of the script (numbers meaningless)

The cube is the white part of ``benchmarks/denoise_science.py`` (6 scans x IQUV x 9 tunings x 128 x 128, kG
fields), with the noise of each tuning scaled from 3e-3 in the continuum by ``sqrt(I / Ic)`` of the cube's mean
Stokes I profile (0.61 of the continuum's in the line core). Errors are in units of each tuning's own noise. Prints,
per run (single-scan and temporal mode, ``temporal=2``), the Q/U/V rms error, the coverage within 1 and 2 sigma (all
tunings), the lowest and highest coverage within 1 sigma at a tuning and the rms of error / sigma, the noise profile
the default run measured against the injected one, and the spread of the profiles measured on the science
benchmark's five uniform-noise cubes (which keep one level); writes ``benchmarks/results/denoise_tuning_noise.json``
(with ``--docs`` also ``docs/_static/denoise_science/tuning_noise.json``, from which the docs build quotes the
figures in the denoising guide).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

OUT = Path(__file__).parent / "results" / "denoise_tuning_noise.json"
DOCS = Path(__file__).parents[1] / "docs" / "_static" / "denoise_science" / "tuning_noise.json"
RUNS = {  # key: (method, noise_per_tuning, temporal)
    "temporal_per_tuning": ("temporal mode (temporal=2), a level per tuning", None, 2),
    "temporal_one_level": ("temporal mode (temporal=2), one level", False, 2),
    "per_tuning": ("a level per tuning (noise_per_tuning=None, the default)", None, 0),
    "one_level": ("one level per Stokes parameter (noise_per_tuning=False)", False, 0),
}


def photon_cube(quick: bool):
    """The white cube of ``denoise_science.py`` with each tuning's noise times ``sqrt(I / Ic)``; its truth and the
    noise of each tuning."""
    import denoise_science
    from ndcube import NDCube

    denoise_science.QUICK = quick
    cube, truth = denoise_science._cube("white")
    intensity = truth[:, 0].mean(axis=(0, 2, 3))
    profile = np.sqrt(intensity / intensity.max())
    noise = np.asarray(cube.data, np.float64) - truth
    data = (truth + noise * profile[None, None, :, None, None]).astype(np.float32)
    cube = NDCube(data, wcs=cube.wcs, unit=cube.unit, meta=cube.meta)
    return cube, truth, denoise_science.NOISE * profile


def run(key: str, quick: bool) -> dict:
    import denoise_science
    import torch

    from sunpy_nn import denoise_cube

    torch.set_num_threads(1)
    cube, truth, sigma = photon_cube(quick)
    name, per_tuning, temporal = RUNS[key]
    t0 = time.perf_counter()
    res = denoise_cube(
        cube, noise_per_tuning=per_tuning, temporal=temporal, seed=0, progress=False, epochs=1 if quick else None
    )
    scale = sigma[None, None, :, None, None]  # errors in units of each tuning's own noise
    est, sd = np.asarray(res.data, np.float64) / scale, np.asarray(res.uncertainty.array, np.float64) / scale
    row = {"key": key} | denoise_science._evaluate(name, est, sd, truth / scale, sigma=1.0)
    err = np.abs(est - truth / scale)[:, 1:]  # Q, U, V
    row["coverage_1sigma_per_tuning"] = np.mean(err < sd[:, 1:], axis=(0, 1, 3, 4)).tolist()
    row["rms_per_tuning"] = np.sqrt(np.mean(err**2, axis=(0, 1, 3, 4))).tolist()
    measured = res.meta["sunpy_nn"]["noise_tunings"]
    row["noise_per_tuning"] = measured
    return row | {"time_s": time.perf_counter() - t0, "injected_profile": (sigma / np.median(sigma)).tolist()}


def uniform_spreads(quick: bool) -> dict:
    """The spread (largest over smallest) of the noise profile measured on each uniform-noise cube of
    ``denoise_science.py``, as `sunpy_nn.Denoiser.fit` measures it (on the aligned scans): below
    ``NOISE_TUNING_SPREAD``, they keep one level."""
    import denoise_science

    from sunpy_nn import Denoiser
    from sunpy_nn.denoise._align import align_scans, cube_shifts

    denoise_science.QUICK = quick
    out = {}
    for part in denoise_science.CUBES:
        data = np.asarray(denoise_science._cube(part)[0].data, np.float32)
        shifts = cube_shifts(data, list("IQUV"))
        data = data if shifts is None else align_scans(data.copy(), shifts)
        profile = Denoiser(noise_per_tuning=True)._tuning_profile(data, list("IQUV"), [1, 2, 3])
        out[part] = {lab: float(max(v) / min(v)) for lab, v in profile.items()}
    return out


def main() -> None:
    import sunpy_nn
    from sunpy_nn.nn.device import _cpu_flags

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel, one torch thread each")
    p.add_argument("--docs", action="store_true", help="also write the docs' copy of the results")
    args = p.parse_args()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(run, RUNS, [args.quick] * len(RUNS)))
    flags = sorted(f for f in _cpu_flags() if f.startswith(("avx", "amx")))
    print(f"sunpy_nn {sunpy_nn.__version__}, {platform.processor() or platform.machine()}, flags {flags}")
    print(
        f"{'run':56s} {'rms Q/U/V':>17s} {'within 1/2 sigma':>17s} {'1 sigma by tuning':>18s} {'z rms':>6s}",
        f"{'time':>6s}",
    )
    for r in rows:
        rms = "/".join(f"{r[f'rms_{s}']:.3f}" for s in "QUV")
        cov = f"{r['coverage']['1sigma']:.3f}/{r['coverage']['2sigma']:.3f}"
        per = r["coverage_1sigma_per_tuning"]
        print(
            f"{r['method']:56s} {rms:>17s} {cov:>17s} {min(per):>8.3f}-{max(per):.3f} {r['z']['rms']:6.2f} "
            f"{r['time_s']:5.0f}s"
        )
    default = next(r for r in rows if r["key"] == "per_tuning")
    injected = np.asarray(default["injected_profile"])
    error = {}
    for lab, measured in (default["noise_per_tuning"] or {}).items():
        error[lab] = float(np.max(np.abs(np.asarray(measured) / injected - 1)))
        shown = np.round(measured, 3).tolist()
        print(f"Stokes {lab}: measured profile {shown}, largest error {100 * error[lab]:.1f} %")
    print(f"injected profile {np.round(injected, 3).tolist()}")
    by_key = {r["key"]: r for r in rows}
    gain, temporal_gain = (
        {s: 1 - by_key[a][f"rms_{s}"] / by_key[b][f"rms_{s}"] for s in "QUV"}
        for a, b in (("per_tuning", "one_level"), ("temporal_per_tuning", "temporal_one_level"))
    )
    print("gain of a level per tuning: " + ", ".join(f"{s} {100 * g:.0f} %" for s, g in gain.items()))
    print("the same in temporal mode: " + ", ".join(f"{s} {100 * g:.0f} %" for s, g in temporal_gain.items()))
    spreads = uniform_spreads(args.quick)
    widest = max(v for part in spreads.values() for v in part.values())
    print(f"uniform noise (the science benchmark's cubes): measured profiles spread by up to {widest:.3f}")
    if not args.quick:
        result = {"sunpy_nn_version": sunpy_nn.__version__, "machine": platform.machine(), "cpu_flags": flags}
        result |= {"rows": rows, "gain": gain, "temporal_gain": temporal_gain, "profile_error": error}
        result["uniform_spread"] = spreads
        text = json.dumps(result, indent=1, default=float)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
        if args.docs:
            DOCS.write_text(text)


if __name__ == "__main__":
    main()
