"""
The Keras comparison benchmark (issue #16): its smoke run, where TensorFlow is installed, and its docs table.

TensorFlow is a benchmark-only extra (``keras-bench``), never a dependency of sunpy_nn: without it the smoke run is
skipped, and the table is tested on a hand-made result.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _generated_keras():
    spec = importlib.util.spec_from_file_location("generated_keras", ROOT / "docs" / "_ext" / "generated_keras.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    assert rows[i + 1 : i + 7] == ["- 1", "- 1.23 s", "- 2.00 s", "- 0.80", "- at most 0.7", "- no"]
    i = rows.index("* - Noise2Noise training, batch 10 of 52 x 52")
    assert rows[i + 2 : i + 7] == ["- 100.0 patches/s", "- 50.0 patches/s", "- 0.50", "- report only", "- n/a"]
    assert "- yes" in avx512  # 0.6 meets the 0.7 target
    assert _generated_keras().keras_table([]) == ""


def test_keras_table_is_valid_rst():
    docutils = pytest.importorskip("docutils.core")
    # Warnings halt the parse: a malformed table would raise here.
    tree = docutils.publish_doctree(
        _generated_keras().keras_table([_result("AVX2", 1, 0.8), _result("AVX2", 2, 0.65)]),
        settings_overrides={"report_level": 2, "halt_level": 2},
    )
    text = tree.astext()
    assert sum(1 for _ in tree.findall(lambda n: n.tagname == "table")) == 1
    assert text.count("U-Net 800 x 800") == 2
