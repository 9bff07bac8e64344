"""The denoising measurements of `sunpy_nn.validation_denoise`, on inputs with known answers (Gaussian noise)."""

from __future__ import annotations

import numpy as np
import pytest

from sunpy_nn.validation import mean_power_spectrum
from sunpy_nn.validation_denoise import (
    calibration_summary,
    denoising_bars,
    power_spectra,
    single_image_noise,
    stokes_errors,
)

NOISE = 0.01


@pytest.fixture(scope="module")
def gaussian():
    truth = np.zeros((3, 4, 2, 64, 64))
    truth[:, 1:, :, :8] = 1.0  # a strong patch in Q, U and V: 8 of 64 rows
    noise = np.random.default_rng(0).normal(0, NOISE, truth.shape)
    return truth, noise


def test_stokes_errors_of_scaled_noise(gaussian):
    truth, noise = gaussian
    sigma = np.full(truth.shape, NOISE / 10)  # calibrated for an error of noise / 10
    r = stokes_errors(truth + noise, truth + noise / 10, truth + noise / 2, truth, sigma, NOISE)
    assert list(r) == ["Q", "U", "V"]
    for s, name in ((1, "Q"), (2, "U"), (3, "V")):
        x = r[name]
        rms_in = float(np.sqrt(np.mean(noise[:, s] ** 2)))
        assert x["rms_input"] == pytest.approx(rms_in, rel=1e-12)
        assert x["rms_n2n"] == pytest.approx(rms_in / 10, rel=1e-12)
        assert x["rms_pca"] == pytest.approx(rms_in / 2, rel=1e-12)
        assert x["residual_std_over_noise"] == pytest.approx(0.9, rel=0.02)
        assert x["fraction_strong_pixels"] == pytest.approx(8 / 64)
        assert x["rms_n2n_strong_pixels"] == pytest.approx(rms_in / 10, rel=0.05)
        assert x["frac_within_1sigma"] == pytest.approx(0.683, abs=0.01)
        assert x["frac_within_2sigma"] == pytest.approx(0.954, abs=0.01)
        assert x["median_sigma"] == pytest.approx(NOISE / 10)
        assert x["frames_averaged_equivalent"] == pytest.approx(100, rel=0.05)


def test_stokes_errors_without_strong_pixels_gives_none(gaussian):
    _, noise = gaussian
    zero = np.zeros_like(noise)
    r = stokes_errors(noise, noise / 10, zero, zero, np.full(noise.shape, NOISE), NOISE)
    assert r["V"]["rms_n2n_strong_pixels"] is None and r["V"]["fraction_strong_pixels"] == 0.0


def _stokes(n2n, pca, resid):
    return {s: {"rms_n2n": n2n, "rms_pca": pca, "residual_std_over_noise": resid} for s in "QUV"}


def test_denoising_bars_pass_and_fail_at_their_thresholds():
    assert denoising_bars(_stokes(2e-3, 3e-3, 1.05), NOISE) == {
        "bar_rms_pass": True,
        "bar_residual_pass": True,
        "bar_beats_pca_pass": True,
    }
    assert denoising_bars(_stokes(2.1e-3, 2e-3, 0.85), NOISE) == {
        "bar_rms_pass": False,
        "bar_residual_pass": False,
        "bar_beats_pca_pass": False,
    }


def test_calibration_summary_of_gaussian_errors(gaussian):
    truth, noise = gaussian
    sigma = np.full(truth.shape, NOISE)
    c = calibration_summary(truth + noise, truth, sigma, truth[:2] + noise[:2], 2 * sigma[:2], 3)
    for part in ("aleatoric_all_scans", "aleatoric_2_scans"):
        assert c[part]["frac_within_1sigma"] == pytest.approx(0.683, abs=0.01)
        assert c[part]["frac_within_2sigma"] == pytest.approx(0.954, abs=0.01)
    t = c["total_2_scans"]
    assert list(t) == ["mc_samples", "frac_within_1sigma", "frac_within_2sigma", "median_sigma"]
    assert t["mc_samples"] == 3 and t["median_sigma"] == pytest.approx(2 * NOISE)
    assert t["frac_within_1sigma"] == pytest.approx(0.954, abs=0.01)  # error bars twice too wide: the 2-sigma fraction


def test_power_spectra_names_and_frequencies():
    frames = np.random.default_rng(1).normal(size=(2, 32, 32))
    spectra = power_spectra({"a": frames, "b": 2 * frames}, pixel_scale=0.5)
    f, p = mean_power_spectrum(frames)
    assert list(spectra) == ["a", "b", "freq_per_arcsec"]
    np.testing.assert_allclose(spectra["a"], p)
    np.testing.assert_allclose(spectra["b"], 4 * p)
    np.testing.assert_allclose(spectra["freq_per_arcsec"], f / 0.5)


def test_single_image_noise_of_a_flat_image_plus_white_noise():
    rng = np.random.default_rng(2)
    clean = np.ones((128, 128))
    clean[:64, :64] = 0.5  # the quietest block is flat in the denoised image, noisy in the input
    noise = rng.normal(0, NOISE, clean.shape)
    r = single_image_noise(clean + noise, clean, np.full(clean.shape, NOISE), ((0, 0.25), (0.25, 0.5)), np.std)
    assert r["std_residual"] == pytest.approx(NOISE, rel=0.02)
    assert r["estimate_noise_residual"] == pytest.approx(r["std_residual"])
    assert r["estimate_noise_output"] == pytest.approx(0.5 * np.sqrt(0.25 * 0.75))  # a quarter at 0.5, the rest at 1
    assert r["median_sigma"] == NOISE
    assert r["std_quietest_64px_block"] == pytest.approx(NOISE, rel=0.05)
    bands = r["power_bands_per_pix"]
    assert list(bands) == ["0-0.25", "0.25-0.5"]
    assert all(list(b) == ["input", "output", "residual"] for b in bands.values())
    low, high = bands.values()
    assert high["residual"] == pytest.approx(low["residual"], rel=0.3)  # white: flat
    assert list(r["power_spectra"]) == ["freq_per_pix", "input", "output", "residual"]
