"""
How much temporal mode's error bars depend on the noise level the denoiser estimates (issue 14, exploratory).

In temporal mode the target of the Noise2Noise pairs is scan t itself, so the calibration of the uncertainty
subtracts scan t's noise variance, 1 in units of the estimated noise, from (y - f)^2, whose mean is only a few per
cent above it: a noise level estimated 0.5 % low leaves 1 % of extra variance, as large as half the squared error
of temporal mode's output (rms ~0.14 of the noise). On the white cube of ``benchmarks/denoise_science.py``
temporal mode's bars came out ~1.15x too wide (1-sigma coverage 0.79). This script fits ``Denoiser(temporal=2)``
with the estimated noise levels and with the injected one (times ``--scales``) put in their place, and scores each
as ``benchmarks/denoise_levers.py`` does.

Run from the repository root::

    python benchmarks/denoise_temporal_noise.py                       # estimated, injected x 1.0, x 0.995
    python benchmarks/denoise_temporal_noise.py --scales 1.0 1.005 --part fast
    python benchmarks/denoise_temporal_noise.py --quick               # smoke test (numbers meaningless)

Not a docs producer: it prints and writes ``benchmarks/results/denoise_temporal_noise.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "denoise_temporal_noise.json"


def run(job: tuple[str, float | None]) -> dict:
    import denoise_science as ds
    import torch
    from denoise_levers import _cube, _row

    from sunpy_nn import Denoiser

    torch.set_num_threads(1)
    part, scale = job
    cube, truth = _cube(part)
    den = Denoiser(temporal=2)
    estimated = {}  # the levels the denoiser measured, over the injected one, where the injected one replaced them
    if scale is not None:  # the injected level (times scale) in place of the estimate, for Q, U and V
        estimate = den._noise_levels

        def injected(*args, **kwargs):
            noise, methods = estimate(*args, **kwargs)
            estimated.update({k: float(v) / ds.NOISE for k, v in noise.items() if k in "QUV"})
            return {k: (ds.NOISE * scale if k in "QUV" else v) for k, v in noise.items()}, methods

        den._noise_levels = injected
    epochs, patches = (1, 20) if ds.QUICK else (10, 1000)
    t0 = time.perf_counter()
    den.fit(cube, stokes=("Q", "U", "V"), epochs=epochs, patches_per_epoch=patches, seed=0, progress=False)
    res = den.predict(cube, stokes=("Q", "U", "V"), progress=False)
    label = "estimated" if scale is None else f"injected x {scale:g}"
    row = _row(label, res.data, res.uncertainty.array, truth, time.perf_counter() - t0)
    noise = {k: float(v) / ds.NOISE for k, v in den.noise.items() if k in "QUV"}
    return {"part": part, "scale": scale, "noise_over_injected": noise, "estimate_over_injected": estimated} | row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", default="white", choices=("white", "correlated", "fast", "weak"))
    p.add_argument("--scales", nargs="*", type=float, default=[1.0, 0.995], help="injected level times these")
    p.add_argument("--jobs", type=int, default=2, help="fits in parallel, one torch thread each")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"
    import sunpy_nn

    jobs = [(args.part, None)] + [(args.part, s) for s in args.scales]
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(run, jobs):
            rows.append(row)
            cov, z = row["coverage"], row["z"]
            print(
                f"{row['part']:<8} {row['lever']:<18} noise/injected "
                + " ".join(f"{v:.4f}" for v in row["noise_over_injected"].values())
                + "  rms Q/U/V "
                + " ".join(f"{v:.3f}" for v in row["rms_QUV"])
                + f"  within 1/2 sigma {cov[0]:.3f}/{cov[1]:.3f}  z rms {z['rms']:.3f}  {row['seconds']:.0f} s",
                flush=True,
            )
    if not args.quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        result = {"sunpy_nn_version": sunpy_nn.__version__, "command": shlex.join(["python", *sys.argv]), "rows": rows}
        OUT.write_text(json.dumps(result, indent=1))
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
