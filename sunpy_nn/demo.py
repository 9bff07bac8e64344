"""
``sunpy-nn demo``: both methods on built-in synthetic data, with figures of merit against the known truth.

`run_demo` needs no download and no reference data:

1. **Enhance.** A synthetic SDO/HMI-like continuum map and magnetogram (`sunpy_nn.data.synthetic.synthetic_hmi_map`:
   a granulation-like scene, and a magnetogram with a sunspot, degraded with HMI's PSF to 0.504 arcsec/pix) are
   enhanced with `sunpy_nn.enhance_map` and the shipped weights, and compared with nearest-neighbour and bicubic
   x2 upsampling against the truth, the scene as a 28 cm telescope would see it at 0.252 arcsec/pix.
2. **Denoising.** A synthetic SST/CRISP-like Fe I 630.25 nm time series (`sunpy_nn.data.synthetic.synthetic_crisp_cube`,
   an NDCube with time, Stokes, wavelength and helioprojective axes) is denoised with a `sunpy_nn.Denoiser` trained
   on the cube itself (Noise2Noise between consecutive scans), and the error against the noise-free truth is
   compared before and after.

It prints the figures of merit, writes FITS files and PNG comparison figures, and returns the figures of merit.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

__all__ = ["run_demo"]

log = logging.getLogger(__name__)

#: Sizes and training lengths: the full demo takes one to three minutes on 2 CPU cores, the quick one under a minute.
SETTINGS = {
    False: {
        "map_shape": (128, 128),
        "cube": {"size": 96, "n_wavelengths": 7, "n_scans": 4},
        "fit": {"epochs": 6, "patches_per_epoch": 500, "patch_size": 48, "lr": 1e-3},
    },
    True: {
        "map_shape": (64, 64),
        "cube": {"size": 64, "n_wavelengths": 5, "n_scans": 3},
        "fit": {"epochs": 4, "patches_per_epoch": 250, "patch_size": 32, "lr": 1e-3},
    },
}
#: HMI pixels left out at each edge in the Enhance comparison: the methods extrapolate differently there.
BORDER = 8


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


def _nearest(a: np.ndarray) -> np.ndarray:
    from sunpy_nn.utils import upsample_nearest

    return upsample_nearest(a)


def _bicubic(a: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    # grid_mode keeps the pixel edges in place, as enhance_map does.
    return ndimage.zoom(a, 2, order=3, grid_mode=True, mode="reflect")


# ----------------------------------------------------------------------------------------------------- Enhance
def _enhance_part(kind: str, shape, seed: int, device, progress: bool, out: Path) -> tuple[dict, dict]:
    from sunpy_nn.data.synthetic import synthetic_hmi_map
    from sunpy_nn.enhance import enhance_map
    from sunpy_nn.metrics import psnr, rms_contrast, ssim

    hmi, truth = synthetic_hmi_map(shape, kind, sunspot=kind == "blos", seed=seed)
    t0 = time.perf_counter()
    big = enhance_map(hmi, device=device, progress=progress)
    elapsed = time.perf_counter() - t0
    name = "continuum" if kind == "intensity" else "magnetogram"
    for label, m in (("input", hmi), ("enhanced", big), ("truth", truth)):
        m.save(out / f"enhance_{name}_{label}.fits", overwrite=True)

    low = np.asarray(hmi.data, np.float64)
    ref = np.asarray(truth.data, np.float64)
    images = {"nearest": _nearest(low), "bicubic": _bicubic(low), "enhance": np.asarray(big.data, np.float64)}
    b = 2 * BORDER
    inner = np.s_[b:-b, b:-b]
    drange = float(ref[inner].max() - ref[inner].min())
    metrics: dict = {"map_shape": list(low.shape), "enhance_seconds": round(elapsed, 2), "unit": hmi.unit.to_string()}
    metrics["psnr_db"] = {k: psnr(v[inner], ref[inner], drange) for k, v in images.items()}
    metrics["ssim"] = {k: ssim(v[inner], ref[inner], drange) for k, v in images.items()}
    metrics["rms_error"] = {k: _rms(v[inner] - ref[inner]) for k, v in images.items()}
    metrics["gain_db_over_bicubic"] = metrics["psnr_db"]["enhance"] - metrics["psnr_db"]["bicubic"]
    if kind == "intensity":
        metrics["rms_contrast"] = {
            "input": rms_contrast(low[BORDER:-BORDER, BORDER:-BORDER]),
            "bicubic": rms_contrast(images["bicubic"][inner]),
            "enhance": rms_contrast(images["enhance"][inner]),
            "truth": rms_contrast(ref[inner]),
        }
    else:
        strong = np.abs(ref[inner]) > 500
        metrics["unsigned_flux_ratio_enhance_over_truth"] = float(
            np.abs(images["enhance"][inner]).sum() / np.abs(ref[inner]).sum()
        )
        metrics["rms_error_where_truth_above_500G"] = {
            k: _rms(v[inner][strong] - ref[inner][strong]) for k, v in images.items()
        }
    arrays = {"input": low, **images, "truth": ref}
    return metrics, arrays


def _enhance_figure(kind: str, metrics: dict, arrays: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    from sunpy_nn.metrics import azimuthal_power_spectrum
    from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC as hmi

    scales = {"input": hmi, "nearest": hmi / 2, "bicubic": hmi / 2, "enhance": hmi / 2, "truth": hmi / 2}
    titles = {
        "input": 'HMI-like input (0.504"/pix)',
        "bicubic": "bicubic x2",
        "enhance": "Enhance x2",
        "truth": 'truth: 28 cm telescope (0.252"/pix)',
    }
    intensity = kind == "intensity"
    ref = arrays["truth"]
    if intensity:
        vmin, vmax, cmap, unit = *np.percentile(ref, [0.5, 99.5]), "gray", "DN/s"
    else:
        lim = 1500.0  # G: shows the network and the penumbra without saturating everything
        vmin, vmax, cmap, unit = -lim, lim, "gray", "G"
    fig = Figure(figsize=(17, 4.2), layout="constrained")
    axes = fig.subplots(1, 5, gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.25]})
    for ax, key in zip(axes[:4], ("input", "bicubic", "enhance", "truth"), strict=True):
        img = arrays[key]
        s = scales[key]
        extent = [0, img.shape[1] * s, 0, img.shape[0] * s]
        im = ax.imshow(img, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, extent=extent)
        title = titles[key]
        if key in ("bicubic", "enhance"):
            title += f"\nPSNR {metrics['psnr_db'][key]:.2f} dB, SSIM {metrics['ssim'][key]:.3f}"
        elif key == "input" and intensity:
            title += f"\ncontrast {100 * metrics['rms_contrast']['input']:.1f} %"
        elif key == "truth" and intensity:
            title += f"\ncontrast {100 * metrics['rms_contrast']['truth']:.1f} %"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x [arcsec]")
    axes[0].set_ylabel("y [arcsec]")
    fig.colorbar(im, ax=axes[:4], shrink=0.8, label=unit, pad=0.01)
    ax = axes[4]
    styles = {"input": "k:", "bicubic": "C0-", "enhance": "C3-", "truth": "k-"}
    b = 2 * BORDER
    for key in ("input", "bicubic", "enhance", "truth"):
        img = arrays[key] if key == "input" else arrays[key][b:-b, b:-b]
        if key == "input":
            img = img[BORDER:-BORDER, BORDER:-BORDER]
        f, p = azimuthal_power_spectrum(img)
        s = scales[key]
        ax.loglog(f[1:] / s, p[1:] * s**2, styles[key], label=titles[key].split(" (")[0].split(":")[0])
    ax.axvline(1 / (2 * hmi), color="0.6", lw=0.8)
    ax.set_xlabel("spatial frequency [1/arcsec]")
    ax.set_ylabel(f"power [({unit})$^2$ arcsec$^2$]")
    ax.set_title("azimuthal power spectra\n(grey line: HMI's Nyquist frequency)", fontsize=10)
    ax.legend(fontsize=8)
    what = "continuum image" if intensity else "magnetogram"
    fig.suptitle(f"Enhance on a synthetic HMI {what}: gain over bicubic {metrics['gain_db_over_bicubic']:+.2f} dB")
    fig.savefig(path, dpi=90)


# ---------------------------------------------------------------------------------------------------- denoising
def _write_cube(path: Path, cube, data, uncertainty=None) -> None:
    """A SOLARNET cube (SSTRED's layout) that `sunpy_nn.io.read_crisp` reads back with its WCS."""
    from astropy.nddata import StdDevUncertainty
    from ndcube import NDCube

    from sunpy_nn.io import write_crisp

    meta = {"ORIGIN": "sunpy_nn demo (synthetic data)"}
    unc = None if uncertainty is None else StdDevUncertainty(np.asarray(uncertainty, np.float32))
    out = NDCube(np.asarray(data, np.float32), wcs=cube.wcs, unit=cube.unit, meta=meta, uncertainty=unc)
    write_crisp(out, path, overwrite=True)


def _denoise_part(settings: dict, seed: int, device, progress: bool, out: Path) -> tuple[dict, dict]:
    from sunpy_nn.data.synthetic import synthetic_crisp_cube
    from sunpy_nn.denoise import Denoiser, auto_temporal, estimate_noise

    cube, truth = synthetic_crisp_cube(**settings["cube"], seed=seed)
    noise = cube.meta["noise"]
    t0 = time.perf_counter()
    temporal = auto_temporal(cube)  # as denoise_cube does by default
    den = Denoiser(mode="image", temporal=temporal).fit(
        cube, **settings["fit"], seed=seed, device=device, progress=progress
    )
    t1 = time.perf_counter()
    clean = den.predict(cube, device=device, seed=seed, progress=progress)
    t2 = time.perf_counter()
    _write_cube(out / "denoise_crisp_noisy.fits", cube, cube.data)
    _write_cube(out / "denoise_crisp_denoised.fits", cube, clean.data, clean.uncertainty.array)
    _write_cube(out / "denoise_crisp_truth.fits", cube, truth)
    den.save(out / "denoise_crisp_denoiser.pt")

    metrics: dict = {
        "cube_shape": list(cube.data.shape),
        "axes": "time, stokes, wavelength, y, x",
        "noise_injected": noise,
        "fit_seconds": round(t1 - t0, 1),
        "predict_seconds": round(t2 - t1, 1),
        "fit_settings": dict(settings["fit"]) | {"temporal": temporal},
        "uncertainty_calibration": dict(den.calibration),
        "uncertainty_calibration_per_tuning": {k: list(v) for k, v in den.calibration_tunings.items()},
    }
    for key in (
        "noise_estimated_input",
        "noise_estimated_output",
        "rms_error_noisy",
        "rms_error_denoised",
        "error_reduction",
        "mean_uncertainty",
        "fraction_within_1_sigma",
        "fraction_within_2_sigma",
    ):
        metrics[key] = {}
    for s, lab in ((1, "Q"), (2, "U"), (3, "V")):
        noisy, den_s, tru = cube.data[:, s], clean.data[:, s], truth[:, s]
        sig = clean.uncertainty.array[:, s]
        metrics["noise_estimated_input"][lab] = float(den.noise[lab])
        # The noise left in the output, estimated as the input's: differences of consecutive scans (estimate_noise).
        metrics["noise_estimated_output"][lab] = float(estimate_noise(np.asarray(den_s)))
        metrics["rms_error_noisy"][lab] = _rms(noisy - tru)
        metrics["rms_error_denoised"][lab] = _rms(den_s - tru)
        metrics["error_reduction"][lab] = metrics["rms_error_noisy"][lab] / metrics["rms_error_denoised"][lab]
        metrics["mean_uncertainty"][lab] = float(np.mean(sig))
        metrics["fraction_within_1_sigma"][lab] = float(np.mean(np.abs(den_s - tru) < sig))
        metrics["fraction_within_2_sigma"][lab] = float(np.mean(np.abs(den_s - tru) < 2 * sig))
    arrays = {
        "noisy": np.asarray(cube.data),
        "denoised": np.asarray(clean.data),
        "sigma": clean.uncertainty.array,
        "truth": truth,
        "wavelength": cube.axis_world_coords("em.wl")[0].to_value("Angstrom"),
    }
    return metrics, arrays


def _denoise_figures(metrics: dict, arrays: dict, out: Path) -> list[Path]:
    from matplotlib.figure import Figure

    noisy, den, sig, truth, wl = (arrays[k] for k in ("noisy", "denoised", "sigma", "truth", "wavelength"))
    wl = wl - wl[len(wl) // 2]  # offsets from the line centre
    t = 0
    w = int(np.argmax(np.abs(truth[t, 3]).mean(axis=(1, 2))))  # the wavelength where V is strongest
    lim = 4 * metrics["noise_injected"]
    extent = [0, truth.shape[-1] * 0.059, 0, truth.shape[-2] * 0.059]
    fig = Figure(figsize=(15, 4.1), layout="constrained")
    axes = fig.subplots(1, 4)
    panels = (
        (noisy, f"noisy (rms error {metrics['rms_error_noisy']['V']:.2e})"),
        (den, f"denoised (rms error {metrics['rms_error_denoised']['V']:.2e})"),
        (truth, "truth"),
    )
    for ax, (cube, title) in zip(axes[:3], panels, strict=True):
        im = ax.imshow(cube[t, 3, w], origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x [arcsec]")
    fig.colorbar(im, ax=axes[:3], shrink=0.85, label="Stokes V / Ic", pad=0.01)
    im2 = axes[3].imshow(sig[t, 3, w], origin="lower", cmap="magma", extent=extent, vmin=0)
    axes[3].set_title("predicted 1-sigma uncertainty", fontsize=10)
    fig.colorbar(im2, ax=axes[3], shrink=0.85, label="Stokes V / Ic", pad=0.01)
    axes[0].set_ylabel("y [arcsec]")
    fig.suptitle(
        f"Noise2Noise on a synthetic CRISP-like cube: Stokes V at {wl[w]:+.2f} Å, scan {t + 1}; "
        f"error reduced {metrics['error_reduction']['V']:.1f}x"
    )
    p1 = out / "denoise_stokes_v.png"
    fig.savefig(p1, dpi=90)

    # Profiles at the pixels with the strongest, a medium and a weak V signal.
    amp = np.abs(truth[t, 3]).max(axis=0)
    order = np.argsort(amp.ravel())
    picks = [order[-1], order[int(0.98 * order.size)], order[int(0.5 * order.size)]]
    fig = Figure(figsize=(15, 7), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True)
    for col, flat in enumerate(picks):
        y, x = np.unravel_index(flat, amp.shape)
        for row, (s, lab) in enumerate(((3, "V"), (1, "Q"))):
            ax = axes[row, col]
            d, e = den[t, s, :, y, x], sig[t, s, :, y, x]
            ax.fill_between(wl, d - e, d + e, color="C3", alpha=0.25, label="denoised ± 1 sigma")
            ax.plot(wl, d, "C3-", lw=2, label="denoised")
            ax.plot(wl, noisy[t, s, :, y, x], "o", color="0.4", ms=4, label="noisy")
            ax.plot(wl, truth[t, s, :, y, x], "k--", label="truth")
            ax.axhline(0, color="0.8", lw=0.8)
            ax.set_ylabel(f"Stokes {lab} / Ic")
            if row == 0:
                snr = amp[y, x] / metrics["noise_injected"]
                ax.set_title(f"pixel (x={x}, y={y}): max |V| = {snr:.1f} x noise", fontsize=10)
            if row == 1:
                ax.set_xlabel("wavelength offset [Å]")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Stokes profiles: noisy input, denoised with its uncertainty band, and the truth")
    p2 = out / "denoise_profiles.png"
    fig.savefig(p2, dpi=90)
    return [p1, p2]


# --------------------------------------------------------------------------------------------------------- report
def _print_report(results: dict, out: Path) -> None:
    line = "-" * 78
    print(line)
    print("sunpy_nn demo on built-in synthetic data (figures of merit against the known truth)")
    print(line)
    for kind, label in (("intensity", "continuum image"), ("blos", "magnetogram")):
        m = results["enhance"][kind]
        ny, nx = m["map_shape"]
        print(f'Enhance, synthetic HMI {label} ({ny}x{nx} px at 0.504"/pix -> {2 * ny}x{2 * nx} at 0.252"/pix)')
        print(f"  vs the 28 cm truth        {'PSNR [dB]':>10} {'SSIM':>8} {'rms error':>12}")
        for key, name in (("nearest", "nearest-neighbour x2"), ("bicubic", "bicubic x2"), ("enhance", "Enhance x2")):
            psnr, ssim, err = m["psnr_db"][key], m["ssim"][key], m["rms_error"][key]
            print(f"  {name:<24} {psnr:>10.2f} {ssim:>8.3f} {err:>12.4g} {m['unit']}")
        print(f"  gain of Enhance over bicubic: {m['gain_db_over_bicubic']:+.2f} dB")
        if kind == "intensity":
            c = m["rms_contrast"]
            print(
                f"  rms contrast: input {100 * c['input']:.2f} %, bicubic {100 * c['bicubic']:.2f} %, "
                f"Enhance {100 * c['enhance']:.2f} %, truth {100 * c['truth']:.2f} %"
            )
        else:
            print(f"  unsigned flux, Enhance / truth: {m['unsigned_flux_ratio_enhance_over_truth']:.3f}")
    d = results["denoise"]
    print(line)
    print(
        f"Noise2Noise denoising, synthetic CRISP-like cube {tuple(d['cube_shape'])} ({d['axes']}), "
        f"noise {d['noise_injected']:.1e} Ic"
    )
    print(
        f"  trained on the cube itself in {d['fit_seconds']:.0f} s (temporal={d['fit_settings']['temporal']}), "
        f"predicted in {d['predict_seconds']:.0f} s"
    )
    print(
        f"  {'Stokes':<8}{'noise est.':>11}{'rms err noisy':>15}{'rms err denoised':>18}{'reduction':>11}"
        f"{'<1 sigma':>10}{'<2 sigma':>10}"
    )
    for lab in ("Q", "U", "V"):
        print(
            f"  {lab:<8}{d['noise_estimated_input'][lab]:>11.2e}{d['rms_error_noisy'][lab]:>15.2e}"
            f"{d['rms_error_denoised'][lab]:>18.2e}{d['error_reduction'][lab]:>10.1f}x"
            f"{100 * d['fraction_within_1_sigma'][lab]:>9.0f} %{100 * d['fraction_within_2_sigma'][lab]:>8.0f} %"
        )
    # what the columns mean, for a reader without the guide (Stokes I passes through: it is not denoised)
    print("  noise and rms errors in units of the continuum intensity Ic; <1 sigma, <2 sigma: the errors within the")
    print("  predicted 1 and 2 sigma (68 % and 95 % for Gaussian errors); Stokes I is not denoised")
    print(line)
    print(f"Wrote {len(results['files'])} files to {out}:")
    for f in results["files"]:
        print(f"  {f}")
    print(f"Total time {results['seconds']:.0f} s")


def run_demo(
    output_dir: str | Path = "sunpy_nn_demo",
    *,
    seed: int = 0,
    quick: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """
    Run Enhance and the Noise2Noise denoiser on built-in synthetic data and report how well they do.

    Everything is synthetic (`sunpy_nn.data.synthetic`), so the truth is known and the demo runs offline:

    * **Enhance**: a 128 x 128 px (quick: 64 x 64) HMI-like continuum map and a magnetogram with a sunspot are
      enhanced with the shipped weights; PSNR, SSIM and rms error against the 28 cm truth at 0.252 arcsec/pix
      are compared with nearest-neighbour and bicubic x2 upsampling (the outer 8 HMI pixels are left out), with
      the granulation contrast and, for the magnetogram, the unsigned flux.
    * **Denoising**: a CRISP-like cube of 4 scans x 4 Stokes x 7 wavelengths x 96 x 96 px (quick: 3 x 4 x 5 x 64 x
      64) with noise 3e-3 Ic; a `~sunpy_nn.Denoiser` is trained on it (image mode, Q/U/V, a short training of
      3,000 patches; quick: 1,000) and its output compared with the truth: rms error before and after, noise
      estimates, and the fraction of pixels whose error is within the predicted 1-sigma uncertainty.

    Parameters
    ----------
    output_dir : str or `pathlib.Path`
        Folder for the files (created if needed; existing demo files are overwritten).
    seed : int
        Seed of the synthetic data and of the training.
    quick : bool
        Smaller data and a shorter training (well under a minute on 2 CPU cores, for tests).
    device : str, optional
        ``"cpu"``, ``"cuda"`` or `None` for the best available.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The figures of merit: ``results["enhance"]["intensity"]``, ``results["enhance"]["blos"]``,
        ``results["denoise"]``, and ``results["files"]``, the files written. The same is written to
        ``summary.json``.

    Raises
    ------
    RuntimeError
        ``device="cuda"`` on a machine where torch sees no GPU (`~sunpy_nn.nn.resolve_device`).

    Notes
    -----
    Files written: for each of ``continuum`` and ``magnetogram``, ``enhance_<kind>_{input,enhanced,truth}.fits``
    (HMI-like maps that `sunpy.map.Map` reads) and ``enhance_<kind>.png``; ``denoise_crisp_{noisy,denoised,
    truth}.fits`` (the denoised one with an ``UNCERT`` extension), the trained denoiser
    ``denoise_crisp_denoiser.pt`` with its model card, ``denoise_stokes_v.png``, ``denoise_profiles.png`` and
    ``summary.json``. PNG figures need matplotlib (installed with sunpy's ``map`` extra); without it they are
    skipped.

    torch's thread count follows the package's thread policy (`sunpy_nn.nn.device.apply_thread_policy`): unless
    you chose one, as many threads as the CPUs this process may use that other processes leave free (torch's
    threads wait for each other actively: up to 4.7x slower on busy cores, in the performance guide).

    Examples
    --------
    >>> from sunpy_nn.demo import run_demo
    >>> results = run_demo("sunpy_nn_demo", quick=True, progress=False)  # doctest: +SKIP
    >>> results["enhance"]["intensity"]["gain_db_over_bicubic"] > 0  # doctest: +SKIP
    True
    """
    from sunpy_nn.nn.device import apply_thread_policy

    # Before the denoiser's training too, which does not go through the tiled runner.
    log.info("torch runs on %d thread(s)", apply_thread_policy())
    return _run(output_dir, seed, bool(quick), device, progress)


def _run(output_dir, seed: int, quick: bool, device, progress: bool) -> dict:
    t_start = time.perf_counter()
    out = Path(output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    settings = SETTINGS[quick]
    from sunpy_nn import __version__

    # The version that made it: the docs page built from a committed summary checks that it is not stale.
    results: dict = {"sunpy_nn_version": __version__, "quick": quick, "seed": seed, "enhance": {}}
    arrays = {}
    for offset, kind in enumerate(("intensity", "blos")):
        results["enhance"][kind], arrays[kind] = _enhance_part(
            kind, settings["map_shape"], seed + offset, device, progress, out
        )
    results["denoise"], den_arrays = _denoise_part(settings, seed + 2, device, progress, out)
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - matplotlib comes with sunpy[map]
        log.warning("matplotlib is not installed: no PNG figures (pip install 'sunpy-nn[plot]')")
    else:
        for kind, name in (("intensity", "continuum"), ("blos", "magnetogram")):
            _enhance_figure(kind, results["enhance"][kind], arrays[kind], out / f"enhance_{name}.png")
        _denoise_figures(results["denoise"], den_arrays, out)
    results["seconds"] = time.perf_counter() - t_start
    results["files"] = sorted(p.name for p in out.iterdir() if p.name.startswith(("enhance_", "denoise_")))
    results["files"].append("summary.json")
    (out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    _print_report(results, out)
    return results
