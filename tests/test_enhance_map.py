"""enhance_map: WCS, normalisation, NaN handling, metadata and provenance, bad input."""

import copy
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import sunpy.data.test
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits
from sunpy.coordinates import frames
from sunpy.map.sources import HMIMap

import sunpy_nn
from sunpy_nn import SunpyNNUserWarning, enhance_map
from sunpy_nn.data import save_weights
from sunpy_nn.enhance import detect_kind, enhance_array, normalise, superres_meta
from sunpy_nn.parallel import BatchError
from sunpy_nn.utils import sha256sum

from .helpers import assert_close_ulps, random_enhance_net, shared_file, upsampling_enhance_net

UP = upsampling_enhance_net()
NET = random_enhance_net(depth=1, n_filters=8)


def up2(a):
    return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)


@pytest.fixture
def hmi_full_disk():
    """sunpy's real rotated (CROTA2 ~ 180 deg) full-disk HMI continuum map, off-disk NaN."""
    return sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))


def hmi_map(data, unit=u.dimensionless_unscaled, scale=0.504, rotation=0 * u.deg, **kw):
    """An HMI map at disk centre with a header made by make_fitswcs_header."""
    obs = SkyCoord(
        0 * u.arcsec, 0 * u.arcsec, obstime="2014-03-01T00:00:00", observer="earth", frame=frames.Helioprojective
    )
    header = sunpy.map.make_fitswcs_header(
        data,
        obs,
        scale=[scale, scale] * u.arcsec / u.pix,
        rotation_angle=rotation,
        telescope="SDO/HMI",
        instrument="HMI_SIDE1",
        unit=unit,
        **kw,
    )
    return sunpy.map.Map(data, header)


def sharp_map(which="magnetogram"):
    path = shared_file("sharp", f"hmi.sharp_cea_720s.377.20110215_020000_TAI.{which}.fits")
    with fits.open(path) as hdul:
        hdul.verify("silentfix")
        return sunpy.map.Map(hdul[1].data, hdul[1].header)


def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SunpyNNUserWarning)
        return fn(*a, **kw)


# ------------------------------------------------------------------------------------------------------------- WCS
def assert_same_sky(before, after, atol_arcsec=1e-6):
    """Outer pixel edges and interior points land on the same place of the Sun before and after x2."""
    ny, nx = before.data.shape
    rng = np.random.default_rng(0)
    x = np.concatenate([[-0.5, nx - 0.5, -0.5, nx - 0.5, (nx - 1) / 2], rng.uniform(-0.5, nx - 0.5, 50)])
    y = np.concatenate([[-0.5, -0.5, ny - 0.5, ny - 0.5, (ny - 1) / 2], rng.uniform(-0.5, ny - 0.5, 50)])
    a = before.wcs.pixel_to_world(x, y)
    b = after.wcs.pixel_to_world(2 * x + 0.5, 2 * y + 0.5)  # input pixel x is output pixel 2x + 0.5 (0-based)
    sep = a.separation(b).to(u.arcsec)
    assert np.all(sep < atol_arcsec * u.arcsec), sep.max()
    # and the new outer edge really is the output image's outer edge
    assert after.data.shape == (2 * ny, 2 * nx)


def test_wcs_rotated_full_disk_hmi(hmi_full_disk):
    assert abs(hmi_full_disk.meta["crota2"] - 180) < 1
    out = quiet(enhance_map, hmi_full_disk, weights=NET, progress=False)
    assert_same_sky(hmi_full_disk, out)
    assert out.meta["crpix1"] == 2 * hmi_full_disk.meta["crpix1"] - 0.5
    assert out.meta["cdelt1"] == hmi_full_disk.meta["cdelt1"] / 2
    assert out.meta["crota2"] == hmi_full_disk.meta["crota2"]
    assert out.meta["crval1"] == hmi_full_disk.meta["crval1"]
    np.testing.assert_allclose(out.rotation_matrix, hmi_full_disk.rotation_matrix, rtol=0, atol=0)


def test_wcs_sharp_cea():
    smap = sharp_map("magnetogram")
    assert isinstance(smap, HMIMap) and smap.coordinate_frame.name == "heliographic_carrington"
    sub = smap.submap([300, 100] * u.pix, top_right=[379, 179] * u.pix)  # keep the test fast
    out = enhance_map(sub, weights=NET, progress=False)  # 0.03 deg CEA pixels are ~0.5 arcsec: no warning
    assert_same_sky(sub, out)
    assert out.meta["ctype1"] == "CRLN-CEA" and out.meta["cdelt1"] == pytest.approx(0.015)


def test_wcs_rotated_made_header():
    data = np.random.default_rng(0).normal(0, 100, (40, 56))
    smap = hmi_map(data, unit=u.G, rotation=30 * u.deg, reference_pixel=[10.3, 31.7] * u.pix)
    out = enhance_map(smap, weights=NET, progress=False)
    assert_same_sky(smap, out)
    np.testing.assert_allclose(out.rotation_matrix, smap.rotation_matrix, rtol=1e-15)


def test_wcs_cd_matrix_header():
    data = np.random.default_rng(1).normal(0, 100, (30, 30))
    smap = hmi_map(data, unit=u.G, rotation=12 * u.deg)
    meta = copy.deepcopy(smap.meta)
    for i in (1, 2):
        for j in (1, 2):
            meta[f"cd{i}_{j}"] = meta.pop(f"pc{i}_{j}") * meta[f"cdelt{i}"]
    del meta["cdelt1"], meta["cdelt2"]
    cd_map = sunpy.map.Map(data, meta)
    out = enhance_map(cd_map, weights=NET, progress=False)
    assert_same_sky(cd_map, out)
    assert out.meta["cd1_2"] == pytest.approx(meta["cd1_2"] / 2, rel=1e-15)


def test_wcs_agrees_with_sunpy_resample(hmi_full_disk):
    out = quiet(enhance_map, hmi_full_disk, weights=NET, progress=False)
    ref = hmi_full_disk.resample(u.Quantity(out.dimensions))
    for key in ("crpix1", "crpix2", "cdelt1", "cdelt2", "crval1", "crval2", "crota2", "naxis1", "naxis2"):
        assert out.meta[key] == pytest.approx(ref.meta[key], rel=1e-12), key
    ny, nx = out.data.shape
    xx, yy = np.meshgrid(np.linspace(-0.5, nx - 0.5, 7), np.linspace(-0.5, ny - 0.5, 7))
    sep = out.wcs.pixel_to_world(xx, yy).separation(ref.wcs.pixel_to_world(xx, yy))
    assert np.all(sep < 1e-6 * u.arcsec)


def test_superres_meta_scales_hmi_pixel_keywords():
    smap = hmi_map(np.ones((20, 20)), unit=u.G)
    meta = copy.deepcopy(smap.meta)
    meta.update({"r_sun": 1900.0, "x0_mp": 2047.3, "imscl_mp": 0.504, "dataskew": 0.1})
    meta.update({"rsun_lf": 1900.5, "x0_lf": 2047.1, "y0_lf": 2048.2})  # the limb fit's, in pixels too
    new = superres_meta(sunpy.map.Map(smap.data, meta))
    assert new["r_sun"] == 3800.0 and new["imscl_mp"] == 0.252
    assert new["x0_mp"] == pytest.approx(2 * 2047.3 + 0.5, rel=1e-12)
    assert new["rsun_lf"] == 3801.0
    assert new["x0_lf"] == pytest.approx(2 * 2047.1 + 0.5, rel=1e-12)
    assert new["y0_lf"] == pytest.approx(2 * 2048.2 + 0.5, rel=1e-12)
    assert "dataskew" not in new  # stale statistics removed


# ------------------------------------------------------------------------------------------------------ kind, units
def test_kind_from_metadata(hmi_full_disk):
    assert detect_kind(hmi_full_disk) == "intensity"
    assert detect_kind(hmi_map(np.ones((10, 10)), unit=u.G)) == "blos"
    assert detect_kind(sharp_map("magnetogram")) == "blos"  # CONTENT 'HMI observable', BUNIT Mx/cm^2
    assert detect_kind(sharp_map("continuum")) == "intensity"  # BUNIT DN/s
    meta = copy.deepcopy(hmi_full_disk.meta)
    meta["content"] = "MAGNETOGRAM"
    meta["bunit"] = "Gauss"
    assert detect_kind(sunpy.map.Map(hmi_full_disk.data, meta)) == "blos"


def test_unknown_kind_asks_for_kind():
    with pytest.raises(ValueError, match="Pass kind='intensity' or kind='blos'"):
        enhance_map(hmi_map(np.ones((20, 20))), weights=NET)


def test_invalid_kind_and_units():
    with pytest.raises(ValueError, match="kind must be one of"):
        enhance_map(hmi_map(np.ones((20, 20))), kind="velocity", weights=NET)
    with pytest.raises(ValueError, match=r"must be in Gauss.*meta\['bunit'\]"):
        enhance_map(hmi_map(np.ones((20, 20)), unit=u.ct / u.s), kind="blos", weights=NET)
    with pytest.raises(ValueError, match="pass kind='blos'"):
        enhance_map(hmi_map(np.ones((20, 20)), unit=u.G), kind="intensity", weights=NET)


# ---------------------------------------------------------------------------------------------------- normalisation
def test_magnetogram_kg_round_trip_and_flux():
    # The upsampling network returns its input: the output must be the input field, in Gauss, on 4x the pixels,
    # so the total unsigned flux (|B| x pixel area) is unchanged.
    path = shared_file("enhance", "hmi_blos_200.fits")
    data = fits.getdata(path)
    smap = hmi_map(data, unit=u.G)
    out = enhance_map(smap, weights=UP, progress=False)
    assert out.unit == u.G
    np.testing.assert_allclose(out.data, up2(data), rtol=1e-6, atol=1e-3)
    assert np.abs(out.data).sum() / 4 == pytest.approx(np.abs(data).sum(), rel=1e-6)
    assert "kG" in out.meta["snnnorm"]


def test_magnetogram_units_reach_the_network_in_kg():
    # One field given in G, kG and Mx/cm^2 must give the same physical result, and that result must be the network
    # run on the kG numbers. NET has biases, so it is not homogeneous: a wrong scale changes the output's shape,
    # not only its amplitude (the G map used to reach the network 1e6 times too large).
    rng = np.random.default_rng(3)
    gauss = rng.normal(0, 300, (24, 24))
    gauss[8:14, 8:14] = -1800.0
    ref = enhance_array(gauss / 1000.0, NET, progress=False) * 1000.0  # Gauss
    for values, unit in ((gauss, u.G), (gauss / 1000.0, u.kG), (gauss, u.Mx / u.cm**2), (gauss / 1e4, u.T)):
        out = enhance_map(hmi_map(values, unit=unit), kind="blos", weights=NET, progress=False)
        assert out.unit == unit
        got = (out.data * out.unit).to_value(u.G, equivalencies=[(u.Mx / u.cm**2, u.G)])
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_continuum_reaches_the_network_as_i_over_ic():
    # The same continuum image in I/Ic and in DN/s: the network must see I/Ic ~ 1 in both cases.
    rng = np.random.default_rng(4)
    ic = 1 + 0.04 * rng.standard_normal((24, 24))
    ref = enhance_map(hmi_map(ic), kind="intensity", weights=NET, normalisation="none", progress=False)
    np.testing.assert_allclose(ref.data, enhance_array(ic, NET, progress=False), rtol=1e-5, atol=1e-6)
    dn = enhance_map(hmi_map(ic * 52_000.0, unit=u.ct / u.s), weights=NET, normalisation="quiet_sun", progress=False)
    level = normalise(hmi_map(ic * 52_000.0, unit=u.ct / u.s), ic * 52_000.0, "intensity", "quiet_sun").scale
    assert level == pytest.approx(52_000.0 * np.median(ic), rel=0.02)
    np.testing.assert_allclose(dn.data / level, enhance_array(ic * 52_000.0 / level, NET, progress=False), rtol=1e-4)


def test_quiet_sun_level_of_real_sunspot_image():
    # The cut-out is already ~I/Ic: the robust quiet-Sun level must sit at the granulation peak of the histogram
    # (1.02 in this file) despite the umbra and penumbra, which pull the plain mean down to 0.94.
    data = fits.getdata(shared_file("enhance", "hmi_continuum_sunspot_200.fits")).astype(float)
    assert data.min() < 0.2  # the umbra is in the field of view
    counts, edges = np.histogram(data, bins=160, range=(0.5, 1.3))
    peak = edges[counts.argmax()] + 0.0025
    norm = normalise(hmi_map(data), data, "intensity", "quiet_sun")
    assert norm.method == "quiet_sun" and norm.scale == pytest.approx(peak, abs=0.01)
    assert data.mean() < norm.scale - 0.05
    scaled = data * 52_000.0  # the same image in DN/s
    assert normalise(hmi_map(scaled), scaled, "intensity", "quiet_sun").scale == pytest.approx(52_000 * norm.scale)


def synthetic_disk(u2=0.45, v2=0.15, i0=50_000.0, n=256, seed=0):
    """A full-disk continuum image with a known quadratic limb-darkening law, granulation noise and a sunspot."""
    rsun = 960.0
    scale = 2.2 * rsun / n
    yy, xx = np.mgrid[0:n, 0:n]
    c = (n - 1) / 2
    rho2 = ((xx - c) ** 2 + (yy - c) ** 2) * scale**2 / rsun**2
    mu = np.sqrt(np.clip(1 - rho2, 0, 1))
    img = i0 * (1 - u2 * (1 - mu) - v2 * (1 - mu) ** 2)
    img *= 1 + 0.03 * np.random.default_rng(seed).normal(size=img.shape)
    img[(xx - c - 30) ** 2 + (yy - c + 20) ** 2 < 36] *= 0.3  # a sunspot must not bias the fit
    img[rho2 >= 1] = np.nan
    smap = hmi_map(img, unit=u.ct / u.s, scale=scale)
    meta = copy.deepcopy(smap.meta)
    meta["rsun_obs"] = rsun
    return sunpy.map.Map(img, meta), mu


def test_limb_darkening_fit_recovers_law():
    smap, _ = synthetic_disk()
    norm = quiet(normalise, smap, smap.data, "intensity")
    assert norm.method == "limb_darkening"
    assert norm.scale == pytest.approx(50_000, rel=0.005)
    assert norm.coeffs[0] == pytest.approx(0.45, abs=0.02)
    assert norm.coeffs[1] == pytest.approx(0.15, abs=0.04)


def test_full_disk_normalised_to_one_everywhere_and_undone():
    smap, mu = synthetic_disk()
    out = quiet(enhance_map, smap, weights=UP, progress=False)
    # The upsampling network passes the normalised data through, so undoing the normalisation must give back
    # the input level everywhere on the disk, centre and limb alike (to the change of the profile within a pixel).
    on = np.isfinite(smap.data) & (mu > 0.2)
    ratio = out.data.reshape(smap.data.shape[0], 2, smap.data.shape[1], 2).mean(axis=(1, 3))[on] / smap.data[on]
    assert np.abs(ratio - 1).max() < 0.01
    assert out.meta["snnnorm"] == "limb_darkening"
    # and the network saw I/Ic ~ 1 across the disk
    norm = quiet(normalise, smap, smap.data, "intensity")
    ny, nx = smap.data.shape
    seen = smap.data / (norm.scale * norm.profile(np.arange(nx)[None], np.arange(ny)[:, None]))
    for lo, hi in [(0.9, 1.0), (0.5, 0.6), (0.2, 0.3)]:
        ring = on & (mu > lo) & (mu <= hi)
        assert np.median(seen[ring]) == pytest.approx(1.0, abs=0.01), (lo, hi)


def test_real_full_disk_ld_normalisation(hmi_full_disk):
    data = hmi_full_disk.data.astype(float)
    norm = normalise(hmi_full_disk, data, "intensity")
    assert norm.method == "limb_darkening"
    assert norm.scale == pytest.approx(np.nanmax(data), rel=0.2)  # disk-centre intensity
    assert 0.3 < norm.coeffs[0] < 0.9  # physical limb darkening at 617 nm


# ------------------------------------------------------------------------------------------------------------- NaN
def test_off_disk_nan_stays_nan_and_valid_pixels_finite(hmi_full_disk):
    out = quiet(enhance_map, hmi_full_disk, weights=NET, progress=False)
    nan_in = np.isnan(hmi_full_disk.data)
    assert nan_in.any()
    np.testing.assert_array_equal(np.isnan(out.data), up2(nan_in))


def test_nan_never_leaks_into_valid_pixels():
    rng = np.random.default_rng(3)
    data = 1 + 0.05 * rng.normal(size=(80, 90))
    holed = data.copy()
    holed[30:40, 20:35] = np.nan
    a = quiet(enhance_map, hmi_map(holed), kind="intensity", normalisation="none", weights=NET, progress=False).data
    b = quiet(enhance_map, hmi_map(data), kind="intensity", normalisation="none", weights=NET, progress=False).data
    hole = up2(np.isnan(holed))
    assert np.isnan(a[hole]).all() and np.isfinite(a[~hole]).all()
    # beyond the receptive field of the hole the result is that of the image without the hole (to rounding: the
    # hole's tiles are computed the same way, but a CPU's convolution kernels may round differently)
    r = NET.receptive_radius
    far = np.ones_like(data, bool)
    far[30 - r : 40 + r, 20 - r : 35 + r] = False
    assert_close_ulps(a[up2(far)], b[up2(far)])


def test_mask_is_treated_as_missing():
    data = np.random.default_rng(4).normal(0, 50, (32, 32))
    mask = np.zeros(data.shape, bool)
    mask[:4] = True
    smap = sunpy.map.Map(data, hmi_map(data, unit=u.G).meta, mask=mask)
    out = enhance_map(smap, weights=UP, progress=False)
    assert np.isnan(out.data[:8]).all() and out.mask is not None and out.mask[:8].all() and not out.mask[8:].any()


# -------------------------------------------------------------------------------------------- metadata, provenance
def test_metadata_class_plot_settings_and_provenance(tmp_path, hmi_full_disk):
    weights = save_weights(NET, tmp_path / "test_model.pt")
    before_meta = copy.deepcopy(hmi_full_disk.meta)
    before_data = hmi_full_disk.data.copy()
    out = quiet(enhance_map, hmi_full_disk, weights=weights, progress=False)
    assert isinstance(out, HMIMap)
    assert out.plot_settings["cmap"] == hmi_full_disk.plot_settings["cmap"]
    assert out.plot_settings is not hmi_full_disk.plot_settings
    for key in ("telescop", "instrume", "content", "t_obs", "date-obs", "wavelnth", "dsun_obs", "crlt_obs", "quality"):
        assert out.meta[key] == hmi_full_disk.meta[key], key
    assert out.date == hmi_full_disk.date and out.observer_coordinate == hmi_full_disk.observer_coordinate
    assert out.meta["snnvers"] == sunpy_nn.__version__
    assert out.meta["snnmodel"] == "test_model"
    assert out.meta["snnsha"] == sha256sum(weights)
    assert sha256sum(weights) in out.meta["history"] and "sunpy_nn" in out.meta["history"]
    assert out.meta["datamax"] == pytest.approx(np.nanmax(out.data)) and out.meta["totvals"] == out.data.size
    # the input map is untouched
    np.testing.assert_array_equal(hmi_full_disk.data, before_data)
    assert dict(hmi_full_disk.meta) == dict(before_meta)
    assert not np.shares_memory(out.data, hmi_full_disk.data)


def test_map_sequence_in_sequence_out():
    maps = [hmi_map(np.random.default_rng(i).normal(0, 80, (24, 24)), unit=u.G) for i in range(3)]
    seq = enhance_map(sunpy.map.Map(maps, sequence=True), weights=UP, progress=False)
    assert isinstance(seq, sunpy.map.MapSequence) and len(seq) == 3
    for m, o in zip(maps, seq, strict=True):
        np.testing.assert_allclose(o.data, up2(m.data), atol=1e-3)


def test_integer_data_accepted_as_float():
    data = np.arange(400, dtype=np.int16).reshape(20, 20) - 200
    out = enhance_map(hmi_map(data, unit=u.G), weights=UP, progress=False)
    assert out.data.dtype.kind == "f"
    np.testing.assert_allclose(out.data, up2(data), atol=1e-3)


def test_tile_size_does_not_change_result():
    data = np.random.default_rng(5).normal(0, 100, (70, 65))
    smap = hmi_map(data, unit=u.G)
    a = enhance_map(smap, weights=NET, tile_size=32, progress=False).data
    b = enhance_map(smap, weights=NET, tile_size=512, progress=False).data
    assert_close_ulps(a, b)


# ------------------------------------------------------------------------------------------------------ bad input
def test_all_nan_map():
    with pytest.raises(ValueError, match="all NaN"):
        enhance_map(hmi_map(np.full((20, 20), np.nan), unit=u.G), weights=NET)


def test_infinite_pixels():
    data = np.ones((20, 20))
    data[3, 3] = np.inf
    with pytest.raises(ValueError, match=r"1 infinite pixels.*NaN"):
        enhance_map(hmi_map(data, unit=u.G), weights=NET)


def test_too_small():
    with pytest.raises(ValueError, match=r"7x20 px.*at least 8x8"):
        enhance_map(hmi_map(np.ones((7, 20)), unit=u.G), weights=NET)


def test_not_2d():
    from sunpy_nn.enhance import enhance_array

    with pytest.raises(ValueError, match="2-D"):
        enhance_array(np.ones((3, 20, 20)), NET)
    with pytest.raises(TypeError, match="sunpy Map"):
        enhance_map(np.ones((20, 20)), weights=NET)


@pytest.mark.parametrize("path", ["hmi.fits", Path("hmi.fits")])
def test_one_file_path_is_told_how_to_pass_it(path):
    # it said "not one path: ['hmi.fits']", which read as if the list were refused
    with pytest.raises(TypeError, match=r"not one file path: pass sunpy.map.Map\('hmi.fits'\) .* \['hmi.fits'\] for a"):
        enhance_map(path, weights=NET)


def field(shape=(20, 20), seed=0):
    """A plausible line-of-sight field in Gauss: signed, around 0, a few hundred G."""
    return np.random.default_rng(seed).normal(0, 200, shape)


def test_non_hmi_instrument_warns():
    smap = hmi_map(field(), unit=u.G)
    meta = copy.deepcopy(smap.meta)
    meta.update({"telescop": "SOHO", "instrume": "MDI", "detector": "MDI"})
    with pytest.warns(SunpyNNUserWarning, match="trained for SDO/HMI.*MDI"):
        enhance_map(sunpy.map.Map(smap.data, meta), weights=NET, progress=False)


def test_wrong_pixel_scale_warns(hmi_full_disk):
    with pytest.warns(SunpyNNUserWarning, match=r"20\.66 arcsec/pix.*Resample first"):
        enhance_map(hmi_full_disk, weights=NET, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SunpyNNUserWarning)  # within 10 %: silent
        enhance_map(hmi_map(field(), unit=u.G, scale=0.53), weights=NET, progress=False)


# --------------------------------------------------------------------------------------- mirrored maps (issue 13)
def mirrored(smap, axis):
    """The same sky stored mirrored: data reversed along ``axis`` (1 = x, 0 = y), CDELT negated, CRPIX mirrored."""
    meta = copy.deepcopy(smap.meta)
    i = 2 - axis  # FITS axis number: x is 1, y is 2
    meta[f"cdelt{i}"] = -meta[f"cdelt{i}"]
    meta[f"crpix{i}"] = smap.data.shape[axis] + 1 - meta[f"crpix{i}"]
    return sunpy.map.Map(np.flip(smap.data, axis=axis).copy(), meta)


@pytest.mark.parametrize("axis", [1, 0])
def test_mirrored_map_is_enhanced_like_the_unmirrored_one(axis):
    # A real sunspot in DN/s, off disk centre (so the limb-darkening geometry is not symmetric), stored with
    # CDELT1 < 0 (or CDELT2 < 0). The signed scales used to average to 0: "pixel scale is 0 arcsec/pix" and a
    # fall-back to quiet-Sun normalisation. Now: the same normalisation, the same output mirrored, the same sky.
    data = fits.getdata(shared_file("enhance", "hmi_continuum_sunspot_200.fits")).astype(float)[:96, :112] * 5.2e4
    smap = hmi_map(data, unit=u.DN / u.s, reference_pixel=[30.0, 70.0] * u.pix)
    flip = mirrored(smap, axis)
    assert flip.meta[f"cdelt{2 - axis}"] < 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", SunpyNNUserWarning)  # an HMI map at 0.504 arcsec/pix: no warning at all
        a = enhance_map(smap, weights=NET, progress=False)
        b = enhance_map(flip, weights=NET, progress=False)
    assert a.meta["snnnorm"] == b.meta["snnnorm"] == "limb_darkening_fixed_shape"
    na, nb = normalise(smap, smap.data, "intensity"), normalise(flip, flip.data, "intensity")
    assert nb.scale == pytest.approx(na.scale, rel=1e-12) and nb.radius == pytest.approx(na.radius, rel=1e-12)
    np.testing.assert_allclose(np.flip(b.data, axis), a.data, rtol=0, atol=1e-6 * np.abs(a.data).max())
    assert_same_sky(flip, b)
    # corner for corner, the output pixels of the mirrored map sit where the mirrored output pixels of the other do
    ny, nx = a.data.shape
    x = np.array([-0.5, nx - 0.5, -0.5, nx - 0.5, 17.0])
    y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5, 40.0])
    xm, ym = (nx - 1 - x, y) if axis == 1 else (x, ny - 1 - y)
    sep = a.wcs.pixel_to_world(x, y).separation(b.wcs.pixel_to_world(xm, ym))
    assert np.all(sep < 1e-6 * u.arcsec), sep.max()


def test_pixel_scale_and_geometry_ignore_signs_and_rotation():
    from sunpy_nn.enhance import _disk_geometry, _pixel_scale_arcsec

    smap = hmi_map(field((30, 40)), unit=u.G, rotation=30 * u.deg)
    assert _pixel_scale_arcsec(smap) == pytest.approx(0.504, rel=1e-12)
    for axis in (0, 1):
        assert _pixel_scale_arcsec(mirrored(smap, axis)) == pytest.approx(0.504, rel=1e-12)
    # a CD matrix with a rotation and a mirror (det < 0), no CDELT
    meta = copy.deepcopy(smap.meta)
    for i in (1, 2):
        for j in (1, 2):
            meta[f"cd{i}_{j}"] = meta.pop(f"pc{i}_{j}") * meta[f"cdelt{i}"] * (-1 if j == 1 else 1)
    del meta["cdelt1"], meta["cdelt2"]
    cd = sunpy.map.Map(smap.data, meta)
    assert np.linalg.det(cd.wcs.pixel_scale_matrix) < 0
    assert _pixel_scale_arcsec(cd) == pytest.approx(0.504, rel=1e-12)
    centre, radius = _disk_geometry(cd)
    assert radius == pytest.approx(smap.rsun_obs.to_value(u.arcsec) / 0.504, rel=1e-9)
    np.testing.assert_allclose(centre, _disk_geometry(smap)[0], atol=1e-6)  # the reference pixel is disk centre
    with warnings.catch_warnings():
        warnings.simplefilter("error", SunpyNNUserWarning)
        out = enhance_map(cd, weights=NET, progress=False)
    assert_same_sky(cd, out)


def test_mirrored_scale_in_psf_metrics_and_richardson_lucy():
    from sunpy_nn.baselines import richardson_lucy
    from sunpy_nn.metrics import forward_consistency
    from sunpy_nn.psf import hmi_psf

    np.testing.assert_array_equal(hmi_psf(-0.504 * u.arcsec / u.pix), hmi_psf(0.504 * u.arcsec / u.pix))
    img = 1 + 0.04 * np.random.default_rng(2).standard_normal((24, 24))
    big = np.repeat(np.repeat(img, 2, 0), 2, 1)
    assert forward_consistency(big, img, pixel_scale=-0.504 * u.arcsec / u.pix) == forward_consistency(big, img)
    # Richardson-Lucy takes the PSF's scale from the map: a mirrored map at 0.6 arcsec/pix is deconvolved with the
    # same PSF (it used to get "0 arcsec", replaced by the 0.504 default)
    smap = hmi_map(5e4 * img, unit=u.DN / u.s, scale=0.6)
    a = richardson_lucy(smap, iterations=5)
    b = richardson_lucy(mirrored(smap, 1), iterations=5)
    np.testing.assert_allclose(b.data[:, ::-1], a.data, rtol=1e-10)
    assert_same_sky(mirrored(smap, 1), b)


# ------------------------------------------------------------------------------- Quantity metadata (issue 13)
def aia_map():
    return sunpy.map.Map(sunpy.data.test.get_test_filepath("aia_171_level1.fits"))


def test_euv_map_is_refused_unless_kind_is_given():
    aia = aia_map()
    assert isinstance(aia.measurement, u.Quantity)  # used to raise "Quantity truthiness is ambiguous"
    with pytest.raises(ValueError, match=r"171 Angstrom.*not a photospheric.*pass kind='intensity'"):
        enhance_map(aia, weights=NET, progress=False)
    with pytest.raises(ValueError, match="171 Angstrom"):
        detect_kind(aia)
    with pytest.warns(SunpyNNUserWarning) as record:
        out = enhance_map(aia, kind="intensity", weights=NET, progress=False)
    messages = " | ".join(str(w.message) for w in record)
    assert "trained for SDO/HMI" in messages and "AIA" in messages and "171 Angstrom" in messages
    assert "comes from SDO AIA 3." in messages  # once: it said "SDO AIA 3 AIA" (instrument and detector)
    assert out.data.shape == (256, 256)


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (("SDO", "AIA 3", "AIA"), "SDO AIA 3"),
        (("SDO", "AIA", "AIA 3"), "SDO AIA AIA 3"),  # the detector adds the telescope number
        (("SDO/AIA", "aia", None), "SDO/AIA"),  # case and "/" do not make a new name
        (("SDO", "HMI", "HMI"), "SDO HMI"),
        ((None, None, None), ""),
    ],
)
def test_instrument_name_says_each_word_once(names, said):
    from types import SimpleNamespace

    from sunpy_nn.enhance._checks import _instrument_name

    assert _instrument_name(SimpleNamespace(observatory=names[0], instrument=names[1], detector=names[2])) == said


def test_quantity_wavelength_in_the_photosphere_gets_the_instrument_warning():
    data = 5e4 * (1 + 0.04 * np.random.default_rng(0).standard_normal((40, 40)))
    obs = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime="2014-03-01", observer="earth", frame=frames.Helioprojective)
    header = sunpy.map.make_fitswcs_header(
        data, obs, scale=[0.504, 0.504] * u.arcsec / u.pix, wavelength=6302 * u.AA, unit=u.DN / u.s
    )
    smap = sunpy.map.Map(data, header)
    assert type(smap) is sunpy.map.GenericMap and isinstance(smap.measurement, u.Quantity)
    assert detect_kind(smap) == "intensity"
    with pytest.warns(SunpyNNUserWarning, match="trained for SDO/HMI.*unknown instrument"):
        out = enhance_map(smap, weights=NET, progress=False)
    assert out.meta["snnkind"] == "intensity"


# ------------------------------------------------------------------------ values against unit and kind (issue 13)
def test_magnetogram_labelled_dn_is_refused():
    # It used to go through the continuum network and lose its negative polarity (-1812 G came out as -34).
    blos = fits.getdata(shared_file("enhance", "hmi_blos_200.fits"))
    with pytest.raises(ValueError, match=r"54\.1% of its valid pixels are negative.*looks like a magnetogram.*'blos'"):
        enhance_map(hmi_map(blos, unit=u.DN / u.s), weights=NET, progress=False)


def test_gauss_labelled_kilogauss_is_refused():
    # It used to give "1870 kG".
    blos = fits.getdata(shared_file("enhance", "hmi_blos_200.fits"))
    with pytest.raises(ValueError, match=r"1602 kG.*unit is probably wrong"):
        enhance_map(hmi_map(blos, unit=u.kG), weights=NET, progress=False)
    with pytest.warns(SunpyNNUserWarning, match="weaker than HMI's noise.*kG labelled G"):  # and the other way round
        enhance_map(hmi_map(blos / 1000, unit=u.G), weights=NET, progress=False)


def test_continuum_labelled_gauss_is_refused():
    cont = fits.getdata(shared_file("enhance", "hmi_continuum_sunspot_200.fits")).astype(float)
    with pytest.raises(ValueError, match=r"looks like a continuum image.*no negative pixels.*kind='intensity'"):
        enhance_map(hmi_map(cont, unit=u.G), weights=NET, progress=False)
    with pytest.raises(ValueError, match=r"57\.49 kG.*unit is probably wrong"):  # in DN/s, labelled G
        enhance_map(hmi_map(cont * 5e4, unit=u.G), weights=NET, progress=False)
    # an explicit kind='blos' is the user's word that it is a magnetogram: a warning only
    with pytest.warns(SunpyNNUserWarning, match="looks like a continuum image"):
        enhance_map(hmi_map(cont, unit=u.G), kind="blos", weights=NET, progress=False)


def test_value_checks_on_the_batch_path():
    blos = fits.getdata(shared_file("enhance", "hmi_blos_200.fits"))
    good = hmi_map(blos[:40, :40], unit=u.G)
    bad = hmi_map(blos[:40, :40], unit=u.DN / u.s)
    with pytest.raises(BatchError, match="looks like a magnetogram") as err:
        enhance_map([good, bad], weights=NET, scheduler="serial", progress=False)
    assert [f.index for f in err.value.failures] == [1]


def real_maps():
    d = fits.getdata
    yield "HMI magnetogram (G)", hmi_map(d(shared_file("enhance", "hmi_blos_200.fits")), unit=u.G), {}
    yield (
        "SHARP magnetogram (Mx/cm^2)",
        sharp_map("magnetogram").submap([300, 100] * u.pix, top_right=[379, 179] * u.pix),
        {},
    )
    yield "SHARP continuum (DN/s)", sharp_map("continuum").submap([300, 100] * u.pix, top_right=[379, 179] * u.pix), {}
    cont = d(shared_file("enhance", "hmi_continuum_sunspot_200.fits")).astype(float)
    yield "HMI sunspot (I/Ic)", hmi_map(cont), {"kind": "intensity"}
    yield "HMI sunspot (DN/s)", hmi_map(cont * 5.2e4, unit=u.DN / u.s), {}
    limb = d(shared_file("enhance", "hmi_continuum_limb_400x500.fits")).astype(float)[:, :200]
    yield "HMI limb (I/Ic)", hmi_map(limb), {"kind": "intensity"}
    yield "sunpy's full disk", sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits")), {}


def test_real_data_pass_the_value_checks():
    for name, smap, kw in real_maps():
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always", SunpyNNUserWarning)
            enhance_map(smap, weights=UP, progress=False, **kw)
        messages = [str(w.message) for w in record if issubclass(w.category, SunpyNNUserWarning)]
        expected = {"HMI limb (I/Ic)": "exactly 0", "sunpy's full disk": "20.66 arcsec/pix"}.get(name)
        assert [m for m in messages if expected is None or expected not in m] == [], (name, messages)


# ---------------------------------------------------------------------------------- off-limb zeros (issue 12, 13)
def test_off_limb_zeros_stay_zero_and_do_not_change_the_disk(hmi_full_disk):
    nan = np.isnan(hmi_full_disk.data)
    zeros = sunpy.map.Map(np.where(nan, 0.0, hmi_full_disk.data), hmi_full_disk.meta)
    a = quiet(enhance_map, hmi_full_disk, weights=NET, progress=False)
    with pytest.warns(SunpyNNUserWarning, match=r"2430 pixels are exactly 0.*returned as 0"):
        b = enhance_map(zeros, weights=NET, progress=False)
    off = up2(nan)
    assert (b.data[off] == 0).all()  # exactly as they were; they used to come out as a grey pedestal
    assert np.isfinite(b.data).all()
    assert np.abs(b.data[~off] - a.data[~off]).max() <= 1e-6 * np.abs(a.data[~off]).max()
    assert b.meta["snnnorm"] == a.meta["snnnorm"] == "limb_darkening"
    assert np.array_equal(zeros.data == 0, nan)  # the caller's map is untouched


def test_off_disk_zeros_of_a_magnetogram_and_nan_together(hmi_full_disk):
    # In a magnetogram a 0 is a valid field: only zeros off the disk (by the map's geometry) count as missing.
    nan = np.isnan(hmi_full_disk.data)
    meta = copy.deepcopy(hmi_full_disk.meta)
    meta.update({"content": "MAGNETOGRAM", "bunit": "G"})
    values = field(nan.shape, seed=4)
    values[50, 50] = 0.0  # on the disk
    hole = np.zeros_like(nan)
    hole[40:44, 60:63] = True  # missing on the disk: must stay NaN
    with_nan = sunpy.map.Map(np.where(nan | hole, np.nan, values), meta)
    with_zeros = sunpy.map.Map(np.where(hole, np.nan, np.where(nan, 0.0, values)), meta)
    a = quiet(enhance_map, with_nan, weights=NET, progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", SunpyNNUserWarning)
        b = enhance_map(with_zeros, weights=NET, progress=False)
    assert any("2430 pixels are exactly 0 off the solar disk" in str(w.message) for w in record)
    assert (b.data[up2(nan)] == 0).all() and np.isnan(b.data[up2(hole)]).all()
    valid = ~up2(nan | hole)
    assert np.isfinite(b.data[valid]).all()
    np.testing.assert_allclose(b.data[valid], a.data[valid], rtol=0, atol=1e-6 * np.abs(a.data[valid]).max())
    assert np.abs(b.data[100:102, 100:102]).max() > 0  # the on-disk zero went through the network


def test_saved_output_has_no_integer_keywords(tmp_path, hmi_full_disk):
    # HMI headers carry BLANK; on float output astropy warned "Invalid 'BLANK' keyword" at every save.
    from sunpy_nn.baselines import richardson_lucy

    assert "blank" in hmi_full_disk.meta
    out = quiet(enhance_map, hmi_full_disk, weights=NET, progress=False)
    rl = quiet(richardson_lucy, hmi_full_disk, iterations=2, upsample=1)
    for m in (out, rl):
        assert not {"blank", "bzero", "bscale"} & set(m.meta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out.save(tmp_path / "big.fits")
        rl.save(tmp_path / "rl.fits")
    assert "blank" in hmi_full_disk.meta  # the input's header is untouched


def test_saving_shipped_weights_output_keeps_the_whole_sha_without_warnings(tmp_path):
    """A new user's save warned twice ("Card is too long") and cut SNNSHA's comment to "S": the SHA has no comment."""
    from sunpy_nn.data.synthetic import synthetic_hmi_map

    hmi, _ = synthetic_hmi_map((64, 64), seed=0)
    out = quiet(enhance_map, hmi, progress=False)  # the shipped weights: a real 64-character SHA-256
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out.save(tmp_path / "big.fits")
    header = sunpy.map.Map(tmp_path / "big.fits").meta
    assert header["snnsha"] == out.meta["snnsha"] and len(header["snnsha"]) == 64


def test_normalisation_description_signs():
    from sunpy_nn.enhance import Normalisation

    text = Normalisation("intensity", "limb_darkening", 2.0, (0.5, -0.23), (0.0, 0.0), 10.0).describe()
    assert text.endswith("(1 - 0.5000(1-mu) + 0.2300(1-mu)^2)") and "- -" not in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "continuum"}, r"kind must be one of .*a continuum image is 'intensity'"),
        ({"output_dir": "out"}, "output_dir is for many maps"),
        ({"errors": "bogus"}, "errors must be 'raise' or 'warn'"),
        ({"scheduler": "bogus"}, "scheduler must be one of"),
        ({"num_workers": -3}, "num_workers must be a positive"),
    ],
)
def test_options_of_one_map_are_checked_not_ignored(kwargs, message, tmp_path, monkeypatch):
    """A new user's enhance_map(m, output_dir=...) returned a map, wrote nothing and said nothing; kind='continuum'
    (HMI's own CONTENT word) asked for weights that do not exist instead of naming the kinds."""
    from sunpy_nn.data.synthetic import synthetic_hmi_map

    monkeypatch.chdir(tmp_path)
    hmi, _ = synthetic_hmi_map((32, 32), seed=0)
    with pytest.raises(ValueError, match=message):
        enhance_map(hmi, weights=NET, progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_complex_data_are_refused_not_cut_to_their_real_part():
    from sunpy_nn.data.synthetic import synthetic_hmi_map

    hmi, _ = synthetic_hmi_map((32, 32), seed=0)
    with pytest.raises(TypeError, match="real numbers; this map's data are complex128"):
        enhance_map(sunpy.map.Map(hmi.data.astype(complex), hmi.meta), weights=NET, progress=False)


@pytest.mark.parametrize(("unit", "says"), [(u.K, "a temperature"), (u.m / u.s, "a velocity")])
def test_continuum_in_a_temperature_or_velocity_unit_is_refused(unit, says):
    # a brightness-temperature map was enhanced as if it were an intensity: umbrae at ~0.7 instead of ~0.2 I/Ic
    data = 5800 * (1 + 0.01 * np.random.default_rng(0).standard_normal((40, 40)))
    obs = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime="2014-03-01", observer="earth", frame=frames.Helioprojective)
    header = sunpy.map.make_fitswcs_header(data, obs, scale=[0.504, 0.504] * u.arcsec / u.pix, unit=unit)
    with pytest.raises(ValueError, match=rf"in {unit}, {says}.*not an intensity: convert it"):
        enhance_map(sunpy.map.Map(data, header), kind="intensity", weights=NET, progress=False)
