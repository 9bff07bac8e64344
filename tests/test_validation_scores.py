"""
The scores of the Enhance validation report (`sunpy_nn.validation_report.held_out_scores`, `continuum_scores` and
`magnetogram_scores`, with which ``benchmarks/validate_enhance.py`` fills its ``summary.json``), checked on images
whose answers are known: offsets, nearest-neighbour copies and sign inversions.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from sunpy_nn.metrics import psnr
from sunpy_nn.utils import upsample_nearest
from sunpy_nn.validation import quiet_sun_mask
from sunpy_nn.validation_report import continuum_scores, held_out_scores, held_out_targets, magnetogram_scores


def _granulation(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth random intensity pattern around 1 (a few % contrast)."""
    noise = np.random.default_rng(seed).standard_normal(shape)
    return 1 + 0.3 * ndimage.gaussian_filter(noise, 2.0, mode="wrap")


def test_held_out_scores_of_known_outputs():
    truth = _granulation((64, 64))
    low = truth.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    noise = np.random.default_rng(1).normal(0, 0.01, truth.shape)
    outputs = {
        "bicubic": ndimage.gaussian_filter(truth, 1.5, mode="wrap"),  # smoother than the truth
        "rl": truth + 0.02,  # a level offset: the bias, and no change of the power above zero frequency
        "v1": truth + noise,
        "v2": truth + 0.3 * noise,
    }
    r = held_out_scores(outputs, truth, low, "intensity", 0.5, [(0.5, 1.0), (1.0, 1.5)])

    assert r["data_range"] == pytest.approx(truth.max() - truth.min())
    sc = r["scores"]
    assert list(sc) == list(outputs)
    assert sc["rl"]["mean_bias"] == pytest.approx(0.02)
    assert sc["v1"]["mean_bias"] == pytest.approx(noise.mean())
    assert sc["rl"]["ssim"] > 0.99
    assert sc["v2"]["psnr_db"] == pytest.approx(psnr(outputs["v2"], truth, r["data_range"]))
    assert sc["v2"]["psnr_db"] - sc["v1"]["psnr_db"] == pytest.approx(-20 * np.log10(0.3), abs=0.2)  # rms x 0.3
    for v in ("v1", "v2"):
        assert sc[v]["gain_vs_bicubic_db"] == pytest.approx(sc[v]["psnr_db"] - sc["bicubic"]["psnr_db"])
        assert sc[v]["gain_vs_rl_db"] == pytest.approx(sc[v]["psnr_db"] - sc["rl"]["psnr_db"])
    assert "gain_vs_bicubic_db" not in sc["bicubic"]

    assert set(r["spectra"]) == {"truth", "input", *outputs}
    f_in, _ = r["spectra"]["input"]
    f_out, _ = r["spectra"]["truth"]
    assert f_out.max() == pytest.approx(2 * f_in.max(), rel=0.1)  # the outputs' pixels are half the size
    assert list(r["power_ratio_bands"]) == ["0.5-1", "1-1.5"]
    for band in r["power_ratio_bands"].values():
        assert band["rl"] == pytest.approx(1.0, rel=1e-6)  # an offset leaves these frequencies alone
        assert band["v1"] > band["v2"] > 1  # added white noise adds power
        assert band["bicubic"] < 1  # smoothing takes power from the small scales
    assert r["signs_over_100G"] is None

    case = {"frame": "sst_sunspot", "kind": "intensity", "detector": "point", "rl_best_iterations": 20, "scores": sc}
    rows = held_out_targets([case])  # the report judges what these scores return
    assert [row["v2"]["value"] for row in rows] == [sc["v2"]["gain_vs_bicubic_db"], sc["v2"]["gain_vs_rl_db"]]


def test_held_out_scores_count_the_signs_of_a_magnetogram():
    truth = np.where(np.arange(32)[None, :] < 16, 0.5, -0.5) * np.ones((32, 1))  # kG, two polarities
    truth[:, 15:17] = 0.01  # weak fields: not counted
    low = truth[::2, ::2]
    outputs = {"bicubic": truth.copy(), "rl": -truth, "v1": np.abs(truth)}
    s = held_out_scores(outputs, truth, low, "blos", 0.5, [(0.5, 1.0)])["signs_over_100G"]
    assert s["wrong_sign_vs_truth"] == {"bicubic": 0.0, "rl": 1.0, "v1": pytest.approx(0.5, abs=0.05)}
    assert s["flips_vs_input"]["rl"] == 1.0
    assert 0 <= s["truth_flips_vs_input"] < 0.1  # only at the boundary between the polarities


def test_continuum_scores_of_nearest_neighbour_copies():
    image = _granulation((60, 60), seed=2)
    image[40:48, 40:48] = 0.2  # an umbra
    level = 5.0e4  # DN/s of the quiet Sun
    outputs = {"rl": upsample_nearest(image * level), "v1": upsample_nearest(image * level) * 1.1}
    r = continuum_scores(image * level, outputs, level, 9)

    assert r["quiet_sun_level"] == level
    assert r["quiet_sun_pixels"] == int(quiet_sun_mask(image).sum()) > 0
    # A copy of every pixel into 2 x 2 keeps the contrast and the darkest levels; a gain keeps the contrast.
    assert r["contrast"]["rl"] == pytest.approx(r["contrast"]["input"], rel=1e-9)
    assert r["contrast"]["v1"] == pytest.approx(r["contrast"]["input"], rel=1e-9)
    assert r["darkest_1pct"]["input"] == pytest.approx(0.2)
    assert r["darkest_1pct"]["rl"] == pytest.approx(0.2)
    assert r["darkest_1pct"]["v1"] == pytest.approx(0.22)
    assert 0 < r["forward_consistency"]["rl"] < r["forward_consistency"]["v1"]  # a 10 % gain is 10 % off

    flat = continuum_scores(np.full((40, 40), 3.0), {"v2": np.full((80, 80), 3.0)}, 3.0, 9)
    assert flat["forward_consistency"]["v2"] == pytest.approx(0.0, abs=1e-12)
    assert flat["contrast"] == {"input": pytest.approx(0.0, abs=1e-12), "v2": pytest.approx(0.0, abs=1e-12)}


def test_magnetogram_scores_of_copies_and_inversions():
    b = np.zeros((40, 40))
    b[5:20, 5:20] = 1000.0  # G
    b[22:35, 22:35] = -600.0
    copy = upsample_nearest(b)
    r = magnetogram_scores(b, {"bicubic": copy, "v1": -copy, "v2": 1.05 * copy}, 1e16, 4)

    assert r["pixels_over_100G_output"] == 4 * (15 * 15 + 13 * 13)
    assert r["pixels_over_500G_input_interior"] == 15 * 15 + 13 * 13
    assert r["unsigned_flux_mx"]["input"] == pytest.approx((15 * 15 * 1000 + 13 * 13 * 600) * 1e16)
    assert r["flux_ratio"] == {"bicubic": pytest.approx(1.0), "v1": pytest.approx(1.0), "v2": pytest.approx(1.05)}
    assert r["sign_flip_fraction"] == {"bicubic": 0.0, "v1": 1.0, "v2": 0.0}
    assert r["median_out_over_in_0.8_1.2_kG"] == {"bicubic": 1.0, "v1": -1.0, "v2": pytest.approx(1.05)}
    assert 0 <= r["forward_consistency_over_500G"]["bicubic"] < r["forward_consistency_over_500G"]["v1"]

    weak = magnetogram_scores(np.full((20, 20), 600.0), {"v1": np.full((40, 40), 600.0)}, 1.0, 4)
    assert weak["median_out_over_in_0.8_1.2_kG"] == {"v1": None}  # no pixel of 0.8-1.2 kG
