"""denoise_cube / Denoiser: axes, noise scaling, Noise2Noise on synthetic cubes, uncertainty, files, bad input."""

import copy
import itertools
import json
import re
import warnings

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from astropy.wcs import WCS
from ndcube import NDCube

from sunpy_nn import Denoiser, denoise_cube
from sunpy_nn.baselines import pca_denoise
from sunpy_nn.denoise import estimate_noise, find_axes
from sunpy_nn.utils import WeightsError, sha256sum

from .helpers import assert_close_ulps, short_denoise_cube_training

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
def test_a_cube_sliced_to_one_stokes_parameter_keeps_its_name():
    """cube[:, 3] drops the Stokes axis; its WCS keeps V. A new user got "no noise level for Stokes ['?']"."""
    from sunpy_nn.cube import stokes_labels

    cube = noisy_cube(TRUTH[:2, :, :1, :32, :32])
    den = untrained_denoiser(noise=NOISE)
    for s, name in enumerate("IQUV"):
        one = cube[:, s]
        assert stokes_labels(one, find_axes(one)) == [name]
    whole = den.predict(cube, stokes=["V"], seed=0, progress=False)
    alone = denoise_cube(cube[:, 3], denoiser=den, seed=0, progress=False)
    assert_close_ulps(alone.data, np.asarray(whole.data)[:, 3], 64)


def test_a_wcs_in_numpy_axis_order_is_refused_with_the_reason():
    """A new user's WCS with its axes in numpy's order made the 'spatial' axes 4 x 4 px: torch failed deep inside."""
    from astropy.wcs import WCS
    from ndcube import NDCube

    cube = noisy_cube(TRUTH[:2, :, :, :32, :32])  # (time, Stokes, wavelength, y, x)
    wrong = WCS(naxis=5)
    wrong.wcs.ctype = ["UTC", "STOKES", "WAVE", "HPLT-TAN", "HPLN-TAN"]  # numpy's order: FITS wants the reverse
    flipped = NDCube(cube.data, wcs=wrong)
    with pytest.raises(ValueError, match=r"spatial axes .* are 2 x 4 px.*reverse of numpy's order"):
        denoise_cube(flipped, epochs=1, progress=False)
    with pytest.raises(ValueError, match="reverse of numpy's order"):
        untrained_denoiser(noise=NOISE).predict(flipped, progress=False)


@pytest.mark.parametrize("order", list(itertools.permutations(["time", "stokes", "wavelength", "y", "x"]))[::17])
def test_axes_found_in_any_order(order):
    cube = noisy_cube(TRUTH[:2, :, :, :16, :16], order)
    axes = find_axes(cube)
    for name in ("time", "stokes", "wavelength"):
        assert getattr(axes, name) == order.index(name)
    assert {axes.y, axes.x} == {order.index("y"), order.index("x")}
    np.testing.assert_array_equal(axes.to_canonical(cube.data).shape, (2, 4, 3, 16, 16))
    np.testing.assert_array_equal(axes.from_canonical(axes.to_canonical(cube.data)), cube.data)


def test_a_wcs_without_physical_types_gets_the_documented_error():
    """CTYPE '' (a plain FITS image read as a cube) made find_axes fail on None: 'expected str instance'."""
    cube = NDCube(np.zeros((3, 32, 32)), wcs=WCS(naxis=3))
    with pytest.raises(ValueError, match=r"Cannot find the axes of this cube.*physical types \[\(\), \(\), \(\)\]"):
        find_axes(cube)


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
    # pass-through Stokes I carries this cube's noise level (sampled from a few scans: within 2 % of the level fit
    # estimated from all of them); denoised Stokes carry a smaller, positive error
    np.testing.assert_array_equal(out.uncertainty.array[:, 0], np.float32(out.meta["sunpy_nn"]["noise_of_input"]["I"]))
    assert out.meta["sunpy_nn"]["noise_of_input"]["I"] == pytest.approx(trained.noise["I"], rel=0.02)
    assert 0 < np.median(out.uncertainty.array[:, 1:]) < NOISE


def test_total_uncertainty_adds_epistemic(trained):
    a = trained.predict(CUBE[:2], uncertainty="aleatoric", progress=False).uncertainty.array
    t = trained.predict(CUBE[:2], uncertainty="total", mc_samples=4, seed=0, progress=False).uncertainty.array
    assert (t[:, 1:] >= a[:, 1:] - 1e-9).all() and (t[:, 1:] > a[:, 1:]).mean() > 0.9
    assert trained.predict(CUBE[:1], uncertainty=None, progress=False).uncertainty is None


def test_dropout_draws_run_the_network_without_its_variance_head(trained, monkeypatch):
    """The draws' variance would go unused: they run the head-less view, with the whole network's epistemic variance."""
    from sunpy_nn.denoise._frames import _FramesMixin

    seen = []
    real = _FramesMixin._run

    def spy(self, frame, dev, tile_size, n_out, model=None, *args):
        net = self.model if model is None else model
        seen.append((any(getattr(m, "mc", False) for m in net.modules()), net.variance_head))
        return real(self, frame, dev, tile_size, n_out, model, *args)

    monkeypatch.setattr(_FramesMixin, "_run", spy)
    new = trained.predict(CUBE[:1], uncertainty="total", mc_samples=3, seed=0, progress=False).uncertainty.array
    draws = [head for mc, head in seen if mc]
    frames = len(seen) - len(draws)  # one run of the whole network per frame
    assert frames > 0 and len(draws) == 3 * frames and not any(draws)
    # the whole network's draws (as before): other masks (its head drew some too), the same epistemic variance
    monkeypatch.setattr(_FramesMixin, "_run_mean", lambda self, *args: real(self, *args)[0])
    old = trained.predict(CUBE[:1], uncertainty="total", mc_samples=3, seed=0, progress=False).uncertainty.array
    alea = trained.predict(CUBE[:1], progress=False).uncertainty.array
    epistemic = [float(np.mean(t[:, 1:] ** 2 - alea[:, 1:] ** 2)) for t in (new, old)]
    assert epistemic[0] > 0 and epistemic[0] == pytest.approx(epistemic[1], rel=0.1)  # 0.5 % apart when written


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
    assert back.fit_settings == trained.fit_settings
    n_epochs = len(back.history["train_loss"])
    first = trained.fit_settings["fits"]
    assert [f["epochs"] for f in first] == [n_epochs]
    back.fit(CUBE, epochs=1, patches_per_epoch=50, patch_size=32, lr=5e-4, seed=1, progress=False)  # fine-tuning
    assert len(back.history["train_loss"]) == n_epochs + 1
    # every fit's recipe on record, in order; the top level is the last fit's, with all epochs
    fits = back.fit_settings["fits"]
    assert fits[0] == first[0] and len(fits) == 2
    assert (fits[1]["epochs"], fits[1]["lr"], fits[1]["seed"]) == (1, 5e-4, 1)
    assert (back.fit_settings["epochs"], back.fit_settings["lr"]) == (n_epochs + 1, 5e-4)
    again = Denoiser.load(back.save(tmp_path / "again.pt"))
    assert again.fit_settings["fits"] == fits
    card = json.loads((tmp_path / "again.json").read_text())
    assert card["training_recipe"]["fits"] == fits
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match="SHA-256"):
        Denoiser.load(path)


def test_a_file_from_before_the_fits_were_kept_keeps_its_recipe_as_the_first_fit():
    from sunpy_nn.denoise._fit import _earlier_fits

    old = {"epochs": 10, "lr": 1e-3, "precision": "float32", "seed": 0, "scan_shifts": None, "calibration": {}}
    recipe_keys = ("epochs", "lr", "precision", "seed", "loss")
    (first,) = _earlier_fits(old, recipe_keys)
    recorded = first.pop("recorded")
    assert first == {"epochs": 10, "lr": 1e-3, "precision": "float32", "seed": 0} and "all fits" in recorded
    assert _earlier_fits({}, recipe_keys) == []  # untrained: this fit is the first


def test_nan_pixels_excluded_and_kept():
    data = np.array(CUBE.data, copy=True)
    data[:, :, :, :10, :10] = np.nan
    cube = NDCube(data, wcs=CUBE.wcs, unit=CUBE.unit)
    den = Denoiser(n_filters=8).fit(cube, epochs=1, patches_per_epoch=50, patch_size=32, seed=0, progress=False)
    out = den.predict(cube, progress=False)
    assert np.isnan(out.data[:, 1:, :, :10, :10]).all()
    assert np.isfinite(out.data[:, 1:, :, 10:, 10:]).all()
    # The uncertainty is NaN where the data are, Stokes I (not denoised, its noise level elsewhere) included.
    sd = out.uncertainty.array
    assert np.isnan(sd[:, :, :, :10, :10]).all() and np.isfinite(sd[:, :, :, 10:, 10:]).all()
    assert np.unique(sd[:, 0, :, 10:, 10:]).size == 1  # one noise level (this cube's estimate)


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
    # a Stokes parameter without data (all NaN, or masked) is named, with the fix, before any work; also one that is
    # passed through, whose noise is measured too
    empty = np.array(CUBE.data, copy=True)
    empty[:, 3] = np.nan
    for stokes in (("Q", "U", "V"), ("Q",)):
        with pytest.raises(ValueError, match=r"Stokes \['V'\] of this cube has no finite values.*slice the cube"):
            Denoiser().fit(NDCube(empty, wcs=CUBE.wcs), stokes=stokes, progress=False)
    mask = np.zeros(CUBE.data.shape, bool)
    mask[:, 2:] = True
    with pytest.raises(ValueError, match=r"Stokes \['U', 'V'\] of this cube have no finite values"):
        denoise_cube(NDCube(CUBE.data, wcs=CUBE.wcs, mask=mask), progress=False)
    # the fix the message gives works: the cube sliced to the Stokes parameters with data is accepted
    sliced = NDCube(empty, wcs=CUBE.wcs)[:, :3]
    assert Denoiser()._prepare(sliced, ("Q", "U"))[2] == ["I", "Q", "U"]


def test_denoise_cube_convenience(monkeypatch):
    short_denoise_cube_training(monkeypatch)
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


def test_cli_denoise_fits_round_trip(tmp_path, capsys):
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
            "--temporal",
            "auto",
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
        assert "sunpy_nn temporal: 1" in str(hdul[0].header["HISTORY"])  # 3 scans: 'auto' takes a half-window of 1
    # more scans than the series has: a clear error before training
    args = ["denoise", str(path), "-o", str(tmp_path / "t.fits"), "--temporal", "2", "--epochs", "1", "-q"]
    assert main(args) == 2
    assert "needs at least 5 scans" in capsys.readouterr().err


# ------------------------------------------------------------------------------- what is not asked for is kept
def untrained_denoiser(noise=NOISE, n_filters=4):
    """A denoiser with random weights and given noise levels: enough to check what predict keeps (no training)."""
    den = Denoiser(n_filters=n_filters)
    torch.manual_seed(0)
    den.model, den.n_wavelengths = den._build(1), 1
    den.noise = {"I": noise, "Q": noise, "U": noise, "V": noise}
    return den


class HeaderLikeMeta(dict):
    """A custom dict subclass as users pass as meta."""


def rich_cube(meta, lazy=False, n=24):
    """A float64 cube with NaN, a mask, an uncertainty, a psf, extra and global coordinates."""
    data = np.asarray(noisy_cube(TRUTH[:2, :, :2, :n, :n]).data, dtype=np.float64)
    data[0, 0, 0, 3, 4] = np.nan  # a NaN in Stokes I
    mask = np.zeros(data.shape, bool)
    mask[:, :, :, 5:9, 6:10] = True  # masked in every Stokes parameter
    sigma = np.random.default_rng(4).uniform(1e-3, 5e-3, data.shape)
    if lazy:
        import dask.array as da

        data, mask_arr = da.from_array(data, chunks=(1, 1, 1, n, n)), mask
    else:
        mask_arr = mask
    cube = NDCube(
        data,
        wcs=make_wcs(("time", "stokes", "wavelength", "y", "x")),
        uncertainty=StdDevUncertainty(sigma),
        mask=mask_arr,
        meta=meta,
        unit=u.dimensionless_unscaled,
        psf=np.ones((3, 3)) / 9,
    )
    cube.extra_coords.add("exposure", 0, [0.1, 0.12] * u.s)
    cube.global_coords.add("line", "custom:line", "Ca II 854.2 nm")
    return cube


@pytest.mark.parametrize("meta_kind", ["ordered", "subclass", "ndmeta", "header"])
@pytest.mark.parametrize("lazy", [False, True])
def test_what_is_not_denoised_comes_back_bit_for_bit(meta_kind, lazy):
    import collections

    from astropy.io import fits
    from ndcube import NDMeta

    meta = {
        "ordered": collections.OrderedDict(OBSERVER="SST", NOTE="x"),
        "subclass": HeaderLikeMeta(OBSERVER="SST", NOTE="x"),
        "ndmeta": NDMeta({"OBSERVER": "SST", "NOTE": "x"}, key_comments={"OBSERVER": "telescope"}),
        "header": fits.Header({"OBSERVER": "SST", "NOTE": "x"}),
    }[meta_kind]
    cube = rich_cube(meta, lazy=lazy)
    before = (np.array(cube.data), cube.mask.copy(), cube.uncertainty.array.copy(), copy.deepcopy(cube.meta))
    out = untrained_denoiser().predict(cube, stokes=["V"], progress=False)
    data, unc = np.asarray(out.data), np.asarray(out.uncertainty.array)
    assert data.dtype == np.float64  # the input's type: its values unchanged
    # Stokes I, Q, U: bit for bit, NaN and masked pixels included; their uncertainty is the cube's own
    np.testing.assert_array_equal(data[:, :3], before[0][:, :3])
    np.testing.assert_array_equal(unc[:, :3], before[2][:, :3])
    assert np.isnan(data[0, 0, 0, 3, 4])
    # Stokes V denoised: NaN where masked, finite elsewhere, a positive uncertainty
    assert np.isnan(data[:, 3, :, 5:9, 6:10]).all() and np.isfinite(data[:, 3, :, :5]).all()
    assert (unc[:, 3, :, :5] > 0).all()
    np.testing.assert_array_equal(np.asarray(out.mask), before[1])
    assert type(out.meta) is type(cube.meta) and out.meta["OBSERVER"] == "SST" and out.meta["NOTE"] == "x"
    if meta_kind == "header":
        assert "weights_sha256" in str(out.meta["HISTORY"])  # the provenance, as a FITS header holds it
    else:
        assert out.meta["sunpy_nn"]["denoised_stokes"] == ["V"]
    if meta_kind == "ndmeta":
        assert out.meta.key_comments["OBSERVER"] == "telescope"
    assert list(out.extra_coords.keys()) == ["exposure"]
    np.testing.assert_array_equal(out.axis_world_coords(wcs=out.extra_coords)[0], [0.1, 0.12] * u.s)
    assert out.global_coords["line"] == "Ca II 854.2 nm"
    np.testing.assert_array_equal(out.psf, cube.psf)
    # the caller's cube is untouched, and shares nothing the result could change
    np.testing.assert_array_equal(np.asarray(cube.data), before[0])
    np.testing.assert_array_equal(cube.mask, before[1])
    assert dict(cube.meta) == dict(before[3]) and "sunpy_nn" not in cube.meta
    out.extra_coords.add("more", 0, [1, 2] * u.s)
    assert list(cube.extra_coords.keys()) == ["exposure"]


def test_pass_through_uncertainty_is_the_cubes_own_noise():
    cube = noisy_cube(TRUTH[:2, :, :1, :32, :32])  # no uncertainty of its own
    den = untrained_denoiser(noise=1.5 * NOISE)  # trained at another noise (within the factor 2)
    out = den.predict(cube, stokes=["Q"], progress=False)
    data = np.asarray(cube.data, dtype=np.float32)
    # the noise estimated on this cube, as estimate_noise gives it: Stokes I cross-calibrated on Q, U and V
    stokes_i = np.median(
        [estimate_noise(data[:, 0], method="cross-calibrated", reference=data[:, r]) for r in (1, 2, 3)]
    )
    for s in (0, 2, 3):
        expected = stokes_i if s == 0 else estimate_noise(data[:, s], polarisation=True)
        np.testing.assert_allclose(out.uncertainty.array[:, s], expected, rtol=1e-6)
    assert out.meta["sunpy_nn"]["noise_of_input"]["I"] == pytest.approx(stokes_i, rel=1e-6)
    assert out.meta["sunpy_nn"]["noise"]["Q"] == 1.5 * NOISE


# --------------------------------------------------------------------------------------------------- small input
def one_frame(n):
    data = TRUTH[0, 3, 0, :n, :n] + np.random.default_rng(7).normal(0, NOISE, (n, n))
    return NDCube(data.astype(np.float32), wcs=make_wcs(["y", "x"]))


def test_default_patch_fits_a_deeper_unet():
    # The paper's 52 px is not a multiple of 2**3: a depth-3 U-Net trains on 48-px patches, where it once failed.
    data = np.random.default_rng(3).normal(0.0, NOISE, (128, 128)).astype(np.float32)
    den = Denoiser(n_filters=2, depth=3).fit(
        NDCube(data, wcs=make_wcs(["y", "x"])), epochs=1, patches_per_epoch=10, seed=0, progress=False
    )
    assert den.fit_settings["patch_size"] == 48


def test_denoise_cube_adapts_to_a_small_frame(caplog, monkeypatch):
    short_denoise_cube_training(monkeypatch)
    with caplog.at_level("INFO", logger="sunpy_nn.denoise"):
        out = denoise_cube(one_frame(64), epochs=1, seed=0, progress=False)
    assert out.data.shape == (64, 64) and np.isfinite(out.data).all()
    assert "patch_size=28" in caplog.text  # 52-pixel patches (104 with neighbour pairs) do not fit 64 x 58 px
    assert out.meta["sunpy_nn"]["fit"]["patch_size"] == 28
    with pytest.raises(ValueError, match=r"too small to train on.*at least 8 px") as info:
        denoise_cube(one_frame(12), epochs=1, progress=False)
    # the default strip is not to blame there, and denoise_cube has no val_fraction: the message names neither
    assert "validation strip" not in str(info.value) and "val_fraction" not in str(info.value)
    assert "denoise_cube(cube, denoiser=...)" in str(info.value)
    # a frame that only the default validation strip makes too small trains on all of it, without a validation loss
    small = denoise_cube(one_frame(16), epochs=1, seed=0, progress=False)
    assert np.isfinite(small.data).all() and small.meta["sunpy_nn"]["fit"]["patch_size"] == 8
    assert small.meta["sunpy_nn"]["fit"]["val_fraction"] == 0.0  # the strip dropped, and the record says so
    # a strip asked for is kept, and the message says what it costs
    with pytest.raises(ValueError, match=r"16 x 14 px for training, after the validation strip.*val_fraction=0"):
        Denoiser().fit(one_frame(16), epochs=1, val_fraction=0.1, progress=False)
    # a patch size asked for names the option that exists where it was asked
    with pytest.raises(ValueError, match=r"use a smaller patch_size \(--patch-size"):
        denoise_cube(one_frame(64), epochs=1, patch_size=48, progress=False)


def test_arguments_are_checked_before_any_work(monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the cube was read before the arguments were checked")

    monkeypatch.setattr(Denoiser, "_prepare", no_work)
    cube = CUBE[:2]
    bad_fit = [
        ({"epochs": 0}, "epochs must be an integer of at least 1"),
        ({"epochs": 2.5}, "epochs"),
        ({"patches_per_epoch": -5}, "patches_per_epoch must be an integer of at least 5"),  # one default batch
        ({"patches_per_epoch": 4}, "patches_per_epoch must be an integer of at least 5"),
        ({"patches_per_epoch": 5, "batch_size": 10}, "patches_per_epoch must be an integer of at least 10"),
        ({"batch_size": 0}, "batch_size"),
        ({"patch_size": 30}, "patch_size must be a multiple of 4"),
        ({"patch_size": 4}, "patch_size must be an integer of at least 8"),
        ({"lr": 0}, "lr must be a finite number"),
        ({"lr": float("nan")}, "lr"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"seed": -1}, "seed"),
        ({"device": "gpu"}, "is not a device torch knows"),
    ]
    for kwargs, message in bad_fit:
        den = Denoiser()
        with pytest.raises(ValueError, match=message):
            den.fit(cube, progress=False, **kwargs)
        assert den.model is None  # a failed fit leaves the denoiser as it was
    for kwargs, message in [({"n_filters": 0}, "n_filters"), ({"depth": -1}, "depth"), ({"dropout": 1.5}, "dropout")]:
        with pytest.raises(ValueError, match=message):
            Denoiser(**kwargs)
    den = untrained_denoiser()
    bad_predict = [
        ({"uncertainty": "total", "mc_samples": 1}, "mc_samples must be an integer of at least 2"),
        ({"mc_samples": 0}, "mc_samples"),
        ({"tile_size": 0}, "tile_size must be an integer of at least 1"),
        ({"precision": "fp8"}, "precision"),
        ({"uncertainty": "both"}, "uncertainty"),
        ({"device": "gpu"}, "is not a device torch knows"),
    ]
    for kwargs, message in bad_predict:
        with pytest.raises(ValueError, match=message):
            den.predict(cube, progress=False, **kwargs)
    no_dropout = untrained_denoiser()
    no_dropout.dropout = 0.0
    with pytest.raises(ValueError, match="dropout=0"):
        no_dropout.predict(cube, uncertainty="total", progress=False)
    # denoise_cube: prediction options are checked before training, training options refused with a denoiser
    with pytest.raises(ValueError, match="epochs must be"):
        denoise_cube(cube, epochs=0, progress=False)
    with pytest.raises(ValueError, match="precision"):
        denoise_cube(cube, precision="fp8", progress=False)
    with pytest.raises(ValueError, match=r"epochs.*applies only when training"):
        denoise_cube(cube, denoiser=den, epochs=3, progress=False)
    with pytest.raises(ValueError, match=r"mode='spectral'.*applies only when training"):
        denoise_cube(cube, denoiser=den, mode="spectral", progress=False)


# ------------------------------------------------------------------------------------------ reused denoisers
def test_reused_denoiser_warns_when_the_noise_differs(tmp_path):
    from sunpy_nn import SunpyNNUserWarning

    cube = noisy_cube(TRUTH[:2, :, :1, :32, :32])  # noise 3e-3
    den = untrained_denoiser(noise=NOISE / 2.5)
    # (3e-3 read from 1024 scan differences, a scatter of 3.5 %: 2.89e-3 here)
    level = r"\(0\.00(2[89]|30)\d*\)"
    with pytest.warns(SunpyNNUserWarning, match=rf"Stokes V: this cube's noise {level} differs.*at \(0\.0012\)"):
        den.predict(cube, stokes=["V"], progress=False)
    back = Denoiser.load(den.save(tmp_path / "den.pt"))
    with pytest.warns(SunpyNNUserWarning, match=r"Stokes Q:.*by a factor of 2\.[56]"):
        denoise_cube(cube, denoiser=back, stokes=["Q"], progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SunpyNNUserWarning)
        untrained_denoiser(noise=NOISE * 1.3).predict(cube, progress=False)  # within a factor 2: no warning


def test_a_reused_denoiser_converts_its_noise_levels_to_the_cubes_unit(tmp_path):
    """Trained on I/Ic and applied to I/Ic in percent, it scaled the data by the training noise in the wrong unit."""
    from sunpy_nn import SunpyNNUserWarning

    cube = noisy_cube(TRUTH[:2, :, :1, :32, :32])
    den = untrained_denoiser(noise=NOISE)
    den.unit = ""  # as fit records it for a dimensionless training cube (I/Ic)
    ref = den.predict(cube, seed=0, progress=False)
    percent = NDCube(np.asarray(cube.data) * 100, wcs=cube.wcs, unit=u.percent)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SunpyNNUserWarning)  # the same noise, once converted: no warning either
        out = den.predict(percent, seed=0, progress=False)
    span = np.nanmax(np.abs(ref.data[:, 1:]))
    np.testing.assert_allclose(out.data[:, 1:] / 100, ref.data[:, 1:], rtol=0, atol=1e-6 * span)
    np.testing.assert_allclose(out.uncertainty.array[:, 1:] / 100, ref.uncertainty.array[:, 1:], rtol=1e-5)
    trained_on = r"in ct and the denoiser was trained on a cube in no unit \(dimensionless\), which does not convert"
    with pytest.warns(SunpyNNUserWarning, match=trained_on):  # it said "in , which"
        den.predict(NDCube(np.asarray(cube.data) * 1e3, wcs=cube.wcs, unit=u.ct), stokes=["V"], progress=False)
    assert den.provenance()["unit"] == "dimensionless"  # a HISTORY line "sunpy_nn unit:" said nothing
    # The unit is saved; a file saved before it was kept (unit None) uses its levels as they are, without a word.
    assert Denoiser.load(den.save(tmp_path / "den2.pt")).unit == ""
    den.unit = None
    assert den._trained_noise(u.ct) == den.noise


def test_fit_records_the_training_cubes_unit():
    cube = noisy_cube(TRUTH[:2, :, :1, :32, :32])
    den = Denoiser(n_filters=8).fit(
        NDCube(np.asarray(cube.data), wcs=cube.wcs, unit=u.percent),
        epochs=1,
        patches_per_epoch=10,
        patch_size=16,
        seed=0,
        progress=False,
    )
    assert den.unit == "%" and u.Unit(den.unit) == u.percent


def test_denoise_cube_takes_a_saved_denoisers_path(tmp_path):
    """As enhance_map(weights=path): a new user's denoise_cube(cube, denoiser="file.pt") was an AttributeError."""
    cube = noisy_cube(TRUTH[:2, :, :1, :32, :32])
    den = untrained_denoiser(noise=NOISE)
    path = den.save(tmp_path / "den.pt")
    expected = den.predict(cube, stokes=["V"], seed=0, progress=False)
    for given in (path, str(path)):
        out = denoise_cube(cube, denoiser=given, stokes=["V"], seed=0, progress=False)
        np.testing.assert_array_equal(out.data, expected.data)
    with pytest.raises(TypeError, match="a trained Denoiser or the path"):
        denoise_cube(cube, denoiser=3, progress=False)
    with pytest.raises(ValueError, match=r"^epochs applies only when training"):
        denoise_cube(cube, denoiser=path, epochs=3, progress=False)


# ---------------------------------------------------------------------------------- the command line fails early
@pytest.fixture
def small_fits(tmp_path):
    from sunpy_nn.io import write_crisp

    cube = noisy_cube(TRUTH[:2, :, :1, :32, :32])
    cube.wcs.wcs.dateobs = "2020-06-01T08:00:00"
    return write_crisp(cube, tmp_path / "in.fits")


def test_cli_checks_output_and_arguments_before_training(tmp_path, small_fits, monkeypatch, capsys):
    from sunpy_nn.cli import main

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the output and arguments were checked")

    monkeypatch.setattr(Denoiser, "fit", no_training)
    (tmp_path / "exists.fits").write_bytes(b"")
    (tmp_path / "afile").write_bytes(b"")
    (tmp_path / "den.pt").write_bytes(b"not a denoiser")
    cases = [
        (["-o", str(tmp_path / "missing" / "out.fits")], "output folder .*missing does not exist"),
        (["-o", str(tmp_path / "afile" / "out.fits")], "not a folder"),
        (["-o", str(tmp_path / "exists.fits")], "exists; pass --overwrite to replace it"),
        (["-o", str(tmp_path / "out.png")], "unknown output type '.png'"),
        (["-o", str(tmp_path / "out.fits.gz")], "writes uncompressed FITS.*out.fits and compress"),
        (["-o", str(tmp_path / "out.fits"), "--stokes", "X"], "--stokes takes I, Q, U, V"),
        (["-o", str(tmp_path / "out.fits"), "--wavelength-unit", "parsec/banana"], "--wavelength-unit"),
        (["-o", str(tmp_path / "out.fits"), "--denoiser", str(tmp_path / "den.pt"), "--epochs", "3"], "--epochs"),
        (["-o", str(tmp_path / "out.fits"), "--denoiser", str(tmp_path / "den.pt")], "Could not read denoiser"),
        (["-o", str(tmp_path / "out.fits"), "--patch-size", "30"], "--patch-size must be a multiple of 4"),
    ]
    for args, message in cases:
        assert main(["denoise", str(small_fits), *args, "-q"]) == 2
        assert re.search(message, capsys.readouterr().err), message
    for args in (["--epochs", "0"], ["--patches", "-3"], ["--patch-size", "4"], ["--seed", "-1"]):
        with pytest.raises(SystemExit) as err:  # argparse: usage and the option named, before anything
            main(["denoise", str(small_fits), "-o", str(tmp_path / "o.fits"), *args])
        assert err.value.code == 2 and args[0] in capsys.readouterr().err
    assert not (tmp_path / "out.fits").exists() and not (tmp_path / "o.fits").exists()


def test_denoised_file_history_is_readable(tmp_path, small_fits):
    from astropy.io import fits

    from sunpy_nn import __version__
    from sunpy_nn.io import read_crisp, write_crisp

    cube = read_crisp(small_fits, lazy=False)
    den = untrained_denoiser()
    path = den.save(tmp_path / "crisp_8542.pt")
    out = Denoiser.load(path).predict(cube, progress=False)
    written = write_crisp(out, tmp_path / "clean.fits")
    with fits.open(written) as hdul:
        history = [str(h) for h in hdul[0].header["HISTORY"]]
    assert all(len(line) <= 72 for line in history)
    values, key = {}, None  # read back as documented: "sunpy_nn key: value", long values on indented lines
    for line in history:
        if line.startswith("  ") and key:
            values[key] += line[2:]
        elif line.startswith("sunpy_nn "):
            key, _, value = line[len("sunpy_nn ") :].partition(":")
            values[key] = value.strip()
    assert values["software"] == f"sunpy_nn {__version__}"
    assert values["method"].startswith("Noise2Noise") and values["denoised_stokes"] == "[Q, U, V]"
    assert values["model.file"] == "crisp_8542.pt"
    assert values["model.file_sha256"] == sha256sum(path)
    assert values["model.weights_sha256"] == out.meta["sunpy_nn"]["model"]["weights_sha256"]
    assert float(values["noise.V"]) == den.noise["V"]  # the value, not a truncated key
    assert values["architecture.n_filters"] == "4"


def test_small_tile_size_adapts_to_the_network(caplog):
    data = np.pad(np.asarray(one_frame(64).data), ((0, 96), (0, 96)), mode="reflect")  # 160 x 160: tiled
    cube = NDCube(data, wcs=make_wcs(["y", "x"]))
    den = untrained_denoiser()
    den.noise = {"?": NOISE}  # (no Stokes axis)
    whole = den.predict(cube, progress=False)
    with caplog.at_level("INFO", logger="sunpy_nn.denoise"):
        tiled = den.predict(cube, tile_size=10, progress=False)  # was: "tile of 64 px is too small for a halo"
    # the smallest tile: a core as wide as both halos of the receptive radius (37 px: the variance head runs on the
    # network's output), rounded up to the alignment
    radius = den.model.receptive_radius
    assert radius == 37
    assert "tile_size=10 is too small" in caplog.text and f"using {-(-(4 * radius + 4) // 4) * 4}" in caplog.text
    scale = np.ptp(whole.data)
    np.testing.assert_allclose(tiled.data, whole.data, rtol=0, atol=1e-5 * scale)


def test_pca_keeps_meta_type_and_coordinates():
    import collections

    cube = rich_cube(collections.OrderedDict(OBSERVER="SST"), lazy=False)
    out = pca_denoise(cube, stokes=("V",))
    assert type(out.meta) is collections.OrderedDict and out.meta["OBSERVER"] == "SST"
    assert "pca_components" in out.meta["sunpy_nn"] and "sunpy_nn" not in cube.meta
    assert list(out.extra_coords.keys()) == ["exposure"] and out.global_coords["line"] == "Ca II 854.2 nm"
