#!/usr/bin/env python
"""
Temporal mode's bootstrap (exploratory): how many noisy draws, and what window, the propagated noise needs.

In temporal mode each frame's uncertainty holds the noise that the neighbouring scans pass into the prediction,
measured by a parametric bootstrap (`sunpy_nn.denoise._frames._FramesMixin._propagated_variance`): the network is
run on ``BOOTSTRAP_DRAWS`` copies of its prediction plus noise, and the variance over the draws is averaged over
``PROPAGATION_WINDOW`` px windows. Each draw costs one run of the network per frame, at prediction and in the
calibration: with four draws, the bootstrap took 172 s of the 391 s of the default ``denoise_cube`` on the
15 x 4 x 8 x 256^2 budget cube (two threads, Intel Xeon with AVX-512). One draw measures the variance against the
prediction itself, ``(f(p + e) - p)^2``, rather than across draws.

This script fits the science benchmark's synthetic cubes (``benchmarks/denoise_science.py``: 6 scans x IQUV x 9
tunings x 128 x 128, noise 3e-3, kG fields, the same seed) with ``temporal=2`` for each ``draws,window`` variant
(``draws,window,b``: the calibration's bins on ``2**b`` px per tuning; ``--size``: the cubes' edge), and prints the
rms error of Q, U and V in units of the noise, the rms by bins of |truth| / sigma, the fractions of errors within 1
and 2 sigma and the rms of error / sigma. One torch thread per fit, ``--jobs`` fits at once, on the best device (a
GPU where there is one). Writes ``benchmarks/results/denoise_bootstrap.json``; not a docs producer.

Run from the repository root::

    python benchmarks/denoise_bootstrap.py --parts white correlated --variants 4,5 2,7 1,7 --jobs 2
    python benchmarks/denoise_bootstrap.py --parts white --size 256 --variants 2,7,17 2,7,18   # the bins' pixels
    python benchmarks/denoise_bootstrap.py --quick     # smoke test of the script (numbers meaningless)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _exploratory

OUT = Path(__file__).parent / "results" / "denoise_bootstrap.json"


def _one_draw(
    self, inp: np.ndarray, correlation: float, run, mean: np.ndarray | None = None, level: float = 1.0
) -> np.ndarray:
    """`_propagated_variance` with one draw, measured against the prediction: ``(f(p + e) - p)^2``, window-averaged
    (the noise ``e`` of variance ``level``, as there)."""
    from sunpy_nn.denoise._frames import _window_mean
    from sunpy_nn.noise import _unit_noise

    rng = np.random.default_rng(0)
    mean = run(inp) if mean is None else mean
    proxy = np.tile(np.asarray(mean, inp.dtype), (inp.shape[0] // mean.shape[0], 1, 1))
    draw = run(proxy + np.float32(np.sqrt(level)) * _unit_noise(rng, inp.shape, correlation, inp.dtype))
    return _window_mean((draw - mean) ** 2, self._bootstrap[1])


def fit(args: tuple) -> dict:
    """Score ``denoise_cube(temporal=2)`` on a science part (edge ``size``) with ``draws`` bootstrap draws over
    ``window`` px, temporal mode's bins calibrated on ``2**binned`` px per tuning."""
    import denoise_science
    import torch

    import sunpy_nn.denoise._calibration as calibration
    import sunpy_nn.denoise._frames as frames
    from sunpy_nn import denoise_cube
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    part, draws, window, binned, size = args
    torch.set_num_threads(1)
    calibration._BINNED_PX = 2**binned
    frames.BOOTSTRAP_DRAWS, frames.PROPAGATION_WINDOW = draws, window  # what fit gives the denoiser (_bootstrap)
    if draws == 1:  # not the package's: the spread of one draw about the prediction itself
        frames._FramesMixin._propagated_variance = _one_draw
    if size == 128 or denoise_science.QUICK:
        cube, truth = denoise_science._cube(part)
    else:  # the part's cube at another edge: the same settings and seed
        kw = {"v_peak": 60.0, "qu_peak": 30.0, "seed": 1} | denoise_science.CUBES[part]
        cube, truth = synthetic_crisp_cube(size, n_wavelengths=9, n_scans=6, **kw)
    t0 = time.perf_counter()
    res = denoise_cube(cube, temporal=2, seed=0, progress=False, epochs=1 if denoise_science.QUICK else None)
    row = denoise_science._evaluate(
        f"{draws} draws, {window} px, 2^{binned}", np.asarray(res.data, np.float64), res.uncertainty.array, truth
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return row | {
        "part": part,
        "draws": draws,
        "window": window,
        "binned_px": 2**binned,
        "size": size,
        "time_s": time.perf_counter() - t0,
        "device": device,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["white", "correlated"], help="synthetic parts of denoise_science")
    p.add_argument(
        "--variants", nargs="+", default=["4,5", "2,7", "1,7"], help="draws,window[,log2 of the bins' px per tuning]"
    )
    p.add_argument("--size", type=int, default=128, help="the cubes' edge (px; 128: the science benchmark's)")
    args = _exploratory.parse(p, OUT)
    import sunpy_nn
    import sunpy_nn.denoise._calibration as calibration

    default = [str(int(np.log2(calibration._BINNED_PX)))]
    runs = [(part, *map(int, (v.split(",") + default)[:3]), args.size) for part in args.parts for v in args.variants]
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done in as_completed([pool.submit(fit, run) for run in runs]):  # printed as they end
            row = done.result()
            rows.append(row)
            print(
                f"{row['part']:10s} {row['size']} px {row['method']:20s} rms Q/U/V "
                + "/".join(f"{row[f'rms_{s}']:.3f}" for s in "QUV")
                + ", by |truth|/sigma "
                + "/".join(f"{b['rms']:.3f}" for b in row["bins"])
                + f", within 1/2 sigma {row['coverage']['1sigma']:.3f} / {row['coverage']['2sigma']:.3f}"
                + f", rms z {row['z']['rms']:.3f}, {row['time_s']:.0f} s ({row['device']})",
                flush=True,
            )
    keys = ("part", "draws", "window", "binned_px", "size")
    rows.sort(key=lambda r: [(p, d, w, 2**b, n) for p, d, w, b, n in runs].index(tuple(r[k] for k in keys)))
    result = {
        "sunpy_nn_version": sunpy_nn.__version__,
        "machine": f"{platform.machine()}, {_exploratory.cpu_model()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "rows": rows,
    }
    if args.quick:
        print("quick: nothing written")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
