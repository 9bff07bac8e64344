"""Enhance v2 training: real-frame sources, the randomised degradation, the detector model and versioned weights."""

import astropy.units as u
import numpy as np
import pytest

from sunpy_nn.data import available_models, load_weights, model_card, save_weights
from sunpy_nn.nn import EnhanceNet
from sunpy_nn.psf import HMI_PSF_MODIFIED, hmi_psf, rebin_matrix, sampling_matrix
from sunpy_nn.training import DegradationModel, TrainingSource, convert_continuum_wavelength, make_source_pairs
from sunpy_nn.training.degradation import degrade_scene
from sunpy_nn.training.sources import load_reference_sources

from .helpers import SHARED_DATA, shared_file


# ------------------------------------------------------------------------------------------------ Planck conversion
def test_brightness_temperature_conversion():
    c = np.array([0.2, 0.36, 0.8, 1.0, 1.2])
    # Same wavelength: identity; the quiet Sun stays at 1 at every wavelength.
    np.testing.assert_allclose(convert_continuum_wavelength(c, 617.3 * u.nm, 617.3 * u.nm), c, rtol=1e-12)
    np.testing.assert_allclose(convert_continuum_wavelength(1.0, 854.2 * u.nm), 1.0, rtol=1e-12)
    # Round trip 854 -> 617 -> 854.
    there = convert_continuum_wavelength(c, 854.2 * u.nm)
    np.testing.assert_allclose(convert_continuum_wavelength(there, 617.3 * u.nm, 854.2 * u.nm), c, rtol=1e-10)
    # Contrasts grow towards the blue: dark gets darker and bright brighter at 617 nm than at 854 nm.
    assert np.all(np.diff(there) > 0)
    assert there[0] < c[0] and there[-1] > c[-1]
    # Wien limit check: an umbra at 4000 K against 6300 K, from Planck's law directly.
    hc_k = 0.0143877688  # m K
    b = [1 / np.expm1(hc_k / (lam * t)) for lam in (854.2e-9, 617.3e-9) for t in (4000, 6300)]
    got = convert_continuum_wavelength(b[0] / b[1], 854.2 * u.nm)
    assert got == pytest.approx(b[2] / b[3], rel=1e-8)
    with pytest.raises(ValueError, match="positive"):
        convert_continuum_wavelength(np.array([0.5, -0.1]), 854.2 * u.nm)


# -------------------------------------------------------------------------------------------------- detector model
def test_sampling_matrix_between_point_and_area():
    area = sampling_matrix(200, 0.059, 0.504, 0.4, 20, fill=1.0)
    np.testing.assert_allclose(area, rebin_matrix(200, 0.059, 0.504, 0.4, 20), atol=1e-14)
    for fill in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(sampling_matrix(200, 0.059, 0.504, 0.4, 20, fill).sum(axis=1), 1.0, atol=1e-12)
    # Point sampling of a linear ramp returns the ramp at the pixel centres exactly.
    ramp = np.arange(200) + 0.5  # value at the input pixel centres
    centres = 0.4 + 0.504 / 0.059 * (np.arange(20) + 0.5)
    np.testing.assert_allclose(sampling_matrix(200, 0.059, 0.504, 0.4, 20, 0.0) @ ramp, centres, rtol=1e-12)
    with pytest.raises(ValueError, match="fill"):
        sampling_matrix(200, 0.059, 0.504, 0.4, 20, 1.5)


def test_pixel_area_integration_damps_a_cosine_by_its_sinc():
    # A cosine of period P seen through the same PSF: integrating over a pixel of width a multiplies its amplitude
    # by sinc(a / P) relative to point sampling (noise off, so the ratio is exact up to the kernel's discretisation).
    scale, period = 0.0662, 2.4  # arcsec; period in arcsec, about 4.8 HMI pixels
    x = (np.arange(1200) + 0.5) * scale
    scene = 1 + 0.1 * np.cos(2 * np.pi * x / period)[None, :] * np.ones((200, 1))
    point, _ = degrade_scene(scene, scale, kind="intensity", detector="point", noise=0)
    area, _ = degrade_scene(scene, scale, kind="intensity", detector="area", noise=0)
    sl = slice(15, -15)  # away from the reflected edges
    ratio = np.std(area[5, sl]) / np.std(point[5, sl])
    assert ratio == pytest.approx(np.sinc(0.504 / period), rel=0.02)


def test_hmi_psf_parameters():
    np.testing.assert_array_equal(hmi_psf(0.1, params=HMI_PSF_MODIFIED), hmi_psf(0.1, modified=True))
    wide = hmi_psf(0.1, params=(0.15, 2.2, 3.0, 3.6))
    assert wide.sum() == pytest.approx(1.0) and wide[wide.shape[0] // 2].max() < hmi_psf(0.1).max()


# -------------------------------------------------------------------------------------------------- training pairs
def _source(held_value=None, n=700, scale=0.0662, kind="intensity", seed=0):
    rng = np.random.default_rng(seed)
    img = 1 + 0.05 * rng.standard_normal((n, n))
    src = TrainingSource(img, scale, kind, "test")
    if held_value is not None:
        lo, hi = src.columns("validation")
        src.image[:, lo:hi] = held_value
    return src


def test_training_pairs_never_touch_the_held_out_region():
    # The held-out quarter is set to 1000: one pixel of it in any training input (through the PSF footprint too) or
    # target would show.
    src = _source(held_value=1000.0)
    train = make_source_pairs([src], n_patches=60, input_size=16, seed=1)
    assert np.abs(train.inputs).max() < 2 and np.abs(train.targets).max() < 2
    val = make_source_pairs([src], n_patches=10, split="validation", input_size=12, seed=1)
    assert np.median(val.targets) > 990  # validation patches show the held-out scene


def test_pairs_are_reproducible_and_draw_within_ranges():
    src = _source()
    a = make_source_pairs([src], n_patches=12, input_size=16, seed=5)
    b = make_source_pairs([src], n_patches=12, input_size=16, seed=5)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert a.inputs.shape == (12, 1, 16, 16) and a.targets.shape == (12, 1, 32, 32)
    d = a.meta["degradation"]
    assert d["psf_w"] == [1.8, 2.2] or tuple(d["psf_w"]) == (1.8, 2.2)
    assert tuple(d["noise"]) == (0.5e-3, 2e-3)
    # Flux: the input and the 2x2-binned target agree on average (same scene, same area).
    binned = a.targets[:, 0].reshape(12, 16, 2, 16, 2).mean(axis=(2, 4))
    assert np.mean(a.inputs[:, 0]) == pytest.approx(np.mean(binned), abs=2e-3)


def test_paper_operator_is_fixed():
    src = _source(n=500)
    paper = DegradationModel.paper("point")
    assert paper.psf_w == (2.0, 2.0) and paper.fill == (0.0, 0.0) and paper.rotation == 0
    assert DegradationModel.paper("area").fill == (1.0, 1.0)
    pairs = make_source_pairs([src], n_patches=4, input_size=12, degradation=DegradationModel.paper(), seed=0)
    assert pairs.meta["degradation"]["noise"] == [1e-3, 1e-3]  # the paper's fixed noise, not a range
    # Noise only: a flat scene through the fixed operator keeps its level and shows exactly the paper's sigma.
    flat = TrainingSource(np.ones((500, 500)), 0.0662, "intensity", "flat")
    noisy = make_source_pairs([flat], n_patches=40, input_size=12, degradation=DegradationModel.paper(), seed=0)
    assert np.std(noisy.inputs) == pytest.approx(1e-3, rel=0.05)
    assert tuple(DegradationModel.paper().noise_range("blos")) == (0.01, 0.01)
    blos = _source(n=500, kind="blos")
    assert tuple(DegradationModel().noise_range("blos")) == (0.005, 0.02)
    signs = make_source_pairs([blos], n_patches=40, input_size=12, seed=0).targets.mean(axis=(1, 2, 3))
    assert (signs > 0).any() and (signs < 0).any()  # random polarity flips for magnetograms


def test_source_validation():
    with pytest.raises(ValueError, match="finite"):
        TrainingSource(np.full((50, 50), np.nan), 0.06, "intensity", "bad")
    with pytest.raises(ValueError, match="kind"):
        TrainingSource(np.ones((50, 50)), 0.06, "velocity", "bad")
    with pytest.raises(ValueError, match="one kind"):
        make_source_pairs([_source(n=400), _source(n=400, kind="blos")], n_patches=2, input_size=8)
    with pytest.raises(ValueError, match="smaller input_size"):
        make_source_pairs([_source(n=300)], n_patches=2, input_size=40)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="the real reference data (../shared/data) is absent")
def test_reference_sources():
    intensity = {s.name: s for s in load_reference_sources(SHARED_DATA, "intensity")}
    sst = intensity["sst_sunspot"]
    # The umbra at 854 nm (~0.38 of the quiet Sun) is darker at 617.3 nm, and the quiet Sun sits at 1.
    assert 0.3 < sst.stats["darkest_1pct_854nm"] < 0.45
    assert 0.2 < sst.stats["darkest_1pct_617nm"] < sst.stats["darkest_1pct_854nm"] - 0.05
    assert np.median(sst.image) == pytest.approx(1.0, abs=0.05)
    imax = intensity["imax_quiet_sun"]
    assert imax.valid[0] >= 60 and imax.valid[1] <= 952 - 60  # apodised border excluded
    assert np.median(imax.held_out_image()) == pytest.approx(1.0, abs=0.03)
    assert intensity["muram_quiet_sun"].columns("validation") == (750, 1000)  # the MURaM right quarter
    blos = {s.name: s for s in load_reference_sources(SHARED_DATA, "blos", synthetic_blos_images=1)}
    assert np.abs(blos["gst_niris"].image).max() == pytest.approx(4.367, abs=0.01)  # kG
    assert blos["synthetic_blos_0"].columns("validation")[0] == blos["synthetic_blos_0"].columns("validation")[1]
    assert shared_file("hires", "gst_niris_blos_2017-07-13T162012.fits").exists()


# ------------------------------------------------------------------------------------------------ versioned weights
def test_unversioned_name_is_the_newest_version(tmp_path, monkeypatch):
    monkeypatch.setenv("SUNPY_NN_WEIGHTS_DIR", str(tmp_path))
    for version in (1, 2, 10):
        net = EnhanceNet(depth=1, n_filters=4)
        save_weights(net, tmp_path / f"enhance_test_v{version}.pt", card={"version": version})
    assert {"enhance_test", "enhance_test_v1", "enhance_test_v2", "enhance_test_v10"} <= set(available_models())
    _, info = load_weights("enhance_test", architecture=EnhanceNet)
    assert info.name == "enhance_test_v10" and info.card["version"] == 10
    _, info = load_weights("enhance_test_v1", architecture=EnhanceNet)
    assert info.card["version"] == 1
    assert model_card("enhance_test")["version"] == 10
    # A file of exactly the bare name wins: users can pin their own weights under it.
    save_weights(EnhanceNet(depth=1, n_filters=4), tmp_path / "enhance_test.pt", card={"version": 0})
    assert load_weights("enhance_test", architecture=EnhanceNet)[1].card["version"] == 0


def test_shipped_v1_weights_stay_loadable():
    for kind in ("intensity", "blos"):
        _, info = load_weights(f"enhance_{kind}_v1", architecture=EnhanceNet)
        assert info.card["name"] == f"enhance_{kind}_v1" and info.card["version"] == 1


def test_train_enhance_degradation_choices():
    from sunpy_nn.training import train_enhance

    img = _source(n=600).image
    kw = {
        "pixel_scale": 0.0662,
        "kind": "intensity",
        "epochs": 1,
        "n_patches": 8,
        "n_validation": 4,
        "depth": 1,
        "n_filters": 4,
        "input_size": 12,
        "validation_size": 8,
        "seed": 0,
        "progress": False,
    }
    _, random_hist = train_enhance(img, **kw)
    assert random_hist["recipe"]["train_pairs"]["degradation"]["fill"] == (0.0, 1.0)
    _, v1_hist = train_enhance(img, degradation="v1", **kw)
    assert "degradation" not in v1_hist["recipe"]["train_pairs"]
    _, paper_hist = train_enhance(img, degradation=DegradationModel.paper("area"), **kw)
    assert paper_hist["recipe"]["train_pairs"]["degradation"]["fill"] == (1.0, 1.0)
    with pytest.raises(ValueError, match="degradation must be"):
        train_enhance(img, degradation="blind", **kw)


def test_training_magnetogram_map_reaches_the_network_in_kg():
    # The same field as a Map in G and in kG must give the same training pairs, in kG (what enhance_map feeds).
    import sunpy.map
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import frames

    from sunpy_nn.training import make_enhance_pairs

    field_g = 300 * np.random.default_rng(2).standard_normal((600, 600))
    obs = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime="2017-07-13", observer="earth", frame=frames.Helioprojective)

    def as_map(values, unit):
        header = sunpy.map.make_fitswcs_header(values, obs, scale=[0.0662, 0.0662] * u.arcsec / u.pix, unit=unit)
        return sunpy.map.Map(values, header)

    kw = {"kind": "blos", "n_patches": 4, "input_size": 12, "noise": 0.0, "seed": 0}
    in_g = make_enhance_pairs(as_map(field_g, u.G), **kw)
    in_kg = make_enhance_pairs(as_map(field_g / 1000, u.kG), **kw)
    np.testing.assert_allclose(in_g.targets, in_kg.targets, rtol=1e-5, atol=1e-6)
    assert np.abs(in_g.targets).max() < 2  # kG, not G
    with pytest.raises(ValueError, match="magnetic unit"):
        make_enhance_pairs(as_map(field_g, u.ct / u.s), **kw)
