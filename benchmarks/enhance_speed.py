#!/usr/bin/env python
"""
Plain wall-clock benchmark of Enhance inference (`sunpy_nn.nn.EnhanceNet` and `sunpy_nn.nn.run_tiled`).

Run from the repository root::

    python benchmarks/enhance_speed.py                 # default: 400 px, 4096 px full disk, 1024 px tiled vs whole
    python benchmarks/enhance_speed.py --quick         # full disk 1024 px, comparison at 512 px, fewer repeats
    python benchmarks/enhance_speed.py --device cuda --full-size 4096
    python benchmarks/enhance_speed.py --end-to-end    # also time sunpy_nn.enhance.enhance_array on a NaN-masked disk

It prints, in this order (the order in which the parts run):

1. one full-disk-sized image (4096x4096; ``--full-size``) through ``run_tiled`` with the default tile size, in a
   fresh subprocess so that the peak RSS (``ru_maxrss``) is that of this run: time, Mpix/s, tile size and number of
   tiles, RSS before inference and peak RSS. With ``--end-to-end``, "1b" does the same through
   ``sunpy_nn.enhance.enhance_array`` on a disk with NaN off-disk pixels, in a second fresh subprocess;
2. a 400x400 input through the paper network (depth 5, 64 filters, random weights, BatchNorm in eval mode), once via
   ``run_tiled`` as a single tile and once as a direct ``model(x)`` under `torch.inference_mode`: the median time
   over several runs after a warm-up, Mpix/s (input pixels) and GFLOP/s with FLOPs = 2 * flops_per_pixel * pixels;
3. tiled (``tile_size=256``) against whole-image inference at 1024x1024: both times, their ratio and the largest
   difference between the two outputs relative to the output range (exactness of the tiling);

and a summary with the total wall time and how much CPU other processes took meanwhile (on a shared machine the
timings are only as good as that figure).

Times are wall-clock seconds (`time.perf_counter`, with `torch.cuda.synchronize` on a GPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _run_report import _cpu_model  # benchmarks/ is on the path of a script run from it

from sunpy_nn.nn import EnhanceNet, default_batch_size, default_tile_size, resolve_device, run_tiled, tile_windows

SMALL = 400  # part 1 image edge
DEPTH, N_FILTERS = 5, 64  # the paper network
DISK_RADIUS = 0.465  # solar radius as a fraction of the image edge (HMI: ~1900 px of 4096)


# ---------------------------------------------------------------------------------------------------------- helpers
def _row(label: str, value: str) -> None:
    print(f"  {label:<44s} {value}", flush=True)


def _header(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, dev: torch.device):
    _sync(dev)
    t0 = time.perf_counter()
    result = fn()
    _sync(dev)
    return time.perf_counter() - t0, result


def _median_time(fn, dev: torch.device, repeats: int, warmup: int = 1) -> tuple[float, list[float], object]:
    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(repeats):
        t, result = _timed(fn, dev)
        times.append(t)
    return statistics.median(times), times, result


def _make_model(dev: torch.device) -> EnhanceNet:
    torch.manual_seed(0)
    return EnhanceNet(depth=DEPTH, n_filters=N_FILTERS).eval().to(dev)  # eval(): BatchNorm uses running stats


def _make_image(n: int, seed: int = 0) -> np.ndarray:
    """Granulation-like test image in network units: I/Ic ~ 1 with a few per cent contrast."""
    rng = np.random.default_rng(seed)
    return (1.0 + 0.05 * rng.standard_normal((n, n))).astype(np.float32)


def _tile_plan(shape: tuple[int, int], tile_size: int, halo: int, align: int = 1) -> tuple[int, int, int]:
    """(tile edge, number of tiles, pixels computed incl. halos) as `run_tiled` will cut ``shape``."""
    tile_size = max(int(tile_size), 2 * halo + align)
    ny, nx = shape
    wy, wx = min(tile_size, ny), min(tile_size, nx)
    n = len(tile_windows(ny, wy, halo, align)) * len(tile_windows(nx, wx, halo, align))
    return tile_size, n, n * wy * wx


def _gflops(model: EnhanceNet, n_pixels: int, seconds: float) -> float:
    return 2 * model.flops_per_pixel * n_pixels / seconds / 1e9


def _rate(n_pixels: int, seconds: float) -> str:
    return f"{n_pixels / seconds / 1e6:.3f} Mpix/s"


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _current_rss_mib() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * resource.getpagesize() / 2**20


def _vm_hwm_mib() -> float | None:
    """Peak RSS of the current address space (VmHWM); unlike ru_maxrss it does not inherit the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cpu_snapshot() -> tuple[float, float, float, float] | None:
    """(wall s, machine busy CPU s, machine steal CPU s, CPU s of this process and its children) on Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal [guest guest_nice, already included in user/nice]
    busy = sum(fields[:3]) + sum(fields[5:7])
    steal = fields[7] if len(fields) > 7 else 0
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        own += ru.ru_utime + ru.ru_stime
    return time.perf_counter(), busy / tick, steal / tick, own


def _report_contention(start: tuple[float, float, float, float] | None) -> None:
    end = _cpu_snapshot()
    if start is None or end is None:
        return
    wall = end[0] - start[0]
    others = max(0.0, (end[1] - start[1]) - (end[3] - start[3]))
    steal = end[2] - start[2]
    n = _cpu_count()
    _row("CPU time of this benchmark + subprocesses", f"{end[3] - start[3]:.0f} s over {wall:.0f} s wall")
    _row("CPU time used by other processes meanwhile", f"{others:.0f} s ({others / (wall * n):.0%} of {n} CPUs)")
    _row("CPU steal time (hypervisor)", f"{steal:.0f} s")
    if others > 0.05 * wall * n or steal > 0.05 * wall * n:
        print("  !! the machine was busy with other work during the benchmark: the timings are pessimistic", flush=True)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _fmt_times(times: list[float]) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


# ------------------------------------------------------------------------------------------------------------ parts
def part_small(dev: torch.device, repeats: int) -> None:
    model = _make_model(dev)
    halo = model.receptive_radius
    img = _make_image(SMALL)
    npix = img.size
    flops = 2 * model.flops_per_pixel * npix
    _header(f"2. {SMALL}x{SMALL} input, EnhanceNet(depth={DEPTH}, n_filters={N_FILTERS}), median of {repeats} runs")
    _row("parameters", f"{model.n_parameters}")
    _row("flops_per_pixel (multiply-adds / input px)", f"{model.flops_per_pixel}")
    _row("FLOPs per image (2 * flops_per_pixel * px)", f"{flops / 1e9:.1f} GFLOP")
    tile, ntiles, _ = _tile_plan(img.shape, SMALL, halo)

    def tiled():
        return run_tiled(model, img, scale=2, halo=halo, tile_size=SMALL, device=dev, progress=False)

    t, times, out_tiled = _median_time(tiled, dev, repeats)
    print(f"  run_tiled (tile_size={tile}, {ntiles} tile):", flush=True)
    _row("  median time", f"{t:.3f} s   (runs: {_fmt_times(times)})")
    _row("  throughput", f"{_rate(npix, t)}, {_gflops(model, npix, t):.1f} GFLOP/s")

    x = torch.from_numpy(img)[None, None].to(dev)

    def direct():
        with torch.inference_mode():
            return model(x)

    t, times, out_direct = _median_time(direct, dev, repeats)
    print("  direct model(x) under torch.inference_mode:", flush=True)
    _row("  median time", f"{t:.3f} s   (runs: {_fmt_times(times)})")
    _row("  throughput", f"{_rate(npix, t)}, {_gflops(model, npix, t):.1f} GFLOP/s")
    diff = np.abs(out_tiled - out_direct[0, 0].float().cpu().numpy()).max()
    _row("  max |run_tiled - direct|", f"{diff:.3g}")


def part_compare(dev: torch.device, size: int, tile_size: int, repeats: int) -> None:
    model = _make_model(dev)
    halo = model.receptive_radius
    img = _make_image(size, seed=1)
    npix = img.size
    tile, ntiles, computed = _tile_plan(img.shape, tile_size, halo)
    _header(f"3. Tiled vs whole-image inference at {size}x{size} (median of {repeats} runs after a warm-up)")
    x = torch.from_numpy(img)[None, None].to(dev)

    def whole():
        with torch.inference_mode():
            return model(x)

    t_whole, times, out_whole = _median_time(whole, dev, repeats)
    out_whole = out_whole[0, 0].float().cpu().numpy()
    _row("whole image, direct model(x)", f"{t_whole:.3f} s   (runs: {_fmt_times(times)})")
    _row("  throughput", f"{_rate(npix, t_whole)}, {_gflops(model, npix, t_whole):.1f} GFLOP/s")

    def tiled():
        return run_tiled(model, img, scale=2, halo=halo, tile_size=tile_size, device=dev, progress=False)

    t_tiled, times, out_tiled = _median_time(tiled, dev, repeats)
    _row(
        f"run_tiled, tile_size={tile} ({ntiles} tiles, batch {default_batch_size(dev)})",
        f"{t_tiled:.3f} s   (runs: {_fmt_times(times)})",
    )
    _row("  throughput", f"{_rate(npix, t_tiled)}, {_gflops(model, npix, t_tiled):.1f} GFLOP/s (image px)")
    _row("  pixels computed incl. halos / image pixels", f"{computed / npix:.3f}")
    _row("  GFLOP/s on computed pixels", f"{_gflops(model, computed, t_tiled):.1f}")
    _row("time ratio tiled / whole", f"{t_tiled / t_whole:.3f}")
    rng = float(out_whole.max() - out_whole.min())
    diff = float(np.abs(out_tiled - out_whole).max())
    _row("max |tiled - whole|", f"{diff:.3g}  (output range {rng:.4g})")
    _row("max |tiled - whole| / output range", f"{diff / rng:.3g}")


def part_fulldisk_child(dev: torch.device, size: int, end_to_end: bool) -> None:
    """Runs in a fresh process (hidden --_fulldisk / --_endtoend flags) so that ru_maxrss belongs to this run."""
    model = _make_model(dev)
    halo = model.receptive_radius
    img = _make_image(size, seed=2)
    npix = img.size
    tile_default = default_tile_size(dev, model.n_filters, model.scale)
    tile, ntiles, computed = _tile_plan(img.shape, tile_default, halo)
    if end_to_end:
        from sunpy_nn.enhance import enhance_array

        yy, xx = np.ogrid[:size, :size]
        c = (size - 1) / 2
        off_disk = (yy - c) ** 2 + (xx - c) ** 2 > (DISK_RADIUS * size) ** 2
        img[off_disk] = np.nan
        del yy, xx
    # One small forward pass first, so that one-off library initialisation is not in the timing.
    with torch.inference_mode():
        model(torch.ones(1, 1, 64, 64, device=dev))
    _sync(dev)
    rss_before = _current_rss_mib()
    peak_before = _peak_rss_mib()
    ru_before = resource.getrusage(resource.RUSAGE_SELF)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    if end_to_end:
        t, out = _timed(lambda: enhance_array(img, model, device=dev, progress=False), dev)
        _header(f"1b. End to end: sunpy_nn.enhance.enhance_array on a {size}x{size} disk (NaN off disk), fresh process")
        _row("off-disk (NaN) pixels", f"{off_disk.mean():.1%} (disk radius {DISK_RADIUS * size:.0f} px)")
    else:
        t, out = _timed(lambda: run_tiled(model, img, scale=2, halo=halo, device=dev, progress=False), dev)
        _header(f"1. Full disk: run_tiled on {size}x{size} with the default tile size, one run in a fresh process")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    assert out.shape == (2 * size, 2 * size)
    _row("time", f"{t:.1f} s")
    user, system = ru.ru_utime - ru_before.ru_utime, ru.ru_stime - ru_before.ru_stime
    _row("CPU time: user / system", f"{user:.1f} s / {system:.1f} s")
    _row("minor page faults", f"{ru.ru_minflt - ru_before.ru_minflt}")
    _row("throughput", f"{_rate(npix, t)}, {_gflops(model, npix, t):.1f} GFLOP/s (image px)")
    _row("tile size (default_tile_size) / halo", f"{tile} px / {halo} px")
    _row(f"number of tiles (batch_size {default_batch_size(dev)})", f"{ntiles}")
    _row("pixels computed incl. halos / image pixels", f"{computed / npix:.3f}")
    _row("GFLOP/s on computed pixels", f"{_gflops(model, computed, t):.1f}")
    _row("input / output array size", f"{img.nbytes / 2**20:.0f} MiB / {out.nbytes / 2**20:.0f} MiB")
    before = "n/a" if rss_before is None else f"{rss_before:.0f} MiB"
    _row("RSS before inference (model + input loaded)", f"{before}   (peak so far {peak_before:.0f} MiB)")
    peak = _peak_rss_mib()
    _row("peak RSS of the process (ru_maxrss)", f"{peak:.0f} MiB")
    hwm = _vm_hwm_mib()
    if hwm is not None:
        _row("  cross-check: VmHWM from /proc/self/status", f"{hwm:.0f} MiB")
    if rss_before is not None:
        _row("peak RSS - RSS before inference", f"{peak - rss_before:.0f} MiB")
    if dev.type == "cuda":
        _row("peak CUDA memory allocated", f"{torch.cuda.max_memory_allocated(dev) / 2**20:.0f} MiB")


def part_fulldisk(dev: torch.device, size: int, end_to_end: bool) -> None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--device", dev.type, "--full-size", str(size)]
    cmd.append("--_endtoend" if end_to_end else "--_fulldisk")
    sys.stdout.flush()
    proc = subprocess.run(cmd, check=False)
    if proc.returncode:
        print(f"  !! the full-disk subprocess failed with exit status {proc.returncode}", flush=True)


# ------------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--quick", action="store_true", help="full disk 1024 px, comparison at 512 px, fewer repeats")
    parser.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: CUDA if available, else CPU")
    parser.add_argument("--full-size", type=int, default=None, help="edge of the full-disk image (default 4096)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement in parts 1 and 3")
    parser.add_argument(
        "--end-to-end", action="store_true", help="also time enhance_array on a NaN-masked disk (one more full run)"
    )
    parser.add_argument("--_fulldisk", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_endtoend", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    dev = resolve_device(args.device)
    full_size = args.full_size or (1024 if args.quick else 4096)
    if args._fulldisk or args._endtoend:
        part_fulldisk_child(dev, full_size, end_to_end=args._endtoend)
        return 0

    t_start = time.perf_counter()
    repeats_small = args.repeats or (3 if args.quick else 5)
    repeats_cmp = args.repeats or (1 if args.quick else 3)
    cmp_size, cmp_tile = (512, 128) if args.quick else (1024, 256)

    print("Enhance inference benchmark (sunpy_nn)", flush=True)
    _row("python / numpy / torch", f"{platform.python_version()} / {np.__version__} / {torch.__version__}")
    _row("torch.get_num_threads()", f"{torch.get_num_threads()}")
    _row("CPU model", f"{_cpu_model()} ({_cpu_count()} logical CPUs available)")
    gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
    _row("device", f"{dev}{gpu}")
    _row("settings", f"{'--quick' if args.quick else 'default'}; full-disk size {full_size}")

    if hasattr(os, "getloadavg"):
        _row("load average (1, 5, 15 min) at start", ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    cpu_start = _cpu_snapshot()

    # The full-disk run goes first: a child process inherits its parent's peak RSS as the floor of its own
    # ru_maxrss (Linux keeps the maximum across fork/exec), so the parent must still be small when it starts it.
    part_fulldisk(dev, full_size, end_to_end=False)
    if args.end_to_end:
        part_fulldisk(dev, full_size, end_to_end=True)
    part_small(dev, repeats_small)
    part_compare(dev, cmp_size, cmp_tile, repeats_cmp)

    _header("Summary")
    _row("total benchmark wall time", f"{time.perf_counter() - t_start:.0f} s")
    _report_contention(cpu_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
