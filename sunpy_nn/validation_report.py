"""
The validation report of the Enhance weights: what it scores, its targets and the tables the docs include.

``benchmarks/validate_enhance.py`` loads the data, runs the methods and scores their outputs with these functions
(`held_out_scores`, `continuum_scores`, `magnetogram_scores`, built on `sunpy_nn.metrics` and
`sunpy_nn.validation`), and collects every number in a summary dict, written as ``summary.json``; the others judge it
against `TARGETS` and write the tables of ``docs/guide/validation.rst`` (its ``summary.inc``), so that the docs'
numbers and the console's come from one writer. The summary's sections are those of the benchmark: ``held_out`` (one
dict per frame and detector model), ``flat_fields``, ``continuum``, ``blos``, ``limb``, ``weights``, ``settings``,
``targets`` and ``figures``.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sunpy_nn.metrics import azimuthal_power_spectrum, forward_consistency, psnr, rms_contrast, ssim
from sunpy_nn.report import format_number as fmt
from sunpy_nn.report import format_percent as pct
from sunpy_nn.report import rst_escape, rst_list_table, status_text, target_cell
from sunpy_nn.utils import upsample_nearest
from sunpy_nn.validation import band_power_ratio, darkest_levels, interior_mask, quiet_sun_mask, sign_flip_fraction

__all__ = [
    "FRAME_TITLES",
    "METHODS",
    "TARGETS",
    "continuum_scores",
    "held_out_scores",
    "held_out_targets",
    "magnetogram_scores",
    "real_targets",
    "report_tables",
    "summary_rst",
    "write_report",
]

#: The held-out frames (names of `sunpy_nn.training.sources.load_reference_sources`) and their titles, in order.
FRAME_TITLES = {
    "sst_sunspot": "SST/CRISP sunspot",
    "imax_quiet_sun": "Sunrise/IMaX quiet Sun",
    "muram_quiet_sun": "MURaM quiet Sun",
    "gst_niris": "GST/NIRIS magnetogram",
}
#: The methods compared: bicubic x2, Richardson-Lucy, Enhance v1 and v2.
METHODS = ("bicubic", "rl", "v1", "v2")
#: What Enhance must reach (issue 12).
TARGETS = {
    "gain_vs_bicubic_db": 3.0,
    "gain_vs_rl_db": {"intensity": 1.0, "blos": 0.5},
    "qs_contrast": (0.06, 0.085),
    "forward_continuum": 0.03,
    "forward_blos": 0.06,
    "flux_tolerance": 0.10,
    "off_limb": 0.02,  # I/Ic, mean |I| more than 2 input pixels outside the limb
    "limb_ringing": 0.02,  # I/Ic, largest inward drop of the mean profile across the limb
}
_COLUMNS = ["bicubic x2", "Richardson-Lucy (best)", "Enhance v1", "Enhance v2"]


# ------------------------------------------------------------------------------------------------- measurements
def held_out_scores(
    outputs: dict[str, np.ndarray], truth: np.ndarray, low: np.ndarray, kind: str, input_scale: float, bands: Sequence
) -> dict:
    """
    Scores of each method inside one held-out box against the truth: PSNR, SSIM, bias, spectra and signs.

    Parameters
    ----------
    outputs : dict
        Method name to its x2 output inside the box (twice the input box on each axis).
    truth : numpy.ndarray
        The truth inside the box, same shape as each output.
    low : numpy.ndarray
        The degraded input inside the box.
    kind : {"intensity", "blos"}
        What the images are: a magnetogram (kG) also gets its signs checked.
    input_scale : float
        Pixel scale of ``low`` in arcsec (the outputs' is half of it).
    bands : sequence of (float, float)
        Spatial-frequency bands in arcsec^-1 of `sunpy_nn.validation.band_power_ratio`.

    Returns
    -------
    dict
        ``data_range`` (of the truth, for PSNR and SSIM); ``scores``: per method ``psnr_db``, ``ssim`` and
        ``mean_bias``, and for ``v1`` and ``v2`` ``gain_vs_bicubic_db`` and ``gain_vs_rl_db`` (when those methods are
        there); ``signs_over_100G`` (magnetograms: sign flips against the input and against the truth where
        ``|B| > 0.1 kG``; else None); ``power_ratio_bands`` (band to method to power over the truth's); and
        ``spectra``: method, ``input`` and ``truth`` to (frequency in arcsec^-1, PSD in units^2 arcsec^2).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation_report import held_out_scores
    >>> truth = np.random.default_rng(0).normal(1.0, 0.1, (32, 32))
    >>> r = held_out_scores({"bicubic": truth + 0.01}, truth, truth[::2, ::2], "intensity", 0.5, [(0.5, 1.0)])
    >>> round(r["scores"]["bicubic"]["mean_bias"], 6), r["signs_over_100G"]
    (0.01, None)
    """
    output_scale = input_scale / 2
    drange = float(truth.max() - truth.min())
    scores, spectra = {}, {}
    f, p = azimuthal_power_spectrum(truth)
    spectra["truth"] = (f / output_scale, p * output_scale**2)
    f, p = azimuthal_power_spectrum(low)
    spectra["input"] = (f / input_scale, p * input_scale**2)
    for key, img in outputs.items():
        scores[key] = {
            "psnr_db": psnr(img, truth, drange),
            "ssim": ssim(img, truth, drange),
            "mean_bias": float(np.mean(img - truth)),  # a level offset costs PSNR but hardly SSIM
        }
        f, p = azimuthal_power_spectrum(img)
        spectra[key] = (f / output_scale, p * output_scale**2)
    # Power against the truth's in bands above HMI's Nyquist frequency (0.99 arcsec^-1).
    f_t, p_t = spectra["truth"]
    ratios = {key: band_power_ratio(f_t, spectra[key][1], p_t, bands) for key in outputs}
    names = [f"{a:g}-{b:g}" for a, b in bands]
    signs = None
    if kind == "blos":
        # The real-HMI sign-flip check compares against the input; here the truth says which flips are right.
        low_up = upsample_nearest(low)
        signs = {
            "truth_flips_vs_input": sign_flip_fraction(truth, low_up, 0.1),  # 100 G in kG
            "flips_vs_input": {k: sign_flip_fraction(img, low_up, 0.1) for k, img in outputs.items()},
            "wrong_sign_vs_truth": {k: sign_flip_fraction(img, truth, 0.1) for k, img in outputs.items()},
        }
    for version in ("v1", "v2"):
        if version in scores and "bicubic" in scores and "rl" in scores:
            scores[version]["gain_vs_bicubic_db"] = scores[version]["psnr_db"] - scores["bicubic"]["psnr_db"]
            scores[version]["gain_vs_rl_db"] = scores[version]["psnr_db"] - scores["rl"]["psnr_db"]
    return {
        "data_range": drange,
        "scores": scores,
        "signs_over_100G": signs,
        "power_ratio_bands": {band: {k: r[band] for k, r in ratios.items() if band in r} for band in names},
        "spectra": spectra,
    }


def continuum_scores(image: np.ndarray, outputs: dict[str, np.ndarray], level: float, border: int) -> dict:
    """
    Scores of real HMI continuum through each method: quiet-Sun contrast, forward consistency and the umbra.

    Parameters
    ----------
    image : numpy.ndarray
        The HMI continuum image, in any unit.
    outputs : dict
        Method name to its x2 output, in the unit of ``image``.
    level : float
        The quiet-Sun level of ``image`` (I/Ic = ``image / level``).
    border : int
        Input pixels left out at the edges for the forward consistency (the PSF kernel's radius).

    Returns
    -------
    dict
        ``quiet_sun_level``, ``quiet_sun_pixels`` (of `sunpy_nn.validation.quiet_sun_mask`), ``contrast`` (input and
        each method: `sunpy_nn.metrics.rms_contrast` there), ``forward_consistency`` (each method,
        `sunpy_nn.metrics.forward_consistency`), and the ``darkest_1pct`` and ``darkest_0.1pct`` levels of
        `sunpy_nn.validation.darkest_levels`.
    """
    qs = quiet_sun_mask(image / level)
    fc_mask = interior_mask(image.shape, border)
    r = {
        "quiet_sun_level": level,
        "quiet_sun_pixels": int(qs.sum()),
        "contrast": {"input": rms_contrast(image, qs)},
        "forward_consistency": {},
    }
    for key, img in outputs.items():
        r["contrast"][key] = rms_contrast(img, upsample_nearest(qs))
        r["forward_consistency"][key] = forward_consistency(img, image, mask=fc_mask)
    r.update(darkest_levels(image, outputs, level))
    return r


def magnetogram_scores(blos: np.ndarray, outputs: dict[str, np.ndarray], pixel_area_cm2: float, border: int) -> dict:
    """
    Scores of a real HMI magnetogram through each method: unsigned flux, sign flips and forward consistency.

    Parameters
    ----------
    blos : numpy.ndarray
        The line-of-sight field in G (or Mx/cm^2).
    outputs : dict
        Method name to its x2 output, in G.
    pixel_area_cm2 : float
        Area of one input pixel on the Sun, cm^2 (an output pixel is a quarter of it).
    border : int
        Input pixels left out at the edges for the forward consistency (the PSF kernel's radius).

    Returns
    -------
    dict
        ``pixels_over_100G_output``, ``pixels_over_500G_input_interior``, and per method (the flux also for
        ``input``): ``unsigned_flux_mx``, ``flux_ratio`` (over the input's), ``sign_flip_fraction`` (where the
        input has ``|B| > 100 G``), ``forward_consistency_over_500G`` and ``median_out_over_in_0.8_1.2_kG`` (the
        median output over input where the input has 0.8-1.2 kG; None without such pixels).
    """
    bu = upsample_nearest(blos)
    strong = np.abs(bu) > 100
    m500 = (np.abs(blos) > 500) & interior_mask(blos.shape, border)
    r = {
        "pixels_over_100G_output": int(strong.sum()),
        "pixels_over_500G_input_interior": int(m500.sum()),
        "unsigned_flux_mx": {"input": float(np.abs(blos).sum() * pixel_area_cm2)},
        "flux_ratio": {},
        "sign_flip_fraction": {},
        "forward_consistency_over_500G": {},
        "median_out_over_in_0.8_1.2_kG": {},
    }
    kg = (np.abs(bu) > 800) & (np.abs(bu) < 1200)
    for key, img in outputs.items():
        r["unsigned_flux_mx"][key] = float(np.abs(img).sum() * pixel_area_cm2 / 4)
        r["flux_ratio"][key] = r["unsigned_flux_mx"][key] / r["unsigned_flux_mx"]["input"]
        r["sign_flip_fraction"][key] = sign_flip_fraction(img, bu, 100)
        r["forward_consistency_over_500G"][key] = forward_consistency(img, blos, mask=m500)
        r["median_out_over_in_0.8_1.2_kG"][key] = float(np.median(img[kg] / bu[kg])) if kg.any() else None
    return r


# ------------------------------------------------------------------------------------------------------ targets
def _row(group: str, check: str, target: str, values: dict, text, met) -> dict:
    """A target row: for v1 and v2 the measured value, its text and whether it meets the target."""
    return {"group": group, "check": check, "target": target} | {
        v: target_cell(values.get(v), text, met) for v in ("v1", "v2")
    }


def held_out_targets(cases: list[dict]) -> list[dict]:
    """
    The PSNR gains of Enhance v1 and v2 on the held-out frames against `TARGETS`.

    Parameters
    ----------
    cases : list of dict
        The benchmark's held-out cases: ``frame``, ``kind``, ``detector``, ``rl_best_iterations`` and ``scores``
        (method to ``psnr_db``, and for v1 and v2 ``gain_vs_bicubic_db`` and ``gain_vs_rl_db``).

    Returns
    -------
    list of dict
        Two rows per case (against bicubic and against the best Richardson-Lucy): ``group``, ``check``,
        ``target``, and for ``v1`` and ``v2`` a `sunpy_nn.report.target_cell`.
    """
    rows = []
    for c in cases:
        sc = c["scores"]
        name = f"{FRAME_TITLES[c['frame']]} held out, {c['detector']} detector"
        for key, other, need in (
            ("gain_vs_bicubic_db", "bicubic", TARGETS["gain_vs_bicubic_db"]),
            ("gain_vs_rl_db", f"best RL ({c['rl_best_iterations']} it.)", TARGETS["gain_vs_rl_db"][c["kind"]]),
        ):
            row = {"group": "held-out frames", "check": f"{name}: PSNR - {other}", "target": f">= +{need:g} dB"}
            for v in ("v1", "v2"):
                row[v] = target_cell(
                    sc[v][key] if v in sc else None, lambda x: f"{x:+.2f} dB", lambda x, need=need: x >= need
                )
            rows.append(row)
    return rows


def _off_limb_text(x: dict) -> str:
    if x["mean_abs_beyond_2px"] is None:
        return "masked"
    masked = x["masked_fraction_beyond_2px"]
    return f"{x['mean_abs_beyond_2px']:.4f}" + (f" ({pct(masked, 0)} masked)" if masked else "")


def _ring(x: dict) -> str:
    return " / ".join(
        "masked" if x[f"ringing_{s}"] is None else f"{x[f'ringing_{s}']:.3f}" for s in ("inside", "outside")
    )


def real_targets(cont: dict, blos: dict, limb: dict, rl_iterations: int) -> list[dict]:
    """
    The checks on real HMI data against `TARGETS`: umbrae, granulation contrast, forward consistency, flux,
    sign flips, the off-limb level and ringing at the limb.

    Parameters
    ----------
    cont, blos, limb : dict
        The benchmark's ``continuum``, ``blos`` and ``limb`` sections.
    rl_iterations : int
        The Richardson-Lucy iterations on real data (named in the checks).

    Returns
    -------
    list of dict
        Rows as `held_out_targets` returns them.
    """
    rows = []
    lo, hi = TARGETS["qs_contrast"]
    for (name, title), q in itertools.product(
        (("sunspot", "HMI sunspot cut-out"), ("sharp", "SHARP 11158")), ("1", "0.1")
    ):
        d = cont[name][f"darkest_{q}pct"]
        rows.append(
            _row(
                "umbrae",
                f"{title}: mean I/Ic over the darkest {q} % of the input (input {d['input']:.3f}; "
                f"RL {rl_iterations} it. {d['rl']:.3f})",
                "darker than the input",
                {v: d.get(v) for v in ("v1", "v2")},
                lambda x: f"{x:.3f}",
                lambda x, d=d: x < d["input"],
            )
        )
    for name, title in (("quiet_sun", "hmi_qs_continuum_130"), ("sunspot", "quiet part of the sunspot cut-out")):
        c = cont[name]["contrast"]
        check = f"Quiet-Sun rms contrast, {title} (input {pct(c['input'])}; RL {pct(c['rl'])})"
        target = f"{100 * lo:g}-{100 * hi:g} %"
        rows.append(_row("real HMI", check, target, c, pct, lambda x: lo <= x <= hi))
    for name, title in (("sunspot", "sunspot cut-out"), ("quiet_sun", "hmi_qs_continuum_130")):
        f = cont[name]["forward_consistency"]
        check = f"Forward consistency, continuum, {title} (RL {pct(f['rl'])})"
        need = TARGETS["forward_continuum"]
        rows.append(_row("real HMI", check, f"<= {pct(need, 0)}", f, pct, lambda x, need=need: x <= need))
    need, tol = TARGETS["forward_blos"], TARGETS["flux_tolerance"]
    for name, title in (("blos_200", "hmi_blos_200"), ("sharp", "SHARP 11158 magnetogram")):
        r = blos[name]
        f, fr, sf = r["forward_consistency_over_500G"], r["flux_ratio"], r["sign_flip_fraction"]
        check = f"Forward consistency where |B| > 500 G, {title} (RL {pct(f['rl'])})"
        rows.append(_row("real HMI", check, f"<= {pct(need, 0)}", f, pct, lambda x: x <= need))
        check = f"Unsigned flux after / before, {title} (bicubic {fr['bicubic']:.3f}; RL {fr['rl']:.3f})"
        rows.append(_row("real HMI", check, f"1 +- {tol:g}", fr, lambda x: f"{x:.3f}", lambda x: abs(x - 1) <= tol))
        check = f"Sign flips where |B_in| > 100 G, {title} (bicubic {pct(sf['bicubic'])}; RL {pct(sf['rl'])})"
        rows.append(_row("real HMI", check, "no more than bicubic's", sf, pct, lambda x, b=sf["bicubic"]: x <= b))
    for name, title in (("limb_cutout", "limb cut-out"), ("full_disk", 'full-disk test map (20.7"/px)')):
        o = limb[name]["off_limb"]
        rl = f"RL {o['rl']['mean_abs_beyond_2px']:.4f}" if "rl" in o else "no RL: the PSF is under a pixel"
        rows.append(
            _row(
                "limb",
                f"Off-limb level, {title}: mean |I| more than 2 input px outside the limb ({rl})",
                f"< {TARGETS['off_limb']:g} I/Ic, or masked",
                {v: {k: o[v][k] for k in ("mean_abs_beyond_2px", "masked_fraction_beyond_2px")} for v in o},
                _off_limb_text,
                lambda x: x["mean_abs_beyond_2px"] is None or x["mean_abs_beyond_2px"] < TARGETS["off_limb"],
            )
        )
    e = limb["limb_cutout"]["edge"]
    rows.append(
        _row(
            "limb",
            "Limb cut-out, ringing across the limb: the largest drop of the mean profile going inwards within 6 arcsec "
            f"inside / outside the limb (input {_ring(e['input'])}; RL {_ring(e['rl'])})",
            f"<= {TARGETS['limb_ringing']:g} I/Ic each",
            {v: {f"ringing_{s}": e[v][f"ringing_{s}"] for s in ("inside", "outside")} for v in e},
            _ring,
            lambda x: all(
                x[f"ringing_{s}"] is None or x[f"ringing_{s}"] <= TARGETS["limb_ringing"] for s in ("inside", "outside")
            ),
        )
    )
    return rows


# ------------------------------------------------------------------------------------------------------- tables
def _held_out(cases: list[dict]) -> list[tuple[str, list, list]]:
    """The held-out tables: PSNR / SSIM, mean bias, power above HMI's Nyquist frequency and magnetogram signs."""
    extra = cases[0]["rl_psnr_extra_iterations_info"]["iterations"]
    scores, bias, power, signs = [], [], [], []
    for c in cases:
        sc, frame = c["scores"], FRAME_TITLES[c["frame"]]
        scores.append(
            [frame, c["detector"], f"{sc['bicubic']['psnr_db']:.2f} / {sc['bicubic']['ssim']:.3f}"]
            + [f"{sc['rl']['psnr_db']:.2f} / {sc['rl']['ssim']:.3f} ({c['rl_best_iterations']} it.)"]
            + [f"{sc[v]['psnr_db']:.2f} / {sc[v]['ssim']:.3f}" if v in sc else "n/a" for v in ("v1", "v2")]
            + [f"{c['rl_psnr_extra_iterations_info']['psnr_db']:.2f}"]
        )
        bias.append([frame, c["detector"]] + [f"{sc[k]['mean_bias']:+.4f}" if k in sc else "n/a" for k in METHODS])
        for band, ratios in c["power_ratio_bands"].items():
            power.append([f"{frame}, {c['detector']}, {band} arcsec^-1"] + [fmt(ratios.get(k), ".2f") for k in METHODS])
        sg = c.get("signs_over_100G")
        if sg:
            name = f"{frame}, {c['detector']}"
            signs.append(
                [f"{name}: flips vs the input (truth {pct(sg['truth_flips_vs_input'], 3)})"]
                + [pct(sg["flips_vs_input"].get(k), 3) for k in METHODS]
            )
            signs.append(
                [f"{name}: wrong sign vs the truth"] + [pct(sg["wrong_sign_vs_truth"].get(k), 3) for k in METHODS]
            )
    tables = [
        (
            "Held-out regions: PSNR [dB] / SSIM against the 28 cm truth",
            ["Frame", "Detector", *_COLUMNS, f"RL {extra} it. PSNR (not in the targets)"],
            scores,
        ),
        ("Held-out regions: mean of (method - truth), in I/Ic or kG", ["Frame", "Detector", *_COLUMNS], bias),
        (
            "Held-out regions: power over the truth's power above HMI's Nyquist frequency",
            ["frame, detector, band", "bicubic x2", "RL (best)", "Enhance v1", "Enhance v2"],
            power,
        ),
    ]
    if signs:
        header = ["quantity", "bicubic x2", "RL (best)", "Enhance v1", "Enhance v2"]
        tables.append(("Held-out magnetogram: signs where |B| > 100 G", header, signs))
    return tables


def _real(summary: dict) -> list[tuple[str, list, list]]:
    """The tables of flat fields, umbrae, real continuum and magnetograms, and the limb."""
    cont, blos, limb, flats = summary["continuum"], summary["blos"], summary["limb"], summary["flat_fields"]
    rl_real = summary["settings"]["rl_iterations_real_data"]
    keys, bkeys = ["rl", "v1", "v2"], ["bicubic", "rl", "v1", "v2"]
    head = ["Image", "HMI input", f"RL {rl_real} it.", "Enhance v1", "Enhance v2"]
    names = {"quiet_sun": "quiet Sun (130 x 130)", "sunspot": "sunspot cut-out", "sharp": "SHARP 11158"}
    flat = [
        [f"{kind}: {level:g} {'I/Ic' if kind == 'intensity' else 'kG'}"]
        + [fmt(flats[kind][v][i], ".4f") if v in flats[kind] else "n/a" for v in ("v1", "v2")]
        for kind in flats
        for i, level in enumerate(flats[kind]["level"])
    ]
    umbrae = [
        [f"{names[n]}, darkest {q} % ({cont[n][f'darkest_{q}pct']['pixels']} px)"]
        + [fmt(cont[n][f"darkest_{q}pct"].get(k)) for k in ("input", *keys)]
        for n in ("sunspot", "sharp")
        for q in ("1", "0.1")
    ]
    continuum = [
        [names[n], pct(cont[n]["contrast"]["input"])] + [pct(cont[n]["contrast"].get(k)) for k in keys] for n in names
    ]
    continuum += [
        [f"{names[n]}: forward consistency", ""] + [pct(cont[n]["forward_consistency"].get(k)) for k in keys]
        for n in names
    ]
    fields = []
    for n, title in (("blos_200", "hmi_blos_200"), ("sharp", "SHARP 11158")):
        r = blos[n]
        fields += [
            [f"{title}: unsigned flux ratio"] + [fmt(r["flux_ratio"].get(k)) for k in bkeys],
            [f"{title}: sign flips where |B_in| > 100 G"] + [pct(r["sign_flip_fraction"].get(k)) for k in bkeys],
            [f"{title}: forward consistency, |B| > 500 G"]
            + [pct(r["forward_consistency_over_500G"].get(k)) for k in bkeys],
            [f"{title}: median out/in at 0.8-1.2 kG"] + [fmt(r["median_out_over_in_0.8_1.2_kG"].get(k)) for k in bkeys],
        ]
    off = []
    for n, title in (("limb_cutout", "limb cut-out"), ("full_disk", "full-disk test map")):
        o = limb[n]["off_limb"]
        for band in o["input"]["bands"]:
            off.append(
                [f"{title}, {band}: mean / 99th percentile |I|"]
                + [
                    "n/a"
                    if k not in o
                    else f"{o[k]['bands'][band]['mean_abs']:.4f} / {o[k]['bands'][band]['p99_abs']:.4f}"
                    for k in ("input", *keys)
                ]
            )
    return [
        (
            "Flat fields: mean output level (the truth is the input level)",
            ["Input level", "Enhance v1", "Enhance v2"],
            flat,
        ),
        ("Umbrae: mean I/Ic over the input's darkest pixels", head, umbrae),
        ("Real HMI continuum: quiet-Sun rms contrast and forward consistency", head, continuum),
        ("Real HMI magnetograms", ["Quantity", "bicubic x2", f"RL {rl_real} it.", "Enhance v1", "Enhance v2"], fields),
        ("The limb: off-disk output (I/Ic of the disk centre; input set to 0 there)", head, off),
    ]


def report_tables(summary: dict) -> list[tuple[str, list, list]]:
    """
    Every table of the report, in the docs' order: targets, held-out frames, flat fields, real data, the limb.

    Parameters
    ----------
    summary : dict
        The benchmark's summary (as written to ``summary.json``).

    Returns
    -------
    list of tuple
        ``(title, header, rows)`` for `sunpy_nn.report.rst_list_table` or `sunpy_nn.report.text_table`.
    """
    targets = [
        [
            t["check"],
            t["target"],
            t["v1"]["text"],
            status_text(t["v1"]["met"]),
            t["v2"]["text"],
            status_text(t["v2"]["met"]),
        ]
        for t in summary["targets"]
    ]
    return [
        ("Targets", ["Check", "Target", "v1", "v1 status", "v2", "v2 status"], targets),
        *_held_out(summary["held_out"]),
        *_real(summary),
    ]


def _describe(info: dict) -> str:
    if not info.get("name"):
        return f"not evaluated ({info.get('note', 'no weights')})"
    extra = f", file of {info['file_time']}" if info.get("checkpoint") else ""
    return f"``{info['name']}`` (sha256 ``{(info.get('sha256') or 'none')[:12]}``{extra})"


def summary_rst(summary: dict, figure_prefix: str = "") -> str:
    """
    The reStructuredText of the report (``summary.inc``): the run, the weights, the targets met, every table of
    `report_tables` and the figures.

    Parameters
    ----------
    summary : dict
        The benchmark's summary (as written to ``summary.json``).
    figure_prefix : str
        Prepended to each figure's file name (the docs' ``/_static/validation/``).

    Returns
    -------
    str
        The file's lines joined by newlines: a comment that it is generated, the run (date, version, run time,
        threads), one line per weights file, the targets met per version, the tables, and the figures with captions.
    """
    lines = [
        ".. This file is written by benchmarks/validate_enhance.py; do not edit it by hand.",
        "",
        (
            f"Run {summary['date']} with sunpy_nn {summary['sunpy_nn_version']} in {summary['runtime_s']:.0f} s "
            f"({summary['threads']} thread). Weights:"
        ),
        "",
    ]
    lines += [
        f"* {kind} {v}: {_describe(summary['weights'][kind][v])}"
        for kind in ("intensity", "blos")
        for v in ("v1", "v2")
    ]
    counts = []
    for v in ("v1", "v2"):
        met = [t[v]["met"] for t in summary["targets"] if t[v]["met"] is not None]
        counts.append(f"Enhance {v} {sum(met)} of {len(met)}" if met else f"Enhance {v} not evaluated")
    lines += ["", f"Targets met: {', '.join(counts)}.", ""]
    for title, header, rows in report_tables(summary):
        lines += rst_list_table(title, header, rows)
    for name, cap in summary["figures"]:
        lines += [f".. figure:: {figure_prefix}{name}", "   :width: 100%", "", f"   {rst_escape(cap)}", ""]
    return "\n".join(lines)


def write_report(summary: dict, out: str | Path, docs_dir: str | Path | None = None) -> None:
    """
    Write the report: ``summary.json`` and ``summary.inc`` in ``out`` (beside its figures), and optionally the docs'
    copy of all three.

    Parameters
    ----------
    summary : dict
        The benchmark's summary, JSON-ready (`sunpy_nn.report.jsonable`); its ``figures`` name PNG files in ``out``.
    out : str or path
        The benchmark's output folder.
    docs_dir : str or path, optional
        The docs' folder (``docs/_static/validation``): its PNG files are replaced by the summary's figures, and the
        summary is written there with figure paths under ``/_static/validation/``.
    """
    out = Path(out)
    with open(out / "summary.json", "w") as f:
        json.dump(summary, f, indent=1)
    (out / "summary.inc").write_text(summary_rst(summary))
    if docs_dir is not None:
        docs = Path(docs_dir)
        docs.mkdir(parents=True, exist_ok=True)
        for old in docs.glob("*.png"):  # a figure no longer drawn must not linger in the docs
            old.unlink()
        for name, _ in summary["figures"]:
            shutil.copy(out / name, docs / name)
        shutil.copy(out / "summary.json", docs / "summary.json")
        (docs / "summary.inc").write_text(summary_rst(summary, "/_static/validation/"))
