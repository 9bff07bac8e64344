#!/usr/bin/env python
"""
What Monte-Carlo dropout costs at prediction (``uncertainty="total"``, issue 14): exploratory, not a docs producer.

A denoiser is fitted briefly (one epoch of 20 patches: the timing does not depend on the training) on a two-scan
synthetic cube (9 tunings x 4 Stokes x 128 x 128, ``synthetic_crisp_cube(seed=1)``, its default fields), and one scan is
denoised with ``uncertainty="aleatoric"`` (one network run per frame) and ``"total"`` (plus ``--mc-samples``
dropout draws, which run the network without its variance head, `sunpy_nn.nn.UNet.mean_network`), one torch thread,
alternately ``--repeats`` times. Prints the CPU, each run's seconds, the median extra seconds per draw and their ratio
to the median aleatoric prediction.

Run from the repository root::

    python benchmarks/denoise_mc_dropout.py                   # 20 draws, 2 repeats: about 3 minutes
    python benchmarks/denoise_mc_dropout.py --size 64 --mc-samples 2 --repeats 1   # a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package of this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128, help="frame edge (px)")
    p.add_argument("--mc-samples", type=int, default=20, help="dropout draws (the default of Denoiser.predict)")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from _run_report import cpu_info, print_cpu

    from sunpy_nn import Denoiser
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    cube, _ = synthetic_crisp_cube(args.size, n_wavelengths=9, n_scans=2, seed=1)
    den = Denoiser().fit(cube, epochs=1, patches_per_epoch=20, seed=0, progress=False)
    scan = cube[0]
    print_cpu(cpu_info())
    times: dict[str, list[float]] = {"aleatoric": [], "total": []}
    for _ in range(args.repeats):
        for unc in times:
            t0 = time.perf_counter()
            den.predict(scan, uncertainty=unc, mc_samples=args.mc_samples, seed=0, progress=False)
            times[unc].append(time.perf_counter() - t0)
            print(f"  {unc:10s} {times[unc][-1]:7.2f} s", flush=True)
    base = statistics.median(times["aleatoric"])
    per_draw = (statistics.median(times["total"]) - base) / max(args.mc_samples, 1)
    print(f"  one dropout draw: {per_draw:.3f} s, {per_draw / base:.2f} x the aleatoric prediction ({base:.2f} s)")
    return {"aleatoric_s": times["aleatoric"], "total_s": times["total"], "per_draw_s": per_draw}


if __name__ == "__main__":
    main()
