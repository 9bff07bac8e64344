"""
The synthetic CRISP-like scene of ``benchmarks/denoise_quality.py`` (part a of its docstring; benchmark-only).

`build_truth` makes the clean Stokes cube from the MURaM continuum and `sunpy_nn.data.synthetic`'s fields;
`make_cube` wraps truth plus noise (`white_noise`, `correlated_noise`) in an NDCube with a 5-D FITS WCS
(`make_wcs`); `describe_scene` gives the console's lines about it. The scene is this benchmark's own:
`sunpy_nn.data.synthetic.synthetic_crisp_cube` makes a similar one on synthetic granulation with another random
sequence, so using it here would change every number.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.wcs import WCS
from ndcube import NDCube
from scipy import ndimage

from sunpy_nn.data.synthetic import random_field, synthetic_blos

NOISE = 3e-3  # injected noise, I/Ic
MURAM_SCALE = 0.0662  # arcsec/pix of the MURaM snapshot (also the synthetic cube's pixel)
LAMBDA0 = 6302.4936  # Fe I line centre, Angstrom
LINE_SIGMA = 0.065  # Gaussian line width, Angstrom (FWHM ~0.15 A)
LINE_DEPTH = 0.65  # line depth relative to the local continuum
DOPPLER = 0.02  # Angstrom of blueshift per unit rms of granular contrast (~1 km/s), clipped at 3 rms
SPECTRAL_RANGE = 0.28  # wavelengths sampled over +-this, Angstrom
CADENCE = 28.0  # s between scans
V_PEAK, QU_PEAK = 15.0, 8.0  # strongest V and Q/U, in units of the noise


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


def describe_scene(scene: dict, wl: np.ndarray) -> list[tuple[str, str]]:
    """The console's description of the scene `build_truth` made: (label, value) lines."""
    v1, v3 = (scene[f"fraction_pixels_max_abs_v_above_{n}_sigma"] for n in (1, 3))
    return [
        ("line", f"Fe I {LAMBDA0 / 10:.2f} nm, Gaussian, depth {LINE_DEPTH}, sigma {LINE_SIGMA * 1000:.0f} mÅ"),
        ("wavelengths (mÅ from line centre)", ", ".join(f"{v * 1000:+.0f}" for v in wl)),
        ("pixel, cadence", f"{MURAM_SCALE} arcsec (MURaM), {CADENCE:.0f} s"),
        ("B_los from synthetic_blos: max |B|, rms (kG)", f"{scene['blos_kG_max']:.2f}, {scene['blos_kG_rms']:.3f}"),
        (
            "strongest |V| / noise, |Q|,|U| / noise",
            f"{scene['v_max_over_noise']:.1f}, {scene['qu_max_over_noise']:.1f}",
        ),
        ("pixels with max|V| over wavelength > 1 / 3 noise", f"{v1:.1%} / {v3:.1%}"),
        ("pixels with max|Q|,|U| > 1 noise", f"{scene['fraction_pixels_max_abs_qu_above_1_sigma']:.1%}"),
        (
            "scan-to-scan drift (px per scan, total)",
            f"{scene['drift_step_px_mean']:.2f}, {scene['drift_total_px']:.2f}; Q/U/V amplitude modulation +-3 %",
        ),
    ]
