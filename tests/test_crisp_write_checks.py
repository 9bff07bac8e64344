"""write_crisp's checks before writing: float types only, two or more pixels per spatial axis, the uncertainty in the
data's unit; and ssim's window size."""

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import StdDevUncertainty
from ndcube import NDCube

from sunpy_nn.io import read_crisp, write_crisp
from sunpy_nn.metrics import ssim

from .test_crisp_io import make_sstred_file


def _cube(tmp_path, cube_data, **kw):
    if not (tmp_path / "in.fits").exists():
        make_sstred_file(tmp_path / "in.fits", cube_data)
    cube = read_crisp(tmp_path / "in.fits", lazy=False)
    return NDCube(cube.data, wcs=cube.wcs, meta=cube.meta, **kw)


@pytest.fixture
def cube_data():
    rng = np.random.default_rng(3)
    return rng.normal(0, 1e-3, (2, 4, 3, 6, 5)).astype(np.float32)


def test_the_uncertainty_is_written_in_the_unit_of_the_data(tmp_path, cube_data):
    cube = _cube(tmp_path, cube_data, unit=u.G, uncertainty=StdDevUncertainty(np.full(cube_data.shape, 1e-4), unit=u.T))
    back = read_crisp(write_crisp(cube, tmp_path / "out.fits"), lazy=False)
    assert back.unit == u.G
    np.testing.assert_allclose(back.uncertainty.array, 1.0, rtol=1e-6)  # 1e-4 T = 1 G (it read 1e-4 G)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float16])
def test_a_dtype_that_loses_values_is_refused(tmp_path, cube_data, dtype):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        write_crisp(_cube(tmp_path, cube_data), tmp_path / "out.fits", dtype=dtype)
    assert not (tmp_path / "out.fits").exists()


def test_a_one_pixel_wide_cube_is_refused(tmp_path, cube_data):
    cube = _cube(tmp_path, cube_data)[..., :1]
    with pytest.raises(ValueError, match="at least 2 x 2 spatial pixels; this cube has 6 x 1"):
        write_crisp(cube, tmp_path / "out.fits")


@pytest.mark.parametrize("win_size", [5.0, True, 4])
def test_ssim_refuses_a_window_that_is_not_an_odd_integer(win_size):
    x = np.random.default_rng(0).random((32, 32))
    with pytest.raises(ValueError, match="win_size must be an odd integer"):
        ssim(x, x, data_range=1.0, win_size=win_size)


def test_an_extra_coordinate_that_makes_two_axes_of_one_kind_is_refused_by_name():
    from astropy.wcs import WCS

    from sunpy_nn.cube import find_axes

    wcs = WCS(naxis=4)
    wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "WAVE", "UTC"]
    wcs.wcs.cunit = ["arcsec", "arcsec", "nm", "s"]
    cube = NDCube(np.ones((2, 3, 4, 5)), wcs=wcs)
    cube.extra_coords.add("line_core", 0, [630.25, 630.26] * u.nm, physical_types="em.wl")
    # the time axis read as a second spectral one, and the cube's time axis was lost without a word
    with pytest.raises(ValueError, match="more than one array axis reads as wavelength"):
        find_axes(cube)


@pytest.mark.parametrize(("frames", "method"), [(np.ones((3, 3)), "spatial"), (np.ones((2, 1, 1)), "temporal")])
def test_a_noise_level_from_too_few_values_is_refused(frames, method):
    from sunpy_nn.metrics import estimate_noise

    frames = frames + np.random.default_rng(0).normal(0, 1e-3, frames.shape)
    with pytest.raises(ValueError, match=r"Cannot estimate the noise from 1 values \(at least 10"):
        estimate_noise(frames, method=method)  # the spread of one value, 0, was returned


def test_a_big_endian_float_dtype_is_written(tmp_path, cube_data):
    back = read_crisp(write_crisp(_cube(tmp_path, cube_data), tmp_path / "out.fits", dtype=">f4"), lazy=False)
    np.testing.assert_array_equal(back.data, cube_data)
