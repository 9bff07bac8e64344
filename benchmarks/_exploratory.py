"""Options shared by the exploratory temporal-mode benchmarks (``denoise_bootstrap.py``, ``denoise_few_scans.py``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from _run_report import _cpu_model as cpu_model  # noqa: F401 (the CPU model, for the JSON's machine)


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
