"""
The figures of ``benchmarks/denoise_quality.py`` (benchmark-only: matplotlib, which `sunpy_nn` never imports).

Each function draws one figure from arrays and numbers the script measured and saves it in ``out``; none measures
anything that ``summary.json`` records.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter
from scipy import ndimage

from sunpy_nn.validation import rms


def _save(fig, out: Path, name: str) -> None:
    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"  wrote {out / name}", flush=True)


def _extent(n: int, scale: float):
    return [0, n * scale, 0, n * scale]


def _plain_log_ticks(ax) -> None:
    ax.xaxis.set_minor_formatter(NullFormatter())


def stokes_v_figure(
    out: Path, name: str, title: str, truth, noisy, den, pca, sig, w: int, wl, noise: float, scale: float
) -> None:
    """Stokes V at wavelength ``w`` of scan 0: truth, input, Noise2Noise, PCA, the error and the uncertainty."""
    t = 0
    panels = [
        ("truth", truth[t, 3, w]),
        ("noisy input", noisy[t, 3, w]),
        ("Noise2Noise", den[t, 3, w]),
        ("PCA baseline", pca[t, 3, w]),
    ]
    vmax = max(np.abs(truth[t, 3, w]).max(), 3 * noise)
    ext = _extent(truth.shape[-1], scale)
    fig, axs = plt.subplots(1, 6, figsize=(24, 4.2), constrained_layout=True)
    for ax, (label, img) in zip(axs[:4], panels, strict=True):
        im = ax.imshow(img, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=ext)
        ax.set_title(label)
    fig.colorbar(im, ax=axs[:4], shrink=0.85, label="Stokes V / $I_c$")
    err = den[t, 3, w] - truth[t, 3, w]
    im = axs[4].imshow(err, origin="lower", cmap="RdBu_r", vmin=-3 * noise, vmax=3 * noise, extent=ext)
    axs[4].set_title(f"N2N - truth (rms {rms(err):.1e})")
    fig.colorbar(im, ax=axs[4], shrink=0.85, label="error / $I_c$ (scale $\\pm$3 noise)")
    im = axs[5].imshow(sig[t, 3, w], origin="lower", cmap="viridis", extent=ext)
    axs[5].set_title("N2N uncertainty $\\sigma$ (aleatoric)")
    fig.colorbar(im, ax=axs[5], shrink=0.85, label="$\\sigma$ / $I_c$")
    for ax in axs:
        ax.set_xlabel("x (arcsec)")
    axs[0].set_ylabel("y (arcsec)")
    fig.suptitle(
        f"{title}: Stokes V at $\\Delta\\lambda$ = {wl[w] * 1000:+.0f} m$\\AA$, scan 0 (noise {noise:g} $I_c$)"
    )
    _save(fig, out, name)


def _pick_pixels(truth, noise: float) -> list[tuple[str, int, int]]:
    """Strongest V, strongest Q/U, and a weak-V pixel (max |V| about 3 sigma), in scan 0."""
    maxv = np.abs(truth[0, 3]).max(axis=0)
    maxqu = np.maximum(np.abs(truth[0, 1]), np.abs(truth[0, 2])).max(axis=0)
    strong = np.unravel_index(np.argmax(maxv), maxv.shape)
    qu = np.unravel_index(np.argmax(maxqu), maxqu.shape)
    weak = np.unravel_index(np.argmin(np.abs(maxv - 3 * noise)), maxv.shape)
    return [("strongest V", *strong), ("strongest Q/U", *qu), ("weak V (~3 sigma)", *weak)]


def profiles_figure(out: Path, name: str, title: str, truth, noisy, den, pca, sig, wl, noise: float) -> None:
    """Q, U and V profiles of three pixels of scan 0 (strongest V, strongest Q/U, a weak V) with the uncertainty."""
    pixels = _pick_pixels(truth, noise)
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


def power_figure(out: Path, name: str, title: str, spectra: dict) -> None:
    """The Stokes V power spectra the script measured (``freq_per_arcsec`` and one curve per label)."""
    styles = [("k", "-"), ("0.6", "-"), ("C0", "-"), ("C1", "--"), ("C2", "-"), ("C3", ":"), ("C4", "-")]
    curves = {k: v for k, v in spectra.items() if k != "freq_per_arcsec"}
    fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
    for (label, p), (color, ls) in zip(curves.items(), styles, strict=True):
        ax.loglog(np.asarray(spectra["freq_per_arcsec"]), np.asarray(p), color=color, ls=ls, label=label)
    _plain_log_ticks(ax)
    ax.set_xlabel("spatial frequency (arcsec$^{-1}$)")
    ax.set_ylabel("azimuthal power ($(I/I_c)^2$, mean of the 2-D spectrum = variance)")
    ax.set_title(f"{title}: Stokes V power spectra, all scans")
    ax.legend(fontsize=8)
    _save(fig, out, name)


def calibration_figure(out: Path, name: str, z_sets: dict) -> None:
    """Histograms of (denoised - truth) / sigma against the unit normal."""
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


def crisp_figures(out: Path, image, den, sig, spectra: dict) -> None:
    """The real CRISP image: input, output, residual and uncertainty (full field and a zoom), and power spectra."""
    resid = image - den
    n = image.shape[0]
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

    f = np.asarray(spectra["freq_per_pix"])
    fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
    ax.loglog(f, np.asarray(spectra["input"]), "0.5", label="input")
    ax.loglog(f, np.asarray(spectra["output"]), "C0", label="denoised")
    ax.loglog(f, np.asarray(spectra["residual"]), "C2", label="residual (input - output)")
    ax.set_xlabel("spatial frequency (pix$^{-1}$; CRISP ~0.059 arcsec/pix)")
    ax.set_ylabel("azimuthal power ($(I/I_c)^2$)")
    ax.set_title("Real CRISP image: power spectra")
    _plain_log_ticks(ax)
    ax.legend()
    _save(fig, out, "crisp_power.png")
