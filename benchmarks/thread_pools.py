#!/usr/bin/env python
"""
Networks in dask's thread pool, and the main thread's speed afterwards: one torch thread per pool thread (the
package's thread policy) against the process's count in each, as before (issue #16).

Run from the repository root::

    python benchmarks/thread_pools.py            # about 5 minutes on 2 CPU cores
    python benchmarks/thread_pools.py --rounds 2

OpenMP gives each thread that runs torch a team of worker threads for the thread's life, and dask's default pool
lives as long as the process. Each setting runs in a fresh process, in turns (``--rounds``): a `~sunpy_nn.Denoiser`
(16 filters) trains on a synthetic CRISP-like cube (6 scans x 4 Stokes x 5 tunings x 128 x 128 px, 300 patches of
32 px) and predicts it in memory, and Enhance (the shipped continuum weights) runs on a 1024 x 1024 image in
memory; then it predicts the same cube as a dask array (one chunk per scan, dask's default threaded scheduler, one
worker per CPU), twice, and Enhance runs on the image as a dask array of one chunk (what ``da.from_array`` makes of
it); then the training and the in-memory prediction are timed again in the main thread. Settings:

* ``one per pool thread``: the package as it is (`sunpy_nn.nn.device`: threads other than the main thread run torch
  on one thread unless the user chose a count, and `~sunpy_nn.nn.lazy.lazy_tiled` cuts an array of fewer chunks
  than CPUs into one block per CPU);
* ``one per pool thread, uncut``: the same without the cut (``_pool_blocks`` replaced by 1), as at commit c77dc20;
* ``as before``: each pool thread takes the process's count and nothing is cut, as before both changes
  (``_pool_thread_count`` replaced by the policy's choice for the process).

It prints the CPU (model, flags), each time, the ratios after / before per setting, the lazy prediction's time
and the lazy Enhance's time over the in-memory one per setting, and writes them as JSON to
``benchmarks/results/thread_pools-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = ("one per pool thread", "one per pool thread, uncut", "as before")

# The package of this checkout, whether or not (or wherever else) sunpy_nn is installed.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def child(setting: str) -> None:
    """Time training and prediction before and after a lazy prediction, in this process; print one JSON line."""
    import dask.array as da
    import numpy as np
    import torch
    from ndcube import NDCube

    from sunpy_nn import Denoiser
    from sunpy_nn.data.synthetic import synthetic_crisp_cube
    from sunpy_nn.enhance import enhance_array
    from sunpy_nn.enhance._models import load_enhance_model
    from sunpy_nn.nn import device

    if setting != "one per pool thread":
        device._pool_blocks = lambda: 1
    if setting == "as before":

        def process_count() -> int:
            n = device._policy_choice()
            if torch.get_num_threads() != n:
                torch.set_num_threads(n)
            return n

        device._pool_thread_count = process_count

    cube, _ = synthetic_crisp_cube(128, n_wavelengths=5, n_scans=6, v_peak=60, qu_peak=30, seed=3)
    lazy = NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 4, 5, 128, 128)), wcs=cube.wcs)
    out: dict = {}

    def timed(key: str, work) -> object:
        t0, c0 = time.perf_counter(), time.process_time()
        result = work()
        wall = time.perf_counter() - t0
        out[key] = {"wall_s": wall, "cpu_over_wall": (time.process_time() - c0) / wall}
        return result

    def fit() -> Denoiser:
        kw = {"epochs": 1, "patches_per_epoch": 300, "patch_size": 32, "seed": 0, "progress": False}
        return Denoiser(n_filters=16).fit(cube, **kw)

    net, _ = load_enhance_model(None, "intensity")
    image = np.random.default_rng(0).normal(1, 0.1, (1024, 1024)).astype(np.float32)
    den = fit()  # warm-up: the thread policy's one measurement, torch's first kernels
    den = timed("fit before", fit)
    timed("predict before", lambda: den.predict(cube, progress=False))
    timed("enhance", lambda: enhance_array(image, net, progress=False))
    for k in (1, 2):
        timed(f"lazy predict {k}", lambda: np.asarray(den.predict(lazy, progress=False).data))
    timed("lazy enhance", lambda: enhance_array(da.from_array(image), net).compute())
    timed("fit after", fit)
    timed("predict after", lambda: den.predict(cube, progress=False))
    out["main_thread_torch_threads"] = torch.get_num_threads()
    print(json.dumps(out), flush=True)


def _run_child(setting: str) -> dict:
    cmd = [sys.executable, __file__, "--_child", setting]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{setting} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--rounds", type=int, default=1, help="turns over the settings (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        child(args._child)
        return 0

    import _run_report as report

    import sunpy_nn

    print("Networks in dask's thread pool, and the main thread afterwards (issue #16)", flush=True)
    cpu = report.cpu_info()
    report.print_cpu(cpu)
    report._row("load average at start (1, 5, 15 min)", report._load())
    runs: dict = {s: [] for s in SETTINGS}
    t_start = time.perf_counter()
    for r in range(args.rounds):
        k = r % len(SETTINGS)
        for setting in SETTINGS[k:] + SETTINGS[:k]:  # turns: no fixed first
            out = _run_child(setting)
            runs[setting].append(out)
            times = ", ".join(f"{k} {v['wall_s']:.1f} s" for k, v in out.items() if isinstance(v, dict))
            report._row(f"round {r + 1}: {setting}", times)

    report._header("Summary: medians over the rounds (wall time; CPU time / wall time in brackets)")
    summary: dict = {}
    for setting in SETTINGS:

        def med(key: str, field: str = "wall_s", setting=setting) -> float:
            return statistics.median(o[key][field] for o in runs[setting])

        row = {
            "fit_after_over_before": med("fit after") / med("fit before"),
            "predict_after_over_before": med("predict after") / med("predict before"),
            "lazy_predict_s": med("lazy predict 2"),
            "lazy_over_in_memory_predict": med("lazy predict 2") / med("predict before"),
            "enhance_lazy_one_chunk_over_in_memory": med("lazy enhance") / med("enhance"),
        }
        summary[setting] = row
        report._row(
            setting,
            f"training after / before {row['fit_after_over_before']:.2f} ({med('fit after', 'cpu_over_wall'):.2f}), "
            f"prediction after / before {row['predict_after_over_before']:.2f}, lazy prediction "
            f"{row['lazy_predict_s']:.1f} s ({med('lazy predict 2', 'cpu_over_wall'):.2f}), "
            f"{row['lazy_over_in_memory_predict']:.2f}x the in-memory one; Enhance of one chunk lazily "
            f"{row['enhance_lazy_one_chunk_over_in_memory']:.2f}x in memory ({med('lazy enhance'):.1f} s)",
        )
    result = {
        "sunpy_nn_version": sunpy_nn.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "rounds": args.rounds,
        "summary": summary,
        "runs": runs,
        "load_end": report._load(),
        "wall_s": time.perf_counter() - t_start,
    }
    path = args.json or RESULTS / f"thread_pools-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=float))
    report._row("results written to", str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
