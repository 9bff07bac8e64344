"""
The table of ``docs/_static/performance/keras_*.json`` (``python benchmarks/keras_originals.py --docs``, issue #16).

`keras_table` turns those results into reStructuredText: one list-table per CPU class (AVX2, AVX-512), because a
speed measured on one class says nothing about another. A pure function, so that a test can check it without
TensorFlow and a Sphinx extension can write its output into a page at build time.

The inference cases also show their roofline floor: the paper network's FLOPs at the CPU's measured float32 peak,
over Keras' time, with a sentence after the table giving the peak. Results written before the benchmark measured
the floor (no ``floor_ratio`` or ``peak``) show "n/a".
"""

from __future__ import annotations

#: Order of the cases in a table; a case a result lacks is left out.
CASES = ("enhance", "unet", "train_n2n", "train_enhance")
TITLE = "the package against the Keras originals (``python benchmarks/keras_originals.py --docs``)"


def cpu_name(cpu: dict) -> str:
    """The CPU's model, and the variables that capped its kernels' instruction set, if the run had any."""
    cap = cpu.get("isa_cap")
    if not cap:
        return cpu["model"]
    return f"{cpu['model']} with its kernels capped ({', '.join(f'{k}={v}' for k, v in cap.items())})"


def _cell(case: dict, side: str) -> str:
    if case["kind"] == "throughput":
        return f"{case[f'{side}_patches_s']:.1f} patches/s"
    return f"{case[f'{side}_s']:.2f} s"


def _target(case: dict) -> tuple[str, str]:
    if case.get("target") is None:
        return "report only", "n/a"
    return f"at most {case['target']:g}", "yes" if case["met"] else "no"


def _floor(case: dict) -> str:
    return f"{case['floor_ratio']:.2f}" if case.get("floor_ratio") is not None else "n/a"


def _peak_sentence(runs: list[dict]) -> str:
    """What the floor column means, with the peak of each run that measured one."""
    peaks = [r for r in runs if r.get("peak")]
    if not peaks:
        return "No roofline floor was measured for these runs (n/a): they predate it."
    names = {"mm": "the matrix product", "conv": "the convolution"}
    about = "; ".join(
        f"{case['label']}, {r['threads']} thread(s): {case.get('peak_gflops', r['peak']['gflops']):.0f} GFLOP/s, "
        f"from {names.get(case.get('floor_peak', r['peak']['source']), case.get('floor_peak'))}"
        for r in peaks
        for case in (r["cases"].get(key, {}) for key in CASES)
        if case.get("floor_ratio") is not None
    )
    text = (
        "The floor (roofline) is the paper network's convolution FLOPs at this CPU's float32 peak, over Keras' time. "
        "The peak is the fastest of a large matrix product and a large 3x3 convolution, measured before and after "
        "each case, and of the rate either side reached in the case itself (no implementation beats the peak, so a "
        f"faster side shows the peak was measured low on a shared machine): {about}. The floor is the lowest ratio any "
        "exact float32 direct-convolution implementation of that network could reach on this CPU at that peak. A "
        "target below it needs fewer multiply-adds (an exact rewrite of the network, or another algorithm such as "
        "Winograd's) or lower precision, not faster kernels."
    )
    fewer = [
        f"{case['label']}, {r['threads']} thread(s): {case['floor_optimised_ratio']:.2f}"
        for r in peaks
        for case in (r["cases"].get(key, {}) for key in CASES)
        if "floor_optimised_ratio" in case and case["gflop_optimised"] < 0.99 * case["gflop"]  # not just rounding
    ]
    if fewer:
        text += (
            " The package's optimised network computes fewer FLOPs where an exact rewrite allows (Enhance's sub-pixel "
            f"up-convolution); its floor: {'; '.join(fewer)}."
        )
    return text


def keras_table(results: list[dict]) -> str:
    """
    The Keras comparison as reStructuredText: one list-table per CPU class.

    Parameters
    ----------
    results : list of dict
        The JSON written by ``benchmarks/keras_originals.py --docs``, one per file: ``cpu`` (with ``class`` and
        ``model``), ``threads``, ``date``, ``sunpy_nn_version``, ``torch_version``, ``tensorflow_version``,
        ``repeats`` and ``cases`` (each with ``label``, ``kind``, our and Keras' times or patches/s, ``ratio``,
        ``target`` and ``met``). Optional, from runs that measured the roofline: ``peak`` (with ``gflops`` and
        ``source``) and, in the inference cases, ``gflop``, ``floor_ratio`` and ``gflop_optimised`` with
        ``floor_optimised_ratio``.

    Returns
    -------
    str
        A paragraph naming each run (CPU, threads, versions, date) then its class's table, with the columns case,
        threads, ours, Keras, ratio (our time over Keras', below 1: the package is faster), the roofline floor of
        that ratio ("n/a" where not measured), the target of issue #16 and whether it is met, then a paragraph
        giving the peak and what the floor means; classes in alphabetical order. Empty when ``results`` is.
    """
    by_class: dict[str, list[dict]] = {}
    for r in results:
        by_class.setdefault(r["cpu"]["class"], []).append(r)
    blocks = []
    for cls in sorted(by_class):
        runs = sorted(by_class[cls], key=lambda r: (r["threads"], r["date"]))
        about = "; ".join(
            f"{cpu_name(r['cpu'])}, {r['threads']} thread(s), median of {r['repeats']} alternating rounds, "
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
            "     - floor (roofline)",
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
                    f"     - {_floor(case)}",
                    f"     - {target}",
                    f"     - {met}",
                ]
        lines += ["", _peak_sentence(runs)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
