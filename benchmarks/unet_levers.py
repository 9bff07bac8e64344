#!/usr/bin/env python
"""
The U-Net speed levers of issue #16, each against the current optimised path in the same run.

Run from the repository root::

    python benchmarks/unet_levers.py                  # 800x800, 1 thread, 5 alternating rounds
    python benchmarks/unet_levers.py --threads 2 --no-compile --repeats 7

The denoiser's U-Net (the original Keras weights where ``../shared/data`` has them, else random; zero padding as in
the original) on an 800x800 CRISP image. Variants, built from the same weights:

- ``current``: `sunpy_nn.nn.prepare_model` float32 (`~sunpy_nn.nn.FastUNet`, channels-last), the reference of the
  ratios; ``run_tiled``: the same through ``run_tiled(precision="float32")`` (one tile at 800 px);
- ``NCHW``: `~sunpy_nn.nn.FastUNet` without channels-last;
- ``no levers``: `~sunpy_nn.nn.FastUNet` without the three rewrites it now makes by default (``levers=False``): the
  1-channel 3x3 convolutions on the input (U-Net and variance head) as a matrix product on the 9 shifted copies of
  the input; "nearest x2 upsampling + 2x2 convolution" as one 2x2 convolution on the coarse grid with 4x the
  output channels, then a pixel shuffle; the convolution after each skip concatenation as two convolutions summed;
- ``unfused``: `~sunpy_nn.nn.FastUNet` (or `~sunpy_nn.nn.FastEnhance`) with ``fuse=False``: each ReLU, residual
  addition and skip sum as its own pass over the output instead of inside oneDNN's convolution;
- ``batch folding``: ``run_tiled`` with 4 tiles of 464 px in one batch;
- ``compile``: ``prepare_model(..., compile=True)`` (inductor; its compile time is printed);
- ``no heap reuse``: ``run_tiled`` as before issue #16 for a single tile, without ``runner._reuse_freed_memory``
  (glibc's mmap off while the network runs, so that freed activations are reused instead of faulted in page by
  page) and with the memory kept by earlier calls released first; ``run_tiled`` now uses it for one tile too.

The other variants run as a user's consecutive calls do: the memory of one call is kept for the next (the linger,
``sunpy_nn.nn.heap.HEAP_LINGER_S``). ``--series N`` then times a series of N frames through ``run_tiled`` in
alternating rounds three ways: the memory released after each call (each call faults its pages in again, as before
the linger), consecutive calls (the linger) and all of them inside one `~sunpy_nn.nn.keep_freed_memory` context (as
`Denoiser.predict` holds it).

``--network enhance`` times Enhance 400x400 (shipped weights) through ``current``, ``run_tiled``, ``unfused`` and
``no heap reuse``; ``--variants a,b`` keeps only those (``current`` always runs: it is the reference of the ratios).

Every variant's error against the float32 eager network is printed against the 1e-3 guard; times are medians over
alternating rounds (the order rotates each round) and the ratio is the median of per-round ratios to ``current``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

# The package of this checkout, whether or not (or wherever else) sunpy_nn is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from sunpy_nn.nn import (
    ACCURACY_BOUND,
    FastEnhance,
    FastUNet,
    UNet,
    configure_threads,
    keep_freed_memory,
    prepare_model,
    relative_error,
    release_freed_memory,
    run_tiled,
    runner,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--network", choices=["unet", "enhance"], default="unet")
    parser.add_argument("--size", type=int, default=None, help="image edge (default 800 for the U-Net, 400 Enhance)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variant")
    parser.add_argument("--variants", default=None, help="comma-separated variants to keep (default: all)")
    parser.add_argument("--series", type=int, default=0, help="also time a series of this many frames")
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    args.size = args.size or (800 if args.network == "unet" else 400)
    if args.network == "enhance":
        from sunpy_nn.enhance import load_enhance_model

        net, weights = load_enhance_model(None, "intensity")[0].eval(), "shipped enhance_intensity"
        img = (1.0 + 0.04 * np.random.default_rng(0).standard_normal((args.size, args.size))).astype(np.float32)
        tiled = {"scale": 2, "halo": net.receptive_radius, "precision": "float32", "progress": False}
    elif (SHARED / "denoise" / "keras_sst_bayes_weights.hdf5").exists():
        from sunpy_nn.io.keras import load_keras_unet

        net, weights = load_keras_unet(SHARED / "denoise" / "keras_sst_bayes_weights.hdf5"), "original Keras weights"
        img = np.load(SHARED / "denoise" / "crisp_stokes_800.npy").astype(np.float32)[: args.size, : args.size]
    else:
        torch.manual_seed(0)
        net, weights = UNet(1, 1, 32, 2, padding="zeros", variance_head=True).eval(), "RANDOM weights"
        img = (2e-3 * np.random.default_rng(1).standard_normal((args.size, args.size))).astype(np.float32)
    x = torch.from_numpy(img)[None, None]
    if args.network == "unet":
        tiled = {"halo": net.receptive_radius, "align": net.align, "precision": "float32", "progress": False}

    def no_reuse(t):
        release_freed_memory()  # an earlier variant's linger would keep the heap for this one too
        keep, runner._reuse_freed_memory = runner._reuse_freed_memory, contextlib.nullcontext
        try:
            return run_tiled(net, img, **tiled)
        finally:
            runner._reuse_freed_memory = keep

    variants = {"current": prepare_model(net, precision="float32"), "run_tiled": lambda t: run_tiled(net, img, **tiled)}
    if args.network == "unet":
        variants |= {
            "NCHW": FastUNet(net, channels_last=False),
            "no levers": FastUNet(net, levers=False),
            "unfused": FastUNet(net, fuse=False),
            "batch folding": lambda t: run_tiled(net, img, tile_size=464, batch_size=4, **tiled),
        }
        if not args.no_compile and (not args.variants or "compile" in args.variants):
            variants["compile"] = prepare_model(net, precision="float32", compile=True)
    else:
        variants["unfused"] = FastEnhance(net, fuse=False)
    variants["no heap reuse"] = no_reuse
    if args.variants:
        keep = {"current", "run_tiled", *args.variants.split(",")}
        variants = {k: v for k, v in variants.items() if k in keep}
    print(f"{args.network} {args.size}x{args.size}, {weights}, {args.threads} thread(s), torch {torch.__version__}")
    errors, times = {}, {name: [] for name in variants}
    with torch.inference_mode():
        ref = net(x)
        for name, fn in variants.items():
            t0 = time.perf_counter()
            out = torch.as_tensor(fn(x)).reshape(ref.shape)  # the warm-up (and compilation), and the output
            errors[name] = relative_error(out, ref)
            print(f"  {name:<16s} first call {time.perf_counter() - t0:6.1f} s, error {errors[name]:.1e}", flush=True)
        names = list(variants)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order each round
                t0 = time.perf_counter()
                variants[name](x)
                times[name].append(time.perf_counter() - t0)
    print(f"median of {args.repeats} alternating rounds; ratio = time / time of 'current' in the same round")
    # (and the same against run_tiled, the baseline of "no heap reuse" and "batch folding")
    for name in variants:
        ratio = statistics.median(a / b for a, b in zip(times[name], times["current"], strict=True))
        guard = "within" if errors[name] <= ACCURACY_BOUND else "FAILS"
        rounds = ", ".join(f"{a / b:.2f}" for a, b in zip(times[name], times["current"], strict=True))
        vs_tiled = statistics.median(a / b for a, b in zip(times[name], times["run_tiled"], strict=True))
        print(
            f"  {name:<16s} {statistics.median(times[name]):7.3f} s  ratio {ratio:.2f} (rounds: {rounds}; "
            f"{vs_tiled:.2f} of run_tiled); "
            f"error {errors[name]:.1e}, {guard} the {ACCURACY_BOUND:g} guard",
            flush=True,
        )
    if args.series:
        _series(lambda: run_tiled(net, img, **tiled), args.series, args.repeats)
    return 0


def _series(call, n: int, repeats: int) -> None:
    """
    Per-frame time of ``n`` calls in alternating rounds: each call's memory released after it (as before the linger
    of `sunpy_nn.nn.heap.HEAP_LINGER_S`), consecutive calls as they come (the linger keeps it between them) and all
    inside one kept heap.
    """

    def released():
        for _ in range(n):
            call()
            release_freed_memory()

    def alone():
        release_freed_memory()
        for _ in range(n):
            call()

    def kept():
        with keep_freed_memory():
            for _ in range(n):
                call()

    times = {"released": [], "alone": [], "kept": []}
    with torch.inference_mode():
        for r in range(repeats):
            order = (("released", released), ("alone", alone), ("kept", kept))
            for name, fn in order[r % 3 :] + order[: r % 3]:
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) / n)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {k: statistics.median(a / b for a, b in zip(times[k], times["released"], strict=True)) for k in times}
    print(
        f"series of {n} frames, median of {repeats} alternating rounds: per frame {med['released']:.3f} s with the "
        f"memory released after each call, {med['alone']:.3f} s consecutive calls (the linger; ratio "
        f"{ratio['alone']:.2f}), {med['kept']:.3f} s in one kept heap (ratio {ratio['kept']:.2f})",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
