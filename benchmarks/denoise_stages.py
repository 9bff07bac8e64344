#!/usr/bin/env python
"""
Where the default `sunpy_nn.denoise_cube` spends its time (exploratory, issue 14's budget): the budget cube of
``benchmarks/denoise_science.py`` (15 tunings x 4 Stokes x 8 scans x 256 x 256, noise 3e-3, seed 0), two torch
threads, with the time of each stage: noise levels, spectral basis, training, calibration, prediction, and within
them the network runs and temporal mode's bootstrap of the propagated noise (`Denoiser` internals, wrapped and
timed; the wrappers cost microseconds per call). Prints the total and the seconds and calls of each stage; not a
docs producer.

Run from the repository root::

    python benchmarks/denoise_stages.py                      # the default (temporal mode on eight scans)
    python benchmarks/denoise_stages.py --temporal 0         # single-scan mode
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        python benchmarks/denoise_stages.py                  # AVX2 kernels only (on an AVX-512 CPU)
    python benchmarks/denoise_stages.py --size 64 --epochs 1 # a smoke test (figures meaningless)
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import time

from _run_report import _CAP_VARIABLES, _cpu_model

ACC: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter = collections.Counter()


def _timed(owner, name: str, key: str) -> None:
    """Wrap ``owner.name`` so that its calls and seconds add up under ``key``."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            ACC[key] += time.perf_counter() - t0
            CALLS[key] += 1

    setattr(owner, name, wrapper)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="the cube's edge (px)")
    p.add_argument("--temporal", type=int, default=None, help="denoise_cube's temporal (default: its own)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: denoise_cube's)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the package's log lines with their times")
    args = p.parse_args()
    import torch

    import sunpy_nn
    import sunpy_nn.denoise._calibration as calibration
    import sunpy_nn.denoise._fit as fit
    import sunpy_nn.denoise._frames as frames
    from sunpy_nn import Denoiser, denoise_cube
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    torch.set_num_threads(args.threads)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(relativeCreated)8.0f ms %(message)s", stream=sys.stdout)
    _timed(Denoiser, "_noise_levels", "noise levels")
    _timed(Denoiser, "_spectral_fit", "spectral basis")
    _timed(fit, "train_noise2noise", "training")
    _timed(calibration._CalibrationMixin, "_calibrate", "calibration")
    _timed(frames._FramesMixin, "_denoise_frames", "prediction (frames)")
    _timed(frames._FramesMixin, "_run_one", "network runs (all)")
    _timed(frames._FramesMixin, "_propagated_variance", "bootstrap (all)")
    cube, _ = synthetic_crisp_cube(args.size, n_wavelengths=15, n_scans=8, seed=0)
    t0 = time.perf_counter()
    res = denoise_cube(cube, seed=0, progress=False, temporal=args.temporal, epochs=args.epochs)
    total = time.perf_counter() - t0
    caps = ", ".join(f"{k}={os.environ[k]}" for k in _CAP_VARIABLES if k in os.environ)
    print(f"sunpy_nn {sunpy_nn.__version__}, {_cpu_model()}{f' ({caps})' if caps else ''}, {args.threads} threads")
    print(f"denoise_cube on {' x '.join(map(str, cube.data.shape))} (temporal={res.meta['sunpy_nn']['temporal']}):")
    print(f"  {'total':22s} {total:8.1f} s")
    for key in ACC:
        print(f"  {key:22s} {ACC[key]:8.1f} s  {CALLS[key]:6d} calls")


if __name__ == "__main__":
    main()
