"""denoise_cube / Denoiser: axes, noise scaling, Noise2Noise on synthetic cubes, uncertainty, files, bad input."""

import copy
import itertools
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import StdDevUncertainty
from astropy.wcs import WCS
from ndcube import NDCube

from sunpy_nn import Denoiser, denoise_cube
from sunpy_nn.baselines import pca_denoise
from sunpy_nn.denoise import estimate_noise, find_axes
from sunpy_nn.utils import WeightsError

NOISE = 3e-3
CTYPES = {"x": "HPLN-TAN", "y": "HPLT-TAN", "wavelength": "WAVE", "stokes": "STOKES", "time": "UTC"}
CUNITS = {"x": "arcsec", "y": "arcsec", "wavelength": "nm", "stokes": "", "time": "s"}


def make_wcs(array_order):
    """A WCS for a cube whose numpy axes are ``array_order`` (FITS/WCS axes are the reverse)."""
    names = list(reversed(array_order))
    w = WCS(naxis=len(names))
    w.wcs.ctype = [CTYPES[n] for n in names]
    w.wcs.cunit = [CUNITS[n] for n in names]
    w.wcs.cdelt = [{"x": 0.059, "y": 0.059, "wavelength": 0.01, "stokes": 1, "time": 30}[n] for n in names]
    w.wcs.crval = [{"x": 0, "y": 0, "wavelength": 854.2, "stokes": 1, "time": 0}[n] for n in names]
    w.wcs.crpix = [1] * len(names)
    return w


def truth_cube(nt=6, nw=3, n=64, seed=0):
    """Smooth, signed Q/U/V structures (strong and weak) on a flat Stokes I; canonical (t, s, w, y, x)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    t = np.zeros((nt, 4, nw, n, n), np.float32)
    t[:, 0] = 1.0
    for s in (1, 2, 3):
        for w in range(nw):
            blobs = sum(
                a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))
                for a, cx, cy, r in zip(
                    rng.uniform(-0.02, 0.02, 6),
                    rng.uniform(0, n, 6),
                    rng.uniform(0, n, 6),
                    rng.uniform(3, 8, 6),
                    strict=True,
                )
            )
            t[:, s, w] = blobs * (1 - 0.3 * w)
    return t


def noisy_cube(truth, order=("time", "stokes", "wavelength", "y", "x"), seed=1):
    noisy = truth + np.random.default_rng(seed).normal(0, NOISE, truth.shape).astype(np.float32)
    canon = ("time", "stokes", "wavelength", "y", "x")
    perm = [canon.index(a) for a in order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NDCube(
            np.transpose(noisy, perm), wcs=make_wcs(order), unit=u.dimensionless_unscaled, meta={"OBSERVER": "SST"}
        )


TRUTH = truth_cube()
CUBE = noisy_cube(TRUTH)
# Short runs: a larger learning rate than the paper's 1e-4 so that a few hundred patches suffice.
FIT = {"epochs": 4, "patches_per_epoch": 400, "patch_size": 32, "lr": 1e-3, "seed": 0, "progress": False}


@pytest.fixture(scope="module")
def trained():
    return Denoiser(n_filters=16).fit(CUBE, **FIT)


# -------------------------------------------------------------------------------------------------------- axes
@pytest.mark.parametrize("order", list(itertools.permutations(["time", "stokes", "wavelength", "y", "x"]))[::17])
def test_axes_found_in_any_order(order):
    cube = noisy_cube(TRUTH[:2, :, :, :16, :16], order)
    axes = find_axes(cube)
    for name in ("time", "stokes", "wavelength"):
        assert getattr(axes, name) == order.index(name)
    assert {axes.y, axes.x} == {order.index("y"), order.index("x")}
    np.testing.assert_array_equal(axes.to_canonical(cube.data).shape, (2, 4, 3, 16, 16))
    np.testing.assert_array_equal(axes.from_canonical(axes.to_canonical(cube.data)), cube.data)


def test_optional_axes():
    cube = NDCube(np.zeros((16, 16)), wcs=make_wcs(["y", "x"]))
    axes = find_axes(cube)
    assert (axes.time, axes.stokes, axes.wavelength) == (None, None, None)
    assert axes.to_canonical(cube.data).shape == (1, 1, 1, 16, 16)


def test_unusable_cube_lists_physical_types():
    w2 = WCS(naxis=2)  # spectral and Stokes axes but no spatial ones
    w2.wcs.ctype = ["WAVE", "STOKES"]
    with pytest.raises(ValueError, match=r"physical types \[\('phys.polarization.stokes',\), \('em.wl',\)\]"):
        find_axes(NDCube(np.zeros((4, 3)), wcs=w2))


# ------------------------------------------------------------------------------------------------------- noise
def test_noise_estimates():
    frames = TRUTH[:, 3] + np.random.default_rng(2).normal(0, NOISE, TRUTH[:, 3].shape)
    assert estimate_noise(frames) == pytest.approx(NOISE, rel=0.05)  # consecutive scans
    assert estimate_noise(frames[:1]) == pytest.approx(NOISE, rel=0.1)  # single scan, smooth signal


# --------------------------------------------------------------------------------------------------- denoising
def test_denoising_reduces_noise_and_keeps_its_statistics(trained):
    out = trained.predict(CUBE, progress=False)
    qu_v = np.s_[:, 1:]
    before = np.std(CUBE.data[qu_v] - TRUTH[qu_v])
    after = np.std(out.data[qu_v] - TRUTH[qu_v])
    assert after < before / 3  # small-scale version of the paper's 5x (benchmarks/denoise_quality.py)
    residual = CUBE.data[qu_v] - out.data[qu_v]
    assert np.std(residual) == pytest.approx(NOISE, rel=0.1)  # what is removed has the injected noise's std
    pca = pca_denoise(CUBE)
    assert after < np.std(pca.data[qu_v] - TRUTH[qu_v])  # beats the PCA baseline


def test_output_cube_keeps_wcs_unit_meta_and_input(trained):
    before = CUBE.data.copy()
    meta_before = copy.deepcopy(CUBE.meta)
    out = trained.predict(CUBE, progress=False)
    assert out.wcs is CUBE.wcs or out.wcs.to_header() == CUBE.wcs.to_header()
    assert out.unit == CUBE.unit and out.meta["OBSERVER"] == "SST"
    assert out.meta["sunpy_nn"]["denoised_stokes"] == ["Q", "U", "V"]
    np.testing.assert_array_equal(out.data[:, 0], CUBE.data[:, 0])  # Stokes I passes through
    np.testing.assert_array_equal(CUBE.data, before)
    assert CUBE.meta == meta_before
    assert isinstance(out.uncertainty, StdDevUncertainty) and out.uncertainty.array.shape == CUBE.data.shape
    # pass-through Stokes I carries its noise level; denoised Stokes carry a smaller, positive error
    assert np.allclose(out.uncertainty.array[:, 0], trained.noise["I"])
    assert 0 < np.median(out.uncertainty.array[:, 1:]) < NOISE


def test_total_uncertainty_adds_epistemic(trained):
    a = trained.predict(CUBE[:2], uncertainty="aleatoric", progress=False).uncertainty.array
    t = trained.predict(CUBE[:2], uncertainty="total", mc_samples=4, seed=0, progress=False).uncertainty.array
    assert (t[:, 1:] >= a[:, 1:] - 1e-9).all() and (t[:, 1:] > a[:, 1:]).mean() > 0.9
    assert trained.predict(CUBE[:1], uncertainty=None, progress=False).uncertainty is None


def test_single_scan_falls_back_to_neighbour_pairs():
    cube = noisy_cube(TRUTH[:1, :, :, :, :])[0]  # no time axis
    assert find_axes(cube).time is None
    den = Denoiser(n_filters=16).fit(cube, **(FIT | {"patch_size": 16}))
    assert den.fit_settings["pairs"] == "neighbour sub-sampling"
    out = den.predict(cube, progress=False)
    assert np.std(out.data[1:] - TRUTH[0, 1:]) < np.std(cube.data[1:] - TRUTH[0, 1:]) / 2


def test_spectral_mode_and_mismatch(tmp_path):
    den = Denoiser(mode="spectral", n_filters=16).fit(CUBE, **FIT)
    assert den.model.in_channels == 3
    out = den.predict(CUBE, progress=False)
    assert np.std(out.data[:, 1:] - TRUTH[:, 1:]) < np.std(CUBE.data[:, 1:] - TRUTH[:, 1:]) / 2
    with pytest.raises(ValueError, match="trained on 3 wavelengths, the cube has 2"):
        den.predict(noisy_cube(TRUTH[:, :, :2]), progress=False)


def test_save_load_and_warm_start(tmp_path, trained):
    path = trained.save(tmp_path / "den.pt")
    back = Denoiser.load(path)
    a = trained.predict(CUBE[:1], progress=False).data
    np.testing.assert_array_equal(back.predict(CUBE[:1], progress=False).data, a)
    assert back.noise == trained.noise and back.history == trained.history
    n_epochs = len(back.history["train_loss"])
    back.fit(CUBE, epochs=1, patches_per_epoch=50, patch_size=32, seed=1, progress=False)  # fine-tuning
    assert len(back.history["train_loss"]) == n_epochs + 1
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match="SHA-256"):
        Denoiser.load(path)


def test_nan_pixels_excluded_and_kept():
    data = np.array(CUBE.data, copy=True)
    data[:, :, :, :10, :10] = np.nan
    cube = NDCube(data, wcs=CUBE.wcs, unit=CUBE.unit)
    den = Denoiser(n_filters=8).fit(cube, epochs=1, patches_per_epoch=50, patch_size=32, seed=0, progress=False)
    out = den.predict(cube, progress=False)
    assert np.isnan(out.data[:, 1:, :, :10, :10]).all()
    assert np.isfinite(out.data[:, 1:, :, 10:, 10:]).all()


def test_bad_input():
    with pytest.raises(ValueError, match="at least 2 scans"):
        Denoiser().fit(CUBE[0], pairs="time", progress=False)
    with pytest.raises(ValueError, match="larger than the image"):
        Denoiser().fit(CUBE, patch_size=128, progress=False)
    with pytest.raises(ValueError, match=r"Stokes \['W'\] not in this cube"):
        Denoiser().fit(CUBE, stokes=("W",), progress=False)
    with pytest.raises(ValueError, match="not trained"):
        Denoiser().predict(CUBE)
    bad = np.array(CUBE.data, copy=True)
    bad[0, 1, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        Denoiser().fit(NDCube(bad, wcs=CUBE.wcs), progress=False)


def test_denoise_cube_convenience():
    out = denoise_cube(CUBE[:3], epochs=1, seed=0, progress=False, stokes=("V",))
    assert out.meta["sunpy_nn"]["denoised_stokes"] == ["V"]
    np.testing.assert_array_equal(out.data[:, 1], CUBE[:3].data[:, 1])  # Q untouched


def test_pca_auto_rank_finds_signal_rank():
    # spectra that are combinations of 2 fixed profiles: the noise floor keeps exactly 2 components
    rng = np.random.default_rng(0)
    prof = np.stack([np.exp(-((np.arange(15) - 7) ** 2) / 8), np.gradient(np.exp(-((np.arange(15) - 7) ** 2) / 8))])
    amp = rng.normal(0, 0.02, (2, 48, 48))
    clean = np.einsum("kw,kyx->wyx", prof, amp)[None, None]
    noisy = clean + rng.normal(0, NOISE, clean.shape)
    cube = NDCube(noisy, wcs=make_wcs(["time", "stokes", "wavelength", "y", "x"]))
    out = pca_denoise(cube, stokes=("I",))
    assert set(out.meta["sunpy_nn"]["pca_components"].values()) == {2}
    assert np.std(out.data - clean) < np.std(noisy - clean) / 2


def test_cli_denoise_fits_round_trip(tmp_path):
    from astropy.io import fits

    from sunpy_nn.cli import main

    cube = noisy_cube(TRUTH[:3, :, :, :48, :48])
    header = cube.wcs.to_header()
    header["OBSERVER"] = "SST"
    path = tmp_path / "crisp.fits"
    fits.PrimaryHDU(np.asarray(cube.data), header=header).writeto(path)
    out = tmp_path / "clean.fits"
    rc = main(
        [
            "denoise",
            str(path),
            "-o",
            str(out),
            "--epochs",
            "1",
            "--patches",
            "20",
            "--patch-size",
            "16",
            "--seed",
            "0",
            "-q",
        ]
    )
    assert rc == 0
    with fits.open(out) as hdul:
        # written in SSTRED's SOLARNET layout: tabulated wavelengths, header keys kept
        assert hdul[0].header["OBSERVER"] == "SST" and hdul[0].header["CTYPE3"] == "WAVE-TAB"
        assert hdul[0].data.shape == cube.data.shape and hdul["UNCERT"].data.shape == cube.data.shape
        np.testing.assert_array_equal(hdul[0].data[:, 0], cube.data[:, 0])  # Stokes I untouched
        assert not np.array_equal(hdul[0].data[:, 3], cube.data[:, 3])
        assert "Noise2Noise" in str(hdul[0].header["HISTORY"])
