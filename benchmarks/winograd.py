#!/usr/bin/env python
"""
NNPACK's Winograd convolution against oneDNN's direct convolution (issue #16), exploratory: where it pays, and what
it gains in Enhance.

Run from the repository root::

    python benchmarks/winograd.py                 # this CPU's kernels, one thread
    python benchmarks/winograd.py --isa avx2      # an AVX-512 CPU running its AVX2 kernels (re-started capped)
    python benchmarks/winograd.py --threads 2 --repeats 9

Two parts, each in alternating rounds (medians; ratios are medians of per-round ratios):

- **layers**: one float32 3x3 convolution with zero padding, ``C`` to ``C`` channels, on a batch of ``N`` images of
  ``S x S`` pixels: ``torch._nnpack_spatial_convolution`` (NCHW) over ``torch.nn.functional.conv2d`` in
  channels-last (the optimised networks' layout). The settings ``_WINOGRAD_MIN_CHANNELS`` and ``_WINOGRAD_MIN_SIDE``
  of ``sunpy_nn/nn/_blocks.py``, and its one-image-at-a-time batches, come from this table.
- **enhance**: `~sunpy_nn.nn.FastEnhance` of the paper's network size (random weights, 64 filters) on a 400 x 400
  image, ``winograd=True`` over ``winograd=False``, the error of each against the float64 network, and the peak
  resident memory of one 624 px tile (the default tile) in a fresh process each way.

It prints the CPU model and ATen's kernel level, and writes nothing: the figures go to the changelog.
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import subprocess
import sys
import time

import torch
from _run_report import _cpu_model, add_isa_option, cap_isa
from torch.nn import functional as F


def _rounds(cases: dict, repeats: int) -> dict:
    """Seconds per call of each case, alternating, the order rotated each round."""
    names, times = list(cases), {n: [] for n in cases}
    for r in range(repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            cases[n]()
            times[n].append(time.perf_counter() - t0)
    return times


def _ratio(times: dict, a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


def layers(repeats: int) -> None:
    print("layer: channels, side px, batch | NNPACK / oneDNN (time)")
    g = torch.Generator().manual_seed(0)
    for c, sides in ((32, (64, 800)), (64, (32, 48, 64, 128, 256, 400)), (128, (200,))):
        for s in sides:
            for n in (1, 4) if s <= 256 else (1,):
                x = torch.randn(n, c, s, s, generator=g)
                w, b = torch.randn(c, c, 3, 3, generator=g) / (3 * c**0.5), torch.randn(c, generator=g)
                xl, wl = (t.contiguous(memory_format=torch.channels_last) for t in (x, w))
                reps = max(1, int(4e6 // (n * s * s)))  # small images: several calls per timing

                def nnpack(x=x, w=w, b=b, reps=reps):
                    for _ in range(reps):
                        torch._nnpack_spatial_convolution(x, w, b, [1, 1], [1, 1])

                def onednn(xl=xl, wl=wl, b=b, reps=reps):
                    for _ in range(reps):
                        F.conv2d(xl, wl, b, padding=1)

                t = _rounds({"nnpack": nnpack, "onednn": onednn}, repeats)
                print(f"  {c:4d} {s:5d} {n:3d} | {_ratio(t, 'nnpack', 'onednn'):.2f}")


def _enhance(seed: int = 0):
    from sunpy_nn.nn import EnhanceNet

    torch.manual_seed(seed)
    net = EnhanceNet().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return net


def enhance(repeats: int) -> None:
    from sunpy_nn.nn import FastEnhance

    net = _enhance()
    x = torch.rand(1, 1, 400, 400, generator=torch.Generator().manual_seed(1))
    nets = {"winograd": FastEnhance(net, winograd=True), "direct": FastEnhance(net, winograd=False)}
    with torch.inference_mode():
        ref = copy.deepcopy(net).double()(x.double())
        span = float(ref.max() - ref.min())
        for name, m in nets.items():
            print(f"enhance 400 px, {name}: error {float((m(x).double() - ref).abs().max()) / span:.1e} of the range")
        t = _rounds({n: (lambda m=m: m(x)) for n, m in nets.items()}, repeats)
    for n, v in t.items():
        print(f"enhance 400 px, {n}: {statistics.median(v):.3f} s")
    print(f"enhance 400 px: winograd / direct {_ratio(t, 'winograd', 'direct'):.2f} (median of per-round ratios)")


def _hwm_mib() -> float:
    """This process's peak resident memory: VmHWM on Linux (``ru_maxrss`` keeps the parent's peak at a fork)."""
    from enhance_speed import _vm_hwm_mib

    hwm = _vm_hwm_mib()
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def rss(name: str) -> None:
    """Peak resident memory of one default tile (624 px) of Enhance, in this fresh process."""
    from sunpy_nn.nn import FastEnhance

    m = FastEnhance(_enhance(), winograd=name == "winograd")
    x = torch.rand(1, 1, 624, 624)
    with torch.inference_mode():
        m(x[:, :, :64, :64])
        before = _hwm_mib()
        m(x)
    after = _hwm_mib()
    print(f"enhance 624 px tile, {name}: peak RSS {after:.0f} MiB ({after - before:.0f} MiB over the warm-up)")


def rss_both() -> None:
    """`rss` of each way, each in a fresh process."""
    for name in ("winograd", "direct"):
        cmd = [sys.executable, __file__, "--rss", name, "--threads", str(torch.get_num_threads())]
        print(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7, help="alternating rounds")
    p.add_argument("--parts", default="layers,enhance,rss", help="comma-separated: layers, enhance, rss")
    p.add_argument("--rss", help=argparse.SUPPRESS)  # the child process of the memory figure
    add_isa_option(p)
    args = p.parse_args()
    cap_isa(args.isa)
    torch.set_num_threads(args.threads)
    if not torch.backends.nnpack.is_available():  # also initialises NNPACK
        sys.exit("this torch build has no NNPACK")
    if args.rss:
        rss(args.rss)
        return
    print(f"{_cpu_model()}; ATen kernels {torch.backends.cpu.get_cpu_capability()}; {args.threads} thread(s)")
    parts = args.parts.split(",")
    if "layers" in parts:
        layers(args.repeats)
    if "enhance" in parts:
        enhance(args.repeats)
    if "rss" in parts:
        rss_both()


if __name__ == "__main__":
    main()
