"""
The performance and scaling guides quote ``benchmarks/run.py --docs`` and ``benchmarks/dask_throughput.py --docs``
through ``docs/_ext/generated_performance.py`` (issues #16 and #17): its functions, on made-up results, and the
pages against the committed JSON.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def gen():
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import generated_performance
    finally:
        sys.path.pop(0)
    return generated_performance


def _mode(time_s: float, error: float, precision: str = "float32", setup: float = 1.0, compiled: bool = False):
    return {
        "time_s": time_s,
        "speedup_vs_eager": 2.0 / time_s,
        "gflops_executed": 100.0 / time_s,
        "fraction_of_conv_peak": 0.5 / time_s,
        "conv_peak_gflops_same_rounds": 400.0 if precision == "float32" else 800.0,
        "error": error,
        "guard_ok": error <= 1e-3,
        "chosen_precision": precision,
        "compiled": compiled,
        "setup_s": setup,
    }


def _network(compile_: bool) -> dict:
    modes = {"float32 eager": _mode(2.0, 0.0), "float32": _mode(1.0, 9.0e-7)}
    if compile_:
        modes["float32 + compile"] = _mode(0.8, 9.0e-7, setup=21.0, compiled=True)
    return modes | {"bfloat16": _mode(0.5, 1.1e-2, "bfloat16"), "auto": _mode(1.0, 9.3e-6)}


def _run(cpu_class: str = "AVX-512", quick: bool = False) -> dict:
    """A made-up ``run.py --docs`` result with the structure the script writes."""
    flags = {"avx2": True, "avx512f": cpu_class == "AVX-512", "avx512_bf16": cpu_class == "AVX-512", "amx": False}
    result = {
        "sunpy_nn_version": "0.1.dev1+gabcdef1",
        "date": "2026-01-01 12:00",
        "cpu": {
            "model": "Test CPU",
            "flags": flags,
            "class": cpu_class,
            "usable_cpus": 2,
            "threads_set_by": "the package's thread policy",
        },
        "threads": 2,
        "settings": {"quick": quick, "repeats": 5, "enhance_size": 400, "unet_size": 800, "full_size": 4096},
        "environment": {"torch": "2.13.0", "load_start": "0.10, 0.2, 0.3", "load_end": "1.00, 1.0, 1.0", "wall_s": 300},
        "peak_gflops": {
            "matmul_float32": 200.0,
            "matmul_bfloat16": 900.0,
            "conv_float32_nchw": 240.0,
            "conv_float32_channels_last": 386.0,
            "conv_bfloat16_nchw": 300.0,
            "conv_bfloat16_channels_last": 1028.0,
            "conv_float32": 386.0,
            "conv_bfloat16": 1028.0,
        },
        "macs_per_pixel": {"enhance": 553792, "enhance_optimised": 471872, "unet": 173984.0},
        "tiling": {
            "size": 4096,
            "halo": 13,
            "optimised": {"tile_size": 624, "window": 612, "n_tiles": 49, "computed_pixels_ratio": 1.0939},
            "generic": {"tile_size": 256, "window": 256, "n_tiles": 324, "computed_pixels_ratio": 1.265625},
        },
        "enhance": _network(not quick),
        "unet": _network(not quick),
        "training": {
            "batch 10 of 52x52, NCHW": {"patches_s": 63.0, "gflops": 177.0, "vs_inference": 1.83},
            "batch 10 of 52x52, channels-last, fused Adam (as in fit)": {
                "patches_s": 73.0,
                "gflops": 206.0,
                "vs_inference": 1.58,
                "as_in_fit": True,
            },
        },
        "training_inference_gflops": 325.0,
        "baselines": {"richardson_lucy_s": 0.5, "pca_denoise_s": 0.42},
        "targets": {"full-disk tiling overhead <= 15 %": {"met": True, "detail": "0.2%"}},
    }
    if not quick:
        result["fulldisk"] = {
            "size": 4096,
            "time_s": 40.0,
            "peak_rss_mib": 1560.0,
            "minor_page_faults": 256000,
            "system_cpu_s": 0.3,
            "tile_size": 612,
            "n_tiles": 49,
            "tiling_overhead": 0.002,
            "computed_pixels_ratio": 1.094,
        }
    return result


def _dask(cpu_class: str = "AVX-512") -> dict:
    """A made-up ``dask_throughput.py --docs`` result."""
    return {
        "sunpy_nn_version": "0.1.dev1+gabcdef1",
        "date": "2026-01-01 12:00",
        "cpu": {"model": "Test CPU", "class": cpu_class},
        "torch": "2.13.0",
        "maps": 6,
        "size": 1024,
        "cores": 2,
        "load_avg_start": 0.1,
        "load_avg_end": 1.0,
        "serial_threads": 2,
        "times": {"serial": 18.0, "threads": 22.5, "cluster_first": 22.6, "cluster": 22.2},
        "startup": 2.9,
        "in_bytes": 4 * 2**20 + 5760,
        "out_bytes": 16 * 2**20 + 5760,
        "core_s_per_mpix": 18.0 / 6 / 1.048576 * 2,
    }


def test_class_key_and_bound(gen):
    assert gen.class_key("AVX-512") == "avx512" and gen.class_key("AVX2") == "avx2"
    assert gen._bound(9.3e-6) == "1e-5" and gen._bound(9.0e-7) == "9e-7" and gen._bound(2.0e-3) == "2e-3"


def test_run_figures_name_the_cpu_class_and_come_from_the_result(gen):
    figures = gen.run_figures(_run())
    assert all(key.startswith("perf_avx512_") for key in figures)
    assert figures["perf_avx512_enh_f32_speedup"] == "2.00x"
    assert figures["perf_avx512_enh_compile_speedup"] == "2.50x"
    assert figures["perf_avx512_enh_bf16_over_f32"] == "2.00x"  # 1.0 s against 0.5 s
    assert figures["perf_avx512_enh_bf16_error"] == "1.1 %"
    assert figures["perf_avx512_float32_error"] == "1e-5"  # the largest float32 error, rounded up
    assert figures["perf_avx512_fulldisk_rss"] == "1560 MiB"
    assert figures["perf_avx512_train_fit_vs_inference"] == "1.58x"  # the step of Denoiser.fit, not the first
    assert figures["perf_avx512_compile_setup"] == "21 s"
    # bfloat16 against float32 convolutions: the peak and the rounds of both networks
    assert figures["perf_avx512_conv_bf16_over_f32"] == "2.0-2.7x"
    assert gen.run_figures(_run("AVX2"))["perf_avx2_bf16_units"] == "no native bfloat16"


def test_a_quick_run_leaves_what_it_did_not_measure_marked(gen):
    figures = gen.run_figures(_run(quick=True))
    for name in ("fulldisk_time", "fulldisk_rss", "enh_compile_speedup", "compile_setup"):
        assert figures[f"perf_avx512_{name}"] == gen.MISSING
    tables = gen.run_tables(_run(quick=True))
    assert "``--quick``" in tables and "No full disk" in tables and "compile=True" not in tables


def test_a_run_without_native_bfloat16_leaves_it_untimed(gen):
    """``run.py --bf16 auto`` on kernels without native bfloat16 (AVX2, or capped to it) times float32 only."""
    result = _run("AVX2-capped")
    result["cpu"]["isa_cap"] = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    result["environment"]["bf16_native"] = False
    result["settings"]["bf16"] = False
    result["peak_gflops"] = {k: v for k, v in result["peak_gflops"].items() if "bfloat16" not in k}
    for net in ("enhance", "unet"):
        del result[net]["bfloat16"]
    figures = gen.run_figures(result)
    for name in ("enh_bf16_over_f32", "enh_bf16_error", "unet_bf16_over_f32", "unet_bf16_error", "conv_bf16_over_f32"):
        assert figures[f"perf_avx2capped_{name}"] == gen.MISSING
    assert figures["perf_avx2capped_bf16_units"] == "no native bfloat16 in the kernels that ran"
    assert figures["perf_avx2capped_enh_f32_speedup"] == "2.00x"  # float32 as before
    tables = gen.run_tables(result)
    assert "bfloat16 was not timed" in tables and "- not timed" in tables
    assert "with its kernels capped (ONEDNN_MAX_CPU_ISA=AVX2)" in tables
    assert '* - ``"bfloat16"``' not in tables and '* - ``"bfloat16"``' in gen.run_tables(_run())  # no bfloat16 row


def test_common_figures_are_arithmetic_on_the_settings(gen):
    figures = gen.common_figures(_run())
    assert figures["perf_halo_generic"] == "27 %" and figures["perf_halo_optimised"] == "9 %"
    assert figures["perf_enhance_kmacs"] == "554" and figures["perf_unet_kmacs"] == "174"


def test_run_tables_one_section_per_cpu_class(gen):
    text = gen.run_tables(_run())
    assert text.startswith("AVX-512 CPU\n-----------\n")
    assert "Test CPU (AVX-512 class; flags: avx2, avx512f, avx512_bf16)" in text
    assert text.count(".. list-table::") == 5  # peak, Enhance, U-Net, full disk, training
    assert "0.800 s" in text and "1.1e-02 (fails the guard)" in text and "1,560" not in text
    assert "* met: full-disk tiling overhead <= 15 %: 0.2%" in text
    assert "(the step of ``Denoiser.fit``, at the paper's batch; fit's default is 5)" in text


def test_keras_figures_per_class_and_threads(gen):
    """The guide quotes the Keras ratios by CPU class and threads: a capped run never stands in for another class."""
    capped = {
        "cpu": {"class": "AVX2-capped"},
        "threads": 1,
        "cases": {
            "unet": {"ratio": 0.6249, "floor_ratio": 0.2551},
            "train_n2n": {"ratio": 1.17, "floor_ratio": None},
        },
    }
    real = copy.deepcopy(capped) | {"cpu": {"class": "AVX-512"}, "threads": 2}
    figures = gen.keras_figures([capped, real])
    assert (
        figures["perf_keras_avx2capped_1t_unet"] == "0.62" and figures["perf_keras_avx2capped_1t_unet_floor"] == "0.26"
    )
    assert figures["perf_keras_avx512_2t_unet"] == "0.62" and "perf_keras_avx2capped_1t_train_n2n_floor" not in figures
    assert set(figures) == {
        f"perf_keras_{c}_{case}" for c in ("avx2capped_1t", "avx512_2t") for case in ("unet", "unet_floor", "train_n2n")
    }


def test_keras_figures_floor_of_the_packages_own_path(gen):
    """Only where the package's path runs fewer multiply-adds (Enhance's sub-pixel upsampling) has it its own floor."""
    case = {"ratio": 0.58, "floor_ratio": 0.58, "gflop": 177.2, "floor_optimised_ratio": 0.494}
    run = {"cpu": {"class": "AVX2-capped"}, "threads": 1}
    figures = gen.keras_figures(
        [run | {"cases": {"enhance": case | {"gflop_optimised": 151.4}, "unet": case | {"gflop_optimised": 177.2}}}]
    )
    assert figures["perf_keras_avx2capped_1t_enhance_floor_optimised"] == "0.49"
    assert "perf_keras_avx2capped_1t_unet_floor_optimised" not in figures


def test_keras_figures_share_of_the_peak(gen):
    """The guide says how near the measured float32 peak the package's timed call ran: executed FLOP rate / peak."""
    case = {"ratio": 0.56, "executed_gflops": 89.6, "peak_gflops": 100.4}
    figures = gen.keras_figures(
        [{"cpu": {"class": "AVX2"}, "threads": 1, "cases": {"enhance": case, "unet": {"ratio": 1}}}]
    )
    assert figures["perf_keras_avx2_1t_enhance_peak_share"] == "89 %"
    assert "perf_keras_avx2_1t_unet_peak_share" not in figures  # a run without the roofline: no share


def test_scaling_model_arithmetic(gen):
    dask = _dask()
    model = gen.scaling_model(dask)
    assert model["core_s_per_mpix"] == pytest.approx(18.0 / 6 / 1.048576 * 2)
    assert model["full_disk_core_s"] == pytest.approx(model["core_s_per_mpix"] * 16.777216)
    assert model["core_hours_day"] == pytest.approx(1920 * model["full_disk_core_s"] / 3600)
    assert model["full_disk_out_mib"] == pytest.approx(16 * (16 * 2**20 + 5760) / 2**20)
    assert model["day_out_gib"] == pytest.approx(1920 * model["full_disk_out_mib"] / 1024)


def test_scaling_figures_and_section(gen):
    figures = gen.scaling_figures(_dask("AVX2"), [_run("AVX-512")])
    assert figures["scal_startup"] == "2.9 s" and figures["scal_cpu_class"] == "AVX2"
    assert figures["scal_fulldisk_rss"] == "1560 MiB (612 px tiles, on the AVX-512 CPU of the performance guide)"
    assert gen.scaling_figures(_dask(), [_run(quick=True)])["scal_fulldisk_rss"] == gen.MISSING
    text = gen.dask_section(_dask(), [_run()])
    model = gen.scaling_model(_dask())
    assert f"**{model['core_hours_day']:.0f} core-hours**" in text
    assert f"{60 * model['core_hours_day'] / 320:.0f} minutes on 10 such nodes" in text
    assert "1.25x the throughput" in text and "memory bandwidth" in text  # 22.5 s against 18.0 s
    slower = copy.deepcopy(_dask())
    slower["times"]["threads"] = 12.0
    assert "memory bandwidth" not in gen.dask_section(slower, [])


def test_committed_runs_have_every_part_they_asked_for(gen):
    """
    ``run.py`` only prints a failed full-disk child and writes its JSON without the part: a committed run that asked
    for the full disk must have it (a run made while the child was broken would show "No full disk in this run.").
    """
    for result in gen.load_runs(DOCS / "_static"):
        if result["settings"]["fulldisk"]:
            disk = result.get("fulldisk")
            assert disk and disk["size"] == result["settings"]["full_size"], (result["cpu"]["class"], "no full disk")


def test_the_pages_quote_only_what_the_committed_json_defines(gen, tmp_path):
    gen.write_performance_files(DOCS, tmp_path)
    for page, inc in (("performance.rst", "performance_figures.inc"), ("scaling.rst", "scaling_figures.inc")):
        defined = set(re.findall(r"^\.\. \|([a-z0-9_]+)\| replace::", (tmp_path / inc).read_text(), re.MULTILINE))
        text = (DOCS / "guide" / page).read_text()
        used = set(re.findall(r"\|((?:perf|scal)_[a-z0-9_]+)\|", text))
        assert used and used <= defined, (page, sorted(used - defined))
        assert f".. include:: generated/{inc}" in text
    runs = gen.load_runs(DOCS / "_static")
    assert runs, "no docs/_static/performance/run_*.json: run `python benchmarks/run.py --docs`"
    tables = (tmp_path / "performance_tables.inc").read_text()
    for result in runs:
        assert f"{result['cpu']['class']} CPU\n" in tables
        assert f"{result['enhance']['float32']['time_s']:.3f} s" in tables
    dask = json.loads((DOCS / "_static" / "scaling" / "dask_throughput.json").read_text())
    assert f"{dask['startup']:.1f} s" in (tmp_path / "scaling_dask_throughput.inc").read_text()


def test_the_avx2_paragraph_agrees_with_the_committed_keras_run():
    """
    The guide's words on the AVX2 run: both targets met; the U-Net above its floor; Enhance below the floor of
    direct convolution on the package's own path, because NNPACK's Winograd convolution executed fewer FLOPs.
    """
    path = DOCS / "_static" / "performance" / "keras_avx2.json"
    assert path.exists(), "no keras_avx2.json: run `python benchmarks/keras_originals.py --docs` on an AVX2-only CPU"
    run = json.loads(path.read_text())
    assert run["cpu"]["class"] == "AVX2" and run["threads"] == 1 and not run["cpu"]["isa_cap"]
    enhance, unet = run["cases"]["enhance"], run["cases"]["unet"]
    assert enhance["met"] and unet["met"]
    assert unet["floor_ratio"] < unet["ratio"] <= unet["target"]
    assert enhance["ratio"] < enhance["floor_optimised_ratio"]
    assert enhance["gflop_executed"] < enhance["gflop_optimised"]  # Winograd: fewer multiply-adds than direct
    text = " ".join((DOCS / "guide" / "performance.rst").read_text().split())
    assert "Both targets were met in this run." in text and "below the floor of direct convolution" in text


def test_run_py_full_disk_child_runs_and_counts_every_tile():
    """
    ``run.py``'s full-disk part runs in a child process whose failure only prints: the child itself, on a small
    disk, writes its JSON line with every tile's forward pass timed (its lookup of the runner's cached copy broke once
    unnoticed, and the guide's full-disk figures went unmeasured).
    """
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--_fulldisk", "--full-size", "384", "--tile-size=128"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["size"] == 384 and r["time_s"] > 0 and r["peak_rss_mib"] > 0
    assert r["n_tiles"] > 1 and 0 < r["sum_of_tiles_s"] <= r["time_s"]


def test_run_py_tile_geometry_matches_the_runner():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    geometry = bench.tiling_geometry(1000, 13)
    for plan in (geometry["optimised"], geometry["generic"]):
        assert plan["computed_pixels_ratio"] == pytest.approx(plan["n_tiles"] * plan["window"] ** 2 / 1000**2)
        assert plan["computed_pixels_ratio"] >= 1


def _gpu_run() -> dict:
    timing = {"time_s": 10.0, "peak_mib": 3000.0, "error": 2.5e-4}
    return {
        "sunpy_nn_version": "0.1.dev1+gabc",
        "date": "2026-12-01 12:00",
        "device": {
            "name": "NVIDIA H200",
            "memory_gib": 139.8,
            "capability": "9.0",
            "torch": "2.13.0",
            "cuda": "12.8",
            "cudnn": 91000,
            "tf32_convolutions": True,
        },
        "tests": {"summary": "2 passed, 1090 deselected in 9.0s"},
        "fulldisk": {"size": 4096, "float32": timing | {"mpix_s": 1.68}, "bfloat16": timing | {"mpix_s": 3.2}},
        "cube": {
            "shape": [15, 4, 8, 1024],
            "float32": timing | {"frames_s": 48.0},
            "bfloat16": timing | {"frames_s": 90},
        },
        "training": {
            "enhance": {
                "label": "Enhance, batch 32 of 50 x 50",
                "float32": {"patches_s": 900.4},
                "bfloat16": {"patches_s": 2000},
            }
        },
    }


def test_gpu_section_without_and_with_a_run(gen):
    """Until a GPU run is committed the guide says so and how to make one; a run gives one column per precision."""
    assert "python benchmarks/gpu.py --docs" in gen.gpu_section([]) and "No GPU measurement" in gen.gpu_section([])
    text = gen.gpu_section([_gpu_run()])
    assert ".. list-table:: GPU: NVIDIA H200" in text and "may use TF32" in text and "2 passed" in text
    assert "10.00 s (1.7 Mpix/s, peak 3000 MiB); error 2.5e-04" in text  # full disk, float32
    run = _gpu_run()
    run["device"]["inference_tf32"] = False  # a run that recorded the package's own switch
    assert "in full float32 at inference (sunpy_nn switches TF32 off), in training may use TF32" in gen.gpu_section(
        [run]
    )
    assert "10.00 s (90.0 frames/s, peak 3000 MiB); error 2.5e-04" in text  # the cube, bfloat16
    assert "     - 900 patches/s\n     - 2000 patches/s" in text
    # bfloat16 against float32: times for inference (10 s each: 1.00x), rates for training (2000 / 900.4)
    assert "Enhance's full disk 1.00x; the U-Net's cube 1.00x; Enhance, batch 32 of 50 x 50 training 2.22x" in text
    run = _gpu_run()
    run["fulldisk"]["bfloat16"]["error"] = 8e-3
    run["cube"] |= {"weights": "random (the Denoiser's U-Net)", "data": "synthetic"}
    run["tests"]["returncode"] = 1
    text = gen.gpu_section([run])
    assert "error 8.0e-03 (above the guard)" in text and text.count("above the guard") == 1
    assert "Enhance's full disk 1.00x (outside the guard)" in text
    assert "U-Net: random (the Denoiser's U-Net) on synthetic" in text and "(they FAILED)" in text


def _load_gpu_script():
    spec = importlib.util.spec_from_file_location("gpu_check", DOCS.parent / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_reads_the_cuda_tests_summary_and_survives_their_timeout():
    """The GPU run's first part, without a GPU: a stand-in for the pytest subprocess."""
    import subprocess
    from types import SimpleNamespace

    gpu = _load_gpu_script()
    cuda = SimpleNamespace(type="cuda")
    done = SimpleNamespace(returncode=0, stdout="....\n4 passed, 1 skipped, 1020 deselected in 12.3s\n")
    res = gpu.part_tests(cuda, run=lambda cmd, **kw: done)
    assert res["passed"] == 4 and res["skipped"] == 1 and res["returncode"] == 0
    assert res["command"].endswith("tests/test_cuda.py tests/test_performance.py tests/test_runner.py")

    def hang(cmd, **kw):
        raise subprocess.TimeoutExpired(cmd, kw["timeout"])

    failed = "F.\nFAILED tests/test_cuda.py::test_x - RuntimeError: Expected all tensors on the same device\n"
    done = SimpleNamespace(returncode=1, stdout=failed + "1 failed, 1 passed in 3.1s\n")
    res = gpu.part_tests(cuda, run=lambda cmd, **kw: done)
    assert res["failed"] == 1 and res["failures"] == [failed.splitlines()[1]]

    res = gpu.part_tests(cuda, run=hang)
    assert res["returncode"] is None and "timed out" in res["summary"]


def test_gpu_check_dry_run_writes_what_the_docs_read(tmp_path, gen):
    """The prepared GPU script runs end to end on the CPU (its --dry-run) and writes what `gpu_section` reads."""
    import subprocess

    out = tmp_path / "gpu.json"
    script = DOCS.parent / "benchmarks" / "gpu.py"
    cmd = [sys.executable, str(script), "--dry-run", "--tiny", "--repeats", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["tests"] == {"skipped_run": True}
    assert "failed" not in result
    for part in ("fulldisk", "cube"):
        assert result[part]["float32"]["error"] < 1e-5  # the CPU against itself
        assert result[part]["bfloat16"]["error"] < 0.05  # rounding, not a wrong network
    assert result["cube"]["float32"]["error_log_variance"] < 1e-5  # its own channel's range
    assert all(case[p]["loss_finite"] for case in result["training"].values() for p in ("float32", "bfloat16"))
    result["device"] |= {"memory_gib": 0.0, "capability": "-", "cuda": None, "cudnn": None}
    assert "list-table" in gen.gpu_section([result])


def test_gpu_check_cube_frames_have_the_stated_edge(monkeypatch):
    """An image smaller than the cube's edge (the real CRISP one is 800 x 800) is mirrored out, not timed smaller."""
    gpu = _load_gpu_script()
    small = np.arange(24 * 24, dtype=np.float32).reshape(24, 24)
    monkeypatch.setattr(gpu, "_crisp_image", lambda n: (small[:n, :n], "small"))
    monkeypatch.setattr(gpu, "PRECISIONS", ())
    res = gpu.part_cube(gpu.torch.device("cpu"), (1, 1, 1, 40))
    assert res["frame_shape"] == [40, 40] and "mirrored out to 40 x 40" in res["data"]


def test_gpu_wheels_requirements_leave_torch_to_the_gpu_machine():
    """The wheels carried to a GPU machine: the package's requirements and the tests' plugin, never torch."""
    spec = importlib.util.spec_from_file_location("gpu_wheels", DOCS.parent / "benchmarks" / "gpu_wheels.py")
    gpu_wheels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_wheels)
    names = {gpu_wheels._name(r) for r in gpu_wheels.requirements()}
    assert "torch" not in names and {"sunpy", "ndcube", "reproject", "dask", "pytest-doctestplus"} <= names
    assert gpu_wheels._name("sunpy[map]>=6.0") == "sunpy"
    assert gpu_wheels._name("Pytest_DoctestPlus") == "pytest-doctestplus"


def test_gpu_check_records_a_failed_part_and_runs_the_others(tmp_path, monkeypatch):
    """GPU time is short: one part's exception must not lose the others' figures, and --docs is then not written."""
    gpu = _load_gpu_script()

    def broken(*args):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(gpu, "part_fulldisk", lambda *args: {"measured": True})
    monkeypatch.setattr(gpu, "part_cube", broken)
    monkeypatch.setattr(gpu, "part_training", lambda *args: {"measured": True})
    out = tmp_path / "gpu.json"
    result = gpu.main(["--dry-run", "--tiny", "--json", str(out)])
    written = json.loads(out.read_text())
    assert written["fulldisk"] == written["training"] == {"measured": True} and "cube" not in written
    assert "CUDA out of memory" in written["failed"]["cube"] and result["failed"].keys() == {"cube"}


def test_the_words_after_the_gpu_table_fit_the_committed_run():
    """docs/guide/performance.rst, after the GPU table: what it says of each case, checked against the JSON."""
    runs = [json.loads(p.read_text()) for p in sorted((DOCS / "_static" / "performance").glob("gpu_*.json"))]
    assert runs, "no GPU run committed: the guide's paragraph after the GPU table speaks of one"
    for run in runs:
        fd, cube, training = run["fulldisk"], run["cube"], run["training"]
        # "sunpy_nn switches it off for its float32 inference, which is then float32 as on a CPU"
        assert run["device"]["inference_tf32"] is False
        assert fd["float32"]["error"] < 1e-5 and cube["float32"]["error"] < 1e-5
        # "bfloat16 ran the U-Net's cube faster than float32 and within the accuracy guard"
        assert cube["bfloat16"]["time_s"] < cube["float32"]["time_s"] and cube["bfloat16"]["error"] <= 1e-3
        # "and both training steps slower"
        assert all(case["bfloat16"]["patches_s"] < case["float32"]["patches_s"] for case in training.values())
        # "its largest gain, Enhance's full disk, is outside the guard"
        assert fd["bfloat16"]["error"] > 1e-3
        gains = {"fulldisk": fd["float32"]["time_s"] / fd["bfloat16"]["time_s"]}
        gains["cube"] = cube["float32"]["time_s"] / cube["bfloat16"]["time_s"]
        assert max(gains, key=gains.get) == "fulldisk"
