import astropy.units as u
import numpy as np
import pytest

from sunpy_nn.psf import airy_psf, degrade, hmi_psf, rebin_matrix, resample_flux

from .helpers import shared_file


@pytest.mark.parametrize("modified", [True, False])
def test_hmi_psf_unit_sum_and_profile(modified):
    psf = hmi_psf(0.0662, modified=modified)
    assert psf.sum() == pytest.approx(1.0, abs=1e-12)
    c = psf.shape[0] // 2
    assert psf[c, c] == psf.max()
    np.testing.assert_allclose(psf, psf.T)  # radially symmetric
    # Wachter form at r = W: the Lorentzian term is e/2 of the un-normalised peak
    e, w, k, big_w = (0.1, 2.0, 3.0, 3.4) if modified else (0.1, 1.8, 3.0, 3.0)
    r_unit = np.rad2deg(6173e-10 / (np.pi * 0.14)) * 3600  # arcsec per unit of r
    x = np.arange(psf.shape[0]) - c
    r = np.abs(x) * 0.0662 / r_unit
    expected = (1 - e) * np.exp(-((r / w) ** 2)) + e / (1 + (r / big_w) ** k)
    np.testing.assert_allclose(psf[c] / psf[c, c], expected, rtol=1e-10)


def test_modified_psf_is_broader():
    assert hmi_psf(0.0662, modified=True).max() < hmi_psf(0.0662, modified=False).max()


def test_airy_first_zero_at_1_22_lambda_over_d():
    # sample finely along one axis without pixel integration and find the first minimum
    scale = 0.005
    psf = airy_psf(28 * u.cm, 6173 * u.AA, scale, shape=(1, 801), oversample=1)[0]
    c = psf.size // 2
    first_min = np.argmax(np.diff(psf[c:]) > 0)  # the profile stops falling at the first dark ring
    expected = np.rad2deg(1.22 * 6173e-10 / 0.28) * 3600
    assert first_min * scale == pytest.approx(expected, abs=scale)
    assert psf[c + first_min] / psf[c] < 1e-4
    assert airy_psf(28 * u.cm, 6173 * u.AA, 0.0662).sum() == pytest.approx(1.0)


def test_resampling_conserves_the_mean():
    img = np.random.default_rng(0).random((381, 381))
    out = resample_flux(img, 0.0662, 0.504)
    assert out.shape == (50, 50)
    covered = 50 * 0.504 / 0.0662  # the output covers 380.66 input pixels
    m = rebin_matrix(381, 0.0662, 0.504)
    assert m.sum(axis=1) == pytest.approx(np.ones(50))  # each output pixel is a weighted average
    assert m.sum() * 0.504 / 0.0662 == pytest.approx(covered)
    whole = rebin_matrix(762, 1.0, 2.0)  # integer factor: plain 2x2 binning
    np.testing.assert_allclose(whole @ np.arange(762.0), np.arange(762.0).reshape(-1, 2).mean(axis=1))
    assert out.mean() == pytest.approx(img[:380, :380].mean(), abs=2e-3)


def test_sub_pixel_phase_shifts_the_sampling():
    ramp = np.tile(np.arange(200.0), (200, 1))
    a = resample_flux(ramp, 1.0, 4.0, offset=(0, 0))
    b = resample_flux(ramp, 1.0, 4.0, offset=(0, 0.5), shape=(50, 49))
    np.testing.assert_allclose(b - a[:, :49], 0.5)


def test_degrade_noise_is_seeded():
    img = np.ones((100, 100))
    psf = hmi_psf(0.1, shape=(31, 31))
    a = degrade(img, 0.1, psf, 0.5, noise=1e-3, seed=1)
    b = degrade(img, 0.1, psf, 0.5, noise=1e-3, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.std() == pytest.approx(1e-3, rel=0.15)
    np.testing.assert_allclose(degrade(img, 0.1, psf, 0.5), 1.0)  # a flat field stays flat


def power_spectrum(img):
    f = np.abs(np.fft.fftshift(np.fft.fft2(img - img.mean()))) ** 2 / img.size
    n = img.shape[0]
    y, x = np.indices(f.shape)
    r = np.hypot(y - n // 2, x - n // 2).astype(int)
    p = np.bincount(r.ravel(), f.ravel()) / np.bincount(r.ravel())
    return np.arange(1, n // 2) / n, p[1 : n // 2]


def test_muram_degraded_like_hmi():
    # METHODS A / the paper's Fig. 5: MURaM through the modified PSF at 0.504"/pix looks like the HMI quiet Sun.
    muram = np.load(shared_file("enhance", "muram_qs_continuum_1000.npy")).astype(float)
    muram /= muram.mean()
    hmi = np.load(shared_file("enhance", "hmi_qs_continuum_130.npy")).astype(float)
    hmi /= hmi.mean()
    mod = degrade(muram, 0.0662, hmi_psf(0.0662, modified=True), 0.504)[:130, :130]
    ref = degrade(muram, 0.0662, hmi_psf(0.0662, modified=False), 0.504)[:130, :130]
    assert mod.std() / mod.mean() == pytest.approx(0.042, abs=0.003)
    _, p_hmi = power_spectrum(hmi)

    def distance(img):
        _, p = power_spectrum(img)
        return np.sqrt(np.mean(np.log10(p / p_hmi) ** 2))

    assert distance(mod) < distance(ref)
