"""
Sphinx extension: the figures a guide page quotes, written at build time from files that code made (issue #17).

``docs/_static/demo/summary.json`` is the ``summary.json`` of one ``sunpy-nn demo`` run (it records the sunpy_nn
version that made it; ``tests/test_docs_generated.py`` checks that it is not older than ``sunpy_nn/demo.py``). From
it, at ``builder-inited``, this writes into ``docs/guide/generated/``:

- ``demo_output.txt``: what the demo printed, by the demo's own report code;
- ``demo_figures.inc``: reStructuredText substitutions (``|demo_gain_intensity|`` ...) for the figures that the
  demo page's text quotes.

Files are rewritten only when their text changes, so an unchanged build stays incremental.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path


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


def write_demo_page_files(app) -> None:
    source = Path(app.srcdir)
    summary = json.loads((source / "_static" / "demo" / "summary.json").read_text())
    out = source / "guide" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "demo_output.txt", demo_output(summary))
    subs = "".join(f".. |{key}| replace:: {value}\n" for key, value in demo_figures(summary).items())
    _write(out / "demo_figures.inc", ".. Written by docs/_ext/generated_pages.py; do not edit.\n\n" + subs)


def setup(app):
    app.connect("builder-inited", write_demo_page_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
