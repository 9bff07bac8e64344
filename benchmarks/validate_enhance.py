"""
Validation report of the Enhance weights (issue 12): held-out real frames, real HMI, umbrae and the limb.

    python benchmarks/validate_enhance.py                  # writes benchmarks/results/validate_enhance/
    python benchmarks/validate_enhance.py --docs           # ... and refreshes docs/_static/validation/
    python benchmarks/validate_enhance.py --weights-intensity-v2 ../main/scripts/runs/intensity_v2/checkpoint.pt

Methods compared: bicubic x2 interpolation, Richardson-Lucy (bilinear x2 + deconvolution with the same modified
HMI PSF, `sunpy_nn.baselines.richardson_lucy`), Enhance v1 and Enhance v2. ``--weights-<kind>-v1`` and
``--weights-<kind>-v2`` take a registered name, a ``.pt`` weight file, or a training ``checkpoint.pt`` (its
``best_state`` is loaded into ``EnhanceNet(depth=5, n_filters=64)``). By default the registered
``enhance_<kind>_v1`` and ``enhance_<kind>_v2`` are used; a missing v2 is skipped with a note.

1. **Held-out frames** (synthetic degradation). The real high-resolution frames of ``../shared/data/hires`` and
   the MURaM snapshot, in network units (`sunpy_nn.training.sources.load_reference_sources`: I/Ic at 617.3 nm,
   or kG). The whole valid frame is degraded with `sunpy_nn.training.degradation.degrade_scene` (modified HMI PSF,
   0.504"/px, default noise, fixed seed) under two detector models, ``point`` (pixel-centre sampling, as the paper
   degraded its simulation) and ``area`` (pixel-area integration, as v1 was trained); its truth is the 28 cm
   Airy image at 0.252"/px. Every method runs on the whole degraded frame (so it sees context) and is compared
   with the truth only inside the held-out columns (the right quarter of the valid area, which training never
   touched), less a border of `BORDER` HMI pixels: PSNR, SSIM (7 x 7 uniform window) and azimuthal power spectra.
   Richardson-Lucy is run at 10, 20, 40 and 80 iterations and the one with the highest PSNR is reported.
2. **Targets** on those held-out parts, under both detector models: v2 >= bicubic + 3 dB and v2 >= best RL + 1 dB
   (intensity) or + 0.5 dB (magnetogram).
3. **Umbrae**: the darkest 1 % (and 0.1 %) of the pixels of two real HMI sunspots (the 200 x 200 cut-out and the
   SHARP of NOAA 11158), before and after each method.
4. **Real HMI** through `sunpy_nn.enhance_map` (the user path; maps are built with a WCS where the file has
   none): quiet-Sun granulation contrast, forward consistency (`sunpy_nn.metrics.forward_consistency`), unsigned
   magnetic flux and sign flips of strong fields.
5. **The limb**: off-limb zeros and the limb-darkened edge, on a real HMI limb cut-out and sunpy's full-disk
   test map.

Writes ``summary.json`` (every number), ``summary.inc`` (the RST tables included by
``docs/guide/validation.rst``) and PNG figures. About 1-2 minutes on one CPU thread. The measurements are those
of `sunpy_nn.metrics` and `sunpy_nn.validation`; the targets and tables are `sunpy_nn.validation_report`'s: this
script loads the data, runs the methods, and draws the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
import warnings
from pathlib import Path

import astropy.units as u
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from astropy.coordinates import SkyCoord
from astropy.io import fits
from scipy import ndimage

from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC
from sunpy_nn.report import format_percent as pct
from sunpy_nn.report import jsonable, text_table
from sunpy_nn.validation import (
    band_power_ratio,
    darkest_levels,
    held_out_box,
    interior_mask,
    limb_distance,
    limb_geometry,
    limb_profile,
    off_limb_levels,
    quiet_sun_mask,
    sign_flip_fraction,
    upsample_nearest,
)
from sunpy_nn.validation_report import FRAME_TITLES, METHODS, held_out_targets, real_targets, report_tables, summary_rst

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT_DEFAULT = ROOT / "benchmarks" / "results" / "validate_enhance"
DOCS_DIR = ROOT / "docs" / "_static" / "validation"
FILES = {
    "qs": "enhance/hmi_qs_continuum_130.npy",
    "sunspot": "enhance/hmi_continuum_sunspot_200.fits",
    "blos": "enhance/hmi_blos_200.fits",
    "limb": "enhance/hmi_continuum_limb_400x500.fits",
    "sharp_continuum": "sharp/hmi.sharp_cea_720s.377.20110215_020000_TAI.continuum.fits",
    "sharp_blos": "sharp/hmi.sharp_cea_720s.377.20110215_020000_TAI.magnetogram.fits",
}
HMI_SCALE = HMI_PIXEL_SCALE_ARCSEC  # arcsec/px, the package's one value
OUT_SCALE = HMI_SCALE / 2
SEED = 20180501  # noise of degrade_scene
BORDER = 4  # HMI pixels left out around the held-out columns (2 arcsec)
RL_ITERATIONS = (10, 20, 40, 80)  # scanned on the held-out frames; the best PSNR is reported
RL_EXTRA = 160  # also run, for information only: is Richardson-Lucy still improving at the end of the scan?
POWER_BANDS = ((1.0, 1.5), (1.5, 2.0))  # arcsec^-1; the output Nyquist frequency is 1.98
RL_REAL = 20  # Richardson-Lucy iterations on real HMI (the paper used 20-30)
PSF_BORDER = math.ceil(4.4 / HMI_SCALE)  # HMI pixels within the PSF kernel radius of an edge
KM_PER_ARCSEC = 725.0  # at 1 au, disk centre
PIXEL_AREA_CM2 = (HMI_SCALE * KM_PER_ARCSEC * 1e5) ** 2
OBSTIME = "2014-01-01T00:00:00"  # observer date of the WCS built for cut-outs without one
LABELS = {
    "input": "HMI input",
    "bicubic": "bicubic x2",
    "rl": "Richardson-Lucy",
    "v1": "Enhance v1",
    "v2": "Enhance v2",
}
STYLES = {"input": "k:", "truth": "k-", "bicubic": "C0-", "rl": "C1-", "v1": "C2-", "v2": "C3-"}
FIGURES: list[tuple[str, str]] = []  # (file name, caption)


# ----------------------------------------------------------------------------------------------------- helpers
def bicubic(a: np.ndarray) -> np.ndarray:
    """Bicubic x2 interpolation, pixel edges kept in place."""
    return ndimage.zoom(a, 2, order=3, grid_mode=True, mode="reflect")


def save(fig, out: Path, name: str, caption: str) -> None:
    fig.savefig(out / name, dpi=100, bbox_inches="tight")
    plt.close(fig)
    FIGURES.append((name, caption))


def show(ax, img, scale, title, vmin=None, vmax=None, cmap="gray"):
    ny, nx = img.shape
    im = ax.imshow(img, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, extent=[0, nx * scale, 0, ny * scale])
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    return im


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(text_table(title, header, rows))


def hmi_map(data: np.ndarray, unit, reference_pixel=None):
    """A sunpy map of an HMI cut-out that has no WCS: 0.504"/px, seen from Earth, centred on the disk centre
    unless ``reference_pixel`` (0-based x, y of the disk centre) says where that is."""
    import sunpy.map
    from sunpy.coordinates import frames

    centre = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime=OBSTIME, observer="earth", frame=frames.Helioprojective)
    header = sunpy.map.make_fitswcs_header(
        data,
        centre,
        reference_pixel=None if reference_pixel is None else u.Quantity(reference_pixel, u.pix),
        scale=[HMI_SCALE, HMI_SCALE] * u.arcsec / u.pix,
        instrument="HMI",
        observatory="SDO",
        wavelength=6173 * u.AA,
        unit=unit,
    )
    return sunpy.map.Map(data, header)


def read_sharp(path: Path):
    """A SHARP file as an HMIMap (HDU 1, RICE-compressed; one header card needs astropy's silentfix)."""
    import sunpy.map

    with fits.open(path) as hdul:
        hdul.verify("silentfix")
        data, header = hdul[1].data.astype(np.float64), hdul[1].header
    return sunpy.map.Map(data, header)


# ----------------------------------------------------------------------------------------------------- weights
def load_network(spec: str | None, kind: str, version: str) -> tuple[torch.nn.Module | None, dict]:
    """
    The network for a ``--weights-<kind>-<version>`` option: a registered name, a ``.pt`` weight file or a training
    ``checkpoint.pt``. Returns ``(None, info)`` with the reason when there is none (the column is then skipped).
    """
    from sunpy_nn.data import available_models
    from sunpy_nn.enhance import load_enhance_model
    from sunpy_nn.nn import EnhanceNet
    from sunpy_nn.utils import sha256sum

    if spec is None:
        spec = f"enhance_{kind}_{version}"
        if spec not in available_models():
            return None, {"name": None, "note": f"{spec} is not registered"}
    path = Path(spec).expanduser()
    if path.suffix == ".pt" and path.exists():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(blob, dict) and "best_state" in blob:  # a training checkpoint of sunpy_nn.training
            net = EnhanceNet(depth=5, n_filters=64)
            net.load_state_dict(blob["best_state"])
            history = blob.get("history", {})
            epochs = len(history.get("train_loss", []))
            best = history.get("best_epoch")
            return net.eval(), {
                "name": f"{kind} {version} checkpoint, best epoch {best} of {epochs} done",
                "path": str(path.resolve()),
                "sha256": sha256sum(path),
                "checkpoint": True,
                "best_epoch": best,
                "epochs_done": epochs,
                "val_loss": history.get("val_loss"),
                "file_time": time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime)),
                "architecture": "depth 5, 64 filters",
            }
    model, info = load_enhance_model(str(spec), kind)
    config = getattr(model, "config", {})
    return model.eval(), {
        "name": info.name,
        "path": str(info.path) if info.path else None,
        "sha256": info.sha256,
        "checkpoint": False,
        "architecture": f"depth {config.get('depth')}, {config.get('n_filters')} filters",
    }


# ---------------------------------------------------------------------------------------- 1. held-out frames
def held_out_case(source, detector: str, nets: dict, enhance) -> dict:
    """One frame under one detector model: every method on the whole degraded frame, scored on the held-out part."""
    from sunpy_nn.baselines import richardson_lucy
    from sunpy_nn.metrics import azimuthal_power_spectrum, psnr, ssim
    from sunpy_nn.training.degradation import degrade_scene

    y0, y1, x0, x1 = source.valid
    scene = source.image[y0:y1, x0:x1]
    low, truth = degrade_scene(scene, source.pixel_scale, kind=source.kind, detector=detector, seed=SEED)
    held = tuple(c - x0 for c in source.columns("validation"))
    r0, r1, c0, c1 = held_out_box(low.shape, held, HMI_SCALE / source.pixel_scale, BORDER)
    box_in = np.s_[r0:r1, c0:c1]
    box = np.s_[2 * r0 : 2 * r1, 2 * c0 : 2 * c1]
    tgt = truth[box]
    drange = float(tgt.max() - tgt.min())

    outputs = {"bicubic": bicubic(low)}
    rl_scan, rl_best = {}, None
    for n in (*RL_ITERATIONS, RL_EXTRA):
        rl = richardson_lucy(low, iterations=n, pixel_scale=HMI_SCALE)
        rl_scan[n] = psnr(rl[box], tgt, drange)
        if n in RL_ITERATIONS and (rl_best is None or rl_scan[n] > rl_scan[rl_best]):
            rl_best, outputs["rl"] = n, rl
    for version, net in nets.items():
        if net is not None:
            outputs[version] = enhance(low, net)

    scores, spectra = {}, {}
    f, p = azimuthal_power_spectrum(tgt)
    spectra["truth"] = (f / OUT_SCALE, p * OUT_SCALE**2)
    f, p = azimuthal_power_spectrum(low[box_in])
    spectra["input"] = (f / HMI_SCALE, p * HMI_SCALE**2)
    for key, img in outputs.items():
        scores[key] = {
            "psnr_db": psnr(img[box], tgt, drange),
            "ssim": ssim(img[box], tgt, drange),
            "mean_bias": float(np.mean(img[box] - tgt)),  # a level offset costs PSNR but hardly SSIM
        }
        f, p = azimuthal_power_spectrum(img[box])
        spectra[key] = (f / OUT_SCALE, p * OUT_SCALE**2)
    # Power against the truth's in two bands above HMI's Nyquist frequency (0.99 arcsec^-1).
    f_t, p_t = spectra["truth"]
    ratios = {key: band_power_ratio(f_t, spectra[key][1], p_t, POWER_BANDS) for key in outputs}
    names = [f"{a:g}-{b:g}" for a, b in POWER_BANDS]
    bands = {band: {k: r[band] for k, r in ratios.items() if band in r} for band in names}
    signs = None
    if source.kind == "blos":
        # The real-HMI sign-flip check compares against the input; here the truth says which flips are right.
        low_up = upsample_nearest(low)[box]
        signs = {
            "truth_flips_vs_input": sign_flip_fraction(tgt, low_up, 0.1),  # 100 G in kG
            "flips_vs_input": {k: sign_flip_fraction(img[box], low_up, 0.1) for k, img in outputs.items()},
            "wrong_sign_vs_truth": {k: sign_flip_fraction(img[box], tgt, 0.1) for k, img in outputs.items()},
        }
    for version in ("v1", "v2"):
        if version in scores:
            scores[version]["gain_vs_bicubic_db"] = scores[version]["psnr_db"] - scores["bicubic"]["psnr_db"]
            scores[version]["gain_vs_rl_db"] = scores[version]["psnr_db"] - scores["rl"]["psnr_db"]
    return {
        "frame": source.name,
        "kind": source.kind,
        "detector": detector,
        "scene_pixel_scale": source.pixel_scale,
        "input_shape": list(low.shape),
        "compared_input_pixels": {"rows": [r0, r1], "columns": [c0, c1]},
        "compared_arcsec": [(r1 - r0) * HMI_SCALE, (c1 - c0) * HMI_SCALE],
        "data_range": drange,
        "rl_psnr_by_iterations": {str(k): v for k, v in rl_scan.items()},
        "rl_best_iterations": rl_best,
        "rl_psnr_extra_iterations_info": {"iterations": RL_EXTRA, "psnr_db": rl_scan[RL_EXTRA]},
        "scores": scores,
        "signs_over_100G": signs,
        "power_ratio_bands": bands,
        "_spectra": spectra,
        "_images": {"input": low, "truth": truth, **outputs},
        "_box": (r0, r1, c0, c1),
    }


def held_out_section(nets: dict, enhance, out: Path) -> list[dict]:
    from sunpy_nn.training.sources import load_reference_sources

    sources = load_reference_sources(DATA, "intensity") + load_reference_sources(DATA, "blos", synthetic_blos_images=0)
    order = ["sst_sunspot", "imax_quiet_sun", "muram_quiet_sun", "gst_niris"]
    sources = sorted((s for s in sources if s.name in order), key=lambda s: order.index(s.name))
    cases = [held_out_case(s, det, nets[s.kind], enhance) for s in sources for det in ("point", "area")]

    held_out_figures(cases, out)
    return cases


def held_out_figures(cases: list[dict], out: Path) -> None:
    present = [m for m in METHODS if any(m in c["scores"] for c in cases)]
    point = [c for c in cases if c["detector"] == "point"]
    cols = ["input", *present, "truth"]
    fig, axes = plt.subplots(len(point), len(cols), figsize=(2.4 * len(cols), 2.6 * len(point)), squeeze=False)
    for row, c in zip(axes, point, strict=True):
        imgs = c["_images"]
        r0, r1, c0, c1 = c["_box"]
        vmin, vmax = np.percentile(imgs["truth"], [0.5, 99.5])
        for ax, key in zip(row, cols, strict=True):
            if key not in imgs:  # e.g. v2 weights for one kind only
                ax.axis("off")
                continue
            scale = HMI_SCALE if key == "input" else OUT_SCALE
            title = "truth (28 cm)" if key == "truth" else LABELS[key]
            if key == "rl":
                title += f" ({c['rl_best_iterations']} it.)"
            if key in c["scores"]:
                title += f"\n{c['scores'][key]['psnr_db']:.2f} dB, SSIM {c['scores'][key]['ssim']:.3f}"
            elif key == "input":
                title = f"{FRAME_TITLES[c['frame']]}\n{title} (point)"
            show(ax, imgs[key], scale, title, vmin, vmax, cmap="gray")
            ax.add_patch(
                plt.Rectangle(
                    (c0 * HMI_SCALE, r0 * HMI_SCALE),
                    (c1 - c0) * HMI_SCALE,
                    (r1 - r0) * HMI_SCALE,
                    fill=False,
                    ec="y",
                    lw=0.8,
                )
            )
    fig.tight_layout()
    save(
        fig,
        out,
        "held_out_images.png",
        "Each frame degraded with the point detector: the HMI-like input, every method and the 28 cm truth (axes in "
        "arcsec). Yellow: the held-out box where the scores are computed; left of it is what training used.",
    )

    frames = list(dict.fromkeys(c["frame"] for c in cases))
    for kind_of_plot in ("spectra", "ratio"):
        fig, axes = plt.subplots(2, len(frames), figsize=(4.2 * len(frames), 7), squeeze=False)
        for c in cases:
            ax = axes[("point", "area").index(c["detector"]), frames.index(c["frame"])]
            sp = c["_spectra"]
            p_t = sp["truth"][1]
            keys = (["input", "truth"] if kind_of_plot == "spectra" else []) + [m for m in present if m in sp]
            for key in keys:
                f_m, p_m = sp[key]
                label = "truth (28 cm)" if key == "truth" else LABELS[key]
                if key == "rl":
                    label += f" ({c['rl_best_iterations']} it.)"
                if kind_of_plot == "spectra":
                    ax.loglog(f_m, p_m, STYLES[key], label=label, lw=1.8 if key == "v2" else 1.2)
                else:
                    ax.loglog(f_m, p_m / p_t, STYLES[key], label=label, lw=1.8 if key == "v2" else 1.2)
            if kind_of_plot == "ratio":
                ax.axhline(1, color="k", lw=0.7)
                ax.set_ylim(1e-2, 1e2)
            ax.set_xlim(0.05, 2.2)
            ax.axvline(1 / (2 * HMI_SCALE), color="0.5", ls="--", lw=0.7)
            ax.set_title(f"{FRAME_TITLES[c['frame']]}, {c['detector']} detector", fontsize=9)
            ax.set_xlabel("spatial frequency [arcsec$^{-1}$]", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0, 0].legend(fontsize=7)
        axes[0, 0].set_ylabel("PSD [units$^2$ arcsec$^2$]" if kind_of_plot == "spectra" else "PSD / PSD(truth)")
        axes[1, 0].set_ylabel(axes[0, 0].get_ylabel())
        fig.tight_layout()
        if kind_of_plot == "spectra":
            save(
                fig,
                out,
                "held_out_power_spectra.png",
                "Azimuthal power spectral densities inside the held-out boxes (top: point detector, bottom: area "
                "detector). Dashed: HMI's Nyquist frequency.",
            )
        else:
            save(
                fig,
                out,
                "held_out_power_ratio.png",
                "The same spectra divided by the truth's: 1 is the 28 cm telescope's power at each frequency.",
            )


# ------------------------------------------------------------------------------------ 3./4. real HMI continuum
def locate(small: np.ndarray, big: np.ndarray) -> tuple[tuple[int, int], float]:
    """Offset (y, x) of the window of ``big`` most like ``small``, and their normalised cross-correlation there."""
    from scipy.signal import fftconvolve

    a = (small - small.mean()) / small.std()
    ones = np.ones_like(a)
    s1 = fftconvolve(big, ones, mode="valid")
    s2 = fftconvolve(big**2, ones, mode="valid")
    std = np.sqrt(np.maximum(s2 / a.size - (s1 / a.size) ** 2, 1e-30))
    ncc = fftconvolve(big, a[::-1, ::-1], mode="valid") / (a.size * std)
    iy, ix = np.unravel_index(np.argmax(ncc), ncc.shape)
    return (int(iy), int(ix)), float(ncc[iy, ix])


def run_map(smap, kind: str, nets: dict, **kw) -> dict:
    """Enhance v1/v2 through enhance_map, and Richardson-Lucy on the same map."""
    from sunpy_nn import enhance_map
    from sunpy_nn.baselines import richardson_lucy

    outs = {"rl": richardson_lucy(smap, iterations=RL_REAL).data.astype(np.float64)}
    for version, net in nets.items():
        if net is not None:
            outs[version] = enhance_map(smap, kind=kind, weights=net, progress=False, **kw).data.astype(np.float64)
    return outs


def flat_fields(nets: dict, enhance) -> dict:
    """Level preservation: a flat field (with the default noise) must come out at its own level, whatever it is."""
    levels = {"intensity": (0.2, 0.3, 0.5, 0.8, 1.0), "blos": (-1.5, -0.5, 0.1, 0.5, 1.5)}
    res = {}
    for kind, values in levels.items():
        sigma = 1e-3 if kind == "intensity" else 0.01
        noise = np.random.default_rng(SEED).normal(0.0, sigma, (48, 48))
        res[kind] = {"level": list(values)}
        for version, net in nets[kind].items():
            if net is not None:
                res[kind][version] = [float(enhance(level + noise, net)[16:-16, 16:-16].mean()) for level in values]
    return res


def continuum_section(nets: dict, out: Path) -> dict:
    from sunpy_nn.enhance import normalise
    from sunpy_nn.metrics import forward_consistency, rms_contrast

    res = {}

    def score(x, outs, level, name, file):
        fc_mask = interior_mask(x.shape, PSF_BORDER)
        qs = quiet_sun_mask(x / level)
        r = {
            "file": file,
            "quiet_sun_level": level,
            "quiet_sun_pixels": int(qs.sum()),
            "contrast": {"input": rms_contrast(x, qs)},
            "forward_consistency": {},
        }
        for key, img in outs.items():
            r["contrast"][key] = rms_contrast(img, upsample_nearest(qs))
            r["forward_consistency"][key] = forward_consistency(img, x, mask=fc_mask)
        r.update(darkest_levels(x, outs, level))
        res[name] = r
        return r

    # quiet Sun (raw DN/s)
    qs_raw = np.load(DATA / FILES["qs"]).astype(np.float64)
    qs_map = hmi_map(qs_raw, u.Unit("DN/s"))
    qs_outs = run_map(qs_map, "intensity", nets)
    level = normalise(qs_map, qs_raw, "intensity").scale
    r = score(qs_raw, qs_outs, level, "quiet_sun", FILES["qs"])
    r["quiet_sun_mask"] = "5 px from the edges (no I/Ic < 0.9 pixel in the image)"
    # sunspot cut-out (already I/Ic)
    spot = fits.getdata(DATA / FILES["sunspot"]).astype(np.float64)
    spot_outs = run_map(hmi_map(spot, u.dimensionless_unscaled), "intensity", nets)
    r = score(spot, spot_outs, 1.0, "sunspot", FILES["sunspot"])
    r["quiet_sun_mask"] = 'I/Ic >= 0.9 and more than 6 px (3") from any darker pixel, 5 px from the edges'
    # SHARP continuum of NOAA 11158 (DN/s, CEA)
    sharp = read_sharp(DATA / FILES["sharp_continuum"])
    sharp_outs = run_map(sharp, "intensity", nets)
    level = normalise(sharp, np.asarray(sharp.data, np.float64), "intensity").scale
    r = score(np.asarray(sharp.data, np.float64), sharp_outs, level, "sharp", FILES["sharp_continuum"])
    r["quiet_sun_mask"] = 'I/Ic >= 0.9 and more than 6 px (3") from any darker pixel, 5 px from the edges'
    r["note"] = "CEA remap at 0.03 deg/px (about 0.5 arcsec): the HMI PSF applies only approximately"
    offset, ncc = locate(spot, np.asarray(sharp.data, np.float64))
    r["sunspot_cutout_match"] = {"offset_yx_px": list(offset), "normalised_cross_correlation": ncc}
    print(f"The sunspot cut-out matches the SHARP at offset {offset} with a correlation of {ncc:.2f}: the same spot.")

    continuum_figures(
        out, res, {"quiet_sun": (qs_raw, qs_outs), "sunspot": (spot, spot_outs), "sharp": (sharp.data, sharp_outs)}
    )
    return res


def continuum_figures(out: Path, res: dict, images: dict) -> None:
    from sunpy_nn.metrics import azimuthal_power_spectrum

    keys = [k for k in ("rl", "v1", "v2") if k in images["sunspot"][1]]
    label = {"rl": f"RL {RL_REAL} it.", "v1": "Enhance v1", "v2": "Enhance v2"}
    # umbrae: zoom on the darkest pixel of each sunspot
    fig, axes = plt.subplots(2, len(keys) + 2, figsize=(3.2 * (len(keys) + 2), 6.4), squeeze=False)
    for row, name in zip(axes, ("sunspot", "sharp"), strict=True):
        x, outs = images[name]
        x = np.asarray(x, np.float64)
        level = res[name]["quiet_sun_level"]
        iy, ix = np.unravel_index(np.argmin(ndimage.uniform_filter(x, 5)), x.shape)
        h = 30
        ys, xs = slice(max(iy - h, 0), iy + h), slice(max(ix - h, 0), ix + h)
        yo, xo = slice(2 * ys.start, 2 * ys.stop), slice(2 * xs.start, 2 * xs.stop)
        title = {"sunspot": "HMI sunspot cut-out", "sharp": "SHARP 11158"}[name]
        show(row[0], x[ys, xs] / level, HMI_SCALE, f"{title}: input", 0.1, 1.1)
        for ax, k in zip(row[1 : len(keys) + 1], keys, strict=True):
            show(ax, outs[k][yo, xo] / level, OUT_SCALE, label[k], 0.1, 1.1)
        ax = row[-1]
        d = res[name]
        for j, q in enumerate(("1", "0.1")):
            vals = [d[f"darkest_{q}pct"][k] for k in ("input", *keys)]
            bars = ax.bar(np.arange(len(vals)) + (j - 0.5) * 0.4, vals, 0.4, label=f"darkest {q} %")
            ax.bar_label(bars, fmt="%.3f", fontsize=6)
        ax.set_xticks(np.arange(len(keys) + 1), ["input", *[label[k] for k in keys]], fontsize=7, rotation=20)
        ax.set_ylabel("mean I/Ic over the input's darkest pixels", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save(
        fig,
        out,
        "umbrae.png",
        "Umbrae of the two real HMI sunspots (60 x 60 input pixels around the darkest point, I/Ic from 0.1 to 1.1) "
        "and the mean intensity over the darkest 1 % and 0.1 % of the input's pixels after each method.",
    )
    # quiet Sun: images and spectra
    x, outs = images["quiet_sun"]
    level = res["quiet_sun"]["quiet_sun_level"]
    fig, axes = plt.subplots(1, len(keys) + 2, figsize=(3.6 * (len(keys) + 2), 3.6))
    vmin, vmax = np.percentile(outs[keys[-1]] / level, [0.5, 99.5])
    show(
        axes[0],
        x / level,
        HMI_SCALE,
        f"HMI quiet Sun, contrast {pct(res['quiet_sun']['contrast']['input'])}",
        vmin,
        vmax,
    )
    for ax, k in zip(axes[1:-1], keys, strict=True):
        show(ax, outs[k] / level, OUT_SCALE, f"{label[k]}, contrast {pct(res['quiet_sun']['contrast'][k])}", vmin, vmax)
    ax = axes[-1]
    b = 5
    for img, scale, key in ((x, HMI_SCALE, "input"), *((outs[k], OUT_SCALE, k) for k in keys)):
        f = 1 if key == "input" else 2
        fr, p = azimuthal_power_spectrum(img[f * b : -f * b, f * b : -f * b] / level)
        ax.loglog(fr / scale, p * scale**2, STYLES[key], label=LABELS[key] if key != "rl" else label["rl"])
    ax.axvline(1 / (2 * HMI_SCALE), color="0.5", ls="--", lw=0.7)
    ax.set_xlabel("spatial frequency [arcsec$^{-1}$]", fontsize=8)
    ax.set_ylabel("PSD [(I/I$_c$)$^2$ arcsec$^2$]", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(
        fig,
        out,
        "real_quiet_sun.png",
        "Real HMI quiet Sun through enhance_map, with the azimuthal power spectra (dashed: HMI's Nyquist frequency).",
    )


# -------------------------------------------------------------------------------------- 4. real magnetograms
def blos_section(nets: dict, out: Path) -> dict:
    from sunpy_nn.metrics import forward_consistency

    res = {}
    b200 = fits.getdata(DATA / FILES["blos"]).astype(np.float64)
    maps = {
        "blos_200": (hmi_map(b200, u.G), FILES["blos"]),
        "sharp": (read_sharp(DATA / FILES["sharp_blos"]), FILES["sharp_blos"]),
    }
    images = {}
    for name, (smap, file) in maps.items():
        b = np.asarray(smap.data, np.float64)  # Gauss (Mx/cm^2 for the SHARP: the same number)
        outs = {"bicubic": bicubic(b), **run_map(smap, "blos", nets)}
        images[name] = (b, outs)
        bu = upsample_nearest(b)
        strong = np.abs(bu) > 100
        m500 = (np.abs(b) > 500) & interior_mask(b.shape, PSF_BORDER)
        r = {
            "file": file,
            "unit": smap.unit.to_string(),
            "pixels_over_100G_output": int(strong.sum()),
            "pixels_over_500G_input_interior": int(m500.sum()),
            "unsigned_flux_mx": {"input": float(np.abs(b).sum() * PIXEL_AREA_CM2)},
            "flux_ratio": {},
            "sign_flip_fraction": {},
            "forward_consistency_over_500G": {},
            "median_out_over_in_0.8_1.2_kG": {},
        }
        kg = (np.abs(bu) > 800) & (np.abs(bu) < 1200)
        for key, img in outs.items():
            r["unsigned_flux_mx"][key] = float(np.abs(img).sum() * PIXEL_AREA_CM2 / 4)
            r["flux_ratio"][key] = r["unsigned_flux_mx"][key] / r["unsigned_flux_mx"]["input"]
            r["sign_flip_fraction"][key] = sign_flip_fraction(img, bu, 100)
            r["forward_consistency_over_500G"][key] = forward_consistency(img, b, mask=m500)
            r["median_out_over_in_0.8_1.2_kG"][key] = float(np.median(img[kg] / bu[kg])) if kg.any() else None
        res[name] = r

    offset, ncc = locate(b200, images["sharp"][0])
    res["blos_200"]["sharp_match"] = {"offset_yx_px": list(offset), "normalised_cross_correlation": ncc}
    keys = ["bicubic", "rl", *[v for v in ("v1", "v2") if v in images["blos_200"][1]]]

    b, outs = images["blos_200"]
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(3.4 * (len(keys) + 1), 3.6))
    show(axes[0], b, HMI_SCALE, "HMI B$_{LOS}$ (hmi_blos_200)", -1500, 1500, cmap="RdBu_r")
    for ax, k in zip(axes[1:], keys, strict=True):
        r = res["blos_200"]
        show(
            ax,
            outs[k],
            OUT_SCALE,
            f"{LABELS[k] if k != 'rl' else f'RL {RL_REAL} it.'}\nflux x{r['flux_ratio'][k]:.3f}, "
            f"flips {pct(r['sign_flip_fraction'][k])}",
            -1500,
            1500,
            cmap="RdBu_r",
        )
    fig.tight_layout()
    save(
        fig,
        out,
        "real_blos.png",
        "Real HMI line-of-sight magnetogram (G, from -1500 to 1500) through each method, with the unsigned flux "
        "ratio and the fraction of sign flips where the input has more than 100 G.",
    )
    return res


# -------------------------------------------------------------------------------------------------- 5. limb
def limb_case(smap, data: np.ndarray, nets: dict, file: str, bands_px, note: str = "") -> dict:
    """Off-disk pixels set to 0, Enhance through enhance_map, the off-limb level and the profile across the limb."""
    from sunpy_nn import enhance_map
    from sunpy_nn.baselines import richardson_lucy
    from sunpy_nn.enhance import normalise

    scale_arcsec = smap.scale[0].to_value(u.arcsec / u.pix)
    xc, yc = (
        float(c) for c in smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    )
    radius = smap.rsun_obs.to_value(u.arcsec) / scale_arcsec
    dist = limb_distance(data.shape, (xc, yc), radius)  # input pixels inside the limb (negative: outside)
    data = np.where(dist < 0, 0.0, np.nan_to_num(data))
    smap = smap._new_instance(data, smap.meta)
    norm = normalise(smap, np.where(dist < 0, np.nan, data), "intensity")  # what enhance_map divides by
    outs = {"input": data}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for version, net in nets.items():
            if net is not None:
                enhanced = enhance_map(smap, kind="intensity", weights=net, progress=False)
                img = np.array(enhanced.data, np.float64)
                if enhanced.mask is not None:  # masked pixels count as masked, whatever their value
                    img[np.asarray(enhanced.mask, bool)] = np.nan
                outs[version] = img
    if abs(scale_arcsec / HMI_SCALE - 1) < 0.1:  # at 20"/px the HMI PSF is under one pixel: no deconvolution
        outs["rl"] = np.asarray(richardson_lucy(smap, iterations=RL_REAL).data, np.float64)
    dist_out = limb_distance(data.shape, (xc, yc), radius, factor=2)
    res = {
        "file": file,
        "note": note,
        "pixel_scale_arcsec": scale_arcsec,
        "disk_centre_px": [xc, yc],
        "radius_px": radius,
        "normalisation": norm.describe(),
        "disk_centre_intensity": norm.scale,
        "warnings": sorted({str(w.message)[:200] for w in caught}),
        "off_limb": {},
        "edge": {},
    }
    for key, img in outs.items():
        d = dist if key == "input" else dist_out
        res["off_limb"][key] = off_limb_levels(img, d, bands_px, norm.scale)
        res["edge"][key] = limb_profile(img, d, norm.scale)  # ringing within 12 input px of the limb
    res["_images"] = outs
    return res


def limb_section(nets: dict, out: Path) -> dict:
    import sunpy.data.test
    import sunpy.map

    res = {}
    limb = fits.getdata(DATA / FILES["limb"]).astype(np.float64)
    probe = hmi_map(limb, u.dimensionless_unscaled)
    radius = probe.rsun_obs.to_value(u.arcsec) / HMI_SCALE
    xc, yc, rms = limb_geometry(limb, radius)
    smap = hmi_map(limb, u.dimensionless_unscaled, reference_pixel=(xc, yc))
    res["limb_cutout"] = limb_case(
        smap,
        limb,
        nets,
        FILES["limb"],
        [(0, 2), (2, 6), (6, 20), (20, None)],
        note=f"WCS built with the disk centre fitted to the limb (circle of the radius seen from Earth on {OBSTIME}; "
        f"rms residual {rms:.2f} px); pixels outside that circle set to 0 (they held 0 and scattered light)",
    )
    full = sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))
    res["full_disk"] = limb_case(
        full,
        np.asarray(full.data, np.float64),
        nets,
        "sunpy.data.test: resampled_hmi.fits",
        [(0, 1), (1, 2), (2, 5), (5, None)],
        note="sunpy's 100 x 100 full-disk test map at 20.7 arcsec/px (41 times HMI's pixel): only the response to "
        "zeros beyond a limb is meaningful; NaN off-disk pixels set to 0",
    )
    keys = [k for k in ("rl", "v1", "v2") if k in res["limb_cutout"]["_images"]]
    label = {"input": "HMI input", "rl": f"RL {RL_REAL} it.", "v1": "Enhance v1", "v2": "Enhance v2"}
    r = res["limb_cutout"]

    # figure
    imgs = r["_images"]
    fig, axes = plt.subplots(2, len(keys) + 1, figsize=(3.6 * (len(keys) + 1), 7.2), squeeze=False)
    xc, yc = r["disk_centre_px"]
    row0 = 170
    col0 = max(int(xc - r["radius_px"] * math.cos(math.asin((row0 + 30 - yc) / r["radius_px"]))) - 15, 0)
    zoom = np.s_[row0 : row0 + 60, col0 : col0 + 60]
    zoom_out = np.s_[2 * row0 : 2 * row0 + 120, 2 * col0 : 2 * col0 + 120]
    s = r["disk_centre_intensity"]
    for ax, k in zip(axes[0], ("input", *keys), strict=True):
        img = imgs[k][zoom] if k == "input" else imgs[k][zoom_out]
        show(ax, img / s, HMI_SCALE if k == "input" else OUT_SCALE, f"{label[k]} (zoom at the limb)", -0.05, 0.6)
    ax = axes[1, 0]
    for k in ("input", *keys):
        e = r["edge"][k]
        ax.plot(np.array(e["distance_px"]) * HMI_SCALE, np.array(e["profile"], float), STYLES[k], label=label[k])
    ax.axvline(0, color="0.5", lw=0.6)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel("distance inside the limb [arcsec]", fontsize=8)
    ax.set_ylabel("mean I/I$_c$", fontsize=8)
    ax.set_title("Profile across the limb (limb cut-out)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    f = res["full_disk"]
    for k in ("input", *keys):
        if k not in f["edge"]:
            continue
        e = f["edge"][k]
        ax.plot(np.array(e["distance_px"]), np.array(e["profile"], float), STYLES[k], label=label[k])
    ax.axvline(0, color="0.5", lw=0.6)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel('distance inside the limb [input pixels of 20.7"]', fontsize=8)
    ax.set_title("Profile across the limb (full-disk test map)", fontsize=9)
    for ax in axes[1, 2:]:
        ax.axis("off")
    fig.tight_layout()
    save(
        fig,
        out,
        "limb.png",
        "Top: the real HMI limb cut-out near the limb after each method, with off-disk pixels set to 0 "
        "(I/Ic of the disk centre, -0.05 to 0.6). Bottom: mean profiles across the limb, of the cut-out and of "
        "sunpy's 20.7\"/px full-disk test map.",
    )
    for v in res.values():
        v.pop("_images")
    return res


# -------------------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for kind in ("intensity", "blos"):
        for v in ("v1", "v2"):
            p.add_argument(
                f"--weights-{kind}-{v}",
                default=None,
                help=f"registered name, .pt file or checkpoint.pt (default: registered enhance_{kind}_{v})",
            )
    p.add_argument("--out", type=Path, default=OUT_DEFAULT, help="output folder (default %(default)s)")
    p.add_argument("--docs", action="store_true", help=f"also refresh {DOCS_DIR.relative_to(ROOT)}")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)

    missing = [f for f in FILES.values() if not (DATA / f).exists()]
    if missing:
        sys.exit(f"validate_enhance: {DATA} lacks {', '.join(missing)} (the shared data beside the checkout)")
    torch.set_num_threads(args.threads)
    from sunpy_nn import __version__
    from sunpy_nn.enhance import enhance_array

    t0 = time.perf_counter()
    nets, weights = {}, {}
    for kind in ("intensity", "blos"):
        nets[kind], weights[kind] = {}, {}
        for v in ("v1", "v2"):
            nets[kind][v], weights[kind][v] = load_network(getattr(args, f"weights_{kind}_{v}"), kind, v)
            info = weights[kind][v]
            print(f"{kind} {v}: {info['name'] or 'SKIPPED: ' + info['note']}")
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.png"):
        old.unlink()
    timing = {"enhance_s": 0.0}

    def enhance(img, net):
        t = time.perf_counter()
        result = enhance_array(img, net, progress=False).astype(np.float64)
        timing["enhance_s"] += time.perf_counter() - t
        return result

    print(f"sunpy_nn {__version__}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    held = held_out_section(nets, enhance, args.out)
    flats = flat_fields(nets, enhance)
    cont = continuum_section(nets["intensity"], args.out)
    blos = blos_section(nets["blos"], args.out)
    limb = limb_section(nets["intensity"], args.out)
    targets = held_out_targets(held) + real_targets(cont, blos, limb, RL_REAL)
    runtime = time.perf_counter() - t0
    summary = jsonable(
        {
            "sunpy_nn_version": __version__,
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "runtime_s": runtime,
            "threads": torch.get_num_threads(),
            "weights": weights,
            "settings": {
                "hmi_scale_arcsec": HMI_SCALE,
                "degradation": "degrade_scene defaults: modified HMI PSF (e, w, k, W) = (0.1, 2.0, 3, 3.4), noise "
                "1e-3 I/Ic or 10 G, 28 cm Airy truth at 0.252 arcsec/px",
                "seed": SEED,
                "border_hmi_px": BORDER,
                "ssim": "7 x 7 uniform window, data range of the truth in the compared box",
                "rl_iterations_scanned": list(RL_ITERATIONS),
                "rl_iterations_real_data": RL_REAL,
                "forward_consistency_border_px": PSF_BORDER,
                "km_per_arcsec": KM_PER_ARCSEC,
                "wcs_observer_time": OBSTIME,
            },
            "targets": targets,
            "held_out": held,
            "flat_fields": flats,
            "continuum": cont,
            "blos": blos,
            "limb": limb,
            "figures": FIGURES,
        },
        drop_private=True,
    )
    for title, header, rows in report_tables(summary):
        table(title, header, rows)
    with open(args.out / "summary.json", "w") as f:
        json.dump(summary, f, indent=1)
    (args.out / "summary.inc").write_text(summary_rst(summary))
    if args.docs:
        DOCS_DIR.mkdir(parents=True, exist_ok=True)
        for old in DOCS_DIR.glob("*.png"):
            old.unlink()
        for name, _ in FIGURES:
            shutil.copy(args.out / name, DOCS_DIR / name)
        shutil.copy(args.out / "summary.json", DOCS_DIR / "summary.json")
        (DOCS_DIR / "summary.inc").write_text(summary_rst(summary, "/_static/validation/"))
    for v in ("v1", "v2"):
        met = [t[v]["met"] for t in targets if t[v]["met"] is not None]
        print(f"Enhance {v}: {sum(met)} of {len(met)} targets met" if met else f"Enhance {v}: not evaluated")
    print(
        f"Wrote {len(FIGURES)} figures, summary.json and summary.inc to {args.out}"
        + (f" and {DOCS_DIR}" if args.docs else "")
        + f" in {runtime:.0f} s (Enhance on the held-out frames {timing['enhance_s']:.1f} s)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
