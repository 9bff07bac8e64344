#!/usr/bin/env python
"""
Performance of both networks against this machine's measured peak (issue #8).

Run from the repository root::

    python benchmarks/run.py            # everything, about 5-8 minutes on 2 idle CPU cores
    python benchmarks/run.py --quick    # no full disk, no torch.compile, fewer repeats: about 2 minutes
    python benchmarks/run.py --no-compile --full-size 2048
    python benchmarks/run.py --docs     # also the copy the performance guide's tables are made from

It prints, in this order, and writes the same figures as JSON to ``benchmarks/results/run-<time>.json`` (with
``--docs`` also to ``docs/_static/performance/run_<CPU class>.json``, read by the docs build: one table per CPU
class):

0. the CPU: its model, the flags that decide torch's kernels (avx2, avx512f, avx512_bf16, amx), its class
   (AVX2 or AVX-512: never compare figures across classes), the usable CPUs and torch's threads (and who set them);
1. the measured peak of this machine in float32 and bfloat16: a 2048^3 matrix product and a 64->64 3x3
   convolution on a 400x400 image (the best of NCHW and channels-last);
2. Enhance (shipped ``enhance_intensity`` weights) on a 400x400 HMI continuum image and the denoiser's U-Net
   (random weights, the `~sunpy_nn.denoise.Denoiser` configuration) on an 800x800 CRISP image (synthetic stand-ins
   when ../shared/data is absent), in each mode: float32 eager (the reference), the optimised float32 network,
   compiled, bfloat16 and ``precision="auto"``: median time, Mpix/s, GFLOP/s (nominal: the original
   network's FLOPs; executed: what the optimised network computes), the fraction of the measured convolution peak
   and the error against the reference as a fraction of the output range, against the 1e-3 accuracy guard;
3. Enhance on a 4096x4096 full disk through ``run_tiled(precision="float32")`` in a fresh process: time, peak RSS,
   minor page faults and the tiling overhead: the run's time against the sum of its tiles, that is the image's
   pixels at the per-pixel time of one tile-sized forward pass (halos and bookkeeping included);
4. Noise2Noise training throughput (patches/s) of the training step of ``Denoiser.fit`` (channels-last, fused
   Adam) and of variants, and its FLOP rate (3x the forward FLOPs) against the U-Net's inference FLOP rate;
5. the classical baselines ``richardson_lucy`` (400x400) and ``pca_denoise`` (800x800, 13 wavelengths);

and a summary of the targets of issue #8, each "met" or "NOT MET".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

# The package of this checkout, whether or not (or wherever else) sunpy_nn is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch.nn import functional as F

from sunpy_nn.nn import (
    ACCURACY_BOUND,
    EnhanceNet,
    UNet,
    bf16_is_native,
    configure_threads,
    prepare_model,
    relative_error,
    resolve_device,
    run_tiled,
    runner,
    tile_windows,
)
from sunpy_nn.nn.runner import _balanced_window, default_tile_size, optimized_tile_size

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "_static" / "performance"
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
ENHANCE_SIZE, UNET_SIZE = 400, 800
#: The training step of ``Denoiser.fit`` (``sunpy_nn.training.noise2noise``): channels-last with the fused Adam step.
FIT_CONFIG = "batch 10 of 52x52, channels-last, fused Adam (as in fit)"

RESULT: dict = {}


# ---------------------------------------------------------------------------------------------------------- helpers
def _row(label: str, value: str) -> None:
    print(f"  {label:<46s} {value}", flush=True)


def _header(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _median(fn, dev: torch.device, repeats: int, warmup: int = 1) -> tuple[float, object]:
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        out = fn()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The CPU flags that decide which kernels torch's oneDNN runs (and so which table of the performance guide applies).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx")


def cpu_info() -> dict:
    """The CPU: model, the flags of `CPU_FLAGS` (``amx``: any AMX extension), its class, torch's view, the CPUs."""
    from sunpy_nn.nn.device import _STATE, _cpu_flags, _usable_cpus, user_threads

    flags = _cpu_flags()
    present = {f: f in flags for f in CPU_FLAGS[:-1]}
    present["amx"] = any(f.startswith("amx") for f in flags)
    chosen = user_threads()
    if chosen is not None:
        set_by = chosen[1]
    elif _STATE.applied == torch.get_num_threads():
        set_by = "the package's thread policy"
    else:
        set_by = "torch's default, until the thread policy decides when a network runs"
    return {
        "model": _cpu_model(),
        "flags": present,
        "amx_flags": sorted(f for f in flags if f.startswith("amx")),
        "class": "AVX-512" if present["avx512f"] else "AVX2" if present["avx2"] else platform.machine() or "other",
        "torch_capability": torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "n/a",
        "logical_cpus": os.cpu_count(),
        "usable_cpus": _usable_cpus(),
        "threads": torch.get_num_threads(),
        "threads_set_by": set_by,
    }


def print_cpu(info: dict) -> None:
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["flags"].items())
    amx = f" ({' '.join(info['amx_flags'])})" if info["amx_flags"] else ""
    _row("CPU", f"{info['model']} ({info['class']} class)")
    _row("CPU flags", f"{flags}{amx}; torch CPU capability {info['torch_capability']}")
    _row(
        "CPUs / usable / torch threads",
        f"{info['logical_cpus']} / {info['usable_cpus']} / {info['threads']} (set by {info['threads_set_by']})",
    )


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _target(name: str, met: bool, detail: str) -> None:
    RESULT.setdefault("targets", {})[name] = {"met": bool(met), "detail": detail}


# ------------------------------------------------------------------------------------------------------------- data
def _hmi_image(n: int) -> tuple[np.ndarray, str]:
    """HMI continuum (I/Ic) tiled up to n x n from the real 200x200 sunspot cut-out, or a synthetic stand-in."""
    path = SHARED / "enhance" / "hmi_continuum_sunspot_200.fits"
    if path.exists():
        from astropy.io import fits

        img = np.asarray(fits.getdata(path), dtype=np.float32)
        reps = -(-n // img.shape[0])
        # Mirror-tiling keeps the image continuous across the copies.
        tiled = np.block([[img if (i + j) % 2 == 0 else img[:, ::-1] for j in range(reps)] for i in range(reps)])
        return np.ascontiguousarray(tiled[:n, :n]), f"real HMI continuum ({path.name}, mirror-tiled)"
    rng = np.random.default_rng(0)
    return (1.0 + 0.04 * rng.standard_normal((n, n))).astype(np.float32), "synthetic granulation-like noise"


def _crisp_image(n: int) -> tuple[np.ndarray, str]:
    path = SHARED / "denoise" / "crisp_stokes_800.npy"
    if path.exists():
        img = np.load(path).astype(np.float32)[:n, :n]
        return img / img.std(), f"real CRISP ({path.name}), in units of its std"
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, n)).astype(np.float32), "synthetic white noise"


def _enhance_model() -> tuple[EnhanceNet, str]:
    try:
        from sunpy_nn.enhance import load_enhance_model

        net, _ = load_enhance_model(None, "intensity")
        return net.eval(), "shipped enhance_intensity weights"
    except Exception as err:  # no shipped weights in this installation: the speed does not depend on them
        torch.manual_seed(0)
        return EnhanceNet().eval(), f"random weights ({type(err).__name__})"


def _unet() -> UNet:
    """The network of a default `~sunpy_nn.Denoiser` in image mode (one channel), random weights."""
    from sunpy_nn import Denoiser

    torch.manual_seed(0)
    return Denoiser()._build(1).eval()  # the Denoiser's own builder: its configuration, whatever it becomes


def unet_macs_per_pixel(net: UNet) -> float:
    """Multiply-adds per input pixel of a UNet forward pass (convolutions only)."""
    macs = 0.0
    for name, m in net.named_modules():
        if not isinstance(m, torch.nn.Conv2d):
            continue
        part, *rest = name.split(".")
        if part == "down":
            level = int(rest[0])
        elif part == "bottom":
            level = net.depth
        elif part in ("up", "merge"):  # decoder modules are stored deepest first; up-convolutions run upsampled
            level = net.depth - 1 - int(rest[0])
        else:  # the output convolution and the variance head run at full resolution
            level = 0
        macs += m.kernel_size[0] * m.kernel_size[1] * m.in_channels * m.out_channels / 4**level
    return macs


def tiling_geometry(size: int, halo: int, n_filters: int = 64, scale: int = 2) -> dict:
    """
    How ``run_tiled`` cuts a ``size`` x ``size`` image on the CPU: the optimised path and the generic one.

    Plain arithmetic on the tile settings (nothing is timed): tile edge, window (after balancing, on the optimised
    path), number of tiles and the pixels computed, halos included, per image pixel.
    """
    dev = torch.device("cpu")
    plans = {}
    for name, tile, balanced in (
        ("optimised", optimized_tile_size(dev, n_filters, scale), True),
        ("generic", default_tile_size(dev, n_filters, scale), False),
    ):
        window = min(tile, size)
        if balanced:
            window = _balanced_window(size, window, halo, 1)
        n_tiles = len(tile_windows(size, window, halo)) ** 2
        plans[name] = {
            "tile_size": tile,
            "window": window,
            "n_tiles": n_tiles,
            "computed_pixels_ratio": n_tiles * window**2 / size**2,
        }
    return {"size": size, "halo": halo, **plans}


# ------------------------------------------------------------------------------------------------------------ parts
def part_peak(dev: torch.device, repeats: int) -> dict:
    _header("1. Measured peak of this machine (median of several runs)")
    peak = {}
    n = 2048
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a = torch.randn(n, n, device=dev).to(dtype)
        b = torch.randn(n, n, device=dev).to(dtype)
        t, _ = _median(lambda a=a, b=b: a @ b, dev, repeats)
        peak[f"matmul_{name}"] = 2 * n**3 / t / 1e9
        _row(f"matmul {n}^3, {name}", f"{peak[f'matmul_{name}']:.0f} GFLOP/s")
    s = ENHANCE_SIZE
    flops = 2 * 64 * 64 * 9 * s * s
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        best = 0.0
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(1, 64, s, s, device=dev).to(dtype).contiguous(memory_format=layout)
            w = torch.randn(64, 64, 3, 3, device=dev).to(dtype).contiguous(memory_format=layout)
            with torch.inference_mode():
                t, _ = _median(lambda x=x, w=w: F.conv2d(x, w, padding=1), dev, repeats)
            rate = flops / t / 1e9
            lay = "channels-last" if layout == torch.channels_last else "NCHW"
            _row(f"conv 64->64 3x3 on {s}x{s}, {name}, {lay}", f"{rate:.0f} GFLOP/s")
            peak[f"conv_{name}_{'channels_last' if layout == torch.channels_last else 'nchw'}"] = rate
            best = max(best, rate)
        peak[f"conv_{name}"] = best
    conv_peaks = f"{peak['conv_float32']:.0f} / {peak['conv_bfloat16']:.0f} GFLOP/s"
    _row("=> measured conv peak float32 / bfloat16", conv_peaks)
    RESULT["peak_gflops"] = peak
    return peak


def _modes(compile_: bool) -> list[tuple[str, dict]]:
    modes = [("float32", {"precision": "float32"})]
    if compile_:
        modes.append(("float32 + compile", {"precision": "float32", "compile": True}))
    modes += [("bfloat16", {"precision": "bfloat16"}), ("auto", {"precision": "auto"})]
    return modes


def _conv_probe(dev: torch.device, dtype: torch.dtype):
    """The peak convolution (64 -> 64, 3x3, channels-last, 400x400) as a callable, and its FLOPs."""
    layout = torch.channels_last
    x = torch.randn(1, 64, ENHANCE_SIZE, ENHANCE_SIZE, device=dev).to(dtype).contiguous(memory_format=layout)
    w = torch.randn(64, 64, 3, 3, device=dev).to(dtype).contiguous(memory_format=layout)
    return (lambda: F.conv2d(x, w, padding=1)), 2 * 64 * 64 * 9 * ENHANCE_SIZE**2


def part_network(
    label: str,
    net: torch.nn.Module,
    img: np.ndarray,
    nominal_macs: float,
    executed_macs: float,
    dev: torch.device,
    repeats: int,
    compile_: bool,
) -> dict:
    """
    Time one network in every mode on one image; returns the per-mode results.

    The modes and the peak convolution run in turns (round-robin), ``repeats`` rounds: on a shared machine the
    load drifts, and each mode's fraction of the peak is the median over rounds of its rate against the peak
    convolution's rate in the same round.
    """
    x = torch.from_numpy(img)[None, None].to(dev)
    npix = img.size
    models: dict = {"float32 eager": net}
    setup: dict = {}
    for name, kw in _modes(compile_):
        t0 = time.perf_counter()
        models[name] = prepare_model(net, device=dev, example=x, **kw)
        with torch.inference_mode():
            models[name](x)  # the first call compiles
        setup[name] = time.perf_counter() - t0
    probes = {p: _conv_probe(dev, getattr(torch, p)) for p in ("float32", "bfloat16")}
    times: dict = {name: [] for name in models}
    peak_rounds: dict = {p: [] for p in probes}
    outputs = {}

    def timed(fn):
        _sync(dev)
        t0 = time.perf_counter()
        out = fn()
        _sync(dev)
        return time.perf_counter() - t0, out

    with torch.inference_mode():
        for name, model in models.items():
            outputs[name] = model(x)  # warm-up, and the outputs compared below
        for fn, _ in probes.values():
            fn()
        for _ in range(repeats):
            for p, (fn, flops) in probes.items():
                peak_rounds[p].append(flops / timed(fn)[0] / 1e9)
            for name, model in models.items():
                times[name].append(timed(lambda model=model: model(x))[0])
    ref = outputs["float32 eager"]
    res: dict = {}
    for name, model in models.items():
        t = statistics.median(times[name])
        precision = getattr(model, "precision", "float32")
        executed = nominal_macs if name == "float32 eager" else executed_macs
        fractions = [
            2 * executed * npix / tr / 1e9 / pk for tr, pk in zip(times[name], peak_rounds[precision], strict=True)
        ]
        err = relative_error(outputs[name], ref)
        res[name] = {
            "time_s": t,
            "times_s": times[name],
            "mpix_s": npix / t / 1e6,
            "gflops_nominal": 2 * nominal_macs * npix / t / 1e9,
            "gflops_executed": 2 * executed * npix / t / 1e9,
            "fraction_of_conv_peak": statistics.median(fractions),
            "conv_peak_gflops_same_rounds": statistics.median(peak_rounds[precision]),
            "error": err,
            "guard_ok": err <= ACCURACY_BOUND,
            "chosen_precision": precision,
            "compiled": bool(getattr(model, "compiled", False)),
            "speedup_vs_eager": statistics.median(
                [te / tm for te, tm in zip(times["float32 eager"], times[name], strict=True)]
            ),
            "setup_s": setup.get(name, 0.0),
        }
        r = res[name]
        kw = dict(_modes(compile_)).get(name, {})
        chosen = f" -> {precision}" if kw.get("precision") == "auto" else ""
        comp = " (compile fell back to eager)" if kw.get("compile") and not r["compiled"] else ""
        guard = (
            "reference"
            if name == "float32 eager"
            else (f"error {err:.1e}, {'within' if r['guard_ok'] else 'FAILS'} the {ACCURACY_BOUND:g} guard")
        )
        _row(
            f"{name}{chosen}{comp}",
            f"{t:.3f} s ({r['speedup_vs_eager']:.2f}x), {r['mpix_s']:.3f} Mpix/s, {r['gflops_nominal']:.0f} nominal / "
            f"{r['gflops_executed']:.0f} executed GFLOP/s = {r['fraction_of_conv_peak']:.0%} of the {precision} "
            f"conv peak; {guard}",
        )
    _row(
        "conv peak in the same rounds (float32 / bf16)",
        f"{statistics.median(peak_rounds['float32']):.0f} / {statistics.median(peak_rounds['bfloat16']):.0f} GFLOP/s"
        f"; setup (prepare + first call): " + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items()),
    )
    RESULT[label] = res
    return res


def part_fulldisk_child(size: int, tile_size: int | None) -> None:
    """Runs in a fresh process so that its peak RSS belongs to this run."""
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
    prepared = runner._PREPARED[net][("cpu", "float32", False)][1]
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


def part_fulldisk(size: int, tile_size: int | None) -> dict | None:
    _header(f"3. Enhance on a {size}x{size} full disk: run_tiled(precision='float32'), one run in a fresh process")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_fulldisk", "--full-size", str(size)]
    if tile_size:
        cmd += ["--tile-size", str(tile_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        print(f"  !! the full-disk subprocess failed:\n{proc.stderr[-2000:]}", flush=True)
        return None
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    _row("time", f"{r['time_s']:.1f} s ({size * size / r['time_s'] / 1e6:.3f} Mpix/s)")
    _row("tile size / number of tiles", f"{r['tile_size']} px / {r['n_tiles']}")
    _row("peak RSS of the process", f"{r['peak_rss_mib']:.0f} MiB")
    _row("minor page faults during the run", f"{r['minor_page_faults']}")
    _row("system CPU time during the run", f"{r['system_cpu_s']:.1f} s")
    _row("sum of the tiles' forward passes", f"{r['sum_of_tiles_s']:.1f} s")
    _row("tiling overhead (time / sum of tiles - 1)", f"{r['tiling_overhead']:.1%}")
    _row("pixels computed incl. halos / image pixels", f"{r['computed_pixels_ratio']:.3f}")
    _row("overhead incl. halos (vs image px at tile rate)", f"{r['overhead_incl_halos']:.1%}")
    RESULT["fulldisk"] = r
    return r


def _train_step_factory(net: UNet, dev: torch.device, batch: int, patch: int, channels_last: bool, fused: bool = False):
    """The training step of Denoiser.fit (L2 + the aleatoric loss, Adam) on random pairs."""
    model = net.to(dev).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = (
        torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
        if fused
        else torch.optim.Adam(model.parameters(), lr=1e-4)
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, patch, patch, generator=g).to(dev)
    y = x + 0.1 * torch.randn(batch, 1, patch, patch, generator=g).to(dev)
    if channels_last:
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)

    def step():
        out = model(x)
        mean, log_var = out[:, :1], out[:, 1:]
        l_data = F.mse_loss(mean, y)
        s2 = torch.exp(log_var) + 1.0
        l_var = (((mean.detach() - y) ** 2) / (2 * s2) + 0.5 * torch.log(s2)).mean()
        opt.zero_grad(set_to_none=True)
        (l_data + l_var).backward()
        opt.step()
        return l_data.detach()

    return step


def part_training(dev: torch.device, repeats: int, infer, infer_flops: float) -> dict:
    """Training steps and one inference call (``infer``, ``infer_flops``) in turns, so that they share the load."""
    _header("4. Noise2Noise training throughput (the training step of Denoiser.fit)")
    macs = unet_macs_per_pixel(_unet())
    # (label, batch, patch, channels-last, fused Adam); the paper's batches are ten 52x52 patches
    configs = (
        ("batch 10 of 52x52, NCHW", 10, 52, False, False),
        ("batch 10 of 52x52, channels-last", 10, 52, True, False),
        (FIT_CONFIG, 10, 52, True, True),
        ("batch 10 of 128x128, channels-last, fused Adam", 10, 128, True, True),
    )
    steps = {c[0]: _train_step_factory(_unet(), dev, c[1], c[2], c[3], c[4]) for c in configs}
    for step in steps.values():
        step()  # warm-up
    with torch.inference_mode():
        infer()
    times: dict = {name: [] for name in steps}
    infer_rates = []
    for _ in range(min(repeats, 3)):  # training steps are long: 3 rounds of 2 steps keep this part to minutes
        with torch.inference_mode():
            t, _ = _median(infer, dev, 1, warmup=0)
        infer_rates.append(infer_flops / t / 1e9)
        for name, step in steps.items():
            t, _ = _median(step, dev, 2, warmup=0)
            times[name].append(t)
    res = {}
    for label, batch, patch, channels_last, fused in configs:
        flops = 3 * 2 * macs * batch * patch * patch  # forward + backward = 3x the forward FLOPs
        ratios = [r / (flops / t / 1e9) for r, t in zip(infer_rates, times[label], strict=True)]
        t = statistics.median(times[label])
        res[label] = {
            "patches_s": batch / t,
            "gflops": flops / t / 1e9,
            "vs_inference": statistics.median(ratios),
            "batch": batch,
            "patch": patch,
            "channels_last": channels_last,
            "fused_adam": fused,
            "as_in_fit": label == FIT_CONFIG,
        }
        _row(
            label,
            f"{batch / t:.1f} patches/s, {flops / t / 1e9:.0f} GFLOP/s "
            f"({res[label]['vs_inference']:.2f}x below inference)",
        )
    _row("U-Net inference in the same rounds", f"{statistics.median(infer_rates):.0f} GFLOP/s (float32, optimised)")
    RESULT["training"] = res
    RESULT["training_inference_gflops"] = statistics.median(infer_rates)
    return res


def part_baselines(repeats: int) -> None:
    _header("5. Classical baselines at the same sizes (context)")
    from sunpy_nn.baselines import pca_denoise, richardson_lucy

    img, _ = _hmi_image(ENHANCE_SIZE)
    t, _ = _median(lambda: richardson_lucy(img, iterations=20, upsample=2), torch.device("cpu"), repeats)
    _row(f"richardson_lucy {ENHANCE_SIZE}x{ENHANCE_SIZE}, 20 iterations, x2", f"{t:.3f} s")
    import astropy.units as u
    from astropy.wcs import WCS
    from ndcube import NDCube

    rng = np.random.default_rng(0)
    n_w = 13
    data = rng.standard_normal((n_w, UNET_SIZE, UNET_SIZE)).astype(np.float32) * 1e-3
    wcs = WCS(naxis=3)
    wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "WAVE"]
    wcs.wcs.cunit = ["arcsec", "arcsec", "nm"]
    wcs.wcs.cdelt = [0.059, 0.059, 0.01]
    wcs.wcs.crval = [0, 0, 854.2]
    wcs.wcs.crpix = [1, 1, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = NDCube(data, wcs=wcs, unit=u.dimensionless_unscaled)
        t_pca, _ = _median(lambda: pca_denoise(cube), torch.device("cpu"), max(1, repeats // 2))
    _row(f"pca_denoise {UNET_SIZE}x{UNET_SIZE}, {n_w} wavelengths", f"{t_pca:.3f} s")
    RESULT["baselines"] = {"richardson_lucy_s": t, "pca_denoise_s": t_pca}


# ------------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--quick", action="store_true", help="skip the full disk and torch.compile; fewer repeats")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile modes")
    parser.add_argument("--no-fulldisk", action="store_true", help="skip the full-disk run")
    parser.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: CUDA if available")
    parser.add_argument("--full-size", type=int, default=4096, help="edge of the full-disk image")
    parser.add_argument("--tile-size", type=int, default=None, help="tile edge of the full-disk run")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the thread policy)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also write docs/_static/performance/run_<cpu class>.json, from which the performance guide is made",
    )
    parser.add_argument("--_fulldisk", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    if args._fulldisk:
        part_fulldisk_child(args.full_size, args.tile_size)
        return 0

    dev = resolve_device(args.device)
    if args.docs and dev.type != "cpu":
        parser.error("--docs: the performance guide's tables are per CPU class; run it with --device cpu")
    repeats = args.repeats or (3 if args.quick else 5)
    compile_ = not (args.quick or args.no_compile)
    t_start = time.perf_counter()
    print("sunpy_nn performance benchmark (issue #8)", flush=True)
    _row("python / numpy / torch", f"{platform.python_version()} / {np.__version__} / {torch.__version__}")
    cpu = cpu_info()
    print_cpu(cpu)
    _row("device / native bfloat16", f"{dev} / {bf16_is_native(dev)}")
    _row("load average at start (1, 5, 15 min)", _load())
    import sunpy_nn

    RESULT["sunpy_nn_version"] = sunpy_nn.__version__  # which code made it (the docs tables made from it check this)
    RESULT["date"] = time.strftime("%Y-%m-%d %H:%M")
    RESULT["cpu"] = cpu
    RESULT["threads"] = torch.get_num_threads()
    RESULT["settings"] = {
        "quick": args.quick,
        "compile": compile_,
        "fulldisk": not (args.quick or args.no_fulldisk) and dev.type == "cpu",
        "repeats": repeats,
        "enhance_size": ENHANCE_SIZE,
        "unet_size": UNET_SIZE,
        "full_size": args.full_size,
    }
    RESULT["environment"] = {
        "torch": torch.__version__,
        "cpu": cpu["model"],
        "cpu_info": cpu,
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "bf16_native": bf16_is_native(dev),
        "load_start": _load(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }

    # The full disk goes first: a child inherits its parent's peak RSS as the floor of its own ru_maxrss.
    fulldisk = None
    if not (args.quick or args.no_fulldisk) and dev.type == "cpu":
        fulldisk = part_fulldisk(args.full_size, args.tile_size)

    part_peak(dev, repeats)

    net, weights = _enhance_model()
    img, source = _hmi_image(ENHANCE_SIZE)
    _header(f"2a. Enhance {ENHANCE_SIZE}x{ENHANCE_SIZE} ({weights}; {source}), median of {repeats} runs")
    from sunpy_nn.nn import FastEnhance

    # multiply-adds per input pixel: the original Enhance, the optimised one (cheaper upsampling) and the U-Net
    RESULT["macs_per_pixel"] = {
        "enhance": net.flops_per_pixel,
        "enhance_optimised": FastEnhance(net).flops_per_pixel,
        "unet": unet_macs_per_pixel(_unet()),
    }
    RESULT["tiling"] = tiling_geometry(args.full_size, net.receptive_radius, net.n_filters)
    enh = part_network(
        "enhance", net, img, net.flops_per_pixel, FastEnhance(net).flops_per_pixel, dev, repeats, compile_
    )
    unet = _unet()
    img, source = _crisp_image(UNET_SIZE)
    macs = unet_macs_per_pixel(unet)
    _header(f"2b. Denoiser U-Net {UNET_SIZE}x{UNET_SIZE} (random weights; {source}), median of {repeats} runs")
    un = part_network("unet", unet, img, macs, macs, dev, repeats, compile_)

    fast_unet = prepare_model(unet, device=dev, precision="float32")
    x_unet = torch.from_numpy(img)[None, None].to(dev)
    train = part_training(dev, repeats, lambda: fast_unet(x_unet), 2 * macs * img.size)
    part_baselines(repeats)

    # ---------------------------------------------------------------------------------------- targets
    _header("Targets of issue #8")
    f32 = enh["float32"]
    _target(
        "Enhance float32 400x400 >= 75 % of the measured conv peak",
        f32["fraction_of_conv_peak"] >= 0.75,
        f"{f32['fraction_of_conv_peak']:.0%} ({f32['time_s']:.3f} s)",
    )
    guarded = {k: v for k, v in enh.items() if k != "float32 eager" and v["guard_ok"]}
    best = min(guarded, key=lambda k: guarded[k]["time_s"])
    _target(
        "best Enhance mode >= 1.6x faster than float32 eager, within the guard",
        guarded[best]["speedup_vs_eager"] >= 1.6,
        f"{best}: {guarded[best]['speedup_vs_eager']:.2f}x",
    )
    if fulldisk:
        _target(
            "4096x4096 full disk peak RSS <= 2.5 GB",
            fulldisk["peak_rss_mib"] * 2**20 <= 2.5e9,
            f"{fulldisk['peak_rss_mib']:.0f} MiB",
        )
        _target(
            "full-disk tiling overhead <= 15 %",
            fulldisk["tiling_overhead"] <= 0.15,
            f"{fulldisk['tiling_overhead']:.1%}",
        )
    best_u = max((v for k, v in un.items() if k != "float32 eager" and v["guard_ok"]), key=lambda v: -v["time_s"])
    _target(
        "U-Net prediction >= 70 % of the measured conv peak",
        best_u["fraction_of_conv_peak"] >= 0.70,
        f"{best_u['fraction_of_conv_peak']:.0%} ({best_u['time_s']:.3f} s)",
    )
    fit = train[FIT_CONFIG]
    _target(
        "training FLOP rate within 1.5x of the inference FLOP rate",
        fit["vs_inference"] <= 1.5,
        f"{fit['vs_inference']:.2f}x (the step of Denoiser.fit); best setting "
        f"{min(v['vs_inference'] for v in train.values()):.2f}x",
    )
    for name, t in RESULT["targets"].items():
        print(f"  {'met    ' if t['met'] else 'NOT MET'}  {name}: {t['detail']}", flush=True)
    RESULT["environment"]["load_end"] = _load()
    RESULT["environment"]["wall_s"] = time.perf_counter() - t_start
    _row("\n  load average at end", _load())
    _row("total wall time", f"{time.perf_counter() - t_start:.0f} s")
    path = args.json or RESULTS / f"run-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(RESULT, indent=2, default=float))
    _row("results written to", str(path))
    if args.docs:
        docs = DOCS / f"run_{cpu['class'].lower()}.json"
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(json.dumps(RESULT, indent=2, default=float) + "\n")
        _row("for the docs", str(docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
