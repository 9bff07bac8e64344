"""
The denoise guide's measured figures, written at docs-build time from the science benchmark's results (issue #17).

``docs/_static/denoise_science/summary.json`` is written by ``python benchmarks/denoise_science.py --docs``: one
entry per part (``white``, ``correlated``, ``fast``, ``weak``, ``evolving``, ``crisp``, ``timing``), each with the
sunpy_nn version that measured it. From it, `write_denoise_files` (called by ``generated_pages.write_demo_page_files``)
writes into ``docs/guide/generated/``:

- ``denoise_science.inc``: the tables of the guide's "Measured quality" section (`science_tables`);
- ``denoise_figures.inc``: the substitutions (``|den_aligned_temporal_gain|`` ...) for the figures that the
  guide's prose quotes (`denoise_figures`).

Both are pure functions of the summary, so the page and the tables cannot disagree with the file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

# The parts whose synthetic scenes drift 0.1-0.2 px per scan (synthetic_crisp_cube's default): temporal mode's case.
ALIGNED = ("white", "correlated", "weak")
PARTS = (*ALIGNED, "fast", "evolving")  # the synthetic cubes of the table
# The CRISP power bands (px^-1) where the solar signal is, for the power a denoiser removes.
SIGNAL_BANDS = ("0.05-0.15", "0.15-0.3")
TITLES = {
    "white": "White noise",
    "correlated": "Noise correlated over ~1 px",
    "fast": "Fast motion (0.5-1 px drift per scan)",
    "weak": "Weak signals (the earlier benchmark cube)",
    "evolving": "Fast evolution (field amplitudes ~15 % different from scan to scan)",
}


def _span(values, fmt: str, scale: float = 1.0, unit: str = "") -> str:
    """``"low-high"`` of ``values`` (one figure when both round alike), with ``unit``."""
    low, high = (f"{min(values) * scale:{fmt}}", f"{max(values) * scale:{fmt}}")
    return (low if low == high else f"{low}-{high}") + unit


# The rows' roles, by the method each row names (benchmarks/denoise_science.py).
ROLES = {
    "noisy input": "input",
    "single scan (temporal=0, the default)": "single",  # its name before sunpy_nn 0.2
    "single scan (temporal=0)": "single",
    "single scan, the tunings (spectral_pca=False)": "tunings",
    "temporal mode (temporal=2)": "temporal",
    "spectral PCA (baselines.pca_denoise)": "pca",
    "single scan, scans not aligned (align=False)": "single_unaligned",
    "temporal mode, scans not aligned (align=False)": "temporal_unaligned",
}


# How the tables name the rows of these roles since temporal mode became denoise_cube's default for five or more
# scans (sunpy_nn 0.2): the benchmark passes each row's temporal explicitly, so a row measured before the change
# measured the same setting; only its recorded name says which was the default then.
LABELS = {
    "single": "single scan (temporal=0)",
    "temporal": "temporal mode (temporal=2, the default from five scans)",
}


def _label(method: str) -> str:
    """The name a row is shown under: the role's current one, else the one the benchmark recorded."""
    return LABELS.get(ROLES.get(method, ""), method)


def _signed(values) -> str:
    """``"+1 %, -3 % and +20 %"``: changes of Q, U and V, with their signs."""
    texts = [f"{100 * v:+.0f} %" for v in values]
    return ", ".join(texts[:-1]) + " and " + texts[-1]


def _rows(summary: dict, part: str) -> dict[str, dict]:
    """
    The rows of one synthetic part by role: ``input``, ``single``, ``tunings`` (single scan with
    ``spectral_pca=False``), ``temporal``, ``pca``, and on the fast part ``single_unaligned`` and
    ``temporal_unaligned`` (``align=False``); parts leave some out.
    """
    return {ROLES[row["method"]]: row for row in summary[part]["rows"]}


def part_version(summary: dict, part: str) -> str:
    """The sunpy_nn version that measured ``part`` (files written before versions were per part: the file's)."""
    return summary[part].get("sunpy_nn_version") or summary.get("sunpy_nn_version") or summary["version"]


def _dev(version: str) -> int:
    found = re.search(r"dev(\d+)", version)
    return int(found.group(1)) if found else 0


def oldest_version(summary: dict) -> str:
    """The oldest version among the parts (by its ``devN`` commit count): the file is as fresh as its oldest part."""
    parts = [p for p in summary if isinstance(summary[p], dict) and "part" in summary[p]]
    return min((part_version(summary, p) for p in parts), key=_dev)


def denoise_figures(summary: dict) -> dict[str, str]:
    """
    The figures that the denoise guide's prose quotes, formatted as it quotes them.

    Parameters
    ----------
    summary : dict
        The contents of ``docs/_static/denoise_science/summary.json``.

    Returns
    -------
    dict of str
        Substitution name (``den_...``) to its text.
    """
    gains = [summary[p]["temporal_gain"][s] for p in ALIGNED for s in "QUV"]
    fast = summary["fast"]
    correlated_temporal = _rows(summary, "correlated")["temporal"]
    runs = {run["shuffle"]: run["power_ratio_output_over_input_per_band_per_pix"] for run in summary["crisp"]["runs"]}
    return {
        "den_aligned_temporal_gain": _span(gains, ".0f", 100, " %"),
        "den_spectral_pca_gain": _span(
            [summary[p]["spectral_pca_gain"][s] for p in (*ALIGNED, "fast") for s in "QUV"], ".0f", 100, " %"
        ),
        # what aligning the scans gained on the cube that moves 0.5-1 px per scan, in each mode
        "den_fast_align_gain_single": _span([fast["align_gain"]["single"][s] for s in "QUV"], ".0f", 100, " %"),
        "den_fast_align_gain_temporal": _span([fast["align_gain"]["temporal"][s] for s in "QUV"], ".0f", 100, " %"),
        "den_fast_temporal_gain": _span([fast["temporal_gain"][s] for s in "QUV"], ".0f", 100, " %"),
        "den_fast_unaligned_qu_loss": _span(
            [
                rows["temporal_unaligned"][f"rms_{s}"] / rows["single_unaligned"][f"rms_{s}"] - 1
                for rows in [_rows(summary, "fast")]
                for s in "QU"
            ],
            ".0f",
            100,
            " %",
        ),
        # the budget run: the default denoise_cube on the largest cube, and its ratio to the budget
        **(
            {
                "den_budget_s": f"{summary['timing']['denoise_cube_s']:.0f} s",
                "den_budget_temporal": str(summary["timing"]["temporal"]),
                "den_budget_cpu": _timing_machine(summary),
            }
            if "timing" in summary
            else {}
        ),
        "den_evolving_temporal_change": _signed([-summary["evolving"]["temporal_gain"][s] for s in "QUV"]),
        # the evolving cube's strongest bin (|truth| > 10 sigma), rms error over the noise, by method
        **{
            f"den_evolving_strong_{role}": f"{_rows(summary, 'evolving')[role]['bins'][3]['rms']:.2f}"
            for role in ("single", "temporal", "pca")
        },
        "den_evolving_within_1_sigma": f"{100 * _rows(summary, 'evolving')['temporal']['coverage']['1sigma']:.0f} %",
        "den_evolving_within_2_sigma": f"{100 * _rows(summary, 'evolving')['temporal']['coverage']['2sigma']:.0f} %",
        # to a tenth of a per cent, where the rounded figure would hide which side of issue 14's range it lies
        **{
            f"den_aligned_within_{k}_sigma_fine": _span(
                [_rows(summary, p)["temporal"]["coverage"][f"{k}sigma"] for p in ALIGNED], ".1f", 100, " %"
            )
            for k in (1, 2)
        },
        "den_weak_temporal_z_rms": f"{_rows(summary, 'weak')['temporal']['z']['rms']:.2f}",
        "den_weak_temporal_within_2_sigma_fine": _span(
            [_rows(summary, "weak")["temporal"]["coverage"]["2sigma"]], ".1f", 100, " %"
        ),
        "den_evolving_z_rms": " and ".join(
            f"{_rows(summary, 'evolving')[role]['z']['rms']:.2f}" for role in ("temporal", "single")
        ),
        "den_temporal_z_rms": _span([_rows(summary, p)["temporal"]["z"]["rms"] for p in (*ALIGNED, "fast")], ".2f"),
        **{
            f"den_corr_temporal_within_{k}_sigma": f"{100 * correlated_temporal['coverage'][f'{k}sigma']:.0f} %"
            for k in (1, 2)
        },
        "den_corr_temporal_z_rms": f"{correlated_temporal['z']['rms']:.2f}",
        "den_temporal_within_1_sigma": _span(
            [_rows(summary, p)["temporal"]["coverage"]["1sigma"] for p in (*ALIGNED, "fast")], ".0f", 100, " %"
        ),
        "den_single_within_1_sigma": _span(
            [_rows(summary, p)["single"]["coverage"]["1sigma"] for p in ALIGNED], ".0f", 100, " %"
        ),
        "den_single_z_rms": _span([_rows(summary, p)["single"]["z"]["rms"] for p in ALIGNED], ".2f"),
        "den_single_within_2_sigma": _span(
            [_rows(summary, p)["single"]["coverage"]["2sigma"] for p in ALIGNED], ".0f", 100, " %"
        ),
        # the same runs with one calibration factor per Stokes parameter instead of one per tuning
        "den_one_factor_within_1_sigma": _span(
            [_rows(summary, p)["single"]["one_factor"]["coverage"]["1sigma"] for p in ALIGNED], ".0f", 100, " %"
        ),
        "den_one_factor_z_rms": _span([_rows(summary, p)["single"]["one_factor"]["z"]["rms"] for p in ALIGNED], ".2f"),
        "den_tuning_factor_ratio": _span(
            [
                f / row["calibration"][s]
                for p in ALIGNED
                for row in [_rows(summary, p)["single"]]
                for s in "QUV"
                for f in row["calibration_per_tuning"][s]
            ],
            ".2f",
        ),
        "den_single_z_kurtosis": _span([_rows(summary, p)["single"]["z"]["kurtosis"] for p in ALIGNED], ".0f"),
        "den_i_temporal_aligned": _span([summary[p]["noise_estimates"]["I"]["temporal"] for p in ALIGNED], ".1f"),
        "den_i_temporal_fast": f"{fast['noise_estimates']['I']['temporal']:.1f}",
        # Q and U's noise on the evolving cube: from all pixels' scan differences, and as the denoiser took it (its
        # weakly polarised pixels')
        **{
            f"den_evolving_qu_{key}": _span([summary["evolving"]["noise_estimates"][s][key] for s in "QU"], ".3f")
            for key in ("temporal", "used")
        },
        # issue 14's targets: the evolving cube's rms error in temporal mode; temporal mode's error above 3 sigma (the
        # bins 3-10 and > 10) on every cube, and its ratio to the spectral PCA's in the same bin; Stokes I's noise as
        # the denoiser took it
        "den_evolving_temporal_rms": _span([_rows(summary, "evolving")["temporal"][f"rms_{s}"] for s in "QUV"], ".2f"),
        "den_strong_temporal": _span(
            [_rows(summary, p)["temporal"]["bins"][i]["rms"] for p in PARTS for i in (2, 3)], ".2f"
        ),
        "den_strong_over_pca": _span(
            [
                rows["temporal"]["bins"][i]["rms"] / rows["pca"]["bins"][i]["rms"]
                for p in PARTS
                for rows in [_rows(summary, p)]
                for i in (2, 3)
            ],
            ".2f",
        ),
        "den_i_used": _span([summary[p]["noise_estimates"]["I"]["used"] for p in PARTS], ".2f"),
        "den_crisp_plain_removed": _span([1 - runs[1][b] for b in SIGNAL_BANDS], ".0f", 100, " %"),
        "den_crisp_shuffle_removed": _span([1 - runs[2][b] for b in SIGNAL_BANDS], ".0f", 100, " %"),
        "den_version": oldest_version(summary),
    }


def lazy_align_figures(result: dict) -> dict[str, str]:
    """
    The figures of ``docs/_static/denoise_science/lazy_align.json`` (``benchmarks/denoise_lazy_align.py``) that the
    denoise guide quotes: the gain of registering a lazy cube's stacks of scans, and the rms errors of its runs (single
    scan, and temporal mode on the dask-backed cube and in memory).
    """
    rms = {row["key"]: "/".join(f"{row[f'rms_{s}']:.3f}" for s in "QUV") for row in result["rows"]}
    return {
        "den_lazy_align_gain": _span(list(result["gain"].values()), ".0f", 100, " %"),
        "den_lazy_align_rms": rms["lazy"],
        "den_lazy_align_rms_memory": rms["memory"],
        "den_lazy_align_rms_unaligned": rms["lazy_unaligned"],
        "den_lazy_temporal_rms": rms["lazy_temporal"],
        "den_lazy_temporal_rms_memory": rms["memory_temporal"],
    }


def tuning_noise_figures(result: dict) -> dict[str, str]:
    """
    The figures of ``docs/_static/denoise_science/tuning_noise.json`` (``benchmarks/denoise_tuning_noise.py``) that
    the denoise guide quotes, with a noise level per tuning and with one level: the rms errors, the coverage within
    1 sigma at the line core (the tuning of the lowest noise) and within 2 sigma overall, and the rms of error /
    sigma, in single-scan and in temporal mode (``_temporal``); the error of the measured noise profile, and the
    spread of the profiles measured on uniform noise.
    """
    rows = {row["key"]: row for row in result["rows"]}
    rms = {key: "/".join(f"{row[f'rms_{s}']:.3f}" for s in "QUV") for key, row in rows.items()}
    injected = rows["per_tuning"]["injected_profile"]
    core = min(injected) / max(injected)
    at_core = injected.index(min(injected))  # the tuning of the lowest noise: the line core
    spreads = [v for part in result["uniform_spread"].values() for v in part.values()]
    figures = {}
    for key, suffix in (
        ("per_tuning", ""),
        ("one_level", "_one"),
        ("temporal_per_tuning", "_temporal"),
        ("temporal_one_level", "_temporal_one"),
    ):
        row = rows[key]
        figures[f"den_tuning_noise_1sigma{suffix}"] = f"{row['coverage']['1sigma']:.2f}"
        figures[f"den_tuning_noise_rms{suffix}"] = rms[key]
        figures[f"den_tuning_noise_core_coverage{suffix}"] = f"{row['coverage_1sigma_per_tuning'][at_core]:.2f}"
        figures[f"den_tuning_noise_2sigma{suffix}"] = f"{row['coverage']['2sigma']:.2f}"
        figures[f"den_tuning_noise_z{suffix}"] = f"{row['z']['rms']:.2f}"
    return figures | {
        "den_tuning_noise_gain": _span(list(result["gain"].values()), ".0f", 100, " %"),
        "den_tuning_noise_temporal_gain": _span(list(result["temporal_gain"].values()), ".0f", 100, " %"),
        "den_tuning_noise_temporal_width_one": f"{1 / rows['temporal_one_level']['z']['rms']:.2f}",
        "den_tuning_noise_profile_error": f"{100 * max(result['profile_error'].values()):.0f} %",
        "den_tuning_noise_core": f"{core:.2f}",
        "den_tuning_noise_uniform_spread": f"{max(spreads):.2f}",
    }


def _pixels(row: dict) -> int:
    """The number of Q, U and V pixels of a run of ``benchmarks/denoise_seeds.py``."""
    return sum(b["n"] for b in row["z_by_strength"])


def _strong_pixels(row: dict) -> int:
    """The number of those where the truth exceeds 3 times the noise."""
    return sum(b["n"] for b in row["z_by_strength"] if b["low"] >= 3)


def seeds_figures(result: dict) -> dict[str, str]:
    """
    The figures of ``docs/_static/denoise_science/seeds.json`` (``benchmarks/denoise_seeds.py``) that the denoise
    guide quotes: temporal mode on the science benchmark's four slowly evolving cubes, each drawn and trained with
    several seeds; the ranges over all runs and how many of them fall outside issue 14's targets.
    """
    rows = result["rows"]
    within_1, within_2 = ([r["coverage"][k] for r in rows] for k in ("1sigma", "2sigma"))
    strong = [b for r in rows for b in r["z_by_strength"] if b["low"] >= 3 and b["n"]]  # the truth above 3 sigma
    return {
        "den_seeds_version": result["sunpy_nn_version"],
        "den_seeds_count": str(len(result["seeds"])),
        "den_seeds_runs": str(len(rows)),
        "den_seeds_within_1_sigma": _span(within_1, ".1f", 100, " %"),
        "den_seeds_within_2_sigma": _span(within_2, ".1f", 100, " %"),
        "den_seeds_outside_1_sigma": str(sum(not 0.63 <= v <= 0.73 for v in within_1)),
        "den_seeds_outside_2_sigma": str(sum(not 0.92 <= v <= 0.98 for v in within_2)),
        "den_seeds_z_rms": _span([r["z"]["rms"] for r in rows], ".2f"),
        "den_seeds_rms_qu": _span([r[f"rms_{s}"] for r in rows for s in "QU"], ".3f"),
        "den_seeds_rms_v": _span([r["rms_V"] for r in rows], ".3f"),
        "den_seeds_v_over": str(sum(r["rms_V"] > 0.2 for r in rows)),
        "den_seeds_qu_over": str(sum(max(r["rms_Q"], r["rms_U"]) > 0.2 for r in rows)),
        # the rms error of Q, U and V together where the truth is above 3 sigma (the noisy input's: 1)
        "den_seeds_strong": _span([b["rms"] for r in rows for b in r["bins"] if b["low"] >= 3 and b["n"]], ".2f"),
        "den_seeds_strong_fraction": _span([_strong_pixels(r) / _pixels(r) for r in rows], ".1f", 100, " %"),
        # the error bars there: the rms of error / sigma and the coverage within 1 sigma
        "den_seeds_strong_z": _span([b["rms"] for b in strong], ".1f"),
        "den_seeds_strong_within_1_sigma": _span([b["coverage"][0] for b in strong], ".0f", 100, " %"),
    }


def reuse_figures(result: dict, seeds: dict) -> dict[str, str]:
    """
    The figures of ``docs/_static/denoise_science/reuse.json`` (``benchmarks/denoise_reuse.py``): a temporal denoiser
    fitted on the white and on the correlated cube of the science benchmark, applied to each target (its training
    cube, the same scene with a new noise draw at 1, 0.7 and 1.4 times the noise, another scene); per target, the
    ranges over the two cubes of the coverage within 1 and 2 sigma and of the rms of error / sigma. The baseline of
    "another scene": temporal mode fitted on that cube itself, from ``seeds`` (``benchmarks/denoise_seeds.py``).
    """
    out = {"den_reuse_version": result["sunpy_nn_version"]}
    names = {
        "training cube": "training",
        "same scene, new noise": "same",
        "same scene, noise x0.7": "lower",
        "same scene, noise x1.4": "higher",
        "another scene": "other",
    }
    for target, key in names.items():
        rows = [r for part in result["parts"] for r in part["targets"] if r["target"] == target]
        within_1 = _span([r["coverage"]["1sigma"] for r in rows], ".1f", 100, " %")
        within_2 = _span([r["coverage"]["2sigma"] for r in rows], ".1f", 100, " %")
        z = _span([r["z"]["rms"] for r in rows], ".2f")
        out[f"den_reuse_{key}"] = f"{within_1} within 1 sigma, {within_2} within 2 sigma, rms of error / sigma {z}"
        out[f"den_reuse_{key}_strong_z"] = _span([r["strong"]["z_rms"] for r in rows], ".1f")
        out[f"den_reuse_{key}_rms_qu"] = _span([r[f"rms_{s}"] for r in rows for s in "QU"], ".3f")
        out[f"den_reuse_{key}_rms_v"] = _span([r["rms_V"] for r in rows], ".3f")
    self_fit = [r for r in seeds["rows"] if r["cube_seed"] == 3 and r["part"] in {p["part"] for p in result["parts"]}]
    out["den_reuse_self_rms_v"] = _span([r["rms_V"] for r in self_fit], ".3f")
    out["den_reuse_self_strong_z"] = _span([_strong_z(r) for r in self_fit], ".1f")
    return out


def bound_figures(result: dict, seeds: dict) -> dict[str, str]:
    """
    The figures of ``docs/_static/denoise_science/bound.json`` (``benchmarks/denoise_bound.py``): the rms error that
    the oracle Wiener filter of five (``scans_5``) and of six scans leaves on the cubes of
    ``benchmarks/denoise_seeds.py``, in units of the noise, and temporal mode's rms error on the same cube (from
    ``seeds``) divided by the five-scan figure: the ranges on the correlated cubes, and on the others.
    """
    rows = result["rows"]
    runs = {(r["part"], r["cube_seed"]): r for r in seeds["rows"]}
    paired = [(r, runs[(r["part"], r["cube_seed"])]) for r in rows if (r["part"], r["cube_seed"]) in runs]

    def ratios(parts: set[str], stokes: str) -> list[float]:
        return [run[f"rms_{s}"] / r["scans_5"][s] for r, run in paired if r["part"] in parts for s in stokes]

    corr = [r for r in rows if r["part"] == "correlated"]
    others = {r["part"] for r in rows} - {"correlated"}
    weak = ratios({"weak"}, "QU")
    return {
        "den_bound_cubes": str(len(corr)),
        "den_bound_corr_runs_over": str(sum(run["rms_V"] > 0.2 for r, run in paired if r["part"] == "correlated")),
        "den_bound_corr_v": _span([r["scans_5"]["V"] for r in corr], ".3f"),
        "den_bound_corr_v_all": _span([r["scans_6"]["V"] for r in corr], ".3f"),
        "den_bound_corr_qu": _span([r["scans_5"][s] for r in corr for s in "QU"], ".3f"),
        "den_bound_corr_v_over": str(sum(r["scans_5"]["V"] > 0.2 for r in corr)),
        "den_bound_corr_v_all_over": str(sum(r["scans_6"]["V"] > 0.2 for r in corr)),
        "den_bound_corr_ratio_v": _span(ratios({"correlated"}, "V"), ".2f"),
        "den_bound_corr_ratio_qu": _span(ratios({"correlated"}, "QU"), ".2f"),
        "den_bound_ratio_v": _span(ratios(others, "V"), ".2f"),
        "den_bound_ratio_qu": _span(ratios(others, "QU"), ".2f"),
        "den_bound_weak_ratio_qu": _span(weak, ".2f") if weak else "-",
    }


def _strong_z(row: dict) -> float:
    """The rms of error / sigma where the truth exceeds 3 times the noise, from a seeds run's bins by strength."""
    strong = [b for b in row["z_by_strength"] if b["low"] >= 3 and b["n"]]
    return math.sqrt(sum(b["n"] * b["rms"] ** 2 for b in strong) / sum(b["n"] for b in strong))


def levers_figures(result: dict) -> dict[str, str]:
    """
    The figures of ``docs/_static/denoise_science/levers.json`` (``benchmarks/denoise_levers.py --docs``) that the
    denoise guide quotes, on the white cube and the spectral principal components: the single-scan rms error of Q, U
    and V with the default U-Net, a wider and a deeper one and the default one trained longer (20 float32 epochs, 40
    bfloat16 epochs), the time of each against the default's (training and prediction, on the CPU the JSON names),
    the coverage of the longest training, and the network's rms error in the three leading components against a
    Wiener oracle's (each frame's best shift-invariant linear filter; V's first component, and the span of the gain
    over all nine).
    """
    rows = {row["lever"]: row for row in result["rows"] if row["part"] == "white"}
    default = rows["PCA default"]
    comps = [c for label in "QUV" for c in default["wiener_oracle"][label]]
    v0 = default["wiener_oracle"]["V"][0]
    levers = (
        ("default", "PCA default"),
        ("48", "PCA 48 filters"),
        ("depth3", "PCA depth 3"),
        ("20ep", "PCA 20 epochs"),
        ("40ep_bf16", "PCA 40 epochs bfloat16"),
    )
    cpu = result["cpu"]
    units = [name for name, flag in (("AVX512-BF16", "avx512_bf16"), ("AMX", "amx_bf16")) if flag in cpu["flags"]]
    return {
        **{f"den_levers_rms_{key}": "/".join(f"{v:.3f}" for v in rows[lever]["rms_QUV"]) for key, lever in levers},
        **{f"den_levers_time_{key}": f"{rows[lever]['seconds'] / default['seconds']:.1f}" for key, lever in levers[1:]},
        **{
            f"den_levers_cov_{key}": f"{rows[lever]['coverage'][0]:.2f}/{rows[lever]['coverage'][1]:.2f}"
            for key, lever in (levers[0], levers[-1])
        },
        "den_levers_cpu": f"{cpu['model']}, with {' and '.join(units) if units else 'no native bfloat16'}",
        "den_levers_v0_network": f"{v0['network']:.2f}",
        "den_levers_v0_wiener": f"{v0['wiener']:.2f}",
        "den_levers_wiener_gain": _span([1 - c["network"] / c["wiener"] for c in comps], ".0f", 100, " %"),
    }


def batch_figures(result: dict) -> dict[str, str]:
    """
    The figures of ``docs/_static/denoise_science/batch.json`` (``benchmarks/denoise_batch.py --docs``) that the
    denoise guide quotes, on the white cube: for batches of 10 (the paper's), 5 (the default) and 2, and 5 with twice
    the epochs, the single-scan rms error of Q, U and V, the coverage within 1 and 2 sigma, the kurtosis of error /
    sigma, the optimiser steps and the time against that of batches of 10 (training and prediction), and the CPU.
    """
    rows = {row["lever"]: row for row in result["rows"] if row["part"] == "white"}
    keys = (("10", "batch 10"), ("5", "batch 5"), ("2", "batch 2"), ("5_20ep", "batch 5, 20 epochs"))
    base = rows["batch 10"]["seconds"]
    return {
        **{f"den_batch_rms_{key}": "/".join(f"{v:.3f}" for v in rows[t]["rms_QUV"]) for key, t in keys},
        **{f"den_batch_cov_{key}": f"{rows[t]['coverage'][0]:.2f}/{rows[t]['coverage'][1]:.2f}" for key, t in keys},
        **{f"den_batch_kurtosis_{key}": f"{rows[t]['z']['kurtosis']:.1f}" for key, t in keys},
        **{f"den_batch_steps_{key}": f"{rows[t]['steps']:,}" for key, t in keys},
        **{f"den_batch_time_{key}": f"{rows[t]['seconds'] / base:.1f}" for key, t in keys[1:]},
        "den_batch_cpu": f"{result['cpu']['model']} ({result['cpu']['logical_cpus']} CPUs)",
    }


def _header(summary: dict) -> list[str]:
    parts = [p for p in (*TITLES, "crisp", "timing") if p in summary]
    versions = {part_version(summary, p) for p in parts}
    if len(versions) == 1:
        measured = f"Measured with sunpy_nn {versions.pop()}"
        run = f"``{summary['command']}``"
    else:  # a partial run updated some parts only: its command is the latest run's, not each part's
        measured = "Measured with " + "; ".join(f"sunpy_nn {part_version(summary, p)} ({p})" for p in parts)
        run = f"the latest run: ``{summary['command']}``"
    # each part's own CPU where it recorded one (the file's machine is the latest run's)
    machines: dict[str, list[str]] = {}
    for p in parts:
        cpu = summary[p].get("cpu")
        machines.setdefault(cpu_name(cpu) if cpu else summary["machine"], []).append(p)
    if len(machines) == 1:
        where = next(iter(machines))
    else:
        where = " and ".join(f"{m} ({', '.join(ps)})" for m, ps in machines.items())
    lines = [f"{measured} on {where} ({run})."]
    walls = {p: summary[p]["wall_s"] for p in parts if "wall_s" in summary[p] and p != "timing"}
    if walls:
        cost = ", ".join(f"{p} {w / 60:.0f}" for p, w in walls.items())
        lines[0] += f" Wall minutes per part (one torch thread each): {cost}."
    return [*lines, ""]


def cpu_name(cpu: dict) -> str:
    """A part's CPU record (``benchmarks/denoise_science.py``) as the docs name it: ``Intel(R) Xeon(R) Processor
    (AVX-512), 2 CPUs``."""
    return f"{cpu['model']} ({cpu['class']}), {cpu['logical_cpus']} CPUs"


def _timing_machine(summary: dict) -> str:
    """The CPU of the budget run: its own record (from sunpy_nn 0.2), or the file's machine without its model."""
    cpu = summary["timing"].get("cpu")
    if cpu:
        return cpu_name(cpu)
    return f"{summary.get('machine', 'a machine not recorded')} (the run did not record the CPU model)"


def science_tables(summary: dict) -> str:
    """
    The tables of the guide's "Measured quality" section, as reStructuredText.

    Parameters
    ----------
    summary : dict
        The contents of ``docs/_static/denoise_science/summary.json``; the parts it lacks are left out.

    Returns
    -------
    str
        The text to include.
    """
    from sunpy_nn.report import rst_list_table

    lines = _header(summary)
    for part, title in TITLES.items():
        r = summary.get(part)
        if r is None:
            continue
        lines += [
            title,
            "~" * len(title),
            "",
            (
                f"Stokes V above 3 sigma in {r['cube']['fraction_of_pixels_with_strong_v']:.0%} of the pixels. "
                "Rms error in units of the noise, overall and by ``|truth| / sigma``; coverage: fraction of errors "
                "within 1 and 2 sigma (0.68 and 0.95 for Gaussian errors); z: the error over the predicted sigma, "
                "whose rms is 1 when sigma is the standard deviation of the errors and whose kurtosis is 3 for "
                "Gaussian errors."
            ),
            "",
        ]
        rows = [
            [
                _label(row["method"]),
                *(f"{row[f'rms_{s}']:.2f}" for s in "QUV"),
                *(f"{b['rms']:.2f}" for b in row["bins"]),
                f"{row['coverage']['1sigma']:.2f} / {row['coverage']['2sigma']:.2f}" if "coverage" in row else "",
                f"{row['z']['rms']:.2f} / {row['z']['kurtosis']:.1f}" if "z" in row else "",
            ]
            for row in r["rows"]
        ]
        header = [
            "Method",
            "Q",
            "U",
            "V",
            "0-1 sigma",
            "1-3",
            "3-10",
            "> 10",
            "within 1 / 2 sigma",
            "z: rms / kurtosis",
        ]
        lines += rst_list_table("", header, rows, escape=False, strip=False)
        gain = r["temporal_gain"]
        lines += [
            (
                f"Temporal mode lowers the rms error by {gain['Q']:.0%} (Q), {gain['U']:.0%} (U) and "
                f"{gain['V']:.0%} (V) against single-scan mode."
            ),
            "",
        ]
        if "align_gain" in r:
            gain = r["align_gain"]
            lines += [
                (
                    "Aligning the scans (the default) lowers the rms error by "
                    + " and ".join(
                        f"{gain[m]['Q']:.0%} (Q), {gain[m]['U']:.0%} (U) and {gain[m]['V']:.0%} (V) in {m} mode"
                        for m in ("single", "temporal")
                    )
                    + " against the scans as they are."
                ),
                "",
            ]
        if "spectral_pca_gain" in r:
            gain = r["spectral_pca_gain"]
            lines += [
                (
                    f"The spectral principal components (the default) lower the single-scan rms error by "
                    f"{gain['Q']:.0%} (Q), {gain['U']:.0%} (U) and {gain['V']:.0%} (V) against the tunings."
                ),
                "",
            ]
        if part in ("white", "correlated", "fast"):
            ne = r["noise_estimates"]["I"]
            lines += [
                (
                    f"Stokes I noise over the injected 3e-3: temporal differences {ne['temporal']:.2f}, spatial "
                    f"(Immerkaer) {ne['spatial']:.2f}, used by the denoiser ({ne['method_used']}) {ne['used']:.2f}."
                ),
                "",
            ]
        if part == "evolving":  # where the fields change: the scan differences of all pixels hold that change
            ne = r["noise_estimates"]
            lines += [
                "Q, U and V noise over the injected 3e-3: "
                + "; ".join(
                    f"{s} {ne[s]['temporal']:.3f} from all pixels' scan differences, {ne[s]['used']:.3f} used by the "
                    "denoiser (its weakly polarised pixels')"
                    for s in "QUV"
                )
                + ".",
                "",
            ]
    c = summary.get("crisp")
    if c and "skipped" not in c:
        lines += [
            "Real CRISP image, one scan",
            "~~~~~~~~~~~~~~~~~~~~~~~~~~",
            "",
            (
                f"Immerkaer noise of the input: {c['immerkaer_input']:.3g}. Power of the output over the input by "
                "spatial frequency (px^-1); 1 means nothing removed."
            ),
            "",
        ]
        bands = list(c["runs"][0]["power_ratio_output_over_input_per_band_per_pix"])
        rows = [
            [run["pairs"] + (f", pixel shuffle {run['shuffle']}" if run["shuffle"] > 1 else "")]
            + [f"{run['immerkaer_output']:.3g}", f"{run['std_removed']:.3g}"]
            + [f"{v:.2f}" for v in run["power_ratio_output_over_input_per_band_per_pix"].values()]
            for run in c["runs"]
        ]
        header = ["Pairs", "Immerkaer noise after", "std removed", *bands]
        lines += rst_list_table("", header, rows, escape=False, strip=False)
    t = summary.get("timing")
    if t:
        lines += [
            "Budget",
            "~~~~~~",
            "",
            (
                f"Default ``denoise_cube`` on {' x '.join(map(str, t['shape']))} (temporal={t['temporal']}), "
                f"{t['threads']} threads: {t['denoise_cube_s']:.0f} s (budget {t['budget_s']:.0f} s"
                f"{': over it' if t['denoise_cube_s'] > t['budget_s'] else ''}), with sunpy_nn "
                f"{part_version(summary, 'timing')} on {_timing_machine(summary)}. Its time depends on the CPU "
                "more than the quality figures do: time ``denoise_cube(synthetic_crisp_cube(256, n_wavelengths=15, "
                "n_scans=8, seed=0)[0], seed=0)`` (`sunpy_nn.data.synthetic.synthetic_crisp_cube`) on yours."
            ),
            "",
        ]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_denoise_files(source: Path, out: Path) -> None:
    """
    Write ``denoise_science.inc`` and ``denoise_figures.inc`` into ``out`` from the docs' science summary.

    Parameters
    ----------
    source : pathlib.Path
        The docs source folder (``docs/``).
    out : pathlib.Path
        The folder of generated includes (``docs/guide/generated/``).
    """
    summary = json.loads((source / "_static" / "denoise_science" / "summary.json").read_text())
    note = ".. Written by docs/_ext/generated_denoise.py from _static/denoise_science/summary.json; do not edit.\n\n"
    _write(out / "denoise_science.inc", note + science_tables(summary))
    figures = denoise_figures(summary)
    lazy = source / "_static" / "denoise_science" / "lazy_align.json"  # python benchmarks/denoise_lazy_align.py --docs
    if lazy.exists():
        figures |= lazy_align_figures(json.loads(lazy.read_text()))
    tuning = source / "_static" / "denoise_science" / "tuning_noise.json"  # benchmarks/denoise_tuning_noise.py --docs
    if tuning.exists():
        figures |= tuning_noise_figures(json.loads(tuning.read_text()))
    seeds = source / "_static" / "denoise_science" / "seeds.json"  # python benchmarks/denoise_seeds.py --docs
    if seeds.exists():
        figures |= seeds_figures(json.loads(seeds.read_text()))
    reuse = source / "_static" / "denoise_science" / "reuse.json"  # python benchmarks/denoise_reuse.py --docs
    if reuse.exists() and seeds.exists():  # the baseline of "another scene" is a seeds run
        figures |= reuse_figures(json.loads(reuse.read_text()), json.loads(seeds.read_text()))
    bound = source / "_static" / "denoise_science" / "bound.json"  # python benchmarks/denoise_bound.py --docs
    if bound.exists() and seeds.exists():  # temporal mode's error on the same cubes is a seeds run's
        figures |= bound_figures(json.loads(bound.read_text()), json.loads(seeds.read_text()))
    levers = source / "_static" / "denoise_science" / "levers.json"  # python benchmarks/denoise_levers.py --docs
    if levers.exists():
        figures |= levers_figures(json.loads(levers.read_text()))
    batch = source / "_static" / "denoise_science" / "batch.json"  # python benchmarks/denoise_batch.py --docs
    if batch.exists():
        figures |= batch_figures(json.loads(batch.read_text()))
    subs = "".join(f".. |{key}| replace:: {value}\n" for key, value in figures.items())
    _write(out / "denoise_figures.inc", note + subs)
