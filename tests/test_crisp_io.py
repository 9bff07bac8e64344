"""CRISP cube I/O: SOLARNET FITS in SSTRED's layout and CRISPEX LP cubes, to and from NDCube."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from astropy.time import Time
from astropy.wcs import WCS
from ndcube import NDCube

from sunpy_nn.io import LPHeader, read_crisp, read_lp_header, write_crisp, write_lp
from sunpy_nn.utils import SunpyNNUserWarning

NT, NS, NW, NY, NX = 3, 4, 5, 20, 24
DATEREF = "2019-04-16T00:00:00"
SCALE = 0.059  # arcsec/pix
WAVE = 854.209 + np.array([-0.1, -0.05, 0.0, 0.03, 0.1])  # nm, not equidistant as CRISP tunings often are


def sstred_corners():
    """Corner table in SSTRED's layout (scan, tuning, y-corner, x-corner, [HPLN, HPLT, WAVE, TIME])."""
    coords = np.zeros((NT, NW, 2, 2, 4))
    for it in range(NT):
        for iw in range(NW):
            for jy in range(2):
                for jx in range(2):
                    x = 100.0 + jx * (NX - 1) * SCALE + 0.02 * it  # pointing drifts between scans
                    y = -50.0 + jy * (NY - 1) * SCALE - 0.01 * it
                    t = 32400.0 + 20.0 * it + 0.5 * iw  # the time depends on the tuning within a scan
                    coords[it, iw, jy, jx] = [x, y, WAVE[iw] + 1e-4 * it, t]
    return coords


def make_sstred_file(path, data, *, bscale=None, observer=False, uncert=None, tile=None, blank=None):
    """
    A small SOLARNET cube written the way SSTRED's fitscube_addwcs writes it (independent of sunpy_nn).

    ``tile`` writes the data as a tile-compressed image extension (e.g. "RICE_1"), ``blank`` sets BLANK for
    integer data; a path ending in ``.gz``/``.bz2`` is compressed as a whole by astropy.
    """
    h = fits.Header()
    h["INSTRUME"] = "Crisp"
    h["TELESCOP"] = "Swedish 1-meter Solar Telescope"
    h["BUNIT"] = "W m-2 Hz-1 sr-1"
    h["DATEREF"] = DATEREF
    h["DATE-BEG"] = "2019-04-16T09:00:00"
    if observer:
        h["DSUN_OBS"], h["HGLN_OBS"], h["HGLT_OBS"] = 1.5e11, 0.0, 5.5
    ttype = "HPLN+HPLT+WAVE+TIME"
    for i, (ctype, cunit, index) in enumerate(
        [("HPLN-TAB", "arcsec", "HPLN-INDEX"), ("HPLT-TAB", "arcsec", "HPLT-INDEX"), ("WAVE-TAB", "nm", None)], 1
    ):
        h[f"CTYPE{i}"], h[f"CUNIT{i}"], h[f"PS{i}_0"], h[f"PS{i}_1"] = ctype, cunit, "WCS-TAB", ttype
        if index:
            h[f"PS{i}_2"] = index
        h[f"PV{i}_3"], h[f"CRPIX{i}"], h[f"CRVAL{i}"], h[f"CDELT{i}"] = i, 0, 0, 1
    h["CTYPE4"], h["CRPIX4"], h["CRVAL4"], h["CDELT4"] = "STOKES", 1, 1, 1
    h["CTYPE5"], h["CUNIT5"], h["PS5_0"], h["PS5_1"], h["PV5_3"] = "UTC--TAB", "s", "WCS-TAB", ttype, 4
    h["CRPIX5"], h["CRVAL5"], h["CDELT5"] = 0, 0, 1
    coords = sstred_corners()
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name=ttype, format=f"{coords.size}D", dim=f"(4,2,2,{NW},{NT})", array=coords[None]),
            fits.Column(name="HPLN-INDEX", format="2D", array=np.array([[1.0, NX]])),
            fits.Column(name="HPLT-INDEX", format="2D", array=np.array([[1.0, NY]])),
        ],
        name="WCS-TAB",
    )
    primary = fits.PrimaryHDU(data.copy(), header=h)
    if bscale is not None:
        primary.scale("int16", bscale=bscale, bzero=0.0)
    if blank is not None:
        primary.header["BLANK"] = blank
    if tile is not None:
        image = fits.CompImageHDU(data.copy(), header=h, compression_type=tile)
        if bscale is not None:
            image.scale("int16", bscale=bscale, bzero=0.0)
        hdus = [fits.PrimaryHDU(), image, table]
    else:
        hdus = [primary, table]
    if uncert is not None:
        hdus.append(fits.ImageHDU(uncert, name="UNCERT"))
    fits.HDUList(hdus).writeto(path)
    return coords


@pytest.fixture
def cube_data():
    rng = np.random.default_rng(3)
    return (
        rng.normal(0, 1e-3, (NT, NS, NW, NY, NX)).astype(np.float32)
        + np.array([1, 0, 0, 0], np.float32)[None, :, None, None, None]
    )


def world_at(cube, it, is_, iw, y, x):
    """High-level world coordinates at an array index (scan, stokes, tuning, y, x)."""
    return cube.wcs.pixel_to_world(x, y, iw, is_, it)


# ----------------------------------------------------------------------------------------------- SOLARNET read
def test_read_sstred_cube_coordinates(tmp_path, cube_data):
    coords = make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    assert cube.data.shape == (NT, NS, NW, NY, NX)
    np.testing.assert_array_equal(np.asarray(cube.data), cube_data)
    types = cube.array_axis_physical_types
    assert types[0] == ("time",) and types[1] == ("phys.polarization.stokes",) and types[2] == ("em.wl",)
    assert all("custom:pos.helioprojective.lon" in t for t in types[3:])
    assert cube.unit == u.Unit("W m-2 Hz-1 sr-1")
    assert cube.meta["INSTRUME"] == "Crisp"
    ref = Time(DATEREF)
    # every tabulated corner, for every scan and tuning, comes back exactly
    for it in range(NT):
        for iw in range(NW):
            for jy, y in enumerate([0, NY - 1]):
                for jx, x in enumerate([0, NX - 1]):
                    sky, wave, stokes, time = world_at(cube, it, 2, iw, y, x)
                    lon, lat, wl, t = coords[it, iw, jy, jx]
                    assert abs(sky.Tx.to_value(u.arcsec) - lon) < 1e-6 and abs(sky.Ty.to_value(u.arcsec) - lat) < 1e-6
                    assert abs(wave.to_value(u.nm) - wl) < 1e-9
                    assert abs((time - ref).to_value(u.s) - t) < 1e-5
                    assert str(stokes.symbol) == "U"
    # interior pixels interpolate linearly between the corners (the pixel scale)
    sky = world_at(cube, 1, 0, 0, 7, 11)[0]
    assert abs(sky.Tx.to_value(u.arcsec) - (100.0 + 11 * SCALE + 0.02)) < 1e-6
    assert abs(sky.Ty.to_value(u.arcsec) - (-50.0 + 7 * SCALE - 0.01)) < 1e-6


def test_read_sstred_observer_assumed_at_earth(tmp_path, cube_data):
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    assert "Earth" in cube.meta["sunpy_nn_note"]
    sky = world_at(cube, 0, 0, 0, 0, 0)[0]
    assert sky.observer is not None
    assert abs(sky.observer.radius.to_value(u.AU) - 1.004) < 0.001  # Earth-Sun distance on 2019-04-16
    make_sstred_file(tmp_path / "obs.fits", cube_data, observer=True)
    cube = read_crisp(tmp_path / "obs.fits")
    assert "sunpy_nn_note" not in cube.meta
    assert abs(world_at(cube, 0, 0, 0, 0, 0)[0].observer.radius.to_value(u.m) - 1.5e11) < 1


def test_read_scaled_int16_cube_lazily(tmp_path, cube_data):
    bscale = 5e-5  # int16 range +-1.6: Stokes I ~ 1 fits
    make_sstred_file(tmp_path / "int.fits", cube_data, bscale=bscale)
    with fits.open(tmp_path / "int.fits") as hdul:
        assert hdul[0].header["BITPIX"] == 16
    import dask.array as da

    lazy = read_crisp(tmp_path / "int.fits")
    assert isinstance(lazy.data, da.Array)  # nothing read yet
    assert lazy.data.chunksize == (1, 1, 1, NY, NX)
    values = lazy.data.compute()
    assert values.dtype == np.float32
    # BSCALE honoured: the physical values within half a quantisation step (and far from the raw integers)
    assert np.max(np.abs(values - cube_data)) <= bscale / 2 + 1e-7
    eager = read_crisp(tmp_path / "int.fits", lazy=False)
    assert isinstance(eager.data, np.ndarray) and not isinstance(eager.data, np.memmap)
    np.testing.assert_array_equal(eager.data, values)
    with pytest.raises(ValueError, match="scaled integers"):
        read_crisp(tmp_path / "int.fits", lazy="memmap")


COMPRESSED = {
    "gzip": {"compress": "gzip"},
    "bzip2": {"compress": "bz2"},
    "gzip-int16": {"compress": "gzip", "bscale": 5e-5},
    "rice": {"tile": "RICE_1"},
    "gzip-tiles": {"tile": "GZIP_2"},
    "rice-int16": {"tile": "RICE_1", "bscale": 5e-5},
    "int16-blank": {"bscale": 5e-5, "blank": -32768},
}


def write_compressed(tmp_path, data, kind):
    """A SOLARNET cube compressed as users have them; returns its path and the values astropy reads from it."""
    opts = dict(COMPRESSED[kind])
    compress = opts.pop("compress", None)
    data = data.copy()
    if "blank" in opts:
        data[0, 1, 2, 3, 4] = -1.6384  # becomes -32768 = BLANK once scaled: a missing pixel
    plain = tmp_path / f"{kind}.fits"
    make_sstred_file(plain, data, **opts)
    path = plain
    if compress:
        import bz2
        import gzip

        path = tmp_path / f"{kind}.fits.{'gz' if compress == 'gzip' else 'bz2'}"
        opener = gzip.open if compress == "gzip" else bz2.open
        with opener(path, "wb") as f:
            f.write(plain.read_bytes())
        plain.unlink()
    with fits.open(path) as hdul:
        index = 1 if opts.get("tile") else 0
        expected = np.asarray(hdul[index].data, dtype=np.float32)
    return path, expected


@pytest.mark.parametrize("kind", list(COMPRESSED))
def test_compressed_and_scaled_cubes_read_as_astropy_reads_them(tmp_path, cube_data, kind, caplog):
    make_sstred_file(tmp_path / "reference.fits", cube_data)
    reference = read_crisp(tmp_path / "reference.fits")
    path, expected = write_compressed(tmp_path, cube_data, kind)
    if "int16" in kind or "rice" in kind:
        # astropy's values are the physical ones (scaled or de-quantised), not raw integers
        assert np.nanmax(np.abs(expected - cube_data)) < 0.05
    if kind == "int16-blank":
        assert np.isnan(expected[0, 1, 2, 3, 4]) and np.isnan(expected).sum() == 1
    modes = ("auto", True, "dask", False) + (() if kind == "int16-blank" else ("memmap",))
    for lazy in modes:
        caplog.clear()
        with caplog.at_level("INFO", logger="sunpy_nn.io.crisp"):
            cube = read_crisp(path, lazy=lazy)
        values = np.asarray(cube.data)
        assert values.dtype == np.float32
        np.testing.assert_array_equal(values, expected)  # bit for bit, NaN where astropy has NaN
        if lazy in (True, "dask"):
            assert type(cube.data).__module__.startswith("dask")
        if lazy == "memmap" and kind in ("gzip", "bzip2", "gzip-int16", "rice", "gzip-tiles"):
            assert "cannot be memory-mapped" in caplog.text  # the fall-back is said in the log
        for idx in [(0, 0, 0, 0, 0), (NT - 1, NS - 1, NW - 1, NY - 1, NX - 1)]:
            a, b = world_at(reference, *idx), world_at(cube, *idx)
            assert a[0].separation(b[0]).to_value(u.arcsec) < 1e-9 and a[1] == b[1] and a[3] == b[3]
    if kind == "int16-blank":
        with pytest.raises(ValueError, match="scaled"):
            read_crisp(path, lazy="memmap")


def test_truncated_compressed_files_are_reported(tmp_path, cube_data):
    path, _ = write_compressed(tmp_path, cube_data, "gzip")
    raw = path.read_bytes()
    for cut in (len(raw) // 3, len(raw) - 200):
        (tmp_path / "cut.fits.gz").write_bytes(raw[:cut])
        for lazy in ("auto", "dask", False):
            with pytest.raises(ValueError, match=r"truncated or corrupt.*Copy or download"):
                read_crisp(tmp_path / "cut.fits.gz", lazy=lazy)
    path, _ = write_compressed(tmp_path, cube_data, "rice")
    raw = path.read_bytes()
    (tmp_path / "cut.fits").write_bytes(raw[: len(raw) - 3000])  # into the compressed data and table
    with pytest.raises(ValueError, match="truncated"):
        read_crisp(tmp_path / "cut.fits")


def test_file_lacking_only_its_last_padding_is_read(tmp_path, cube_data):
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    raw = (tmp_path / "nb.fits").read_bytes()
    with fits.open(tmp_path / "nb.fits") as hdul:
        end = hdul[1].fileinfo()["datLoc"] + hdul[1].size
    (tmp_path / "short.fits").write_bytes(raw[:end])  # the table's bytes all there, its padding not
    np.testing.assert_array_equal(np.asarray(read_crisp(tmp_path / "short.fits").data), cube_data)


def test_real_tile_compressed_hmi_file(caplog):
    """A real RICE-compressed HMI SHARP file (scaled 32-bit integers, a header card astropy must fix)."""
    from .helpers import shared_file

    path = shared_file("sharp", "hmi.sharp_cea_720s.377.20110215_020000_TAI.magnetogram.fits")
    expected = fits.getdata(path, 1)
    for lazy in ("auto", "dask", False, "memmap"):
        cube = read_crisp(path, lazy=lazy)
        np.testing.assert_array_equal(np.asarray(cube.data), expected)  # float64, as astropy reads int32 * BSCALE
        assert cube.unit == u.Unit("Mx cm-2")


def test_float_cube_is_memory_mapped(tmp_path, cube_data):
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    base = cube.data
    while getattr(base, "base", None) is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap) or type(base).__name__ == "mmap"


def test_uncertainty_extension_is_read(tmp_path, cube_data):
    sigma = np.full_like(cube_data, 2e-4)
    make_sstred_file(tmp_path / "u.fits", cube_data, uncert=sigma)
    cube = read_crisp(tmp_path / "u.fits", lazy=False)
    assert isinstance(cube.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(cube.uncertainty.array, sigma)


# ---------------------------------------------------------------------------------------------------- pickling
def corner_world(cube):
    """World coordinates (every high-level object) at the cube's array corners, and along every axis."""
    shape = cube.data.shape
    corners = [tuple((n - 1) * b for n, b in zip(shape, bits, strict=True)) for bits in np.ndindex(*[2] * len(shape))]
    return [cube.wcs.pixel_to_world(*idx[::-1]) for idx in corners], cube.axis_world_coords()


def assert_same_world(a, b):
    """Two cubes' world coordinates (from `corner_world`) are the same objects with the same values."""
    for wa, wb in zip(a[0] + [list(a[1])], b[0] + [list(b[1])], strict=True):
        wa, wb = (wa, wb) if isinstance(wa, list | tuple) else ([wa], [wb])
        for x, y in zip(wa, wb, strict=True):
            assert type(x) is type(y)
            if isinstance(x, SkyCoord):
                assert x.frame.is_equivalent_frame(y.frame)  # observer, obstime, rsun
                assert np.all(x.separation(y).to_value(u.arcsec) < 1e-9)
            elif isinstance(x, Time):
                assert x.scale == y.scale and np.all(np.abs((x - y).to_value(u.s)) < 1e-6)
            elif isinstance(x, u.Quantity):
                assert x.unit == y.unit
                np.testing.assert_allclose(x.value, y.value, rtol=1e-12, atol=0)
            else:
                assert np.all(x == y)


def lp_cube(tmp_path, cube_data, lazy):
    write_lp(cube_data, tmp_path / "c.fcube", overwrite=True)
    return read_crisp(
        tmp_path / "c.fcube",
        lazy=lazy,
        wavelengths=WAVE * u.nm,
        times=Time("2019-04-16T09:00:00") + [0, 20, 41] * u.s,
        pixel_scale=SCALE,
    )


@pytest.mark.parametrize(
    "source",
    [
        "fits-eager",
        "fits-memmap",
        "fits-dask",
        "int16-auto",
        "gzip-dask",
        "rice-dask",
        "lp-memmap",
        "lp-dask",
        "lp-wcs",
    ],
)
def test_every_cube_the_readers_build_pickles(tmp_path, cube_data, source):
    import pickle

    if source.startswith("fits"):
        make_sstred_file(tmp_path / "nb.fits", cube_data, observer=True)
        cube = read_crisp(tmp_path / "nb.fits", lazy={"eager": False, "memmap": "memmap", "dask": "dask"}[source[5:]])
    elif source == "int16-auto":
        make_sstred_file(tmp_path / "nb.fits", cube_data, bscale=5e-5)
        cube = read_crisp(tmp_path / "nb.fits")
    elif source in ("gzip-dask", "rice-dask"):
        cube = read_crisp(write_compressed(tmp_path, cube_data, source[:-5].replace("-", ""))[0], lazy="dask")
    elif source == "lp-wcs":  # an LP cube whose coordinates come from its companion file
        write_lp(lp_cube(tmp_path, cube_data, False), tmp_path / "again.fcube")
        cube = read_crisp(tmp_path / "again.fcube", lazy="dask")
    else:
        cube = lp_cube(tmp_path, cube_data, "dask" if source == "lp-dask" else "auto")
    assert "-TAB" in cube.wcs.wcs.ctype[0]  # the tabulated WCS astropy alone cannot pickle
    back = pickle.loads(pickle.dumps(cube))
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(cube.data))
    assert back.unit == cube.unit and back.meta == cube.meta
    assert_same_world(corner_world(back), corner_world(cube))
    sliced = pickle.loads(pickle.dumps(cube[1, :, 2]))  # a slice: ndcube's sliced WCS around ours
    assert_same_world(corner_world(sliced), corner_world(cube[1, :, 2]))


def _frame_and_corner(cube):
    return float(np.asarray(cube.data[1, 2, 3]).sum()), cube.wcs.pixel_to_world(NX - 1, NY - 1, 4, 3, 2)


def test_tabulated_cube_goes_to_worker_processes(tmp_path, cube_data):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits", lazy="dask")
    # spawn: a fresh interpreter that gets the cube by pickle only (fork could deadlock on torch/dask threads)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        total, world = pool.submit(_frame_and_corner, cube).result()
    here = _frame_and_corner(cube)
    assert total == here[0]
    assert world[0].separation(here[1][0]).to_value(u.arcsec) < 1e-9 and world[1] == here[1][1]
    assert abs((world[3] - here[1][3]).to_value(u.s)) < 1e-6


# ------------------------------------------------------------------------------------------------ round trips
def test_solarnet_round_trip(tmp_path, cube_data):
    coords = make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    cube = NDCube(
        cube.data,
        wcs=cube.wcs,
        unit=cube.unit,
        meta=cube.meta,
        uncertainty=StdDevUncertainty(np.full(cube.data.shape, 3e-4, np.float32)),
    )
    out = write_crisp(cube, tmp_path / "out.fits")
    back = read_crisp(out, lazy=False)
    np.testing.assert_array_equal(back.data, cube_data)
    np.testing.assert_array_equal(back.uncertainty.array, 3e-4 * np.ones_like(cube_data))
    assert back.unit == cube.unit and back.meta["INSTRUME"] == "Crisp"
    with fits.open(out) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "WCS-TAB", "UNCERT"]
        table = hdul["WCS-TAB"].data[0][0]
        np.testing.assert_allclose(table, coords, rtol=0, atol=1e-6)  # SSTRED's layout, corner for corner
        assert hdul[0].header["CTYPE5"] == "UTC--TAB" and hdul[0].header["DATEREF"] == Time(DATEREF).isot
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = (rng.integers(NT), rng.integers(NS), rng.integers(NW), rng.uniform(0, NY - 1), rng.uniform(0, NX - 1))
        a, b = world_at(cube, *idx), world_at(back, *idx)
        assert a[0].separation(b[0]).to_value(u.arcsec) < 1e-6
        assert abs((a[1] - b[1]).to_value(u.nm)) < 1e-9
        assert a[2].symbol == b[2].symbol
        assert abs((a[3] - b[3]).to_value(u.s)) < 1e-5


@pytest.mark.parametrize("unit", [u.dimensionless_unscaled, u.percent, None])
def test_dimensionless_cube_reads_back_dimensionless(tmp_path, cube_data, unit):
    # The fix: I/Ic (dimensionless) was written as BUNIT = '' and read back as no unit (None)
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    cube = NDCube(cube.data, wcs=cube.wcs, unit=unit, meta=cube.meta)
    back = read_crisp(write_crisp(cube, tmp_path / "out.fits", progress=False), lazy=False)
    assert back.unit == unit if unit is not None else back.unit is None
    header = fits.getheader(tmp_path / "out.fits")
    assert ("BUNIT" in header) == (unit is not None)  # no unit stays no unit
    # a file whose BUNIT says '' is dimensionless, as astropy reads it
    assert read_crisp(tmp_path / "out.fits", unit="").unit == u.dimensionless_unscaled
    # the LP writer's WCS companion too
    write_lp(back, tmp_path / "c.fcube")
    lp = read_crisp(tmp_path / "c.fcube")
    assert lp.unit == unit if unit is not None else lp.unit is None


def test_write_gnomonic_cube_in_other_axis_order(tmp_path):
    """A cube with a TAN WCS and axes (stokes, wavelength, y, x): written as SSTRED does, coordinates kept."""
    w = WCS(naxis=4)
    w.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "WAVE", "STOKES"]
    w.wcs.cunit = ["arcsec", "arcsec", "nm", ""]
    w.wcs.cdelt = [0.059, 0.059, 0.005, 1]
    w.wcs.crpix = [16.5, 12.5, 1, 1]
    w.wcs.crval = [-300.0, 200.0, 630.15, 1]
    w.wcs.dateobs = "2020-06-01T08:00:00"
    data = np.random.default_rng(1).normal(size=(4, 6, 24, 32)).astype(np.float32)
    cube = NDCube(data, wcs=w, meta={"DATE-BEG": "2020-06-01T08:00:00", "OBSERVER": "test"})
    back = read_crisp(write_crisp(cube, tmp_path / "tan.fits"), lazy=False)
    assert back.data.shape == (1, 4, 6, 24, 32)
    np.testing.assert_array_equal(back.data[0], data)
    for y, x in [(0, 0), (23, 31), (11.5, 15.5), (3, 27)]:
        a = cube.wcs.pixel_to_world(x, y, 2, 0)[0]
        b = back.wcs.pixel_to_world(x, y, 2, 0, 0)[0]
        assert abs(a.Tx.to_value(u.arcsec) - b.Tx.to_value(u.arcsec)) < 1e-4  # TAN vs linear over 2 arcsec
        assert abs(a.Ty.to_value(u.arcsec) - b.Ty.to_value(u.arcsec)) < 1e-4
    assert abs(back.wcs.pixel_to_world(0, 0, 5, 0, 0)[1].to_value(u.nm) - 630.175) < 1e-9
    assert back.meta["OBSERVER"] == "test"


def test_write_dask_cube(tmp_path, cube_data):
    import dask.array as da

    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    lazy = NDCube(da.from_array(cube_data, chunks=(1, 1, 1, NY, NX)), wcs=cube.wcs, meta=cube.meta)
    back = read_crisp(write_crisp(lazy, tmp_path / "dask.fits"), lazy=False)
    np.testing.assert_array_equal(back.data, cube_data)


def test_lp_round_trip_and_frame_index(tmp_path):
    # each frame holds its own (scan, stokes, wavelength) code, so the file layout can be checked byte by byte
    it, is_, iw = np.meshgrid(np.arange(NT), np.arange(NS), np.arange(NW), indexing="ij")
    code = (100 * it + 10 * is_ + iw).astype(np.float32)
    data = np.broadcast_to(code[..., None, None], (NT, NS, NW, NY, NX)).copy()
    data[..., 3, 5] = -1.0  # a marker pixel at y=3, x=5 to pin the in-frame order
    path = write_lp(data, tmp_path / "crisp.fcube")
    head = read_lp_header(path)
    assert (head.nx, head.ny, head.nt, head.ns, head.datatype) == (NX, NY, NT * NS * NW, NS, 4)
    raw = np.fromfile(path, dtype="<f4", offset=512)
    assert raw.size == NX * NY * NT * NS * NW
    frames = raw.reshape(-1, NY, NX)  # Fortran (nx, ny, nt): x fastest
    for t in range(NT):
        for s in range(NS):
            for w in range(NW):
                k = w + s * NW + t * NW * NS
                assert frames[k, 0, 0] == 100 * t + 10 * s + w
    assert frames[0, 3, 5] == -1.0 and frames[0, 5, 3] == 0.0
    sp = read_lp_header(tmp_path / "crisp_sp.fcube")
    assert (sp.nx, sp.ny) == (NW, NT)
    spec = np.fromfile(tmp_path / "crisp_sp.fcube", dtype="<f4", offset=512).reshape(NS * NY * NX, NT, NW)
    np.testing.assert_array_equal(spec[2 * NY * NX + 1 * NX + 2], code[:, 2, :])  # Stokes U, y=1, x=2

    times = Time("2019-04-16T09:00:00") + np.array([0, 20, 41]) * u.s
    cube = read_crisp(
        path, wavelengths=WAVE * u.nm, times=times, pixel_scale=SCALE * u.arcsec, center=(100, -50) * u.arcsec
    )
    np.testing.assert_array_equal(np.asarray(cube.data), data)
    types = cube.array_axis_physical_types
    assert types[:3] == [("time",), ("phys.polarization.stokes",), ("em.wl",)]
    sky, wave, stokes, time = world_at(cube, 2, 3, 4, 0, 0)
    assert abs(sky.Tx.to_value(u.arcsec) - (100 - SCALE * (NX - 1) / 2)) < 1e-6
    assert abs(sky.Ty.to_value(u.arcsec) - (-50 - SCALE * (NY - 1) / 2)) < 1e-6
    assert abs(wave.to_value(u.nm) - WAVE[4]) < 1e-9 and stokes.symbol == "V"
    assert abs((time - times[2]).to_value(u.s)) < 1e-5
    # a second cube of known coordinates: through write_lp (with its WCS companion) and back, nothing lost
    write_lp(cube, tmp_path / "again.fcube")
    again = read_crisp(tmp_path / "again.fcube")
    np.testing.assert_array_equal(np.asarray(again.data), data)
    for idx in [(0, 0, 0, 0, 0), (2, 3, 4, NY - 1, NX - 1), (1, 1, 2, 7.5, 3.25)]:
        a, b = world_at(cube, *idx), world_at(again, *idx)
        assert a[0].separation(b[0]).to_value(u.arcsec) < 1e-6
        assert abs((a[1] - b[1]).to_value(u.nm)) < 1e-9 and abs((a[3] - b[3]).to_value(u.s)) < 1e-5


def test_lp_icube_big_endian_and_one_stokes(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)  # (scan, wavelength, y, x)
    head = LPHeader(datatype=2, nx=5, ny=4, nt=6, endian="b")
    (tmp_path / "c.icube").write_bytes(head.to_bytes() + data.astype(">i2").tobytes())
    (tmp_path / "c_sp.icube").write_bytes(LPHeader(2, 3, 2, 20, "b").to_bytes())
    cube = read_crisp(
        tmp_path / "c.icube",
        wavelengths=[630.1, 630.2, 630.3] * u.nm,
        pixel_scale=0.06,
        times=[0, 30] * u.s,
        date_ref="2020-01-01T10:00:00",
        lazy=False,
    )
    assert cube.data.shape == (2, 1, 3, 4, 5)
    np.testing.assert_array_equal(cube.data[:, 0], data)
    assert str(world_at(cube, 0, 0, 0, 0, 0)[2].symbol) == "I"
    # writing int16: the file is an icube with datatype 2
    write_lp(data.astype(np.float32), tmp_path / "w.icube")
    assert read_lp_header(tmp_path / "w.icube").datatype == 2
    np.testing.assert_array_equal(
        read_crisp(
            tmp_path / "w.icube",
            n_wavelengths=3,
            lazy=False,
            wavelengths=[1, 2, 3] * u.nm,
            pixel_scale=0.06,
            times=[0, 30] * u.s,
            date_ref="2020-01-01",
        ).data[:, 0],
        data,
    )


# ------------------------------------------------------------------------------------------------ bad input
def test_truncated_files_are_reported(tmp_path, cube_data):
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    raw = (tmp_path / "nb.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated"):
        read_crisp(tmp_path / "cut.fits")
    write_lp(cube_data, tmp_path / "c.fcube")
    raw = (tmp_path / "c.fcube").read_bytes()
    (tmp_path / "cut.fcube").write_bytes(raw[:-100])
    (tmp_path / "cut_sp.fcube").write_bytes((tmp_path / "c_sp.fcube").read_bytes())
    with pytest.raises(ValueError, match="truncated"):
        read_crisp(
            tmp_path / "cut.fcube", wavelengths=WAVE * u.nm, times=[0, 1, 2] * u.s, date_ref=DATEREF, pixel_scale=SCALE
        )


def test_wrong_headers_are_reported(tmp_path, cube_data):
    (tmp_path / "junk.fcube").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(600))
    with pytest.raises(ValueError, match="LP cube header"):
        read_crisp(tmp_path / "junk.fcube")
    (tmp_path / "text.fcube").write_bytes(b"hello world".ljust(600, b" "))
    with pytest.raises(ValueError, match="missing"):
        read_crisp(tmp_path / "text.fcube")
    write_lp(cube_data, tmp_path / "c.fcube")
    (tmp_path / "c_sp.fcube").write_bytes(LPHeader(4, NW + 1, NT, NX * NY * NS).to_bytes())
    with pytest.raises(ValueError, match="do not belong together"):
        read_crisp(tmp_path / "c.fcube")
    # a SOLARNET header whose WCS-TAB table was lost
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    with fits.open(tmp_path / "nb.fits") as hdul:
        fits.PrimaryHDU(hdul[0].data, header=hdul[0].header).writeto(tmp_path / "notab.fits")
    with pytest.raises(ValueError, match="no WCS-TAB"):
        read_crisp(tmp_path / "notab.fits")


def test_missing_sp_file_and_coordinates_are_reported(tmp_path, cube_data):
    write_lp(cube_data, tmp_path / "c.fcube", sp=False)
    with pytest.raises(FileNotFoundError, match=r"c_sp\.fcube.*n_wavelengths"):
        read_crisp(tmp_path / "c.fcube")
    with pytest.raises(ValueError, match="wavelengths=, times=, pixel_scale="):
        read_crisp(tmp_path / "c.fcube", n_wavelengths=NW)
    with pytest.raises(ValueError, match="cube has 5 wavelengths"):
        read_crisp(
            tmp_path / "c.fcube",
            n_wavelengths=NW,
            wavelengths=[1, 2] * u.nm,
            pixel_scale=0.06,
            times=[0, 1, 2] * u.s,
            date_ref=DATEREF,
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_crisp(tmp_path / "nothing.fits")
    with pytest.raises(ValueError, match="lazy must be"):
        read_crisp(tmp_path / "c.fcube", lazy="yes")


def test_writer_refuses_to_overwrite_and_bad_cubes(tmp_path, cube_data):
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    write_crisp(cube, tmp_path / "o.fits")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_crisp(cube, tmp_path / "o.fits")
    with pytest.raises(TypeError, match="NDCube"):
        write_crisp(cube_data, tmp_path / "arr.fits")
    w = WCS(naxis=3)
    w.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "STOKES"]
    w.wcs.cunit = ["arcsec", "arcsec", ""]
    with pytest.raises(ValueError, match="wavelength"):
        write_crisp(NDCube(np.zeros((4, 8, 8)), wcs=w), tmp_path / "nowave.fits")


def test_caller_cube_is_not_modified(tmp_path, cube_data):
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits", lazy=False)
    before = cube.data.copy(), dict(cube.meta)
    write_crisp(cube, tmp_path / "o.fits")
    write_lp(cube, tmp_path / "o.fcube")
    np.testing.assert_array_equal(cube.data, before[0])
    assert dict(cube.meta) == before[1]
    assert isinstance(world_at(cube, 0, 0, 0, 0, 0)[0], SkyCoord)


def test_cli_denoises_lp_and_solarnet_cubes(tmp_path, capsys):
    from sunpy_nn.cli import main

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:32, 0:32]
    signal = 0.01 * np.sin(xx / 4.0) * np.cos(yy / 5.0)
    data = np.zeros((3, 4, 2, 32, 32), np.float32)
    data[:, 0] = 1.0
    data[:, 1:] = signal
    data += rng.normal(0, 3e-3, data.shape).astype(np.float32)
    write_lp(data, tmp_path / "in.fcube")
    args = ["--epochs", "1", "--patches", "20", "--patch-size", "16", "--seed", "0", "-q"]
    lp_args = ["--wavelengths", "630.15,630.25", "--pixel-scale", "0.059"]
    lp_args += ["--times", "2020-06-01T08:00:00,2020-06-01T08:00:30,2020-06-01T08:01:00"]
    assert main(["denoise", str(tmp_path / "in.fcube"), "-o", str(tmp_path / "out.fits"), *lp_args, *args]) == 0
    out = read_crisp(tmp_path / "out.fits", lazy=False)
    assert out.data.shape == data.shape and out.uncertainty.array.shape == data.shape
    np.testing.assert_array_equal(out.data[:, 0], data[:, 0])  # Stokes I passes through
    assert not np.array_equal(out.data[:, 3], data[:, 3])
    assert abs(out.wcs.pixel_to_world(0, 0, 1, 0, 2)[1].to_value(u.nm) - 630.25) < 1e-9
    assert "Noise2Noise" in str(out.meta["HISTORY"])
    # the SOLARNET output goes back in: a second run reads the file it wrote
    assert main(["denoise", str(tmp_path / "out.fits"), "-o", str(tmp_path / "again.fits"), *args]) == 0
    # an LP cube without its coordinates is refused with the options to give
    assert main(["denoise", str(tmp_path / "in.fcube"), "-o", str(tmp_path / "x.fits"), *args]) == 2
    err = capsys.readouterr().err
    assert "--wavelengths, --times, --pixel-scale" in err and "wavelengths=" not in err  # the CLI's own options


# ------------------------------------------------------------------------------------ world coordinates kept
def hpc_wcs(kinds, *, spec=("WAVE", "nm", 630.15, 0.005), time=("UTC", "s", 0.0, 30.0), observer="hgs", **cards):
    """
    A FITS WCS, as read from a header, for array axes ``kinds`` (numpy order, e.g. ["time", "stokes", "y", "x"]).

    ``spec``/``time``: (CTYPE, CUNIT, CRVAL, CDELT) of the spectral and time axes; ``observer``: "hgs" (DSUN/HGLN/
    HGLT), "carrington", "obsgeo" (La Palma) or None; ``cards``: more header cards (``DATE_BEG="..."`` for
    DATE-BEG), or None to remove one.
    """
    from astropy.wcs import FITSFixedWarning

    names = list(reversed(kinds))
    table = {
        "x": ("HPLN-TAN", "arcsec", 100.0, 0.059),
        "y": ("HPLT-TAN", "arcsec", -50.0, 0.059),
        "wavelength": spec,
        "stokes": ("STOKES", "", 1.0, 1.0),
        "time": time,
    }
    h = fits.Header()
    for i, n in enumerate(names, 1):
        h[f"CTYPE{i}"], h[f"CUNIT{i}"], h[f"CRVAL{i}"], h[f"CDELT{i}"] = table[n]
        h[f"CRPIX{i}"] = 1.0
    h["DATE-OBS"] = "2020-06-01T08:00:00.5"
    if observer == "hgs":
        h["DSUN_OBS"], h["HGLN_OBS"], h["HGLT_OBS"] = 1.5157e11, 0.5, -2.25
    elif observer == "carrington":
        h["DSUN_OBS"], h["CRLN_OBS"], h["HGLT_OBS"] = 1.5157e11, 123.4, -2.25
    elif observer == "obsgeo":
        h["OBSGEO-X"], h["OBSGEO-Y"], h["OBSGEO-Z"] = 5327395.9638, -1718722.1287, 3051674.2  # SST, La Palma
    if "time" in kinds and not any(k.startswith(("MJDREF", "DATEREF")) for k in cards):
        h["DATEREF"] = "2020-06-01T08:00:00"
    for key, value in cards.items():
        key = key.replace("_", "-") if key.startswith(("DATE_", "MJD_")) else key
        if value is None:
            h.remove(key, ignore_missing=True)
        else:
            h[key] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(h, preserve_units=True)


def world_by_kind(cube, idx):
    """High-level world coordinates at an array index, by kind, with those of sliced-away axes."""
    world = cube.wcs.pixel_to_world(*idx[::-1])
    world = list(world) if isinstance(world, list | tuple) else [world]
    world += list(dict(cube.global_coords).values())
    out = {}
    for w in world:
        if isinstance(w, SkyCoord):
            out["sky"] = w
        elif isinstance(w, Time):
            out["time"] = w
        elif type(w).__name__ == "StokesCoord":
            out["stokes"] = w
        elif isinstance(w, u.Quantity):
            out["spectral"] = w
    return out


def assert_same_frame(a, b):
    """Helioprojective frames with the same obstime, rsun and observer (to a millimetre)."""
    assert type(a) is type(b) and a.obstime == b.obstime and a.rsun == b.rsun
    assert (a.observer is None) == (b.observer is None)
    if a.observer is not None:
        oa, ob = SkyCoord(a.observer), SkyCoord(b.observer)
        assert oa.obstime == ob.obstime
        assert np.all(oa.cartesian.xyz.to_value(u.m) - ob.cartesian.xyz.to_value(u.m) < 1e-3)


def assert_round_trip_world(cube, back, *, time=None, spectral_type=None):
    """Every world coordinate of ``cube`` at its corners is the same in ``back`` (5-D, from read_crisp)."""
    from sunpy_nn.denoise import find_axes

    axes = find_axes(cube)
    order = [axes.time, axes.stokes, axes.wavelength, axes.y, axes.x]
    for bits in np.ndindex(*[2] * cube.data.ndim):
        idx = tuple((n - 1) * b for n, b in zip(cube.data.shape, bits, strict=True))
        idx5 = tuple(0 if a is None else idx[a] for a in order)
        a, b = world_by_kind(cube, idx), world_by_kind(back, idx5)
        assert_same_frame(a["sky"].frame, b["sky"].frame)
        for c in ("Tx", "Ty"):
            assert abs(getattr(a["sky"], c) - getattr(b["sky"], c)).to_value(u.arcsec) < 1e-6
        spec_a = a["spectral"]
        assert type(b["spectral"]) is type(spec_a) and b["spectral"].unit == spec_a.unit
        assert abs(b["spectral"].value - spec_a.value) <= 1e-12 * abs(spec_a.value)
        t_a = a.get("time", time)
        assert b["time"].scale == t_a.scale and abs((b["time"] - t_a).to_value(u.s)) < 1e-6
        assert str(b["stokes"].symbol) == (str(a["stokes"].symbol) if "stokes" in a else "I")
    if spectral_type is not None:
        assert back.wcs.wcs.ctype[2].startswith(spectral_type)
        assert back.wcs.world_axis_physical_types == _physical_types_with(back, cube)


def _physical_types_with(back, cube):
    """``back``'s world physical types, checked to include the cube's spectral one (em.wl vs em.wl;obs.atmos)."""
    spectral = [t for t in cube.wcs.world_axis_physical_types if t.startswith("em.")]
    for t in spectral:
        assert t in back.wcs.world_axis_physical_types
    return back.wcs.world_axis_physical_types


def data_for(kinds, seed=0):
    sizes = {"time": 3, "stokes": 4, "wavelength": 5, "y": 12, "x": 16}
    return np.random.default_rng(seed).normal(size=[sizes[k] for k in kinds]).astype(np.float32)


def test_single_scan_takes_its_time_from_the_wcs(tmp_path):
    kinds = ["wavelength", "y", "x"]  # one scan, one Stokes parameter: the time is only DATE-OBS in the WCS
    cube = NDCube(data_for(kinds), wcs=hpc_wcs(kinds))
    back = read_crisp(write_crisp(cube, tmp_path / "one.fits"), lazy=False)
    assert back.data.shape == (1, 1, 5, 12, 16)
    assert_round_trip_world(cube, back, time=Time("2020-06-01T08:00:00.5"))
    assert back.meta["DATE-BEG"].startswith("2020-06-01T08:00:00.5")
    # DATE-BEG wins over DATE-OBS, and an MJD works as well as an ISO date
    cube = NDCube(data_for(kinds), wcs=hpc_wcs(kinds, DATE_BEG="2020-06-01T07:59:00"))
    back = read_crisp(write_crisp(cube, tmp_path / "beg.fits"), lazy=False)
    assert abs((back.wcs.pixel_to_world(0, 0, 0, 0, 0)[-1] - Time("2020-06-01T07:59:00")).to_value(u.s)) < 1e-6
    cube = NDCube(data_for(kinds), wcs=hpc_wcs(kinds, DATE_OBS=None, MJD_OBS=59001.25, observer=None))
    back = read_crisp(write_crisp(cube, tmp_path / "mjd.fits"), lazy=False)
    assert abs((back.wcs.pixel_to_world(0, 0, 0, 0, 0)[-1] - Time(59001.25, format="mjd")).to_value(u.s)) < 1e-6


@pytest.mark.parametrize(
    ("spec", "extra"),
    [
        (("WAVE", "nm", 630.15, 0.005), {}),
        (("AWAV", "Angstrom", 6301.5, 0.05), {"SPECSYS": "TOPOCENT"}),
        (("WAVE", "Angstrom", 8542.1, 0.1), {"SPECSYS": "BARYCENT", "RESTWAV": 8.5421e-7}),
        (("FREQ", "GHz", 4.75e5, 10.0), {}),
    ],
)
def test_spectral_type_unit_and_frame_survive(tmp_path, spec, extra):
    kinds = ["stokes", "wavelength", "y", "x"]
    cube = NDCube(data_for(kinds), wcs=hpc_wcs(kinds, spec=spec, **extra))
    back = read_crisp(write_crisp(cube, tmp_path / "s.fits"), lazy=False)
    assert_round_trip_world(cube, back, time=Time("2020-06-01T08:00:00.5"), spectral_type=spec[0])
    assert back.wcs.wcs.cunit[2] == u.Unit(spec[1])  # the file's unit, not converted
    for key, value in extra.items():
        assert getattr(back.wcs.wcs, key.lower()) == value
    # an LP cube's companion keeps the same
    write_lp(cube, tmp_path / "s.fcube")
    assert_round_trip_world(cube, read_crisp(tmp_path / "s.fcube"), time=Time("2020-06-01T08:00:00.5"))


@pytest.mark.parametrize(
    ("time", "extra"),
    [
        (("UTC", "s", 10.0, 30.0), {"MJDREF": 58000.0}),
        (("TAI", "s", 10.0, 30.0), {"DATEREF": "2020-06-01T00:00:00"}),
        (("TIME", "min", 5.0, 0.5), {"TIMESYS": "TT", "MJDREFI": 59001.0, "MJDREFF": 0.25}),
    ],
)
def test_time_scale_and_reference_survive(tmp_path, time, extra):
    kinds = ["time", "stokes", "wavelength", "y", "x"]
    cube = NDCube(data_for(kinds), wcs=hpc_wcs(kinds, time=time, **extra))
    back = read_crisp(write_crisp(cube, tmp_path / "t.fits"), lazy=False)
    assert_round_trip_world(cube, back)
    assert back.wcs.pixel_to_world(0, 0, 0, 0, 0)[-1].scale == cube.wcs.pixel_to_world(0, 0, 0, 0, 0)[-1].scale
    write_lp(cube, tmp_path / "t.fcube")
    assert_round_trip_world(cube, read_crisp(tmp_path / "t.fcube"))


@pytest.mark.parametrize("observer", ["hgs", "carrington", "obsgeo", "rsun"])
def test_observer_survives(tmp_path, observer):
    kinds = ["time", "wavelength", "y", "x"]
    # (astropy needs SPECSYS to build spectral coordinates when OBSGEO is given)
    extra = {"DATE_AVG": "2020-06-01T08:00:45", "SPECSYS": "TOPOCENT"} if observer == "obsgeo" else {}
    extra |= {"RSUN_REF": 6.96e8} if observer == "rsun" else {}
    w = hpc_wcs(kinds, observer="hgs" if observer == "rsun" else observer, **extra)
    cube = NDCube(data_for(kinds), wcs=w)
    before = world_by_kind(cube, (0, 0, 0, 0))["sky"]
    assert before.observer is not None
    back = read_crisp(write_crisp(cube, tmp_path / "o.fits"), lazy=False)
    assert "sunpy_nn_note" not in back.meta  # the observer came from the file, not assumed
    assert_round_trip_world(cube, back)


def test_sliced_cubes_keep_the_coordinates_of_their_slice(tmp_path):
    """A scan, a Stokes parameter or a tuning cut from a cube is written with its own time, Stokes, wavelength."""
    kinds = ["time", "stokes", "wavelength", "y", "x"]
    wcs = hpc_wcs(kinds, DATEREF="2020-06-01T08:00:00")
    full = NDCube(data_for(kinds), wcs=wcs, meta={"DATE-BEG": "1999-01-01", "DATE-OBS": "1999-01-01"})
    for key in [np.s_[2], np.s_[:, 3], np.s_[:, :, 1], np.s_[1, 2]]:
        part = full[key]
        back = read_crisp(write_crisp(part, tmp_path / "part.fits", overwrite=True), lazy=False)
        np.testing.assert_array_equal(back.data.reshape(part.data.shape), part.data)
        assert_round_trip_world(part, back)
        write_lp(part, tmp_path / "part.fcube", overwrite=True)
        assert_round_trip_world(part, read_crisp(tmp_path / "part.fcube"))
    # the V-only cube is Stokes V in the file, not I
    v = read_crisp(write_crisp(full[:, 3], tmp_path / "v.fits"), lazy=False)
    assert str(v.wcs.pixel_to_world(0, 0, 0, 0, 0)[2].symbol) == "V"


def test_coordinates_a_file_cannot_hold_are_refused(tmp_path):
    kinds = ["wavelength", "y", "x"]
    w = hpc_wcs(["y", "x"], CTYPE1="HGLN-CAR", CTYPE2="HGLT-CAR", CUNIT1="deg", CUNIT2="deg", observer=None)
    with pytest.raises(ValueError, match=r"helioprojective.*HeliographicStonyhurst"):
        write_crisp(NDCube(data_for(["y", "x"]), wcs=w), tmp_path / "hgs.fits")
    w = hpc_wcs(kinds, CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CUNIT1="deg", CUNIT2="deg", observer=None)
    with pytest.raises(ValueError, match=r"helioprojective.*ICRS"):
        write_crisp(NDCube(data_for(kinds), wcs=w), tmp_path / "icrs.fits")
    cube = NDCube(data_for(kinds), wcs=hpc_wcs(kinds))
    cube.extra_coords.add("exposure", 0, [0.1, 0.2, 0.1, 0.2, 0.1] * u.s)
    with pytest.raises(ValueError, match=r"extra_coords \['exposure'\]"):
        write_crisp(cube, tmp_path / "extra.fits")
    with pytest.raises(ValueError, match="extra_coords"):
        write_lp(cube, tmp_path / "extra.fcube")
    cube = NDCube(data_for(kinds), wcs=hpc_wcs(kinds))
    cube.global_coords.add("distance", "pos.distance", 1 * u.AU)
    with pytest.raises(ValueError, match=r"global_coords \['distance'\]"):
        write_crisp(cube, tmp_path / "global.fits")
    w = hpc_wcs(kinds, DATE_OBS=None, observer=None)
    with pytest.raises(ValueError, match="needs the time of the scans"):
        write_crisp(NDCube(data_for(kinds), wcs=w), tmp_path / "notime.fits")
    assert not list(tmp_path.glob("*.fits")) and not list(tmp_path.glob("*.fcube"))  # nothing half-written


def test_lp_wavelengths_need_a_unit(tmp_path, cube_data):
    write_lp(cube_data, tmp_path / "c.fcube")
    with pytest.raises(ValueError, match="Quantity with a spectral unit"):
        read_crisp(
            tmp_path / "c.fcube", wavelengths=WAVE * 10, times=[0, 1, 2] * u.s, date_ref=DATEREF, pixel_scale=SCALE
        )


# ------------------------------------------------------------------------------------ what the writer keeps
def test_mask_and_float64_values_survive(tmp_path, cube_data):
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    data = np.asarray(cube.data, dtype=np.float64) + 1e-12  # float64 values float32 cannot hold
    mask = np.zeros(data.shape, bool)
    mask[1, 2, 3, 4:7, 5:9] = True
    masked = NDCube(data, wcs=cube.wcs, mask=mask, meta=cube.meta, unit=cube.unit)
    for lazy in (False, "dask"):
        back = read_crisp(write_crisp(masked, tmp_path / "m.fits", overwrite=True), lazy=lazy)
        assert np.asarray(back.data).dtype == np.float64
        np.testing.assert_array_equal(np.asarray(back.data), data)
        np.testing.assert_array_equal(np.asarray(back.mask), mask)
    assert read_crisp(write_crisp(cube, tmp_path / "nomask.fits"), lazy=False).mask is None
    # an LP cube has no mask: masked pixels are NaN in an .fcube, refused for an .icube
    lp = read_crisp(write_lp(masked, tmp_path / "m.fcube"), lazy=False)
    assert np.isnan(lp.data[mask]).all() and np.isfinite(lp.data[~mask]).all()
    with pytest.raises(ValueError, match=r"masked pixels.*icube"):
        write_lp(masked, tmp_path / "m.icube")


def test_writer_checks_its_output_first_and_leaves_no_partial_file(tmp_path, cube_data, monkeypatch):
    import sunpy_nn.io.crisp as crisp

    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits")
    for name, error, message in [
        ("out.fits.gz", ValueError, r"uncompressed FITS.*out\.fits and compress"),
        ("out.fz", ValueError, "uncompressed FITS"),
        ("out.png", ValueError, "unknown output type"),
        ("out", ValueError, "no extension"),
        ("out.bcube", ValueError, "unknown output type"),
        ("missing/out.fits", FileNotFoundError, "does not exist; create it first"),
        ("nb.fits/out.fits", NotADirectoryError, "not a folder"),
    ]:
        with pytest.raises(error, match=message):
            write_crisp(cube, tmp_path / name)
    # a failure while writing frames: no file left, the one it would replace intact
    original = (tmp_path / "nb.fits").read_bytes()
    monkeypatch.setattr(crisp, "_frame_getter", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError, match="disk full"):
        write_crisp(cube, tmp_path / "nb.fits", overwrite=True)
    assert (tmp_path / "nb.fits").read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.fits"]


def test_cube_can_be_written_over_the_file_it_is_read_from(tmp_path, cube_data):
    for lazy in ("auto", "dask"):
        make_sstred_file(tmp_path / "nb.fits", cube_data)
        cube = read_crisp(tmp_path / "nb.fits", lazy=lazy)
        write_crisp(cube, tmp_path / "nb.fits", overwrite=True)
        np.testing.assert_array_equal(read_crisp(tmp_path / "nb.fits", lazy=False).data, cube_data)
        (tmp_path / "nb.fits").unlink()


def test_stale_lp_companion_is_never_left(tmp_path, cube_data):
    cube = lp_cube(tmp_path, cube_data, False)
    write_lp(cube, tmp_path / "x.fcube")
    assert (tmp_path / "x.fcube.wcs.fits").exists()
    with pytest.raises(FileExistsError, match=r"x\.fcube"):
        write_lp(cube_data * 2, tmp_path / "x.fcube")
    write_lp(cube_data * 2, tmp_path / "x.fcube", overwrite=True)  # an array: no coordinates to describe
    assert not (tmp_path / "x.fcube.wcs.fits").exists()  # the old cube's companion went with it


def test_truncated_zip_file_is_reported(tmp_path, cube_data):
    import zipfile

    make_sstred_file(tmp_path / "nb.fits", cube_data)
    with zipfile.ZipFile(tmp_path / "nb.fits.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(tmp_path / "nb.fits", "nb.fits")
    raw = (tmp_path / "nb.fits.zip").read_bytes()
    (tmp_path / "cut.fits.zip").write_bytes(raw[: len(raw) // 2])  # its central directory (at the end) is lost
    with pytest.raises(ValueError, match=r"truncated or corrupt.*Copy or download"):
        read_crisp(tmp_path / "cut.fits.zip")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d, "not integers"),  # I/Ic: rounding wrote 0 and 1 (a new user's whole cube)
        (lambda d: np.where(d > 1.0005, np.nan, np.rint(1000 * d)), "NaN or infinite"),
        (lambda d: np.rint(1e5 * d), "outside the int16 range"),
    ],
)
def test_icube_refuses_values_int16_cannot_hold(tmp_path, cube_data, change, says):
    with pytest.raises(ValueError, match=rf"{says}.*write an \.fcube"):
        write_lp(change(cube_data.astype(np.float64)), tmp_path / "c.icube")
    assert list(tmp_path.iterdir()) == []  # nothing left written
    counts = np.rint(1000 * cube_data)  # raw counts are written exactly
    raw = np.fromfile(write_lp(counts, tmp_path / "c.icube"), dtype="<i2", offset=512)
    np.testing.assert_array_equal(raw.reshape(counts.shape), counts)


def test_lp_cube_says_it_drops_the_uncertainty(tmp_path, cube_data):
    make_sstred_file(tmp_path / "nb.fits", cube_data)
    cube = read_crisp(tmp_path / "nb.fits", lazy=False)
    cube = NDCube(cube.data, wcs=cube.wcs, unit=cube.unit, meta=cube.meta, uncertainty=StdDevUncertainty(cube.data))
    with pytest.warns(SunpyNNUserWarning, match="no place for the uncertainty, which is not written"):
        write_lp(cube, tmp_path / "c.fcube")
