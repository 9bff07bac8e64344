"""
Printing and CPU reporting of ``benchmarks/run.py`` (issue #15): rows, headers, the CPU (the one CPU-class detector
of the benchmarks), the load average, peak RSS, the per-part result lines and the targets of issue #8.

Benchmark-only: ``run.py`` re-exports these names for ``threads.py``, ``dask_throughput.py`` and
``keras_originals.py``, which load it as a module.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from sunpy_nn.nn import ACCURACY_BOUND, bf16_is_native


def _row(label: str, value: str) -> None:
    print(f"  {label:<46s} {value}", flush=True)


def _header(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The CPU flags that decide which kernels torch's oneDNN runs (and so which table of the performance guide applies).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx")


#: The environment that caps the instruction set of the kernels of torch (ATen, oneDNN, MKL) and TensorFlow (oneDNN),
#: so that an AVX-512 CPU runs the AVX2 kernels: ``--isa avx2`` of ``run.py`` and ``keras_originals.py``. Each library
#: reads its variable once, when it starts, hence `cap_isa` starts the script again.
ISA_CAPS = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}
_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def add_isa_option(parser: argparse.ArgumentParser) -> None:
    """The ``--isa`` option of the benchmarks that compare kernels: run an AVX-512 CPU's AVX2 kernels."""
    parser.add_argument(
        "--isa",
        choices=sorted(ISA_CAPS),
        default=None,
        help="cap torch's and TensorFlow's kernels to this instruction set (an AVX-512 CPU measured with AVX2 "
        "kernels: its CPU class becomes 'AVX2-capped', never 'AVX2')",
    )


def cap_isa(isa: str | None) -> None:
    """Start this script again with the kernels capped to ``isa`` (`ISA_CAPS`), unless they already are."""
    if isa is None:
        return
    env = ISA_CAPS[isa]
    if all(os.environ.get(k) == v for k, v in env.items()):
        return
    print(f"re-running with {' '.join(f'{k}={v}' for k, v in env.items())}", flush=True)
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **env})


def cpu_class(present: dict, capability: str, cap: dict) -> str:
    """
    The class of the kernels that run: ``"AVX-512"``, ``"AVX2"`` or the machine's name; with any variable of a
    cap set (``cap``), the class of torch's kernels plus ``"-capped"`` (``"AVX2-capped"`` for `ISA_CAPS`'s avx2):
    AVX2 code on an AVX-512 server (other clocks, caches and memory than an AVX2 laptop) never shares a table
    with real AVX2 CPUs.
    """
    hardware = "AVX-512" if present["avx512f"] else "AVX2" if present["avx2"] else platform.machine() or "other"
    if not cap:
        return hardware
    kernels = {"AVX512": "AVX-512", "AVX2": "AVX2"}.get(capability.upper(), capability)
    return f"{kernels}-capped"


def cpu_info() -> dict:
    """
    The CPU: model, the flags of `CPU_FLAGS` (``amx``: any AMX extension), its class (`cpu_class`), torch's view,
    the variables that cap the kernels' instruction set (``isa_cap``), the CPUs.
    """
    from sunpy_nn.nn.device import _STATE, _cpu_flags, _usable_cpus, user_threads

    flags = _cpu_flags()
    present = {f: f in flags for f in CPU_FLAGS[:-1]}
    present["amx"] = any(f.startswith("amx") for f in flags)
    capability = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "n/a"
    cap = {k: os.environ[k] for k in _CAP_VARIABLES if k in os.environ}
    chosen = user_threads()
    if chosen is not None:
        set_by = chosen[1]
    elif _STATE.applied == torch.get_num_threads():
        set_by = "the package's thread policy"
    else:
        set_by = "torch's default, until the thread policy decides when a network runs"
    return {
        "model": _cpu_model(),
        "flags": present,
        "amx_flags": sorted(f for f in flags if f.startswith("amx")),
        "class": cpu_class(present, capability, cap),
        "torch_capability": capability,
        "isa_cap": cap,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": _usable_cpus(),
        "threads": torch.get_num_threads(),
        "threads_set_by": set_by,
    }


def print_cpu(info: dict) -> None:
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["flags"].items())
    amx = f" ({' '.join(info['amx_flags'])})" if info["amx_flags"] else ""
    _row("CPU", f"{info['model']} ({info['class']} class)")
    _row("CPU flags", f"{flags}{amx}; torch CPU capability {info['torch_capability']}")
    if info.get("isa_cap"):
        _row("kernels capped by", " ".join(f"{k}={v}" for k, v in info["isa_cap"].items()))
    _row(
        "CPUs / usable / torch threads",
        f"{info['logical_cpus']} / {info['usable_cpus']} / {info['threads']} (set by {info['threads_set_by']})",
    )


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def make_parser(description: str) -> argparse.ArgumentParser:
    """The command line of ``run.py``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="skip the full disk and torch.compile; fewer repeats")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile modes")
    parser.add_argument("--no-fulldisk", action="store_true", help="skip the full-disk run")
    parser.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: CUDA if available")
    parser.add_argument("--full-size", type=int, default=4096, help="edge of the full-disk image")
    parser.add_argument("--tile-size", type=int, default=None, help="tile edge of the full-disk run")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the thread policy)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also write docs/_static/performance/run_<cpu class>.json, from which the performance guide is made",
    )
    add_isa_option(parser)
    parser.add_argument(
        "--bf16",
        choices=("auto", "yes", "no"),
        default="auto",
        help="time bfloat16 (the peak and the bfloat16 mode): auto (default) only where it is native; emulated "
        "bfloat16 runs at a few GFLOP/s and would take most of an hour",
    )
    parser.add_argument("--_fulldisk", action="store_true", help=argparse.SUPPRESS)
    return parser


def environment(cpu: dict, dev: torch.device, args: argparse.Namespace) -> dict:
    """Where the run ran: versions, CPU, threads, device, load at the start and the arguments."""
    return {
        "torch": torch.__version__,
        "cpu": cpu["model"],
        "cpu_info": cpu,
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "bf16_native": bf16_is_native(dev),
        "load_start": _load(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }


def print_training_row(label: str, r: dict) -> None:
    """One training setting of ``part_training``: patches/s, GFLOP/s and how far below inference."""
    _row(
        label,
        f"{r['patches_s']:.1f} patches/s, {r['gflops']:.0f} GFLOP/s ({r['vs_inference']:.2f}x below inference)",
    )


def print_start(cpu: dict, dev: torch.device) -> None:
    """The banner: versions, the CPU (``cpu``: `cpu_info`), the device and the load average at the start."""
    print("sunpy_nn performance benchmark (issue #8)", flush=True)
    _row("python / numpy / torch", f"{platform.python_version()} / {np.__version__} / {torch.__version__}")
    print_cpu(cpu)
    _row("device / native bfloat16", f"{dev} / {bf16_is_native(dev)}")
    _row("load average at start (1, 5, 15 min)", _load())


def print_same_rounds(peak_rounds: dict, setup: dict) -> None:
    """The conv peak measured in the rounds of ``part_network`` and each mode's setup time."""
    bf16 = f"{statistics.median(peak_rounds['bfloat16']):.0f}" if "bfloat16" in peak_rounds else "not measured"
    _row(
        "conv peak in the same rounds (float32 / bf16)",
        f"{statistics.median(peak_rounds['float32']):.0f} / {bf16} GFLOP/s"
        f"; setup (prepare + first call): " + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items()),
    )


def print_network_row(name: str, r: dict, kw: dict) -> None:
    """One mode of ``part_network``: time, speed-up, rates, fraction of the conv peak and the accuracy guard."""
    precision, err, t = r["chosen_precision"], r["error"], r["time_s"]
    chosen = f" -> {precision}" if kw.get("precision") == "auto" else ""
    comp = " (compile fell back to eager)" if kw.get("compile") and not r["compiled"] else ""
    guard = (
        "reference"
        if name == "float32 eager"
        else (f"error {err:.1e}, {'within' if r['guard_ok'] else 'FAILS'} the {ACCURACY_BOUND:g} guard")
    )
    _row(
        f"{name}{chosen}{comp}",
        f"{t:.3f} s ({r['speedup_vs_eager']:.2f}x), {r['mpix_s']:.3f} Mpix/s, {r['gflops_nominal']:.0f} nominal / "
        f"{r['gflops_executed']:.0f} executed GFLOP/s = {r['fraction_of_conv_peak']:.0%} of the {precision} "
        f"conv peak; {guard}",
    )


def print_fulldisk(r: dict, size: int) -> None:
    """The lines of the full-disk run (``r``: what its child process wrote)."""
    _row("time", f"{r['time_s']:.1f} s ({size * size / r['time_s'] / 1e6:.3f} Mpix/s)")
    _row("tile size / number of tiles", f"{r['tile_size']} px / {r['n_tiles']}")
    _row("peak RSS of the process", f"{r['peak_rss_mib']:.0f} MiB")
    _row("minor page faults during the run", f"{r['minor_page_faults']}")
    _row("system CPU time during the run", f"{r['system_cpu_s']:.1f} s")
    _row("sum of the tiles' forward passes", f"{r['sum_of_tiles_s']:.1f} s")
    _row("tiling overhead (time / sum of tiles - 1)", f"{r['tiling_overhead']:.1%}")
    _row("pixels computed incl. halos / image pixels", f"{r['computed_pixels_ratio']:.3f}")
    _row("overhead incl. halos (vs image px at tile rate)", f"{r['overhead_incl_halos']:.1%}")


def targets(enh: dict, un: dict, fulldisk: dict | None, train: dict, fit_config: str) -> dict:
    """The targets of issue #8, each ``{"met": bool, "detail": str}``, in the order they are printed."""
    out: dict = {}

    def _target(name: str, met: bool, detail: str) -> None:
        out[name] = {"met": bool(met), "detail": detail}

    f32 = enh["float32"]
    _target(
        "Enhance float32 400x400 >= 75 % of the measured conv peak",
        f32["fraction_of_conv_peak"] >= 0.75,
        f"{f32['fraction_of_conv_peak']:.0%} ({f32['time_s']:.3f} s)",
    )
    guarded = {k: v for k, v in enh.items() if k != "float32 eager" and v["guard_ok"]}
    best = min(guarded, key=lambda k: guarded[k]["time_s"])
    _target(
        "best Enhance mode >= 1.6x faster than float32 eager, within the guard",
        guarded[best]["speedup_vs_eager"] >= 1.6,
        f"{best}: {guarded[best]['speedup_vs_eager']:.2f}x",
    )
    if fulldisk:
        _target(
            "4096x4096 full disk peak RSS <= 2.5 GB",
            fulldisk["peak_rss_mib"] * 2**20 <= 2.5e9,
            f"{fulldisk['peak_rss_mib']:.0f} MiB",
        )
        _target(
            "full-disk tiling overhead <= 15 %",
            fulldisk["tiling_overhead"] <= 0.15,
            f"{fulldisk['tiling_overhead']:.1%}",
        )
    best_u = max((v for k, v in un.items() if k != "float32 eager" and v["guard_ok"]), key=lambda v: -v["time_s"])
    _target(
        "U-Net prediction >= 70 % of the measured conv peak",
        best_u["fraction_of_conv_peak"] >= 0.70,
        f"{best_u['fraction_of_conv_peak']:.0%} ({best_u['time_s']:.3f} s)",
    )
    fit = train[fit_config]
    _target(
        "training FLOP rate within 1.5x of the inference FLOP rate",
        fit["vs_inference"] <= 1.5,
        f"{fit['vs_inference']:.2f}x (the step of Denoiser.fit); best setting "
        f"{min(v['vs_inference'] for v in train.values()):.2f}x",
    )
    return out


def print_targets(result: dict) -> None:
    """Each target of ``result["targets"]``: "met" or "NOT MET", with its figure."""
    for name, t in result["targets"].items():
        print(f"  {'met    ' if t['met'] else 'NOT MET'}  {name}: {t['detail']}", flush=True)
