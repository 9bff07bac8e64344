"""
The validation science shared by the benchmarks and the docs (`sunpy_nn.validation`), its report writers
(`sunpy_nn.report`) and the Enhance validation report (`sunpy_nn.validation_report`), checked against physics:
Gaussian statistics, Parseval, non-negative PSFs, a limb-darkened disk of known geometry.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage, special

from sunpy_nn.metrics import azimuthal_power_spectrum
from sunpy_nn.report import (
    format_number,
    format_percent,
    jsonable,
    rst_escape,
    rst_list_table,
    status_text,
    target_cell,
    text_table,
)
from sunpy_nn.validation import (
    band_mean_power,
    band_power_ratio,
    darkest_levels,
    held_out_box,
    interior_mask,
    limb_distance,
    limb_geometry,
    limb_profile,
    mean_power_spectrum,
    off_limb_levels,
    quiet_sun_mask,
    rms,
    sign_flip_fraction,
    stokes_error_summary,
    upsample_nearest,
)


def _gaussian_coverage(k: float) -> float:
    return math.erf(k / math.sqrt(2))


def _limb_darkened_disk(shape, centre, radius, factor=1):
    """Eddington limb darkening I(mu) = 0.4 + 0.6 mu on a disk, zero outside, sampled at pixel centres."""
    d = limb_distance(shape, centre, radius, factor)
    r = radius - d
    mu = np.sqrt(np.clip(1 - (r / radius) ** 2, 0, 1))
    return np.where(d > 0, 0.4 + 0.6 * mu, 0.0), d


# ------------------------------------------------------------------------------------------------------ regions
def test_upsample_nearest_keeps_the_mean_and_each_pixel_is_a_block():
    a = np.random.default_rng(0).random((7, 5))
    up = upsample_nearest(a, 3)
    assert up.shape == (21, 15)
    assert up.mean() == pytest.approx(a.mean())
    np.testing.assert_array_equal(up.reshape(7, 3, 5, 3).min(axis=(1, 3)), a)
    np.testing.assert_array_equal(up.reshape(7, 3, 5, 3).max(axis=(1, 3)), a)


def test_interior_mask_leaves_out_a_border_on_every_side():
    m = interior_mask((12, 9), 3)
    assert m.sum() == (12 - 6) * (9 - 6)
    assert not m[:3].any() and not m[-3:].any() and not m[:, :3].any() and not m[:, -3:].any()


@pytest.mark.parametrize("ratio", [0.504 / 0.0662, 0.504 / 0.059, 8.0, 0.504 / 0.0909])
def test_held_out_box_input_pixels_see_only_held_out_scene_columns(ratio):
    # Scene columns 700-1000 are held out of a 1000-column scene; input pixel k covers [k, k + 1) * ratio.
    n_in = int(1000 // ratio)
    lo, hi, border = 700.0, 1000.0, 4
    r0, r1, c0, c1 = held_out_box((50, n_in), (lo, hi), ratio, border)
    assert (r0, r1) == (border, 50 - border)
    first, last = c0 - border, c1 + border  # the box before its border: every input column wholly held out
    assert first * ratio >= lo - 1e-6 and last * ratio <= hi + 1e-6
    assert (first - 1) * ratio < lo  # one column more on the left would reach into the training columns
    assert last == n_in or (last + 1) * ratio > hi


# ------------------------------------------------------------------------------------------- spatial frequencies
def test_white_noise_band_means_are_its_variance_and_band_ratios_of_a_copy_are_one():
    noise = np.random.default_rng(1).normal(0, 0.5, (8, 128, 128))
    f, p = mean_power_spectrum(noise)
    means = band_mean_power(f, p, [(0.1, 0.25), (0.25, 0.5)])
    assert list(means) == ["0.1-0.25", "0.25-0.5"]
    np.testing.assert_allclose(list(means.values()), 0.25, rtol=0.03)  # Parseval: flat at the variance
    assert band_power_ratio(f, p, p, [(0.1, 0.5)]) == {"0.1-0.5": 1.0}


def test_mean_power_spectrum_is_the_average_of_the_frames_spectra():
    frames = np.random.default_rng(2).normal(0, 1, (3, 64, 64))
    f, p = mean_power_spectrum(frames)
    spectra = [azimuthal_power_spectrum(x)[1] for x in frames]
    np.testing.assert_allclose(p, np.mean(spectra, axis=0))
    np.testing.assert_allclose(f, azimuthal_power_spectrum(frames[0])[0])


def test_band_power_ratio_tells_smoothing_from_spurious_power():
    truth = np.random.default_rng(3).normal(0, 1, (256, 256))
    smooth = ndimage.gaussian_filter(truth, 1.5)  # a blurred restoration loses power at high frequencies
    noisy = truth + np.random.default_rng(4).normal(0, 1, truth.shape)  # amplified noise adds it
    f, p_t = azimuthal_power_spectrum(truth)
    bands = [(0.3, 0.45), (5.0, 6.0)]  # the second band holds no frequency: left out
    assert band_power_ratio(f, azimuthal_power_spectrum(smooth)[1], p_t, bands)["0.3-0.45"] < 0.05
    assert band_power_ratio(f, azimuthal_power_spectrum(noisy)[1], p_t, bands) == {
        "0.3-0.45": pytest.approx(2.0, rel=0.05)
    }


def test_band_mean_power_includes_the_nyquist_frequency_and_an_empty_band_is_nan():
    f = np.arange(1, 33) / 64
    p = np.where(f == 0.5, 10.0, 1.0)
    m = band_mean_power(f, p, [(0.45, 0.5), (0.6, 0.7)])
    assert m["0.45-0.5"] > 1  # (lo, hi]: 0.5 counts
    assert math.isnan(m["0.6-0.7"])


# --------------------------------------------------------------------------------------------------- magnetograms
def test_sign_flip_fraction_of_noise_on_a_known_field_is_the_gaussian_tail():
    # |B| = 300 G with 200 G noise: a pixel changes sign with probability Phi(-1.5) = 6.68 %.
    rng = np.random.default_rng(5)
    truth = np.where(rng.random(200_000) < 0.5, 300.0, -300.0)
    noisy = truth + rng.normal(0, 200, truth.shape)
    expected = 0.5 * special.erfc(1.5 / math.sqrt(2))
    assert sign_flip_fraction(noisy, truth, 100) == pytest.approx(expected, abs=0.002)
    # weak pixels (|B| <= threshold) do not count, however often they flip
    weak = np.concatenate([truth, np.full(100_000, 50.0)])
    assert sign_flip_fraction(np.concatenate([noisy, np.full(100_000, -50.0)]), weak, 100) == pytest.approx(
        expected, abs=0.002
    )
    assert sign_flip_fraction(truth, truth, 100) == 0.0


# ------------------------------------------------------------------------------------------------------ continuum
def test_quiet_sun_mask_keeps_away_from_a_pore_by_its_distance_and_from_the_edges():
    img = np.ones((60, 60))
    img[30, 30] = 0.2
    m = quiet_sun_mask(img, distance=6, border=5)
    yy, xx = np.mgrid[0:60, 0:60]
    city_block = np.abs(yy - 30) + np.abs(xx - 30)  # binary dilation with the cross: city-block steps
    inner = interior_mask(img.shape, 5)
    np.testing.assert_array_equal(m, (city_block > 6) & inner)


def test_darkest_levels_of_an_umbra_and_what_blurring_does_to_them():
    # A 1 %-of-the-area umbra at 0.2 I/Ic in granulation-free photosphere at 1.
    img = np.ones((100, 100))
    img[45:55, 45:55] = 0.2
    identity = upsample_nearest(img)
    blurred = ndimage.gaussian_filter(identity, 6)  # a restoration that blurs brightens the umbra
    res = darkest_levels(img, {"same": identity, "blurred": blurred}, level=1.0, percents=(1.0,))
    d = res["darkest_1pct"]
    assert d["pixels"] == 100
    assert d["input"] == pytest.approx(0.2)
    assert d["same"] == pytest.approx(0.2)
    assert d["blurred"] > 0.3
    # the level divides every mean
    res2 = darkest_levels(2 * img, {"same": 2 * identity}, level=2.0, percents=(1.0,))
    assert res2["darkest_1pct"]["input"] == pytest.approx(0.2)


# ------------------------------------------------------------------------------------------------------- the limb
def test_limb_geometry_finds_the_centre_of_a_limb_darkened_disk():
    centre, radius = (1900.3, 187.6), 1900.0  # HMI's 950" radius; the disk lies to the right of the cut-out
    disk, _ = _limb_darkened_disk((400, 300), centre, radius)
    x, y, rms_px = limb_geometry(disk, radius)
    assert x == pytest.approx(centre[0], abs=0.3)
    assert y == pytest.approx(centre[1], abs=0.5)
    assert rms_px < 0.5


def test_limb_distance_on_the_output_grid_averages_to_the_input_distance():
    d_in = limb_distance((20, 30), (100.0, 10.0), 95.0)
    d_out = limb_distance((20, 30), (100.0, 10.0), 95.0, factor=2)
    assert d_out.shape == (40, 60)
    # the four sub-pixels sit symmetrically around their input pixel: the mean distance is the input's (the
    # circle's curvature adds a tiny second-order term)
    np.testing.assert_allclose(d_out.reshape(20, 2, 30, 2).mean(axis=(1, 3)), d_in, atol=1e-3)
    yy, xx = np.mgrid[0:20, 0:30]
    np.testing.assert_array_equal(d_in, 95.0 - np.hypot(xx - 100.0, yy - 10.0))


def test_a_non_negative_psf_makes_no_ringing_and_sharpening_does():
    disk, d = _limb_darkened_disk((200, 120), (400.0, 100.0), 380.0)
    blurred = ndimage.gaussian_filter(disk, 2.0)  # a non-negative PSF: the profile never decreases inwards
    sharpened = disk + 1.5 * (disk - ndimage.gaussian_filter(disk, 2.0))  # unsharp masking: a rim and a dip
    e_blur, e_sharp = limb_profile(blurred, d), limb_profile(sharpened, d)
    assert len(e_blur["profile"]) == len(e_blur["distance_px"]) == 72
    assert e_blur["ringing_inside"] < 1e-3 and e_blur["ringing_outside"] < 1e-3
    assert e_sharp["ringing_inside"] > 0.05
    assert e_sharp["ringing_outside"] > 0.05
    # the blurred disk's light spills beyond the limb; none is left far outside
    off = off_limb_levels(blurred, d, [(0, 2), (2, 6), (6, None)])
    levels = [off["bands"][k]["mean_abs"] for k in ("0-2 px outside", "2-6 px outside", "> 6 px outside")]
    assert levels[0] > levels[1] > levels[2] and levels[2] < 1e-4
    assert off["masked_fraction_beyond_2px"] == 0.0


def test_off_limb_levels_count_masked_pixels_and_divide_by_the_level():
    d = np.array([[4.0, -1.0, -3.0, -3.0, -5.0, -7.0]])
    img = np.array([[2.0, 0.4, 0.2, np.nan, np.nan, -0.2]])
    r = off_limb_levels(img, d, [(0, 2), (2, None)], level=2.0)
    assert r["bands"]["0-2 px outside"] == {"pixels": 1, "mean_abs": 0.2, "p99_abs": 0.2, "max_abs": 0.2}
    assert r["bands"]["> 2 px outside"]["pixels"] == 2
    assert r["masked_fraction_beyond_2px"] == 0.5
    assert r["mean_abs_beyond_2px"] == pytest.approx(0.1)
    everything_masked = off_limb_levels(np.full(d.shape, np.nan), d, [(0, 2)], beyond=2)
    assert everything_masked["bands"] == {} and everything_masked["mean_abs_beyond_2px"] is None
    assert off_limb_levels(img, d, [], beyond=4)["masked_fraction_beyond_4px"] == pytest.approx(1 / 2)


# ------------------------------------------------------------------------------------------------------ denoising
def test_rms_accumulates_in_float64():
    a = np.full(10_000_000, 1e-3, np.float32)  # float32 accumulation would drift
    assert rms(a) == pytest.approx(1e-3, rel=1e-6)


def test_stokes_error_summary_of_gaussian_noise_with_a_calibrated_and_a_doubled_uncertainty():
    rng = np.random.default_rng(6)
    sigma = 3e-3
    truth = np.zeros((2, 4, 3, 48, 48))
    truth[:, 3, :, :24] = 20 * sigma  # a strong Stokes V region
    noisy = truth + rng.normal(0, sigma, truth.shape)
    r = stokes_error_summary(noisy, truth, sigma, np.full(truth.shape, sigma), k=[1.0, 2.0, 3.0])
    for s in "QUV":
        assert r[f"rms_{s}"] == pytest.approx(1.0, abs=0.02)
    assert [b["low"] for b in r["bins"]] == [0, 1, 3, 10]
    assert r["bins"][3]["n"] == 2 * 3 * 48 * 24  # the strong V pixels
    assert r["bins"][0]["rms"] == pytest.approx(1.0, abs=0.02)
    assert r["coverage"]["1sigma"] == pytest.approx(_gaussian_coverage(1), abs=0.01)
    assert r["coverage"]["2sigma"] == pytest.approx(_gaussian_coverage(2), abs=0.005)
    np.testing.assert_allclose(r["reliability"], [_gaussian_coverage(k) for k in (1, 2, 3)], atol=0.01)
    assert r["z"]["rms"] == pytest.approx(1.0, abs=0.01) and r["z"]["kurtosis"] == pytest.approx(3.0, abs=0.1)
    # the error bars by the signal's strength: calibrated in the quiet bins and in the strong V region alike
    z_bins = r["z_by_strength"]
    assert [b["n"] for b in z_bins] == [b["n"] for b in r["bins"]]
    assert z_bins[3]["rms"] == pytest.approx(1.0, abs=0.03) and z_bins[3]["coverage"][0] == pytest.approx(
        0.683, abs=0.02
    )
    wide = stokes_error_summary(noisy, truth, sigma, np.full(truth.shape, 2 * sigma))  # error bars twice too wide
    assert wide["coverage"]["1sigma"] == pytest.approx(_gaussian_coverage(2), abs=0.005)
    assert wide["z"]["rms"] == pytest.approx(0.5, abs=0.01)
    assert all(b["rms"] == pytest.approx(0.5, abs=0.02) for b in wide["z_by_strength"] if b["n"])
    assert "reliability" not in wide
    plain = stokes_error_summary(noisy, truth, sigma)
    assert "coverage" not in plain and "z" not in plain and "z_by_strength" not in plain
    # NaN pixels (masked) are ignored by the rms
    noisy[0, 1, 0, 0, 0] = np.nan
    assert math.isfinite(stokes_error_summary(noisy, truth, sigma)["rms_Q"])


# ------------------------------------------------------------------------------------------------------- reports
def test_rst_list_table_escapes_markup_and_strips_or_keeps_trailing_blanks():
    lines = rst_list_table("Signs where |B| > 100 G", ["quantity", "v1"], [["flips_vs_input", ""]])
    assert lines[0] == r".. list-table:: Signs where \|B\| > 100 G"
    assert lines[1:3] == ["   :header-rows: 1", ""]
    assert r"   * - flips\_vs\_input" in lines
    assert lines[-2:] == ["     -", ""]
    raw = rst_list_table("", ["a", "b"], [["pca_denoise", ""]], escape=False, strip=False)
    assert raw[0] == ".. list-table::"
    assert "   * - pca_denoise" in raw and "     - " in raw
    assert rst_escape("a\\b") == "a\\\\b"


def test_text_table_aligns_columns():
    text = text_table("T", ["name", "value"], [["a", 1.5], ["long name", 10]])
    lines = text.splitlines()
    assert lines[:2] == ["", "T"]
    assert len({len(line) for line in lines[2:]}) == 1  # every row as wide as the rules
    assert lines[6].startswith("long name") and lines[6].endswith("10")


def test_target_cells_status_and_formats():
    assert status_text(target_cell(0.5, format_percent, lambda x: x < 0.6)["met"]) == "MET"
    assert status_text(target_cell(0.7, format_percent, lambda x: x < 0.6)["met"]) == "NOT MET"
    missing = target_cell(None, format_percent, lambda x: x < 0.6)
    assert missing == {"value": None, "text": "n/a", "met": None} and status_text(missing["met"]) == "n/a"
    assert format_percent(0.01234, 3) == "1.234 %"
    assert format_number(float("inf")) == "n/a" and format_number(2, ".1f") == "2.0"


def test_jsonable_writes_strict_json():
    obj = {
        "a": np.float32(0.5),
        "b": [np.int64(2), (np.bool_(True), np.nan, -np.inf)],
        "c": np.float64(np.nan),
        "_image": np.zeros(3),
        3: "x",
    }
    out = jsonable(obj, drop_private=True)
    assert json.loads(json.dumps(out, allow_nan=False)) == {"a": 0.5, "b": [2, [True, None, None]], "c": None, "3": "x"}
    assert "_image" in jsonable({"_image": 1.0})


def test_validation_report_targets_and_rst_from_a_summary():
    from sunpy_nn.validation_report import TARGETS, held_out_targets, report_tables, summary_rst

    scores = {"bicubic": {"psnr_db": 30.0}, "rl": {"psnr_db": 32.0}}
    scores["v2"] = {"psnr_db": 34.0, "gain_vs_bicubic_db": 4.0, "gain_vs_rl_db": 2.0}
    case = {"frame": "gst_niris", "kind": "blos", "detector": "point", "rl_best_iterations": 40, "scores": scores}
    rows = held_out_targets([case])
    assert [r["target"] for r in rows] == [f">= +{TARGETS['gain_vs_bicubic_db']:g} dB", ">= +0.5 dB"]
    assert rows[0]["v1"]["met"] is None and rows[0]["v2"] == {"value": 4.0, "text": "+4.00 dB", "met": True}
    assert rows[1]["check"] == "GST/NIRIS magnetogram held out, point detector: PSNR - best RL (40 it.)"
    assert callable(report_tables) and callable(summary_rst)


DOCS_VALIDATION = Path(__file__).resolve().parents[1] / "docs" / "_static" / "validation"


@pytest.mark.skipif(not (DOCS_VALIDATION / "summary.json").exists(), reason="the docs' validation report is absent")
def test_the_docs_validation_report_is_written_by_the_package():
    # The committed summary.inc came from the committed summary.json (benchmarks/validate_enhance.py --docs): the
    # package's writer and targets reproduce both, byte for byte.
    from sunpy_nn.validation_report import held_out_targets, real_targets, summary_rst

    summary = json.loads((DOCS_VALIDATION / "summary.json").read_text())
    assert summary_rst(summary, "/_static/validation/") == (DOCS_VALIDATION / "summary.inc").read_text()
    rl_real = summary["settings"]["rl_iterations_real_data"]
    targets = held_out_targets(summary["held_out"])
    targets += real_targets(summary["continuum"], summary["blos"], summary["limb"], rl_real)
    assert targets == summary["targets"]
