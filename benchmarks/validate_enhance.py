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
of `sunpy_nn.metrics`, `sunpy_nn.validation` and `sunpy_nn.validation_report` (which also judges the targets and
writes the tables and files); the maps come from `sunpy_nn.validation_maps`; the figures are drawn by
``benchmarks/_validate_enhance_figures.py``. This script loads the data, runs the methods and calls those.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from _validate_enhance_figures import blos_figure, continuum_figures, held_out_figures, limb_figure
from astropy.io import fits
from scipy import ndimage

from sunpy_nn import __version__, enhance_map
from sunpy_nn.baselines import richardson_lucy
from sunpy_nn.data import available_models
from sunpy_nn.enhance import enhance_array, load_enhance_model, normalise
from sunpy_nn.enhance._models import load_training_checkpoint
from sunpy_nn.metrics import psnr
from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC
from sunpy_nn.report import jsonable, text_table
from sunpy_nn.training.degradation import degrade_scene
from sunpy_nn.training.sources import load_reference_sources
from sunpy_nn.utils import WeightsError, sha256sum
from sunpy_nn.validation import held_out_box, limb_distance, limb_geometry, limb_profile, off_limb_levels
from sunpy_nn.validation_maps import OBSTIME, disk_geometry, hmi_cutout_map, locate_cutout, read_sharp
from sunpy_nn.validation_report import (
    continuum_scores,
    held_out_scores,
    held_out_targets,
    magnetogram_scores,
    real_targets,
    report_tables,
    write_report,
)

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
SEED = 20180501  # noise of degrade_scene
BORDER = 4  # HMI pixels left out around the held-out columns (2 arcsec)
RL_ITERATIONS = (10, 20, 40, 80)  # scanned on the held-out frames; the best PSNR is reported
RL_EXTRA = 160  # also run, for information only: is Richardson-Lucy still improving at the end of the scan?
POWER_BANDS = ((1.0, 1.5), (1.5, 2.0))  # arcsec^-1; the output Nyquist frequency is 1.98
RL_REAL = 20  # Richardson-Lucy iterations on real HMI (the paper used 20-30)
PSF_BORDER = math.ceil(4.4 / HMI_SCALE)  # HMI pixels within the PSF kernel radius of an edge
KM_PER_ARCSEC = 725.0  # at 1 au, disk centre
PIXEL_AREA_CM2 = (HMI_SCALE * KM_PER_ARCSEC * 1e5) ** 2
QS_EDGES = "5 px from the edges (no I/Ic < 0.9 pixel in the image)"  # the quiet-Sun masks, as summary.json says
QS_MASK = 'I/Ic >= 0.9 and more than 6 px (3") from any darker pixel, 5 px from the edges'


# -------------------------------------------------------------------------------------------- data and methods
def bicubic(a: np.ndarray) -> np.ndarray:
    """Bicubic x2 interpolation, pixel edges kept in place."""
    return ndimage.zoom(a, 2, order=3, grid_mode=True, mode="reflect")


def load_network(spec: str | None, kind: str, version: str) -> tuple[torch.nn.Module | None, dict]:
    """
    The network for a ``--weights-<kind>-<version>`` option: a registered name, a ``.pt`` weight file or a training
    ``checkpoint.pt``. Returns ``(None, info)`` with the reason when there is none (the column is then skipped).
    """
    if spec is None:
        spec = f"enhance_{kind}_{version}"
        if spec not in available_models():
            return None, {"name": None, "note": f"{spec} is not registered"}
    path = Path(spec).expanduser()
    if path.suffix == ".pt" and path.exists():
        try:
            net, ck = load_training_checkpoint(path)
        except WeightsError:  # a plain weight file
            pass
        else:
            return net, {
                "name": f"{kind} {version} checkpoint, best epoch {ck['best_epoch']} of {ck['epochs_done']} done",
                "path": str(path.resolve()),
                "sha256": sha256sum(path),
                "checkpoint": True,
                **ck,
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


def run_map(smap, kind: str, nets: dict) -> dict:
    """Richardson-Lucy and Enhance v1/v2 through enhance_map on one map (the user path)."""
    outs = {"rl": richardson_lucy(smap, iterations=RL_REAL).data.astype(np.float64)}
    for version, net in nets.items():
        if net is not None:
            outs[version] = enhance_map(smap, kind=kind, weights=net, progress=False).data.astype(np.float64)
    return outs


# ---------------------------------------------------------------------------------------- 1. held-out frames
def held_out_case(source, detector: str, nets: dict, enhance) -> dict:
    """One frame under one detector model: every method on the whole degraded frame, scored on the held-out part."""
    y0, y1, x0, x1 = source.valid
    low, truth = degrade_scene(
        source.image[y0:y1, x0:x1], source.pixel_scale, kind=source.kind, detector=detector, seed=SEED
    )
    held = tuple(c - x0 for c in source.columns("validation"))
    r0, r1, c0, c1 = held_out_box(low.shape, held, HMI_SCALE / source.pixel_scale, BORDER)
    box = np.s_[2 * r0 : 2 * r1, 2 * c0 : 2 * c1]
    tgt = truth[box]
    drange = float(tgt.max() - tgt.min())
    rl = {n: richardson_lucy(low, iterations=n, pixel_scale=HMI_SCALE) for n in (*RL_ITERATIONS, RL_EXTRA)}
    rl_scan = {n: psnr(img[box], tgt, drange) for n, img in rl.items()}
    rl_best = max(RL_ITERATIONS, key=rl_scan.get)  # the first of the best
    outputs = {"bicubic": bicubic(low), "rl": rl[rl_best]}
    outputs |= {version: enhance(low, net) for version, net in nets.items() if net is not None}
    scored = held_out_scores(
        {k: img[box] for k, img in outputs.items()}, tgt, low[r0:r1, c0:c1], source.kind, HMI_SCALE, POWER_BANDS
    )
    return {
        "frame": source.name,
        "kind": source.kind,
        "detector": detector,
        "scene_pixel_scale": source.pixel_scale,
        "input_shape": list(low.shape),
        "compared_input_pixels": {"rows": [r0, r1], "columns": [c0, c1]},
        "compared_arcsec": [(r1 - r0) * HMI_SCALE, (c1 - c0) * HMI_SCALE],
        "data_range": scored["data_range"],
        "rl_psnr_by_iterations": {str(k): v for k, v in rl_scan.items()},
        "rl_best_iterations": rl_best,
        "rl_psnr_extra_iterations_info": {"iterations": RL_EXTRA, "psnr_db": rl_scan[RL_EXTRA]},
        "scores": scored["scores"],
        "signs_over_100G": scored["signs_over_100G"],
        "power_ratio_bands": scored["power_ratio_bands"],
        "_spectra": scored["spectra"],
        "_images": {"input": low, "truth": truth, **outputs},
        "_box": (r0, r1, c0, c1),
    }


def held_out_section(nets: dict, enhance) -> list[dict]:
    sources = load_reference_sources(DATA, "intensity") + load_reference_sources(DATA, "blos", synthetic_blos_images=0)
    order = ["sst_sunspot", "imax_quiet_sun", "muram_quiet_sun", "gst_niris"]
    sources = sorted((s for s in sources if s.name in order), key=lambda s: order.index(s.name))
    return [held_out_case(s, det, nets[s.kind], enhance) for s in sources for det in ("point", "area")]


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


# ------------------------------------------------------------------------------ 3./4. real HMI continuum, fields
def continuum_section(nets: dict) -> tuple[dict, dict]:
    qs = np.load(DATA / FILES["qs"]).astype(np.float64)  # raw DN/s
    spot = fits.getdata(DATA / FILES["sunspot"]).astype(np.float64)  # already I/Ic
    sharp = read_sharp(DATA / FILES["sharp_continuum"])  # NOAA 11158, DN/s, CEA
    cases = {  # name: (data, map, file, quiet-Sun level or None for normalise's, how the quiet-Sun mask is made)
        "quiet_sun": (qs, hmi_cutout_map(qs, u.Unit("DN/s")), "qs", None, QS_EDGES),
        "sunspot": (spot, hmi_cutout_map(spot, u.dimensionless_unscaled), "sunspot", 1.0, QS_MASK),
        "sharp": (np.asarray(sharp.data, np.float64), sharp, "sharp_continuum", None, QS_MASK),
    }
    res, images = {}, {}
    for name, (x, smap, file, level, mask) in cases.items():
        outs = run_map(smap, "intensity", nets)
        level = normalise(smap, x, "intensity").scale if level is None else level
        res[name] = {"file": FILES[file], **continuum_scores(x, outs, level, PSF_BORDER), "quiet_sun_mask": mask}
        images[name] = (x, outs)
    res["sharp"]["note"] = "CEA remap at 0.03 deg/px (about 0.5 arcsec): the HMI PSF applies only approximately"
    res["sharp"]["sunspot_cutout_match"] = m = locate_cutout(spot, images["sharp"][0])
    print(
        f"The sunspot cut-out matches the SHARP at offset {tuple(m['offset_yx_px'])} with a correlation of "
        f"{m['normalised_cross_correlation']:.2f}: the same spot."
    )
    return res, images


def blos_section(nets: dict) -> tuple[dict, dict]:
    b200 = fits.getdata(DATA / FILES["blos"]).astype(np.float64)
    maps = {
        "blos_200": (hmi_cutout_map(b200, u.G), FILES["blos"]),
        "sharp": (read_sharp(DATA / FILES["sharp_blos"]), FILES["sharp_blos"]),
    }
    res, images = {}, {}
    for name, (smap, file) in maps.items():
        b = np.asarray(smap.data, np.float64)  # Gauss (Mx/cm^2 for the SHARP: the same number)
        outs = {"bicubic": bicubic(b), **run_map(smap, "blos", nets)}
        images[name] = (b, outs)
        scores = magnetogram_scores(b, outs, PIXEL_AREA_CM2, PSF_BORDER)
        res[name] = {"file": file, "unit": smap.unit.to_string(), **scores}
    res["blos_200"]["sharp_match"] = locate_cutout(b200, images["sharp"][0])
    return res, images


# -------------------------------------------------------------------------------------------------- 5. limb
def limb_case(smap, data: np.ndarray, nets: dict, file: str, bands_px, note: str = "") -> dict:
    """Off-disk pixels set to 0, Enhance through enhance_map, the off-limb level and the profile across the limb."""
    scale_arcsec, (xc, yc), radius = disk_geometry(smap)
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


def limb_section(nets: dict) -> dict:
    import sunpy.data.test
    import sunpy.map

    res = {}
    limb = fits.getdata(DATA / FILES["limb"]).astype(np.float64)
    probe = hmi_cutout_map(limb, u.dimensionless_unscaled)
    radius = probe.rsun_obs.to_value(u.arcsec) / HMI_SCALE
    xc, yc, rms = limb_geometry(limb, radius)
    smap = hmi_cutout_map(limb, u.dimensionless_unscaled, reference_pixel=(xc, yc))
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
    t0 = time.perf_counter()
    nets, weights = {}, {}
    for kind in ("intensity", "blos"):
        nets[kind], weights[kind] = {}, {}
        for v in ("v1", "v2"):
            nets[kind][v], weights[kind][v] = load_network(getattr(args, f"weights_{kind}_{v}"), kind, v)
            info = weights[kind][v]
            print(f"{kind} {v}: {info['name'] or 'SKIPPED: ' + info['note']}")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    timing = {"enhance_s": 0.0}

    def enhance(img, net):
        t = time.perf_counter()
        result = enhance_array(img, net, progress=False).astype(np.float64)
        timing["enhance_s"] += time.perf_counter() - t
        return result

    print(f"sunpy_nn {__version__}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    held = held_out_section(nets, enhance)
    figures = held_out_figures(held, out)
    flats = flat_fields(nets, enhance)
    cont, images = continuum_section(nets["intensity"])
    figures += continuum_figures(cont, images, out, RL_REAL)
    blos, images = blos_section(nets["blos"])
    figures += blos_figure(blos["blos_200"], *images["blos_200"], out, RL_REAL)
    limb = limb_section(nets["intensity"])
    figures += limb_figure(limb, out, RL_REAL)
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
            "figures": figures,
        },
        drop_private=True,  # the images, spectra and boxes kept for the figures
    )
    for title, header, rows in report_tables(summary):
        print(text_table(title, header, rows))
    write_report(summary, out, DOCS_DIR if args.docs else None)
    for v in ("v1", "v2"):
        met = [t[v]["met"] for t in targets if t[v]["met"] is not None]
        print(f"Enhance {v}: {sum(met)} of {len(met)} targets met" if met else f"Enhance {v}: not evaluated")
    print(
        f"Wrote {len(figures)} figures, summary.json and summary.inc to {out}"
        + (f" and {DOCS_DIR}" if args.docs else "")
        + f" in {runtime:.0f} s (Enhance on the held-out frames {timing['enhance_s']:.1f} s)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
