#!/usr/bin/env python
"""
The GPU check of issue #16, prepared to run once in the few minutes a GPU is lent: the CUDA tests, then the GPU
benchmark, in one command.

Run from the repository root::

    python benchmarks/gpu.py             # on a CUDA machine: the tests and the benchmark, a few minutes
    python benchmarks/gpu.py --docs      # also docs/_static/performance/gpu_<device>.json, for the guide's table
    python benchmarks/gpu.py --dry-run   # the same code on the CPU at small sizes: check it before GPU time is spent

It prints, in this order, and writes the same figures as JSON to ``benchmarks/results/gpu-<time>.json``:

0. the device: its name, memory, compute capability, the torch / CUDA / cuDNN versions, native bfloat16, and
   whether float32 convolutions and matrix products may use TF32 (torch's defaults: convolutions yes, matrix
   products no; TF32 rounds the inputs to 10 mantissa bits), which training follows, and whether the package's
   float32 inference may (no: it switches TF32 off, checked here on a probe network; the accuracy rows measure it);
1. the CUDA tests (``pytest -m cuda``): how many passed, failed and were skipped;
2. Enhance (shipped ``enhance_intensity`` weights) on a 4096 x 4096 full disk through ``run_tiled``, float32 and
   bfloat16: time, Mpix/s, peak GPU memory (``torch.cuda.max_memory_allocated``), and the error of each against
   float32 on the CPU over a 512 x 512 crop (as a fraction of the output range; the guard is 1e-3);
3. the denoiser's U-Net (the `~sunpy_nn.denoise.Denoiser` configuration, random weights) over a cube of 15
   wavelengths x 4 Stokes x 8 scans of 1024 x 1024 (480 frames), float32 and bfloat16: time, frames/s, peak GPU
   memory and the same accuracy check;
4. training throughput in patches/s, float32 and bfloat16 (``torch.autocast``): the Noise2Noise step of
   ``Denoiser.fit`` at the paper's batch (10 of 52 x 52; ``fit`` trains in batches of 5 by default) and the
   Enhance step of ``train_enhance`` (batch 32 of 50 x 50).

On a GPU machine without internet access, fetch the package's dependencies first with ``gpu_wheels.py`` (its
docstring gives the command for the GPU machine).

``--dry-run`` runs every part on the CPU with a 256 x 256 disk, a 2 x 4 x 1 x 128 x 128 cube and two training
steps of batch 2, and skips the CUDA tests: it checks the script, not the speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _run_inputs import _crisp_image, _enhance_model, _hmi_image, _median, _sync, _train_step_factory, _unet
from _run_report import _header, _row
from torch.nn import functional as F

import sunpy_nn
from sunpy_nn.nn import EnhanceNet, relative_error, run_tiled
from sunpy_nn.nn.prepared import _tf32_allowed
from sunpy_nn.training.enhance import PAPER_L2, _l2_penalty

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "_static" / "performance"
#: Full-disk edge, cube shape (wavelengths, Stokes, scans, edge), training steps per timing and the training batches
#: (Noise2Noise, Enhance) as (batch, patch), for each run kind.
SIZES = {
    "gpu": (4096, (15, 4, 8, 1024), 10, ((10, 52), (32, 50))),
    "dry-run": (256, (2, 4, 1, 128), 2, ((2, 52), (2, 50))),
    "tiny": (64, (1, 2, 1, 64), 1, ((1, 16), (1, 16))),  # the test of the script (bfloat16 is emulated on most CPUs)
}
PRECISIONS = ("float32", "bfloat16")


def _inference_tf32(dev: torch.device) -> bool:
    """Whether ``run_tiled``'s float32 forward pass ran with TF32 allowed (a probe records the switches)."""
    from sunpy_nn.nn import run_tiled

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(any(_tf32_allowed()))  # either of torch's settings, as a user may have set them
            return x

    run_tiled(Probe(), np.zeros((8, 8), np.float32), halo=0, device=dev, progress=False)
    return any(seen)


def device_info(dev: torch.device) -> dict:
    """What decides the figures: the device, the software, bfloat16 and TF32."""
    info = {
        "device": dev.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    info["tf32_convolutions"], info["tf32_matmul"] = _tf32_allowed()
    if dev.type == "cuda":
        info["inference_tf32"] = _inference_tf32(dev)
        props = torch.cuda.get_device_properties(dev)
        info |= {
            "name": props.name,
            "memory_gib": props.total_memory / 2**30,
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "bf16_native": torch.cuda.is_bf16_supported(),
        }
    else:
        info |= {"name": f"CPU ({platform.processor() or platform.machine()}), dry run", "bf16_native": None}
    for key, value in info.items():
        _row(key, str(value))
    return info


#: The test files that hold the CUDA tests: collecting only these keeps the run short and its imports few.
CUDA_TEST_FILES = ("tests/test_cuda.py", "tests/test_performance.py", "tests/test_runner.py")
TESTS_TIMEOUT_S = 240  # well inside one device command's 10 minutes, so that the benchmark still runs


def part_tests(dev: torch.device, run=subprocess.run) -> dict:
    """The CUDA tests, in a subprocess: their summary line's counts (``run``: for the script's own test)."""
    _header("1. CUDA tests (pytest -m cuda)")
    if dev.type != "cuda":
        _row("skipped", "no CUDA device (dry run)")
        return {"skipped_run": True}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-m", "cuda", *CUDA_TEST_FILES]
    try:
        proc = run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TESTS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _row("summary", f"timed out after {TESTS_TIMEOUT_S} s")
        return {"command": " ".join(cmd[1:]), "returncode": None, "summary": f"timed out after {TESTS_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    summary = (lines or [""])[-1]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    # pytest's -ra lines name each failure and its error: what the next GPU run has to fix
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    _row("summary", summary)
    for line in failures:
        _row("", line[:200])
    res = {"command": " ".join(cmd[1:]), "returncode": proc.returncode, "summary": summary, **counts}
    return res | {"failures": failures} if failures else res


def _peak_mib(dev: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None


def _reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def _accuracy(net, crop: np.ndarray, dev: torch.device, precision: str, **kw) -> list[float]:
    """
    Error of ``precision`` on ``dev`` against float32 on the CPU over one crop, per output channel, as a fraction of
    that channel's range (the accuracy guard's definition): Enhance's image; the U-Net's image and log-variance.
    """
    kw |= {"progress": False}
    ref = np.asarray(run_tiled(net, crop, device="cpu", precision="float32", **kw))
    out = np.asarray(run_tiled(net, crop, device=dev, precision=precision, **kw))
    ref, out = (a.reshape(-1, *a.shape[-2:])[None] for a in (ref, out))  # (1, C, H, W): one range per channel
    return [relative_error(torch.from_numpy(out[:, [c]]), torch.from_numpy(ref[:, [c]])) for c in range(ref.shape[1])]


def part_fulldisk(dev: torch.device, size: int, repeats: int) -> dict:
    _header(f"2. Enhance on a {size} x {size} full disk (run_tiled)")
    net, weights = _enhance_model()
    img, source = _hmi_image(512)
    img = np.pad(img, ((0, size - 512), (0, size - 512)), mode="symmetric") if size > 512 else img[:size, :size]
    halo = net.receptive_radius
    res = {"size": size, "data": source, "weights": weights}
    for precision in PRECISIONS:
        _reset_peak(dev)
        t, _ = _median(
            lambda p=precision: run_tiled(net, img, scale=2, halo=halo, device=dev, precision=p, progress=False),
            dev,
            repeats,
        )
        (error,) = _accuracy(net, img[:512, :512], dev, precision, scale=2, halo=halo)
        res[precision] = {"time_s": t, "mpix_s": size**2 / t / 1e6, "peak_mib": _peak_mib(dev), "error": error}
        _row(precision, f"{t:.2f} s, {size**2 / t / 1e6:.3g} Mpix/s, error {error:.1e} of range")
    return res


def part_cube(dev: torch.device, shape: tuple[int, int, int, int]) -> dict:
    n_w, n_s, n_t, edge = shape
    n_frames = n_w * n_s * n_t
    _header(f"3. The denoiser's U-Net over {n_w} x {n_s} x {n_t} x {edge}^2 ({n_frames} frames)")
    net = _unet().eval()
    base, source = _crisp_image(edge)
    if base.shape[0] < edge:  # the real CRISP image is 800 x 800: mirror it out to the cube's edge
        base = np.pad(base, ((0, edge - base.shape[0]), (0, edge - base.shape[1])), mode="symmetric")
        source += f", mirrored out to {edge} x {edge}"
    # Distinct frames without holding the cube twice: each frame is the image shifted by its index.
    frames = [np.roll(base, (3 * i) % edge, axis=1) for i in range(min(n_frames, 16))]
    halo = net.receptive_radius
    res = {"shape": list(shape), "frames": n_frames, "data": source, "weights": "random (the Denoiser's U-Net)"}
    res["frame_shape"] = list(frames[0].shape)
    for precision in PRECISIONS:
        kw = {"halo": halo, "align": net.align, "device": dev, "precision": precision, "progress": False}
        run_tiled(net, frames[0], **kw)  # warm-up: the prepared network is cached
        _reset_peak(dev)
        _sync(dev)
        t0 = time.perf_counter()
        for i in range(n_frames):
            run_tiled(net, frames[i % len(frames)], **kw)
        _sync(dev)
        t = time.perf_counter() - t0
        # the image's error is the guard's; the log-variance head of random weights spans a tiny range
        error, error_log_var = _accuracy(net, base[:512, :512], dev, precision, halo=halo, align=net.align)
        res[precision] = {"time_s": t, "frames_s": n_frames / t, "peak_mib": _peak_mib(dev), "error": error}
        res[precision]["error_log_variance"] = error_log_var
        _row(precision, f"{t:.2f} s, {n_frames / t:.1f} frames/s, error {error:.1e} of range")
    return res


def _enhance_step_factory(dev: torch.device, batch: int, patch: int):
    """The training step of ``train_enhance`` (MSE + L2, Adam) on random pairs of ``patch`` -> ``2 patch``."""
    torch.manual_seed(0)
    net = EnhanceNet().to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = (1.0 + 0.05 * torch.randn(batch, 1, patch, patch, generator=g)).to(dev)
    y = (1.0 + 0.05 * torch.randn(batch, 1, 2 * patch, 2 * patch, generator=g)).to(dev)

    def step():
        mse = F.mse_loss(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        (mse + PAPER_L2["intensity"] * _l2_penalty(net)).backward()
        opt.step()
        return mse.detach()

    return step


def part_training(dev: torch.device, steps: int, batches: tuple, repeats: int) -> dict:
    _header("4. Training throughput (patches/s), float32 and bfloat16 autocast")
    (b_n2n, p_n2n), (b_enh, p_enh) = batches
    cases = {  # as Denoiser.fit (channels-last, fused Adam) and train_enhance
        "noise2noise": (
            f"Noise2Noise, batch {b_n2n} of {p_n2n} x {p_n2n}",
            b_n2n,
            lambda: _train_step_factory(_unet(), dev, b_n2n, p_n2n, True, True),
        ),
        "enhance": (
            f"Enhance, batch {b_enh} of {p_enh} x {p_enh}",
            b_enh,
            lambda: _enhance_step_factory(dev, b_enh, p_enh),
        ),
    }
    res = {}
    for key, (label, batch, factory) in cases.items():
        res[key] = {"label": label}
        for precision in PRECISIONS:
            step = factory()
            dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32

            def run(step=step, dtype=dtype):
                amp = torch.autocast(dev.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
                with amp:
                    for _ in range(steps):
                        loss = step()
                return loss

            t, loss = _median(run, dev, repeats)
            res[key][precision] = {"patches_s": batch * steps / t, "loss_finite": bool(torch.isfinite(loss))}
            _row(f"{label}, {precision}", f"{batch * steps / t:.1f} patches/s")
    return res


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="on the CPU at small sizes, without the CUDA tests")
    parser.add_argument("--docs", action="store_true", help="also write docs/_static/performance/gpu_<device>.json")
    parser.add_argument("--tiny", action="store_true", help="with --dry-run: the smallest sizes (the script's test)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args(argv)
    if args.dry_run:
        dev = torch.device("cpu")
    elif torch.cuda.is_available():
        dev = torch.device("cuda")
    else:
        parser.error("torch sees no CUDA device: run with --dry-run to check the script on the CPU")
    if args.docs and args.dry_run:
        parser.error("--docs is for a GPU run; a dry run checks the script only")
    if args.tiny and not args.dry_run:
        parser.error("--tiny is for a dry run")
    size, cube, steps, batches = SIZES["tiny" if args.tiny else "dry-run" if args.dry_run else "gpu"]
    start = time.perf_counter()
    print(f"sunpy_nn GPU check (issue #16), sunpy_nn {sunpy_nn.__version__}")
    result = {"sunpy_nn_version": sunpy_nn.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
    result["dry_run"] = args.dry_run
    _header("0. Device")
    result["device"] = device_info(dev)
    out = args.json or ROOT / "benchmarks" / "results" / f"gpu-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = {
        "tests": lambda: part_tests(dev),
        "fulldisk": lambda: part_fulldisk(dev, size, args.repeats),
        "cube": lambda: part_cube(dev, cube),
        "training": lambda: part_training(dev, steps, batches, args.repeats),
    }
    for name, part in parts.items():
        # GPU time is short: a part that fails is recorded and the others still run; the file is written after
        # each part, so a run stopped at its time limit keeps what it measured.
        try:
            result[name] = part()
        except Exception as err:
            result.setdefault("failed", {})[name] = traceback.format_exc()
            _row(f"{name} FAILED", f"{type(err).__name__}: {err}")
        result["wall_s"] = time.perf_counter() - start
        out.write_text(json.dumps(result, indent=1) + "\n")
    _row("total wall time", f"{result['wall_s']:.0f} s")
    _row("results written to", str(out))
    if args.docs and "failed" not in result:
        name = re.sub(r"[^a-z0-9]+", "-", result["device"]["name"].lower()).strip("-")
        docs = DOCS / f"gpu_{name}.json"
        docs.write_text(json.dumps(result, indent=1) + "\n")
        _row("for the docs", str(docs))
    elif args.docs:
        _row("for the docs", f"not written: {sorted(result['failed'])} failed (see {out})")
    return result


if __name__ == "__main__":
    main()
