#!/usr/bin/env python
"""
The science targets of the denoiser (issue 14), measured: strong-signal fidelity, calibrated uncertainty,
temporal mode, Stokes I noise estimation, and what one scan with correlated noise allows.

Run from the repository root::

    python benchmarks/denoise_science.py                 # all parts, 2 workers
    python benchmarks/denoise_science.py --parts white correlated --jobs 1
    python benchmarks/denoise_science.py --timing        # also the 10-minute budget run (15 x 4 x 8 x 256^2)
    python benchmarks/denoise_science.py --docs --timing --parts   # the budget run alone, into the docs' results
    python benchmarks/denoise_science.py --docs          # also update the docs' copy of the results and figures
    python benchmarks/denoise_science.py --quick         # smoke test of the script (numbers meaningless)

Each synthetic part trains three denoisers (about 25 minutes of one idle core; the fast part five, the evolving
part two), the CRISP part two (about 15); ``--docs --timing --jobs 2`` takes about 85 minutes on two idle cores.
``--quick`` shrinks the budget run too.

Every denoiser is trained with the defaults of `sunpy_nn.denoise_cube` (``seed=0``, scans aligned), without any
tuning per cube, in single-scan mode (``temporal=0``), in single-scan mode on the tunings themselves
(``spectral_pca=False``, as in the paper) and in temporal mode (``temporal=2``, `sunpy_nn.denoise_cube`'s default for
five or more scans); on the fast part also both modes
without the alignment of the scans (``align=False``). Single-scan rows also report the coverage with one
calibration factor per Stokes parameter instead of one per tuning (``one_factor``: the same run, rescaled). Cubes:
`sunpy_nn.data.synthetic.synthetic_crisp_cube` with 6 scans x IQUV x 9 tunings x 128 x 128, noise 3e-3 and kG
fields (``v_peak=60``: Stokes V above 3 sigma in about a fifth of the pixels), with white noise and with noise
correlated over ~1 px (a Gaussian of sigma 1 px), a fast-moving version (0.5-1 px drift per scan: motion or
poor alignment, which the alignment undoes), an evolving version (``evolution=0.3``: field amplitudes that
change ~15 % from scan to scan, which no alignment undoes) and the earlier weak-signal cube (``v_peak=15``).
The real CRISP image (``../shared/data/denoise/crisp_stokes_800.npy``, one MOMFBD-restored scan) is denoised with
neighbour sub-sampling, plain and with pixel shuffling. Results: ``benchmarks/results/denoise_science/``
(``summary.json``, figures); with ``--docs`` also ``docs/_static/denoise_science/`` (a partial run replaces its
parts only). Every part records the sunpy_nn version that measured it, and the file's ``sunpy_nn_version`` is the
oldest of them. The docs build writes the guide's tables and quoted figures from that ``summary.json``
(``docs/_ext/generated_denoise.py``, which also prints the tables here).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "denoise_science"
DOCS_FIG = ROOT / "docs" / "_static" / "denoise_science"
NOISE = 3e-3
K_GRID = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0]
CRISP_BANDS = ((0, 0.05), (0.05, 0.15), (0.15, 0.3), (0.3, 0.5))  # pix^-1
PARTS = ("fast", "white", "correlated", "weak", "evolving", "crisp")  # longest first: two workers finish together
QUICK = os.environ.get("SUNPY_NN_BENCH_QUICK") == "1"  # smoke test of the script: tiny cubes, one epoch
CUBES = {
    "white": {"noise_correlation": 0.0},
    "correlated": {"noise_correlation": 1.0},
    "fast": {"drift": (0.5, 1.0)},
    "weak": {"v_peak": 15.0, "qu_peak": 8.0},  # the package's earlier benchmark cube: signals mostly at the noise
    "evolving": {"evolution": 0.3},  # field amplitudes that change ~15 % from scan to scan: no alignment undoes it
}
# The rows of a synthetic part: (temporal, spectral_pca, align, method); some parts leave some out (_runs).
SINGLE = "single scan (temporal=0)"
TUNINGS = "single scan, the tunings (spectral_pca=False)"
TEMPORAL = "temporal mode (temporal=2)"
UNALIGNED_SINGLE = "single scan, scans not aligned (align=False)"
UNALIGNED_TEMPORAL = "temporal mode, scans not aligned (align=False)"


def _runs(part: str) -> list[tuple]:
    """The denoisers trained on a synthetic part, in the order of its rows."""
    runs = [(0, None, True, SINGLE)]
    if part != "evolving":  # (the gain of the spectral basis is measured on the other four)
        runs.append((0, False, True, TUNINGS))
    runs.append((2, None, True, TEMPORAL))
    if part == "fast":  # what the alignment of the scans does where they moved 0.5-1 px
        runs += [(0, None, False, UNALIGNED_SINGLE), (2, None, False, UNALIGNED_TEMPORAL)]
    return runs


def _row(rows: list[dict], method: str) -> dict:
    return next(r for r in rows if r["method"] == method)


def _cube(part: str):
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    kw = {"v_peak": 60.0, "qu_peak": 30.0, "seed": 1} | CUBES[part]
    return synthetic_crisp_cube(48 if QUICK else 128, n_wavelengths=3 if QUICK else 9, n_scans=6, **kw)


def _evaluate(label: str, est, sd, truth, sigma=NOISE) -> dict:
    from sunpy_nn.validation import stokes_error_summary

    return {"method": label} | stokes_error_summary(est, truth, sigma, sd, k=K_GRID)


def run_synthetic(part: str) -> dict:
    import torch

    from sunpy_nn import denoise_cube
    from sunpy_nn.baselines import pca_denoise
    from sunpy_nn.denoise import estimate_noise

    torch.set_num_threads(1)
    cube, truth = _cube(part)
    data = np.asarray(cube.data, np.float64)
    out = {
        "part": part,
        "cube": {"shape": list(data.shape)}
        | {k: list(v) if isinstance(v, tuple) else v for k, v in CUBES[part].items()},
    }
    strong = np.abs(truth[:, 3]).max(axis=1) > 3 * NOISE
    out["cube"]["fraction_of_pixels_with_strong_v"] = float(strong.mean())
    rows = [_evaluate("noisy input", data, None, truth)]
    for temporal, pca, align, name in _runs(part):
        t0 = time.perf_counter()
        res = denoise_cube(
            cube,
            temporal=temporal,
            spectral_pca=pca,
            align=align,
            seed=0,
            progress=False,
            epochs=1 if QUICK else None,
        )
        row = _evaluate(name, np.asarray(res.data, np.float64), res.uncertainty.array, truth)
        row["time_s"] = time.perf_counter() - t0
        row["calibration"] = res.meta["sunpy_nn"]["uncertainty_calibration"]
        per_tuning = res.meta["sunpy_nn"].get("uncertainty_calibration_per_tuning")
        if per_tuning:  # the same run with one factor per Stokes parameter, as before the factors per tuning
            row["calibration_per_tuning"] = per_tuning
            one = np.array(res.uncertainty.array, np.float64)
            for i, lab in ((1, "Q"), (2, "U"), (3, "V")):
                one[:, i] *= row["calibration"][lab] / np.asarray(per_tuning[lab])[None, :, None, None]
            alt = _evaluate(name, np.asarray(res.data, np.float64), one, truth)
            row["one_factor"] = {key: alt[key] for key in ("coverage", "z", "reliability")}
        row["scan_shifts"] = res.meta["sunpy_nn"]["fit"]["scan_shifts"]
        row["noise"] = res.meta["sunpy_nn"]["noise"]
        row["noise_methods"] = res.meta["sunpy_nn"]["noise_methods"]
        rows.append(row)
    rows.append(_evaluate("spectral PCA (baselines.pca_denoise)", np.asarray(pca_denoise(cube).data), None, truth))
    out["rows"] = rows
    single, temporal = _row(rows, SINGLE), _row(rows, TEMPORAL)
    out["temporal_gain"] = {s: 1 - temporal[f"rms_{s}"] / single[f"rms_{s}"] for s in "QUV"}
    if part != "evolving":
        tunings = _row(rows, TUNINGS)
        out["spectral_pca_gain"] = {s: 1 - single[f"rms_{s}"] / tunings[f"rms_{s}"] for s in "QUV"}
    if part == "fast":  # the gain of aligning the scans, in each mode
        out["align_gain"] = {
            mode: {s: 1 - _row(rows, a)[f"rms_{s}"] / _row(rows, b)[f"rms_{s}"] for s in "QUV"}
            for mode, a, b in (("single", SINGLE, UNALIGNED_SINGLE), ("temporal", TEMPORAL, UNALIGNED_TEMPORAL))
        }
    out["noise_estimates"] = {
        lab: {
            "temporal": estimate_noise(data[:, i], method="temporal") / NOISE,
            "spatial": estimate_noise(data[:, i], method="spatial") / NOISE,
            "used": temporal["noise"][lab] / NOISE,
            "method_used": temporal["noise_methods"][lab],
        }
        for i, lab in enumerate("IQUV")
    }
    return out


def run_crisp() -> dict:
    import astropy.units as u
    import torch
    from astropy.wcs import WCS
    from ndcube import NDCube

    from sunpy_nn import Denoiser
    from sunpy_nn.denoise import estimate_noise
    from sunpy_nn.metrics import azimuthal_power_spectrum
    from sunpy_nn.validation import band_mean_power

    torch.set_num_threads(1)
    path = DATA / "denoise" / "crisp_stokes_800.npy"
    if not path.exists():
        return {"part": "crisp", "skipped": f"{path} not found"}
    image = np.load(path).astype(np.float32)
    if QUICK:
        image = image[:96, :96]
    w = WCS(naxis=2)
    w.wcs.ctype, w.wcs.cunit, w.wcs.cdelt = ["HPLN-TAN", "HPLT-TAN"], ["arcsec", "arcsec"], [0.059, 0.059]
    cube = NDCube(image, wcs=w, unit=u.dimensionless_unscaled)
    f, p_in = azimuthal_power_spectrum(image)
    out = {"part": "crisp", "immerkaer_input": estimate_noise(image, method="spatial"), "runs": []}
    for shuffle in (1, 2):
        t0 = time.perf_counter()
        den = Denoiser(shuffle=shuffle).fit(cube, stokes=None, seed=0, progress=False, epochs=1 if QUICK else 10)
        res = np.asarray(den.predict(cube, stokes=None, progress=False).data, np.float64)
        _, p_out = azimuthal_power_spectrum(res)
        _, p_res = azimuthal_power_spectrum(image - res)
        b_in, b_out = (band_mean_power(f, p, CRISP_BANDS) for p in (p_in, p_out))
        bands = {k: b_out[k] / b_in[k] for k in b_in}
        out["runs"].append(
            {
                "shuffle": shuffle,
                "time_s": time.perf_counter() - t0,
                "pairs": den.fit_settings["pairs"],
                "immerkaer_output": estimate_noise(res, method="spatial"),
                "std_removed": float((image - res).std()),
                "power_ratio_output_over_input_per_band_per_pix": bands,
                "spectra": {
                    "freq": f.tolist(),
                    "input": p_in.tolist(),
                    "output": p_out.tolist(),
                    "removed": p_res.tolist(),
                },
            }
        )
    return out


def run_timing() -> dict:
    import torch

    from sunpy_nn import denoise_cube
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    torch.set_num_threads(2)
    cube, _ = synthetic_crisp_cube(48 if QUICK else 256, n_wavelengths=3 if QUICK else 15, n_scans=8, seed=0)
    t0 = time.perf_counter()
    res = denoise_cube(cube, seed=0, progress=False, epochs=1 if QUICK else None)
    return {
        "part": "timing",
        "shape": list(cube.data.shape),
        "temporal": res.meta["sunpy_nn"]["temporal"],
        "threads": 2,
        "denoise_cube_s": time.perf_counter() - t0,
        "budget_s": 600.0,
        "load_average_after": os.getloadavg(),
    }


def _run(part: str) -> dict:
    """One part, with the version that measured it and its wall time (parts of a file may come from other runs)."""
    import sunpy_nn

    t0 = time.perf_counter()
    res = run_crisp() if part == "crisp" else run_timing() if part == "timing" else run_synthetic(part)
    return res | {"sunpy_nn_version": sunpy_nn.__version__, "wall_s": time.perf_counter() - t0, "cpu": _cpu()}


def _cpu() -> dict:
    """The CPU that measured a part (parts of a file may come from other machines): model, class, CPUs."""
    from _run_report import cpu_info

    info = cpu_info()
    return {k: info[k] for k in ("model", "class", "torch_capability", "isa_cap", "logical_cpus")}


def _merge(previous: dict, results: dict) -> dict:
    """The docs' summary after a run: its parts replace the previous ones; the file is as old as its oldest part."""
    from generated_denoise import oldest_version

    old_version = previous.pop("sunpy_nn_version", None) or previous.pop("version", None)
    for value in previous.values():
        if isinstance(value, dict) and "part" in value and "sunpy_nn_version" not in value:
            value["sunpy_nn_version"] = old_version  # a file from before the versions per part
    merged = previous | results
    return merged | {"sunpy_nn_version": oldest_version(merged)}


def figures(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    from scipy.stats import norm

    k = np.array(K_GRID)
    ax.plot(k, 2 * norm.cdf(k) - 1, "k--", lw=1, label="ideal (Gaussian errors)")
    for part, style in (("white", "-"), ("correlated", ":")):
        r = results.get(part)
        if not r:
            continue
        for row, colour in zip(
            (_row(r["rows"], SINGLE), _row(r["rows"], TEMPORAL)), ("tab:blue", "tab:red"), strict=True
        ):
            ax.plot(k, row["reliability"], style, color=colour, marker="o", ms=3, label=f"{part}: {row['method']}")
    ax.set_xlabel("k (multiples of the predicted sigma)")
    ax.set_ylabel("fraction of errors within k sigma")
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Reliability of the uncertainty (Q, U, V)")
    fig.savefig(out / "reliability.png", dpi=120, bbox_inches="tight")
    plt.close(fig)

    r = results.get("white")
    if r:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        labels = ["0-1", "1-3", "3-10", ">10"]
        width = 0.8 / len(r["rows"])
        for i, row in enumerate(r["rows"]):
            ax.bar(np.arange(4) + i * width, [b["rms"] for b in row["bins"]], width, label=row["method"])
        ax.set_xticks(np.arange(4) + 0.4 - width / 2, labels)
        ax.set_xlabel("|truth| / sigma (Q, U, V)")
        ax.set_ylabel("rms error / sigma")
        ax.set_title("Error by signal strength (white noise)")
        ax.legend(fontsize=7)
        fig.savefig(out / "binned_error.png", dpi=120, bbox_inches="tight")
        plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="*", choices=PARTS, default=list(PARTS), help="none: the budget run alone")
    p.add_argument("--timing", action="store_true", help="also the 10-minute budget run (2 threads, alone)")
    p.add_argument("--jobs", type=int, default=2, help="parts run in parallel, one torch thread each")
    p.add_argument("--docs", action="store_true", help="write the docs page's tables and figures")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny cubes and one epoch (numbers meaningless)")
    args = p.parse_args()
    if args.quick:
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"  # inherited by the worker processes
        global QUICK
        QUICK = True
    if args.quick and args.docs:
        p.error("--quick figures are meaningless: not for the docs")
    import sunpy_nn

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))  # the tables are the docs build's (generated_denoise)
    from generated_denoise import cpu_name, science_tables

    OUT.mkdir(parents=True, exist_ok=True)
    results = {
        "sunpy_nn_version": sunpy_nn.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": cpu_name(_cpu()),
        "command": "python benchmarks/denoise_science.py " + " ".join(sys.argv[1:]),
    }
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for res in pool.map(_run, args.parts):
            results[res["part"]] = res
            print(json.dumps(res, indent=1, default=float)[:4000], flush=True)
    if args.timing:  # alone, on both cores
        results["timing"] = _run("timing")
        print(json.dumps(results["timing"], indent=1, default=float), flush=True)
    results["wall_s"] = time.perf_counter() - t0
    (OUT / "summary.json").write_text(json.dumps(results, indent=1, default=float))
    print(science_tables(results))
    figures(results, OUT)
    if args.docs:
        previous = {}
        if (DOCS_FIG / "summary.json").exists():  # a partial run updates its parts only
            previous = json.loads((DOCS_FIG / "summary.json").read_text())
        merged = _merge(previous, results)
        figures(merged, DOCS_FIG)
        (DOCS_FIG / "summary.json").write_text(json.dumps(merged, indent=1, default=float))
        print(f"wrote {DOCS_FIG}; the docs build writes the guide's tables from its summary.json")


if __name__ == "__main__":
    main()
