"""Units at the edge of `read_crisp` for LP cubes: Quantities in any fitting unit, plain numbers as documented."""

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time

from sunpy_nn.io import read_crisp, write_lp

from .test_crisp_io import DATEREF, NS, NT, NW, NX, NY, SCALE, WAVE

TIMES = Time("2019-04-16T09:00:00") + [0, 20, 41] * u.s


@pytest.fixture
def lp_path(tmp_path):
    data = np.random.default_rng(5).normal(1, 1e-3, (NT, NS, NW, NY, NX)).astype(np.float32)
    return write_lp(data, tmp_path / "c.fcube")


def _read(path, **kw):
    coords = {"wavelengths": WAVE * u.nm, "times": TIMES, "pixel_scale": SCALE, **kw}
    return read_crisp(path, **coords)


def _world(cube):
    """World coordinate values at a few pixels (x, y, tuning, stokes, scan), as plain arrays."""
    pix = [np.array([0, NX - 1, 3.5]), np.array([0, NY - 1, 2.25]), np.array([0, NW - 1, 2]), [0, 0, 1], [0, 2, 1]]
    return [np.asarray(v) for v in cube.wcs.low_level_wcs.pixel_to_world_values(*pix)]


def _assert_same_world(a, b, exact=True):
    for x, y in zip(_world(a), _world(b), strict=True):
        if exact:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-9)


def test_pixel_scale_in_arcsec_per_pixel(lp_path):
    # The fix: a pixel scale as sunpy writes one (arcsec/pix) was refused ("'arcsec / pix' and 'arcsec' ... not
    # convertible"); it now gives the same cube as arcsec and as a plain number of arcsec per pixel.
    plain = _read(lp_path)
    for scale in (SCALE * u.arcsec / u.pix, SCALE * u.arcsec / u.pixel, SCALE * u.arcsec):
        _assert_same_world(_read(lp_path, pixel_scale=scale), plain)
    for scale in ((SCALE / 3600) * u.deg / u.pix, (SCALE / 60) * u.arcmin):
        _assert_same_world(_read(lp_path, pixel_scale=scale), plain, exact=False)


@pytest.mark.parametrize("scale", [SCALE * u.m, SCALE * u.m / u.pix, SCALE * u.one, SCALE * u.arcsec / u.s])
def test_pixel_scale_in_a_wrong_unit_names_the_parameter(lp_path, scale):
    with pytest.raises(u.UnitConversionError, match=r"pixel_scale must be an angle per pixel .*arcsec / u\.pix"):
        _read(lp_path, pixel_scale=scale)
    with pytest.raises(ValueError, match="pixel_scale"):  # a ValueError too, as the CLI and the docs say
        _read(lp_path, pixel_scale=scale)


def test_center_as_angles_or_arcsec(lp_path):
    plain = _read(lp_path, center=(-450, 210))
    _assert_same_world(_read(lp_path, center=(-450, 210) * u.arcsec), plain)
    _assert_same_world(_read(lp_path, center=[-7.5, 3.5] * u.arcmin), plain, exact=False)
    assert abs(_world(plain)[0][2] - (-450 + SCALE * (3.5 - (NX - 1) / 2))) < 1e-9  # x of pixel 3.5 (arcsec)
    with pytest.raises(u.UnitConversionError, match=r"center must be an angle \(plain numbers are arcsec\)"):
        _read(lp_path, center=(-450, 210) * u.km)


def test_times_as_time_quantities_or_seconds(lp_path):
    by_time = _read(lp_path, times=TIMES, date_ref=DATEREF)
    seconds = (TIMES - Time(DATEREF)).to_value(u.s)
    _assert_same_world(_read(lp_path, times=seconds, date_ref=DATEREF), by_time, exact=False)
    _assert_same_world(_read(lp_path, times=seconds * u.s, date_ref=DATEREF), by_time, exact=False)
    _assert_same_world(_read(lp_path, times=(seconds / 60) * u.min, date_ref=DATEREF), by_time, exact=False)
    with pytest.raises(u.UnitConversionError, match=r"times must be an astropy Time.*Quantity of time"):
        _read(lp_path, times=seconds * u.nm, date_ref=DATEREF)


def test_wavelengths_in_any_spectral_unit(lp_path):
    in_nm = _read(lp_path)
    _assert_same_world(_read(lp_path, wavelengths=(WAVE * 10) * u.AA), in_nm, exact=False)
    _assert_same_world(_read(lp_path, wavelengths=(WAVE * u.nm).to(u.THz, u.spectral())), in_nm, exact=False)
    for wrong in (WAVE * u.s, WAVE):  # a unit that is not spectral, or plain numbers (nm or Angstrom?)
        with pytest.raises(ValueError, match="wavelengths must be a Quantity with a spectral unit"):
            _read(lp_path, wavelengths=wrong)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"wavelengths": np.r_[WAVE[:-1], WAVE[-2]] * u.nm}, "wavelengths must be finite and distinct"),
        ({"wavelengths": np.r_[WAVE[1], WAVE[0], WAVE[2:]] * u.nm}, "increasing or decreasing"),
        ({"wavelengths": np.r_[WAVE[:-1], np.nan] * u.nm}, "wavelengths must be finite"),
        ({"times": np.array([0.0, np.nan, 41.0]), "date_ref": DATEREF}, "times must be finite"),
        ({"pixel_scale": np.nan}, "pixel_scale must be one positive, finite angle"),
        ({"pixel_scale": -SCALE}, "pixel_scale must be one positive"),
        ({"pixel_scale": [SCALE, SCALE]}, "pixel_scale must be one"),
        ({"center": [np.nan, 0.0]}, "center must be the finite"),
        ({"center": [1.0, 2.0, 3.0]}, "center must be the finite"),
    ],
)
def test_lp_coordinates_that_cannot_be_a_wcs_are_refused(lp_path, kw, match):
    """Repeated, unordered or NaN wavelengths, NaN times, a NaN or negative pixel scale and a NaN centre made a cube
    whose world coordinates were NaN, flipped or not invertible (world -> pixel of a repeated tuning)."""
    with pytest.raises(ValueError, match=match):
        _read(lp_path, **kw)


def test_decreasing_wavelengths_are_a_valid_axis(lp_path):
    cube = _read(lp_path, wavelengths=WAVE[::-1] * u.nm)
    world = cube.wcs.low_level_wcs.pixel_to_world_values(0, 0, np.arange(NW), 0, 0)
    np.testing.assert_allclose(np.asarray(world[2]), WAVE[::-1], rtol=1e-12)  # nm, the table's unit
    back = cube.wcs.low_level_wcs.world_to_pixel_values(*world)[2]
    np.testing.assert_allclose(back, np.arange(NW), atol=1e-6)


def test_an_lp_cube_of_one_pixel_width_is_refused_not_a_crash(tmp_path):
    """A tabulated WCS of a 1-pixel-wide frame crashed the interpreter in astropy (a double free) on reading."""
    path = write_lp(np.ones((NT, NS, NW, NY, 1), np.float32), tmp_path / "thin.fcube")
    with pytest.raises(ValueError, match=r"1 x \d+ px: a cube needs at least 2 x 2 px"):
        _read(path)
