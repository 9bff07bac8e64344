"""
The training batch size as a lever on the denoiser's single-scan error (issue 14): the same patches in smaller
batches, that is more optimiser steps, against more patches.

Run from the repository root::

    python benchmarks/denoise_batch.py                   # white cube, four trainings, 2 workers
    python benchmarks/denoise_batch.py --docs            # also the docs' copy, which the denoising guide quotes
    python benchmarks/denoise_batch.py --parts white correlated
    python benchmarks/denoise_batch.py --quick           # smoke test of the script (numbers meaningless)

The cubes are ``benchmarks/denoise_science.py``'s (6 scans x IQUV x 9 tunings x 128 x 128, noise 3e-3, kG fields).
Every denoiser is `sunpy_nn.Denoiser` with its defaults (single scan, spectral principal components, 10 epochs of
1,000 patches of 52 x 52, Adam from 1e-3 cosine-annealed to zero, ``seed=0``) but for the batch size and the
epochs, trained and applied on one torch thread, two trainings at once. Trainings:

- ``batch 10``: the paper's batch size, the default of `sunpy_nn.Denoiser.fit` until 5 replaced it (1,000 steps);
- ``batch 5``: the default (2,000 steps over the same 10,000 patches);
- ``batch 2``: 5,000 steps over the same patches;
- ``batch 5, 20 epochs``: twice the patches (4,000 steps).

Reported for Q, U, V together, in units of the noise, as by ``benchmarks/denoise_levers.py``: the rms error, by
``|truth| / sigma`` (0-1, 1-3, 3-10, > 10), the coverage within 1 and 2 sigma, the rms and kurtosis of error / sigma
(`sunpy_nn.metrics.standardised_error`), the optimiser steps and the seconds of training and prediction (two
trainings share the two cores, so the times are comparable with each other, not with a fit alone); the JSON also
records the CPU. Results: ``benchmarks/results/denoise_batch.json``; with ``--docs`` (white cube, all four trainings)
also ``docs/_static/denoise_science/batch.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "denoise_batch.json"
DOCS = ROOT / "docs" / "_static" / "denoise_science" / "batch.json"
# training -> (batch size, epochs in units of the default's 10)
TRAININGS = {"batch 10": (10, 1), "batch 5": (5, 1), "batch 2": (2, 1), "batch 5, 20 epochs": (5, 2)}
PARTS = ("white", "correlated")


def run(job: tuple[str, str]) -> dict:
    import denoise_science as ds
    import torch
    from denoise_levers import _cube, _row

    from sunpy_nn import Denoiser

    torch.set_num_threads(1)
    part, training = job
    batch, times = TRAININGS[training]
    epochs, patches = (times, 20) if ds.QUICK else (10 * times, 1000)
    cube, truth = _cube(part)
    t0 = time.perf_counter()
    den = Denoiser()
    den.fit(cube, stokes=("Q", "U", "V"), epochs=epochs, patches_per_epoch=patches, batch_size=batch, seed=0,
            progress=False)  # fmt: skip
    res = den.predict(cube, stokes=("Q", "U", "V"), progress=False)
    row = _row(training, res.data, res.uncertainty.array, truth, time.perf_counter() - t0)
    return {"part": part, "batch_size": batch, "epochs": epochs, "steps": epochs * math.ceil(patches / batch)} | row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=["white"])
    p.add_argument("--trainings", nargs="+", choices=list(TRAININGS), default=list(TRAININGS))
    p.add_argument("--jobs", type=int, default=2, help="trainings in parallel, one torch thread each")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny cubes and one epoch (numbers meaningless)")
    p.add_argument("--docs", action="store_true", help="also write the docs' copy (white cube, all trainings)")
    args = p.parse_args()
    if args.docs and (args.quick or set(args.trainings) != set(TRAININGS) or "white" not in args.parts):
        p.error("--docs needs the white part and all four trainings, without --quick")
    if args.quick:
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"  # read by denoise_science, also in the worker processes
    from denoise_levers import _cpu

    import sunpy_nn

    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(run, [(part, t) for part in args.parts for t in args.trainings]):
            rows.append(row)
            cov, z = row["coverage"], row["z"]
            print(
                f"{row['part']:<10} {row['lever']:<20} {row['steps']:>5} steps  rms Q/U/V "
                + " ".join(f"{v:.3f}" for v in row["rms_QUV"])
                + "  by |truth|/sigma "
                + " ".join(f"{v:.2f}" for v in row["bins"])
                + f"  within 1/2 sigma {cov[0]:.3f}/{cov[1]:.3f}"
                + f"  z kurtosis {z['kurtosis']:.1f}  {row['seconds']:.0f} s",
                flush=True,
            )
    if not args.quick:
        result = {
            "sunpy_nn_version": sunpy_nn.__version__,
            "command": shlex.join(["python", *sys.argv]),
            "cpu": _cpu(),
            "rows": rows,
        }
        text = json.dumps(result, indent=1)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
        print(f"wrote {OUT}")
        if args.docs:
            DOCS.write_text(text)
            print(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
