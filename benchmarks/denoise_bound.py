#!/usr/bin/env python
"""
Temporal mode against an oracle filter of the same scans (issue 14): the error that the oracle Wiener filter of the
scans temporal mode sees leaves on the science benchmark's cubes, against temporal mode's own error.

Temporal mode (``temporal=2``) predicts each scan from its four neighbours and combines the prediction with the scan
itself: five scans of each scene. `sunpy_nn.metrics.oracle_wiener_error` gives the error of the filter that weighs each
spatial frequency (of the cosine transform) of the mean of five, and of all six, scans, knowing the true signal's power
there, per spectral principal component of each Stokes parameter (the components the default denoiser works on),
with the noise's own spectrum (white or correlated), in expectation over the noise and for a static scene: no filter
of that kind does better, but a denoiser with a prior on the fields (a network), or an oracle in another basis, may.
The cubes are those of ``benchmarks/denoise_seeds.py`` (seed ``s`` draws the cube with ``seed=1 + s``; seed 0 is the
science benchmark's cube), aligned as the denoiser aligns them, without the border that the alignment's shifts leave
without data (1 px more than the largest shift, rounded up: 2 px on the slowly drifting cubes, 3 px on the fast one).
Temporal mode's errors in ``seeds.json`` are over the whole frame. The oracle's filter has borders too (the cosine
transform's even extension), and a region cut further leaves it other figures (before 0.1.dev729 it was cut by 8
px: V 0.197-0.216 on the correlated cubes, 0.203-0.216 now).

Run from the repository root::

    python benchmarks/denoise_bound.py            # 12 cubes, about 2 minutes
    python benchmarks/denoise_bound.py --docs     # also the docs' copy, which the denoising guide quotes

Prints, per cube and seed, the oracle's Q/U/V rms error in units of the noise for five and for six scans (the JSON
also has five scans with the Fourier transform, whose periodic images count the jumps at their edges as signal),
and, where ``docs/_static/denoise_science/seeds.json`` holds the same cube, temporal mode's rms error divided by the
five-scan figure; writes ``benchmarks/results/denoise_bound.json`` (with ``--docs`` also
``docs/_static/denoise_science/bound.json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package of this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

OUT = Path(__file__).parent / "results" / "denoise_bound.json"
DOCS = Path(__file__).parents[1] / "docs" / "_static" / "denoise_science" / "bound.json"
SEEDS = DOCS.parent / "seeds.json"
PARTS = ("fast", "white", "correlated", "weak")  # denoise_seeds.py's cubes
# px cut from every side beyond the largest shift (rounded up): the alignment's shifts leave no data there
MARGIN = 1
SCANS = (5, 6)  # what temporal=2 sees for each scan, and the whole series


def bound(part: str, seed: int) -> dict:
    """The oracle's Q/U/V rms error (units of the noise) on the cube ``part`` drawn with ``seed + 1``."""
    import denoise_science

    from sunpy_nn.data.synthetic import synthetic_crisp_cube
    from sunpy_nn.denoise._align import align_scans, cube_shifts
    from sunpy_nn.denoise._spectral import pca_basis
    from sunpy_nn.metrics import oracle_wiener_error

    kw = {"v_peak": 60.0, "qu_peak": 30.0, "seed": 1 + seed} | denoise_science.CUBES[part]
    cube, truth = synthetic_crisp_cube(128, n_wavelengths=9, n_scans=6, **kw)
    noisy = np.asarray(cube.data, np.float32) / denoise_science.NOISE
    shifts = cube_shifts(noisy, ["I", "Q", "U", "V"])  # the scans registered on Stokes I, as the denoiser does
    border = int(np.ceil(np.abs(shifts).max())) + MARGIN
    cut = np.s_[..., border:-border, border:-border]
    noisy = align_scans(noisy, shifts)[cut].astype(np.float64)
    true = align_scans(np.asarray(truth, np.float32) / denoise_science.NOISE, shifts)[cut].astype(np.float64)
    if not (np.isfinite(noisy).all() and np.isfinite(true).all()):
        raise RuntimeError(f"the alignment's shifts reach beyond the {border}-px border cut")
    out = {"part": part, "seed": seed, "cube_seed": 1 + seed, "max_shift_px": float(np.abs(shifts).max())}
    out["border_px"] = border
    for n in SCANS:
        out[f"scans_{n}"] = {}
    for s, label in ((1, "Q"), (2, "U"), (3, "V")):
        basis, _ = pca_basis(noisy[:, s].astype(np.float32))  # the noisy cube's basis, as the denoiser's
        components = np.einsum("twyx,wc->tcyx", true[:, s], basis)
        noise = np.einsum("twyx,wc->tcyx", noisy[:, s] - true[:, s], basis)
        for n in SCANS:  # an orthonormal basis: the mean over components is the mean over tunings
            out[f"scans_{n}"][label] = oracle_wiener_error(components, noise, n)
        out.setdefault("scans_5_fourier", {})[label] = oracle_wiener_error(components, noise, 5, transform="fourier")
    return out


def main() -> None:
    import sunpy_nn

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--docs", action="store_true", help="also write the docs' copy of the results")
    args = p.parse_args()
    t0 = time.perf_counter()
    rows = [bound(part, seed) for part in PARTS for seed in args.seeds]
    seeds = json.loads(SEEDS.read_text()) if SEEDS.exists() else {"rows": []}
    runs = {(r["part"], r["cube_seed"]): r for r in seeds["rows"]}
    print(f"sunpy_nn {sunpy_nn.__version__}; temporal mode from seeds.json of {seeds.get('sunpy_nn_version', '-')}")
    print(f"{'cube':12s} {'seed':>4s} {'oracle Q/U/V, 5 scans':>22s} {'6 scans':>17s} {'temporal / oracle(5)':>21s}")
    for r in rows:
        five, six = ("/".join(f"{r[f'scans_{n}'][s]:.3f}" for s in "QUV") for n in SCANS)
        run = runs.get((r["part"], r["cube_seed"]))
        ratio = "/".join(f"{run[f'rms_{s}'] / r['scans_5'][s]:.2f}" for s in "QUV") if run else "-"
        print(f"{r['part']:12s} {r['seed']:4d} {five:>22s} {six:>17s} {ratio:>21s}")
    result = {"sunpy_nn_version": sunpy_nn.__version__, "machine": platform.machine()}
    result |= {"command": " ".join(["python", "benchmarks/denoise_bound.py", *sys.argv[1:]]), "seeds": args.seeds}
    result |= {"rows": rows, "wall_s": time.perf_counter() - t0}
    text = json.dumps(result, indent=1, default=float)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    if args.docs:
        DOCS.write_text(text)


if __name__ == "__main__":
    main()
