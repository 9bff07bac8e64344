#!/usr/bin/env python
"""
A dask-backed (lazy) cube's fit on a drifting series: its training stacks registered as they are read
(``Denoiser(align=True)``, the default), against the same fit without alignment and against the fit of the same
cube in memory (aligned whole); and temporal mode (``temporal=2``) on the dask-backed cube against the cube in
memory. Issue 14: where the denoiser breaks down (bad alignment), and temporal mode, on the dask path.

Run from the repository root::

    python benchmarks/denoise_lazy_align.py            # about 45 minutes on two idle cores (5 fits, 2 workers)
    python benchmarks/denoise_lazy_align.py --docs     # also update the docs' copy, which the guide quotes
    python benchmarks/denoise_lazy_align.py --quick    # smoke test of the script (numbers meaningless)

The cube is the fast part of ``benchmarks/denoise_science.py`` (6 scans x IQUV x 9 tunings x 128 x 128, noise
3e-3, kG fields, a drift of 0.5-1 px per scan), denoised with the defaults of `sunpy_nn.denoise_cube` in
single-scan mode and in temporal mode (``seed=0``). Prints the Q/U/V rms error in units of the noise and the
coverage within 1 and 2 sigma of each run, and writes ``benchmarks/results/denoise_lazy_align.json`` (with
``--docs`` also ``docs/_static/denoise_science/lazy_align.json``, from which the docs build quotes the figures in
the denoising guide).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

OUT = Path(__file__).parent / "results" / "denoise_lazy_align.json"
DOCS = Path(__file__).parents[1] / "docs" / "_static" / "denoise_science" / "lazy_align.json"
RUNS = {  # key: (method, a dask-backed cube, align, temporal)
    "memory": ("in memory (aligned whole)", False, True, 0),
    "lazy": ("dask, stacks registered as read (align=True)", True, True, 0),
    "lazy_unaligned": ("dask, not aligned (align=False)", True, False, 0),
    "memory_temporal": ("temporal mode (temporal=2), in memory", False, True, 2),
    "lazy_temporal": ("temporal mode (temporal=2), dask", True, True, 2),
}


def run(key: str, quick: bool) -> dict:
    import dask
    import dask.array as da
    import denoise_science
    import torch
    from ndcube import NDCube

    from sunpy_nn import denoise_cube

    torch.set_num_threads(1)
    denoise_science.QUICK = quick
    cube, truth = denoise_science._cube("fast")
    name, lazy, align, temporal = RUNS[key]
    if lazy:
        data = da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, *cube.data.shape[-2:]))
        cube = NDCube(data, wcs=cube.wcs, unit=cube.unit, meta=cube.meta)
    t0 = time.perf_counter()
    with dask.config.set(scheduler="synchronous"):  # one thread per run, as the torch threads
        res = denoise_cube(cube, align=align, temporal=temporal, seed=0, progress=False, epochs=1 if quick else None)
        est = np.asarray(res.data, np.float64)
        sd = np.asarray(res.uncertainty.array, np.float64)
    row = {"key": key} | denoise_science._evaluate(name, est, sd, truth)
    fit = res.meta["sunpy_nn"]["fit"]
    return row | {
        "time_s": time.perf_counter() - t0,
        "scan_steps": fit.get("scan_steps"),
        "scan_shifts": fit["scan_shifts"],
    }


def main() -> None:
    import sunpy_nn
    from sunpy_nn.nn.device import _cpu_flags

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel, one torch thread each")
    p.add_argument("--docs", action="store_true", help="also write the docs' copy of the results")
    args = p.parse_args()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(run, RUNS, [args.quick] * len(RUNS)))
    flags = sorted(f for f in _cpu_flags() if f.startswith(("avx", "amx")))
    print(f"sunpy_nn {sunpy_nn.__version__}, {platform.processor() or platform.machine()}, flags {flags}")
    print(f"{'run':48s} {'rms Q/U/V (x noise)':>22s} {'within 1/2 sigma':>18s} {'time':>7s}")
    for r in rows:
        rms = "/".join(f"{r[f'rms_{s}']:.3f}" for s in "QUV")
        cov = f"{r['coverage']['1sigma']:.3f}/{r['coverage']['2sigma']:.3f}"
        print(f"{r['method']:48s} {rms:>22s} {cov:>18s} {r['time_s']:6.0f}s")
    lazy, off = (next(r for r in rows if r["key"] == k) for k in ("lazy", "lazy_unaligned"))
    gain = {s: 1 - lazy[f"rms_{s}"] / off[f"rms_{s}"] for s in "QUV"}
    print("gain of registering a lazy cube's stacks: " + ", ".join(f"{s} {100 * g:.0f} %" for s, g in gain.items()))
    if not args.quick:
        result = {"sunpy_nn_version": sunpy_nn.__version__, "machine": platform.machine(), "cpu_flags": flags}
        text = json.dumps(result | {"rows": rows, "gain": gain}, indent=1, default=float)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
        if args.docs:
            DOCS.write_text(text)


if __name__ == "__main__":
    main()
