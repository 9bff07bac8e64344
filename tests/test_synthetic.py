"""Synthetic data generators: granulation, HMI-like maps and CRISP-like cubes have the physics they claim."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest

from sunpy_nn.data.synthetic import SCENE_SCALE, granulation, synthetic_crisp_cube, synthetic_hmi_map
from sunpy_nn.metrics import azimuthal_power_spectrum, rms_contrast
from sunpy_nn.psf import degrade, hmi_psf


@pytest.fixture(scope="module")
def scene():
    return granulation((256, 256), seed=3)


def test_granulation_level_contrast_and_reproducibility(scene):
    assert scene.dtype == np.float32
    assert scene.mean() == pytest.approx(1.0, abs=1e-5)
    assert rms_contrast(scene) == pytest.approx(0.16, rel=1e-3)
    np.testing.assert_array_equal(scene, granulation((256, 256), seed=3))
    assert not np.array_equal(scene, granulation((256, 256), seed=4))


def test_granulation_is_periodic(scene):
    # Periodic like a simulation box (degrade() convolves periodically): the jump across the wrap-around edge is
    # as small as between any two neighbouring columns.
    steps = np.abs(np.diff(scene, axis=1)).mean()
    wrap = np.abs(scene[:, 0] - scene[:, -1]).mean()
    assert wrap < 1.5 * steps


def test_granulation_has_granular_scale(scene):
    # Power peaks at the granular scale (cells ~1.6 arcsec across: 0.3-1 per arcsec), not at the pixel scale.
    f, p = azimuthal_power_spectrum(scene)
    k = f / SCENE_SCALE  # per arcsec
    band = (k > 0.1) & (k < 4)
    peak = k[band][np.argmax((p * f)[band])]  # power per log frequency
    assert 0.3 < peak < 1.2


def test_granulation_degraded_like_hmi(scene):
    # Through HMI's PSF at 0.504"/pix the contrast drops to HMI's quiet-Sun level (real HMI: 3.8 %, MURaM: 4.2 %).
    low = degrade(scene, SCENE_SCALE, hmi_psf(SCENE_SCALE), 0.504)
    assert 0.03 < rms_contrast(low) < 0.06


def test_synthetic_hmi_continuum_map():
    hmi, truth = synthetic_hmi_map((24, 32), seed=1)
    assert type(hmi).__name__ == "HMIMap" and type(truth).__name__ == "HMIMap"
    assert hmi.data.shape == (24, 32) and truth.data.shape == (48, 64)
    assert u.allclose(hmi.scale.axis1, 0.504 * u.arcsec / u.pix)
    assert u.allclose(truth.scale.axis2, 0.252 * u.arcsec / u.pix)
    assert hmi.unit == u.DN / u.s and hmi.measurement == "continuum"
    assert hmi.meta["origin"].startswith("sunpy_nn.data.synthetic")
    # Flux is conserved by the degradations: the quiet-Sun level is continuum_level in both.
    assert hmi.data.mean() == pytest.approx(6.0e4, rel=0.01)
    assert truth.data.mean() == pytest.approx(hmi.data.mean(), rel=0.005)
    # Pixel edges coincide on the Sun: truth pixel edge 2j - 0.5 is map pixel edge j - 0.5.
    for jx, jy in ((0, 0), (32, 24), (7, 19)):
        a = hmi.wcs.pixel_to_world(jx - 0.5, jy - 0.5)
        b = truth.wcs.pixel_to_world(2 * jx - 0.5, 2 * jy - 0.5)
        assert a.separation(b).to_value(u.arcsec) < 1e-6


def test_synthetic_hmi_magnetogram_with_sunspot():
    from sunpy_nn.enhance import detect_kind

    hmi, truth = synthetic_hmi_map((48, 48), "blos", sunspot=True, center=(100, -50) * u.arcsec, seed=2)
    assert detect_kind(hmi) == "blos" and hmi.unit == u.G
    assert u.allclose(u.Quantity([hmi.center.Tx, hmi.center.Ty]), [100, -50] * u.arcsec, atol=0.3 * u.arcsec)
    assert np.abs(truth.data).max() > 1500  # an umbra of 2-3 kG
    # The noise is 10 G: the degraded map minus its noise-free version (same seed, no noise) has a 10 G rms.
    quiet, _ = synthetic_hmi_map((48, 48), "blos", sunspot=True, noise=0.0, seed=2)
    assert np.std(hmi.data - quiet.data) == pytest.approx(10.0, rel=0.1)


def test_synthetic_hmi_map_errors():
    with pytest.raises(ValueError, match="kind"):
        synthetic_hmi_map((16, 16), "doppler")
    with pytest.raises(ValueError, match="sunspot"):
        synthetic_hmi_map((16, 16), sunspot=True)


@pytest.fixture(scope="module")
def crisp():
    return synthetic_crisp_cube(48, n_wavelengths=7, n_scans=3, seed=5)


def test_crisp_cube_axes_and_wcs(crisp):
    from sunpy_nn.denoise import _stokes_labels, find_axes

    cube, truth = crisp
    assert cube.data.shape == truth.shape == (3, 4, 7, 48, 48)
    axes = find_axes(cube)
    assert (axes.time, axes.stokes, axes.wavelength, axes.y, axes.x) == (0, 1, 2, 3, 4)
    assert _stokes_labels(cube, axes) == ["I", "Q", "U", "V"]
    (wl,) = cube.axis_world_coords("em.wl")
    assert wl.to_value(u.AA)[3] == pytest.approx(6302.4932)
    assert np.diff(wl.to_value(u.AA)) == pytest.approx(np.full(6, 0.56 / 6))
    (times,) = cube.axis_world_coords("time")
    assert (times[1] - times[0]).to_value(u.s) == pytest.approx(28.0)
    assert times[0].isot.startswith("2019-04-22T09:00:00")
    (coords,) = cube.axis_world_coords(3, 4)
    assert coords.observer is not None
    assert u.allclose(coords[0, 0].Tx, -320 * u.arcsec) and u.allclose(coords[0, 1].Tx, (-320 + 0.059) * u.arcsec)


def test_crisp_cube_physics(crisp):
    cube, truth = crisp
    noise = cube.meta["noise"]
    assert np.std(cube.data - truth) == pytest.approx(noise, rel=0.02)
    stokes_i, v = truth[0, 0], truth[0, 3]
    # Stokes I: an absorption line of depth ~0.65 at the centre of the scan, continuum-like in the far wings.
    depth = 1 - stokes_i[3].mean() / stokes_i[[0, 6]].mean()
    assert 0.4 < depth < 0.7
    # Weak-field V is antisymmetric in wavelength, and its strongest signals are about v_peak (15) x the noise.
    assert np.abs(v.sum(axis=0)).mean() < 0.5 * np.abs(v).sum(axis=0).mean()
    peak = np.percentile(np.abs(v).max(axis=0), 99.95) / noise
    assert 8 < peak < 20
    # Most of the field of view is at the noise level, as in CRISP data.
    assert np.mean(np.abs(v).max(axis=0) < noise) > 0.5
    # Consecutive scans differ (drift, evolution) but little: Noise2Noise pairs.
    change = np.std(truth[1, 3] - truth[0, 3])
    assert 0 < change < 0.5 * np.std(truth[0, 3])


def test_crisp_cube_evolution_changes_the_field_amplitude_not_its_place():
    """``evolution`` scales the Q/U/V amplitudes from scan to scan; the default is the cube as it always was."""
    _, slow = synthetic_crisp_cube(32, n_wavelengths=3, n_scans=3, seed=4, drift=(0.0, 0.0))
    _, same = synthetic_crisp_cube(32, n_wavelengths=3, n_scans=3, seed=4, drift=(0.0, 0.0), evolution=0.03)
    _, fast = synthetic_crisp_cube(32, n_wavelengths=3, n_scans=3, seed=4, drift=(0.0, 0.0), evolution=0.3)
    np.testing.assert_array_equal(slow, same)
    np.testing.assert_array_equal(fast[:, 0], slow[:, 0])  # Stokes I does not evolve
    change = [np.std(c[1, 3] - c[0, 3]) / np.std(c[0, 3]) for c in (slow, fast)]
    assert 5 < change[1] / change[0] < 15  # ten times the amplitude change
    with pytest.raises(ValueError, match="evolution"):
        synthetic_crisp_cube(32, evolution=-0.1)


def test_photon_noise_follows_the_square_root_of_stokes_i():
    cube, truth = synthetic_crisp_cube(48, n_wavelengths=7, n_scans=2, seed=3, photon_noise=True)
    noise = np.asarray(cube.data, np.float64) - truth
    expected = 3e-3 * np.sqrt(truth[:, 0].mean(axis=(0, 2, 3)))  # the mean intensity of each tuning
    for s in range(4):
        np.testing.assert_allclose(noise[:, s].std(axis=(0, 2, 3)), expected, rtol=0.04)
    assert cube.meta["photon_noise"] is True
    # darker pixels are less noisy: the umbra-like dark quartile of the continuum against the bright one
    ic = truth[:, 0, 0]
    dark, bright = ic < np.quantile(ic, 0.25), ic > np.quantile(ic, 0.75)
    assert noise[:, 3, 0][dark].std() < noise[:, 3, 0][bright].std()
    plain, _ = synthetic_crisp_cube(48, n_wavelengths=7, n_scans=2, seed=3)
    assert plain.meta["photon_noise"] is False
