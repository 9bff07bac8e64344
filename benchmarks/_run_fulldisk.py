"""
The child process of the full-disk part of ``benchmarks/run.py`` (issue #15): one ``run_tiled`` pass over a full
disk, its time, peak RSS, page faults and the sum of its tiles' forward passes, as one JSON line on stdout.

Benchmark-only: ``run.py --_fulldisk`` calls it, in a fresh process so that the peak RSS is this run's.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import torch
from _run_inputs import _enhance_model, _hmi_image
from _run_report import _peak_rss_mib

from sunpy_nn.nn import run_tiled, runner, tile_windows
from sunpy_nn.nn.runner import _balanced_window, optimized_tile_size


def fulldisk_child(size: int, tile_size: int | None) -> None:
    """
    Enhance on a ``size`` x ``size`` full disk through ``run_tiled``; prints the figures as one JSON line.

    Runs in a fresh process (``run.py --_fulldisk``) so that its peak RSS belongs to this run.
    """
    dev = torch.device("cpu")
    net, _ = _enhance_model()
    img, _ = _hmi_image(512)
    img = np.pad(img, ((0, size - 512), (0, size - 512)), mode="symmetric") if size > 512 else img[:size, :size]
    halo = net.receptive_radius
    tile = tile_size or optimized_tile_size(dev, net.n_filters, 2)
    window = _balanced_window(size, min(tile, size), halo, 1)  # what run_tiled(precision=...) cuts
    # Warm up the prepared model (cached by run_tiled) on one tile, then time every forward pass of the run with
    # hooks on that cached model: "the sum of tiles", measured under the same load as the run itself.
    run_tiled(net, img[:window, :window], scale=2, halo=halo, precision="float32", tile_size=tile, progress=False)
    # The one optimised copy run_tiled cached for this network; its cache key is the runner's to change (a key
    # written out here broke this child when the runner's key grew a Monte-Carlo-dropout flag).
    (entry,) = runner._PREPARED[net].values()
    prepared = entry[1]
    forward_times: list[float] = []
    prepared.register_forward_pre_hook(lambda *_: forward_times.append(-time.perf_counter()))
    prepared.register_forward_hook(lambda *_: forward_times.append(time.perf_counter() + forward_times.pop()))
    rows = tile_windows(size, window, halo)
    n_tiles = len(rows) ** 2
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out = run_tiled(net, img, scale=2, halo=halo, precision="float32", tile_size=tile, progress=False)
    t = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    assert out.shape == (2 * size, 2 * size)
    assert len(forward_times) == n_tiles
    sum_tiles = sum(forward_times)
    computed = n_tiles * window**2 / img.size
    json.dump(
        {
            "size": size,
            "time_s": t,
            "peak_rss_mib": _peak_rss_mib(),
            "minor_page_faults": ru1.ru_minflt - ru0.ru_minflt,
            "system_cpu_s": ru1.ru_stime - ru0.ru_stime,
            "tile_size": window,
            "n_tiles": n_tiles,
            "sum_of_tiles_s": sum_tiles,
            "tiling_overhead": t / sum_tiles - 1,
            "computed_pixels_ratio": computed,
            "overhead_incl_halos": t / (sum_tiles / computed) - 1,
        },
        sys.stdout,
    )
