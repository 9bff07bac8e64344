"""
Peak memory of a lazy image of one chunk, cut into one block per CPU, and the cut's memory bound.

A dask image of fewer chunks than CPUs is cut into one block per CPU (`sunpy_nn.nn.lazy.lazy_tiled`, ``fill_cpus``);
each block holds its network's working memory while it runs, so the cut stops where the blocks' estimated working
memory (`sunpy_nn.nn.runner._workspace_bytes`) would exceed half the memory available. This script runs one case per
fresh process and prints the CPU, its block count and its peak RSS in MiB (``resource``):

    python benchmarks/lazy_memory.py                      # the cases of the changelog (about 5 minutes on 2 cores)
    python benchmarks/lazy_memory.py --case enhance --cpus 8 --available-gb 3

``--cpus N`` stands in for the thread policy's count (so a 2-core machine cuts as an N-core one would, on N dask
threads) and ``--available-gb`` for the memory available (``/proc/meminfo`` and the cgroup's): the speed of such a
run says nothing, its memory is what an N-core machine with that memory would take. ``--cpus 0``: in memory, no dask.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _run_report as report  # the benchmarks' CPU report and peak RSS

SIZE = 2048
#: (network, CPUs, GB available) of the default run: the uncut and cut cases, with and without a bound.
CASES = [
    ("enhance", 0, None),
    ("enhance", 8, 3.0),
    ("enhance", 8, 6.0),
    ("unet", 0, None),
    ("unet", 4, 3.0),
    ("unet", 4, None),
]


def _case(network: str, cpus: int, available_gb: float | None) -> dict:
    import dask
    import dask.array as da

    from sunpy_nn.nn import UNet, device, lazy, run_tiled
    from sunpy_nn.nn.runner import _workspace_bytes

    img = (1 + 0.1 * np.random.default_rng(0).standard_normal((SIZE, SIZE))).astype(np.float32)
    if network == "enhance":
        from sunpy_nn.enhance import enhance_array, load_enhance_model

        model = load_enhance_model(None, "intensity")[0]
        run = lambda x: enhance_array(x, model, progress=False)  # noqa: E731
    else:  # the denoiser's U-Net as `Denoiser` builds it, on one frame (untrained: the memory is the same)
        model = UNet(1, 1, 32, 2, variance_head=True, residual=True, variance="softplus", variance_sees_output=True)

        def frame(x):
            return run_tiled(model, x, halo=model.receptive_radius, align=4, progress=False, precision="float32")

        def run(x):
            if not hasattr(x, "dask"):
                return frame(x)
            return lazy.lazy_tiled(
                x,
                frame,
                depth=2 * model.receptive_radius,
                align=4,
                n_out=2,
                fill_cpus=True,
                workspace=lambda h, w: _workspace_bytes(model, (h, w)),
            )

    base = report._peak_rss_mib()
    t0 = time.perf_counter()
    blocks = 1
    if cpus == 0:
        run(img)
    else:
        device._policy_choice = lambda refresh=False: cpus  # the count an idle machine of `cpus` cores would choose
        if available_gb is not None:
            lazy._available_memory = lambda: int(available_gb * 1e9)
        out = run(da.from_array(img, chunks=-1))
        blocks = out.npartitions  # the U-Net's value and uncertainty are one chunk of a leading axis
        with dask.config.set(num_workers=cpus):
            out.compute(scheduler="threads")
    return {
        "network": network,
        "cpus": cpus,
        "available_gb": available_gb,
        "blocks": blocks,
        "peak_rss_mib": round(report._peak_rss_mib()),
        "baseline_mib": round(base),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=["enhance", "unet"])
    p.add_argument("--cpus", type=int, default=0)
    p.add_argument("--available-gb", type=float)
    p.add_argument("--json", action="store_true", help="print one JSON line (used for the cases of the default run)")
    args = p.parse_args()
    if args.case:
        row = _case(args.case, args.cpus, args.available_gb)
        print(json.dumps(row) if args.json else row)
        return
    report.print_cpu(report.cpu_info())
    print(f"{SIZE} x {SIZE} image as one dask chunk, fresh process each")
    head = f"{'network':8} {'CPUs':>4} {'GB avail.':>9} {'blocks':>6} {'peak RSS MiB':>12} {'baseline MiB':>12}"
    print(f"{head} {'s':>6}")
    for network, cpus, gb in CASES:
        cmd = [sys.executable, __file__, "--case", network, "--cpus", str(cpus), "--json"]
        if gb is not None:
            cmd += ["--available-gb", str(gb)]
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        gb_text = "memory" if cpus == 0 else ("machine" if gb is None else f"{gb:g}")
        print(
            f"{network:8} {cpus or '-':>4} {gb_text:>9} {row['blocks']:>6} {row['peak_rss_mib']:>12} "
            f"{row['baseline_mib']:>12} {row['seconds']:>6}"
        )


if __name__ == "__main__":
    main()
