import math

import astropy.units as u
import numpy as np
import pytest
from scipy import ndimage

from sunpy_nn.metrics import (
    azimuthal_power_spectrum,
    binned_rms_error,
    binned_standardised_error,
    coverage,
    forward_consistency,
    oracle_wiener_error,
    psnr,
    rms_contrast,
    ssim,
    standardised_error,
)
from sunpy_nn.psf import degrade, hmi_psf

RNG = np.random.default_rng(12345)


def _smooth_random(shape, sigma, seed=0):
    """A periodic, smooth random field of unit rms."""
    f = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma, mode="wrap")
    return f / f.std()


# ----------------------------------------------------------------------------------------------- power spectrum
@pytest.mark.parametrize("apodize", [True, False])
@pytest.mark.parametrize("shape", [(256, 256), (128, 192)])
def test_white_noise_spectrum_is_flat_at_the_variance(apodize, shape):
    sigma = 2.0
    # Average a few realisations: an annulus of radius k holds ~2 pi k n^2 samples, so single spectra scatter.
    spectra = [
        azimuthal_power_spectrum(np.random.default_rng(seed).normal(5.0, sigma, shape), apodize=apodize)
        for seed in range(8)
    ]  # the mean (5.0) must not matter
    freq = spectra[0][0]
    power = np.mean([p for _, p in spectra], axis=0)
    n = min(shape)
    np.testing.assert_allclose(freq, np.arange(1, n // 2 + 1) / n)
    assert power.mean() == pytest.approx(sigma**2, rel=0.02)
    # Every annulus beyond the first few is at the variance to within 15 % (over 4 sigma of its scatter).
    np.testing.assert_allclose(power[freq > 0.1], sigma**2, rtol=0.15)


def test_spectrum_peaks_at_a_sinusoid_frequency_with_its_variance():
    n, f0, amp = 256, 20 / 256, 0.3
    x = np.arange(n)
    wave = amp * np.sin(2 * np.pi * f0 * x)[None, :] * np.ones((n, 1))
    freq, power = azimuthal_power_spectrum(wave, apodize=False)
    peak = np.argmax(power)
    assert freq[peak] == pytest.approx(f0)
    # Parseval: the 2-D spectrum sums to N * variance; a periodic sinusoid puts it all in 2 pixels of one annulus.
    k = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    n_annulus = np.count_nonzero(np.rint(k * n) == 20)
    assert power[peak] * n_annulus == pytest.approx(n * n * amp**2 / 2)


def test_apodization_suppresses_edge_leakage():
    # A non-periodic large-scale gradient: without a window its edge jump leaks power to all frequencies (~k^-2).
    n = 128
    ramp = np.linspace(0, 1, n)[None, :] + np.linspace(0, 0.5, n)[:, None] + 0.01 * RNG.standard_normal((n, n))
    freq, raw = azimuthal_power_spectrum(ramp, apodize=False)
    _, apod = azimuthal_power_spectrum(ramp, apodize=True)
    high = freq > 0.25
    assert np.median(apod[high]) < 0.2 * np.median(raw[high])
    # ... and what remains there is the white noise of variance 1e-4.
    assert np.median(apod[high]) == pytest.approx(1e-4, rel=0.3)


def test_spectrum_rejects_nan():
    img = np.ones((16, 16))
    img[3, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        azimuthal_power_spectrum(img)


# ------------------------------------------------------------------------------------------------------ contrast
def test_contrast_of_a_sinusoid():
    x = np.arange(200) / 200
    img = 1.0 + 0.07 * np.sin(2 * np.pi * 5 * x)[:, None] * np.ones((1, 50))
    assert rms_contrast(img) == pytest.approx(0.07 / np.sqrt(2), rel=1e-12)
    assert rms_contrast(3.7e4 * img) == pytest.approx(rms_contrast(img))  # independent of the units (DN/s)


def test_contrast_mask_and_nan():
    img = np.ones((20, 20))
    img[:, 10:] = np.where(np.arange(10) % 2, 1.1, 0.9)  # contrast 0.1 on the right half, 0 on the left
    mask = np.zeros(img.shape, bool)
    mask[:, 10:] = True
    assert rms_contrast(img, mask) == pytest.approx(0.1)
    assert rms_contrast(img, ~mask) == 0
    img[0, 10] = np.nan
    assert np.isfinite(rms_contrast(img, mask))
    with pytest.raises(ValueError, match="shape"):
        rms_contrast(img, mask[:5])


# --------------------------------------------------------------------------------------------------------- PSNR
def test_psnr_of_a_known_offset():
    ref = RNG.random((50, 60)) * 4.0
    rng = ref.max() - ref.min()
    offset = 0.02
    assert psnr(ref + offset, ref) == pytest.approx(20 * np.log10(rng / offset))
    assert psnr(ref - offset, ref, data_range=1.0) == pytest.approx(20 * np.log10(1 / 0.02))
    assert psnr(ref, ref) == np.inf


def test_psnr_ignores_nan_and_checks_shapes():
    ref = np.linspace(0, 1, 400).reshape(20, 20)
    est = ref + 0.1
    est[0, 0] = np.nan
    assert psnr(est, ref) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="same shape"):
        psnr(ref[:10], ref)
    with pytest.raises(ValueError, match="data_range"):
        psnr(np.ones((5, 5)), np.ones((5, 5)))


# --------------------------------------------------------------------------------------------------------- SSIM
def _ssim_brute_force(x, y, win, data_range, k1=0.01, k2=0.03):
    """Wang et al. (2004) with a uniform window, window by window, sample (co)variances."""
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - win + 1):
        for j in range(x.shape[1] - win + 1):
            a, b = x[i : i + win, j : j + win].ravel(), y[i : i + win, j : j + win].ravel()
            cov = np.cov(a, b)  # ddof=1
            values.append(
                (2 * a.mean() * b.mean() + c1)
                * (2 * cov[0, 1] + c2)
                / ((a.mean() ** 2 + b.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2))
            )
    return np.mean(values)


def test_ssim_matches_the_definition():
    x = RNG.random((16, 19))
    y = 0.7 * x + 0.2 * RNG.random((16, 19))
    assert ssim(y, x, data_range=1.0, win_size=5) == pytest.approx(_ssim_brute_force(y, x, 5, 1.0), rel=1e-10)


@pytest.mark.parametrize("gaussian", [False, True])
def test_ssim_is_one_for_identical_images_and_falls_with_noise(gaussian):
    ref = 1 + 0.1 * _smooth_random((96, 96), 2.0)
    assert ssim(ref, ref, gaussian_weights=gaussian) == pytest.approx(1.0, abs=1e-12)
    values = [
        ssim(ref + np.random.default_rng(3).normal(0, s, ref.shape), ref, gaussian_weights=gaussian)
        for s in (0.005, 0.02, 0.05, 0.2)
    ]
    assert values == sorted(values, reverse=True)
    assert values[0] > 0.9
    assert values[-1] < 0.3


def test_ssim_of_a_constant_offset_is_the_luminance_term():
    mu, c = 0.5, 0.1
    x = np.full((20, 20), mu)
    expected = (2 * mu * (mu + c) + (0.01 * 1.0) ** 2) / (mu**2 + (mu + c) ** 2 + (0.01 * 1.0) ** 2)
    assert ssim(x + c, x, data_range=1.0) == pytest.approx(expected)


def test_ssim_symmetric_and_validates():
    x, y = RNG.random((30, 30)), RNG.random((30, 30))
    assert ssim(x, y, data_range=1.0) == pytest.approx(ssim(y, x, data_range=1.0))
    with pytest.raises(ValueError, match="win_size"):
        ssim(x, y, win_size=4)
    with pytest.raises(ValueError, match="at least"):
        ssim(x[:5], y[:5])
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        ssim(x, y)


# ------------------------------------------------------------------------------------------ forward consistency
def test_forward_consistency_of_an_upsampled_flat_field_is_zero():
    original = np.full((30, 40), 0.93)
    enhanced = np.repeat(np.repeat(original, 2, axis=0), 2, axis=1)
    assert forward_consistency(enhanced, original) == pytest.approx(0, abs=1e-12)
    # a 3 % gain error is a 3 % relative difference, for signed data too
    assert forward_consistency(1.03 * enhanced, original) == pytest.approx(0.03)
    assert forward_consistency(-1.03 * enhanced, -original) == pytest.approx(0.03)


def test_forward_consistency_agrees_with_psf_degrade():
    # A periodic image at 0.252 arcsec/pix degraded to HMI's 0.504 with the package's own pipeline: away from the
    # borders (where forward_consistency mirrors the image instead of wrapping it) the difference vanishes.
    hires = 1 + 0.1 * _smooth_random((160, 160), 1.5, seed=4)
    original = degrade(hires, 0.252, hmi_psf(0.252), 0.504)
    assert original.shape == (80, 80)
    interior = np.zeros(original.shape, bool)
    interior[10:-10, 10:-10] = True  # the default kernel reaches 4.4 arcsec = 8.7 HMI pixels
    assert forward_consistency(hires, original, mask=interior) < 1e-10
    assert forward_consistency(hires, original) < 5e-3  # the borders differ a little
    # the unmodified (narrower) PSF does not reproduce the data
    assert forward_consistency(hires, original, psf=hmi_psf(0.252, modified=False), mask=interior) > 1e-3


def test_forward_consistency_mask_nan_and_shapes():
    original = np.ones((20, 20))
    enhanced = np.ones((40, 40))
    enhanced[:2, :2] = 5.0  # wrong only in the first original pixel (and its PSF neighbourhood)
    mask = np.zeros(original.shape, bool)
    mask[10:, 10:] = True
    assert forward_consistency(enhanced, original, mask=mask) == pytest.approx(0, abs=1e-12)
    assert forward_consistency(enhanced, original) > 0
    enhanced[:2, :2] = np.nan  # missing pixels are left out of the comparison
    assert forward_consistency(enhanced, original) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="twice"):
        forward_consistency(np.ones((41, 40)), original)


def test_binned_rms_error_of_noise_is_one_in_every_bin():
    rng = np.random.default_rng(0)
    truth = np.concatenate([np.full(40_000, 0.5), np.full(40_000, 2.0), np.full(40_000, 5.0), np.full(40_000, 50.0)])
    noisy = truth + rng.normal(0, 1, truth.size)
    bins = binned_rms_error(noisy, truth, 1.0)
    assert [b["n"] for b in bins] == [40_000] * 4
    assert all(abs(b["rms"] - 1) < 0.02 for b in bins)
    # in units of sigma: the same data in other units give the same numbers
    again = binned_rms_error(noisy * 3e-3, truth * 3e-3, 3e-3)
    assert [b["rms"] for b in again] == pytest.approx([b["rms"] for b in bins], rel=1e-9)
    with pytest.raises(ValueError, match="sigma must be a positive, finite number"):
        binned_rms_error(noisy, truth, 0.0)
    with pytest.raises(ValueError, match="sigma must be a positive, finite number"):
        binned_rms_error(noisy, truth, np.inf)  # would put every pixel in the first bin


def test_coverage_of_gaussian_errors_and_of_wrong_error_bars():
    err = np.random.default_rng(1).normal(0, 1, 200_000)
    zero = np.zeros_like(err)
    assert coverage(err, zero, np.ones_like(err)) == pytest.approx([0.683, 0.954], abs=0.005)
    wide = coverage(err, zero, np.full_like(err, 1.5))  # error bars 1.5x too wide
    assert wide[0] == pytest.approx(0.866, abs=0.005)  # P(|z| < 1.5)
    with pytest.raises(ValueError, match="shapes differ"):
        coverage(err, zero[:5], np.ones_like(err))


def test_standardised_error_tells_a_standard_deviation_of_heavy_tailed_errors_from_too_wide_error_bars():
    rng = np.random.default_rng(2)
    zero = np.zeros(200_000)
    gauss = rng.normal(0, 2.0, zero.size)
    z = standardised_error(gauss, zero, np.full_like(gauss, 2.0))
    assert z["rms"] == pytest.approx(1.0, abs=0.01) and z["kurtosis"] == pytest.approx(3.0, abs=0.1)
    # error bars 1.5x too wide: rms 1/1.5, and coverage alone says the same
    assert standardised_error(gauss, zero, np.full_like(gauss, 3.0))["rms"] == pytest.approx(1 / 1.5, abs=0.01)
    # Laplace errors with their true standard deviation: coverage 0.76 within 1 sigma, yet rms(z) = 1, kurtosis 6
    lap = rng.laplace(0, 2.0 / np.sqrt(2), zero.size)
    sd = np.full_like(lap, 2.0)
    z = standardised_error(lap, zero, sd)
    assert z["rms"] == pytest.approx(1.0, abs=0.01) and z["kurtosis"] == pytest.approx(6.0, abs=0.5)
    assert coverage(lap, zero, sd) == pytest.approx([1 - np.exp(-np.sqrt(2)), 1 - np.exp(-2 * np.sqrt(2))], abs=0.005)
    # in units of sigma: the same errors in other units (G instead of kG) give the same moments
    in_gauss = standardised_error(1e3 * lap, zero, 1e3 * sd)
    assert in_gauss == pytest.approx(z, rel=1e-9)
    # pixels without a finite, positive uncertainty are left out
    sd_bad = sd.copy()
    sd_bad[:10] = 0.0
    sd_bad[10:20] = np.nan
    assert standardised_error(lap, zero, sd_bad)["rms"] == pytest.approx(
        standardised_error(lap[20:], zero[20:], sd[20:])["rms"]
    )
    with pytest.raises(ValueError, match="shapes differ"):
        standardised_error(lap, zero[:5], sd)
    with pytest.raises(ValueError, match="positive uncertainty"):
        standardised_error(lap, zero, np.zeros_like(lap))


def test_binned_standardised_error_finds_too_narrow_error_bars_that_the_pooled_coverage_hides():
    """Right error bars in the quiet Sun, half the error's size on a few strong pixels: pooled, the coverage is near
    68 % and the rms of z near 1; by strength, the strong bin shows rms(z) = 2 and 38 % within 1 sigma."""
    rng = np.random.default_rng(7)
    truth = np.concatenate([np.zeros(190_000), np.full(10_000, 20.0)])
    err = rng.normal(0, 0.3, truth.size)
    sd = np.where(truth > 10, 0.15, 0.3)
    assert coverage(truth + err, truth, sd)[0] == pytest.approx(0.667, abs=0.01)  # pooled: looks calibrated
    bins = binned_standardised_error(truth + err, truth, sd, 1.0)
    assert [(b["low"], b["high"], b["n"]) for b in bins] == [
        (0, 1, 190_000),
        (1, 3, 0),
        (3, 10, 0),
        (10, np.inf, 10_000),
    ]
    assert bins[0]["rms"] == pytest.approx(1.0, abs=0.01) and bins[3]["rms"] == pytest.approx(2.0, abs=0.03)
    assert bins[0]["coverage"] == pytest.approx([0.683, 0.954], abs=0.005)
    assert bins[3]["coverage"] == pytest.approx([0.383, 0.683], abs=0.015)  # P(|z| < 1), P(|z| < 2) for z of std 2
    assert all(math.isnan(b["rms"]) and all(math.isnan(c) for c in b["coverage"]) for b in bins[1:3])  # empty bins
    # each bin agrees with the pooled metrics on its own pixels, counted the same way (|z| < k)
    strong = truth > 10
    assert bins[3]["coverage"] == coverage((truth + err)[strong], truth[strong], sd[strong])
    assert bins[3]["rms"] == pytest.approx(standardised_error((truth + err)[strong], truth[strong], sd[strong])["rms"])
    # the strength is |truth| / sigma, in truth's unit: the same cube in G and kG, sigma a Quantity
    in_kg = binned_standardised_error((truth + err) * u.G, (truth * u.G).to(u.kG), sd * u.G, 1 * u.G, k=[1.0])
    assert [b["n"] for b in in_kg] == [b["n"] for b in bins]
    assert [b["coverage"][0] for b in in_kg[::3]] == pytest.approx([b["coverage"][0] for b in bins[::3]], rel=1e-12)
    # other bins; pixels without a finite, positive uncertainty or a finite value are left out
    sd_bad, est = sd.copy(), truth + err
    sd_bad[:5], sd_bad[5:10], est[10:15] = 0.0, np.nan, np.nan
    weak, strong_bin = binned_standardised_error(est, truth, sd_bad, 1.0, bins=(0, 3, np.inf))
    assert (weak["n"], strong_bin["n"]) == (190_000 - 15, 10_000)
    # an error of exactly k sigma is outside k sigma (|z| < k, as coverage counts); a bin holds [low, high)
    tie = binned_standardised_error([1.0, 3.0], [0.0, 3.0], [1.0, 1.0], 1.0, bins=(0, 3, 10))
    assert tie[0]["coverage"] == [0.0, 1.0] and (tie[0]["n"], tie[1]["n"]) == (1, 1)
    assert tie[1]["coverage"] == [1.0, 1.0]  # the truth of 3 sigma, in 3-10, its error 0
    for bad in (-1.0, 0.0, np.inf, np.nan, True, "3e-3"):
        with pytest.raises(ValueError, match="sigma must be a positive, finite number"):
            binned_standardised_error(est, truth, sd, bad)
    assert binned_standardised_error(est, truth, sd, np.array(1.0)) == binned_standardised_error(est, truth, sd, 1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        binned_standardised_error(est, truth[:5], sd, 1.0)
    with pytest.raises(ValueError, match="positive uncertainty"):
        binned_standardised_error(est, truth, np.zeros_like(sd), 1.0)


def test_metrics_convert_quantities_to_one_unit():
    """Images in G and kG (a magnetogram and its enhanced copy) compare as the same field, not 1000x apart."""
    rng = np.random.default_rng(5)
    ref = rng.normal(0, 300, (32, 32)) * u.G
    est = (ref + rng.normal(0, 30, ref.shape) * u.G).to(u.kG)
    plain = ref.value + (est.to_value(u.G) - ref.value)
    assert psnr(est, ref) == pytest.approx(psnr(plain, ref.value), rel=1e-12)
    assert ssim(est, ref) == pytest.approx(ssim(plain, ref.value), rel=1e-9)
    assert psnr(est, ref, data_range=2 * u.kG) == pytest.approx(psnr(plain, ref.value, data_range=2000), rel=1e-12)
    bins = binned_rms_error(est, ref, 30 * u.G)
    assert [b["n"] for b in bins] == [b["n"] for b in binned_rms_error(plain, ref.value, 30.0)]
    assert bins[0]["rms"] == pytest.approx(1.0, abs=0.2)
    sigma = np.full(ref.shape, 0.03) * u.kG
    assert coverage(est, ref, sigma) == coverage(plain, ref.value, sigma.to_value(u.G))
    assert standardised_error(est, ref, sigma)["rms"] == pytest.approx(1.0, abs=0.1)
    # a plain data_range or sigma is in the reference's (truth's) unit, as documented, not the estimate's
    assert psnr(est, ref, data_range=2000) == pytest.approx(psnr(plain, ref.value, data_range=2000), rel=1e-12)
    assert binned_rms_error(est, ref, 30.0) == binned_rms_error(est, ref, 30 * u.G)
    # forward consistency of an x2 image in kG against the observation in G
    enhanced = np.kron(ref.value, np.ones((2, 2))) * u.G
    assert forward_consistency(enhanced.to(u.kG), ref) == pytest.approx(forward_consistency(enhanced, ref), rel=1e-9)
    with pytest.raises(ValueError, match="enhanced has no unit"):
        forward_consistency(enhanced.value, ref)
    with pytest.raises(ValueError, match="estimate has no unit"):
        psnr(est.value, ref)
    with pytest.raises(u.UnitConversionError, match=r"estimate is in kG, which does not convert to truth.s m"):
        coverage(est, ref.value * u.m, sigma)


def _correlated_noise(rng, shape, width=1.0):
    """Unit-variance noise correlated over ``width`` px (a Gaussian), as the science benchmark's correlated cube."""
    n = ndimage.gaussian_filter(rng.normal(0, 1, shape), (0,) * (len(shape) - 2) + (width, width), mode="wrap")
    return n / n.std()


@pytest.mark.parametrize("transform", ["cosine", "fourier"])
def test_oracle_wiener_error_is_the_error_of_the_oracle_filter_on_noisy_scans(transform):
    """Apply the oracle filter S / (S + N / n) to the mean of n scans with correlated noise, in the transform's
    frequencies: over many noise draws its mean squared error is the function's (the noise's spectrum taken from other
    realisations than those filtered)."""
    from scipy import fft

    def forward(x):
        return fft.dctn(x, norm="ortho", axes=(-2, -1)) if transform == "cosine" else fft.fft2(x, norm="ortho")

    def inverse(c):
        return fft.idctn(c, norm="ortho", axes=(-2, -1)) if transform == "cosine" else fft.ifft2(c, norm="ortho").real

    rng = np.random.default_rng(0)
    truth = 3 * ndimage.gaussian_filter(rng.normal(0, 1, (2, 32, 32)), 2.0)  # smooth, like fields
    truth += (rng.random((2, 32, 32)) < 0.02) * 8.0  # and a few sharp points
    n_scans, draws = 5, 400
    expected = oracle_wiener_error(truth, _correlated_noise(rng, (2000, 32, 32)), n_scans, transform=transform)
    noise_power = (np.abs(forward(_correlated_noise(rng, (4000, 32, 32)))) ** 2).mean(axis=0)
    s_power = np.abs(forward(truth)) ** 2
    h = s_power / (s_power + noise_power / n_scans)
    errors = []
    for _ in range(draws):
        mean = truth + _correlated_noise(rng, (n_scans, 2, 32, 32)).mean(axis=0)
        errors.append(np.mean((inverse(h * forward(mean)) - truth) ** 2))
    assert math.sqrt(np.mean(errors)) == pytest.approx(expected, rel=0.03)
    # the filter beats both extremes: the plain mean of the scans and returning zero
    assert expected < min(1 / math.sqrt(n_scans), float(np.sqrt(np.mean(truth**2))))


def test_oracle_wiener_error_of_white_noise_given_as_a_level_or_as_realisations():
    """White noise given by its standard deviation or by realisations of it gives the same error; correlated noise
    of the same variance, whose power sits at the low frequencies where the smooth signal is, a larger one; the
    error falls with more scans, and is in the unit of the truth (scale invariance, Quantities converted)."""
    rng = np.random.default_rng(1)
    truth = 3 * ndimage.gaussian_filter(rng.normal(0, 1, (3, 64, 64)), 2.0, mode="wrap")
    white = oracle_wiener_error(truth, 0.7, 4)
    assert oracle_wiener_error(truth, 0.7 * rng.normal(0, 1, (500, 64, 64)), 4) == pytest.approx(white, rel=0.02)
    assert oracle_wiener_error(truth, 0.7 * _correlated_noise(rng, (500, 64, 64)), 4) > 1.3 * white
    assert oracle_wiener_error(truth, 0.7, 6) < white < oracle_wiener_error(truth, 0.7, 2)
    assert oracle_wiener_error(1e-3 * truth, 0.7e-3, 4) == pytest.approx(1e-3 * white, rel=1e-9)
    assert oracle_wiener_error(truth, 0.0, 4) == 0.0 and oracle_wiener_error(0 * truth, 0.7, 4) == 0.0
    assert oracle_wiener_error(truth * u.G, 0.7e-3 * u.kG, 4) == pytest.approx(white, rel=1e-9)
    noise = 0.7 * rng.normal(0, 1, (50, 64, 64))
    assert oracle_wiener_error(truth * u.G, noise * 1e-3 * u.kG, 4) == pytest.approx(
        oracle_wiener_error(truth, noise, 4), rel=1e-9
    )


def test_oracle_wiener_error_of_an_image_that_is_not_periodic():
    """A ramp's Fourier transform sees a jump between its opposite edges (power at high frequencies, where the noise
    is) and leaves more error than its cosine transform, which does not: the reason cosine is the default."""
    ramp = np.linspace(0, 20, 64) * np.ones((64, 1))
    cosine, fourier = (oracle_wiener_error(ramp, 1.0, 5, transform=t) for t in ("cosine", "fourier"))
    assert cosine < 0.5 * fourier < 1 / math.sqrt(5)


@pytest.mark.parametrize(
    ("truth", "noise", "kwargs", "match"),
    [
        (np.full((8, 8), np.nan), 1.0, {}, "NaN or inf"),
        (np.zeros(8), 1.0, {}, "images"),
        (np.zeros((0, 8)), 1.0, {}, "at least one pixel"),
        (np.zeros((8, 8)), -1.0, {}, "standard deviation"),
        (np.zeros((8, 8)), np.zeros((2, 8, 9)), {}, "truth's shape"),
        (np.zeros((8, 8)), np.full((8, 8), np.inf), {}, "noise realisations hold NaN or inf"),
        (np.zeros((8, 8)), 1.0, {"n_scans": 0}, "n_scans"),
        (np.zeros((8, 8)), 1.0, {"n_scans": 2.5}, "whole number"),
        (np.zeros((8, 8)), 1.0, {"transform": "wavelet"}, "transform"),
        (np.zeros((8, 8)) * u.G, 1.0 * u.s, {}, "does not convert"),
    ],
)
def test_oracle_wiener_error_refuses_bad_input(truth, noise, kwargs, match):
    with pytest.raises(ValueError, match=match):
        oracle_wiener_error(truth, noise, **kwargs)
