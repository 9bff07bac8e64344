"""
The Keras comparison benchmark (issue #16): its smoke run, where TensorFlow is installed, its roofline floor (FLOP
counts, peak and floor arithmetic, which need no TensorFlow) and its docs table.

TensorFlow is a benchmark-only extra (``keras-bench``), never a dependency of sunpy_nn: without it the smoke run is
skipped, and the table is tested on a hand-made result.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generated_keras():
    return _load("generated_keras", ROOT / "docs" / "_ext" / "generated_keras.py")


@pytest.fixture(scope="module")
def bench():
    """benchmarks/keras_originals.py as a module (TensorFlow is imported only by its main)."""
    return _load("keras_originals", ROOT / "benchmarks" / "keras_originals.py")


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="TensorFlow is not installed: it is the optional benchmark extra keras-bench (pip install tensorflow-cpu)",
)
def test_quick_run_writes_its_json_and_both_frameworks_agree(tmp_path):
    out = tmp_path / "keras.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "keras_originals.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    for key in ("sunpy_nn_version", "date", "threads", "torch_version", "tensorflow_version", "repeats", "cases"):
        assert key in r
    assert r["quick"] is True and r["threads"] == 1
    assert r["cpu"]["class"] and r["cpu"]["model"] and "avx2" in r["cpu"]["flags"]
    assert list(r["cases"]) == ["enhance", "unet", "train_n2n", "train_enhance"]
    for case in r["cases"].values():
        assert case["ours_s"] > 0 and case["keras_s"] > 0
        assert case["ratio"] == pytest.approx(
            sorted(a / b for a, b in zip(case["ours_times_s"], case["keras_times_s"], strict=True))[0]
        )  # one round in --quick: the median is that round's ratio
    for key in ("enhance", "unet"):
        agree = r["cases"][key]["agreement"]
        assert agree["guard_ok"] and agree["relative"] <= 1e-3, agree  # the same computation in both frameworks
        assert r["cases"][key]["met"] in (True, False)
    for key in ("train_n2n", "train_enhance"):
        case = r["cases"][key]
        assert case["met"] is None and case["ours_patches_s"] == pytest.approx(case["batch"] / case["ours_s"])
    if r["golden"] is not None:  # the Keras rebuild reproduces the original network's saved output
        assert r["golden"]["relative"] <= 1e-5
    peak = r["peak"]
    assert peak["gflops"] == max(peak["mm_gflops"], peak["conv_gflops"]) > 0 and peak["threads"] == 1
    for key in ("enhance", "unet"):
        case = r["cases"][key]
        assert case["gflop"] >= case["gflop_optimised"]
        # Winograd's convolutions (Enhance on AVX2 CPUs) count 64 multiply-adds per 6 x 6 outputs and channel pair,
        # the direct convolution 324: counted as direct, the timed call ran at least the optimised module's FLOPs
        assert 0 <= case["gflop_winograd"] <= case["gflop_executed"]
        as_direct = case["gflop_executed"] + case["gflop_winograd"] * (324 / 64 - 1)
        assert as_direct >= case["gflop_optimised"] * (1 - 1e-9)
        # the peak that sets the floor: never below the rate either side reached in the case, never above the
        # run's best measured peak or those rates (the peak is measured again after each case)
        assert case["peak_gflops"] >= max(case["gflop"] / case["keras_s"], case["gflop_executed"] / case["ours_s"])
        assert case["peak_gflops"] <= max(peak["gflops"], case["gflop"] / case["keras_s"], case["executed_gflops"])
        assert case["floor_ratio"] == pytest.approx(case["gflop"] / case["peak_gflops"] / case["keras_s"])
    assert r["cases"]["enhance"]["gflop_optimised"] < r["cases"]["enhance"]["gflop"]  # sub-pixel up-convolution
    assert "floor_s" not in r["cases"]["train_n2n"]


# ------------------------------------------------------------------------------------------------------ roofline
def test_conv_flops_counts_hand_computed_convolutions(bench):
    conv = torch.nn.Conv2d(2, 3, 3)  # 7 x 8 in, 5 x 6 out
    assert bench.conv_flops(conv, (1, 2, 7, 8)) == 5 * 6 * 3 * 2 * 9 * 2
    # batch, groups and a 1x1: each convolution counted once per output element, inputs per group only
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, padding=1, groups=2), torch.nn.ReLU(), torch.nn.Conv2d(6, 1, 1))
    assert bench.conv_flops(net, (2, 4, 5, 6)) == 2 * 5 * 6 * (6 * 2 * 9 + 1 * 6) * 2
    assert bench.module_flops(net, (2, 4, 5, 6)) == bench.conv_flops(net, (2, 4, 5, 6))  # torch's counter agrees


def test_conv_flops_of_enhance_and_its_optimised_module(bench):
    from sunpy_nn.nn import EnhanceNet, FastEnhance

    d, f, h, w = 2, 8, 10, 12
    net = EnhanceNet(depth=d, n_filters=f)
    # head, 2d block convolutions and the body at h x w; the up-convolution (3x3) and 1x1 tail at 2h x 2w
    paper = 2 * (h * w * (9 * f + (2 * d + 1) * 9 * f * f) + 4 * h * w * (9 * f * f + f))
    assert bench.conv_flops(net, (1, 1, h, w)) == paper
    # FastEnhance: the head as a matrix product, four 2x2 sub-pixel kernels and a dense 4 x 4f tail on the
    # (h + 1) x (w + 1) grid of phases
    fast = FastEnhance(net.eval())
    optimised = 2 * (h * w * (9 * f + (2 * d + 1) * 9 * f * f) + (h + 1) * (w + 1) * (16 * f * f + 16 * f))
    assert bench.module_flops(fast, (1, 1, h, w)) == optimised < paper


def test_roofline_arithmetic(bench):
    case = {"gflop": 100.0, "gflop_optimised": 80.0, "gflop_executed": 90.0, "ours_s": 2.0, "keras_s": 1.6}
    got = bench.roofline(case, {"gflops": 125.0, "source": "mm"})
    want = {
        "peak_gflops": 125.0,
        "floor_s": 0.8,  # 100 GFLOP at 125 GFLOP/s
        "floor_ratio": 0.5,  # 0.8 s of Keras' 1.6 s
        "floor_peak": "mm",
        "ours_gflops": 50.0,
        "keras_gflops": 62.5,
        "floor_optimised_s": 0.64,
        "floor_optimised_ratio": 0.4,
        "executed_gflops": 45.0,
    }
    assert got == pytest.approx(want)
    # a side faster than the measured peak shows the peak was measured low: its own rate sets the floor
    got = bench.roofline(case, {"gflops": 40.0, "source": "mm"})
    assert got["floor_peak"] == "Keras' own rate" and got["peak_gflops"] == pytest.approx(62.5)
    assert got["floor_ratio"] == pytest.approx(1.0)  # Keras at the peak: nothing exact can be faster


def test_measure_peak_reports_both_and_keeps_the_larger(bench, monkeypatch):
    monkeypatch.setattr(bench, "PEAK_MM", 64)  # small: this checks the bookkeeping, not the CPU
    monkeypatch.setattr(bench, "PEAK_CONV", (8, 32))
    peak = bench.measure_peak(repeats=1)
    assert peak["mm_gflops"] > 0 and peak["conv_gflops"] > 0
    assert peak["gflops"] == max(peak["mm_gflops"], peak["conv_gflops"])
    assert peak["source"] == ("mm" if peak["mm_gflops"] >= peak["conv_gflops"] else "conv")
    assert "64 x 64" in peak["mm"] and "8 -> 8 3x3 on 32 x 32" in peak["conv"]
    assert peak["threads"] == torch.get_num_threads() and peak["repeats"] == 1


def _result(cls: str, threads: int, ratio: float, model: str = "Test CPU") -> dict:
    return {
        "sunpy_nn_version": "0.1.dev1+gabc",
        "date": "2026-12-01 10:00",
        "cpu": {"class": cls, "model": model},
        "threads": threads,
        "repeats": 5,
        "torch_version": "2.13.0",
        "tensorflow_version": "2.21.0",
        "cases": {
            "unet": {"label": "U-Net 800 x 800", "kind": "time", "ours_s": 1.234, "keras_s": 2.0, "ratio": ratio}
            | {"target": 0.7, "met": ratio <= 0.7},
            "train_n2n": {
                "label": "Noise2Noise training, batch 10 of 52 x 52",
                "kind": "throughput",
                "ours_s": 0.1,
                "keras_s": 0.2,
                "ours_patches_s": 100.0,
                "keras_patches_s": 50.0,
                "ratio": 0.5,
                "target": None,
                "met": None,
            },
        },
    }


def test_keras_table_one_table_per_cpu_class():
    table = _generated_keras().keras_table([_result("AVX2", 1, 0.8, "Laptop"), _result("AVX-512", 2, 0.6, "Server")])
    assert table.count(".. list-table::") == 2
    # Classes in alphabetical order, each with its own runs only.
    avx512, avx2 = table.split("Measured on ")[1:]  # each class: its runs named, then its table
    assert avx512.startswith("Server, 2 thread(s)") and "AVX-512 class" in avx512 and "AVX2" not in avx512
    assert avx2.startswith("Laptop, 1 thread(s)") and "AVX2 class" in avx2 and "Server" not in avx2
    rows = [line.strip() for line in avx2.splitlines()]
    i = rows.index("* - U-Net 800 x 800")
    assert rows[i + 1 : i + 8] == ["- 1", "- 1.23 s", "- 2.00 s", "- 0.80", "- n/a", "- at most 0.7", "- no"]
    i = rows.index("* - Noise2Noise training, batch 10 of 52 x 52")
    assert rows[i + 2 : i + 8] == ["- 100.0 patches/s", "- 50.0 patches/s", "- 0.50", "- n/a", "- report only", "- n/a"]
    assert "- yes" in avx512  # 0.6 meets the 0.7 target
    # results from before the roofline: the floor column says n/a, and the paragraph after the table says why
    assert "No roofline floor was measured for these runs (n/a)" in avx2
    assert _generated_keras().keras_table([]) == ""


def test_keras_table_keeps_capped_kernels_apart_from_real_cpus_of_their_class():
    """An AVX-512 CPU run with AVX2 kernels (``--isa avx2``) gets its own table, which names the cap."""
    capped = _result("AVX2-capped", 1, 0.62, "Server")
    capped["cpu"]["isa_cap"] = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    table = _generated_keras().keras_table([_result("AVX2", 1, 0.8, "Laptop"), capped])
    assert table.count(".. list-table::") == 2
    avx2, avx2_capped = table.split("Measured on ")[1:]
    assert "Server" not in avx2 and "capped" not in avx2
    assert avx2_capped.startswith("Server with its kernels capped (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2)")
    assert "AVX2-capped class" in avx2_capped and "- yes" in avx2_capped  # 0.62 meets the 0.7 target


def test_cpu_class_of_capped_kernels():
    """The class is that of the kernels that run; a cap never makes a server pass for a real AVX2 CPU."""
    report = _load("run_report", ROOT / "benchmarks" / "_run_report.py")
    avx512 = {"avx2": True, "avx512f": True}
    assert report.cpu_class(avx512, "AVX512", {}) == "AVX-512"
    assert report.cpu_class({"avx2": True, "avx512f": False}, "AVX2", {}) == "AVX2"
    assert report.cpu_class(avx512, "AVX2", report.ISA_CAPS["avx2"]) == "AVX2-capped"
    # only oneDNN capped: torch's own kernels still AVX-512, but the run is marked as capped all the same
    assert report.cpu_class(avx512, "AVX512", {"ONEDNN_MAX_CPU_ISA": "AVX2"}) == "AVX-512-capped"


@pytest.mark.skipif(
    "avx2" not in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else True,
    reason="capping kernels to AVX2 needs an x86-64 CPU with AVX2 (read from /proc/cpuinfo)",
)
def test_cap_isa_restarts_the_script_with_avx2_kernels(tmp_path):
    script = tmp_path / "capped.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        "import _run_report as report\n"
        "report.cap_isa('avx2')\n"
        "info = report.cpu_info()\n"
        "print(json.dumps({k: info[k] for k in ('class', 'torch_capability', 'isa_cap')}))\n"
    )
    # started uncapped, whatever the caps of the test run itself (a suite run with them set, as an AVX2 emulation)
    caps = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
    env = {k: v for k, v in os.environ.items() if k not in caps}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("re-running with ONEDNN_MAX_CPU_ISA=AVX2")  # said before it starts again
    info = json.loads(proc.stdout.splitlines()[-1])
    assert info["torch_capability"] == "AVX2" and info["class"] == "AVX2-capped"
    assert info["isa_cap"] == {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    }


def _with_floor(result: dict) -> dict:
    """A result of a run that measured the roofline: the peak, and the floors of two inference cases."""
    result["peak"] = {"gflops": 160.4, "source": "mm", "mm_gflops": 160.4, "conv_gflops": 150.0}
    result["cases"]["unet"] |= {"gflop": 222.3, "gflop_optimised": 222.3, "floor_ratio": 0.693}
    result["cases"]["unet"]["floor_optimised_ratio"] = 0.693
    result["cases"] = {
        "enhance": {"label": "Enhance 400 x 400", "kind": "time", "ours_s": 1.5, "keras_s": 1.6, "ratio": 0.94}
        | {"target": 0.5, "met": False, "gflop": 177.2, "gflop_optimised": 152.0}
        | {"floor_ratio": 0.69, "floor_optimised_ratio": 0.592},
        **result["cases"],
    }
    return result


def test_keras_table_shows_the_roofline_floor():
    table = _generated_keras().keras_table([_with_floor(_result("AVX-512", 1, 0.8))])
    rows = [line.strip() for line in table.splitlines()]
    assert rows[rows.index("- ratio (time, ours / Keras)") + 1] == "- floor (roofline)"
    i = rows.index("* - Enhance 400 x 400")
    assert rows[i + 4 : i + 8] == ["- 0.94", "- 0.69", "- at most 0.5", "- no"]
    i = rows.index("* - U-Net 800 x 800")
    assert rows[i + 4 : i + 6] == ["- 0.80", "- 0.69"]
    i = rows.index("* - Noise2Noise training, batch 10 of 52 x 52")
    assert rows[i + 5] == "- n/a"  # training is not floored
    text = " ".join(rows)
    assert "Enhance 400 x 400, 1 thread(s): 160 GFLOP/s, from the matrix product" in text
    assert "U-Net 800 x 800, 1 thread(s): 160 GFLOP/s, from the matrix product" in text
    assert "lowest ratio any exact float32 direct-convolution implementation" in text
    # only Enhance computes fewer FLOPs in the package's optimised network
    assert "its floor: Enhance 400 x 400, 1 thread(s): 0.59." in text
    assert "U-Net 800 x 800, 1 thread(s): 0." not in text
    assert "No roofline floor" not in text


def test_keras_table_is_valid_rst():
    docutils = pytest.importorskip("docutils.core")
    # Warnings halt the parse: a malformed table would raise here.
    tree = docutils.publish_doctree(
        _generated_keras().keras_table([_result("AVX2", 1, 0.8), _with_floor(_result("AVX2", 2, 0.65))]),
        settings_overrides={"report_level": 2, "halt_level": 2},
    )
    text = tree.astext()
    assert sum(1 for _ in tree.findall(lambda n: n.tagname == "table")) == 1
    assert text.count("U-Net 800 x 800") == 3  # two table rows and the peak of the run with a floor
    assert "floor (roofline)" in text and "direct-convolution" in text
