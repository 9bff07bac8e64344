"""Options and the run shared by the exploratory temporal-mode benchmarks (``denoise_bootstrap.py``,
``denoise_few_scans.py``, ``denoise_window.py``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _run_report import _cpu_model as cpu_model


def parse(p: argparse.ArgumentParser, out: Path) -> argparse.Namespace:
    """``p``'s arguments plus ``--jobs``, ``--out`` (default ``out``) and ``--quick``, which shrinks the science cubes
    of ``benchmarks/denoise_science.py`` in the worker processes too."""
    p.add_argument("--jobs", type=int, default=2, help="fits at once (one torch thread each)")
    p.add_argument("--out", type=Path, default=out, help="the JSON to write")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny cubes and one epoch (numbers meaningless)")
    args = p.parse_args()
    if args.quick:
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"  # read by denoise_science in the worker processes
    return args


def run(fit, runs: list, args: argparse.Namespace) -> list[dict]:
    """``fit`` on each of ``runs`` in ``args.jobs`` processes; the rows, written with the package version, machine
    and date to ``args.out`` (not with ``--quick``)."""
    import sunpy_nn

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(fit, runs))
    result = {
        "sunpy_nn_version": sunpy_nn.__version__,
        "machine": f"{platform.machine()}, {cpu_model()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "rows": rows,
    }
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=float))
    return rows


def score(cube, truth, temporal: int, **extra) -> tuple[dict, np.ndarray]:
    """``denoise_cube`` with ``temporal`` (``seed=0``, one torch thread) on ``cube``, scored against ``truth`` by
    ``denoise_science._evaluate``: its row (with its time and ``extra``) and the denoised data."""
    import denoise_science
    import torch

    from sunpy_nn import denoise_cube

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    res = denoise_cube(cube, temporal=temporal, seed=0, progress=False, epochs=1 if denoise_science.QUICK else None)
    est = np.asarray(res.data, np.float64)
    row = denoise_science._evaluate(f"temporal={temporal}", est, res.uncertainty.array, truth)
    return row | {"time_s": time.perf_counter() - t0, **extra}, est
