"""
The denoiser's spectral principal components (``spectral_pca``, issue 14).
"""

import dask.array as da
import numpy as np
import pytest
import torch
from ndcube import NDCube

from sunpy_nn import Denoiser, WeightsError
from sunpy_nn.data.synthetic import synthetic_crisp_cube
from sunpy_nn.denoise._spectral import _fill_gaps, from_basis, pca_basis, sd_from_basis, to_basis

SHORT = {"epochs": 1, "patches_per_epoch": 20, "patch_size": 16, "seed": 0, "progress": False}


@pytest.fixture(scope="module")
def kg_cube():
    return synthetic_crisp_cube(48, n_wavelengths=5, n_scans=3, seed=0, v_peak=40, qu_peak=20)[0]


@pytest.fixture(scope="module")
def small(kg_cube):
    return Denoiser(n_filters=8).fit(kg_cube, **SHORT)


def test_basis_is_orthonormal_and_pure_noise_has_unit_eigenvalues():
    noise = np.random.default_rng(0).standard_normal((4, 7, 40, 40))
    basis, values = pca_basis(noise)
    np.testing.assert_allclose(basis.T @ basis, np.eye(7), atol=1e-12)
    # 6400 spectra per component: eigenvalues of white noise of unit variance within a few per cent of 1
    np.testing.assert_allclose(values, 1.0, atol=0.1)
    assert np.all(np.diff(values) <= 0)
    # signed alike on every machine: the largest entry of each column is positive
    assert np.all(basis[np.abs(basis).argmax(axis=0), np.arange(7)] > 0)


def test_rotation_keeps_white_noise_white_and_round_trips():
    rng = np.random.default_rng(1)
    profile = np.sin(np.linspace(0, np.pi, 9))[None, :, None, None]
    frames = 50 * rng.standard_normal((3, 1, 32, 32)) * profile + rng.standard_normal((3, 9, 32, 32))
    basis, values = pca_basis(frames)
    assert values[0] > 100 and values[1] < 1.2  # the signal in one component
    comps = to_basis(frames, basis)
    assert abs(comps[:, 1:].std() - 1.0) < 0.03  # the noise stays white, of the same level
    back = from_basis(comps, basis)
    span = np.abs(frames).max()
    np.testing.assert_allclose(back, frames, atol=span * 1e-6)  # float32 round trip: ulps of the range
    sd = sd_from_basis(np.ones_like(comps), basis)
    np.testing.assert_allclose(sd, 1.0, rtol=1e-6)  # orthonormal: unit variances stay unit variances


def test_gappy_fill_restores_a_profile_in_the_span_of_the_basis():
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    coef = rng.standard_normal((2, 6, 4, 4)) * 30
    coef[:, 2:] = 0  # in the span of the two leading components
    frames = np.einsum("wc,tcyx->twyx", basis, coef)
    prior = np.array([900.0, 900.0, 1.0, 1.0, 1.0, 1.0])  # the two leading hold signal, the others pure noise
    holed = frames.copy()
    holed[0, 3, 1, 1] = np.nan
    holed[1, :, 2, 2] = np.nan  # NaN at every wavelength: stays NaN
    filled = _fill_gaps(holed, basis, prior)
    assert filled[0, 3, 1, 1] == pytest.approx(frames[0, 3, 1, 1], abs=0.01 * np.abs(frames).max())
    assert np.isnan(filled[1, :, 2, 2]).all()
    assert np.isnan(holed[0, 3, 1, 1])  # the input is not modified


def test_gappy_fill_of_a_noisy_spectrum_with_few_values_stays_bounded():
    # 9 tunings, 3 left: an unregularised fit gave fills of thousands of sigma; the prior keeps them near the noise
    rng = np.random.default_rng(4)
    basis = np.linalg.qr(rng.standard_normal((9, 9)))[0]
    prior = np.array([55.0, 5.0, 1.08] + [1.0] * 6)  # a Stokes V of kG fields (in noise units squared)
    noise = rng.standard_normal((1, 9, 40, 50))
    noise[:, 3:] = np.nan
    filled = _fill_gaps(noise, basis, prior)
    assert np.isfinite(filled).all() and np.abs(filled[:, 3:]).max() < 10 * np.sqrt(prior[0])


def test_denoiser_fits_a_basis_by_default_and_not_when_asked(kg_cube, small):
    assert sorted(small.spectral_basis) == ["Q", "U", "V"]
    assert small.fit_settings["spectral_pca"] is True
    record = small.provenance()["spectral_pca"]
    assert record["V"][0] > 10 * record["V"][-1]  # the kG signal in the leading component
    off = Denoiser(n_filters=8, spectral_pca=False).fit(kg_cube, **SHORT)
    assert off.spectral_basis == {} and off.provenance()["spectral_pca"] is None


def test_a_gap_leaves_the_spectrum_out_of_training_and_a_tuning_without_data_leaves_the_basis_out(kg_cube, small):
    data = np.array(kg_cube.data)
    data[0, 3, 2, 5, 5] = np.nan
    comps = small._to_components(data, ["I", "Q", "U", "V"], [1, 2, 3], fill=False)
    others = np.ones((48, 48), bool)
    others[5, 5] = False
    assert np.isnan(comps[0, 3, :, 5, 5]).all() and np.isfinite(comps[0, 3][:, others]).all()
    data[:, :, 1] = np.nan  # one tuning without data anywhere
    cube = NDCube(data, wcs=kg_cube.wcs, unit=kg_cube.unit)
    assert Denoiser(n_filters=4).fit(cube, **SHORT).spectral_basis == {}  # the default falls back to the tunings
    with pytest.raises(ValueError, match="Too few pixels with a value at all 5 wavelengths"):
        Denoiser(n_filters=4, spectral_pca=True).fit(cube, **SHORT)


def test_a_stokes_parameter_without_basis_is_refused_by_name(kg_cube):
    den = Denoiser(n_filters=4).fit(kg_cube, stokes=("V",), **SHORT)
    with pytest.raises(ValueError, match=r"spectral components of Stokes \['V'\].*no basis for Stokes \['Q', 'U'\]"):
        den.predict(kg_cube, progress=False)
    assert np.isfinite(den.predict(kg_cube, stokes=("V",), progress=False).data).all()
    with pytest.raises(ValueError, match="no basis for Stokes"):
        den.fit(kg_cube, stokes=("Q", "V"), **SHORT)  # a warm start keeps its basis


def test_nan_at_one_tuning_stays_there_and_does_not_spread(kg_cube, small):
    data = np.array(kg_cube.data)
    data[0, 3, 2, 5, 5] = np.nan
    data[1, 3, :, 7, 7] = np.nan
    cube = NDCube(data, wcs=kg_cube.wcs, unit=kg_cube.unit)
    out = small.predict(cube, progress=False)
    assert np.isnan(out.data).sum() == 1 + data.shape[2]
    assert np.isnan(out.data[0, 3, 2, 5, 5]) and np.isfinite(np.delete(out.data[0, 3, :, 5, 5], 2)).all()
    assert np.isnan(out.uncertainty.array[0, 3, 2, 5, 5])
    np.testing.assert_array_equal(out.data[:, 0], data[:, 0])  # Stokes I is not denoised: bit for bit
    assert np.isnan(cube.data[0, 3, 2, 5, 5]) and np.isfinite(cube.data[0, 3, 1, 5, 5])  # input untouched


def test_the_basis_and_its_gap_fill_do_not_depend_on_the_data_unit(kg_cube, small):
    # trained on I/Ic; the same cube in percent, with a gap at one tuning, gives the same result times 100
    import astropy.units as u

    data = np.array(kg_cube.data)
    data[0, 3, 2, 5, 5] = np.nan
    ref = small.predict(NDCube(data, wcs=kg_cube.wcs, unit=u.dimensionless_unscaled), progress=False)
    out = small.predict(NDCube(data * 100, wcs=kg_cube.wcs, unit=u.percent), progress=False)
    span = np.nanmax(np.abs(ref.data[:, 1:]))
    np.testing.assert_allclose(out.data[:, 1:] / 100, ref.data[:, 1:], rtol=0, atol=1e-5 * span)
    np.testing.assert_allclose(out.uncertainty.array[:, 1:] / 100, ref.uncertainty.array[:, 1:], rtol=1e-4)
    filled = ref.data[0, 3, :, 5, 5]  # the gap's spectrum: its other tunings denoised, the gap NaN, in both units
    assert np.isnan(filled[2]) and np.isfinite(np.delete(filled, 2)).all()


def test_lazy_prediction_equals_the_in_memory_one(kg_cube, small):
    lazy = NDCube(da.from_array(np.asarray(kg_cube.data), chunks=(1, 1, 1, 48, 48)), wcs=kg_cube.wcs)
    eager = small.predict(kg_cube, progress=False)
    out = small.predict(lazy, progress=False)
    assert isinstance(out.data, da.Array)
    span = np.ptp(eager.data[:, 1:])
    np.testing.assert_allclose(out.data.compute(), eager.data, atol=span * 1e-6)
    np.testing.assert_allclose(out.uncertainty.array.compute(), eager.uncertainty.array, rtol=1e-5)


def test_a_lazy_cube_trains_with_a_basis_from_a_sample_and_whole_spectra(kg_cube, small):
    lazy = NDCube(da.from_array(np.asarray(kg_cube.data), chunks=(1, 1, 1, 48, 48)), wcs=kg_cube.wcs)
    den = Denoiser(n_filters=8).fit(lazy, **SHORT)
    for lab, basis in small.spectral_basis.items():
        # the leading component from a sample of scans and pixels: the one of the whole cube
        assert abs(basis[:, 0] @ den.spectral_basis[lab][:, 0]) > 0.99
    out = den.predict(lazy, progress=False)
    assert np.isfinite(out.data.compute()).all()


class _CountingArray:
    """An array that counts the chunks dask reads from it."""

    def __init__(self, array):
        self.array, self.reads = array, 0
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key):
        self.reads += 1
        return self.array[key]


def test_a_lazy_pool_of_whole_spectra_reads_each_stack_once():
    from sunpy_nn.training import Noise2NoisePairs

    source = _CountingArray(np.random.default_rng(0).standard_normal((40, 1, 5, 32, 32)))
    data = da.from_array(source, chunks=(1, 1, 5, 32, 32))  # a chunk: one scan, all wavelengths
    source.reads = 0  # dask's look at the array's type
    # a pool of 10 stacks of 3 scans (symmetric pairs) of one wavelength
    kw = {"patch_size": 8, "x_range": (0, 32), "neighbour": False, "pool_bytes": 10 * 3 * 32 * 32 * 4}
    whole = Noise2NoisePairs(data, [0], [True], "image", rng=np.random.default_rng(0), whole_spectra=True, **kw)
    assert len(whole.pool) == 10 and all(st.shape == (3, 1, 32, 32) for _, st, _ in whole.pool)
    assert source.reads <= 2 * 3  # two stacks of all five wavelengths read, three scans each
    source.reads = 0
    single = Noise2NoisePairs(data, [0], [True], "image", rng=np.random.default_rng(0), **kw)
    assert len(single.pool) == 10 and source.reads > 3 * 3  # a stack per wavelength drawn: many more scans read
    # many wavelengths, three Stokes parameters, room for 6 entries: a stack of each Stokes parameter, two wavelengths
    # each, rather than one stack of one Stokes parameter for a whole epoch
    data = da.from_array(np.random.default_rng(1).standard_normal((40, 3, 15, 32, 32)), chunks=(1, 1, 15, 32, 32))
    kw["pool_bytes"] = 6 * 3 * 32 * 32 * 4
    pairs = Noise2NoisePairs(
        data, [0, 1, 2], [True] * 3, "image", rng=np.random.default_rng(0), whole_spectra=True, **kw
    )
    assert len(pairs.pool) == 6 and len({s for s, _, _ in pairs.pool}) == 3


def test_spectral_pca_refused_in_spectral_mode():
    with pytest.raises(ValueError, match="image mode"):
        Denoiser(mode="spectral", spectral_pca=True)
    with pytest.raises(ValueError, match="True or False"):
        Denoiser(spectral_pca="yes")


def test_another_number_of_wavelengths_is_refused(kg_cube, small):
    with pytest.raises(ValueError, match=r"5 wavelengths.*has 3"):
        small.predict(kg_cube[:, :, :3], progress=False)


def test_basis_round_trips_through_a_file_and_a_newer_format_is_refused(kg_cube, small, tmp_path):
    path = small.save(tmp_path / "pca.pt")
    back = Denoiser.load(path)
    for lab, basis in small.spectral_basis.items():
        np.testing.assert_array_equal(back.spectral_basis[lab], basis)
    np.testing.assert_array_equal(
        back.predict(kg_cube, progress=False).data, small.predict(kg_cube, progress=False).data
    )
    blob = torch.load(path, weights_only=True)
    blob["extra"]["format_version"] = 99
    torch.save(blob, tmp_path / "newer.pt")
    with pytest.raises(WeightsError, match="newer sunpy_nn"):
        Denoiser.load(tmp_path / "newer.pt")
