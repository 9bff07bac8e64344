#!/usr/bin/env python
"""
Exploratory (not a docs producer): which settings make the two networks fastest on a GPU, in one short run.

The first GPU check (``benchmarks/gpu.py`` on an NVIDIA H200) found the U-Net at 60 frames/s of 1024 x 1024 and
bfloat16 slower than float32: the optimised networks were tuned on CPUs. This script times the network's forward
pass alone (input already on the device, no tiling) for each combination of

- the network: eager (`~sunpy_nn.nn.UNet` / `~sunpy_nn.nn.EnhanceNet`), the optimised copy with its rewrites
  (``FastUNet`` / ``FastEnhance``) and, for the U-Net, the optimised copy without them (``levers=False``);
- precision float32 / bfloat16 (bfloat16 autocast for the eager network);
- memory layout: channels-first / channels-last;
- ``torch.backends.cudnn.benchmark`` off / on;

on a batch of whole frames (the U-Net: 1 and 4 frames of 1024 x 1024; Enhance: one 1024 x 1024 tile, its GPU
default), and then `run_tiled` end to end on one frame with its defaults, for the overhead outside the network.

Run from the repository root::

    python benchmarks/gpu_levers.py --json out.json      # on a CUDA machine, about a minute
    python benchmarks/gpu_levers.py --dry-run            # on the CPU at 64 x 64: checks the script only
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _run_inputs import _enhance_model, _median, _unet

from sunpy_nn.nn import EnhanceNet, FastEnhance, FastUNet, relative_error, run_tiled


def _variants(net: torch.nn.Module) -> dict:
    """name -> (module factory (dtype, channels_last) -> module, uses autocast)."""
    if isinstance(net, EnhanceNet):
        return {
            "eager": (lambda dtype, cl: net, True),
            "fast": (lambda dtype, cl: FastEnhance(net, body_dtype=dtype, tail_dtype=dtype, channels_last=cl), False),
        }
    return {
        "eager": (lambda dtype, cl: net, True),
        "fast": (lambda dtype, cl: FastUNet(net, dtype=dtype, channels_last=cl), False),
        "fast_no_levers": (lambda dtype, cl: FastUNet(net, dtype=dtype, channels_last=cl, levers=False), False),
    }


def _time_variant(mod, x, ref, dev, repeats: int, cl: bool, autocast: bool, dtype) -> dict:
    """One variant's median forward time, throughput and error against the eager float32 network."""
    if cl:
        mod, x = mod.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    amp = torch.autocast(dev.type, dtype=dtype) if autocast and dtype != torch.float32 else contextlib.nullcontext()

    def run():
        with torch.inference_mode(), amp:
            return mod(x)

    t, out = _median(run, dev, repeats, warmup=2)
    mpix = x.shape[0] * x.shape[-1] * x.shape[-2] / 1e6
    return {"ms": 1e3 * t, "mpix_s": mpix / t, "error": relative_error(out.float()[:, :1], ref)}


def time_forward(net, x: torch.Tensor, dev: torch.device, repeats: int) -> list[dict]:
    rows = []
    with torch.inference_mode():
        ref = net.to(dev)(x).float()[:, :1]  # the image (the random log-variance head spans a tiny range)
    combos = itertools.product(
        _variants(net).items(), (("float32", torch.float32), ("bfloat16", torch.bfloat16)), (False, True), (False, True)
    )
    for (name, (factory, autocast)), (precision, dtype), cl, bench in combos:
        torch.backends.cudnn.benchmark = bench
        row = {"net": name, "precision": precision, "channels_last": cl, "cudnn_benchmark": bench}
        try:
            row |= _time_variant(factory(dtype, cl).to(dev).eval(), x, ref, dev, repeats, cl, autocast, dtype)
            print(f"  {name:15s} {precision:8s} cl={cl!s:5s} bench={bench!s:5s} {row['ms']:8.2f} ms", flush=True)
        except Exception as err:  # a variant that fails is a finding, not the end of the run
            row["failed"] = f"{type(err).__name__}: {err}"[:300]
            print(f"  {name:15s} {precision:8s} cl={cl!s:5s} bench={bench!s:5s} {row['failed']}", flush=True)
        rows.append(row)
    torch.backends.cudnn.benchmark = False
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    dev = torch.device("cpu" if args.dry_run else "cuda")
    edge = 64 if args.dry_run else 1024
    repeats = 1 if args.dry_run else args.repeats
    res = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__}
    g = torch.Generator().manual_seed(0)
    unet = _unet().eval()
    enhance, _ = _enhance_model()
    start = time.perf_counter()
    for frames in (1, 4):
        print(f"U-Net, {frames} x {edge}^2 frames", flush=True)
        x = torch.randn(frames, 1, edge, edge, generator=g).to(dev)
        res[f"unet_{frames}"] = time_forward(unet, x, dev, repeats)
    print(f"Enhance, 1 x {edge}^2 tile", flush=True)
    x = (1 + 0.05 * torch.randn(1, 1, edge, edge, generator=g)).to(dev)
    res["enhance_1"] = time_forward(enhance, x, dev, repeats)
    img = np.random.default_rng(0).standard_normal((edge, edge)).astype(np.float32)
    for precision in ("float32", None):
        kw = {"halo": unet.receptive_radius, "align": unet.align, "device": dev, "precision": precision}
        run_tiled(unet.cpu(), img, progress=False, **kw)
        t, _ = _median(lambda kw=kw: run_tiled(unet, img, progress=False, **kw), dev, repeats)
        res[f"run_tiled_unet_{precision}"] = 1e3 * t
        print(f"run_tiled U-Net one frame, precision={precision}: {1e3 * t:.2f} ms", flush=True)
    res["wall_s"] = time.perf_counter() - start
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
