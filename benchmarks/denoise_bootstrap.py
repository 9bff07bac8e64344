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
tunings x 128 x 128, noise 3e-3, kG fields, the same seed) with ``temporal=2`` for each ``draws,window`` variant,
and prints the rms error of Q, U and V in units of the noise, the rms by bins of |truth| / sigma, the fractions of
errors within 1 and 2 sigma and the rms of error / sigma. One torch thread per fit, ``--jobs`` fits at once, on the
best device (a GPU where there is one). Writes ``benchmarks/results/denoise_bootstrap.json``; not a docs producer.

Run from the repository root::

    python benchmarks/denoise_bootstrap.py --parts white correlated --variants 4,5 2,7 1,7 --jobs 2
    python benchmarks/denoise_bootstrap.py --quick     # smoke test of the script (numbers meaningless)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
OUT = Path(__file__).parent / "results" / "denoise_bootstrap.json"


def fit(args: tuple[str, int, int]) -> dict:
    """Score ``denoise_cube(temporal=2)`` on a science part with ``draws`` bootstrap draws over ``window`` px."""
    import denoise_science
    import torch

    import sunpy_nn.denoise._frames as frames
    from sunpy_nn import denoise_cube

    part, draws, window = args
    torch.set_num_threads(1)
    frames.BOOTSTRAP_DRAWS, frames.PROPAGATION_WINDOW = draws, window
    cube, truth = denoise_science._cube(part)
    t0 = time.perf_counter()
    res = denoise_cube(cube, temporal=2, seed=0, progress=False, epochs=1 if denoise_science.QUICK else None)
    row = denoise_science._evaluate(
        f"{draws} draws, {window} px", np.asarray(res.data, np.float64), res.uncertainty.array, truth
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return row | {"part": part, "draws": draws, "window": window, "time_s": time.perf_counter() - t0, "device": device}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["white", "correlated"], help="synthetic parts of denoise_science")
    p.add_argument("--variants", nargs="+", default=["4,5", "2,7", "1,7"], help="draws,window pairs")
    p.add_argument("--jobs", type=int, default=2, help="fits at once")
    p.add_argument("--out", type=Path, default=OUT, help="the JSON to write")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny cubes and one epoch (numbers meaningless)")
    args = p.parse_args()
    if args.quick:
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"  # read by denoise_science in the worker processes
    import sunpy_nn

    runs = [(part, *map(int, v.split(","))) for part in args.parts for v in args.variants]
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done in as_completed([pool.submit(fit, run) for run in runs]):  # printed as they end
            row = done.result()
            rows.append(row)
            print(
                f"{row['part']:10s} {row['method']:14s} rms Q/U/V "
                + "/".join(f"{row[f'rms_{s}']:.3f}" for s in "QUV")
                + ", by |truth|/sigma "
                + "/".join(f"{b['rms']:.3f}" for b in row["bins"])
                + f", within 1/2 sigma {row['coverage']['1sigma']:.3f} / {row['coverage']['2sigma']:.3f}"
                + f", rms z {row['z']['rms']:.3f}, {row['time_s']:.0f} s ({row['device']})",
                flush=True,
            )
    rows.sort(key=lambda r: runs.index((r["part"], r["draws"], r["window"])))
    result = {
        "sunpy_nn_version": sunpy_nn.__version__,
        "machine": f"{platform.machine()}, {platform.processor()}",
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
