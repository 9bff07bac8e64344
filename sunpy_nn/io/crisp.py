"""
CRISP cubes to and from `ndcube.NDCube`: SOLARNET FITS cubes (SSTRED) and legacy CRISPEX LP cubes.

SSTRED writes one 5-D primary HDU in numpy order ``(scan, stokes, tuning, y, x)`` whose helioprojective,
wavelength and time coordinates are tabulated (``HPLN-TAB``, ``HPLT-TAB``, ``WAVE-TAB``, ``UTC--TAB``) in a
``WCS-TAB`` binary table that holds the four corners of the field of view for every tuning and scan. astropy's
``WCS(header, fobj=hdulist)`` evaluates that table, so the cube keeps its drifting pointing and its
tuning-dependent time.

CRISPEX "LP" cubes (``*.fcube``/``*.icube``) are a 512-byte ASCII header followed by the raw frames in Fortran
order ``(nx, ny, nt * ns * nw)``; frame ``iw + is * nw + it * nw * ns`` is wavelength ``iw``, Stokes ``is`` of
scan ``it``. They carry no coordinates: the number of wavelengths comes from the companion ``*_sp.fcube`` header,
and wavelengths, times and pixel scale come from keyword arguments or a companion WCS file written by
`write_crisp`.
"""

from __future__ import annotations

import io
import logging
import lzma
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from astropy.time import Time
from astropy.wcs import WCS
from ndcube import NDCube

from sunpy_nn.cube import STOKES_CODES, STOKES_SYMBOLS, find_axes, stokes_labels
from sunpy_nn.header import PROVENANCE_KEY, append_history, store_provenance
from sunpy_nn.utils import SunpyNNUserWarning

__all__ = ["LPHeader", "TabularWCS", "read_crisp", "read_lp_header", "write_crisp", "write_lp"]

log = logging.getLogger(__name__)

_LP_HEADER_BYTES = 512
_LP_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8"}
_LP_TYPE_NAMES = {1: "byte", 2: "integer", 3: "long", 4: "float", 5: "double"}
_UNCERTAINTY_NAMES = ("UNCERT", "UNCERTAINTY", "ERROR", "ERRORS", "STDDEV")
_OBSERVER_KEYS = (("DSUN_OBS", "HGLN_OBS", "HGLT_OBS"), ("DSUN_OBS", "CRLN_OBS", "CRLT_OBS"))
_OBSGEO_KEYS = ("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z")
_WCS_COLUMNS = ("HPLN", "HPLT", "WAVE", "TIME")
_SPECTRAL_PHYSICAL = ("length", "frequency", "wavenumber", "energy")
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".gz", ".fz", ".bz2", ".zip", ".xz", ".z")
# Whole-file compression astropy reads through (its own detection); an LP cube is never compressed.
_DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)
_COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"PK\x03\x04": "zip",
    b"\xfd7zXZ": "lzma",
    b"\x1f\x9d": "lzw",
}
# Keywords that describe the data array or its WCS: never copied from a cube's meta into a written header.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|BSCALE|BZERO|BLANK|BUNIT|PCOUNT|GCOUNT|XTENSION|CHECKSUM|DATASUM|WCSAXES|"
    r"DATEREF|MJDREF|CTYPE\d+|CUNIT\d+|CRPIX\d+|CRVAL\d+|CDELT\d+|CROTA\d+|CNAME\d+|CSYER\d+|CRDER\d+|"
    r"PC\d+_\d+|CD\d+_\d+|PS\d+_\d+|PV\d+_\d+|LONPOLE|LATPOLE|SPECSYS|EXTNAME|COMMENT|HISTORY|)$"
)
# Keywords of world coordinates: written from the cube's WCS (the truth after slicing or processing), never from its
# meta, which may describe the cube it came from (a stale DATE-OBS, observer or TIMESYS would be a wrong coordinate).
_COORDINATE_KEYS = re.compile(
    r"^(DATE-(OBS|BEG|END|AVG)|MJD-(OBS|BEG|END|AVG)|MJDREF[IF]?|JDREF[IF]?|TIMESYS|TREFPOS|TREFDIR|PLEPHEM|"
    r"TIMEUNIT|TIMEOFFS|TIMEPIXR|TIMEDEL|TSTART|TSTOP|XPOSURE_TAB|OBSGEO-[XYZBLH]|(DSUN|HGLN|HGLT|CRLN|CRLT)_OBS|"
    r"RSUN_REF|SSYSOBS|SSYSSRC|VELOSYS|RESTFRQ|RESTFREQ|RESTWAV|ZSOURCE|VELANGL|VELREF|WCSNAME|RADESYS|EQUINOX|"
    r"SOLARNET|OBS_HDU|SUNPY_NN_NOTE)$"
)


# ---------------------------------------------------------------------------------------------------- LP header
@dataclass(frozen=True)
class LPHeader:
    """
    The 512-byte ASCII header of a CRISPEX LP cube.

    ``nx, ny`` are the frame size and ``nt`` the number of frames (``n_scans * ns * nw`` for an image cube; for
    the ``_sp`` spectral cube ``nx`` is the number of wavelengths and ``ny`` the number of scans).
    """

    datatype: int
    nx: int
    ny: int
    nt: int
    endian: str = "l"
    stokes: tuple[str, ...] | None = None
    dims: int = 3

    @property
    def ns(self) -> int:
        """Number of Stokes parameters (1 when the header names none)."""
        return len(self.stokes) if self.stokes else 1

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of the frames, with the file's byte order."""
        return np.dtype(("<" if self.endian == "l" else ">") + _LP_DTYPES[self.datatype])

    @property
    def data_bytes(self) -> int:
        """Size of the data that follows the header."""
        return self.nx * self.ny * self.nt * self.dtype.itemsize

    def to_bytes(self) -> bytes:
        """The header as CRISPEX writes it: ASCII, NUL-padded to 512 bytes."""
        text = (
            f"datatype={self.datatype} ({_LP_TYPE_NAMES[self.datatype]}), dims={self.dims}, "
            f"nx={self.nx}, ny={self.ny}, nt={self.nt}, endian={self.endian}"
        )
        if self.stokes:
            text = f"stokes=[{','.join(self.stokes)}], ns={self.ns} : " + text
        return text.encode("ascii").ljust(_LP_HEADER_BYTES, b"\0")

    @classmethod
    def parse(cls, raw: bytes, source: str = "LP cube") -> LPHeader:
        """Parse the 512 header bytes; a `ValueError` names what is missing or wrong."""
        if len(raw) < _LP_HEADER_BYTES:
            raise ValueError(f"{source} is {len(raw)} bytes long, shorter than the 512-byte LP cube header")
        try:
            text = raw[:_LP_HEADER_BYTES].decode("ascii").replace("\0", " ").strip()
        except UnicodeDecodeError:
            raise ValueError(f"{source} does not start with an ASCII LP cube header (is it an LP cube?)") from None
        fields = dict(re.findall(r"(\w+)\s*=\s*([^,:\s]+)", text))
        missing = [k for k in ("datatype", "nx", "ny", "nt") if k not in fields]
        if missing:
            raise ValueError(
                f"{source} has no LP cube header: keys {missing} are missing from {text[:120]!r}. "
                "An LP header reads like 'datatype=4 (float), dims=3, nx=.., ny=.., nt=.., endian=l'."
            )
        try:
            datatype, nx, ny, nt = (int(fields[k]) for k in ("datatype", "nx", "ny", "nt"))
            dims = int(fields.get("dims", 3))
        except ValueError:
            raise ValueError(f"{source}: non-integer sizes in the LP header {text[:120]!r}") from None
        if datatype not in _LP_DTYPES:
            raise ValueError(f"{source}: unknown LP datatype {datatype} (known: {sorted(_LP_DTYPES)})")
        if min(nx, ny, nt) < 1:
            raise ValueError(f"{source}: LP header sizes must be positive, got nx={nx}, ny={ny}, nt={nt}")
        endian = fields.get("endian", "l")[:1].lower()
        if endian not in ("l", "b"):
            raise ValueError(f"{source}: endian must be 'l' or 'b' in the LP header, got {fields['endian']!r}")
        stokes = None
        match = re.search(r"stokes\s*=\s*\[([^\]]*)\]", text)
        if match:
            stokes = tuple(s.strip().upper() for s in match.group(1).split(",") if s.strip())
            if not stokes or any(s not in STOKES_CODES for s in stokes):
                raise ValueError(f"{source}: cannot read the Stokes list {match.group(1)!r} in the LP header")
            if "ns" in fields and int(fields["ns"]) != len(stokes):
                raise ValueError(f"{source}: LP header says ns={fields['ns']} but lists Stokes {list(stokes)}")
        return cls(datatype, nx, ny, nt, endian, stokes, dims)


def read_lp_header(path: str | Path) -> LPHeader:
    """
    Read the header of a CRISPEX LP cube.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sunpy_nn.io import write_lp, read_lp_header
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.fcube"
    >>> _ = write_lp(np.zeros((3, 4, 5, 8, 6), np.float32), path)   # (scan, stokes, wavelength, y, x)
    >>> read_lp_header(path)
    LPHeader(datatype=4, nx=6, ny=8, nt=60, endian='l', stokes=('I', 'Q', 'U', 'V'), dims=3)
    """
    path = Path(path)
    with open(path, "rb") as f:
        return LPHeader.parse(f.read(_LP_HEADER_BYTES), str(path))


def _sp_path(path: Path) -> Path:
    return path.with_name(path.stem + "_sp" + path.suffix)


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


def _lp_wcs_hdus(
    shape5: tuple[int, ...],
    stokes_first: int,
    wavelengths,
    times,
    pixel_scale,
    center,
    date_ref,
) -> tuple[dict, fits.BinTableHDU]:
    """Tabulated WCS for an LP cube from wavelengths, times and a pixel scale given as keywords."""
    nt, _, nw, ny, nx = shape5
    missing = [
        n for n, v in (("wavelengths", wavelengths), ("times", times), ("pixel_scale", pixel_scale)) if v is None
    ]
    if missing:
        raise ValueError(
            f"An LP cube stores no coordinates: pass {', '.join(f'{m}=' for m in missing)} to read_crisp "
            "(wavelengths: Quantity of length n_wavelengths; times: astropy Time, or seconds with date_ref=, of "
            "length n_scans or shape (n_scans, n_wavelengths); pixel_scale: arcsec per pixel), or keep the "
            "companion '<cube>.wcs.fits' that write_crisp/write_lp writes beside the cube."
        )
    if not isinstance(wavelengths, u.Quantity) or wavelengths.unit.physical_type not in _SPECTRAL_PHYSICAL:
        raise ValueError(
            f"wavelengths must be a Quantity with a spectral unit, e.g. [630.15, 630.25] * u.nm, not {wavelengths!r} "
            "(plain numbers could be nm or Angstrom)"
        )
    wave = wavelengths.to_value(u.nm, equivalencies=u.spectral()).astype(float)
    if wave.shape != (nw,):
        raise ValueError(f"wavelengths has shape {wave.shape}, but the cube has {nw} wavelengths")
    time_s, ref = _as_seconds(times, None if date_ref is None else Time(date_ref), "times")
    if time_s.shape == (nt,):
        time_s = np.repeat(time_s[:, None], nw, axis=1)
    if time_s.shape != (nt, nw):
        raise ValueError(f"times has shape {time_s.shape}; the cube needs ({nt},) or ({nt}, {nw}) (scan, wavelength)")
    scale = u.Quantity(pixel_scale, u.arcsec).to_value(u.arcsec)
    cx, cy = (0.0, 0.0) if center is None else u.Quantity(center, u.arcsec).to_value(u.arcsec)
    xs = cx + scale * (np.array([0, nx - 1]) - (nx - 1) / 2)
    ys = cy + scale * (np.array([0, ny - 1]) - (ny - 1) / 2)
    lon = np.broadcast_to(xs[None, :], (nt, nw, 2, 2)).copy()
    lat = np.broadcast_to(ys[:, None], (nt, nw, 2, 2)).copy()
    return _tabulated_wcs_hdus(nx, ny, lon, lat, np.broadcast_to(wave, (nt, nw)), time_s, ref, stokes_first)


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
    """

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


# ------------------------------------------------------------------------------------------------ lazy access
class _FitsSection:
    """Picklable lazy view of one FITS image HDU; opens the file for every read (safe across processes)."""

    def __init__(self, path: Path, index: int, shape: tuple[int, ...], dtype: np.dtype):
        self.path, self.index, self.shape, self.dtype, self.ndim = path, index, shape, np.dtype(dtype), len(shape)

    def __getitem__(self, key):
        # memmap=False: astropy reads just the section's bytes, and integer data with BLANK fail to scale on a
        # memory map (IndexError in astropy 8); tile-compressed HDUs decompress only the tiles needed.
        with fits.open(self.path, memmap=False) as hdul:
            return np.asarray(hdul[self.index].section[key], dtype=self.dtype)


def _dask_frames(section):
    """A dask array over a FITS section (or an in-memory array), one chunk per frame."""
    import dask.array as da

    chunks = (1,) * (section.ndim - 2) + tuple(section.shape[-2:])
    if isinstance(section, np.ndarray):
        return da.from_array(section, chunks=chunks)
    return da.from_array(section, chunks=chunks, asarray=False, meta=np.empty((0,) * section.ndim, section.dtype))


def _check_lazy(lazy) -> None:
    if lazy not in ("auto", "memmap", "dask", True, False):
        raise ValueError(f"lazy must be 'auto', 'memmap', 'dask', True or False, not {lazy!r}")


def _have_dask() -> bool:
    try:
        import dask.array  # noqa: F401
    except ImportError:
        return False
    return True


def _stream_compression(hdul: fits.HDUList) -> str | None:
    """'gzip', 'bzip2', 'zip', 'lzma' or 'lzw' when astropy reads the file through a decompressor, else None."""
    info = hdul[0].fileinfo()  # (HDUList.fileinfo would re-serialise headers and warn about their cards)
    return None if info is None else getattr(info["file"], "compression", None)


def _fits_array(path: Path, hdul: fits.HDUList, index: int, lazy):
    """
    Data of one HDU with BSCALE/BZERO/BLANK applied, as astropy reads it: a memory map, a dask array of frames,
    or an in-memory array.

    A whole-file compressed FITS (``.fits.gz`` and the like) can be neither memory-mapped nor read frame by frame
    (every frame would decompress the file from its start): astropy decompresses it into memory once, and
    ``lazy="dask"`` wraps that array. A tile-compressed HDU (RICE, GZIP, HCOMPRESS ``CompImageHDU``) cannot be
    memory-mapped, but its frames decompress on their own, so ``"auto"`` gives a dask array of frames.
    """
    hdu = hdul[index]
    header = hdu.header
    bitpix = header["BITPIX"]
    scaled = header.get("BSCALE", 1) != 1 or header.get("BZERO", 0) != 0
    # Floating-point values as astropy gives them: 8- and 16-bit integers (raw counts, or scaled) exactly in float32,
    # 32- and 64-bit integers in float64 (float32 would round them).
    dtype = np.dtype(np.float32 if bitpix in (8, 16, -32) else np.float64)
    shape = tuple(header[f"NAXIS{i}"] for i in range(header["NAXIS"], 0, -1))
    want = "dask" if lazy is True else lazy
    if want == "dask" and not _have_dask():
        raise ImportError("lazy='dask' needs dask: pip install 'sunpy-nn[dask]'")
    stream = _stream_compression(hdul)
    if stream is not None:
        if want in ("memmap", "auto", "dask"):
            (log.warning if want == "memmap" else log.info)(
                "%s is %s-compressed: it cannot be memory-mapped or read frame by frame, so astropy decompresses "
                "HDU %d (%.0f MB) into memory%s; decompress the file first to keep large cubes out of memory",
                path.name,
                stream,
                index,
                np.prod(shape) * dtype.itemsize / 2**20,
                " (a dask array over it)" if want == "dask" else "",
            )
        try:
            data = np.asarray(hdu.data, dtype=dtype)
        except _DECOMPRESSION_ERRORS as exc:
            raise _corrupt_compressed(path, stream, exc) from exc
        return _dask_frames(data) if want == "dask" else data
    section = _FitsSection(path, index, shape, dtype)
    tiled = isinstance(hdu, fits.CompImageHDU)
    direct = bitpix < 0 and not scaled and not tiled  # float data on disk are the values: a memory map
    if want == "dask" or (want == "auto" and not direct and _have_dask()):
        if want == "auto" and tiled:
            log.info("%s: HDU %d is tile-compressed; frames are decompressed as they are used (dask)", path.name, index)
        return _dask_frames(section)
    if want in ("memmap", "auto") and direct:
        return hdu.data  # astropy's memory map of the file; nothing is read until used
    if want == "memmap":
        if not tiled:
            what = ("scaled integers" if scaled else "integers") if bitpix > 0 else "scaled floating-point values"
            raise ValueError(
                f"{path} stores {what} (BITPIX={bitpix}, BSCALE={header.get('BSCALE', 1)}, "
                f"BZERO={header.get('BZERO', 0)}): they cannot be memory-mapped as floating-point physical values; "
                "use lazy='dask' or lazy=False"
            )
        log.warning(
            "%s: HDU %d is tile-compressed and cannot be memory-mapped; it is decompressed into memory "
            "(use lazy='dask' to decompress frame by frame)",
            path.name,
            index,
        )
    return section[...]


def _corrupt_compressed(path: Path, stream: str | None, exc: Exception) -> ValueError:
    return ValueError(
        f"{path} could not be decompressed ({stream or 'compressed'}: {type(exc).__name__}: {exc}): the file is "
        "truncated or corrupt. Copy or download the file again."
    )


def _check_fits_size(path: Path, hdul: fits.HDUList, astropy_truncated: bool) -> None:
    """
    A clear error for a truncated FITS file (astropy only warns and fails later with a cryptic message).

    astropy's own check is used: it warns "File may have been truncated" when a data area ends past the end of the
    file. Only a file that lacks just the padding of its last block is still read (all its data are there).
    A whole-file compressed file has no size to compare with: astropy takes the early end of a truncated stream for
    the end of the file (dropping the HDUs after it), so the stream is read to its end-of-stream marker, which
    the decompressor checks, instead.
    """
    stream = _stream_compression(hdul)
    if stream is not None:
        _check_stream_end(path, hdul, stream)
        return
    if not astropy_truncated:
        return
    # Bytes the headers describe, unpadded; compressed image HDUs counted as the tables they are on disk.
    with fits.open(path, memmap=False, lazy_load_hdus=False, disable_image_compression=True) as raw:
        end = max(h.fileinfo()["datLoc"] + h.size for h in raw if h.fileinfo() is not None)
    size = path.stat().st_size
    if size < end:
        raise ValueError(
            f"{path} is truncated: its headers describe {end} bytes but the file has {size}. "
            "Copy or download the file again."
        )
    log.info("%s lacks the padding of its last FITS block; all its data are present", path.name)


def _check_stream_end(path: Path, hdul: fits.HDUList, stream: str) -> None:
    """Read a compressed stream from where astropy stopped (after the last HDU) to its end-of-stream marker."""
    fobj = getattr(hdul[0].fileinfo()["file"], "_file", None)  # the decompressor astropy reads through
    try:
        if hasattr(fobj, "read") and not getattr(fobj, "closed", False):
            while fobj.read(1 << 24):
                pass
            return
        import bz2
        import gzip

        openers = {"gzip": gzip.open, "bzip2": bz2.open, "lzma": lzma.open}
        if stream not in openers:
            log.debug("%s: cannot check the end of its %s stream", path.name, stream)
            return
        with openers[stream](path, "rb") as f:
            while f.read(1 << 24):
                pass
    except _DECOMPRESSION_ERRORS as exc:
        raise _corrupt_compressed(path, stream, exc) from exc


# ------------------------------------------------------------------------------------------------------ read
def read_crisp(
    path: str | Path,
    *,
    lazy: bool | str = "auto",
    wavelengths=None,
    times=None,
    pixel_scale=None,
    center=None,
    date_ref=None,
    unit=None,
    n_wavelengths: int | None = None,
    stokes: tuple[str, ...] | None = None,
) -> NDCube:
    """
    Read a CRISP cube (SOLARNET FITS from SSTRED, or a CRISPEX LP cube) into an `~ndcube.NDCube`.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A FITS file (``.fits``, ``.fits.gz``, ``.fz``...), or an LP cube (``*.fcube``/``*.icube``; its
        ``*_sp.fcube``/``*_sp.icube`` companion must sit beside it unless ``n_wavelengths`` is given).
    lazy : {"auto", "memmap", "dask", True, False}
        ``"auto"`` (default) memory-maps float data and LP cubes and wraps integer FITS data (e.g. BITPIX=16
        with BSCALE/BZERO) and tile-compressed HDUs in a dask array that scales or decompresses frame by frame,
        so a 20 GB cube does not enter memory on open. ``"dask"`` (or `True`) always returns a dask array with
        one chunk per frame; `False` reads everything into memory. A whole-file compressed FITS (``.fits.gz``)
        cannot be memory-mapped or read frame by frame: astropy decompresses it into memory in every mode (the
        log says so; ``"dask"`` wraps the array). Whatever the mode, the values are those astropy reads.
    wavelengths, times, pixel_scale, center, date_ref
        LP cubes only, which store no coordinates: wavelengths (`~astropy.units.Quantity`, one per tuning), times
        of the scans (`~astropy.time.Time`, or seconds since ``date_ref``; shape ``(n_scans,)`` or
        ``(n_scans, n_wavelengths)``), pixel scale (arcsec per pixel) and the helioprojective centre of the field
        (default ``(0, 0)`` arcsec). When none is given, the companion ``<cube>.wcs.fits`` written by
        `write_lp` is used if present.
    unit : str or `~astropy.units.Unit`, optional
        Data unit; default BUNIT (FITS) or none (LP).
    n_wavelengths : int, optional
        LP cubes only: the number of wavelengths when the ``_sp`` cube is missing.
    stokes : tuple of str, optional
        LP cubes only: Stokes labels when the header names none (default ``("I",)`` for a one-Stokes cube).

    Returns
    -------
    `~ndcube.NDCube`
        Data in numpy order ``(scan, stokes, wavelength, y, x)`` for LP and SSTRED cubes (FITS cubes keep the
        file's order), float32 (float64 for float64 and 32/64-bit integer files), with the WCS from the header
        and ``WCS-TAB`` table (a `TabularWCS`, which pickles, when axes are tabulated; world coordinates in the
        file's units), the unit, the header as ``meta``, the ``UNCERT`` extension (if any) as a
        `~astropy.nddata.StdDevUncertainty` and the ``MASK`` extension (if any) as the mask. When the header gives no
        observer location, the Earth's centre at DATE-AVG/DATE-BEG/DATE-OBS is assumed and
        ``meta["sunpy_nn_note"]`` says so.

    Raises
    ------
    ValueError
        A truncated file (astropy's size check) or a truncated or corrupt compressed file, a header that is not
        an LP or FITS header, sizes that disagree with the ``_sp`` cube, or LP coordinates of the wrong length
        (or wavelengths without a unit).
    FileNotFoundError
        The file, or the ``_sp`` companion of an LP cube, is missing.

    Examples
    --------
    >>> import numpy as np, astropy.units as u, tempfile, pathlib
    >>> from astropy.time import Time
    >>> from sunpy_nn.io import read_crisp, write_lp
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "crisp.fcube"
    >>> _ = write_lp(np.zeros((2, 4, 5, 16, 16), np.float32), path)
    >>> cube = read_crisp(path, wavelengths=np.linspace(854.1, 854.3, 5) * u.nm, pixel_scale=0.059 * u.arcsec,
    ...                   times=Time(["2019-04-16T09:00:00", "2019-04-16T09:00:20"]))
    >>> cube.array_axis_physical_types[:3]
    [('time',), ('phys.polarization.stokes',), ('em.wl',)]
    """
    _check_lazy(lazy)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with open(path, "rb") as f:
        start = f.read(9)
    compressed = any(start.startswith(m) for m in _COMPRESSED_MAGIC)
    if start == b"SIMPLE  =" or compressed or path.suffix.lower() in _FITS_SUFFIXES:
        return _read_solarnet(path, lazy, unit)
    return _read_lp(path, lazy, wavelengths, times, pixel_scale, center, date_ref, unit, n_wavelengths, stokes)


def _open_fits(path: Path) -> tuple[fits.HDUList, bool]:
    """Open a FITS file, headers read; returns it and whether astropy found it truncated (its own size check)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # memmap left to astropy: float data are memory-mapped, scaled or compressed data cannot be
            hdul = fits.open(path, lazy_load_hdus=False)
        except _DECOMPRESSION_ERRORS as exc:
            with open(path, "rb") as f:
                magic = f.read(6)
            stream = next((name for m, name in _COMPRESSED_MAGIC.items() if magic.startswith(m)), None)
            if stream is None:
                raise
            error = _corrupt_compressed(path, stream, exc)
            raise ValueError(f"{error} (If it is not a FITS file: an LP cube must be decompressed first.)") from exc
    truncated = False
    for w in caught:
        if "may have been truncated" in str(w.message):
            truncated = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return hdul, truncated


def _read_solarnet(path: Path, lazy, unit) -> NDCube:
    hdul, truncated = _open_fits(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="File may have been truncated")
            _check_fits_size(path, hdul, truncated)
        index = next((i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS", 0) >= 2), None)
        if index is None:
            raise ValueError(f"{path} has no image HDU with at least two axes")
        # Real headers have cards astropy cannot parse (HMI's R_VALUE = nan): fixed as astropy fixes them (in memory),
        # so that the WCS and meta can be read.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            hdul[index].verify("silentfix+ignore")
        header = hdul[index].header.copy()
        tab_axes = [k for k in header if k.startswith("CTYPE") and str(header[k]).endswith("-TAB")]
        if tab_axes and "WCS-TAB" not in [h.name for h in hdul]:
            raise ValueError(
                f"{path}: the header tabulates {[header[k] for k in tab_axes]} but the file has no WCS-TAB "
                "extension; the file is incomplete (copy it again) or its header was separated from its table"
            )
        note = _observer_at_earth(header)
        try:
            wcs = _wcs(header, hdul)
        except _DECOMPRESSION_ERRORS as exc:  # the table of a truncated compressed file
            raise _corrupt_compressed(path, _stream_compression(hdul), exc) from exc
        data = _fits_array(path, hdul, index, lazy)
        unc = None
        for i, h in enumerate(hdul):
            if i != index and h.is_image and h.name.upper() in _UNCERTAINTY_NAMES and h.header.get("NAXIS", 0):
                if tuple(h.shape) != tuple(data.shape):
                    raise ValueError(f"{path}: extension {h.name} has shape {h.shape}, data {data.shape}")
                unc = StdDevUncertainty(_fits_array(path, hdul, i, lazy))
                break
        mask = None
        for i, h in enumerate(hdul):
            if i != index and h.is_image and h.name.upper() == "MASK" and h.header.get("NAXIS", 0):
                if tuple(h.shape) != tuple(data.shape):
                    raise ValueError(f"{path}: extension MASK has shape {h.shape}, data {data.shape}")
                lazy_mask = "dask" if lazy in (True, "dask", "auto") and _have_dask() else False
                mask = _fits_array(path, hdul, i, lazy_mask) != 0  # written by write_crisp: 1 = masked
                break
    finally:
        hdul.close()  # a memory map stays valid while its array is referenced; dask chunks reopen the file
    bunit = unit if unit is not None else header.get("BUNIT")
    parsed = None
    if bunit:
        try:
            parsed = u.Unit(bunit)
        except ValueError:
            warnings.warn(
                f"{path}: BUNIT {bunit!r} is not a unit astropy knows; the cube has no unit",
                SunpyNNUserWarning,
                stacklevel=3,
            )
    meta = dict(header)
    if note:
        meta["sunpy_nn_note"] = note
    return NDCube(data, wcs=wcs, uncertainty=unc, mask=mask, unit=parsed, meta=meta)


def _companion(path: Path) -> Path:
    return path.with_name(path.name + ".wcs.fits")


def _read_lp(path, lazy, wavelengths, times, pixel_scale, center, date_ref, unit, n_wavelengths, stokes) -> NDCube:
    head = read_lp_header(path)
    size = path.stat().st_size
    if size < _LP_HEADER_BYTES + head.data_bytes:
        raise ValueError(
            f"{path} is truncated: its LP header describes {head.nx}x{head.ny}x{head.nt} {head.dtype.name} values "
            f"({_LP_HEADER_BYTES + head.data_bytes} bytes with the header) but the file has {size} bytes"
        )
    ns = head.ns
    labels = head.stokes or tuple(stokes or ("I",))
    if len(labels) != ns:
        raise ValueError(f"stokes={labels} has {len(labels)} labels but the LP cube has {ns} Stokes parameters")
    sp = _sp_path(path)
    if n_wavelengths is None:
        if not sp.exists():
            raise FileNotFoundError(
                f"The spectral companion {sp.name} of {path.name} is missing: it gives the number of wavelengths. "
                "Put it beside the cube, or pass n_wavelengths= to read_crisp."
            )
        sp_head = read_lp_header(sp)
        n_wavelengths, n_scans = sp_head.nx, sp_head.ny
        if n_wavelengths * n_scans * ns != head.nt:
            raise ValueError(
                f"{sp.name} says {n_wavelengths} wavelengths x {n_scans} scans, which with {ns} Stokes is "
                f"{n_wavelengths * n_scans * ns} frames, but {path.name} has {head.nt}: the files do not belong "
                "together"
            )
    if head.nt % (ns * n_wavelengths):
        raise ValueError(
            f"{path.name} has {head.nt} frames, not a multiple of {ns} Stokes x {n_wavelengths} wavelengths"
        )
    n_scans = head.nt // (ns * n_wavelengths)
    shape5 = (n_scans, ns, n_wavelengths, head.ny, head.nx)
    flat = np.memmap(path, dtype=head.dtype, mode="r", offset=_LP_HEADER_BYTES, shape=(head.nt, head.ny, head.nx))
    # Fortran (nx, ny, nt) on disk is C (nt, ny, nx); frame iw + is*nw + it*nw*ns -> (it, is, iw).
    data = flat.reshape(shape5)
    if lazy is False:
        data = np.array(data, dtype=head.dtype.newbyteorder("="))
    elif lazy is True or lazy == "dask":
        import dask.array as da

        data = da.from_array(data, chunks=(1, 1, 1, head.ny, head.nx))  # one chunk per frame of the memory map
    meta = {"LPHEADER": head.to_bytes().rstrip(b"\0").decode(), "FILENAME": path.name}
    companion = _companion(path)
    if wavelengths is None and times is None and pixel_scale is None and companion.exists():
        with fits.open(companion) as hdul:
            header = hdul[0].header.copy()
            tables = fits.HDUList([fits.PrimaryHDU(), hdul["WCS-TAB"].copy()])
        described = tuple(header.get(f"LPNAXIS{i}", 0) for i in range(5, 0, -1))
        if described != shape5:
            raise ValueError(f"{companion.name} describes a cube of shape {described}, not {shape5}: not this cube's")
        meta.update({k: v for k, v in header.items() if k and not _STRUCTURAL.match(k)})
        unit = unit if unit is not None else header.get("BUNIT")
    else:
        first = STOKES_CODES[labels[0]]
        if list(labels) != [STOKES_SYMBOLS[first + i] for i in range(ns)]:
            raise ValueError(f"Stokes {labels} are not consecutive in I, Q, U, V order; the WCS cannot describe them")
        cards, tab = _lp_wcs_hdus(shape5, first, wavelengths, times, pixel_scale, center, date_ref)
        header = fits.Header()
        for i, n in enumerate(shape5[::-1], 1):
            header[f"NAXIS{i}"] = n
        header.update(cards)
        first_time = np.min(tab.data[0][0][..., -1]) if "TIME" in tab.columns.names[0] else header["CRVAL5"]
        ref = Time(header["DATEREF"], scale=header["CTYPE5"][:4].strip("-").lower())
        header["DATE-BEG"] = _isot(ref + first_time * u.s)
        tables = fits.HDUList([fits.PrimaryHDU(), tab])
    note = _observer_at_earth(header)
    if note:
        meta["sunpy_nn_note"] = note
    wcs = _wcs(header, tables)
    return NDCube(data, wcs=wcs, unit=u.Unit(unit) if unit else None, meta=meta)


# ----------------------------------------------------------------------------------------------------- write
def _frame_getter(array, axes, ndim: int, compute: bool = True):
    """Function giving frame (scan, stokes, tuning) as a (y, x) array (left lazy with ``compute=False``)."""
    order = [axes.time, axes.stokes, axes.wavelength]

    def frame(it: int, is_: int, iw: int) -> np.ndarray:
        key: list = [slice(None)] * ndim
        for a, i in zip(order, (it, is_, iw), strict=True):
            if a is not None:
                key[a] = i
        f = array[tuple(key)]
        if compute:
            f = np.asarray(f.compute() if hasattr(f, "compute") else f)
        return f if axes.y < axes.x else f.T

    return frame


def _canonical_shape(cube: NDCube, axes) -> tuple[int, int, int, int, int]:
    shape = cube.data.shape
    return tuple(1 if a is None else shape[a] for a in (axes.time, axes.stokes, axes.wavelength, axes.y, axes.x))


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
            "write_crisp needs the wavelength of every tuning; this cube's WCS gives none (add a wavelength axis)"
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


def _header_from_meta(meta) -> fits.Header:
    header = fits.Header()
    if not meta:
        return header
    for key, value in dict(meta).items():
        k = str(key).upper()
        if k in ("HISTORY", "COMMENT"):  # astropy keeps these as card lists, sunpy as newline-joined strings
            lines = value.splitlines() if isinstance(value, str) else [str(v) for v in value]
            for line in lines:
                header.add_history(line) if k == "HISTORY" else header.add_comment(line)
            continue
        if len(k) > 8 or _STRUCTURAL.match(k) or _COORDINATE_KEYS.match(k):
            continue
        if not isinstance(value, str | int | float | bool | np.number):
            continue
        try:
            header[k] = value
        except (ValueError, TypeError):  # e.g. non-ASCII strings
            log.debug("not writing meta key %s", k)
    return header


def write_crisp(cube: NDCube, path: str | Path, *, overwrite: bool = False, dtype=None, progress: bool = False) -> Path:
    """
    Write an `~ndcube.NDCube` as a SOLARNET FITS cube in SSTRED's layout.

    The data go in the primary HDU in numpy order ``(scan, stokes, tuning, y, x)``; the helioprojective,
    wavelength and time coordinates of the four field-of-view corners of every tuning and scan go in a
    ``WCS-TAB`` table (as SSTRED writes them), the uncertainty (if any) in an ``UNCERT`` image extension. Frames
    are written one at a time, so memory-mapped and dask-backed cubes are never loaded whole. The file reads
    back with `read_crisp` into the same data and world coordinates; a cube with a curved (e.g. gnomonic)
    spatial projection is written with corner-interpolated (linear) coordinates, which over a CRISP field of
    view of 1 arcmin differ from the projection by far less than a pixel.

    Parameters
    ----------
    cube : `~ndcube.NDCube`
        Two helioprojective axes, a wavelength axis (or wavelength in the WCS) and optional Stokes and time axes,
        in any order. Coordinates of axes sliced away (e.g. the time of ``cube[3]`` or the Stokes parameter of
        ``cube[:, 3]``) are kept; without a time axis the time is the WCS's DATE-BEG (else DATE-OBS, DATE-AVG,
        MJD-OBS), else the meta's DATE-BEG/DATE-OBS.
    path : str or `~pathlib.Path`
        Output file (``.fits``, ``.fit`` or ``.fts``; uncompressed: compress it afterwards if you wish, `read_crisp`
        reads ``.fits.gz``). A path ending in ``.fcube``/``.icube`` writes an LP cube instead (`write_lp`).
    overwrite : bool
        Replace an existing file.
    dtype : numpy dtype, optional
        Data type of the written values: by default float64 for float64 data (its values unchanged), else float32.
    progress : bool
        Show a progress bar over frames.

    Returns
    -------
    `~pathlib.Path`
        The file written.

    Raises
    ------
    ValueError
        A coordinate the file cannot hold (a spatial frame other than helioprojective, Stokes parameters out of
        I, Q, U, V order, user-added ``extra_coords``/``global_coords``), no wavelength or time, or an output name
        that is not an uncompressed FITS or LP file. Nothing is written then.
    FileExistsError, FileNotFoundError, PermissionError
        The output exists (without ``overwrite``), its folder does not exist or cannot be written.

    Notes
    -----
    World coordinates are written from the WCS, never from the meta: the spectral type (``WAVE`` vacuum or
    ``AWAV`` air wavelength, ``FREQ``...) in the cube's own unit with its ``SPECSYS``/rest frequency, times in
    their own scale (``UTC``, ``TAI``, ``TT``...) from a ``DATEREF`` at midnight, the observer (``DSUN_OBS``,
    ``HGLN_OBS``, ``HGLT_OBS``, and ``OBSGEO-X/Y/Z`` of a ground-based one), ``RSUN_REF`` and the frame's time
    (``DATE-OBS``/``DATE-AVG``). The mask goes in a ``MASK`` image extension (1 = masked), and the provenance of
    sunpy_nn processing (``meta["sunpy_nn"]``) in readable ``HISTORY`` lines. The file is written under a
    temporary name and renamed when complete, so a failed write leaves no partial file and the cube may be
    read from the file it replaces.

    Examples
    --------
    >>> import numpy as np, astropy.units as u, tempfile, pathlib
    >>> from astropy.time import Time
    >>> from sunpy_nn.io import read_crisp, write_crisp, write_lp
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_lp(np.ones((2, 4, 3, 8, 8), np.float32), tmp / "c.fcube")
    >>> cube = read_crisp(tmp / "c.fcube", wavelengths=[630.1, 630.15, 630.2] * u.nm, pixel_scale=0.059,
    ...                   times=Time(["2020-06-01T08:00:00", "2020-06-01T08:00:30"]))
    >>> back = read_crisp(write_crisp(cube, tmp / "c.fits"))
    >>> back.data.shape
    (2, 4, 3, 8, 8)
    """
    path = Path(path)
    if path.suffix.lower() in _LP_SUFFIXES:
        return write_lp(cube, path, overwrite=overwrite)
    if not isinstance(cube, NDCube):
        raise TypeError(f"write_crisp writes an ndcube.NDCube, not {type(cube).__name__}")
    _check_output(path, overwrite=overwrite)
    axes = find_axes(cube)
    shape5 = _canonical_shape(cube, axes)
    nt, ns, nw, ny, nx = shape5
    cards, tab, time = _coordinate_header(cube, axes, shape5)
    meta = cube.meta if cube.meta is not None else {}
    if dtype is None:
        dtype = np.float64 if np.dtype(cube.data.dtype) == np.float64 else np.float32

    header = fits.Header()
    header["SIMPLE"] = True
    bits = 8 * np.dtype(dtype).itemsize
    header["BITPIX"] = -bits if np.dtype(dtype).kind == "f" else bits
    header["NAXIS"] = 5
    for i, n in enumerate(shape5[::-1], 1):
        header[f"NAXIS{i}"] = n
    header["EXTEND"] = True
    header.update(_header_from_meta(meta))
    header.update(cards)
    header["DATE-BEG"] = (_isot(time.min()), "[UTC] first scan")
    header["DATE-END"] = (_isot(time.max()), "[UTC] last scan")
    header["SOLARNET"] = (0.5, "partially SOLARNET compliant")
    header["OBS_HDU"] = 1
    if cube.unit is not None:
        header["BUNIT"] = cube.unit.to_string("fits")
    _add_history(header, meta)

    def image_header(name: str, bitpix: int) -> fits.Header:
        h = fits.Header()
        h["XTENSION"] = "IMAGE"
        h["BITPIX"] = bitpix
        h["NAXIS"] = 5
        for i, n in enumerate(shape5[::-1], 1):
            h[f"NAXIS{i}"] = n
        h["PCOUNT"], h["GCOUNT"] = 0, 1
        h["EXTNAME"] = name
        return h

    uheader = mheader = None
    if cube.uncertainty is not None:
        uheader = image_header("UNCERT", header["BITPIX"])
        uheader["UTYPE"] = ("StdDevUncertainty", "one standard deviation of the data")
        if cube.unit is not None:
            uheader["BUNIT"] = cube.unit.to_string("fits")
    mask = _mask_array(cube)
    if mask is not None:
        mheader = image_header("MASK", 8)
        mheader["COMMENT"] = "1 where the data are masked (invalid), 0 elsewhere"
    # The file's layout first (headers, space for the data, the table), then the frames in place: data and
    # uncertainty of a frame are computed together, so a lazy cube's frames are computed once and never all held.
    big = np.dtype(dtype).newbyteorder(">")
    with _replacing(path) as tmp:
        data_offset = _write_hdu_frame(tmp, header, shape5, big, append=False)
        fits.append(tmp, tab.data, tab.header)
        unc_offset = _write_hdu_frame(tmp, uheader, shape5, big, append=True) if uheader is not None else None
        mask_offset = _write_hdu_frame(tmp, mheader, shape5, np.dtype("u1"), append=True) if mheader else None
        outs = [np.memmap(tmp, dtype=big, mode="r+", offset=data_offset, shape=shape5)]
        getters = [_frame_getter(cube.data, axes, cube.data.ndim, compute=False)]
        if unc_offset is not None:
            outs.append(np.memmap(tmp, dtype=big, mode="r+", offset=unc_offset, shape=shape5))
            unc = cube.uncertainty.represent_as(StdDevUncertainty).array
            getters.append(_frame_getter(unc, axes, cube.data.ndim, False))
        if mask_offset is not None:
            outs.append(np.memmap(tmp, dtype="u1", mode="r+", offset=mask_offset, shape=shape5))
            getters.append(_frame_getter(mask, axes, cube.data.ndim, False))
        from tqdm.auto import tqdm

        frames = [(it, is_, iw) for it in range(nt) for is_ in range(ns) for iw in range(nw)]
        for it, is_, iw in tqdm(frames, desc="write_crisp", unit="frame", disable=not progress):
            parts = [get(it, is_, iw) for get in getters]
            if any(hasattr(p, "compute") for p in parts):
                import dask

                parts = dask.compute(*parts)
            for out, part in zip(outs, parts, strict=True):
                out[it, is_, iw] = part
        for out in outs:
            out.flush()
        del outs
    log.info("wrote %s: %s frames of %dx%d", path, nt * ns * nw, nx, ny)
    return path


def _mask_array(cube: NDCube):
    """The cube's mask as a uint8 array of the data's shape (1 = masked), or None when nothing is masked."""
    mask = cube.mask
    if mask is None or (np.ndim(mask) == 0 and not bool(mask)):
        return None
    if np.ndim(mask) == 0 or np.shape(mask) != cube.data.shape:
        mask = np.broadcast_to(np.asarray(mask, bool), cube.data.shape)
    if hasattr(mask, "compute"):
        return mask.astype("u1")
    mask = np.asarray(mask, bool)
    return mask.view("u1") if mask.any() else None


def _add_history(header: fits.Header, meta) -> None:
    """
    HISTORY of a written file: this write, and sunpy_nn's provenance record ``meta["sunpy_nn"]`` (software, method,
    model and SHA-256, settings) as readable ``key: value`` lines wrapped to the 72 characters of a HISTORY card, as
    `sunpy_nn.header.store_provenance` writes every record into a FITS header.
    """
    from sunpy_nn import __version__

    append_history(header, f"written by sunpy_nn {__version__} write_crisp")
    record = meta.get(PROVENANCE_KEY) if meta else None
    if isinstance(record, dict):
        store_provenance(header, record, history=True)


_LP_SUFFIXES = (".fcube", ".icube")
_WRITE_FITS_SUFFIXES = (".fits", ".fit", ".fts")


def _check_output(path: str | Path, *, overwrite: bool = False) -> list[Path]:
    """
    Check, before any work, that `write_crisp` can write ``path``: a known extension, an existing writable
    folder, and no existing file unless ``overwrite``. Returns every file that will be written (an LP cube has
    its ``_sp`` cube and ``.wcs.fits`` companion); raises an error that names the problem and the fix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".gz", ".fz", ".bz2", ".zip", ".xz", ".z"):
        raise ValueError(
            f"{path}: write_crisp writes uncompressed FITS (frames are written in place); write "
            f"{path.with_suffix('').name if path.stem.lower().endswith(_WRITE_FITS_SUFFIXES) else path.stem + '.fits'}"
            " and compress it afterwards (read_crisp reads .fits.gz)"
        )
    if suffix not in _WRITE_FITS_SUFFIXES + _LP_SUFFIXES:
        raise ValueError(
            f"{path}: unknown output type {suffix or '(no extension)'!r}; use .fits (SOLARNET FITS) or .fcube/.icube "
            "(CRISPEX LP cube, float32/int16)"
        )
    targets = [path] + ([_sp_path(path), _companion(path)] if suffix in _LP_SUFFIXES else [])
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise FileNotFoundError(f"The output folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} (the output's folder) is not a folder")
    for t in targets:
        if t.is_dir():
            raise IsADirectoryError(f"{t} is a folder; give a file name")
        if t.exists() and not overwrite:
            raise FileExistsError(f"{t} exists; pass overwrite=True to replace it")
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sunpy_nn-write-check-"):
            pass
    except OSError as exc:
        raise PermissionError(f"Cannot write to the output folder {folder}: {exc.strerror or exc}") from exc
    return targets


class _replacing:
    """Context: a temporary file beside ``path``, renamed to ``path`` when the block succeeds, removed if not."""

    def __init__(self, *paths: Path):
        self.paths = [Path(p) for p in paths]
        self.tmps = [p.with_name(f".{p.name}.sunpy_nn-partial") for p in self.paths]

    def __enter__(self):
        return self.tmps[0] if len(self.tmps) == 1 else self.tmps

    def __exit__(self, exc_type, exc, tb):
        import os

        if exc_type is None:
            for tmp, path in zip(self.tmps, self.paths, strict=True):
                if tmp.exists():
                    os.replace(tmp, path)
        else:
            for tmp in self.tmps:
                tmp.unlink(missing_ok=True)
        return False


def _write_hdu_frame(path: Path, header: fits.Header, shape5, dtype: np.dtype, *, append: bool) -> int:
    """Write an HDU's header and reserve (zero) space for its data; returns the data's byte offset."""
    size = int(np.prod(shape5)) * dtype.itemsize
    with open(path, "ab" if append else "wb") as f:
        f.write(header.tostring(padding=True).encode("ascii"))
        offset = f.tell()
        f.truncate(offset + size + (-size % 2880))  # FITS blocks are 2880 bytes; the space reads as zeros
    return offset


def write_lp(cube, path: str | Path, *, overwrite: bool = False, sp: bool = True) -> Path:
    """
    Write a CRISPEX LP cube (``.fcube`` float32 or ``.icube`` int16) and its ``_sp`` spectral companion.

    Parameters
    ----------
    cube : `~ndcube.NDCube` or array
        An NDCube (axes found from its WCS; its coordinates go to a companion ``<path>.wcs.fits`` that
        `read_crisp` picks up), or an array in the order ``(scan, stokes, wavelength, y, x)`` (or
        ``(scan, wavelength, y, x)`` for one Stokes parameter).
    path : str or `~pathlib.Path`
        Output file: ``.fcube`` writes 32-bit floats, ``.icube`` 16-bit integers.
    overwrite : bool
        Replace existing files (the cube, its ``_sp`` cube and its ``.wcs.fits`` companion).
    sp : bool
        Also write the ``_sp`` cube: the same data with spectrum x time frames for every pixel, which CRISPEX
        needs and `read_crisp` reads the number of wavelengths from.

    Returns
    -------
    `~pathlib.Path`
        The image cube written.

    Raises
    ------
    ValueError
        Another extension; coordinates the companion cannot hold (see `write_crisp`); masked pixels in an
        ``.icube`` (an LP cube has no mask: in an ``.fcube`` they are written as NaN).
    FileExistsError, FileNotFoundError, PermissionError
        As `write_crisp`. A companion left from an earlier cube of that name is replaced (or refused without
        ``overwrite``), never left to describe the new data.
    """
    path = Path(path)
    if path.suffix.lower() not in _LP_SUFFIXES:
        raise ValueError(f"{path}: an LP cube is written as .fcube (float32) or .icube (int16)")
    targets = _check_output(path, overwrite=overwrite)
    targets = [t for t in targets if sp or t != _sp_path(path)]
    integer = path.suffix.lower() == ".icube"
    dtype = np.dtype("<i2" if integer else "<f4")
    labels: tuple[str, ...] = ("I", "Q", "U", "V")
    companion = None
    if isinstance(cube, NDCube):
        axes = find_axes(cube)
        shape5 = _canonical_shape(cube, axes)
        # The coordinates first: a cube whose coordinates cannot be written leaves no files.
        companion = _companion_hdul(cube, axes, shape5)
        mask = _mask_array(cube)
        if mask is not None and integer:
            raise ValueError(
                f"{path}: the cube has masked pixels and an .icube (int16) has neither a mask nor NaN; write an "
                ".fcube (masked pixels become NaN) or a .fits file (with a MASK extension)"
            )
        data = cube.data
        if mask is not None:
            log.info("%s: an LP cube has no mask; masked pixels are written as NaN", path.name)
        get_data = _frame_getter(data, axes, cube.data.ndim)
        get_mask = None if mask is None else _frame_getter(mask, axes, cube.data.ndim)

        def frame(it, is_, iw):
            f = get_data(it, is_, iw)
            if get_mask is not None:
                f = np.where(get_mask(it, is_, iw).astype(bool), np.nan, f)
            return f

        if axes.stokes is not None:
            labels = tuple(stokes_labels(cube, axes))
        else:
            labels = (STOKES_SYMBOLS[_stokes_first(cube, axes, 1, _dropped_coords(cube))],)
    else:
        arr = np.asarray(cube) if not hasattr(cube, "compute") else cube
        if arr.ndim == 4:
            arr = arr[:, None]
        if arr.ndim != 5:
            raise ValueError(
                f"write_lp needs (scan, stokes, wavelength, y, x) or (scan, wavelength, y, x), not {arr.shape}"
            )
        shape5 = arr.shape

        def frame(it, is_, iw):
            f = arr[it, is_, iw]
            return np.asarray(f.compute() if hasattr(f, "compute") else f)

    nt, ns, nw, ny, nx = shape5
    labels = tuple(labels[:ns])
    head = LPHeader(2 if integer else 4, nx, ny, nt * ns * nw, "l", labels if ns > 1 else None)
    outputs = [path] + ([_sp_path(path)] if sp else []) + ([_companion(path)] if companion is not None else [])
    with _replacing(*outputs) as tmps:
        tmps = list(tmps) if isinstance(tmps, list) else [tmps]
        out = np.memmap(tmps[0], dtype=np.uint8, mode="w+", shape=(_LP_HEADER_BYTES + head.data_bytes,))
        out[:_LP_HEADER_BYTES] = np.frombuffer(head.to_bytes(), np.uint8)
        frames = np.ndarray((nt * ns * nw, ny, nx), dtype=dtype, buffer=out, offset=_LP_HEADER_BYTES)
        for it in range(nt):
            for is_ in range(ns):
                for iw in range(nw):
                    f = frame(it, is_, iw)
                    frames[iw + is_ * nw + it * nw * ns] = np.rint(f) if integer else f
        out.flush()
        if sp:
            sp_head = LPHeader(head.datatype, nw, nt, nx * ny * ns, "l", head.stokes)
            sp_out = np.memmap(tmps[1], dtype=np.uint8, mode="w+", shape=(_LP_HEADER_BYTES + sp_head.data_bytes,))
            sp_out[:_LP_HEADER_BYTES] = np.frombuffer(sp_head.to_bytes(), np.uint8)
            # CRISPEX spectral layout: Fortran (nw, nt, nx*ny*ns), a wavelength x time frame per pixel and Stokes.
            spec = np.ndarray((ns, ny, nx, nt, nw), dtype=dtype, buffer=sp_out, offset=_LP_HEADER_BYTES)
            for is_ in range(ns):
                spec[is_] = frames.reshape(nt, ns, nw, ny, nx)[:, is_].transpose(2, 3, 0, 1)
            sp_out.flush()
            del sp_out
        del out, frames
        if companion is not None:
            companion.writeto(tmps[-1], overwrite=True)
    if companion is None and _companion(path).exists():
        _companion(path).unlink()  # it described the cube this one replaced (overwrite was checked above)
    return path


def _companion_hdul(cube: NDCube, axes, shape5) -> fits.HDUList:
    """The coordinates an LP cube cannot hold, as a data-less SOLARNET header plus WCS-TAB."""
    cards, tab, time = _coordinate_header(cube, axes, shape5)
    header = _header_from_meta(cube.meta)
    header["WCSAXES"] = 5
    header.update(cards)
    header["DATE-BEG"] = (_isot(time.min()), "[UTC] first scan")
    header["DATE-END"] = (_isot(time.max()), "[UTC] last scan")
    if cube.unit is not None:
        header["BUNIT"] = cube.unit.to_string("fits")
    _add_history(header, cube.meta)
    for i, n in enumerate(shape5[::-1], 1):
        header[f"LPNAXIS{i}"] = (n, "size of this axis of the LP cube described")
    return fits.HDUList([fits.PrimaryHDU(header=header), tab])
