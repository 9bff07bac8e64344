"""
Running and printing for ``benchmarks/denoise_quality.py`` (benchmark-only): `run_denoise_cube` times
`sunpy_nn.denoise_cube` (fit and prediction apart, `TimedDenoiser`), `crisp_cube` wraps the CRISP image in a 2-D
NDCube, and the rest prints the console's labelled rows and tables. The measurements are those of
`sunpy_nn.validation_denoise`.
"""

from __future__ import annotations

import time

import astropy.units as u
import numpy as np
from astropy.wcs import WCS
from ndcube import NDCube

from sunpy_nn import denoise_cube
from sunpy_nn.denoise import Denoiser, find_axes
from sunpy_nn.report import format_number as fmt
from sunpy_nn.report import text_table

QUICK_FIT = {"epochs": 3, "patches_per_epoch": 500, "patch_size": 32, "lr": 1e-3}
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


def header(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def row(label: str, value: str) -> None:
    print(f"  {label:<58s} {value}", flush=True)


def bar(ok: bool, quick: bool) -> str:
    verdict = "PASS" if ok else "FAIL"
    return f"{verdict} (quick mode: indicative only)" if quick else verdict


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


def crisp_cube(image: np.ndarray, scale: float) -> NDCube:
    """The CRISP image (its file carries no WCS) as a 2-D NDCube in HPLN/HPLT at ``scale`` arcsec/px."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["HPLN-TAN", "HPLT-TAN"]
    w.wcs.cunit = ["arcsec", "arcsec"]
    w.wcs.cdelt = [scale, scale]
    w.wcs.crpix = [image.shape[1] / 2, image.shape[0] / 2]
    w.wcs.crval = [0, 0]
    return NDCube(image, wcs=w, unit=u.dimensionless_unscaled, meta={"OBSERVER": "SST/CRISP"})


def print_stokes_errors(label: str, stokes: dict) -> None:
    table = [
        [name, *(fmt((r | {"gain": r["rms_input"] / r["rms_n2n"]})[k], f) for _, k, f in STOKES_TABLE)]
        for name, r in stokes.items()
    ]
    print(text_table(f"{label}: errors against the truth", ["Stokes"] + [h for h, _, _ in STOKES_TABLE], table))
    print(
        "  (rms in I/Ic over all pixels, scans and wavelengths; 'strong' = pixels with |truth| > 3 x noise; "
        "'<1 sig', '<2 sig': fraction of |N2N - truth| below 1 and 2 returned sigma, ideal 68.3 % / 95.4 %)"
    )


def print_calibration(c: dict, t_tot: float) -> None:
    a, f, t = c["aleatoric_all_scans"], c["aleatoric_2_scans"], c["total_2_scans"]
    row(
        "calibration, aleatoric, all scans: |err| < 1 / 2 sigma",
        f"{a['frac_within_1sigma']:.1%} / {a['frac_within_2sigma']:.1%} (ideal 68.3 % / 95.4 %)",
    )
    row(
        "calibration, aleatoric, scans 0-1",
        f"{f['frac_within_1sigma']:.1%} / {f['frac_within_2sigma']:.1%}, median sigma {f['median_sigma']:.2e}",
    )
    row(
        f"calibration, total (MC dropout, {t['mc_samples']} samples), scans 0-1",
        f"{t['frac_within_1sigma']:.1%} / {t['frac_within_2sigma']:.1%}, "
        f"median sigma {t['median_sigma']:.2e} ({t_tot:.1f} s)",
    )


def print_crisp(r: dict, fit_time: float, predict_time: float, total: float) -> None:
    est_in, est_out = r["estimate_noise_input"], r["estimate_noise_output"]
    row("training pairs", r["fit_settings"]["pairs"])
    row("fit / predict / total time (s)", f"{fit_time:.1f} / {predict_time:.1f} / {total:.1f}")
    row(
        "std of input / output / residual (I/Ic)",
        f"{r['std_input']:.3e} / {r['std_output']:.3e} / {r['std_residual']:.3e}",
    )
    row("estimate_noise (Immerkaer, single scan), input", f"{est_in:.3e} I/Ic")
    row("estimate_noise, output", f"{est_out:.3e} I/Ic ({est_out / est_in:.1%} of the input's)")
    row("estimate_noise, residual (input - output)", f"{r['estimate_noise_residual']:.3e} I/Ic")
    row("median returned sigma (aleatoric)", f"{r['median_sigma']:.3e} I/Ic")
    row("std of the quietest 64 x 64 px block (noise upper bound)", f"{r['std_quietest_64px_block']:.3e} I/Ic")
    print(
        "  The Immerkaer estimate assumes white noise; this noise is band-limited (the spectrum below falls by ~1e5\n"
        "  beyond ~0.3 pix^-1), so it sees only a small part of it. The Denoiser scales the data by this estimate,\n"
        "  and its aleatoric sigma cannot exceed it (log-variance <= 0 in noise units), so here the returned\n"
        "  uncertainty reflects that estimate, not the real error."
    )
    ratios = ("output", "residual")  # over the input's power
    rows = [
        [k, *(f"{v:.2e}" for v in b.values()), *(f"{b[x] / b['input']:.3f}" for x in ratios)]
        for k, b in r["power_bands_per_pix"].items()
    ]
    head = ["band (pix^-1)", "P input", "P output", "P resid", "out/in", "resid/in"]
    print(text_table("Mean azimuthal power in (I/Ic)^2 per frequency band", head, rows))


def print_summary(summary: dict, quick: bool, threads: int, budget_s: float) -> None:
    for key in ("white", "correlated"):
        r = summary[key]
        worst = max(x["rms_n2n"] for x in r["stokes"].values())
        resid = ", ".join(f"{x['residual_std_over_noise']:.3f}" for x in r["stokes"].values())
        row(f"{key}: worst rms(N2N - truth), bar 6e-4", f"{worst:.2e} {bar(r['bar_rms_pass'], quick)}")
        row(f"{key}: residual std / noise (Q, U, V), bar 0.9-1.1", f"{resid} {bar(r['bar_residual_pass'], quick)}")
        row(f"{key}: beats PCA", bar(r["bar_beats_pca_pass"], quick))
        row(
            f"{key}: patches/s, Mpix/s",
            f"{r['training_patches_per_s']:.1f}, {r['prediction_mpix_per_s']:.3f} ({threads} threads)",
        )
        if not quick:
            row(
                f"{key}: denoise_cube time, bar {budget_s:.0f} s",
                f"{r['denoise_cube_time_s']:.0f} s {bar(r['cpu_budget_pass'], False)}",
            )
    c = summary["crisp"]
    row(
        "CRISP: noise estimate before -> after",
        f"{c['estimate_noise_input']:.2e} -> {c['estimate_noise_output']:.2e} I/Ic",
    )
