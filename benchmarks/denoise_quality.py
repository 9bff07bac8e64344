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

The scene of part a is built by ``benchmarks/_denoise_quality_scene.py`` and the figures are drawn by
``benchmarks/_denoise_quality_figures.py``; this script runs `denoise_cube` and the PCA baseline and measures.
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
import numpy as np
import torch
from _denoise_quality_figures import calibration_figure, crisp_figures, power_figure, profiles_figure, stokes_v_figure
from _denoise_quality_scene import (
    MURAM_SCALE,
    NOISE,
    build_truth,
    correlated_noise,
    describe_scene,
    make_cube,
    white_noise,
)
from astropy.wcs import WCS
from ndcube import NDCube

import sunpy_nn
from sunpy_nn import denoise_cube
from sunpy_nn.baselines import pca_denoise
from sunpy_nn.denoise import Denoiser, estimate_noise, find_axes
from sunpy_nn.metrics import azimuthal_power_spectrum, coverage
from sunpy_nn.nn import resolve_device
from sunpy_nn.report import format_number as fmt
from sunpy_nn.report import jsonable, text_table
from sunpy_nn.validation import band_mean_power, mean_power_spectrum, rms

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "denoise_quality"

CRISP_SCALE = 0.059  # arcsec/pix assumed for the CRISP image (its file carries no WCS)
STOKES = ("Q", "U", "V")
FULL = {"n_wave": 15, "n_scans": 8, "size": 256, "crisp": 800}
QUICK = {"n_wave": 5, "n_scans": 4, "size": 96, "crisp": 256}
QUICK_FIT = {"epochs": 3, "patches_per_epoch": 500, "patch_size": 32, "lr": 1e-3}
CRISP_BANDS = ((0, 0.05), (0.05, 0.15), (0.15, 0.3), (0.3, 0.35), (0.35, 0.5))  # pix^-1
STOKES_TABLE = (  # (column, key of the per-Stokes results, format) of the console's error table
    ("rms in", "rms_input", ".2e"),
    ("rms N2N", "rms_n2n", ".2e"),
    ("x better", "gain", ".1f"),
    ("rms PCA", "rms_pca", ".2e"),
    ("resid std", "residual_std", ".2e"),
    ("/noise", "residual_std_over_noise", ".3f"),
    ("strong N2N", "rms_n2n_strong_pixels", ".2e"),
    ("strong PCA", "rms_pca_strong_pixels", ".2e"),
    ("<1 sig", "frac_within_1sigma", ".1%"),
    ("<2 sig", "frac_within_2sigma", ".1%"),
    ("med sig", "median_sigma", ".2e"),
)
BUDGET_S = 600.0  # issue 4: the default denoise_cube on 15 x 3 x 8 x 256 x 256 within 10 minutes on 2 cores


# ---------------------------------------------------------------------------------------------------------- output
def _header(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def _row(label: str, value: str) -> None:
    print(f"  {label:<58s} {value}", flush=True)


def _bar(ok: bool, quick: bool) -> str:
    verdict = "PASS" if ok else "FAIL"
    return f"{verdict} (quick mode: indicative only)" if quick else verdict


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

    z_all, table = [], []
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
        table.append([name, *(fmt((r | {"gain": r["rms_input"] / r["rms_n2n"]})[k], f) for _, k, f in STOKES_TABLE)])
    print(text_table(f"{label}: errors against the truth", ["Stokes"] + [h for h, _, _ in STOKES_TABLE], table))
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

    # Stokes V power spectra, over all scans, at the wavelength of the strongest V
    w = int(np.argmax([rms(truth[:, 3, i]) for i in range(truth.shape[2])]))
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
    spectra = {}
    for name, frames in curves.items():
        f, p = mean_power_spectrum(frames)
        spectra[name] = p.tolist()
    spectra["freq_per_arcsec"] = (f / MURAM_SCALE).tolist()
    res["power_spectra_stokes_v"] = spectra
    res["power_spectra_wavelength_index"] = w

    wl, key = np.asarray(args.wl), label.split()[0].lower()
    stokes_v_figure(out, f"{key}_stokes_v.png", label, truth, noisy, den, pca, sig, w, wl, NOISE, MURAM_SCALE)
    profiles_figure(out, f"{key}_profiles.png", label, truth, noisy, den, pca, sig, wl, NOISE)
    power_figure(out, f"{key}_power.png", label, spectra)
    z_sets = {f"{label}, aleatoric": np.concatenate(z_all), f"{label}, total (2 scans)": z_tot.ravel()}
    return res, z_sets


# ---------------------------------------------------------------------------------------------------- CRISP part
def evaluate_crisp(args, out: Path) -> dict:
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
    ratios = ("output", "residual")  # over the input's power
    rows = [
        [k, *(f"{v:.2e}" for v in b.values()), *(f"{b[r] / b['input']:.3f}" for r in ratios)] for k, b in bands.items()
    ]
    header = ["band (pix^-1)", "P input", "P output", "P resid", "out/in", "resid/in"]
    print(text_table("Mean azimuthal power in (I/Ic)^2 per frequency band", header, rows))

    crisp_figures(out, image, den, sig, r["power_spectra"])
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
    for label, value in describe_scene(scene, wl):
        _row(label, value)
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
    calibration_figure(out, "calibration.png", z_white | z_corr)

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
