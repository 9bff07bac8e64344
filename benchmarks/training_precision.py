#!/usr/bin/env python
"""
The denoiser trained in bfloat16 mixed precision against float32 (issue #16): how much faster the Noise2Noise
training runs, and what it costs in the denoised result.

Run from the repository root::

    python benchmarks/training_precision.py            # both parts
    python benchmarks/training_precision.py --quick    # smoke test of the script (numbers meaningless)
    python benchmarks/training_precision.py --docs     # also docs/_static/training/precision_<cpu>.json

1. Speed: `sunpy_nn.training.train_noise2noise` on the default denoiser's U-Net (that of ``Denoiser()``: 32
   filters, depth 2, residual, variance head, Monte-Carlo dropout), batches of 10 patches of 52 x 52 (the paper's),
   ``precision="float32"`` and ``"bfloat16"`` in alternating rounds of one epoch each after a warm-up, on the
   package's thread policy: patches/s, the median over rounds.
2. Quality: the default `sunpy_nn.Denoiser` fitted (``seed=0``) on the white-noise cube of
   ``benchmarks/denoise_science.py`` (6 scans x IQUV x 9 tunings x 128 x 128, noise 3e-3, kG fields) in float32
   and in bfloat16 for the default 10 epochs, and in bfloat16 for 20 (what the time saved buys), all predicted in
   float32; two fits run at once, one torch thread each: rms error of Q, U and V in units of the noise, coverage
   within 1 and 2 sigma, and the time of fit and prediction.

bfloat16's speed depends on the CPU's bfloat16 units, so the CPU (model, flags, class, from ``run.py``'s report)
goes into the JSON, and its name: the class with ``-amx`` where the CPU has AMX
(``benchmarks/results/training_precision.json``; with ``--docs`` also
``docs/_static/training/precision_<class>.json``, from which the training guide makes its table: one row per CPU
measured).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "training_precision.json"
DOCS = ROOT / "docs" / "_static" / "training"
PRECISIONS = ("float32", "bfloat16")
FITS = (("float32", 10), ("bfloat16", 10), ("bfloat16", 20))  # (precision, epochs) of the quality part


class _RandomPairs:
    """Noise2Noise pairs of random patches: the step's cost does not depend on what the patches show."""

    target_noise_var = 1.0

    def __init__(self, patch: int, seed: int = 0) -> None:
        self.patch, self.rng = patch, np.random.default_rng(seed)

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        x = self.rng.standard_normal((1, self.patch, self.patch), dtype=np.float32)
        return x, x + self.rng.standard_normal(x.shape, dtype=np.float32)


def speed(rounds: int, patches: int) -> dict:
    """Patches/s of the Noise2Noise training step in each precision, alternating rounds, median."""
    import torch

    from sunpy_nn import Denoiser
    from sunpy_nn.training import train_noise2noise

    torch.manual_seed(0)
    net = Denoiser()._build(1)  # the default denoiser's network
    pairs = _RandomPairs(52)
    times: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for r in range(rounds + 1):
        for precision in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
            h = train_noise2noise(net, pairs, epochs=1, patches_per_epoch=patches, precision=precision, progress=False)
            if r:  # round 0 warms up both
                times[precision].append(h["epoch_time"][0])
    out = {p: {"patches_s": patches / statistics.median(t), "round_s": t} for p, t in times.items()}
    out["speedup"] = out["bfloat16"]["patches_s"] / out["float32"]["patches_s"]
    out |= {"batch": 10, "patch": 52, "patches_per_round": patches, "rounds": rounds}
    out["threads"] = torch.get_num_threads()
    return out


def quality(job: tuple[str, int]) -> dict:
    """The default denoiser fitted in ``precision`` for ``epochs`` on the white science cube: errors, time."""
    import denoise_science as ds
    import torch

    from sunpy_nn import Denoiser
    from sunpy_nn.validation import stokes_error_summary

    precision, epochs = job
    torch.set_num_threads(1)
    cube, truth = ds._cube("white")
    t0 = time.perf_counter()
    den = Denoiser().fit(cube, epochs=1 if ds.QUICK else epochs, seed=0, precision=precision, progress=False)
    t_fit = time.perf_counter() - t0
    res = den.predict(cube, progress=False)
    r = stokes_error_summary(np.asarray(res.data, np.float64), truth, ds.NOISE, res.uncertainty.array)
    return {
        "precision": precision,
        "epochs": epochs,
        "rms_QUV": [r[f"rms_{s}"] for s in "QUV"],
        "coverage": [r["coverage"]["1sigma"], r["coverage"]["2sigma"]],
        "fit_s": t_fit,
        "fit_predict_s": time.perf_counter() - t0,
    }


def cpu_name(info: dict) -> str:
    """The file name's CPU: the class, with ``-amx`` where AMX runs bfloat16 (``AVX-512`` -> ``avx-512-amx``)."""
    return (info["class"] + ("-amx" if info["flags"]["amx"] else "")).lower()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, one round (numbers meaningless)")
    p.add_argument("--docs", action="store_true", help="also write docs/_static/training/precision_<cpu>.json")
    args = p.parse_args()
    if args.docs and args.quick:
        p.error("--docs needs a full run, without --quick")
    if args.quick:
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"  # read by denoise_science, also in the worker processes
    import _run_report as report

    import sunpy_nn
    from sunpy_nn.nn.device import apply_thread_policy

    apply_thread_policy()
    info = report.cpu_info()
    report.print_cpu(info)
    result = {"sunpy_nn_version": sunpy_nn.__version__, "date": time.strftime("%Y-%m-%d %H:%M"), "cpu": info}
    result["command"] = shlex.join(["python", *sys.argv])
    result["speed"] = s = speed(1 if args.quick else 5, 20 if args.quick else 200)
    print(
        f"Noise2Noise step, batch 10 of 52 x 52, {s['threads']} thread(s): float32 {s['float32']['patches_s']:.1f}, "
        f"bfloat16 {s['bfloat16']['patches_s']:.1f} patches/s ({s['speedup']:.2f}x)",
        flush=True,
    )
    with ProcessPoolExecutor(max_workers=2) as pool:
        result["quality"] = list(pool.map(quality, FITS))
    for q in result["quality"]:
        rms = "/".join(f"{v:.3f}" for v in q["rms_QUV"])
        cov = "/".join(f"{v:.3f}" for v in q["coverage"])
        print(
            f"white cube, {q['precision']:<8} {q['epochs']} epochs: rms Q/U/V {rms} x noise, within 1/2 sigma {cov}, "
            f"fit {q['fit_s']:.0f} s, fit and prediction {q['fit_predict_s']:.0f} s (one thread)"
        )
    text = json.dumps(result, indent=1)
    if not args.quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
        print(f"wrote {OUT}")
    if args.docs:
        path = DOCS / f"precision_{cpu_name(info)}.json"
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
