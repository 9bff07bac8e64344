#!/usr/bin/env python
"""
The two original networks rebuilt in Keras, timed side by side with the package (issue #16).

Run from the repository root; tensorflow-cpu is a benchmark-only extra, never a dependency of sunpy_nn::

    pip install tensorflow-cpu                        # or: pip install -e '.[keras-bench]'
    python benchmarks/keras_originals.py              # 1 thread each, median of 5 alternating rounds
    python benchmarks/keras_originals.py --threads 2 --repeats 7
    python benchmarks/keras_originals.py --quick      # smoke run: small sizes, one round
    python benchmarks/keras_originals.py --docs       # also docs/_static/performance/keras_<cpu class>.json
    python benchmarks/keras_originals.py --isa avx2   # an AVX-512 CPU's AVX2 kernels (class "AVX2-capped")

Both networks are rebuilt in Keras 3 from the published layer tables: Enhance's "keepsize" network (Diaz Baso &
Asensio Ramos 2018, A&A 614, A5, its 1-pixel reflection padding before every 3x3 convolution) and the denoiser's
U-Net with its variance branch (Diaz Baso et al. 2019, A&A 629, A99, Tables B.1 and B.2, TensorFlow's zero "same"
padding). Both frameworks get the same weights: for the U-Net the original Keras file
(``../shared/data/denoise/keras_sst_bayes_weights.hdf5``, read for torch by `sunpy_nn.io.keras.load_keras_unet`),
for Enhance the package's shipped ``enhance_intensity`` weights (no original Keras Enhance file is in the data);
random weights where these are absent, as the output says. Before timing, the outputs of the two frameworks are
compared (max |diff| over the range of the Keras output, against the 1e-3 guard), and the Keras U-Net is checked
against the original network's saved prediction (``keras_prediction_bayes_simulation.npy``): both sides compute
the 2019 network.

Cases, each timed in alternating rounds (ours then Keras, then Keras then ours, ...) after a warm-up; the ratio is
the median over rounds of (our time / Keras time), so below 1 means the package is faster:

1. Enhance on a 400x400 HMI continuum image: `sunpy_nn.enhance.enhance_array` (the path ``enhance_map`` takes by
   default) against Keras ``predict_on_batch``; target of #16: ratio at most 0.5;
2. the denoiser's U-Net on an 800x800 CRISP image: ``run_tiled(precision="float32")`` against Keras; target: 0.7;
3. Noise2Noise training, batch 10 of 52x52 (the paper's): the step of `~sunpy_nn.training.train_noise2noise`
   (channels-last, fused Adam, L2 + aleatoric loss; the paper's network, dropout 0.01) against Keras
   ``train_on_batch`` with the same network, loss and Adam: patches/s;
4. Enhance training, batch 32 of 50x50 inputs (the paper's): the step of `~sunpy_nn.training.train_enhance` (MSE +
   1e-6 L2 on the kernels, channels-last, fused Adam) against Keras ``train_on_batch`` with
   ``kernel_regularizer=L2(1e-6)``: patches/s.

For the two inference cases the run also reports a roofline floor: the FLOPs (2 x multiply-adds) of every
convolution of the paper's network on the case's image (`conv_flops`: forward hooks on ``torch.nn.Conv2d`` of the
eager `~sunpy_nn.nn.EnhanceNet` or `~sunpy_nn.nn.UNet`, whole image, biases and element-wise operations not
counted: what Keras computes), divided by this CPU's measured float32 peak at the run's thread count (`measure_peak`:
the faster of a 2048 x 2048 matrix product and a 64 -> 64 3x3 channels-last convolution on 512 x 512, best of
several). ``floor_s`` is the least time in which any exact float32 direct-convolution implementation of the paper's
network could run at that peak, ``floor_ratio`` that time over Keras' time: a target of #16 below it needs fewer
multiply-adds or lower precision, not faster kernels. The JSON also records what the package's own path computes
(`module_flops`: the optimised module on the whole image, e.g. Enhance's sub-pixel up-convolution, with its own
floor; and the timed call itself, tiles and halos included) and the achieved GFLOP/s of both sides.

Both frameworks run on ``--threads`` threads (torch through `sunpy_nn.nn.configure_threads`; TensorFlow intra-op,
with one inter-op thread so that it never runs two operations at once). The CPU, its class (AVX2 or AVX-512, from
``benchmarks/run.py``: never compare figures across classes), the versions and the load average go into the JSON
(``--json PATH``, default ``benchmarks/results/keras-<time>.json``).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

# The package of this checkout, whether or not (or wherever else) sunpy_nn is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import sunpy_nn
from sunpy_nn.enhance import enhance_array
from sunpy_nn.nn import (
    ACCURACY_BOUND,
    EnhanceNet,
    UNet,
    configure_threads,
    keep_freed_memory,
    prepare_model,
    relative_error,
    run_tiled,
)
from sunpy_nn.training.enhance import _l2_penalty

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
#: Issue #16: our time at most this fraction of the Keras original's (None: report only).
TARGETS = {"enhance": 0.5, "unet": 0.7, "train_n2n": None, "train_enhance": None}
L2_CONTINUUM = 1e-6  # the paper's kernel regularisation for continuum images
PEAK_MM = 2048  # edge of the square float32 matrices whose product measures the peak
PEAK_CONV = (64, 512)  # channels and image edge of the 3x3 channels-last convolution that measures the peak
keras = None  # imported in main(), after the thread settings


def _bench_run():
    """benchmarks/run.py as a module: its CPU report (the one CPU-class detector), images and Enhance weights."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _import_keras(threads: int):
    global keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notes would bury the report
    try:
        import tensorflow as tf
    except ImportError:
        sys.exit("This benchmark needs TensorFlow: pip install tensorflow-cpu (the keras-bench extra)")
    # Before TensorFlow starts its thread pools; one inter-op thread: operations run one at a time, as in torch.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras as k

    keras = k
    return tf


# ----------------------------------------------------------------------------------------------- Keras rebuilds
def _reflect(t):
    return keras.ops.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")


def keras_enhance(depth: int = 5, n_filters: int = 64, l2: float = 0.0):
    """Enhance's keepsize network as the original code builds it; returns (model, convs, batch norms) in order."""
    L, convs, bns = keras.layers, [], []
    reg = keras.regularizers.L2(l2) if l2 else None

    def conv(x, n=n_filters, k=3, relu=False):
        if k == 3:
            x = L.Lambda(_reflect)(x)  # the original's ReflectionPadding2D
        convs.append(L.Conv2D(n, k, activation="relu" if relu else None, kernel_regularizer=reg))
        return convs[-1](x)

    def bn(x):
        bns.append(L.BatchNormalization(epsilon=1e-3, momentum=0.99))
        return bns[-1](x)

    inp = keras.Input((None, None, 1))
    x0 = x = conv(inp, relu=True)
    for _ in range(depth):
        y = L.Activation("relu")(bn(conv(x)))
        x = L.Add()([bn(conv(y)), x])
    x = L.Add()([bn(conv(x)), x0])
    x = conv(L.UpSampling2D()(x), relu=True)
    return keras.Model(inp, conv(x, 1, k=1)), convs, bns


def keras_unet(n_filters: int = 32, depth: int = 2, dropout: float = 0.0, log_var_offset: float = -12.0):
    """The denoiser's U-Net and variance branch (zero 'same' padding); outputs [denoised, log-variance]."""
    L, convs = keras.layers, []

    def conv(x, n, k=3, relu=True, drop=dropout):
        convs.append(L.Conv2D(n, k, padding="same", activation="relu" if relu else None))
        x = convs[-1](x)
        return L.Dropout(drop)(x) if drop else x

    f = [n_filters * 2**level for level in range(depth + 1)]
    inp = keras.Input((None, None, 1))
    x, skips = inp, []
    for level in range(depth):
        x = conv(conv(x, f[level], drop=dropout if level else 0.0), f[level])  # no dropout after the first layer
        skips.append(x)
        x = L.MaxPooling2D()(x)
    x = conv(conv(x, f[depth]), f[depth])
    for level in reversed(range(depth)):
        x = conv(L.UpSampling2D()(x), f[level], k=2)  # 2x2 up-convolution: 0 before, 1 after in TF's 'same'
        x = conv(conv(L.Concatenate()([skips[level], x]), f[level]), f[level])
    mean = conv(x, 1, k=1, relu=False, drop=0.0)
    v = inp
    for i in range(8):
        v = conv(v, n_filters, drop=dropout if i else 0.0)
    log_var = L.Lambda(lambda t: -keras.ops.abs(t) + log_var_offset)(conv(v, 1, k=1, relu=False, drop=0.0))
    return keras.Model(inp, L.Concatenate()([mean, log_var])), convs


def copy_weights(net: torch.nn.Module, convs: list, bns: list = ()) -> None:
    """Torch weights into the Keras layers, both in forward order: kernels (out, in, kh, kw) -> (kh, kw, in, out)."""
    if isinstance(net, UNet):
        sub = dict(net.named_modules())
        main, head = net.conv_names()
        tconvs = [sub[name] for name in main + head]
    else:
        tconvs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    tbns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for k, t in zip(convs, tconvs, strict=True):
        k.set_weights([t.weight.detach().permute(2, 3, 1, 0).numpy(), t.bias.detach().numpy()])
    for k, t in zip(bns, tbns, strict=True):
        k.set_weights([v.detach().numpy() for v in (t.weight, t.bias, t.running_mean, t.running_var)])


# -------------------------------------------------------------------------------------------------------- timing
def side_by_side(ours, theirs, repeats: int, warmup: int = 1, per_call: int = 1) -> dict:
    """Alternating rounds after a warm-up: median times per call (``per_call`` calls per timing) and ratio."""
    for _ in range(warmup):
        ours(), theirs()
    times: dict = {"ours": [], "keras": []}
    for r in range(repeats):
        order = [("ours", ours), ("keras", theirs)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            for _ in range(per_call):
                fn()
            times[name].append((time.perf_counter() - t0) / per_call)
    ratios = [a / b for a, b in zip(times["ours"], times["keras"], strict=True)]
    return {
        "ours_s": statistics.median(times["ours"]),
        "keras_s": statistics.median(times["keras"]),
        "ratio": statistics.median(ratios),
        "ours_times_s": times["ours"],
        "keras_times_s": times["keras"],
    }


def agreement(ours: np.ndarray, reference: np.ndarray) -> dict:
    """Max |ours - Keras| and the same over the Keras output's range (per channel, the worst), against the guard."""
    a, b = (torch.from_numpy(np.ascontiguousarray(v, np.float32)) for v in (ours, reference))
    rel = relative_error(a[None], b[None]) if a.ndim == 3 else relative_error(a, b)
    return {"max_abs_diff": float((a - b).abs().max()), "relative": rel, "guard_ok": rel <= ACCURACY_BOUND}


def _case(key: str, label: str, timing: dict, **extra) -> dict:
    target = TARGETS[key]
    met = None if target is None else timing["ratio"] <= target
    return {"label": label, **extra, **timing, "target": target, "met": met}


def _crisp_image(n: int) -> tuple[np.ndarray, str]:
    path = SHARED / "denoise" / "crisp_stokes_800.npy"
    if path.exists():  # in units of the continuum intensity, as the original network was trained
        return np.ascontiguousarray(np.load(path).astype(np.float32)[:n, :n]), f"real CRISP ({path.name})"
    rng = np.random.default_rng(1)
    return (2e-3 * rng.standard_normal((n, n))).astype(np.float32), "synthetic white noise (no ../shared/data)"


def _unet_weights() -> tuple[UNet, str]:
    path = SHARED / "denoise" / "keras_sst_bayes_weights.hdf5"
    if path.exists():
        from sunpy_nn.io.keras import load_keras_unet

        return load_keras_unet(path), f"the original Keras file {path.name}"
    torch.manual_seed(0)
    net = UNet(1, 1, 32, 2, padding="zeros", variance_head=True).eval()
    return net, "RANDOM weights (no ../shared/data: the original Keras file is absent)"


# ------------------------------------------------------------------------------------------------------ roofline
def conv_flops(net: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """
    FLOPs (2 x multiply-adds) of every `torch.nn.Conv2d` of ``net`` on an input of ``shape``, by forward hooks.

    Each convolution counts ``2 x output elements x in_channels / groups x kh x kw``; biases, activations and other
    element-wise operations are not counted. Runs a copy of ``net`` on the meta device (no arithmetic).

    Parameters
    ----------
    net : `torch.nn.Module`
        The network, run in ``eval()`` mode.
    shape : tuple of int
        Input shape ``(N, C, H, W)``.

    Returns
    -------
    int
        The FLOPs of one forward pass.
    """
    count = 0

    def hook(module, inputs, output):
        nonlocal count
        kh, kw = module.kernel_size
        count += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw

    meta = copy.deepcopy(net).to("meta").eval()
    for m in meta.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        meta(torch.empty(shape, device="meta"))
    return count


def _count_fused_operators() -> None:
    """
    Teach torch's FLOP counter oneDNN's fused operators, which the optimised networks call on the CPU (sunpy_nn 0.2:
    a convolution with its ReLU or addition, a matrix product with its bias and ReLU): 2 x multiply-adds, as for
    ``aten.convolution`` and ``aten.mm`` (the fused ReLU and addition are not counted, as the separate ones are not);
    and NNPACK's Winograd convolution, at Winograd's multiply-adds.
    """
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    def _conv(*args, out_shape=None, **kwargs) -> int:
        w = args[2] if isinstance(args[8], str) else args[1]  # the binary form has the other operand second
        return 2 * math.prod(out_shape) * math.prod(w[1:])

    def _linear(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * math.prod(x_shape) * w_shape[0]

    def _winograd(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        # NNPACK's Winograd convolution of 3x3 kernels, F(6x6, 3x3) (FastEnhance's body on AVX2 CPUs): 64
        # multiply-adds per 6 x 6 outputs and channel pair in its product stage (its transforms, a few per cent, not
        # counted), not the 324 of the direct convolution: the rate stays comparable with the direct convolution's
        return 2 * math.prod(out_shape) * w_shape[1] * 64 // 36

    # each operator on its own: one this torch lacks, or one it already counts, leaves the others to be taught
    for namespace, name, formula in (
        ("mkldnn", "_convolution_pointwise", _conv),
        ("mkldnn", "_linear_pointwise", _linear),
        ("aten", "_nnpack_spatial_convolution", _winograd),
    ):
        op = getattr(getattr(torch.ops, namespace), name, None)
        if op is not None and op not in flop_registry:
            register_flop_formula(op)(formula)


def module_flops(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs of the convolutions and matrix products ``module`` runs on ``shape`` (torch's counter, meta device)."""
    meta = copy.deepcopy(module).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(shape, device="meta"))
    return counter.get_total_flops()


def _best(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN's kernel selection, the first allocation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure_peak(repeats: int = 5) -> dict:
    """
    This CPU's float32 peak at torch's current thread count: a large matrix product and a large 3x3 convolution.

    Parameters
    ----------
    repeats : int
        Timings of each after a warm-up; the best is kept (the least disturbed by other processes).

    Returns
    -------
    dict
        ``mm_gflops`` and ``conv_gflops``; ``gflops``, the larger, and ``source`` (``"mm"`` or ``"conv"``), which
        it is; what each measured (``mm``, ``conv``), ``threads`` and ``repeats``.
    """
    g = torch.Generator().manual_seed(0)
    n = PEAK_MM
    a, b, c = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g), torch.empty(n, n)
    ch, edge = PEAK_CONV
    x = torch.randn(1, ch, edge, edge, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(ch, ch, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        mm = 2 * n**3 / _best(lambda: torch.mm(a, b, out=c), repeats) / 1e9
        conv = 2 * ch * ch * 9 * edge * edge / _best(lambda: F.conv2d(x, w, padding=1), repeats) / 1e9
    return {
        "gflops": max(mm, conv),
        "source": "mm" if mm >= conv else "conv",
        "mm_gflops": mm,
        "conv_gflops": conv,
        "mm": f"torch.mm {n} x {n} @ {n} x {n} float32",
        "conv": f"F.conv2d {ch} -> {ch} 3x3 on {edge} x {edge}, channels-last float32",
        "threads": torch.get_num_threads(),
        "repeats": repeats,
    }


def roofline(case: dict, peak: dict) -> dict:
    """
    The floor of a timed inference case at ``peak``: new keys for its JSON entry.

    Parameters
    ----------
    case : dict
        A case with ``gflop`` (the paper network's), ``gflop_optimised``, ``gflop_executed``, ``ours_s`` and
        ``keras_s``.
    peak : dict
        `measure_peak`'s result (``gflops`` and ``source``).

    Returns
    -------
    dict
        ``peak_gflops`` (the larger of ``peak`` and the rate either side achieved: no implementation beats the peak,
        so a faster side shows the peak was measured low), ``floor_s`` (``gflop`` at that rate), ``floor_ratio``
        (over Keras' time), ``floor_peak`` (which peak),
        ``ours_gflops`` and ``keras_gflops`` (``gflop`` over each side's time: the useful work rate),
        ``floor_optimised_s`` and ``floor_optimised_ratio`` (the same for the optimised module's FLOPs) and
        ``executed_gflops`` (the FLOPs the timed call ran over its time: how fast our kernels ran).
    """
    # No implementation can beat the peak: a side that ran faster than the measured peak shows the peak was measured
    # low (another process took the core for a moment), and its own rate is then the better estimate.
    rates = {
        peak["source"]: peak["gflops"],
        "Keras' own rate": case["gflop"] / case["keras_s"],
        "our own rate": case["gflop_executed"] / case["ours_s"],
    }
    source = max(rates, key=rates.get)
    p = rates[source]
    return {
        "peak_gflops": p,
        "floor_s": case["gflop"] / p,
        "floor_ratio": case["gflop"] / p / case["keras_s"],
        "floor_peak": source,
        "ours_gflops": case["gflop"] / case["ours_s"],
        "keras_gflops": case["gflop"] / case["keras_s"],
        "floor_optimised_s": case["gflop_optimised"] / p,
        "floor_optimised_ratio": case["gflop_optimised"] / p / case["keras_s"],
        "executed_gflops": case["gflop_executed"] / case["ours_s"],
    }


def _counted(net: torch.nn.Module, shape: tuple[int, ...], counter: FlopCounterMode, paper: str) -> dict:
    """
    The FLOP counts of a case (GFLOP): the paper network's, the optimised module's (both as direct convolutions),
    what our timed call ran (``counter``), and of that what ran as Winograd convolutions (fewer multiply-adds: the
    executed count may then fall below the optimised module's).
    """
    optimised = prepare_model(net, device="cpu", precision="float32").module
    winograd = sum(n for op, n in counter.get_flop_counts().get("Global", {}).items() if "nnpack" in str(op))
    executed = counter.get_total_flops()
    return {
        "gflop_winograd": winograd / 1e9,
        "gflop": conv_flops(net, shape) / 1e9,
        "gflop_network": f"{paper} (the paper's network, eager; convolutions only, whole image)",
        "gflop_optimised": module_flops(optimised, shape) / 1e9,
        "gflop_optimised_network": f"{type(optimised).__name__} (the package's optimised module, whole image)",
        "gflop_executed": executed / 1e9,
    }


# --------------------------------------------------------------------------------------------------------- cases
def golden_check(row) -> dict | None:
    """The Keras rebuild against the original network's saved output (the 2019 code's own prediction)."""
    w = SHARED / "denoise" / "keras_simulation_bayes_weights.hdf5"
    x_path, ref_path = (
        SHARED / "denoise" / "muram_stokesv_noisy_400.npy",
        w.with_name("keras_prediction_bayes_simulation.npy"),
    )
    if not (w.exists() and x_path.exists() and ref_path.exists()):
        row("golden check", "skipped: ../shared/data/denoise is absent")
        return None
    from sunpy_nn.io.keras import load_keras_unet

    model, convs = keras_unet()
    copy_weights(load_keras_unet(w), convs)
    out = model.predict_on_batch(np.load(x_path).astype(np.float32)[None, :, :, None])[0].transpose(2, 0, 1)
    ref = np.load(ref_path)[::-1, 0, :, :, 0]  # saved as [log-variance, denoised]
    res = agreement(out, ref)
    diff = f"max |diff| {res['max_abs_diff']:.1e} ({res['relative']:.1e} of range)"
    row("Keras rebuild vs the original's prediction", diff)
    return res


def case_enhance(bench, size: int, repeats: int, row) -> dict:
    img, source = bench._hmi_image(size)
    net, weights = bench._enhance_model()
    model, convs, bns = keras_enhance(net.depth, net.n_filters)
    copy_weights(net, convs, bns)
    x = img[None, :, :, None]
    _count_fused_operators()
    with FlopCounterMode(display=False) as counter:  # untimed: the call that checks agreement
        ours = enhance_array(img, net, progress=False)
    agree = agreement(ours, model.predict_on_batch(x)[0, :, :, 0])
    flops = _counted(net, (1, 1, size, size), counter, "EnhanceNet")
    timing = side_by_side(lambda: enhance_array(img, net, progress=False), lambda: model.predict_on_batch(x), repeats)
    row("Enhance: data / weights", f"{source} / {weights}")
    return _case("enhance", f"Enhance {size} x {size}", timing, kind="time", size=size, agreement=agree, **flops)


def case_unet(size: int, repeats: int, row) -> dict:
    img, source = _crisp_image(size)
    net, weights = _unet_weights()
    model, convs = keras_unet()
    copy_weights(net, convs)
    x = img[None, :, :, None]

    def ours():
        return run_tiled(net, img, halo=net.receptive_radius, align=net.align, precision="float32", progress=False)

    _count_fused_operators()
    with FlopCounterMode(display=False) as counter:  # untimed: the call that checks agreement
        out = ours()
    agree = agreement(out, model.predict_on_batch(x)[0].transpose(2, 0, 1))
    flops = _counted(net, (1, 1, size, size), counter, "UNet")
    timing = side_by_side(ours, lambda: model.predict_on_batch(x), repeats)
    row("U-Net: data / weights", f"{source} / {weights}")
    return _case("unet", f"U-Net {size} x {size}", timing, kind="time", size=size, agreement=agree, **flops)


def _batch(n: int, shape: tuple, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, *shape)).astype(np.float32)


def _training(key: str, label: str, ours, model, loss, x, y, steps: int, repeats: int) -> dict:
    """Our step against Keras ``train_on_batch`` (same loss, Adam 1e-4) on the same batch: patches/s."""
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    kx, ky = x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1)
    timing = side_by_side(ours, lambda: model.train_on_batch(kx, ky), repeats, warmup=2, per_call=steps)
    n, patch = x.shape[0], x.shape[-1]
    rates = {"ours_patches_s": n / timing["ours_s"], "keras_patches_s": n / timing["keras_s"]}
    label = f"{label}, batch {n} of {patch} x {patch}"
    return _case(key, label, timing, kind="throughput", batch=n, patch=patch, **rates)


def case_train_n2n(batch: int, patch: int, steps: int, repeats: int) -> dict:
    torch.manual_seed(0)
    net = UNet(1, 1, 32, 2, padding="zeros", variance_head=True, dropout=0.01)  # the paper's training network
    model, convs = keras_unet(dropout=0.01)
    copy_weights(net, convs)
    x = _batch(batch, (patch, patch), 0)
    y = x + 0.1 * _batch(batch, (patch, patch), 1)
    # As train_noise2noise: channels-last, fused Adam, one kept heap, L2 + the aleatoric loss with s^2 = s_net^2 + 1.
    net = net.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
    tx, ty = (torch.from_numpy(a).contiguous(memory_format=torch.channels_last) for a in (x, y))

    def ours():
        with keep_freed_memory():  # as train_noise2noise holds it over its steps
            out = net(tx)
            mean, log_var = out[:, :1], out[:, 1:]
            l_data = F.mse_loss(mean, ty)
            s2 = torch.exp(log_var) + 1.0
            l_var = (((mean.detach() - ty) ** 2) / (2 * s2) + 0.5 * torch.log(s2)).mean()
            opt.zero_grad(set_to_none=True)
            (l_data + l_var).backward()
            opt.step()
        return l_data.item()

    def n2n_loss(y_true, out):
        ops = keras.ops
        mean, log_var = out[..., :1], out[..., 1:]
        s2 = ops.exp(log_var) + 1.0
        l_var = ops.mean(ops.square(ops.stop_gradient(mean) - y_true) / (2 * s2) + 0.5 * ops.log(s2))
        return ops.mean(ops.square(mean - y_true)) + l_var

    return _training("train_n2n", "Noise2Noise training", ours, model, n2n_loss, x, y, steps, repeats)


def case_train_enhance(batch: int, patch: int, steps: int, repeats: int) -> dict:
    torch.manual_seed(0)
    net = EnhanceNet().train()
    model, convs, bns = keras_enhance(net.depth, net.n_filters, l2=L2_CONTINUUM)
    copy_weights(net, convs, bns)
    x = 1.0 + 0.05 * _batch(batch, (patch, patch), 2)
    y = 1.0 + 0.05 * _batch(batch, (2 * patch, 2 * patch), 3)
    # As train_enhance: channels-last, fused Adam, one kept heap.
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
    tx, ty = (torch.from_numpy(a).contiguous(memory_format=torch.channels_last) for a in (x, y))

    def ours():
        with keep_freed_memory():  # as train_enhance holds it over its steps
            mse = F.mse_loss(net(tx), ty)
            opt.zero_grad(set_to_none=True)
            (mse + L2_CONTINUUM * _l2_penalty(net)).backward()
            opt.step()
        return mse.item()

    return _training("train_enhance", "Enhance training", ours, model, "mse", x, y, steps, repeats)


# ---------------------------------------------------------------------------------------------------------- main
def _fmt(case: dict, side: str) -> str:
    if case["kind"] == "throughput":
        return f"{case[f'{side}_patches_s']:.1f} patches/s"
    return f"{case[f'{side}_s']:.3f} s"


def _report(row, case: dict) -> None:
    target = "report only" if case["target"] is None else f"target <= {case['target']}: "
    met = "" if case["met"] is None else ("met" if case["met"] else "NOT MET")
    agree = case.get("agreement")
    same = f"; outputs differ by {agree['relative']:.1e} of range" if agree else ""
    ours, theirs = _fmt(case, "ours"), _fmt(case, "keras")
    row(case["label"], f"ours {ours}, Keras {theirs}, ratio {case['ratio']:.2f} ({target}{met}){same}")
    if "floor_s" in case:
        row(
            "  roofline",
            f"{case['gflop']:.1f} GFLOP; peak {case['peak_gflops']:.0f} GFLOP/s ({case['floor_peak']}); "
            f"floor {case['floor_s']:.3g} s = {case['floor_ratio']:.2f} of Keras; "
            f"ours {case['ours_gflops']:.0f} GFLOP/s, Keras {case['keras_gflops']:.0f} GFLOP/s",
        )
        row(
            "  roofline, the package's path",
            f"optimised module {case['gflop_optimised']:.1f} GFLOP, floor {case['floor_optimised_ratio']:.2f} of "
            f"Keras; the timed call ran {case['gflop_executed']:.1f} GFLOP (tiles and halos included) at "
            f"{case['executed_gflops']:.0f} GFLOP/s",
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--threads", type=int, default=1, help="threads of both frameworks (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="alternating rounds per case (default 5)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes and batches, one round")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument("--docs", action="store_true", help="also write docs/_static/performance/keras_<class>.json")
    bench = _bench_run()
    bench.add_isa_option(parser)
    args = parser.parse_args(argv)
    bench.cap_isa(args.isa)  # before TensorFlow starts and any kernel runs
    if args.docs and args.quick:
        parser.error("--docs records full runs only, not --quick")
    repeats = args.repeats or (1 if args.quick else 5)
    enhance_size, unet_size = (96, 128) if args.quick else (400, 800)
    n2n, train_enh = ((10, 52, 1), (2, 50, 1)) if args.quick else ((10, 52, 5), (32, 50, 1))
    t_start = time.perf_counter()
    tf = _import_keras(args.threads)
    configure_threads(args.threads)
    row, header = bench._row, bench._header
    cpu = bench.cpu_info()
    result = {
        "sunpy_nn_version": sunpy_nn.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "threads": args.threads,
        "tensorflow_inter_op_threads": 1,
        "torch_version": torch.__version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "keras_jit_compile": False,  # Keras 3 on TensorFlow resolves jit_compile="auto" to False: no XLA
        "quick": args.quick,
        "repeats": repeats,
        "load_start": bench._load(),
        "cases": {},
    }
    header("The Keras originals side by side (issue #16)")
    bench.print_cpu(cpu)
    row("threads (torch / TensorFlow intra-op)", f"{args.threads} / {args.threads} (TF inter-op 1)")
    row("versions", f"sunpy_nn {sunpy_nn.__version__}, torch {torch.__version__}, TF {tf.__version__}")
    row("load average", result["load_start"])
    header("0. The Keras U-Net against the original network's saved prediction")
    result["golden"] = golden_check(row)
    cases = (
        ("enhance", lambda: case_enhance(bench, enhance_size, repeats, row)),
        ("unet", lambda: case_unet(unet_size, repeats, row)),
        ("train_n2n", lambda: case_train_n2n(*n2n, repeats)),
        ("train_enhance", lambda: case_train_enhance(*train_enh, repeats)),
    )
    header("The float32 peak of this CPU, for the roofline floors (best of several)")
    result["peak"] = peak = measure_peak(3 if args.quick else 5)
    row(
        "peak (the larger gives the floors)",
        f"mm {peak['mm_gflops']:.0f} GFLOP/s, 3x3 conv {peak['conv_gflops']:.0f} GFLOP/s ({peak['threads']} thread(s))",
    )
    header(f"1-4. Median of {repeats} alternating rounds, ratio = our time / Keras time")
    for key, run in cases:
        result["cases"][key] = case = run()
        if "gflop" in case:
            # Measured again right after the case (a shared machine's speed drifts): the best of all measurements
            again = measure_peak(3 if args.quick else 5)
            if again["gflops"] > peak["gflops"]:
                result["peak"] = peak = again
            case.update(roofline(case, peak))
        _report(row, case)
    result["load_end"] = bench._load()
    result["wall_s"] = time.perf_counter() - t_start
    row("load average at the end / wall time", f"{result['load_end']} / {result['wall_s']:.0f} s")
    path = args.json or RESULTS / f"keras-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    row("results", str(path))
    if args.docs:
        docs = ROOT / "docs" / "_static" / "performance" / f"keras_{cpu['class'].lower()}.json"
        docs.write_text(json.dumps(result, indent=2, default=float) + "\n")
        row("for the docs", str(docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
