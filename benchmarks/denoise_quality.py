#!/usr/bin/env python
"""
Quality benchmark of the Noise2Noise denoiser (`sunpy_nn.denoise_cube`, issue 4 "Quality bars").

Run from the repository root::

    python benchmarks/denoise_quality.py                  # full scale: 15 x 4 x 8 x 256 x 256, default settings
    python benchmarks/denoise_quality.py --quick          # 5 x 4 x 4 x 96 x 96, reduced training (~1 min)
    python benchmarks/denoise_quality.py --threads 2 --out DIR

It reads the reference data from ``../shared/data`` (relative to the project root; ``--data`` to change), prints
clearly labelled figures, and writes PNG figures and ``summary.json`` (every number) to
``benchmarks/results/denoise_quality/`` (git-ignored).

Parts:

a. **Synthetic CRISP-like cube** (array axes wavelength x Stokes x time x y x x, a 5-D FITS WCS, unit I/Ic): the
   MURaM quiet-Sun granulation (``muram_qs_continuum_1000.npy``, central crop, normalised to its mean) as the
   continuum; a line-of-sight field from `sunpy_nn.data.synthetic.synthetic_blos` (kG; plage and network); Fe I
   630.25 nm as a Gaussian absorption line with granular Doppler shifts; V from the weak-field approximation
   ``-C B_los dI/dlambda``; Q, U ``∝ -B_perp^2 (cos 2phi, sin 2phi) d^2I/dlambda^2`` from a smooth transverse field
   (a fraction of the smoothed |B| plus a weak granular horizontal field) with a smooth random azimuth. The
   amplitudes are set so that the strongest V (99.95th percentile over pixels of max |V| over wavelength) is 15
   times the noise and the strongest Q/U 8 times; most of the field of view is at the noise level, as in CRISP.
   The scans evolve: a random walk of 0.1-0.2 px sub-pixel shifts per scan (``scipy.ndimage.shift``) and a
   smooth +-3 % amplitude modulation of Q/U/V, so that Noise2Noise pairs differ in signal as real ones do.
b. **White noise** of 3e-3 Ic: `sunpy_nn.denoise_cube` with its default settings (image mode, Stokes Q/U/V,
   10 epochs of 1,000 patches of 52 px, aleatoric uncertainty; ``seed=0``), fit and predict timed separately.
   rms(denoised - truth), the std of the removed residual (input - output), `sunpy_nn.baselines.pca_denoise`, the
   calibration of the uncertainty (fractions of |denoised - truth| below 1 and 2 sigma), training patches/s,
   prediction Mpix/s and the CPU budget. The "total" uncertainty (MC dropout) is checked on 2 scans.
c. **Correlated noise**: the same truth, white noise convolved with a Gaussian of sigma 1 px and rescaled to
   3e-3 rms; the same figures.
d. **Real CRISP image** ``crisp_stokes_800.npy``: a 2-D NDCube (HPLN/HPLT), one scan, so `denoise_cube` trains
   on neighbour sub-sampling pairs; its noise is spatially correlated (MOMFBD), which that scheme only partly
   removes. Noise estimates before and after, power spectra of input, output and residual, image panels.

``--quick`` shrinks everything (the cube, the CRISP image to its central 256 x 256 px, and the training:
``epochs=3, patches_per_epoch=500, patch_size=32, lr=1e-3`` instead of the defaults, passed through
`denoise_cube` to `Denoiser.fit`), so its quality figures are indicative only and the CPU-budget bar is not
evaluated. The full run trains three default denoisers (10,000 patches each) and should take roughly 15-25
minutes on 2 CPU cores (an estimate from per-patch timings, not a measurement). Timings are wall-clock
(`time.perf_counter`) on whatever else the machine is doing: the load average is printed. The options
``--threads N`` (torch threads) and ``--mc-samples N`` (MC-dropout passes of the "total" check: default 10,
quick 3) and ``--progress`` (progress bars) complete the list.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import astropy.units as u
import matplotlib
import numpy as np
import torch
from astropy.wcs import WCS
from ndcube import NDCube
from scipy import ndimage

import sunpy_nn
from sunpy_nn import denoise_cube
from sunpy_nn.baselines import pca_denoise
from sunpy_nn.data.synthetic import random_field, synthetic_blos
from sunpy_nn.denoise import Denoiser, estimate_noise, find_axes
from sunpy_nn.metrics import azimuthal_power_spectrum, coverage
from sunpy_nn.nn import resolve_device
from sunpy_nn.report import jsonable
from sunpy_nn.validation import band_mean_power, mean_power_spectrum, rms

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "denoise_quality"

NOISE = 3e-3  # injected noise, I/Ic
MURAM_SCALE = 0.0662  # arcsec/pix of the MURaM snapshot (also the synthetic cube's pixel)
CRISP_SCALE = 0.059  # arcsec/pix assumed for the CRISP image (its file carries no WCS)
LAMBDA0 = 6302.4936  # Fe I line centre, Angstrom
LINE_SIGMA = 0.065  # Gaussian line width, Angstrom (FWHM ~0.15 A)
LINE_DEPTH = 0.65  # line depth relative to the local continuum
DOPPLER = 0.02  # Angstrom of blueshift per unit rms of granular contrast (~1 km/s), clipped at 3 rms
SPECTRAL_RANGE = 0.28  # wavelengths sampled over +-this, Angstrom
CADENCE = 28.0  # s between scans
V_PEAK, QU_PEAK = 15.0, 8.0  # strongest V and Q/U, in units of the noise
STOKES = ("Q", "U", "V")
FULL = {"n_wave": 15, "n_scans": 8, "size": 256, "crisp": 800}
QUICK = {"n_wave": 5, "n_scans": 4, "size": 96, "crisp": 256}
QUICK_FIT = {"epochs": 3, "patches_per_epoch": 500, "patch_size": 32, "lr": 1e-3}
CRISP_BANDS = ((0, 0.05), (0.05, 0.15), (0.15, 0.3), (0.3, 0.35), (0.35, 0.5))  # pix^-1
BUDGET_S = 600.0  # issue 4: the default denoise_cube on 15 x 3 x 8 x 256 x 256 within 10 minutes on 2 cores


# ---------------------------------------------------------------------------------------------------------- output
def _header(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def _row(label: str, value: str) -> None:
    print(f"  {label:<58s} {value}", flush=True)


def _bar(ok: bool, quick: bool) -> str:
    verdict = "PASS" if ok else "FAIL"
    return f"{verdict} (quick mode: indicative only)" if quick else verdict


def _save(fig, out: Path, name: str) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"  wrote {out / name}", flush=True)


# ----------------------------------------------------------------------------------------------- synthetic cube
def make_wcs(n_wave: int, step: float) -> WCS:
    """5-D FITS WCS of a cube with numpy axes (wavelength, stokes, time, y, x): FITS axes are the reverse."""
    w = WCS(naxis=5)
    w.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "UTC", "STOKES", "WAVE"]
    w.wcs.cunit = ["arcsec", "arcsec", "s", "", "nm"]
    w.wcs.cdelt = [MURAM_SCALE, MURAM_SCALE, CADENCE, 1, step / 10]
    w.wcs.crval = [0, 0, 0, 1, (LAMBDA0 - SPECTRAL_RANGE) / 10]
    w.wcs.crpix = [1, 1, 1, 1, 1]
    w.wcs.mjdref = [58595.0, 0.375]  # 2019-04-22T09:00 UTC: a time reference (else ERFA "dubious year" warnings)
    w.wcs.timesys = "UTC"
    return w


def build_truth(data: Path, n_wave: int, n_scans: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """
    The clean cube, canonical ``(time, stokes I/Q/U/V, wavelength, y, x)`` float32 in I/Ic, the wavelength offsets
    (Angstrom) and a description of the scene.
    """
    rng = np.random.default_rng(seed)
    muram = np.load(data / "enhance" / "muram_qs_continuum_1000.npy", mmap_mode="r")
    margin = 8  # room for the sub-pixel drift; cropped after shifting
    n = size + 2 * margin
    y0 = (muram.shape[0] - n) // 2
    x0 = (muram.shape[1] - n) // 2
    ic = np.array(muram[y0 : y0 + n, x0 : x0 + n], dtype=np.float64)
    ic /= ic.mean()
    blos = synthetic_blos(ic, MURAM_SCALE, seed=seed + 1).astype(np.float64)  # kG, network + 30 % plage
    contrast = (ic - 1) / ic.std()
    # Transverse field: a fraction of the smoothed |B| (inclined flux-tube canopies) plus a weak horizontal
    # internetwork field on granular scales; a smooth random azimuth.
    b_perp = 0.6 * ndimage.gaussian_filter(np.abs(blos), 1.5) + 0.15 * np.abs(
        random_field(ic.shape, MURAM_SCALE, 0.3, rng)
    )
    azimuth = np.pi * random_field(ic.shape, MURAM_SCALE, 1.5, rng)
    wl = np.linspace(-SPECTRAL_RANGE, SPECTRAL_RANGE, n_wave)  # Angstrom from line centre
    shift = -DOPPLER * np.clip(contrast, -3, 3)  # bright granules are blueshifted, dark lanes redshifted
    x = (wl[:, None, None] - shift[None]) / LINE_SIGMA
    g = np.exp(-0.5 * x**2)
    stokes_i = ic * (1 - LINE_DEPTH * g)
    d1 = ic * LINE_DEPTH * g * x / LINE_SIGMA  # dI/dlambda
    d2 = ic * LINE_DEPTH * g * (1 - x**2) / LINE_SIGMA**2  # d2I/dlambda2
    v = -blos * d1  # weak-field approximation, scaled below
    q = -(b_perp**2) * np.cos(2 * azimuth) * d2
    uu = -(b_perp**2) * np.sin(2 * azimuth) * d2
    inner = np.s_[:, margin:-margin, margin:-margin]
    v *= V_PEAK * NOISE / np.percentile(np.abs(v[inner]).max(axis=0), 99.95)
    qu_scale = QU_PEAK * NOISE / np.percentile(np.maximum(np.abs(q[inner]), np.abs(uu[inner])).max(axis=0), 99.95)
    q *= qu_scale
    uu *= qu_scale
    base = np.stack([stokes_i, q, uu, v])  # (4, W, n, n)

    # Time evolution: a random walk of 0.1-0.2 px steps, and a smooth +-3 % amplitude modulation of Q/U/V.
    f1 = random_field(ic.shape, MURAM_SCALE, 1.0, rng)
    f2 = random_field(ic.shape, MURAM_SCALE, 1.0, rng)
    truth = np.empty((n_scans, 4, n_wave, size, size), np.float32)
    offset = np.zeros(2)
    steps = []
    for t in range(n_scans):
        if t:
            step = rng.uniform(0.1, 0.2) * np.array([math.sin(a := rng.uniform(0, 2 * math.pi)), math.cos(a)])
            offset = offset + step
            steps.append(float(np.hypot(*step)))
        amp = 1 + 0.03 * (f1 * math.cos(0.5 * t) + f2 * math.sin(0.5 * t))
        for s in range(4):
            factor = 1.0 if s == 0 else (amp if s == 3 else amp**2)
            for w in range(n_wave):
                img = ndimage.shift(base[s, w] * factor, offset, order=3, mode="nearest")
                truth[t, s, w] = img[margin:-margin, margin:-margin]
    maxv = np.abs(truth[:, 3]).max(axis=1)
    maxqu = np.maximum(np.abs(truth[:, 1]), np.abs(truth[:, 2])).max(axis=1)
    scene = {
        "shape_canonical": list(truth.shape),
        "wavelength_offsets_A": wl.tolist(),
        "blos_kG_max": float(np.abs(blos).max()),
        "blos_kG_rms": float(blos.std()),
        "v_max_over_noise": float(np.abs(truth[:, 3]).max() / NOISE),
        "qu_max_over_noise": float(max(np.abs(truth[:, 1]).max(), np.abs(truth[:, 2]).max()) / NOISE),
        "fraction_pixels_max_abs_v_above_1_sigma": float((maxv > NOISE).mean()),
        "fraction_pixels_max_abs_v_above_3_sigma": float((maxv > 3 * NOISE).mean()),
        "fraction_pixels_max_abs_qu_above_1_sigma": float((maxqu > NOISE).mean()),
        "drift_step_px_mean": float(np.mean(steps)) if steps else 0.0,
        "drift_total_px": float(np.hypot(*offset)),
    }
    return truth, wl, scene


def make_cube(truth: np.ndarray, wl: np.ndarray, noise: np.ndarray) -> NDCube:
    """An NDCube with numpy axes (wavelength, stokes, time, y, x) from canonical truth + noise."""
    data = np.transpose(truth + noise, (2, 1, 0, 3, 4)).astype(np.float32)
    step = float(wl[1] - wl[0]) if len(wl) > 1 else 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NDCube(
            data,
            wcs=make_wcs(len(wl), step),
            unit=u.dimensionless_unscaled,
            meta={"OBSERVER": "synthetic CRISP-like", "BUNIT": "I/Ic"},
        )


def white_noise(shape, rng) -> np.ndarray:
    return rng.normal(0, NOISE, shape).astype(np.float32)


def correlated_noise(shape, rng, sigma_px: float = 1.0) -> np.ndarray:
    """White noise convolved with a Gaussian of ``sigma_px`` in y and x only, rescaled to ``NOISE`` rms."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), (0, 0, 0, sigma_px, sigma_px), mode="wrap")
    return (n * (NOISE / n.std())).astype(np.float32)


# ----------------------------------------------------------------------------------------------------- running
class TimedDenoiser:
    """
    Time `Denoiser.fit` inside `denoise_cube`, keep the trained denoiser, and optionally override fit settings
    (``--quick``). The prediction time is the rest of `denoise_cube`'s time: it no longer goes through the public
    `Denoiser.predict` (it reuses the noise levels `fit` estimated), so that method cannot be timed.
    """

    def __init__(self, fit_overrides: dict | None = None) -> None:
        self.fit_overrides = dict(fit_overrides or {})
        self.fit_time = self.predict_time = 0.0
        self.denoiser: Denoiser | None = None
        self.fit_kwargs: dict = {}

    def __enter__(self):
        self._fit = Denoiser.fit
        rec = self

        def fit(den, cube, **kwargs):
            kwargs.update(rec.fit_overrides)
            rec.fit_kwargs = dict(kwargs)
            t0 = time.perf_counter()
            result = rec._fit(den, cube, **kwargs)
            rec.fit_time += time.perf_counter() - t0
            rec.denoiser = den
            return result

        Denoiser.fit = fit
        return self

    def __exit__(self, *exc):
        Denoiser.fit = self._fit
        return False


def run_denoise_cube(cube: NDCube, quick: bool, progress: bool) -> tuple[NDCube, TimedDenoiser, float]:
    with TimedDenoiser(QUICK_FIT if quick else None) as rec:
        t0 = time.perf_counter()
        out = denoise_cube(cube, seed=0, progress=progress)
        total = time.perf_counter() - t0
    rec.predict_time = total - rec.fit_time
    return out, rec, total


def canonical(cube: NDCube, array=None) -> np.ndarray:
    return find_axes(cube).to_canonical(np.asarray(cube.data if array is None else array, dtype=np.float64))


# ----------------------------------------------------------------------------------------------------- figures
def _extent(n: int, scale: float):
    return [0, n * scale, 0, n * scale]


def fig_stokes_v(out: Path, name: str, title: str, truth, noisy, den, pca, sig, w: int, wl) -> None:
    import matplotlib.pyplot as plt

    t = 0
    panels = [
        ("truth", truth[t, 3, w]),
        ("noisy input", noisy[t, 3, w]),
        ("Noise2Noise", den[t, 3, w]),
        ("PCA baseline", pca[t, 3, w]),
    ]
    vmax = max(np.abs(truth[t, 3, w]).max(), 3 * NOISE)
    ext = _extent(truth.shape[-1], MURAM_SCALE)
    fig, axs = plt.subplots(1, 6, figsize=(24, 4.2), constrained_layout=True)
    for ax, (label, img) in zip(axs[:4], panels, strict=True):
        im = ax.imshow(img, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=ext)
        ax.set_title(label)
    fig.colorbar(im, ax=axs[:4], shrink=0.85, label="Stokes V / $I_c$")
    err = den[t, 3, w] - truth[t, 3, w]
    im = axs[4].imshow(err, origin="lower", cmap="RdBu_r", vmin=-3 * NOISE, vmax=3 * NOISE, extent=ext)
    axs[4].set_title(f"N2N - truth (rms {rms(err):.1e})")
    fig.colorbar(im, ax=axs[4], shrink=0.85, label="error / $I_c$ (scale $\\pm$3 noise)")
    im = axs[5].imshow(sig[t, 3, w], origin="lower", cmap="viridis", extent=ext)
    axs[5].set_title("N2N uncertainty $\\sigma$ (aleatoric)")
    fig.colorbar(im, ax=axs[5], shrink=0.85, label="$\\sigma$ / $I_c$")
    for ax in axs:
        ax.set_xlabel("x (arcsec)")
    axs[0].set_ylabel("y (arcsec)")
    fig.suptitle(
        f"{title}: Stokes V at $\\Delta\\lambda$ = {wl[w] * 1000:+.0f} m$\\AA$, scan 0 (noise {NOISE:g} $I_c$)"
    )
    _save(fig, out, name)


def pick_pixels(truth) -> list[tuple[str, int, int]]:
    """Strongest V, strongest Q/U, and a weak-V pixel (max |V| about 3 sigma), in scan 0."""
    maxv = np.abs(truth[0, 3]).max(axis=0)
    maxqu = np.maximum(np.abs(truth[0, 1]), np.abs(truth[0, 2])).max(axis=0)
    strong = np.unravel_index(np.argmax(maxv), maxv.shape)
    qu = np.unravel_index(np.argmax(maxqu), maxqu.shape)
    weak = np.unravel_index(np.argmin(np.abs(maxv - 3 * NOISE)), maxv.shape)
    return [("strongest V", *strong), ("strongest Q/U", *qu), ("weak V (~3 sigma)", *weak)]


def fig_profiles(out: Path, name: str, title: str, truth, noisy, den, pca, sig, wl) -> None:
    import matplotlib.pyplot as plt

    pixels = pick_pixels(truth)
    dl = wl * 1000  # mÅ
    fig, axs = plt.subplots(len(pixels), 3, figsize=(14, 3.2 * len(pixels)), constrained_layout=True, squeeze=False)
    for row, (label, y, x) in enumerate(pixels):
        for col, s in enumerate((1, 2, 3)):
            ax = axs[row, col]
            tr, dn, sg = truth[0, s, :, y, x], den[0, s, :, y, x], sig[0, s, :, y, x]
            ax.plot(dl, noisy[0, s, :, y, x], "o", color="0.6", ms=4, label="noisy input")
            ax.plot(dl, tr, "k-", lw=2, label="truth")
            ax.fill_between(dl, dn - sg, dn + sg, color="C0", alpha=0.3, label="N2N $\\pm 1\\sigma$")
            ax.plot(dl, dn, "C0-", label="Noise2Noise")
            ax.plot(dl, pca[0, s, :, y, x], "C1--", label="PCA")
            ax.axhline(0, color="0.8", lw=0.5)
            ax.set_title(f"{label} (x={x}, y={y} px): Stokes {'IQUV'[s]}")
            ax.set_xlabel("$\\Delta\\lambda$ (m$\\AA$ from 630.25 nm)")
            ax.set_ylabel(f"Stokes {'IQUV'[s]} / $I_c$")
    axs[0, 0].legend(fontsize=8)
    fig.suptitle(f"{title}: profiles in scan 0, uncertainty band = returned aleatoric $\\sigma$")
    _save(fig, out, name)


def fig_power_synthetic(out: Path, name: str, title: str, truth, noisy, den, pca, w: int) -> dict:
    import matplotlib.pyplot as plt

    sel = np.s_[:, 3, w]
    curves = {
        "truth": truth[sel],
        "noisy input": noisy[sel],
        "Noise2Noise": den[sel],
        "PCA": pca[sel],
        "removed residual (input - N2N)": noisy[sel] - den[sel],
        "injected noise (input - truth)": noisy[sel] - truth[sel],
        "N2N error (N2N - truth)": den[sel] - truth[sel],
    }
    styles = [("k", "-"), ("0.6", "-"), ("C0", "-"), ("C1", "--"), ("C2", "-"), ("C3", ":"), ("C4", "-")]
    fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
    result = {}
    for (label, frames), (color, ls) in zip(curves.items(), styles, strict=True):
        f, p = mean_power_spectrum(frames)
        result[label] = p.tolist()
        ax.loglog(f / MURAM_SCALE, p, color=color, ls=ls, label=label)
    result["freq_per_arcsec"] = (f / MURAM_SCALE).tolist()
    _plain_log_ticks(ax)
    ax.set_xlabel("spatial frequency (arcsec$^{-1}$)")
    ax.set_ylabel("azimuthal power ($(I/I_c)^2$, mean of the 2-D spectrum = variance)")
    ax.set_title(f"{title}: Stokes V power spectra, all scans")
    ax.legend(fontsize=8)
    _save(fig, out, name)
    return result


def _plain_log_ticks(ax) -> None:
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())


def fig_calibration(out: Path, name: str, z_sets: dict) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    bins = np.linspace(-5, 5, 101)
    for label, z in z_sets.items():
        ax.hist(np.clip(z, -5, 5), bins=bins, density=True, histtype="step", label=label)
    xx = np.linspace(-5, 5, 400)
    ax.plot(xx, np.exp(-0.5 * xx**2) / math.sqrt(2 * math.pi), "k--", label="N(0, 1): calibrated")
    ax.set_xlabel("(denoised - truth) / returned $\\sigma$ (dimensionless)")
    ax.set_ylabel("probability density")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1)
    ax.set_title("Calibration of the uncertainty, Stokes Q/U/V")
    ax.legend(fontsize=8)
    _save(fig, out, name)


# ------------------------------------------------------------------------------------------------ synthetic part
def evaluate_synthetic(label: str, cube: NDCube, truth: np.ndarray, args, out: Path) -> tuple[dict, dict]:
    """Parts b and c: denoise_cube, PCA, figures and calibration on one noisy cube."""
    quick = args.quick
    _row("input cube shape (wavelength, stokes, time, y, x)", str(cube.data.shape))
    _row("axes found from the WCS", str(find_axes(cube)))
    noisy = canonical(cube)
    for i, s in enumerate(("I", *STOKES)):
        _row(f"estimate_noise, Stokes {s} (temporal differences)", f"{estimate_noise(noisy[:, i]):.3e} (injected 3e-3)")
    if quick:
        _row("fit settings", f"QUICK: {QUICK_FIT} passed to Denoiser.fit (not the defaults)")
    else:
        _row("fit settings", "denoise_cube defaults (10 epochs x 1000 patches of 52 px, lr 1e-4), seed=0")

    out_cube, rec, total = run_denoise_cube(cube, quick, args.progress)
    den_model = rec.denoiser
    den = canonical(out_cube)
    sig = canonical(out_cube, out_cube.uncertainty.array)
    fs = den_model.fit_settings
    patches = fs["epochs"] * math.ceil(fs["patches_per_epoch"] / fs["batch_size"]) * fs["batch_size"]
    n_t, _, n_w, ny, nx = den.shape
    pixels = n_t * len(STOKES) * n_w * ny * nx
    t_pca = time.perf_counter()
    pca_cube = pca_denoise(cube)
    t_pca = time.perf_counter() - t_pca
    pca = canonical(pca_cube)
    components = list(pca_cube.meta["sunpy_nn"]["pca_components"].values())

    _row("Denoiser noise levels (stored with the model)", ", ".join(f"{k} {v:.3e}" for k, v in den_model.noise.items()))
    _row("training pairs", fs["pairs"])
    _row("train loss per epoch (noise units^2)", ", ".join(f"{v:.3f}" for v in den_model.history["train_loss"]))
    _row("validation loss per epoch", ", ".join(f"{v:.3f}" for v in den_model.history["val_loss"]) or "none")
    _row("fit time (s)", f"{rec.fit_time:.1f}")
    _row("predict time (s), aleatoric uncertainty", f"{rec.predict_time:.1f}")
    _row("denoise_cube total (s)", f"{total:.1f}")
    _row(
        "training throughput (patches/s)", f"{patches / rec.fit_time:.1f} ({patches} patches of {fs['patch_size']} px)"
    )
    _row("prediction throughput (Mpix/s, input pixels)", f"{pixels / 1e6 / rec.predict_time:.3f} ({pixels} px)")
    _row("PCA baseline time (s), components kept (min-max)", f"{t_pca:.1f}, {min(components)}-{max(components)}")

    res: dict = {
        "fit_settings": fs,
        "noise_levels": den_model.noise,
        "history": den_model.history,
        "fit_time_s": rec.fit_time,
        "predict_time_s": rec.predict_time,
        "denoise_cube_time_s": total,
        "training_patches_per_s": patches / rec.fit_time,
        "prediction_mpix_per_s": pixels / 1e6 / rec.predict_time,
        "pca_time_s": t_pca,
        "pca_components_kept": pca_cube.meta["sunpy_nn"]["pca_components"],
        "stokes": {},
    }
    if not quick:
        budget_ok = total <= BUDGET_S
        _row(
            f"CPU budget: denoise_cube <= {BUDGET_S:.0f} s on 2 cores",
            f"{total:.0f} s with {torch.get_num_threads()} threads: {_bar(budget_ok, False)}",
        )
        res["cpu_budget_pass"] = budget_ok

    print()
    print(
        f"  {'Stokes':<7s}{'rms in':>10s}{'rms N2N':>10s}{'x better':>9s}{'rms PCA':>10s}{'resid std':>11s}"
        f"{'/noise':>8s}{'strong N2N':>11s}{'strong PCA':>11s}{'<1 sig':>8s}{'<2 sig':>8s}{'med sig':>10s}"
    )
    z_all = []
    for s in (1, 2, 3):
        name = "IQUV"[s]
        err_in = noisy[:, s] - truth[:, s]
        err = den[:, s] - truth[:, s]
        err_pca = pca[:, s] - truth[:, s]
        resid = noisy[:, s] - den[:, s]
        strong = np.abs(truth[:, s]) > 3 * NOISE
        z_all.append((err / sig[:, s]).ravel())
        within = coverage(den[:, s], truth[:, s], sig[:, s])  # |N2N - truth| < 1 and 2 sigma
        r = {
            "rms_input": rms(err_in),
            "rms_n2n": rms(err),
            "rms_pca": rms(err_pca),
            "residual_std": float(resid.std()),
            "residual_std_over_noise": float(resid.std() / NOISE),
            "rms_n2n_strong_pixels": rms(err[strong]) if strong.any() else None,
            "rms_pca_strong_pixels": rms(err_pca[strong]) if strong.any() else None,
            "fraction_strong_pixels": float(strong.mean()),
            "frac_within_1sigma": within[0],
            "frac_within_2sigma": within[1],
            "median_sigma": float(np.median(sig[:, s])),
            "frames_averaged_equivalent": float((NOISE / rms(err)) ** 2),
        }
        res["stokes"][name] = r
        strong_n2n = f"{r['rms_n2n_strong_pixels']:.2e}" if strong.any() else "n/a"
        strong_pca = f"{r['rms_pca_strong_pixels']:.2e}" if strong.any() else "n/a"
        print(
            f"  {name:<7s}{r['rms_input']:>10.2e}{r['rms_n2n']:>10.2e}{r['rms_input'] / r['rms_n2n']:>9.1f}"
            f"{r['rms_pca']:>10.2e}{r['residual_std']:>11.2e}{r['residual_std_over_noise']:>8.3f}"
            f"{strong_n2n:>11s}{strong_pca:>11s}"
            f"{r['frac_within_1sigma']:>8.1%}{r['frac_within_2sigma']:>8.1%}{r['median_sigma']:>10.2e}"
        )
    print(
        "  (rms in I/Ic over all pixels, scans and wavelengths; 'strong' = pixels with |truth| > 3 x noise; "
        "'<1 sig', '<2 sig': fraction of |N2N - truth| below 1 and 2 returned sigma, ideal 68.3 % / 95.4 %)"
    )
    worst = max(res["stokes"][s]["rms_n2n"] for s in STOKES)
    res["bar_rms_pass"] = worst <= NOISE / 5
    res["bar_residual_pass"] = all(abs(res["stokes"][s]["residual_std_over_noise"] - 1) <= 0.1 for s in STOKES)
    res["bar_beats_pca_pass"] = all(res["stokes"][s]["rms_n2n"] < res["stokes"][s]["rms_pca"] for s in STOKES)
    print()
    _row(
        "bar: rms(N2N - truth) <= noise/5 = 6e-4 (paper: 6e-4)",
        f"worst {worst:.2e}: {_bar(res['bar_rms_pass'], quick)}",
    )
    _row("bar: std(input - output) within 10 % of 3e-3", _bar(res["bar_residual_pass"], quick))
    _row("bar: N2N beats PCA on Q, U and V", _bar(res["bar_beats_pca_pass"], quick))

    # "total" uncertainty on 2 scans (MC dropout), with the same trained denoiser
    mc = args.mc_samples
    two = cube[:, :, :2]
    t0 = time.perf_counter()
    tot_cube = den_model.predict(two, uncertainty="total", mc_samples=mc, seed=0, progress=args.progress)
    t_tot = time.perf_counter() - t0
    den2 = canonical(tot_cube)
    sig2 = canonical(tot_cube, tot_cube.uncertainty.array)
    z_tot = (den2[:, 1:] - truth[:2, 1:]) / sig2[:, 1:]
    within = {
        "all": coverage(den[:, 1:], truth[:, 1:], sig[:, 1:]),
        "2": coverage(den[:2, 1:], truth[:2, 1:], sig[:2, 1:]),
        "total": coverage(den2[:, 1:], truth[:2, 1:], sig2[:, 1:]),
    }
    res["calibration"] = {
        "aleatoric_all_scans": {"frac_within_1sigma": within["all"][0], "frac_within_2sigma": within["all"][1]},
        "aleatoric_2_scans": {
            "frac_within_1sigma": within["2"][0],
            "frac_within_2sigma": within["2"][1],
            "median_sigma": float(np.median(sig[:2, 1:])),
        },
        "total_2_scans": {
            "mc_samples": mc,
            "frac_within_1sigma": within["total"][0],
            "frac_within_2sigma": within["total"][1],
            "median_sigma": float(np.median(sig2[:, 1:])),
            "predict_time_s": t_tot,
        },
    }
    c = res["calibration"]
    _row(
        "calibration, aleatoric, all scans: |err| < 1 / 2 sigma",
        f"{c['aleatoric_all_scans']['frac_within_1sigma']:.1%} / {c['aleatoric_all_scans']['frac_within_2sigma']:.1%}"
        " (ideal 68.3 % / 95.4 %)",
    )
    _row(
        "calibration, aleatoric, scans 0-1",
        f"{c['aleatoric_2_scans']['frac_within_1sigma']:.1%} / {c['aleatoric_2_scans']['frac_within_2sigma']:.1%}, "
        f"median sigma {c['aleatoric_2_scans']['median_sigma']:.2e}",
    )
    _row(
        f"calibration, total (MC dropout, {mc} samples), scans 0-1",
        f"{c['total_2_scans']['frac_within_1sigma']:.1%} / {c['total_2_scans']['frac_within_2sigma']:.1%}, "
        f"median sigma {c['total_2_scans']['median_sigma']:.2e} ({t_tot:.1f} s)",
    )

    # figures
    wl = np.asarray(args.wl)
    w = int(np.argmax([rms(truth[:, 3, i]) for i in range(truth.shape[2])]))
    key = label.split()[0].lower()
    fig_stokes_v(out, f"{key}_stokes_v.png", label, truth, noisy, den, pca, sig, w, wl)
    fig_profiles(out, f"{key}_profiles.png", label, truth, noisy, den, pca, sig, wl)
    res["power_spectra_stokes_v"] = fig_power_synthetic(out, f"{key}_power.png", label, truth, noisy, den, pca, w)
    res["power_spectra_wavelength_index"] = w
    z_sets = {f"{label}, aleatoric": np.concatenate(z_all), f"{label}, total (2 scans)": z_tot.ravel()}
    return res, z_sets


# ---------------------------------------------------------------------------------------------------- CRISP part
def evaluate_crisp(args, out: Path) -> dict:
    import matplotlib.pyplot as plt

    path = args.data / "denoise" / "crisp_stokes_800.npy"
    image = np.load(path).astype(np.float32)
    if args.quick:
        c0 = (image.shape[0] - QUICK["crisp"]) // 2
        image = image[c0 : c0 + QUICK["crisp"], c0 : c0 + QUICK["crisp"]]
    _row("image", f"{path.name}, {image.shape} (quick: central crop)" if args.quick else f"{path.name}, {image.shape}")
    print(
        "  NOTE: one scan, so denoise_cube trains on neighbour sub-sampling pairs (Neighbor2Neighbor). That needs\n"
        "  noise independent from pixel to pixel; this MOMFBD-restored image has spatially correlated noise, so\n"
        "  the method is expected to remove only part of it (the pixel-to-pixel part)."
    )
    w = WCS(naxis=2)
    w.wcs.ctype = ["HPLN-TAN", "HPLT-TAN"]
    w.wcs.cunit = ["arcsec", "arcsec"]
    w.wcs.cdelt = [CRISP_SCALE, CRISP_SCALE]
    w.wcs.crpix = [image.shape[1] / 2, image.shape[0] / 2]
    w.wcs.crval = [0, 0]
    cube = NDCube(image, wcs=w, unit=u.dimensionless_unscaled, meta={"OBSERVER": "SST/CRISP"})
    out_cube, rec, total = run_denoise_cube(cube, args.quick, args.progress)
    den_model = rec.denoiser
    den = np.asarray(out_cube.data, dtype=np.float64)
    sig = np.asarray(out_cube.uncertainty.array, dtype=np.float64)
    resid = image - den
    n = image.shape[0]
    est_in = estimate_noise(image[None, None])
    est_out = estimate_noise(den[None, None])
    est_res = estimate_noise(resid[None, None])
    f, p_in = azimuthal_power_spectrum(image)
    _, p_out = azimuthal_power_spectrum(den)
    _, p_res = azimuthal_power_spectrum(resid)
    means = {
        key: band_mean_power(f, p, CRISP_BANDS) for key, p in (("input", p_in), ("output", p_out), ("residual", p_res))
    }
    bands = {band: {key: m[band] for key, m in means.items()} for band in means["input"]}
    # A rough, signal-inclusive upper bound of the noise: the std of the quietest 64 x 64 block.
    blocks = [image[i : i + 64, j : j + 64].std() for i in range(0, n - 63, 64) for j in range(0, n - 63, 64)]
    fs = den_model.fit_settings
    r = {
        "shape": list(image.shape),
        "fit_settings": fs,
        "noise_level_stored": den_model.noise,
        "fit_time_s": rec.fit_time,
        "predict_time_s": rec.predict_time,
        "denoise_cube_time_s": total,
        "std_input": float(image.std()),
        "std_output": float(den.std()),
        "std_residual": float(resid.std()),
        "estimate_noise_input": est_in,
        "estimate_noise_output": est_out,
        "estimate_noise_residual": est_res,
        "median_sigma": float(np.median(sig)),
        "std_quietest_64px_block": float(min(blocks)),
        "power_bands_per_pix": bands,
        "power_spectra": {
            "freq_per_pix": f.tolist(),
            "input": p_in.tolist(),
            "output": p_out.tolist(),
            "residual": p_res.tolist(),
        },
    }
    _row("training pairs", fs["pairs"])
    _row("fit / predict / total time (s)", f"{rec.fit_time:.1f} / {rec.predict_time:.1f} / {total:.1f}")
    _row("std of input / output / residual (I/Ic)", f"{image.std():.3e} / {den.std():.3e} / {resid.std():.3e}")
    _row("estimate_noise (Immerkaer, single scan), input", f"{est_in:.3e} I/Ic")
    _row("estimate_noise, output", f"{est_out:.3e} I/Ic ({est_out / est_in:.1%} of the input's)")
    _row("estimate_noise, residual (input - output)", f"{est_res:.3e} I/Ic")
    _row("median returned sigma (aleatoric)", f"{np.median(sig):.3e} I/Ic")
    _row("std of the quietest 64 x 64 px block (noise upper bound)", f"{min(blocks):.3e} I/Ic")
    print(
        "  The Immerkaer estimate assumes white noise; this noise is band-limited (the spectrum below falls by ~1e5\n"
        "  beyond ~0.3 pix^-1), so it sees only a small part of it. The Denoiser scales the data by this estimate,\n"
        "  and its aleatoric sigma cannot exceed it (log-variance <= 0 in noise units), so here the returned\n"
        "  uncertainty reflects that estimate, not the real error."
    )
    print(f"\n  {'band (pix^-1)':<16s}{'P input':>11s}{'P output':>11s}{'P resid':>11s}{'out/in':>9s}{'resid/in':>10s}")
    for key, b in bands.items():
        print(
            f"  {key:<16s}{b['input']:>11.2e}{b['output']:>11.2e}{b['residual']:>11.2e}"
            f"{b['output'] / b['input']:>9.3f}{b['residual'] / b['input']:>10.3f}"
        )
    print("  (mean azimuthal power in (I/Ic)^2 per frequency band)")

    vmax = np.percentile(np.abs(image), 99.5)
    rmax = 4 * resid.std()
    # zoom: a 160 px (or smaller) box around the strongest smoothed signal
    z = min(160, n // 2)
    cy, cx = np.unravel_index(np.argmax(np.abs(ndimage.uniform_filter(den, 15))), den.shape)
    y0, x0 = (int(np.clip(c - z // 2, 0, n - z)) for c in (cy, cx))
    fig, axs = plt.subplots(2, 4, figsize=(20, 9.5), constrained_layout=True)
    for row, (sl, ext, where) in enumerate(
        [
            (np.s_[:, :], [0, n, 0, n], "full field"),
            (np.s_[y0 : y0 + z, x0 : x0 + z], [x0, x0 + z, y0, y0 + z], f"zoom {z} x {z} px"),
        ]
    ):
        for col, (label, img) in enumerate([("input (real CRISP)", image), ("denoised", den)]):
            im = axs[row, col].imshow(img[sl], origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=ext)
            axs[row, col].set_title(f"{label}, {where}")
        fig.colorbar(im, ax=axs[row, :2], shrink=0.85, label="polarisation / $I_c$")
        im = axs[row, 2].imshow(resid[sl], origin="lower", cmap="RdBu_r", vmin=-rmax, vmax=rmax, extent=ext)
        axs[row, 2].set_title(f"residual (input - output), {where}")
        fig.colorbar(im, ax=axs[row, 2], shrink=0.85, label="residual / $I_c$ ($\\pm$4 std)")
        im = axs[row, 3].imshow(sig[sl], origin="lower", cmap="viridis", extent=ext)
        axs[row, 3].set_title(f"uncertainty $\\sigma$ (aleatoric), {where}")
        fig.colorbar(im, ax=axs[row, 3], shrink=0.85, label="$\\sigma$ / $I_c$")
        axs[row, 0].set_ylabel("y (pix)")
    for ax in axs.ravel():
        ax.set_xlabel("x (pix)")
    fig.suptitle("Real SST/CRISP image, single scan (neighbour sub-sampling pairs; correlated noise)")
    _save(fig, out, "crisp_images.png")

    fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
    ax.loglog(f, p_in, "0.5", label="input")
    ax.loglog(f, p_out, "C0", label="denoised")
    ax.loglog(f, p_res, "C2", label="residual (input - output)")
    ax.set_xlabel("spatial frequency (pix$^{-1}$; CRISP ~0.059 arcsec/pix)")
    ax.set_ylabel("azimuthal power ($(I/I_c)^2$)")
    ax.set_title("Real CRISP image: power spectra")
    _plain_log_ticks(ax)
    ax.legend()
    _save(fig, out, "crisp_power.png")
    return r


# ---------------------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small cube, reduced training (~1 min)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--mc-samples", type=int, help="MC-dropout passes for the 'total' check (default 10; quick 3)")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    for needed in ("enhance/muram_qs_continuum_1000.npy", "denoise/crisp_stokes_800.npy"):
        if not (args.data / needed).exists():
            print(f"denoise_quality: {args.data / needed} not found (see ../shared/data/README.md)", file=sys.stderr)
            return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    args.mc_samples = args.mc_samples or (3 if args.quick else 10)
    matplotlib.use("Agg")
    # Harmless: the WCS spectral axis has no observer/target, which ndcube's world coordinates mention each time.
    warnings.filterwarnings("ignore", message=".*cannot be converted to ICRS.*")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    size = QUICK if args.quick else FULL
    t_start = time.perf_counter()

    _header("denoise_quality: Noise2Noise denoiser benchmark (issue 4 quality bars)")
    _row("mode", "QUICK (reduced cube and training)" if args.quick else "full")
    _row("sunpy_nn / torch / numpy", f"{sunpy_nn.__version__} / {torch.__version__} / {np.__version__}")
    _row("python, machine", f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    _row("torch threads", str(torch.get_num_threads()))
    _row("device denoise_cube picks (device=None)", str(resolve_device(None)))
    _row("load average (1, 5, 15 min)", ", ".join(f"{v:.2f}" for v in os.getloadavg()))

    _header("a. Synthetic CRISP-like cube")
    t0 = time.perf_counter()
    truth, wl, scene = build_truth(args.data, size["n_wave"], size["n_scans"], size["size"], seed=0)
    args.wl = wl
    _row(
        "cube (wavelength x Stokes IQUV x scans x y x x)",
        f"{size['n_wave']} x 4 x {size['n_scans']} x "
        f"{size['size']} x {size['size']} ({time.perf_counter() - t0:.1f} s to build)",
    )
    _row("line", f"Fe I {LAMBDA0 / 10:.2f} nm, Gaussian, depth {LINE_DEPTH}, sigma {LINE_SIGMA * 1000:.0f} mÅ")
    _row("wavelengths (mÅ from line centre)", ", ".join(f"{v * 1000:+.0f}" for v in wl))
    _row("pixel, cadence", f"{MURAM_SCALE} arcsec (MURaM), {CADENCE:.0f} s")
    _row("B_los from synthetic_blos: max |B|, rms (kG)", f"{scene['blos_kG_max']:.2f}, {scene['blos_kG_rms']:.3f}")
    _row("strongest |V| / noise, |Q|,|U| / noise", f"{scene['v_max_over_noise']:.1f}, {scene['qu_max_over_noise']:.1f}")
    _row(
        "pixels with max|V| over wavelength > 1 / 3 noise",
        f"{scene['fraction_pixels_max_abs_v_above_1_sigma']:.1%} / "
        f"{scene['fraction_pixels_max_abs_v_above_3_sigma']:.1%}",
    )
    _row("pixels with max|Q|,|U| > 1 noise", f"{scene['fraction_pixels_max_abs_qu_above_1_sigma']:.1%}")
    _row(
        "scan-to-scan drift (px per scan, total)",
        f"{scene['drift_step_px_mean']:.2f}, {scene['drift_total_px']:.2f}; Q/U/V amplitude modulation +-3 %",
    )
    summary: dict = {
        "quick": args.quick,
        "noise": NOISE,
        "torch_threads": torch.get_num_threads(),
        "load_average_start": list(os.getloadavg()),
        "versions": {"sunpy_nn": sunpy_nn.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "quick_fit_overrides": QUICK_FIT if args.quick else None,
        "scene": scene,
    }

    _header("b. White noise 3e-3 Ic: denoise_cube (default settings)")
    rng = np.random.default_rng(1)
    cube_w = make_cube(truth, wl, white_noise(truth.shape, rng))
    summary["white"], z_white = evaluate_synthetic("White-noise cube", cube_w, truth, args, out)

    _header("c. Correlated noise (white convolved with a Gaussian of sigma 1 px, 3e-3 rms): denoise_cube")
    cube_c = make_cube(truth, wl, correlated_noise(truth.shape, np.random.default_rng(2)))
    summary["correlated"], z_corr = evaluate_synthetic("Correlated-noise cube", cube_c, truth, args, out)
    fig_calibration(out, "calibration.png", z_white | z_corr)

    _header("d. Real CRISP image (crisp_stokes_800.npy): denoise_cube on a single scan")
    summary["crisp"] = evaluate_crisp(args, out)

    _header("Summary")
    for key in ("white", "correlated"):
        r = summary[key]
        worst = max(r["stokes"][s]["rms_n2n"] for s in STOKES)
        resid = ", ".join(f"{r['stokes'][s]['residual_std_over_noise']:.3f}" for s in STOKES)
        _row(f"{key}: worst rms(N2N - truth), bar 6e-4", f"{worst:.2e} {_bar(r['bar_rms_pass'], args.quick)}")
        _row(
            f"{key}: residual std / noise (Q, U, V), bar 0.9-1.1", f"{resid} {_bar(r['bar_residual_pass'], args.quick)}"
        )
        _row(f"{key}: beats PCA", _bar(r["bar_beats_pca_pass"], args.quick))
        _row(
            f"{key}: patches/s, Mpix/s",
            f"{r['training_patches_per_s']:.1f}, {r['prediction_mpix_per_s']:.3f} ({torch.get_num_threads()} threads)",
        )
        if not args.quick:
            _row(
                f"{key}: denoise_cube time, bar {BUDGET_S:.0f} s",
                f"{r['denoise_cube_time_s']:.0f} s {_bar(r['cpu_budget_pass'], False)}",
            )
    c = summary["crisp"]
    _row(
        "CRISP: noise estimate before -> after",
        f"{c['estimate_noise_input']:.2e} -> {c['estimate_noise_output']:.2e} I/Ic",
    )
    summary["total_time_s"] = time.perf_counter() - t_start
    summary["load_average_end"] = list(os.getloadavg())
    _row("total benchmark time (s)", f"{summary['total_time_s']:.0f}")
    _row("load average at the end (1, 5, 15 min)", ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    with open(out / "summary.json", "w") as fh:
        json.dump(jsonable(summary), fh, indent=1)
    print(f"  wrote {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
