"""
The performance guide's GPU section, written at docs-build time from ``benchmarks/gpu.py --docs`` (issue #16).

Input: ``docs/_static/performance/gpu_<device>.json``, one per GPU model (none until a GPU run is committed).
Output: ``docs/guide/generated/performance_gpu.inc`` (`gpu_section`), written by ``generated_performance.py``.
The function is pure: a list of JSON dicts in, reStructuredText out.
"""

from __future__ import annotations

#: What the section says while no GPU run is committed.
NO_GPU = (
    "No GPU measurement is committed yet: no GPU was at hand for the sessions that wrote this guide. The check is "
    "prepared: on a CUDA machine, ``python benchmarks/gpu.py --docs`` runs the CUDA tests and this benchmark in one "
    "command (``--dry-run`` checks the script on a CPU first), and the next docs build shows its table here.\n"
)
PRECISIONS = ("float32", "bfloat16")


#: The accuracy guard of the package's optimised paths (``sunpy_nn.nn.ACCURACY_BOUND``), as a fraction of the range.
GUARD = 1e-3


def _time_row(label: str, part: dict, rate: str, unit: str, digits: str) -> list[str]:
    cells = []
    for p in PRECISIONS:
        r = part[p]
        peak = f", peak {r['peak_mib']:.0f} MiB" if r.get("peak_mib") is not None else ""
        over = " (above the guard)" if r["error"] > GUARD else ""
        cells.append(f"{r['time_s']:.2f} s ({r[rate]:{digits}} {unit}{peak}); error {r['error']:.1e}{over}")
    return [f"   * - {label}", *(f"     - {c}" for c in cells)]


def _bf16_sentence(r: dict) -> str:
    """bfloat16's speed as a multiple of float32's, per case: where it pays on this device, and at what accuracy."""
    cases = [("Enhance's full disk", r["fulldisk"], "time_s", True), ("the U-Net's cube", r["cube"], "time_s", True)]
    cases += [(f"{c['label']} training", c, "patches_s", False) for c in r["training"].values()]
    parts = []
    for label, part, key, is_time in cases:
        fp32, bf16 = part["float32"][key], part["bfloat16"][key]
        ratio = fp32 / bf16 if is_time else bf16 / fp32  # times for inference, rates for training
        guard = " (outside the guard)" if part["bfloat16"].get("error", 0.0) > GUARD else ""
        parts.append(f"{label} {ratio:.2f}x{guard}")
    return (
        "bfloat16's speed as a multiple of float32's on this device (above 1: faster): "
        + "; ".join(parts)
        + ". Where it is below 1 or outside the guard, float32 (the default) is the choice here."
    )


def gpu_section(results: list[dict]) -> str:
    """
    The GPU runs as reStructuredText: per device, what was measured and one table, or `NO_GPU` when there is none.

    Parameters
    ----------
    results : list of dict
        The JSON of ``benchmarks/gpu.py --docs``: ``device`` (``name``, ``memory_gib``, ``capability``, ``torch``,
        ``cuda``, ``cudnn``, ``tf32_convolutions``: torch's setting, which training follows; ``inference_tf32``:
        whether the package's float32 inference may use TF32), ``tests`` (``summary``), ``fulldisk`` and ``cube`` (per
        precision ``time_s``, ``mpix_s`` or ``frames_s``, ``peak_mib``, ``error``; and the sizes), ``training``
        (per case a ``label`` and per precision ``patches_s``), ``sunpy_nn_version`` and ``date``.

    Returns
    -------
    str
        Per run a paragraph (device, versions, TF32, the CUDA tests' summary) and a list-table with one column per
        precision; the error is against float32 on the CPU, as a fraction of the output range (guard 1e-3).
    """
    if not results:
        return NO_GPU
    blocks = []
    for r in sorted(results, key=lambda r: (r["device"]["name"], r["date"])):
        d, fd, cube = r["device"], r["fulldisk"], r["cube"]
        tf32 = "may use TF32" if d.get("tf32_convolutions") else "in full float32 (TF32 off)"
        if d.get("inference_tf32") is False:  # from the run that measured sunpy_nn's own switch (issue 16)
            tf32 = f"in full float32 at inference (sunpy_nn switches TF32 off), in training {tf32.removeprefix('in ')}"
        n_w, n_s, n_t, edge = cube["shape"]
        lines = [
            (
                f"Measured on {d['name']} ({d['memory_gib']:.0f} GiB, compute capability {d['capability']}), torch "
                f"{d['torch']}, CUDA {d['cuda']}, cuDNN {d['cudnn']}, sunpy_nn {r['sunpy_nn_version']}, {r['date']}; "
                f"float32 convolutions {tf32}. CUDA tests: {r['tests'].get('summary', 'not run')}"
                f"{'' if r['tests'].get('returncode') in (0, None) else ' (they FAILED)'}. Enhance: "
                f"{fd.get('weights', '?')} on {fd.get('data', '?')}; U-Net: {cube.get('weights', '?')} on "
                f"{cube.get('data', '?')}."
            ),
            "",
            f".. list-table:: GPU: {d['name']}",
            "   :header-rows: 1",
            "",
            "   * - case",
            *(f"     - {p}" for p in PRECISIONS),
            *_time_row(f"Enhance, {fd['size']} x {fd['size']} full disk", fd, "mpix_s", "Mpix/s", ".1f"),
            *_time_row(f"U-Net, {n_w} x {n_s} x {n_t} x {edge}^2 cube", cube, "frames_s", "frames/s", ".1f"),
        ]
        for case in r["training"].values():
            lines += [f"   * - {case['label']} (training)"]
            lines += [f"     - {case[p]['patches_s']:.0f} patches/s" for p in PRECISIONS]
        lines += [
            "",
            (
                "The error is the largest difference from float32 on the CPU over a 512 x 512 crop, as a fraction of "
                "the output range (the accuracy guard is 1e-3)."
            ),
        ]
        lines += ["", _bf16_sentence(r)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
