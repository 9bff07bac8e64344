"""Richardson-Lucy (the Enhance paper's baseline): borders, known-PSF recovery."""

import numpy as np
import pytest
from scipy import ndimage, signal

from sunpy_nn.baselines import richardson_lucy
from sunpy_nn.psf import hmi_psf


@pytest.mark.parametrize("upsample", [1, 2])
@pytest.mark.parametrize("iterations", [20, 80])
def test_flat_field_is_a_fixed_point_up_to_the_border(iterations, upsample):
    # A flat field is a fixed point of Richardson-Lucy with a unit-sum PSF. With zero-filled convolutions the
    # borders drifted by 2.6 % after 20 iterations (3.8 % with x2 upsampling), and more with more iterations.
    out = richardson_lucy(np.full((48, 56), 1000.0), iterations=iterations, upsample=upsample)
    assert out.shape == (48 * upsample, 56 * upsample)
    assert np.abs(out / 1000.0 - 1).max() < 1e-3  # the requirement is 0.1 %; measured ~1e-14


def test_known_psf_recovery_interior_and_border():
    # A granulation-like scene (10 % contrast) blurred with HMI's PSF as an observation is: cut from a larger
    # blurred field, so nothing is assumed beyond the image border. Richardson-Lucy must bring the image much closer
    # to the truth inside, and closer at the border too, where what lies outside is unknown.
    rng = np.random.default_rng(0)
    scene = 1 + 0.1 * ndimage.gaussian_filter(rng.standard_normal((160, 160)), 2.0) / 0.14
    psf = hmi_psf(0.504)
    blurred = signal.fftconvolve(scene, psf, mode="same")[40:120, 40:120]
    truth = scene[40:120, 40:120]
    out = richardson_lucy(blurred, psf=psf, iterations=30, upsample=1)
    border = np.zeros(truth.shape, bool)
    border[:6], border[-6:], border[:, :6], border[:, -6:] = True, True, True, True

    def rms(x, where):
        return np.sqrt(np.mean((x[where] - truth[where]) ** 2))

    assert rms(out, ~border) < 0.1 * rms(blurred, ~border)  # measured 0.0002 against 0.024
    assert rms(out, border) < 0.6 * rms(blurred, border)  # measured 0.010 against 0.024 (0.018 before the fix)
    assert out.sum() == pytest.approx(blurred.sum(), rel=1e-3)  # flux conserved, borders included


def test_psf_with_even_size_keeps_the_flat_field():
    psf = np.ones((4, 6)) / 24  # an even-sized user PSF: centre at shape // 2
    out = richardson_lucy(np.full((30, 30), 5.0), psf=psf, iterations=20, upsample=1)
    assert np.abs(out / 5 - 1).max() < 1e-12


def test_iterations_match_scikit_image_inside_a_mirror_extension():
    # A reference implementation: scikit-image's Richardson-Lucy run on the image extended by mirroring twice the
    # PSF's size on each side (its zero-filled borders then lie far outside) gives the same iterations.
    from skimage.restoration import richardson_lucy as skimage_rl

    from sunpy_nn.baselines import _rl

    rng = np.random.default_rng(1)
    image = 1 + 0.1 * ndimage.gaussian_filter(rng.standard_normal((70, 90)), 2.0) / 0.14
    psf = hmi_psf(0.252, shape=(35, 35))
    pad = 2 * 35
    reference = skimage_rl(np.pad(image, pad, mode="symmetric"), psf, num_iter=40, clip=False)[pad:-pad, pad:-pad]
    ours = _rl(image, psf, 40)
    span = np.ptp(reference)
    assert np.abs(ours - reference).max() < 1e-6 * span  # measured 1.6e-8 of the range


def test_masked_map_pixels_are_missing_data():
    from sunpy_nn.data.synthetic import synthetic_hmi_map

    smap = synthetic_hmi_map((40, 40), seed=0)[0]
    mask = np.zeros(smap.data.shape, bool)
    mask[10:13, 20:22] = True
    bad = smap._new_instance(np.where(mask, 1e9, smap.data), smap.meta.copy(), mask=mask)
    good = smap._new_instance(smap.data.copy(), smap.meta.copy(), mask=mask.copy())
    out_bad = richardson_lucy(bad, iterations=5)
    out_good = richardson_lucy(good, iterations=5)
    up = np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)
    assert np.array_equal(out_bad.mask, up)  # the mask comes back, upsampled
    assert np.isnan(out_bad.data[up]).all()
    # What lies under the mask never reaches the result: a 1e9 there changes nothing outside it.
    assert np.array_equal(out_bad.data[~up], out_good.data[~up])
    assert np.array_equal(bad.mask, mask) and bad.data[10, 20] == 1e9  # the caller's map is untouched


@pytest.mark.parametrize(("kwargs", "message"), [({"upsample": 1.5}, "upsample"), ({"iterations": 0}, "iterations")])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        richardson_lucy(np.ones((20, 20)), **kwargs)


def test_a_map_records_its_provenance_once():
    from sunpy_nn.data.synthetic import synthetic_hmi_map

    out = richardson_lucy(synthetic_hmi_map((32, 32), seed=0)[0], iterations=3)
    history = str(out.meta["history"])
    assert history.count("sunpy_nn method: bilinear upsampling + Richardson-Lucy deconvolution") == 1
    assert history.count("sunpy_nn iterations: 3") == 1
    assert "richardson_lucy: bilinear x2" not in history  # the old one-line summary said it all a second time


def test_pca_keeps_the_cube_dtype_and_passes_the_rest_through_bit_for_bit():
    from ndcube import NDCube

    from sunpy_nn.baselines import pca_denoise

    from .test_denoise import make_wcs

    rng = np.random.default_rng(0)
    data = (1 + 0.01 * rng.standard_normal((2, 4, 9, 24, 24))).astype(np.float32)
    cube = NDCube(data, wcs=make_wcs(["time", "stokes", "wavelength", "y", "x"]))
    out = pca_denoise(cube, stokes=("V",))
    assert out.data.dtype == np.float32  # computed in float64, returned in the cube's own type
    assert np.array_equal(out.data[:, :3], data[:, :3])  # I, Q, U were not asked for
    assert not np.array_equal(out.data[:, 3], data[:, 3])
    assert np.array_equal(cube.data, data)  # the caller's cube is untouched


def test_pca_keeps_the_error_bars_of_what_passes_through_and_gives_none_for_the_rest():
    """The cube's uncertainty was dropped: Stokes I, not asked for, came back without its error bars."""
    import astropy.units as u
    from astropy.nddata import VarianceUncertainty
    from ndcube import NDCube

    from sunpy_nn.baselines import pca_denoise

    from .test_denoise import make_wcs

    rng = np.random.default_rng(0)
    data = (1 + 0.01 * rng.standard_normal((2, 4, 9, 24, 24))).astype(np.float32)
    variance = np.full(data.shape, 1.0, np.float32)  # times 1e-4 ct^2 below: a standard deviation of 0.01 ct
    cube = NDCube(
        data,
        wcs=make_wcs(["time", "stokes", "wavelength", "y", "x"]),
        unit=u.ct,
        uncertainty=VarianceUncertainty(variance * 1e-4, unit=u.ct**2),
    )
    out = pca_denoise(cube, stokes=("Q", "U", "V"))
    assert out.uncertainty.uncertainty_type == "std" and out.uncertainty.unit == u.ct
    np.testing.assert_allclose(out.uncertainty.array[:, 0], 1e-2, rtol=1e-6)  # Stokes I: the input's, as a std
    assert np.isnan(out.uncertainty.array[:, 1:]).all()  # denoised: PCA gives no error bar
    assert np.array_equal(cube.uncertainty.array, variance * 1e-4)  # the caller's is untouched
    assert pca_denoise(NDCube(data, wcs=cube.wcs)).uncertainty is None


@pytest.mark.parametrize("shape", [(10, 10), (9, 10), (10, 9), (11, 11)])
def test_the_mirrored_psf_is_the_adjoint_of_the_blur_for_any_size(shape):
    # <A x, y> = <x, A' y> for images that stay clear of the border (where the mirror extension plays no part): the
    # Richardson-Lucy correction step must use the blur's adjoint; an even PSF flipped is centred a pixel off
    from sunpy_nn.baselines import _convolve_symmetric, _mirrored

    rng = np.random.default_rng(0)
    psf = rng.random(shape)
    x, y = np.zeros((64, 64)), np.zeros((64, 64))
    x[20:44, 20:44], y[20:44, 20:44] = rng.random((24, 24)), rng.random((24, 24))
    lhs = np.sum(_convolve_symmetric(x, psf) * y)
    rhs = np.sum(x * _convolve_symmetric(y, _mirrored(psf)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def _pca_cube(data, mask=None):
    from ndcube import NDCube

    from .test_denoise import make_wcs

    return NDCube(data, wcs=make_wcs(["time", "stokes", "wavelength", "y", "x"]), mask=mask)


def test_pca_leaves_a_frame_without_data_and_masked_pixels_as_they_were():
    from sunpy_nn.baselines import pca_denoise

    rng = np.random.default_rng(1)
    data = (0.01 * rng.standard_normal((3, 4, 7, 24, 24))).astype(np.float32)
    data[2, 3] = np.nan  # Stokes V of scan 2 missing
    out = pca_denoise(_pca_cube(data))  # was a ZeroDivisionError
    assert np.isnan(out.data[2, 3]).all() and np.isfinite(out.data[:2, 1:]).all()
    assert out.meta["sunpy_nn"]["pca_components"]["2,V"] == 0
    clean = data.copy()
    clean[2, 3] = 0.0
    mask = np.zeros(clean.shape, bool)
    mask[:, 3, :, 5, 5] = True
    outlier = clean.copy()
    outlier[:, 3, :, 5, 5] = 50.0  # a masked outlier must not steer the components of the other pixels
    a, b = pca_denoise(_pca_cube(clean, mask)), pca_denoise(_pca_cube(outlier, mask))
    keep = ~mask
    np.testing.assert_allclose(a.data[keep], b.data[keep], atol=1e-7)
    assert np.array_equal(b.data[mask], outlier[mask])  # masked pixels come back as they were


@pytest.mark.parametrize("n", [-1, 8, 2.5])
def test_pca_refuses_a_number_of_components_that_does_not_exist(n):
    from sunpy_nn.baselines import pca_denoise

    data = np.zeros((2, 4, 7, 16, 16), np.float32)
    with pytest.raises(ValueError, match="n_components must be 'auto' or a number of components from 0 to 7"):
        pca_denoise(_pca_cube(data), n_components=n)


def test_the_richardson_lucy_map_carries_the_statistics_of_its_own_data():
    import astropy.units as u

    from .test_enhance_map import hmi_map

    data = 1 + 0.05 * np.random.default_rng(2).standard_normal((24, 24))
    data[:4] = np.nan
    smap = hmi_map(data, unit=u.dimensionless_unscaled)
    smap.meta.update({"totvals": 576, "missvals": 0, "datamax": 99.0})  # the input's (stale once upsampled)
    out = richardson_lucy(smap, iterations=5, upsample=2)
    assert out.meta["totvals"] == out.data.size and out.meta["missvals"] == int(np.isnan(out.data).sum()) > 0
    assert out.meta["datamax"] == pytest.approx(float(np.nanmax(out.data)))
