"""
Sphinx extension: the figures a guide page quotes, written at build time from files that code made (issue #17).

``docs/_static/demo/summary.json`` is the ``summary.json`` of one ``sunpy-nn demo`` run (it records the sunpy_nn
version that made it; ``tests/test_docs_generated.py`` checks that it is not older than ``sunpy_nn/demo.py``). From
it, at ``builder-inited``, this writes into ``docs/guide/generated/``:

- ``demo_output.txt``: what the demo printed, by the demo's own report code;
- ``demo_figures.inc``: reStructuredText substitutions (``|demo_gain_intensity|`` ...) for the figures that the
  demo page's text quotes;
- ``performance_threads.inc``: the table of ``docs/_static/performance/threads_*.json``
  (``python benchmarks/threads.py --docs``), one row per CPU class, case and network;
- ``validation_figures.inc``: the same for the figures of the validation report
  (``docs/_static/validation/summary.json``) that the validation, Enhance and training guides quote
  (``|val_umbra_v2|`` ...);
- ``training_figures.inc``: the training guide's table and figures (``docs/_ext/generated_training.py``).

Files are rewritten only when their text changes, so an unchanged build stays incremental.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

# sibling modules in docs/_ext, on the path of the docs build and of the tests that import this
import generated_denoise
from generated_performance import write_performance_files
from generated_training import write_training_files


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def demo_output(summary: dict) -> str:
    """The demo's printed report for ``summary``, without the list of files it wrote (a path of that machine)."""
    from sunpy_nn.demo import _print_report

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        _print_report(summary, Path("sunpy_nn_demo"))
    text = buffer.getvalue()
    return text[: text.index("Wrote ")] if "Wrote " in text else text


def demo_figures(summary: dict) -> dict[str, str]:
    """The figures the demo page quotes, formatted as it quotes them."""
    intensity, blos, den = summary["enhance"]["intensity"], summary["enhance"]["blos"], summary["denoise"]
    stokes = ("Q", "U", "V")

    def span(values, scale=1.0, fmt=".1f", unit=""):
        low, high = min(values) * scale, max(values) * scale
        text = f"{low:{fmt}}" if f"{low:{fmt}}" == f"{high:{fmt}}" else f"{low:{fmt}}-{high:{fmt}}"
        return text + unit

    contrast = intensity["rms_contrast"]
    return {
        "demo_seconds": f"{summary['seconds']:.0f} s",
        "demo_fit_seconds": f"{den['fit_seconds']:.0f} s",
        "demo_gain_intensity": f"{intensity['gain_db_over_bicubic']:+.1f} dB",
        "demo_contrast_input": f"{100 * contrast['input']:.1f} %",
        "demo_contrast_bicubic": f"{100 * contrast['bicubic']:.1f} %",
        "demo_contrast_enhance": f"{100 * contrast['enhance']:.1f} %",
        "demo_contrast_truth": f"{100 * contrast['truth']:.1f} %",
        "demo_gain_blos": f"{blos['gain_db_over_bicubic']:+.1f} dB",
        "demo_flux_error": f"{100 * abs(1 - blos['unsigned_flux_ratio_enhance_over_truth']):.0f} %",
        "demo_error_reduction": span([den["error_reduction"][s] for s in stokes], unit="x"),
        "demo_within_1_sigma": span([den["fraction_within_1_sigma"][s] for s in stokes], 100, ".0f", " %"),
        "demo_within_2_sigma": span([den["fraction_within_2_sigma"][s] for s in stokes], 100, ".0f", " %"),
        "demo_version": summary["sunpy_nn_version"],
    }


def _span(values, fmt: str, scale: float = 1.0) -> str:
    low, high = (f"{min(values) * scale:{fmt}}", f"{max(values) * scale:{fmt}}")
    return low if low == high else f"{low}-{high}"


def _signed_span(values, unit: str = " dB") -> str:
    """A range of signed values: "+0.1 to +2.2 dB", or "+1.2 dB" when they round to one value."""
    low, high = f"{min(values):+.1f}", f"{max(values):+.1f}"
    return (low if low == high else f"{low} to {high}") + unit


def _bound(x: float) -> str:
    """``x`` rounded up to one significant figure: a bound that ``x`` stays within (0.0014 -> "0.002")."""
    if x <= 0:
        return "0"
    unit = 10.0 ** math.floor(math.log10(x))
    return f"{math.ceil(x / unit) * unit:.1g}"


def validation_figures(summary: dict) -> dict[str, str]:
    """The figures of the validation report (``docs/_static/validation/summary.json``) that the Enhance guide quotes."""
    held_out = summary["held_out"]

    def band(kind: str, name: str, version: str) -> list[float]:
        return [c["power_ratio_bands"][name][version] for c in held_out if c["kind"] == kind]

    umbra = summary["continuum"]["sunspot"]["darkest_1pct"]
    targets = summary["targets"]
    scores = [c["scores"] for c in held_out]
    continuum = [c["scores"] for c in held_out if c["kind"] == "intensity"]
    magnetogram = [c["scores"] for c in held_out if c["kind"] == "blos"]
    sst = {c["detector"]: c for c in held_out if c["frame"] == "sst_sunspot"}
    signs = [c["signs_over_100G"] for c in held_out if c["kind"] == "blos"]
    flat = summary["flat_fields"]["intensity"]
    real = [summary["continuum"][name] for name in ("quiet_sun", "sunspot")]
    flips = [summary["blos"][name]["sign_flip_fraction"] for name in ("blos_200", "sharp")]

    def rl_margin(case: dict) -> float:  # v2 against Richardson-Lucy at its extra (160) iterations
        return case["scores"]["v2"]["psnr_db"] - case["rl_psnr_extra_iterations_info"]["psnr_db"]

    def pct(x: float, fmt: str = ".2f") -> str:
        return f"{100 * x:{fmt}} %"

    def gains(version: str, detector: str, against: str) -> str:  # over every held-out frame, for one detector
        cases = [c for c in held_out if c["detector"] == detector]
        return _signed_span([c["scores"][version][f"gain_vs_{against}_db"] for c in cases])

    threads = summary["threads"]
    match = {  # the normalised cross-correlation of the HMI cut-outs with a window of the SHARP
        "continuum": summary["continuum"]["sharp"]["sunspot_cutout_match"],
        "blos": summary["blos"]["blos_200"]["sharp_match"],
    }
    boxes = [c["compared_arcsec"] for c in held_out]  # (height, width) of each held-out box
    figures = {
        "val_date": summary["date"].split()[0],
        "val_runtime": f"{summary['runtime_s']:.0f} s on {threads} CPU thread{'s' if threads > 1 else ''}",
        "val_box_width": _span([w for _, w in boxes], ".1f") + '"',
        "val_box_height": _span([h for h, _ in boxes], ".1f") + '"',
        **{f"val_sharp_corr_{k}": f"{m['normalised_cross_correlation']:.2f}" for k, m in match.items()},
        **{
            f"val_{v}_{against}_{detector}": gains(v, detector, against)
            for v in ("v1", "v2")
            for against in ("bicubic", "rl")
            for detector in ("point", "area")
        },
        "val_targets_total": str(len(targets)),
        "val_targets_v2": str(sum(t["v2"]["met"] for t in targets)),
        "val_targets_v1": str(sum(t["v1"]["met"] for t in targets)),
        "val_gain_bicubic_v2": _span([c["v2"]["gain_vs_bicubic_db"] for c in scores], ".1f") + " dB",
        "val_gain_rl_v2": _span([c["v2"]["gain_vs_rl_db"] for c in continuum], ".1f") + " dB",
        "val_gain_rl_blos_v2": _span([c["v2"]["gain_vs_rl_db"] for c in magnetogram], ".1f") + " dB",
        "val_v1_short_of_rl": f"{sum(c['v1']['gain_vs_rl_db'] < 1 for c in continuum)} of {len(continuum)}",
        "val_rl160_sst_point": f"{rl_margin(sst['point']):+.1f} dB",
        "val_rl160_sst_area": f"{rl_margin(sst['area']):+.1f} dB",
        "val_flat_v2": _bound(max(abs(a - b) for a, b in zip(flat["v2"], flat["level"], strict=True))),
        "val_contrast_v2": _span([r["contrast"]["v2"] for r in real], ".1f", 100) + " %",
        "val_forward_v2": _span([r["forward_consistency"]["v2"] for r in real], ".1f", 100) + " %",
        "val_flips_v2": " and ".join(pct(f["v2"]) for f in flips),
        "val_flips_v1": " and ".join(pct(f["v1"]) for f in flips),
        "val_flips_bicubic": _span([f["bicubic"] for f in flips], ".2f", 100) + " %",
        "val_gst_truth_flips": _span([x["truth_flips_vs_input"] for x in signs], ".2f", 100) + " %",
        "val_gst_v2_flips": _span([x["flips_vs_input"]["v2"] for x in signs], ".2f", 100) + " %",
        "val_gst_wrong_v2": _span([x["wrong_sign_vs_truth"]["v2"] for x in signs], ".2f", 100) + " %",
        "val_gst_wrong_bicubic": _span([x["wrong_sign_vs_truth"]["bicubic"] for x in signs], ".2f", 100) + " %",
        "val_gst_wrong_rl": _span([x["wrong_sign_vs_truth"]["rl"] for x in signs], ".2f", 100) + " %",
    }
    limb = {name: summary["limb"][name]["off_limb"]["v2"]["bands"] for name in ("limb_cutout", "full_disk")}
    return figures | {
        "val_limb_cutout_v2": f"{limb['limb_cutout']['0-2 px outside']['mean_abs']:.1g}",
        "val_limb_full_disk_v2": f"{limb['full_disk']['0-1 px outside']['mean_abs']:.1g}",
        "val_power_restored_v2": _span(band("intensity", "1-1.5", "v2"), ".0f", 100) + " %",
        "val_power_excess_v2": _span(band("intensity", "1.5-2", "v2"), ".1f"),
        "val_power_excess_v1": _span(band("intensity", "1.5-2", "v1"), ".1f"),
        "val_power_excess_blos_v2": _span(band("blos", "1.5-2", "v2"), ".1f"),
        "val_power_excess_blos_v1": _span(band("blos", "1.5-2", "v1"), ".0f"),
        "val_umbra_input": f"{umbra['input']:.3f}",
        "val_umbra_v2": f"{umbra['v2']:.3f}",
        "val_umbra_rl": f"{umbra['rl']:.3f}",
        "val_umbra_v1": f"{umbra['v1']:.3f}",
    }


def threads_table(results: list[dict]) -> str:
    """An RST table of ``benchmarks/threads.py --docs`` results: per CPU class and case, times and the ratio."""
    lines = [
        ".. list-table:: The thread policy against fixed counts (``python benchmarks/threads.py --docs``)",
        "   :header-rows: 1",
        "",
        "   * - CPU class (CPUs)",
        "     - other load",
        "     - network",
        "     - 1 thread",
        "     - 2 threads",
        "     - default (threads chosen)",
        "     - default / best fixed",
    ]
    for r in results:
        case = "one busy-loop process" if r["competitor"] else "none"
        for name, n in r["networks"].items():
            t = n["median_s"]
            chosen = ", ".join(str(c) for c in n["default_threads"])
            lines += [
                f"   * - {r['cpu']['class']} ({r['cpu']['usable_cpus']}), {r['date']}",
                f"     - {case}",
                "     - Enhance 400 x 400" if name == "enhance" else "     - U-Net 800 x 800",
                f"     - {t['1']:.2f} s",
                f"     - {t['2']:.2f} s",
                f"     - {t['default']:.2f} s ({chosen})",
                f"     - {n['ratio_default_over_best_fixed']:.2f}",
            ]
    runs = sorted({(r["rounds"], r["repeats"]) for r in results})
    each = "; ".join(f"{a} round{'s' * (a != 1)} of {b} timed run{'s' * (b != 1)}" for a, b in runs)
    lines += ["", f"Each time is the median over {each}, each round in a fresh process per setting."]
    return "\n".join(lines) + "\n"


def write_demo_page_files(app) -> None:
    source = Path(app.srcdir)
    summary = json.loads((source / "_static" / "demo" / "summary.json").read_text())
    out = source / "guide" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "demo_output.txt", demo_output(summary))
    subs = "".join(f".. |{key}| replace:: {value}\n" for key, value in demo_figures(summary).items())
    _write(out / "demo_figures.inc", ".. Written by docs/_ext/generated_pages.py; do not edit.\n\n" + subs)
    validation = json.loads((source / "_static" / "validation" / "summary.json").read_text())
    subs = "".join(f".. |{key}| replace:: {value}\n" for key, value in validation_figures(validation).items())
    _write(out / "validation_figures.inc", ".. Written by docs/_ext/generated_pages.py; do not edit.\n\n" + subs)
    generated_denoise.write_denoise_files(source, out)  # the denoise guide's tables and figures
    threads = [json.loads(p.read_text()) for p in sorted((source / "_static" / "performance").glob("threads_*.json"))]
    _write(
        out / "performance_threads.inc",
        ".. Written by docs/_ext/generated_pages.py; do not edit.\n\n" + threads_table(threads),
    )
    write_training_files(source, out, _write)
    write_performance_files(source, out)  # the performance and scaling guides (generated_performance.py)


def setup(app):
    app.connect("builder-inited", write_demo_page_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
