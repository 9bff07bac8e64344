"""
The performance and scaling guides' figures, written at docs-build time from benchmark JSON (issues #16 and #17).

Inputs (each records the sunpy_nn version and the CPU that made it; ``tests/test_docs_generated.py`` checks that
none is older than its script):

- ``docs/_static/performance/run_<cpu class>.json``: ``python benchmarks/run.py --docs``, one file per CPU class
  (AVX2, AVX-512: figures measured on one class say nothing about another);
- ``docs/_static/scaling/dask_throughput.json``: ``python benchmarks/dask_throughput.py --docs``.

Outputs, in ``docs/guide/generated/`` (`write_performance_files`, called by ``generated_pages.py``):

- ``performance_figures.inc``: substitutions that the performance guide's prose quotes, ``|perf_<class>_...|``
  per CPU class (``|perf_avx512_enh_f32_speedup|``) and ``|perf_...|`` for what does not depend on the CPU
  (FLOPs per pixel, tile geometry);
- ``performance_tables.inc``: per CPU class, the tables of ``benchmarks/run.py`` and its targets;
- ``performance_gpu.inc``: the GPU runs of ``benchmarks/gpu.py --docs`` (``gpu_<device>.json``), `gpu_section`;
- ``scaling_figures.inc``: substitutions of the scaling guide (``|scal_...|``);
- ``scaling_dask_throughput.inc``: the throughput table and the scaling model computed from it.

The functions are pure (a JSON dict in, a dict of substitutions or RST text out); a figure that a run did not
measure (``--quick`` skips the full disk and ``torch.compile``) reads `MISSING`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from generated_gpu import gpu_section
from generated_keras import cpu_name, keras_table

#: What a substitution reads when the run behind it did not measure that figure.
MISSING = "not measured in this run"
HEADER = ".. Written by docs/_ext/generated_performance.py; do not edit.\n\n"
#: Modes of ``benchmarks/run.py`` in table order, and how the tables name them.
MODES = {
    "float32 eager": "float32 eager (``precision=None``)",
    "float32": '``precision="float32"`` (the default)',
    "float32 + compile": '``"float32"``, ``compile=True``',
    "bfloat16": '``"bfloat16"``',
    "auto": '``"auto"``',
}
FULL_DISK = 4096  # edge of an HMI full disk, input pixels
MAPS_PER_DAY = 1920  # HMI's 45 s cadence


def class_key(cpu_class: str) -> str:
    """The substitution-name form of a CPU class: ``"AVX-512"`` -> ``"avx512"``, ``"AVX2"`` -> ``"avx2"``."""
    return re.sub(r"[^a-z0-9]", "", cpu_class.lower())


def _x(value: float) -> str:
    return f"{value:.2f}x"


def _pct(value: float, fmt: str = ".0f") -> str:
    return f"{100 * value:{fmt}} %"


def _error_pct(value: float) -> str:
    """An error as a percentage of the range: one decimal below 10 %."""
    return _pct(value, ".1f" if value < 0.1 else ".0f")


def _rate(value: float) -> str:
    """A count per second: one decimal below 10."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _span(values: list[float], fmt: str, unit: str = "") -> str:
    low, high = f"{min(values):{fmt}}", f"{max(values):{fmt}}"
    return (low if low == high else f"{low}-{high}") + unit


def _bound(x: float) -> str:
    """``x`` rounded up to one significant figure, in e-notation: a bound that ``x`` stays within."""
    if x <= 0:
        return "0"
    exponent = math.floor(math.log10(x))
    digit = math.ceil(round(x / 10.0**exponent, 9))
    if digit == 10:
        digit, exponent = 1, exponent + 1
    return f"{digit}e{exponent}"


def _cpu_line(result: dict) -> str:
    cpu = result["cpu"]
    flags = ", ".join(name for name, present in cpu["flags"].items() if present) or "none of the listed"
    return f"{cpu_name(cpu)} ({cpu['class']} class; flags: {flags})"


def _bf16_units(cpu: dict) -> str:
    units = [name for name, flag in (("AVX512-BF16", "avx512_bf16"), ("AMX", "amx")) if cpu["flags"].get(flag)]
    return " and ".join(units) if units else "no native bfloat16"


def _fit_config(result: dict) -> tuple[str, dict]:
    return next((k, v) for k, v in result["training"].items() if v.get("as_in_fit"))


# ------------------------------------------------------------------------------------------------ performance
def common_figures(result: dict) -> dict[str, str]:
    """Figures of ``run.py`` that do not depend on the CPU: FLOPs per pixel and how a full disk is tiled."""
    macs, tiling = result["macs_per_pixel"], result["tiling"]
    return {
        "perf_enhance_kmacs": f"{macs['enhance'] / 1e3:.0f}",
        "perf_enhance_fast_kmacs": f"{macs['enhance_optimised'] / 1e3:.0f}",
        "perf_unet_kmacs": f"{macs['unet'] / 1e3:.0f}",
        "perf_halo_optimised": _pct(tiling["optimised"]["computed_pixels_ratio"] - 1),
        "perf_halo_generic": _pct(tiling["generic"]["computed_pixels_ratio"] - 1),
        "perf_tile_optimised": f"{tiling['optimised']['tile_size']} px",
        "perf_tile_generic": f"{tiling['generic']['tile_size']} px",
        "perf_window_optimised": f"{tiling['optimised']['window']} px",
    }


def run_figures(result: dict) -> dict[str, str]:
    """The figures of one ``run.py --docs`` result that the guide's prose quotes, named ``perf_<class>_...``."""
    key = f"perf_{class_key(result['cpu']['class'])}_"
    enh, unet, peak = result["enhance"], result["unet"], result["peak_gflops"]

    def mode(net: dict, name: str, field: str, fmt) -> str:
        return fmt(net[name][field]) if name in net else MISSING

    def faster(net: dict, fast: str, slow: str) -> str:  # how many times faster ``fast`` ran than ``slow``
        return _x(net[slow]["time_s"] / net[fast]["time_s"])

    best_unet = max(
        (v for k, v in unet.items() if k != "float32 eager" and v["guard_ok"]), key=lambda v: v["fraction_of_conv_peak"]
    )
    bf16 = "conv_bfloat16" in peak  # False: a run that did not time bfloat16 (not native there)
    conv_ratios = (
        [peak["conv_bfloat16"] / peak["conv_float32"]]
        + [
            net["bfloat16"]["conv_peak_gflops_same_rounds"] / net["float32"]["conv_peak_gflops_same_rounds"]
            for net in (enh, unet)
        ]
        if bf16
        else []
    )
    compile_setup = [net[m]["setup_s"] for net in (enh, unet) for m in net if m.endswith("compile")]
    figures = {
        "cpu": cpu_name(result["cpu"]),
        "threads": str(result["threads"]),
        # a run with its kernels capped below bfloat16 has the flags but not the units (bf16_native: as run)
        "bf16_units": _bf16_units(result["cpu"])
        if result["environment"].get("bf16_native", True)
        else ("no native bfloat16 in the kernels that ran"),
        "float32_error": _bound(max(net[m]["error"] for net in (enh, unet) for m in ("float32", "auto"))),
        "enh_f32_time": mode(enh, "float32", "time_s", lambda t: f"{t:.2f} s"),
        "enh_f32_speedup": mode(enh, "float32", "speedup_vs_eager", _x),
        "enh_f32_share": mode(enh, "float32", "fraction_of_conv_peak", _pct),
        "enh_compile_speedup": mode(enh, "float32 + compile", "speedup_vs_eager", _x),
        "enh_bf16_over_f32": faster(enh, "bfloat16", "float32") if bf16 else MISSING,
        "enh_bf16_error": _error_pct(enh["bfloat16"]["error"]) if bf16 else MISSING,
        "unet_f32_time": mode(unet, "float32", "time_s", lambda t: f"{t:.2f} s"),
        "unet_f32_speedup": mode(unet, "float32", "speedup_vs_eager", _x),
        "unet_compile_speedup": mode(unet, "float32 + compile", "speedup_vs_eager", _x),
        "unet_best_share": _pct(best_unet["fraction_of_conv_peak"]),
        "unet_bf16_over_f32": faster(unet, "bfloat16", "float32") if bf16 else MISSING,
        "unet_bf16_error": _error_pct(unet["bfloat16"]["error"]) if bf16 else MISSING,
        "conv_bf16_over_f32": _span(conv_ratios, ".1f", "x") if bf16 else MISSING,
        "compile_setup": _span(compile_setup, ".0f", " s") if compile_setup else MISSING,
    }
    _, fit = _fit_config(result)
    figures |= {
        "train_fit_patches_s": f"{_rate(fit['patches_s'])} patches/s",
        "train_fit_vs_inference": _x(fit["vs_inference"]),
        "train_inference_gflops": f"{result['training_inference_gflops']:.0f} GFLOP/s",
    }
    disk = result.get("fulldisk")
    figures |= {
        "fulldisk_time": f"{disk['time_s']:.0f} s" if disk else MISSING,
        "fulldisk_rss": f"{disk['peak_rss_mib']:.0f} MiB" if disk else MISSING,
        "fulldisk_overhead": _pct(disk["tiling_overhead"], ".1f") if disk else MISSING,
    }
    return {key + name: value for name, value in figures.items()}


def _list_table(caption: str, header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [f".. list-table:: {caption}".rstrip(), "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines += [f"   * - {row[0]}", *(f"     - {cell}" for cell in row[1:])]
    return [*lines, ""]


def _mode_rows(net: dict) -> list[list[str]]:
    rows = []
    for name, label in MODES.items():
        if name not in net:
            continue
        r = net[name]
        share = _pct(r["fraction_of_conv_peak"])
        if r["chosen_precision"] != "float32":
            share += f" of the {r['chosen_precision']} peak"
        if name == "auto":
            label += f" (chose {r['chosen_precision']})"
        if name.endswith("compile") and not r["compiled"]:
            label += " (compilation failed: ran eagerly)"
        error = "reference" if name == "float32 eager" else f"{r['error']:.1e}"
        if name != "float32 eager" and not r["guard_ok"]:
            error += " (fails the guard)"
        rows.append(
            [
                label,
                f"{r['time_s']:.3f} s",
                _x(r["speedup_vs_eager"]),
                f"{r['gflops_executed']:.0f} ({share})",
                error,
                f"{r['setup_s']:.1f} s" if name != "float32 eager" else "none",
            ]
        )
    return rows


def run_tables(result: dict) -> str:
    """The RST section of one ``run.py --docs`` result: where it ran, its tables and its targets."""
    settings, env = result["settings"], result["environment"]
    cpu = result["cpu"]
    threads = f"{result['threads']} torch thread{'s' if result['threads'] != 1 else ''}"
    title = f"{cpu['class']} CPU"
    command = "python benchmarks/run.py" + (" --quick" if settings["quick"] else "") + " --docs"
    lines = [
        title,
        "-" * len(title),
        "",
        (
            f"``{command}`` on {_cpu_line(result)}: {cpu['usable_cpus']} usable CPUs, {threads} (set by "
            f"{cpu['threads_set_by']}), torch {env['torch']}, sunpy_nn {result['sunpy_nn_version']}, {result['date']}; "
            f"load average {env['load_start'].split(',')[0]} at the start and {env['load_end'].split(',')[0]} at the "
            f"end, {env['wall_s']:.0f} s in all. Times are medians of {settings['repeats']} runs; the modes and the "
            "peak convolution ran in turns, and each mode's share of the peak is against the peak measured in the same "
            "rounds."
        ),
        "",
    ]
    if settings["quick"]:
        lines += ["A ``--quick`` run: no full disk and no ``torch.compile``.", ""]
    peak = result["peak_gflops"]
    enh, unet = result["enhance"], result["unet"]

    def rounds(net: dict, precision: str) -> str:
        return f"{net[precision]['conv_peak_gflops_same_rounds']:.0f}" if precision in net else NOT_TIMED

    def rate(key: str) -> str:
        return f"{peak[key]:.0f}" if key in peak else NOT_TIMED

    if "conv_bfloat16" not in peak:
        lines += [
            (
                "bfloat16 was not timed: ``run.py --bf16 auto`` times it only where the kernels run it natively, "
                'and these emulate it, at a few GFLOP/s; ``precision="auto"`` runs float32 here.'
            ),
            "",
        ]
    lines += _list_table(
        f"Measured peak, GFLOP/s ({cpu['class']}, {threads})",
        ["operation", "float32", "bfloat16"],
        [["matrix product 2048\\ :sup:`3`", rate("matmul_float32"), rate("matmul_bfloat16")]]
        + [
            [
                f"64 -> 64 3x3 convolution on {settings['enhance_size']} x {settings['enhance_size']}, {lay}",
                rate(f"conv_float32_{suffix}"),
                rate(f"conv_bfloat16_{suffix}"),
            ]
            for lay, suffix in (("NCHW", "nchw"), ("channels-last", "channels_last"))
            if f"conv_float32_{suffix}" in peak
        ]
        + [
            ["the channels-last convolution in the rounds of Enhance", rounds(enh, "float32"), rounds(enh, "bfloat16")],
            ["... in the rounds of the U-Net", rounds(unet, "float32"), rounds(unet, "bfloat16")],
        ],
    )
    header = ["mode", "time", "speed-up", "executed GFLOP/s (share of the conv peak)", "error / range", "set-up"]
    size = settings["enhance_size"]
    lines += _list_table(
        f"Enhance, {size} x {size} real HMI continuum (mirror-tiled cut-out), shipped weights ({cpu['class']})",
        header,
        _mode_rows(enh),
    )
    size = settings["unet_size"]
    lines += _list_table(
        f"Denoiser U-Net, {size} x {size} real CRISP image, random weights ({cpu['class']})", header, _mode_rows(unet)
    )
    disk = result.get("fulldisk")
    if disk:
        n = disk["size"]
        lines += _list_table(
            f'Enhance on a {n} x {n} full disk, ``run_tiled(precision="float32")``, one run ({cpu["class"]})',
            ["time", "tiles", "peak RSS", "minor page faults", "system CPU", "time / sum of tiles", "halo pixels"],
            [
                [
                    f"{disk['time_s']:.1f} s ({n * n / disk['time_s'] / 1e6:.2f} Mpix/s)",
                    f"{disk['n_tiles']} of {disk['tile_size']} px",
                    f"{disk['peak_rss_mib']:.0f} MiB",
                    f"{disk['minor_page_faults']:,}",
                    f"{disk['system_cpu_s']:.1f} s",
                    f"{1 + disk['tiling_overhead']:.3f}",
                    f"+{_pct(disk['computed_pixels_ratio'] - 1, '.1f')}",
                ]
            ],
        )
    else:
        lines += ["No full disk in this run.", ""]
    lines += _list_table(
        f"Noise2Noise training step (forward, backward, Adam), random pairs ({cpu['class']})",
        ["batches", "patches/s", "GFLOP/s", "FLOP rate below inference"],
        [
            [
                label.replace(" (as in fit)", FIT_LABEL),
                _rate(r["patches_s"]),
                f"{r['gflops']:.0f}",
                _x(r["vs_inference"]),
            ]
            for label, r in result["training"].items()
        ],
    )
    base = result["baselines"]
    lines += [
        (
            f"The U-Net's optimised float32 inference ran at {result['training_inference_gflops']:.0f} GFLOP/s in the "
            "rounds of the training steps (training counts three times the forward FLOPs). Baselines: "
            f"``richardson_lucy`` on {settings['enhance_size']} x {settings['enhance_size']} (20 iterations, x2) "
            f"{base['richardson_lucy_s']:.2f} s; ``pca_denoise`` on {settings['unet_size']} x {settings['unet_size']} "
            f"x 13 wavelengths {base['pca_denoise_s']:.2f} s."
        ),
        "",
        f"Targets of issue #8 on this {cpu['class']} CPU:",
        "",
        *(
            f"* {'met' if t['met'] else '**not met**'}: {name}: {t['detail']}"
            for name, t in result.get("targets", {}).items()
        ),
        "",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- scaling
def _matching_run(dask: dict, runs: list[dict]) -> dict | None:
    """The ``run.py`` result with a full disk, of the dask measurement's CPU class if there is one."""
    with_disk = [r for r in runs if r.get("fulldisk")]
    same = [r for r in with_disk if r["cpu"]["class"] == dask["cpu"]["class"]]
    return (same or with_disk or [None])[0]


def scaling_model(dask: dict) -> dict[str, float]:
    """The scaling model's numbers from a ``dask_throughput.py`` result (core-seconds, core-hours, bytes)."""
    per_map = dask["times"]["serial"] / dask["maps"]
    core_s_per_mpix = dask["core_s_per_mpix"]
    full_disk_core_s = core_s_per_mpix * FULL_DISK**2 / 1e6
    pixels = (FULL_DISK / dask["size"]) ** 2  # a full disk's pixels over a measured map's
    return {
        "per_map_s": per_map,
        "mpix": dask["size"] ** 2 / 1e6,
        "core_s_per_mpix": core_s_per_mpix,
        "full_disk_core_s": full_disk_core_s,
        "core_hours_day": MAPS_PER_DAY * full_disk_core_s / 3600,
        "full_disk_out_mib": dask["out_bytes"] * pixels / 2**20,
        "day_out_gib": MAPS_PER_DAY * dask["out_bytes"] * pixels / 2**30,
    }


def scaling_figures(dask: dict, runs: list[dict]) -> dict[str, str]:
    """The figures that the scaling guide's prose quotes (``|scal_...|``)."""
    model = scaling_model(dask)
    run = _matching_run(dask, runs)
    macs = (runs[0] if runs else {}).get("macs_per_pixel")
    return {
        "scal_cpu_class": dask["cpu"]["class"],
        "scal_startup": f"{dask['startup']:.1f} s",
        "scal_enhance_kmacs": f"{macs['enhance'] / 1e3:.0f}" if macs else MISSING,
        "scal_full_disk_out_mib": f"{model['full_disk_out_mib']:.0f} MiB",
        "scal_day_out_gib": f"{model['day_out_gib']:.0f} GiB",
        "scal_fulldisk_rss": (
            f"{run['fulldisk']['peak_rss_mib']:.0f} MiB ({run['fulldisk']['tile_size']} px tiles, on the "
            f"{run['cpu']['class']} CPU of the performance guide)"
            if run
            else MISSING
        ),
    }


def dask_section(dask: dict, runs: list[dict]) -> str:
    """The measured throughput (a table) and the scaling model computed from it, as RST."""
    cpu, times, maps, size = dask["cpu"], dask["times"], dask["maps"], dask["size"]
    serial_threads = dask["serial_threads"]
    labels = {
        "serial": f"serial (one process, {serial_threads} torch thread{'s' if serial_threads != 1 else ''} a map)",
        "threads": f'``scheduler="threads"`` ({dask["cores"]} workers)',
        "cluster_first": "2-process ``LocalCluster`` (1 thread each), first batch",
        "cluster": "the same cluster, warm",
    }
    lines = [
        (
            f"``python benchmarks/dask_throughput.py --docs`` on {cpu['model']} ({cpu['class']} class), "
            f"{dask['cores']} usable CPUs, torch {dask['torch']}, sunpy_nn {dask['sunpy_nn_version']}, {dask['date']}; "
            f"load average {dask['load_avg_start']:.1f} at the start and {dask['load_avg_end']:.1f} at the end. "
            f"{maps} HMI-like continuum cut-outs of {size} x {size} as FITS files, shipped weights, default settings, "
            "results written with ``output_dir``:"
        ),
        "",
        *_list_table(
            "",
            ["scheduler", f"time for {maps} maps", "maps/minute", "s/map"],
            [[labels[k], f"{t:.1f} s", f"{60 * maps / t:.1f}", f"{t / maps:.2f}"] for k, t in times.items()],
        ),
    ]
    ratio = times["threads"] / times["serial"]  # throughput of one map at a time over concurrent maps
    if ratio > 1.05:
        verdict = (
            "the convolutions parallelise well inside one map, and concurrent maps compete for memory bandwidth. "
            "Dask pays off when there are more cores than one map can use well, and across machines."
        )
    elif ratio < 1 / 1.05:
        verdict = "here concurrent maps used the cores better than one map at a time."
    else:
        verdict = "the two layouts are within a few per cent here."
    model = scaling_model(dask)
    ch = model["core_hours_day"]
    lines += [
        (
            f"Starting the 2-process cluster took {dask['startup']:.1f} s. One map at a time on {serial_threads} "
            f"thread{'s' if serial_threads != 1 else ''} had {ratio:.2f}x the throughput of {dask['cores']} maps at a "
            f"time: {verdict}"
        ),
        "",
        (
            f"Scaling model from these figures: {model['per_map_s']:.2f} s for {model['mpix']:.2f} Mpix on "
            f"{serial_threads} core{'s' if serial_threads != 1 else ''} is **{model['core_s_per_mpix']:.1f} "
            f"core-seconds per input Mpix**, so a full disk ({FULL_DISK**2 / 1e6:.1f} Mpix) costs about "
            f"{model['full_disk_core_s']:.0f} core-seconds and one day of HMI continuum images ({MAPS_PER_DAY:,} maps) "
            f"about **{ch:.0f} core-hours** (e.g. {ch / 32:.1f} hours on a 32-core node, or {60 * ch / 320:.0f} "
            "minutes on 10 such nodes), plus the same for the magnetograms."
        ),
    ]
    run = _matching_run(dask, runs)
    if run:
        disk = run["fulldisk"]
        lines[-1] += (
            f" A full disk measured directly through the tiled runner took {disk['time_s']:.0f} s on "
            f"{run['threads']} thread{'s' if run['threads'] != 1 else ''} of the {run['cpu']['class']} machine of "
            f"the performance guide ({disk['time_s'] * run['threads']:.0f} core-seconds; "
            ":ref:`sunpy_nn-performance`)."
        )
    lines += [
        "",
        (
            f"Per map, a worker read a {dask['in_bytes'] / 2**20:.1f} MiB FITS file ({size} x {size} float32) and "
            f"wrote {dask['out_bytes'] / 2**20:.1f} MiB (four times the pixels); at that rate a full disk's result is "
            f"{model['full_disk_out_mib']:.0f} MiB, about {model['day_out_gib']:.0f} GiB a day."
        ),
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------ files
def _substitutions(figures: dict[str, str]) -> str:
    return HEADER + "".join(f".. |{key}| replace:: {value}\n" for key, value in figures.items())


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def load_runs(static: Path) -> list[dict]:
    """The ``run.py --docs`` results under ``static`` (``docs/_static``), one per CPU class, AVX-512 first."""
    return [json.loads(p.read_text()) for p in sorted((static / "performance").glob("run_*.json"))]


def keras_figures(results: list[dict]) -> dict[str, str]:
    """
    The ratios of ``keras_originals.py --docs`` that the guide's prose quotes: ``perf_keras_<class>_<threads>t_<case>``
    (our time over Keras', two decimals), ``..._floor`` (the roofline floor of that ratio, where measured),
    ``..._floor_optimised`` (the floor of the package's own path, where it runs fewer multiply-adds) and
    ``..._peak_share`` (the FLOP rate of the package's timed call over the measured float32 peak, in per cent).
    """
    figures = {}
    for r in results:
        key = f"perf_keras_{class_key(r['cpu']['class'])}_{r['threads']}t_"
        for case, c in r["cases"].items():
            figures[f"{key}{case}"] = f"{c['ratio']:.2f}"
            if c.get("floor_ratio") is not None:
                figures[f"{key}{case}_floor"] = f"{c['floor_ratio']:.2f}"
            if c.get("floor_optimised_ratio") is not None and c["gflop_optimised"] < 0.99 * c["gflop"]:
                figures[f"{key}{case}_floor_optimised"] = f"{c['floor_optimised_ratio']:.2f}"
            if c.get("executed_gflops") and c.get("peak_gflops"):  # how much faster kernels could still gain
                figures[f"{key}{case}_peak_share"] = f"{100 * c['executed_gflops'] / c['peak_gflops']:.0f} %"
    return figures


#: The training row of ``run.py``'s fit configuration: fit's step and layout, but the paper's batch, not fit's default.
FIT_LABEL = " (the step of ``Denoiser.fit``, at the paper's batch; fit's default is 5)"

#: A table cell of what a run did not time (bfloat16 where it is not native).
NOT_TIMED = "not timed"
NO_KERAS = "No Keras comparison is committed yet: run ``python benchmarks/keras_originals.py --docs``.\n"


def write_performance_files(source: Path, out: Path) -> None:
    """Write the performance and scaling guides' generated files into ``out`` from the JSON under ``source``."""
    static = Path(source) / "_static"
    runs = load_runs(static)
    figures = common_figures(runs[0]) if runs else {}
    for result in runs:
        figures |= run_figures(result)
    keras = [json.loads(p.read_text()) for p in sorted((static / "performance").glob("keras_*.json"))]
    figures |= keras_figures(keras)
    _write(out / "performance_figures.inc", _substitutions(figures))
    _write(out / "performance_tables.inc", HEADER + "\n".join(run_tables(r) for r in runs))
    _write(out / "performance_keras.inc", HEADER + (keras_table(keras) if keras else NO_KERAS))
    gpu = [json.loads(p.read_text()) for p in sorted((static / "performance").glob("gpu_*.json"))]
    _write(out / "performance_gpu.inc", HEADER + gpu_section(gpu))
    dask = json.loads((static / "scaling" / "dask_throughput.json").read_text())
    _write(out / "scaling_figures.inc", _substitutions(scaling_figures(dask, runs)))
    _write(out / "scaling_dask_throughput.inc", HEADER + dask_section(dask, runs))
