"""
The table of ``docs/_static/performance/keras_*.json`` (``python benchmarks/keras_originals.py --docs``, issue #16).

`keras_table` turns those results into reStructuredText: one list-table per CPU class (AVX2, AVX-512), because a
speed measured on one class says nothing about another. A pure function, so that a test can check it without
TensorFlow and a Sphinx extension can write its output into a page at build time.
"""

from __future__ import annotations

#: Order of the cases in a table; a case a result lacks is left out.
CASES = ("enhance", "unet", "train_n2n", "train_enhance")
TITLE = "the package against the Keras originals (``python benchmarks/keras_originals.py --docs``)"


def _cell(case: dict, side: str) -> str:
    if case["kind"] == "throughput":
        return f"{case[f'{side}_patches_s']:.1f} patches/s"
    return f"{case[f'{side}_s']:.2f} s"


def _target(case: dict) -> tuple[str, str]:
    if case.get("target") is None:
        return "report only", "n/a"
    return f"at most {case['target']:g}", "yes" if case["met"] else "no"


def keras_table(results: list[dict]) -> str:
    """
    The Keras comparison as reStructuredText: one list-table per CPU class.

    Parameters
    ----------
    results : list of dict
        The JSON written by ``benchmarks/keras_originals.py --docs``, one per file: ``cpu`` (with ``class`` and
        ``model``), ``threads``, ``date``, ``sunpy_nn_version``, ``torch_version``, ``tensorflow_version``,
        ``repeats`` and ``cases`` (each with ``label``, ``kind``, our and Keras' times or patches/s, ``ratio``,
        ``target`` and ``met``).

    Returns
    -------
    str
        A paragraph naming each run (CPU, threads, versions, date) then its class's table, with the columns case,
        threads, ours, Keras, ratio (our time over Keras', below 1: the package is faster), the target of
        issue #16 and whether it is met; classes in alphabetical order. Empty when ``results`` is.
    """
    by_class: dict[str, list[dict]] = {}
    for r in results:
        by_class.setdefault(r["cpu"]["class"], []).append(r)
    blocks = []
    for cls in sorted(by_class):
        runs = sorted(by_class[cls], key=lambda r: (r["threads"], r["date"]))
        about = "; ".join(
            f"{r['cpu']['model']}, {r['threads']} thread(s), median of {r['repeats']} alternating rounds, "
            f"sunpy_nn {r['sunpy_nn_version']}, torch {r['torch_version']}, TensorFlow {r['tensorflow_version']}, "
            f"{r['date']}"
            for r in runs
        )
        lines = [
            f"Measured on {about}.",
            "",
            f".. list-table:: {cls} class: {TITLE}",
            "   :header-rows: 1",
            "",
            "   * - case",
            "     - threads",
            "     - sunpy_nn",
            "     - Keras",
            "     - ratio (time, ours / Keras)",
            "     - target (#16)",
            "     - met",
        ]
        for r in runs:
            for key in CASES:
                if key not in r["cases"]:
                    continue
                case = r["cases"][key]
                target, met = _target(case)
                lines += [
                    f"   * - {case['label']}",
                    f"     - {r['threads']}",
                    f"     - {_cell(case, 'ours')}",
                    f"     - {_cell(case, 'keras')}",
                    f"     - {case['ratio']:.2f}",
                    f"     - {target}",
                    f"     - {met}",
                ]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
