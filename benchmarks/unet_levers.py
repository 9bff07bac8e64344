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
- ``head as matmul``: the two 1-channel 3x3 convolutions on the input (U-Net and variance head) as a matrix product
  on the 9 shifted copies of the input (oneDNN runs 1-channel convolutions far below peak, and returns them NCHW);
- ``sub-pixel up``: "nearest x2 upsampling + 2x2 convolution" as one 2x2 convolution on the coarse grid with 4x the
  output channels, then a pixel shuffle (no upsampled copy, no padded copy);
- ``fused skip``: the convolution after each skip concatenation as two convolutions summed (split weights), so the
  concatenated copy is never made;
- ``all three``: head as matmul + sub-pixel up + fused skip;
- ``batch folding``: ``run_tiled`` with 4 tiles of 464 px in one batch;
- ``compile``: ``prepare_model(..., compile=True)`` (inductor; its compile time is printed);
- ``no heap reuse``: ``run_tiled`` as before issue #16 for a single tile, without ``runner._reuse_freed_memory``
  (glibc's mmap off while the network runs, so that freed activations are reused instead of faulted in page by
  page); ``run_tiled`` now uses it for one tile too.

``--network enhance`` times Enhance 400x400 (shipped weights) through ``current``, ``run_tiled`` and ``no heap
reuse``; ``--variants a,b`` keeps only those (``current`` always runs: it is the reference of the ratios).

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
from torch.nn import functional as F

from sunpy_nn.nn import (
    ACCURACY_BOUND,
    FastUNet,
    UNet,
    configure_threads,
    prepare_model,
    relative_error,
    run_tiled,
    runner,
)
from sunpy_nn.nn.unet import log_variance

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _head_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, mode: str) -> torch.Tensor:
    """ReLU(3x3 convolution of a 1-channel ``x``) as (9 shifted copies) @ (9 x C_out), channels-last output."""
    n, _, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect" if mode == "reflect" else "constant")[:, 0]
    shifts = torch.stack([xp[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], dim=-1)
    y = torch.relu_(torch.addmm(bias, shifts.reshape(-1, 9), weight.reshape(weight.shape[0], 9).t()))
    return y.reshape(n, h, w, -1).permute(0, 3, 1, 2)  # NHWC memory seen as NCHW: channels-last


def _subpixel_2x2(w: torch.Tensor) -> torch.Tensor:
    """The 2x2 kernel after nearest x2 upsampling as a 2x2 kernel on the coarse grid, C_out x 4 phases (a, b)."""
    k = torch.zeros(w.shape[0], 2, 2, w.shape[1], 2, 2, dtype=w.dtype)
    for a in (0, 1):
        for b in (0, 1):
            for ky in (0, 1):
                for kx in (0, 1):  # upsampled row 2i + a + ky is coarse row i + (a + ky) // 2
                    k[:, a, b, :, (a + ky) // 2, (b + kx) // 2] += w[:, :, ky, kx]
    return k.reshape(4 * w.shape[0], w.shape[1], 2, 2)  # channel 4c + 2a + b, as pixel_shuffle reads it


class LeverUNet(FastUNet):
    """`~sunpy_nn.nn.FastUNet` with the levers switched on one by one (image mode, no residual)."""

    def __init__(self, net: UNet, head: bool, subpixel: bool, fused: bool) -> None:
        super().__init__(net)
        self.head, self.subpixel, self.fused = head, subpixel, fused
        if subpixel:
            for conv in self.up:
                conv.weight = _subpixel_2x2(conv.weight).contiguous(memory_format=torch.channels_last)
                conv.bias = conv.bias.repeat_interleave(4)

    def _first(self, conv, x):
        if self.head and x.shape[1] == 1:
            return _head_matmul(x, conv.weight, conv.bias, self.padding)
        return torch.relu_(conv(x))

    def _up(self, conv, y):
        if not self.subpixel:
            return super()._up(conv, y)
        y = F.pad(y, (0, 1, 0, 1), mode="replicate" if self.padding == "reflect" else "constant")
        return F.pixel_shuffle(torch.relu_(conv(y)), 2)

    def _merge(self, merge, skip, up):
        if not self.fused:
            return self._chain(merge, torch.cat([skip, up], dim=1))
        c, n = merge[0], skip.shape[1]
        pad = (1, 1, 1, 1) if self.padding == "reflect" else None
        s, u = (F.pad(t, pad, mode="reflect") if pad else t for t in (skip, up))
        p = 0 if pad else 1
        y = F.conv2d(s, c.weight[:, :n], c.bias, padding=p).add_(F.conv2d(u, c.weight[:, n:], None, padding=p))
        return self._chain(merge[1:], torch.relu_(y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last).float()
        skips, y = [], x
        for block in self.down:
            y = self._chain(block[1:], self._first(block[0], y))
            skips.append(y)
            y = F.max_pool2d(y, 2)
        y = self._chain(self.bottom, y)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            y = self._merge(merge, skip, self._up(up, y))
        y = self.out(y).float()
        v = self._chain(self.var_body[1:], self._first(self.var_body[0], x))
        return torch.cat([y, log_variance(self.var_out(v), self.variance, self.log_var_offset)], 1).contiguous()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--network", choices=["unet", "enhance"], default="unet")
    parser.add_argument("--size", type=int, default=None, help="image edge (default 800 for the U-Net, 400 Enhance)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variant")
    parser.add_argument("--variants", default=None, help="comma-separated variants to keep (default: all)")
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
        keep, runner._reuse_freed_memory = runner._reuse_freed_memory, contextlib.nullcontext
        try:
            return run_tiled(net, img, **tiled)
        finally:
            runner._reuse_freed_memory = keep

    variants = {"current": prepare_model(net, precision="float32"), "run_tiled": lambda t: run_tiled(net, img, **tiled)}
    if args.network == "unet":
        variants |= {
            "NCHW": FastUNet(net, channels_last=False),
            "head as matmul": LeverUNet(net, True, False, False),
            "sub-pixel up": LeverUNet(net, False, True, False),
            "fused skip": LeverUNet(net, False, False, True),
            "all three": LeverUNet(net, True, True, True),
            "batch folding": lambda t: run_tiled(net, img, tile_size=464, batch_size=4, **tiled),
        }
        if not args.no_compile and (not args.variants or "compile" in args.variants):
            variants["compile"] = prepare_model(net, precision="float32", compile=True)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
