"""
The figures of ``benchmarks/validate_enhance.py`` (benchmark-only: matplotlib, which `sunpy_nn` never imports).

Each function draws one or more figures from what the script measured, saves them in ``out`` and returns their
``(file name, caption)`` pairs, in the order ``summary.json`` lists them.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from scipy import ndimage

from sunpy_nn.metrics import azimuthal_power_spectrum
from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC
from sunpy_nn.report import format_percent as pct
from sunpy_nn.validation_report import FRAME_TITLES, METHODS

HMI_SCALE = HMI_PIXEL_SCALE_ARCSEC
OUT_SCALE = HMI_SCALE / 2
LABELS = {
    "input": "HMI input",
    "bicubic": "bicubic x2",
    "rl": "Richardson-Lucy",
    "v1": "Enhance v1",
    "v2": "Enhance v2",
}
STYLES = {"input": "k:", "truth": "k-", "bicubic": "C0-", "rl": "C1-", "v1": "C2-", "v2": "C3-"}
Figure = tuple[str, str]  # (file name, caption)


def _save(fig, out: Path, name: str, caption: str) -> Figure:
    fig.savefig(out / name, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return name, caption


def _show(ax, img, scale, title, vmin=None, vmax=None, cmap="gray"):
    ny, nx = img.shape
    im = ax.imshow(img, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, extent=[0, nx * scale, 0, ny * scale])
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    return im


def held_out_figures(cases: list[dict], out: Path) -> list[Figure]:
    """The held-out frames (point detector) through every method, their power spectra and the spectra's ratios."""
    figures = []
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
            _show(ax, imgs[key], scale, title, vmin, vmax, cmap="gray")
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
    figures.append(
        _save(
            fig,
            out,
            "held_out_images.png",
            "Each frame degraded with the point detector: the HMI-like input, every method and the 28 cm truth (axes "
            "in arcsec). Yellow: the held-out box where the scores are computed; left of it is what training used.",
        )
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
                y = p_m if kind_of_plot == "spectra" else p_m / p_t
                ax.loglog(f_m, y, STYLES[key], label=label, lw=1.8 if key == "v2" else 1.2)
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
            figures.append(
                _save(
                    fig,
                    out,
                    "held_out_power_spectra.png",
                    "Azimuthal power spectral densities inside the held-out boxes (top: point detector, bottom: area "
                    "detector). Dashed: HMI's Nyquist frequency.",
                )
            )
        else:
            figures.append(
                _save(
                    fig,
                    out,
                    "held_out_power_ratio.png",
                    "The same spectra divided by the truth's: 1 is the 28 cm telescope's power at each frequency.",
                )
            )
    return figures


def continuum_figures(res: dict, images: dict, out: Path, rl_iterations: int) -> list[Figure]:
    """The umbrae of the two sunspots (with their darkest levels), and the quiet Sun with its power spectra."""
    figures = []
    keys = [k for k in ("rl", "v1", "v2") if k in images["sunspot"][1]]
    label = {"rl": f"RL {rl_iterations} it.", "v1": "Enhance v1", "v2": "Enhance v2"}
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
        _show(row[0], x[ys, xs] / level, HMI_SCALE, f"{title}: input", 0.1, 1.1)
        for ax, k in zip(row[1 : len(keys) + 1], keys, strict=True):
            _show(ax, outs[k][yo, xo] / level, OUT_SCALE, label[k], 0.1, 1.1)
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
    figures.append(
        _save(
            fig,
            out,
            "umbrae.png",
            "Umbrae of the two real HMI sunspots (60 x 60 input pixels around the darkest point, I/Ic from 0.1 to "
            "1.1) and the mean intensity over the darkest 1 % and 0.1 % of the input's pixels after each method.",
        )
    )
    # quiet Sun: images and spectra
    x, outs = images["quiet_sun"]
    level = res["quiet_sun"]["quiet_sun_level"]
    contrast = res["quiet_sun"]["contrast"]
    fig, axes = plt.subplots(1, len(keys) + 2, figsize=(3.6 * (len(keys) + 2), 3.6))
    vmin, vmax = np.percentile(outs[keys[-1]] / level, [0.5, 99.5])
    _show(axes[0], x / level, HMI_SCALE, f"HMI quiet Sun, contrast {pct(contrast['input'])}", vmin, vmax)
    for ax, k in zip(axes[1:-1], keys, strict=True):
        _show(ax, outs[k] / level, OUT_SCALE, f"{label[k]}, contrast {pct(contrast[k])}", vmin, vmax)
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
    figures.append(
        _save(
            fig,
            out,
            "real_quiet_sun.png",
            "Real HMI quiet Sun through enhance_map, with the azimuthal power spectra (dashed: HMI's Nyquist "
            "frequency).",
        )
    )
    return figures


def blos_figure(res: dict, b: np.ndarray, outs: dict, out: Path, rl_iterations: int) -> list[Figure]:
    """The 200 x 200 magnetogram through each method, with its flux ratio and sign flips."""
    keys = ["bicubic", "rl", *[v for v in ("v1", "v2") if v in outs]]
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(3.4 * (len(keys) + 1), 3.6))
    _show(axes[0], b, HMI_SCALE, "HMI B$_{LOS}$ (hmi_blos_200)", -1500, 1500, cmap="RdBu_r")
    for ax, k in zip(axes[1:], keys, strict=True):
        _show(
            ax,
            outs[k],
            OUT_SCALE,
            f"{LABELS[k] if k != 'rl' else f'RL {rl_iterations} it.'}\nflux x{res['flux_ratio'][k]:.3f}, "
            f"flips {pct(res['sign_flip_fraction'][k])}",
            -1500,
            1500,
            cmap="RdBu_r",
        )
    fig.tight_layout()
    caption = (
        "Real HMI line-of-sight magnetogram (G, from -1500 to 1500) through each method, with the unsigned flux "
        "ratio and the fraction of sign flips where the input has more than 100 G."
    )
    return [_save(fig, out, "real_blos.png", caption)]


def limb_figure(res: dict, out: Path, rl_iterations: int) -> list[Figure]:
    """The limb cut-out near the limb after each method, and the mean profiles across the limb."""
    r = res["limb_cutout"]
    imgs = r["_images"]
    keys = [k for k in ("rl", "v1", "v2") if k in imgs]
    label = {"input": "HMI input", "rl": f"RL {rl_iterations} it.", "v1": "Enhance v1", "v2": "Enhance v2"}
    fig, axes = plt.subplots(2, len(keys) + 1, figsize=(3.6 * (len(keys) + 1), 7.2), squeeze=False)
    xc, yc = r["disk_centre_px"]
    row0 = 170
    col0 = max(int(xc - r["radius_px"] * math.cos(math.asin((row0 + 30 - yc) / r["radius_px"]))) - 15, 0)
    zoom = np.s_[row0 : row0 + 60, col0 : col0 + 60]
    zoom_out = np.s_[2 * row0 : 2 * row0 + 120, 2 * col0 : 2 * col0 + 120]
    s = r["disk_centre_intensity"]
    for ax, k in zip(axes[0], ("input", *keys), strict=True):
        img = imgs[k][zoom] if k == "input" else imgs[k][zoom_out]
        _show(ax, img / s, HMI_SCALE if k == "input" else OUT_SCALE, f"{label[k]} (zoom at the limb)", -0.05, 0.6)
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
    caption = (
        "Top: the real HMI limb cut-out near the limb after each method, with off-disk pixels set to 0 "
        "(I/Ic of the disk centre, -0.05 to 0.6). Bottom: mean profiles across the limb, of the cut-out and of "
        "sunpy's 20.7\"/px full-disk test map."
    )
    return [_save(fig, out, "limb.png", caption)]
