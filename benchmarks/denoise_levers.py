#!/usr/bin/env python
"""
Levers tried on the denoiser's error and uncertainty (issue 14), measured on the science benchmark's cubes and not
adopted: what each would change against the default `sunpy_nn.denoise_cube`.

Run from the repository root::

    python benchmarks/denoise_levers.py                      # white and correlated cubes, 2 workers
    python benchmarks/denoise_levers.py --parts white --jobs 2
    python benchmarks/denoise_levers.py --quick              # smoke test of the script (numbers meaningless)
    python benchmarks/denoise_levers.py --parts white --docs --levers "PCA 40 epochs bfloat16" "PCA 48 filters" \
        "PCA 20 epochs" "PCA depth 3" "PCA default"

The cubes are ``benchmarks/denoise_science.py``'s (6 scans x IQUV x 9 tunings x 128 x 128, noise 3e-3, kG fields).
Every denoiser is trained with ``seed=0`` on one torch thread. Levers:

- ``default``: `sunpy_nn.denoise_cube`'s defaults (single scan, 10 epochs of 1,000 patches) on the tunings
  themselves (``spectral_pca=False``, the default when these levers were measured), the reference;
- ``self-ensemble``: the default denoiser, its prediction averaged over the 8 rotations and flips of each frame and
  both signs (16 passes);
- ``recalibrated``: the default denoiser, its aleatoric sigma re-scaled by deciles of the predicted sigma, truth-free
  (Noise2Noise pairs, as the calibration of `sunpy_nn.Denoiser.fit`) and with the truth (an oracle: the best any
  re-scaling by the predicted sigma can do);
- ``20 epochs``: twice the training;
- ``spectral``: ``Denoiser(mode="spectral")``, all tunings as channels;
- ``no drift``: the same scene without the 0.1-0.2 px drift between scans (``drift=(0, 0)``): the most that aligning
  the scans could gain.

Levers on the spectral principal components (``spectral_pca``, the default since these levers were first measured):

- ``PCA default``: `sunpy_nn.denoise_cube`'s defaults as they are, the reference of the two below. Its row also
  compares, on the white cube, for each of the three leading components of Q, U and V, the network's rms error with
  that of the best shift-invariant linear filter of each frame, a Wiener filter built from the frame's true 2-D
  power spectrum (an oracle): how much more a single-scan network already draws from the scene's structure;
- ``PCA 48 filters`` and ``PCA depth 3``: a wider or a deeper U-Net (``Denoiser(n_filters=48)``,
  ``Denoiser(depth=3)``; 32 filters and depth 2 by default), the network's capacity as a lever for Stokes V;
- ``PCA 20 epochs`` and ``PCA 40 epochs bfloat16``: the default U-Net trained twice as long in float32, and four
  times as long in bfloat16 mixed precision (``fit(epochs=40, precision="bfloat16")``: on a CPU with native
  bfloat16 about the time of 20 float32 epochs), the training length as a lever.

Reported for Q, U, V together, in units of the noise: the rms error, the rms error by ``|truth| / sigma`` (0-1, 1-3,
3-10, > 10), the coverage within 1 and 2 sigma and the rms and kurtosis of error / sigma
(`sunpy_nn.metrics.standardised_error`), and the time of training and prediction; the JSON also records the CPU (its
model and the flags that decide the bfloat16 speed), as the times depend on it. Results:
``benchmarks/results/denoise_levers.json``; with ``--docs`` (which needs the five ``PCA`` levers) also
``docs/_static/denoise_science/levers.json``, which the denoising guide quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "denoise_levers.json"
DOCS = ROOT / "docs" / "_static" / "denoise_science" / "levers.json"
DOCS_LEVERS = ("PCA default", "PCA 48 filters", "PCA depth 3", "PCA 20 epochs", "PCA 40 epochs bfloat16")  # quoted
PARTS = ("white", "correlated")
JOBS = ("default", "20 epochs", "spectral", "no drift", *DOCS_LEVERS)
# The training of the levers on the spectral components: (epochs in units of the default's, precision)
TRAINING = {"PCA 20 epochs": (2, "float32"), "PCA 40 epochs bfloat16": (4, "bfloat16")}


def _cube(part: str, drift: bool = True):
    import denoise_science as ds

    if drift:
        return ds._cube(part)
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    kw = {"v_peak": 60.0, "qu_peak": 30.0, "seed": 1} | ds.CUBES[part] | {"drift": (0.0, 0.0)}
    return synthetic_crisp_cube(48 if ds.QUICK else 128, n_wavelengths=3 if ds.QUICK else 9, n_scans=6, **kw)


def _row(label: str, data, sd, truth, seconds: float | None = None) -> dict:
    from denoise_science import NOISE

    from sunpy_nn.validation import stokes_error_summary

    r = stokes_error_summary(np.asarray(data, np.float64), truth, NOISE, sd)
    out = {"lever": label, "rms_QUV": [r[f"rms_{s}"] for s in "QUV"], "bins": [b["rms"] for b in r["bins"]]}
    out |= {"coverage": [r["coverage"]["1sigma"], r["coverage"]["2sigma"]], "z": r["z"]}
    return out | ({"seconds": seconds} if seconds is not None else {})


def _self_ensemble(den) -> None:
    """Average the denoiser's frames over the 8 rotations and flips and both signs (Q, U, V are signed)."""
    plain = den._run_one

    def run(frame, *args):
        means, variances = [], []
        for k in range(4):
            for flip in (False, True):
                for sign in (1.0, -1.0):
                    f = np.rot90(frame, k, axes=(1, 2))
                    f = f[:, :, ::-1] if flip else f
                    m, lv = plain(np.ascontiguousarray(sign * f), *args)
                    m, v = sign * m, np.exp(lv)
                    m, v = (m[:, :, ::-1], v[:, :, ::-1]) if flip else (m, v)
                    means.append(np.rot90(m, -k, axes=(1, 2)))
                    variances.append(np.rot90(v, -k, axes=(1, 2)))
        return np.mean(means, 0).astype(np.float32), np.log(np.mean(variances, 0)).astype(np.float32)

    den._run_one = run


def _recalibrated(den, cube, truth, res) -> dict[str, np.ndarray]:
    """The aleatoric sigma re-scaled by deciles of the predicted variance: truth-free and with the truth."""
    from sunpy_nn.training._whole_frames import _calibration_frames, _frame_pair
    from sunpy_nn.training.noise2noise import Noise2NoisePairs

    _, canon, labels, selected = den._prepare(cube, ("Q", "U", "V"))
    sigma = np.array([den.noise.get(lab) or 1.0 for lab in labels], np.float32)
    normed = canon / sigma[None, :, None, None, None]
    signed = [lab != "I" for lab in labels]
    patch = den.fit_settings["patch_size"]
    x_split = round(canon.shape[4] * 0.9)
    sampler = Noise2NoisePairs(normed, selected, signed, den.mode, patch, (0, x_split), np.random.default_rng(0), False)
    rng = np.random.default_rng(0)
    combos, a = _calibration_frames(sampler, rng)
    out = {m: res.uncertainty.array.copy() for m in ("truth-free", "oracle")}
    for s in selected:
        r2, e2, var, target_noise = [], [], [], []
        for t, w in combos:
            inp, y, base = _frame_pair(sampler, t, s, w, rng)
            f, log_var = den._run_one(
                np.asarray(inp, np.float32), None, None, den.model.out_channels, den.model, "float32", False
            )
            r2.append(((y - f) ** 2).ravel())
            target_noise.append((a * (y - base) ** 2).ravel())
            e2.append(((f - truth[t, s, w] / sigma[s]) ** 2).ravel())
            var.append(np.broadcast_to(np.exp(log_var), f.shape).ravel())
        r2, e2, var, target_noise = map(np.concatenate, (r2, e2, var, target_noise))
        # the target's noise, removed as one mean over all pixels: per decile it would be biased by the selection
        r2 = r2 - target_noise.mean()
        edges = np.quantile(var, np.linspace(0, 1, 11))
        decile = np.clip(np.searchsorted(edges, var, side="right") - 1, 0, 9)
        centre = np.log([np.median(var[decile == b]) for b in range(10)])
        # the head's own variance: prediction applied the factor of each tuning (single scan) or the one factor
        n_w = res.uncertainty.array.shape[2]
        factor_w = np.asarray(den.calibration_tunings.get(labels[s], [den.calibration[labels[s]]] * n_w))
        raw = (res.uncertainty.array[:, s] / (den.noise[labels[s]] * factor_w[None, :, None, None])) ** 2
        for name, err in (("truth-free", r2), ("oracle", e2)):
            factor = [max(err[decile == b].sum(), 1e-12) / var[decile == b].sum() for b in range(10)]
            out[name][:, s] = np.sqrt(raw * np.interp(np.log(raw), centre, factor)) * den.noise[labels[s]]
    return out


def _wiener_oracle(den, truth, res, n_components: int = 3) -> dict[str, list[dict]]:
    """
    Per Stokes parameter and leading spectral component: the network's rms error and that of a Wiener oracle, the
    best shift-invariant linear filter of each frame, built from that frame's true 2-D power spectrum (white noise of
    variance 1 in the components: the white cube only).
    """
    from denoise_science import NOISE

    out = {}
    for s, label in ((1, "Q"), (2, "U"), (3, "V")):
        basis = den.spectral_basis[label]  # (wavelength, component); orthonormal, so the noise stays white, of 1
        comp = [np.einsum("wk,twyx->tkyx", basis, np.asarray(a, np.float64)[:, s] / NOISE) for a in (truth, res.data)]
        rows = []
        for k in range(n_components):
            signal = comp[0][:, k] - comp[0][:, k].mean(axis=(-2, -1), keepdims=True)
            power = np.abs(np.fft.fft2(signal)) ** 2 / signal[0].size  # per frame and frequency; white noise: 1
            # the Wiener error at each frequency, P N / (P + N) with N = 1, averaged over frequencies and frames
            wiener = float(np.sqrt((power / (power + 1.0)).mean()))
            network = float(np.sqrt(((comp[1][:, k] - comp[0][:, k]) ** 2).mean()))
            rows.append({"component": k, "signal_rms": float(signal.std()), "network": network, "wiener": wiener})
        out[label] = rows
    return out


def run(job: tuple[str, str]) -> list[dict]:
    import denoise_science as ds
    import torch

    from sunpy_nn import Denoiser

    torch.set_num_threads(1)
    part, lever = job
    epochs = 1 if ds.QUICK else 10
    cube, truth = _cube(part, drift=lever != "no drift")
    t0 = time.perf_counter()
    if lever.startswith("PCA"):
        den = Denoiser(**{"PCA 48 filters": {"n_filters": 48}, "PCA depth 3": {"depth": 3}}.get(lever, {}))
    else:
        # on the tunings, as these levers were measured (the recalibration compares frames with the truth per tuning)
        den = Denoiser(mode="spectral" if lever == "spectral" else "image", spectral_pca=False)
    times, precision = TRAINING.get(lever, (2 if lever == "20 epochs" else 1, "float32"))
    den.fit(cube, stokes=("Q", "U", "V"), epochs=times * epochs, seed=0, precision=precision, progress=False)
    res = den.predict(cube, stokes=("Q", "U", "V"), progress=False)
    rows = [_row(lever, res.data, res.uncertainty.array, truth, time.perf_counter() - t0)]
    if lever == "PCA default" and part == "white":  # the oracle assumes white noise
        rows[0]["wiener_oracle"] = _wiener_oracle(den, truth, res)
    if lever == "default":
        for name, sd in _recalibrated(den, cube, truth, res).items():
            rows.append(_row(f"recalibrated ({name})", res.data, sd, truth))
        _self_ensemble(den)
        t1 = time.perf_counter()
        tta = den.predict(cube, stokes=("Q", "U", "V"), progress=False)
        rows.append(_row("self-ensemble", tta.data, tta.uncertainty.array, truth, time.perf_counter() - t1))
    return [{"part": part} | row for row in rows]


def _cpu() -> dict:
    """The CPU that measured the times: its model and the flags that decide bfloat16's speed."""
    from _run_report import _cpu_model

    from sunpy_nn.nn.device import _cpu_flags

    flags = _cpu_flags()
    return {
        "model": _cpu_model(),
        "flags": sorted(f for f in flags if f.startswith(("avx", "amx"))),
        "logical_cpus": os.cpu_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--levers", nargs="+", choices=JOBS, default=list(JOBS), help="trainings to run")
    p.add_argument("--jobs", type=int, default=2, help="trainings in parallel, one torch thread each")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny cubes and one epoch (numbers meaningless)")
    p.add_argument("--docs", action="store_true", help="also write the docs' copy (needs the three PCA levers)")
    args = p.parse_args()
    if args.docs and (args.quick or not set(DOCS_LEVERS) <= set(args.levers) or "white" not in args.parts):
        p.error(f"--docs needs the white part and the levers {DOCS_LEVERS}, without --quick")
    if args.quick:
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"  # read by denoise_science, also in the worker processes
    import sunpy_nn

    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(run, [(part, lever) for part in args.parts for lever in args.levers]):
            for row in result:
                rows.append(row)
                cov, z = row["coverage"], row["z"]
                rms = " ".join(f"{v:.3f}" for v in row["rms_QUV"])
                bins = " ".join(f"{v:.2f}" for v in row["bins"])
                print(
                    f"{row['part']:<10} {row['lever']:<26} rms Q/U/V {rms}  by |truth|/sigma {bins}  within 1/2 sigma "
                    f"{cov[0]:.3f}/{cov[1]:.3f}  z rms {z['rms']:.2f} kurtosis {z['kurtosis']:.1f}",
                    flush=True,
                )
                for label, comps in row.get("wiener_oracle", {}).items():
                    pairs = ", ".join(f"{c['network']:.3f} / {c['wiener']:.3f}" for c in comps)
                    print(f"{'':<10} {label}: rms error of the leading components, network / Wiener oracle: {pairs}")
    if not args.quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "sunpy_nn_version": sunpy_nn.__version__,
            "command": shlex.join(["python", *sys.argv]),
            "cpu": _cpu(),
            "rows": rows,
        }
        text = json.dumps(result, indent=1)
        OUT.write_text(text)
        print(f"wrote {OUT}")
        if args.docs:
            DOCS.write_text(text)
            print(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
