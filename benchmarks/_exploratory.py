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
