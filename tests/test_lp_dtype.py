"""LP cubes of integers read as the documented floating-point values, eagerly and lazily."""

import pickle

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time

from sunpy_nn.io import LPHeader, read_crisp, write_lp

NT, NS, NW, NY, NX = 2, 1, 3, 8, 10
COORDS = {
    "wavelengths": [630.1, 630.15, 630.2] * u.nm,
    "pixel_scale": 0.059,
    "times": Time(["2020-06-01T08:00:00", "2020-06-01T08:00:30"]),
}


def counts(dtype) -> np.ndarray:
    """(scan, stokes, wavelength, y, x) integers, with the ends of the type's range."""
    info = np.iinfo(dtype)
    data = np.arange(NT * NS * NW * NY * NX).reshape(NT, NS, NW, NY, NX) * 37 - 1000
    data = np.clip(data, info.min, info.max).astype(dtype)
    data[0, 0, 0, 0, :2] = info.min, info.max  # -32768 stays a value: an LP cube has no BLANK
    return data


def handmade(path, data, datatype, endian="l"):
    """An LP cube written byte by byte (write_lp writes only .fcube float32 and .icube int16)."""
    head = LPHeader(datatype, NX, NY, NT * NS * NW, endian)
    path.write_bytes(head.to_bytes() + data.astype(head.dtype).tobytes())
    return path


@pytest.mark.parametrize("lazy", ["auto", "dask", True, False])
def test_icube_reads_as_float32(tmp_path, lazy):
    data = counts(np.int16)
    cube = read_crisp(write_lp(data, tmp_path / "c.icube"), lazy=lazy, **COORDS)
    assert cube.data.dtype == np.float32  # was int16 in every mode
    if lazy is False:
        assert isinstance(cube.data, np.ndarray) and not isinstance(cube.data, np.memmap)
    else:  # lazy: a frame at a time, converted as it is read
        assert type(cube.data).__module__.startswith("dask")
        assert cube.data.chunksize == (1, 1, 1, NY, NX)
        assert np.asarray(cube.data[1, 0, 2]).dtype == np.float32
    values = np.asarray(cube.data)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, data.astype(np.float32))
    assert not np.isnan(values).any()


def test_icube_cannot_be_memory_mapped_as_floats(tmp_path):
    path = write_lp(counts(np.int16), tmp_path / "c.icube")
    with pytest.raises(ValueError, match=r"holds integers, not floats to memory-map; use lazy=.dask. or lazy=False"):
        read_crisp(path, lazy="memmap", **COORDS)


@pytest.mark.parametrize(
    ("datatype", "dtype", "endian", "expected"),
    [
        (1, np.uint8, "l", np.float32),
        (2, np.int16, "b", np.float32),
        (3, np.int32, "l", np.float64),  # float32 would round 32-bit integers
        (3, np.int32, "b", np.float64),
    ],
)
def test_integer_lp_types_read_as_fits_integers_do(tmp_path, datatype, dtype, endian, expected):
    data = counts(dtype)
    path = handmade(tmp_path / "c.icube", data, datatype, endian)
    for lazy in ("auto", "dask", False):
        cube = read_crisp(path, lazy=lazy, n_wavelengths=NW, **COORDS)
        values = np.asarray(cube.data)
        assert cube.data.dtype == expected and values.dtype == expected
        np.testing.assert_array_equal(values, data.astype(expected))


def test_fcube_still_memory_mapped_and_float32(tmp_path):
    data = counts(np.int16).astype(np.float32) / 7
    path = write_lp(data, tmp_path / "c.fcube")
    for lazy in ("auto", "memmap", "dask", False):
        cube = read_crisp(path, lazy=lazy, **COORDS)
        assert cube.data.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(cube.data), data)
    base = read_crisp(path, **COORDS).data
    while getattr(base, "base", None) is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap)


def test_lazy_icube_pickles_and_writes_back(tmp_path):
    data = counts(np.int16)
    cube = read_crisp(write_lp(data, tmp_path / "c.icube"), **COORDS)
    back = pickle.loads(pickle.dumps(cube))
    assert back.data.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(back.data), data.astype(np.float32))
    # the float values are whole numbers in the int16 range: an .icube takes them back
    again = read_crisp(write_lp(cube, tmp_path / "again.icube"), lazy=False)
    np.testing.assert_array_equal(again.data, data.astype(np.float32))
