"""
Inputs and arithmetic of ``benchmarks/run.py`` (issue #15): the images (real data or synthetic stand-ins), the
networks, their FLOP counts, the full-disk tiling geometry, the timing helpers, the training step of
``Denoiser.fit`` and the cube of the PCA baseline.

Benchmark-only: ``run.py`` re-exports these names for ``threads.py`` and ``keras_originals.py``, which load it as
a module.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from sunpy_nn.nn import ACCURACY_BOUND, EnhanceNet, UNet, tile_windows
from sunpy_nn.nn.runner import _balanced_window, default_tile_size, optimized_tile_size

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ENHANCE_SIZE, UNET_SIZE = 400, 800
#: The training step of ``Denoiser.fit`` (``sunpy_nn.training.noise2noise``): channels-last with the fused Adam step.
FIT_CONFIG = "batch 10 of 52x52, channels-last, fused Adam (as in fit)"

#: The training settings timed: (label, batch, patch, channels-last, fused Adam); the paper: ten 52x52 patches a batch
TRAIN_CONFIGS = (
    ("batch 10 of 52x52, NCHW", 10, 52, False, False),
    ("batch 10 of 52x52, channels-last", 10, 52, True, False),
    (FIT_CONFIG, 10, 52, True, True),
    ("batch 10 of 128x128, channels-last, fused Adam", 10, 128, True, True),
)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, dev: torch.device) -> tuple[float, object]:
    """One timed call of ``fn`` (device synchronised): seconds and its result."""
    _sync(dev)
    t0 = time.perf_counter()
    out = fn()
    _sync(dev)
    return time.perf_counter() - t0, out


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


def _modes(compile_: bool, bf16: bool = True) -> list[tuple[str, dict]]:
    """The modes timed; ``bf16=False`` leaves out ``"bfloat16"`` (emulated where not native: slow and useless)."""
    modes = [("float32", {"precision": "float32"})]
    if compile_:
        modes.append(("float32 + compile", {"precision": "float32", "compile": True}))
    if bf16:
        modes.append(("bfloat16", {"precision": "bfloat16"}))
    return [*modes, ("auto", {"precision": "auto"})]


def _conv_probe(dev: torch.device, dtype: torch.dtype):
    """The peak convolution (64 -> 64, 3x3, channels-last, 400x400) as a callable, and its FLOPs."""
    layout = torch.channels_last
    x = torch.randn(1, 64, ENHANCE_SIZE, ENHANCE_SIZE, device=dev).to(dtype).contiguous(memory_format=layout)
    w = torch.randn(64, 64, 3, 3, device=dev).to(dtype).contiguous(memory_format=layout)
    return (lambda: F.conv2d(x, w, padding=1)), 2 * 64 * 64 * 9 * ENHANCE_SIZE**2


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


def pca_cube(n_w: int, size: int):
    """A random ``n_w`` x ``size`` x ``size`` spectral NDCube (CRISP-like WCS) for the ``pca_denoise`` baseline."""
    import astropy.units as u
    from astropy.wcs import WCS
    from ndcube import NDCube

    rng = np.random.default_rng(0)
    data = rng.standard_normal((n_w, size, size)).astype(np.float32) * 1e-3
    wcs = WCS(naxis=3)
    wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "WAVE"]
    wcs.wcs.cunit = ["arcsec", "arcsec", "nm"]
    wcs.wcs.cdelt = [0.059, 0.059, 0.01]
    wcs.wcs.crval = [0, 0, 854.2]
    wcs.wcs.crpix = [1, 1, 1]
    return NDCube(data, wcs=wcs, unit=u.dimensionless_unscaled)


def mode_figures(
    times: list[float],
    eager_times: list[float],
    peaks: list[float],
    npix: int,
    nominal_macs: float,
    executed_macs: float,
    *,
    error: float,
    precision: str,
    compiled: bool,
    setup_s: float,
) -> dict:
    """
    The figures of one mode of ``part_network`` from its per-round times.

    ``peaks`` are the conv peak's rates (GFLOP/s) in the same rounds, ``eager_times`` the float32 eager reference's
    times; the fraction of the peak and the speed-up are medians over rounds of per-round ratios.
    """
    t = statistics.median(times)
    fractions = [2 * executed_macs * npix / tr / 1e9 / pk for tr, pk in zip(times, peaks, strict=True)]
    return {
        "time_s": t,
        "times_s": times,
        "mpix_s": npix / t / 1e6,
        "gflops_nominal": 2 * nominal_macs * npix / t / 1e9,
        "gflops_executed": 2 * executed_macs * npix / t / 1e9,
        "fraction_of_conv_peak": statistics.median(fractions),
        "conv_peak_gflops_same_rounds": statistics.median(peaks),
        "error": error,
        "guard_ok": error <= ACCURACY_BOUND,
        "chosen_precision": precision,
        "compiled": compiled,
        "speedup_vs_eager": statistics.median([te / tm for te, tm in zip(eager_times, times, strict=True)]),
        "setup_s": setup_s,
    }
