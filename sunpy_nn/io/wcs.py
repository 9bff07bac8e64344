"""
World coordinates of CRISP cubes: the tabulated (``-TAB``) WCS of SSTRED's SOLARNET files, read and written.

Reading, astropy's ``WCS(header, fobj=hdulist)`` evaluates the ``WCS-TAB`` table; `TabularWCS` keeps that table
so that the WCS pickles. Writing, ``_world`` reads from any cube's WCS the corner coordinates of every scan and
tuning, the observer and the spectral frame, and ``_tabulated_wcs_hdus`` turns them into SSTRED's WCS cards and
``WCS-TAB`` table. Split from `sunpy_nn.io.crisp` (issue #15), which still exports every name.
"""

from __future__ import annotations

import io
import re
import warnings

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from ndcube import NDCube

from sunpy_nn.cube import STOKES_CODES, STOKES_SYMBOLS, stokes_labels

__all__ = ["TabularWCS"]

_OBSERVER_KEYS = (("DSUN_OBS", "HGLN_OBS", "HGLT_OBS"), ("DSUN_OBS", "CRLN_OBS", "CRLT_OBS"))
_OBSGEO_KEYS = ("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z")
_WCS_COLUMNS = ("HPLN", "HPLT", "WAVE", "TIME")
_SPECTRAL_PHYSICAL = ("length", "frequency", "wavenumber", "energy")


# ---------------------------------------------------------------------------------------------- tabulated WCS
def _as_seconds(times, date_ref: Time | None, n: str) -> tuple[np.ndarray, Time]:
    """Times as seconds since a reference (midnight of the first time when none is given)."""
    if isinstance(times, Time):
        first = times.ravel()[0]
        ref = date_ref if date_ref is not None else Time(first.strftime("%Y-%m-%dT00:00:00"), scale=first.scale)
        return np.asarray((times - ref).to_value(u.s), dtype=float), ref
    if date_ref is None:
        raise ValueError(f"{n} given as plain numbers or a Quantity needs date_ref= (the time they count from)")
    return np.asarray(u.Quantity(times, u.s).to_value(u.s), dtype=float), Time(date_ref)


def _tabulated_wcs_hdus(
    nx: int,
    ny: int,
    lon: np.ndarray,
    lat: np.ndarray,
    spectral,
    time_s: np.ndarray,
    date_ref: Time,
    stokes_first: int = 1,
    spec_type: str = "WAVE",
) -> tuple[dict, fits.BinTableHDU]:
    """
    SSTRED-style WCS keywords and ``WCS-TAB`` table.

    ``lon``/``lat`` (arcsec) have shape ``(n_scan, n_tuning, 2, 2)`` (corners ``[y][x]`` at the first and last
    pixel), ``spectral`` (a Quantity; plain numbers are nm) and ``time_s`` ``(n_scan, n_tuning)``. ``spec_type``
    is the spectral coordinate type (``WAVE`` vacuum wavelength, ``AWAV`` air wavelength, ``FREQ``...), written
    in the unit of ``spectral``; the time axis is in the time scale of ``date_ref`` (``UTC``, ``TAI``...), to which
    ``DATEREF`` belongs.
    """
    spectral = spectral if isinstance(spectral, u.Quantity) else u.Quantity(spectral, u.nm)
    spec_unit, wave = spectral.unit, np.asarray(spectral.value, dtype=float)
    time_type = date_ref.scale.upper()
    nt, nw = wave.shape
    tab_wave, tab_time = nw > 1, nt > 1 or nw > 1
    names = ["HPLN", "HPLT"] + (["WAVE"] if tab_wave else []) + (["TIME"] if tab_time else [])
    ttype = "+".join(names)
    # numpy order (scan, tuning, y-corner, x-corner, coordinate): TDIM (M, 2, 2, Nw, Nt) as SSTRED writes.
    cols = [lon, lat] + ([np.broadcast_to(wave[..., None, None], lon.shape)] if tab_wave else [])
    cols += [np.broadcast_to(time_s[..., None, None], lon.shape)] if tab_time else []
    table = np.stack(cols, axis=-1)
    if not tab_wave:
        table = table[:, 0]
    if not tab_time:
        table = table[0]
    dim = "(" + ",".join(str(s) for s in table.shape[::-1]) + ")"
    columns = [
        fits.Column(name=ttype, format=f"{table.size}D", dim=dim, array=table[None]),
        fits.Column(name="HPLN-INDEX", format="2D", array=np.array([[1.0, nx]])),
        fits.Column(name="HPLT-INDEX", format="2D", array=np.array([[1.0, ny]])),
    ]
    tab = fits.BinTableHDU.from_columns(columns, name="WCS-TAB")
    tab.header["COMMENT"] = "Tabulated WCS coordinates: FOV corners for every tuning and scan (SSTRED layout)"

    cards: dict = {"DATEREF": (date_ref.isot, f"[{time_type}] reference of the time axis")}
    coord_no = 1
    for i, (ctype, cunit, cname, index) in enumerate(
        [("HPLN-TAB", "arcsec", "Spatial X", "HPLN-INDEX"), ("HPLT-TAB", "arcsec", "Spatial Y", "HPLT-INDEX")], 1
    ):
        cards.update({f"CTYPE{i}": ctype, f"CUNIT{i}": cunit, f"CNAME{i}": cname, f"PS{i}_0": "WCS-TAB"})
        cards.update({f"PS{i}_1": ttype, f"PS{i}_2": index, f"PV{i}_3": coord_no})
        cards.update({f"CRPIX{i}": 0, f"CRVAL{i}": 0, f"CDELT{i}": 1})
        coord_no += 1
    spec_name = {"WAVE": "Wavelength", "AWAV": "Air wavelength", "FREQ": "Frequency"}.get(spec_type, spec_type)
    spec_unit = spec_unit.to_string("fits")
    if tab_wave:
        cards.update({"CTYPE3": f"{spec_type:-<4}-TAB", "CUNIT3": spec_unit, "CNAME3": spec_name, "PS3_0": "WCS-TAB"})
        cards.update({"PS3_1": ttype, "PV3_3": coord_no, "CRPIX3": 0, "CRVAL3": 0, "CDELT3": 1})
        coord_no += 1
    else:
        cards.update({"CTYPE3": spec_type, "CUNIT3": spec_unit, "CNAME3": spec_name, "CRPIX3": 1})
        cards.update({"CRVAL3": float(wave[0, 0]), "CDELT3": 1})
    cards.update({"CTYPE4": "STOKES", "CRPIX4": 1, "CRVAL4": stokes_first, "CDELT4": 1})
    if tab_time:
        cards.update({"CTYPE5": f"{time_type:-<4}-TAB", "CUNIT5": "s", "CNAME5": "Time since DATEREF"})
        cards.update({"PS5_0": "WCS-TAB", "PS5_1": ttype, "PV5_3": coord_no, "CRPIX5": 0, "CRVAL5": 0, "CDELT5": 1})
    else:
        cards.update({"CTYPE5": time_type, "CUNIT5": "s", "CNAME5": "Time since DATEREF", "CRPIX5": 1})
        cards.update({"CRVAL5": float(time_s[0, 0]), "CDELT5": 1})
    for i in range(1, 6):
        cards[f"PC{i}_{i}"] = 1.0
    return cards, tab


def _observer_at_earth(header: fits.Header) -> str | None:
    """Add Earth's position as the observer when the header has none; returns the note to keep in meta."""
    if all(k in header for k in _OBSGEO_KEYS) or any(all(k in header for k in keys) for keys in _OBSERVER_KEYS):
        return None
    date = next((header[k] for k in ("DATE-AVG", "DATE-BEG", "DATE-OBS", "DATEREF") if header.get(k)), None)
    if date is None:
        return "no observer location and no date in the header: the helioprojective frame has no observer"
    from sunpy.coordinates import get_earth

    earth = get_earth(Time(date))
    header["DSUN_OBS"] = (earth.radius.to_value(u.m), "[m] sunpy_nn: Earth assumed (none in file)")
    header["HGLN_OBS"] = (earth.lon.to_value(u.deg), "[deg] sunpy_nn: Earth assumed (none in file)")
    header["HGLT_OBS"] = (earth.lat.to_value(u.deg), "[deg] sunpy_nn: Earth assumed (none in file)")
    return f"observer assumed at the centre of the Earth at {Time(date).isot} (the file gives no observer location)"


class TabularWCS(WCS):
    """
    An `astropy.wcs.WCS` whose ``-TAB`` coordinate tables travel with it: it pickles and copies.

    astropy pickles a WCS as its header alone, so a WCS with tabulated axes (SSTRED's ``HPLN-TAB``, ``WAVE-TAB``,
    ``UTC--TAB``) cannot be unpickled: the table is gone and astropy fails with ``KeyError: "Extension
    ('WCS-TAB', 1) not found"``. This subclass keeps the table extensions it was built from (as FITS bytes) and
    rebuilds itself from the current header plus those tables, so cubes from `read_crisp` can go to dask
    worker processes, `multiprocessing` or a file. It is an astropy WCS in every other respect.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`, optional
        The header with the ``-TAB`` axes, as for `astropy.wcs.WCS`.
    *args
        Passed to `astropy.wcs.WCS` (e.g. ``fobj``, the `~astropy.io.fits.HDUList` holding the tables).
    tables : bytes, optional
        The binary-table extensions the tabulated axes read (``WCS-TAB``), as the bytes of a FITS file (a primary
        HDU followed by the tables): kept and restored on unpickling. `None`: none kept, a plain astropy WCS.
    **kwargs
        Passed to `astropy.wcs.WCS` (e.g. ``fobj=hdulist``, ``preserve_units=True``).

    Examples
    --------
    >>> import pickle
    >>> import numpy as np, astropy.units as u, tempfile, pathlib
    >>> from sunpy_nn.io import TabularWCS, read_crisp, write_crisp, write_lp
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_lp(np.ones((1, 1, 3, 8, 8), np.float32), tmp / "c.fcube")
    >>> cube = read_crisp(tmp / "c.fcube", wavelengths=[630.1, 630.15, 630.2] * u.nm, pixel_scale=0.059,
    ...                   times=[0.0] * u.s, date_ref="2020-06-01T08:00:00")
    >>> back = read_crisp(write_crisp(cube, tmp / "c.fits"))  # tabulated axes, as SSTRED writes them
    >>> isinstance(back.wcs, TabularWCS), pickle.loads(pickle.dumps(back.wcs)).wcs.ctype[2]
    (True, 'WAVE-TAB')
    """

    # Pickles name the class by its module: the path it had before the split, so that pickles written before and
    # after it are the same bytes and load in either version.
    __module__ = "sunpy_nn.io.crisp"

    def __init__(self, header=None, *args, tables: bytes | None = None, **kwargs):
        super().__init__(header, *args, **kwargs)
        if tables is not None:
            self._sunpy_nn_tables = tables
            # The header it was built from, exactly (astropy's own header has fewer digits, e.g. DSUN_OBS to 1 mm,
            # so observers would differ after a round trip), used while the WCS is unchanged.
            self._sunpy_nn_header = header.tostring() if isinstance(header, fits.Header) else None
            self._sunpy_nn_state = self._state()

    def _state(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.to_header(relax=True).tostring()

    def __reduce__(self):
        unpickle, (cls, dct, fits_data) = super().__reduce__()
        tables = self.__dict__.get("_sunpy_nn_tables")
        if tables:
            with fits.HDUList.fromstring(fits_data) as own, fits.HDUList.fromstring(tables) as extra:
                primary = own[0].copy()
                original = self.__dict__.get("_sunpy_nn_header")
                if original and self.__dict__.get("_sunpy_nn_state") == self._state():
                    header = fits.Header.fromstring(original)
                    for key in [k for k in header if re.fullmatch(r"SIMPLE|BITPIX|NAXIS\d*|EXTEND|GCOUNT|PCOUNT", k)]:
                        del header[key]  # the data's layout (astropy restores the axis lengths itself)
                    primary = fits.PrimaryHDU(header=header)
                hdus = fits.HDUList([primary, *(h.copy() for h in extra[1:])])
                buffer = io.BytesIO()
                hdus.writeto(buffer)
            fits_data = buffer.getvalue()
        return _unpickle_quietly, (unpickle, cls, dct, fits_data)


def _unpickle_quietly(unpickle, cls, dct, fits_data):
    """astropy's WCS unpickling without its routine FITSFixedWarnings (date fix-ups) on every worker."""
    from astropy.wcs import FITSFixedWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FITSFixedWarning)
        return unpickle(cls, dct, fits_data)


_unpickle_quietly.__module__ = "sunpy_nn.io.crisp"  # named in every pickle of a TabularWCS, as TabularWCS is


def _table_bytes(hdul: fits.HDUList) -> bytes | None:
    """The binary-table extensions of a file (the ``-TAB`` tables), as the bytes of a small FITS file."""
    tables = [h.copy() for h in hdul if isinstance(h, fits.BinTableHDU) and not isinstance(h, fits.CompImageHDU)]
    if not tables:
        return None
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), *tables]).writeto(buffer)
    return buffer.getvalue()


def _wcs(header: fits.Header, hdul: fits.HDUList) -> WCS:
    """The WCS of a header, tabulated axes read from ``hdul``; astropy's routine date fix-ups are not news."""
    from astropy.wcs import FITSFixedWarning

    tab = any(str(v).endswith("-TAB") for k, v in header.items() if k.startswith("CTYPE"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FITSFixedWarning)
        # preserve_units: the file's units (nm, Angstrom, arcsec) rather than astropy's SI conversion (m, deg)
        if not tab:
            return WCS(header, fobj=hdul, preserve_units=True)
        return TabularWCS(header, fobj=hdul, tables=_table_bytes(hdul), preserve_units=True)


# ------------------------------------------------------------------------------ a cube's world, for the writers
def _isot(t: Time) -> str:
    """A UTC ISO date to the nanosecond (astropy's default of milliseconds would move the time)."""
    return Time(t.utc, precision=9).isot


def _fits_wcs(cube: NDCube) -> WCS | None:
    """The astropy FITS WCS under a cube's (possibly sliced) WCS, or None for other WCS kinds (e.g. gwcs)."""
    llw = cube.wcs.low_level_wcs
    while not isinstance(llw, WCS) and hasattr(llw, "_wcs"):
        llw = llw._wcs
    return llw if isinstance(llw, WCS) else None


def _dropped_coords(cube: NDCube) -> dict:
    """World coordinates of axes sliced away (e.g. the time of ``cube[3]``), by physical type."""
    try:
        dropped = cube.wcs.low_level_wcs.dropped_world_dimensions
    except AttributeError:
        return {}
    if not dropped or not dropped.get("value"):
        return {}
    internal = getattr(cube.global_coords, "_internal_coords", {}) or {}
    return {k: v for k, v in dict(cube.global_coords).items() if k not in internal}


def _user_coords(cube: NDCube) -> list[str]:
    """Names of the extra and global coordinates a user added (a SOLARNET file holds only the WCS)."""
    names = []
    if cube.extra_coords is not None and len(cube.extra_coords.keys()):
        names += [f"extra_coords {list(cube.extra_coords.keys())}"]
    internal = getattr(cube.global_coords, "_internal_coords", {}) or {}
    if internal:
        names += [f"global_coords {list(internal)}"]
    return names


def _is_spectral(w) -> bool:
    return isinstance(w, u.Quantity) and w.unit.physical_type in _SPECTRAL_PHYSICAL


def _date_from_header_like(source, keys=("DATE-BEG", "DATE-OBS", "DATE-AVG")) -> Time | None:
    """The first of ``keys`` in a meta mapping (any key case), in the scale of its TIMESYS."""
    if not source:
        return None
    upper = {str(k).upper(): v for k, v in dict(source).items()}
    scale = str(upper.get("TIMESYS") or "UTC").strip().lower()
    date = next((upper[k] for k in keys if upper.get(k)), None)
    if date is None:
        return None
    return Time(date, scale=scale if scale in Time.SCALES else "utc")


def _world(cube: NDCube, axes, shape5) -> dict:
    """
    Everything a SOLARNET header needs to hold a cube's world coordinates, read from its WCS.

    Corner coordinates of every scan and tuning (helioprojective, spectral in the cube's own type and unit, time
    in its own scale), the Stokes parameter of the first plane, and header cards for the observer, the solar
    radius, the ground-based observatory, the spectral reference frame and the frame's observation time.
    Coordinates of sliced-away axes (a single scan, tuning or Stokes parameter cut from a larger cube) are
    taken from the sliced WCS; a coordinate that cannot be stored is refused with a `ValueError`.
    """
    from sunpy.coordinates import Helioprojective

    user = _user_coords(cube)
    if user:
        raise ValueError(
            f"write_crisp cannot store this cube's {' and '.join(user)}: a SOLARNET file holds the WCS only. Write "
            "a cube without them to keep the rest, e.g. NDCube(cube.data, wcs=cube.wcs, uncertainty=cube.uncertainty, "
            "mask=cube.mask, unit=cube.unit, meta=cube.meta)."
        )
    nt, ns, nw, ny, nx = shape5
    npix = cube.wcs.low_level_wcs.pixel_n_dim
    it, iw, jy, jx = np.meshgrid(np.arange(nt), np.arange(nw), [0, ny - 1], [0, nx - 1], indexing="ij")
    pix = [np.zeros(it.shape) for _ in range(npix)]
    for a, v in ((axes.time, it), (axes.wavelength, iw), (axes.y, jy), (axes.x, jx)):
        if a is not None:
            pix[npix - 1 - a] = v.astype(float)
    world = cube.wcs.pixel_to_world(*pix)
    world = list(world) if isinstance(world, list | tuple) else [world]
    dropped = _dropped_coords(cube)
    sky = spectral = time = None
    for w in world:
        if hasattr(w, "frame") or hasattr(w, "spherical"):
            sky = w
        elif isinstance(w, Time):
            time = w
        elif _is_spectral(w):
            spectral = w
    if sky is None:
        raise ValueError("write_crisp needs a cube with helioprojective (celestial) spatial axes")
    frame = sky.frame if hasattr(sky, "frame") else sky
    if not isinstance(frame, Helioprojective):
        raise ValueError(
            f"write_crisp writes helioprojective coordinates (HPLN/HPLT) and this cube's spatial axes are "
            f"{type(frame).__name__}; transform or reproject it to helioprojective first"
        )
    fwcs = _fits_wcs(cube)
    cards: dict = _observer_cards(frame.observer)
    if getattr(frame, "rsun", None) is not None:
        cards["RSUN_REF"] = (frame.rsun.to_value(u.m), "[m] solar radius of the coordinate frame")
    if fwcs is not None:
        obsgeo = np.asarray(fwcs.wcs.obsgeo[:3], dtype=float)
        if np.all(np.isfinite(obsgeo)) and np.any(obsgeo != 0):
            cards.update({k: (float(v), "[m] observatory, ITRS") for k, v in zip(_OBSGEO_KEYS, obsgeo, strict=True)})
    # The frame's observation time, in the keyword sunpy takes it from (DATE-AVG before DATE-OBS).
    if getattr(frame, "obstime", None) is not None:
        key = "DATE-AVG" if fwcs is not None and fwcs.wcs.dateavg else "DATE-OBS"
        cards[key] = (_isot(frame.obstime), "[UTC] time of the coordinate frame")

    spec_type = None
    if spectral is None:
        spectral = next((v for v in dropped.values() if _is_spectral(v)), None)
    if spectral is None:
        raise ValueError(
            "A CRISP cube file (SSTRED's FITS layout, or an LP cube's coordinate companion) needs the wavelength of "
            "every tuning, and this cube's WCS gives none: add a wavelength axis to the WCS (a length-1 axis for one "
            "tuning)"
        )
    if fwcs is not None and fwcs.wcs.spec >= 0:
        spec_type = fwcs.wcs.ctype[fwcs.wcs.spec][:4].rstrip("-")
        for key in ("specsys", "ssysobs", "ssyssrc"):
            if getattr(fwcs.wcs, key):
                cards[key.upper()] = getattr(fwcs.wcs, key)
        for key in ("restfrq", "restwav", "velosys", "zsource", "velangl"):
            value = float(getattr(fwcs.wcs, key))
            if np.isfinite(value) and value != 0:
                cards[key.upper()] = value
    if spec_type is None:  # a non-FITS WCS: its physical type says what the values are
        spec_type = {"length": "WAVE", "frequency": "FREQ", "wavenumber": "WAVN", "energy": "ENER"}[
            spectral.unit.physical_type
        ]
        if spec_type == "WAVE" and "obs.atmos" in " ".join(cube.wcs.world_axis_physical_types):
            spec_type = "AWAV"
    spectral = u.Quantity(spectral)
    spectral = u.Quantity(np.broadcast_to(spectral.value, it.shape)[:, :, 0, 0], spectral.unit)

    if time is None:
        time = next((v for v in dropped.values() if isinstance(v, Time)), None)
    if time is None and fwcs is not None:
        scale = (fwcs.wcs.timesys or "UTC").strip().lower()
        for date, mjd in (("datebeg", "mjdbeg"), ("dateobs", "mjdobs"), ("dateavg", "mjdavg")):
            if getattr(fwcs.wcs, date):
                time = Time(getattr(fwcs.wcs, date), scale=scale if scale in Time.SCALES else "utc")
                break
            if np.isfinite(getattr(fwcs.wcs, mjd)):
                time = Time(getattr(fwcs.wcs, mjd), format="mjd", scale=scale if scale in Time.SCALES else "utc")
                break
    if time is None:
        time = _date_from_header_like(cube.meta)
    if time is None:
        raise ValueError(
            "write_crisp needs the time of the scans: this cube has no time axis, and neither its WCS (DATE-BEG, "
            "DATE-OBS, DATE-AVG or MJD-OBS) nor its meta (DATE-BEG/DATE-OBS) gives one"
        )
    time = Time(np.broadcast_to(time.jd1, it.shape), np.broadcast_to(time.jd2, it.shape), format="jd", scale=time.scale)

    stokes_first = _stokes_first(cube, axes, ns, dropped)
    return {
        "lon": frame.spherical.lon.wrap_at(180 * u.deg).to_value(u.arcsec).reshape(it.shape),
        "lat": frame.spherical.lat.to_value(u.arcsec).reshape(it.shape),
        "spectral": spectral,
        "spec_type": spec_type,
        "time": time[:, :, 0, 0],
        "stokes_first": stokes_first,
        "cards": cards,
    }


def _coordinate_header(cube: NDCube, axes, shape5) -> tuple[dict, fits.BinTableHDU, Time]:
    """The WCS cards and WCS-TAB table that hold a cube's world coordinates, and the times of the scans."""
    w = _world(cube, axes, shape5)
    time = w["time"]
    first = time.ravel()[0]
    date_ref = Time(first.strftime("%Y-%m-%dT00:00:00"), scale=first.scale)  # midnight, exact in ISO, own scale
    ny, nx = shape5[3], shape5[4]
    cards, tab = _tabulated_wcs_hdus(
        nx,
        ny,
        w["lon"],
        w["lat"],
        w["spectral"],
        (time - date_ref).to_value(u.s),
        date_ref,
        w["stokes_first"],
        w["spec_type"],
    )
    cards = {**w["cards"], **cards}
    return cards, tab, time


def _observer_cards(observer) -> dict:
    """DSUN_OBS/HGLN_OBS/HGLT_OBS of a frame's observer, so a written file keeps it."""
    if observer is None or isinstance(observer, str):
        return {}
    from sunpy.coordinates import HeliographicStonyhurst

    hgs = observer.transform_to(HeliographicStonyhurst(obstime=observer.obstime))
    return {
        "DSUN_OBS": float(np.ravel(hgs.radius.to_value(u.m))[0]),
        "HGLN_OBS": float(np.ravel(hgs.lon.to_value(u.deg))[0]),
        "HGLT_OBS": float(np.ravel(hgs.lat.to_value(u.deg))[0]),
    }


def _stokes_first(cube: NDCube, axes, ns: int, dropped: dict | None = None) -> int:
    """FITS Stokes code of the first Stokes plane: from the Stokes axis, a sliced-away Stokes axis, or I."""
    if axes.stokes is None:
        stokes = next((v for v in (dropped or {}).values() if type(v).__name__ == "StokesCoord"), None)
        if stokes is None:
            return 1
        symbol = str(np.ravel(stokes.symbol)[0])
        if symbol not in STOKES_CODES:
            raise ValueError(f"Stokes {symbol} is not one of I, Q, U, V; a SOLARNET cube cannot hold it")
        return STOKES_CODES[symbol]
    labels = stokes_labels(cube, axes)
    first = STOKES_CODES.get(labels[0])
    if first is None or labels != [STOKES_SYMBOLS.get(first + i) for i in range(ns)]:
        raise ValueError(f"Stokes {labels} are not consecutive in I, Q, U, V order; a SOLARNET cube cannot hold them")
    return first
