#!/usr/bin/env python
"""
Performance of both networks against this machine's measured peak (issue #8).

Run from the repository root::

    python benchmarks/run.py            # everything, about 5-8 minutes on 2 idle CPU cores
    python benchmarks/run.py --quick    # no full disk, no torch.compile, fewer repeats: about 2 minutes
    python benchmarks/run.py --no-compile --full-size 2048
    python benchmarks/run.py --docs     # also the copy the performance guide's tables are made from
    python benchmarks/run.py --isa avx2 # an AVX-512 CPU's AVX2 kernels (CPU class "AVX2-capped")

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

and a summary of the targets of issue #8, each "met" or "NOT MET". Parts 2 and 4 run inside one
`~sunpy_nn.nn.keep_freed_memory` context, as the package's own calls do (``run_tiled``, ``Denoiser.predict``,
training, and consecutive calls through the linger), so that no mode pays for faulting its activations in afresh.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

# The package of this checkout, whether or not (or wherever else) sunpy_nn is installed; and this folder, for the
# _run_* helpers, also when another script loads this file as a module.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

# Re-exported: threads.py, dask_throughput.py, keras_originals.py and the tests use them as names of this module.
from _run_fulldisk import fulldisk_child as part_fulldisk_child
from _run_inputs import (
    ENHANCE_SIZE,
    FIT_CONFIG,
    TRAIN_CONFIGS,
    UNET_SIZE,
    _conv_probe,
    _crisp_image,
    _enhance_model,
    _hmi_image,
    _median,
    _modes,
    _timed,
    _train_step_factory,
    _unet,
    mode_figures,
    pca_cube,
    tiling_geometry,
    unet_macs_per_pixel,
)
from _run_report import (  # noqa: F401
    CPU_FLAGS,
    _header,
    _load,
    _row,
    add_isa_option,
    cap_isa,
    cpu_info,
    environment,
    make_parser,
    print_cpu,
    print_fulldisk,
    print_network_row,
    print_same_rounds,
    print_start,
    print_targets,
    print_training_row,
    targets,
)
from torch.nn import functional as F

from sunpy_nn.nn import (
    bf16_is_native,
    configure_threads,
    keep_freed_memory,
    prepare_model,
    relative_error,
    resolve_device,
)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "_static" / "performance"
RESULTS = ROOT / "benchmarks" / "results"
RESULT: dict = {}


# ------------------------------------------------------------------------------------------------------------ parts
def _precisions(bf16: bool) -> tuple[tuple[str, torch.dtype], ...]:
    return (("float32", torch.float32),) + ((("bfloat16", torch.bfloat16),) if bf16 else ())


def part_peak(dev: torch.device, repeats: int, bf16: bool = True) -> dict:
    _header("1. Measured peak of this machine (median of several runs)")
    peak = {}
    n = 2048
    for name, dtype in _precisions(bf16):
        a = torch.randn(n, n, device=dev).to(dtype)
        b = torch.randn(n, n, device=dev).to(dtype)
        t, _ = _median(lambda a=a, b=b: a @ b, dev, repeats)
        peak[f"matmul_{name}"] = 2 * n**3 / t / 1e9
        _row(f"matmul {n}^3, {name}", f"{peak[f'matmul_{name}']:.0f} GFLOP/s")
    s = ENHANCE_SIZE
    flops = 2 * 64 * 64 * 9 * s * s
    for name, dtype in _precisions(bf16):
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
    conv_peaks = (
        f"{peak['conv_float32']:.0f} / {peak['conv_bfloat16']:.0f} GFLOP/s"
        if bf16
        else (f"{peak['conv_float32']:.0f} GFLOP/s / bfloat16 not measured (not native)")
    )
    _row("=> measured conv peak float32 / bfloat16", conv_peaks)
    RESULT["peak_gflops"] = peak
    return peak


def part_network(
    label: str,
    net: torch.nn.Module,
    img: np.ndarray,
    nominal_macs: float,
    executed_macs: float,
    dev: torch.device,
    repeats: int,
    compile_: bool,
    bf16: bool = True,
) -> dict:
    """
    Time one network in every mode on one image (``bf16=False``: no bfloat16 mode); returns the per-mode results.

    The modes and the peak convolution run in turns (round-robin), ``repeats`` rounds: on a shared machine the
    load drifts, and each mode's fraction of the peak is the median over rounds of its rate against the peak
    convolution's rate in the same round.
    """
    x = torch.from_numpy(img)[None, None].to(dev)
    npix = img.size
    models: dict = {"float32 eager": net}
    setup: dict = {}
    for name, kw in _modes(compile_, bf16):
        t0 = time.perf_counter()
        models[name] = prepare_model(net, device=dev, example=x, **kw)
        with torch.inference_mode():
            models[name](x)  # the first call compiles
        setup[name] = time.perf_counter() - t0
    probes = {p: _conv_probe(dev, dtype) for p, dtype in _precisions(bf16)}
    times: dict = {name: [] for name in models}
    peak_rounds: dict = {p: [] for p in probes}
    outputs = {}

    # One kept heap over all rounds, as run_tiled, Denoiser.predict and consecutive calls (the linger) have: no mode
    # pays for faulting its activations in again at every call (issue #16).
    with torch.inference_mode(), keep_freed_memory():
        for name, model in models.items():
            outputs[name] = model(x)  # warm-up, and the outputs compared below
        for fn, _ in probes.values():
            fn()
        for _ in range(repeats):
            for p, (fn, flops) in probes.items():
                peak_rounds[p].append(flops / _timed(fn, dev)[0] / 1e9)
            for name, model in models.items():
                times[name].append(_timed(lambda model=model: model(x), dev)[0])
    ref = outputs["float32 eager"]
    res: dict = {}
    for name, model in models.items():
        precision = getattr(model, "precision", "float32")
        executed = nominal_macs if name == "float32 eager" else executed_macs
        res[name] = mode_figures(
            times[name],
            times["float32 eager"],
            peak_rounds[precision],
            npix,
            nominal_macs,
            executed,
            error=relative_error(outputs[name], ref),
            precision=precision,
            compiled=bool(getattr(model, "compiled", False)),
            setup_s=setup.get(name, 0.0),
        )
        print_network_row(name, res[name], dict(_modes(compile_, bf16)).get(name, {}))
    print_same_rounds(peak_rounds, setup)
    RESULT[label] = res
    return res


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
    print_fulldisk(r, size)
    RESULT["fulldisk"] = r
    return r


def part_training(dev: torch.device, repeats: int, infer, infer_flops: float) -> dict:
    """Training steps and one inference call (``infer``, ``infer_flops``) in turns, so that they share the load."""
    _header("4. Noise2Noise training throughput (the training step of Denoiser.fit)")
    macs = unet_macs_per_pixel(_unet())
    configs = TRAIN_CONFIGS
    steps = {c[0]: _train_step_factory(_unet(), dev, c[1], c[2], c[3], c[4]) for c in configs}
    for step in steps.values():
        step()  # warm-up
    with torch.inference_mode():
        infer()
    times: dict = {name: [] for name in steps}
    infer_rates = []
    with keep_freed_memory():  # as train_noise2noise holds it over its steps
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
        print_training_row(label, res[label])
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n_w = 13
        cube = pca_cube(n_w, UNET_SIZE)
        t_pca, _ = _median(lambda: pca_denoise(cube), torch.device("cpu"), max(1, repeats // 2))
    _row(f"pca_denoise {UNET_SIZE}x{UNET_SIZE}, {n_w} wavelengths", f"{t_pca:.3f} s")
    RESULT["baselines"] = {"richardson_lucy_s": t, "pca_denoise_s": t_pca}


# ------------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.split("\n\n")[0].strip())
    args = parser.parse_args(argv)
    cap_isa(args.isa)  # before any kernel runs
    configure_threads(args.threads)
    if args._fulldisk:
        part_fulldisk_child(args.full_size, args.tile_size)
        return 0

    dev = resolve_device(args.device)
    if args.docs and dev.type != "cpu":
        parser.error("--docs: the performance guide's tables are per CPU class; run it with --device cpu")
    repeats = args.repeats or (3 if args.quick else 5)
    compile_ = not (args.quick or args.no_compile)
    bf16 = args.bf16 == "yes" or (args.bf16 == "auto" and bf16_is_native(dev))
    t_start = time.perf_counter()
    cpu = cpu_info()
    print_start(cpu, dev)
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
        "bf16": bf16,  # False: bfloat16 not timed (not native here, or --bf16 no)
    }
    RESULT["environment"] = environment(cpu, dev, args)

    # The full disk goes first: a child inherits its parent's peak RSS as the floor of its own ru_maxrss.
    fulldisk = None
    if not (args.quick or args.no_fulldisk) and dev.type == "cpu":
        fulldisk = part_fulldisk(args.full_size, args.tile_size)

    part_peak(dev, repeats, bf16)

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
        "enhance", net, img, net.flops_per_pixel, FastEnhance(net).flops_per_pixel, dev, repeats, compile_, bf16
    )
    unet = _unet()
    img, source = _crisp_image(UNET_SIZE)
    macs = unet_macs_per_pixel(unet)
    _header(f"2b. Denoiser U-Net {UNET_SIZE}x{UNET_SIZE} (random weights; {source}), median of {repeats} runs")
    un = part_network("unet", unet, img, macs, macs, dev, repeats, compile_, bf16)

    fast_unet = prepare_model(unet, device=dev, precision="float32")
    x_unet = torch.from_numpy(img)[None, None].to(dev)
    train = part_training(dev, repeats, lambda: fast_unet(x_unet), 2 * macs * img.size)
    part_baselines(repeats)

    # ---------------------------------------------------------------------------------------- targets
    _header("Targets of issue #8")
    RESULT["targets"] = targets(enh, un, fulldisk, train, FIT_CONFIG)
    print_targets(RESULT)
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
