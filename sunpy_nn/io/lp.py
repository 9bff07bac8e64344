"""
CRISPEX "LP" cubes: the 512-byte header, reading into an `~ndcube.NDCube`, and `write_lp`.

LP cubes (``*.fcube``/``*.icube``) are a 512-byte ASCII header followed by the raw frames in Fortran order
``(nx, ny, nt * ns * nw)``; frame ``iw + is * nw + it * nw * ns`` is wavelength ``iw``, Stokes ``is`` of scan
``it``. They carry no coordinates: the number of wavelengths comes from the companion ``*_sp.fcube`` header, and
wavelengths, times and pixel scale come from keyword arguments of `~sunpy_nn.io.read_crisp` or a companion WCS file
written by `write_lp`. Split from `sunpy_nn.io.crisp` (issue #15), which still exports every name.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.time import Time
from ndcube import NDCube

from sunpy_nn.cube import STOKES_CODES, STOKES_SYMBOLS, find_axes, stokes_labels
from sunpy_nn.io._lp_coords import _arcsec, _lp_wcs_hdus  # noqa: F401 (_arcsec: its home before the split)
from sunpy_nn.io.fitsfile import (
    _STRUCTURAL,
    _add_history,
    _bunit_card,
    _canonical_shape,
    _frame_getter,
    _have_dask,
    _header_from_meta,
    _mask_array,
    _replacing,
    _unit_from_bunit,
)
from sunpy_nn.io.wcs import (
    _coordinate_header,
    _dropped_coords,
    _isot,
    _observer_at_earth,
    _stokes_first,
    _wcs,
)
from sunpy_nn.utils import SunpyNNUserWarning

__all__ = ["LPHeader", "read_lp_header", "write_lp"]

# Records keep the logger name of the CRISP reader and writers before the split (users and tests filter on it).
log = logging.getLogger("sunpy_nn.io.crisp")

_LP_HEADER_BYTES = 512
_LP_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8"}
_LP_TYPE_NAMES = {1: "byte", 2: "integer", 3: "long", 4: "float", 5: "double"}


# ---------------------------------------------------------------------------------------------------- LP header
@dataclass(frozen=True)
class LPHeader:
    """
    The 512-byte ASCII header of a CRISPEX LP cube.

    ``nx, ny`` are the frame size and ``nt`` the number of frames (``n_scans * ns * nw`` for an image cube; for
    the ``_sp`` spectral cube ``nx`` is the number of wavelengths and ``ny`` the number of scans). Made by
    `read_lp_header` or `parse`; each parameter is kept as the attribute of the same name (the object is
    immutable).

    Parameters
    ----------
    datatype : int
        IDL type code of the values: 1 byte (uint8), 2 integer (int16), 3 long (int32), 4 float (float32),
        5 double (float64).
    nx, ny : int
        Frame size in pixels (``x`` fastest in the file); for an ``_sp`` cube the number of wavelengths and of
        scans.
    nt : int
        Number of frames; for an ``_sp`` cube ``nx * ny * ns`` of the image cube (one frame per pixel and Stokes
        parameter).
    endian : {"l", "b"}
        Byte order of the values: little- or big-endian.
    stokes : tuple of str, optional
        Stokes parameters of the cube in file order, e.g. ``("I", "Q", "U", "V")``; `None` when the header names
        none (one Stokes parameter).
    dims : int
        The header's ``dims`` (3 for the cubes CRISPEX reads).

    Examples
    --------
    >>> from sunpy_nn.io import LPHeader
    >>> head = LPHeader(4, 6, 8, 60, stokes=("I", "Q", "U", "V"))
    >>> head.ns, head.dtype, head.data_bytes
    (4, dtype('float32'), 11520)
    >>> LPHeader.parse(head.to_bytes()) == head
    True
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
        """
        The header as CRISPEX writes it: ASCII, NUL-padded to 512 bytes.

        Returns
        -------
        bytes
            512 bytes, e.g. ``datatype=4 (float), dims=3, nx=6, ny=8, nt=60, endian=l`` (preceded by
            ``stokes=[I,Q,U,V], ns=4 :`` where the header names Stokes parameters) and NUL bytes.
        """
        text = (
            f"datatype={self.datatype} ({_LP_TYPE_NAMES[self.datatype]}), dims={self.dims}, "
            f"nx={self.nx}, ny={self.ny}, nt={self.nt}, endian={self.endian}"
        )
        if self.stokes:
            text = f"stokes=[{','.join(self.stokes)}], ns={self.ns} : " + text
        return text.encode("ascii").ljust(_LP_HEADER_BYTES, b"\0")

    @classmethod
    def parse(cls, raw: bytes, source: str = "LP cube") -> LPHeader:
        """
        Parse the 512 header bytes; a `ValueError` names what is missing or wrong.

        Parameters
        ----------
        raw : bytes
            The start of the file: at least its first 512 bytes (more are ignored).
        source : str
            What the bytes came from (e.g. the file name), for the error messages.

        Returns
        -------
        `LPHeader`
            The header.

        Raises
        ------
        ValueError
            Fewer than 512 bytes, bytes that are not ASCII, a header without ``datatype``, ``nx``, ``ny`` or
            ``nt``, non-integer or non-positive sizes, an unknown ``datatype`` or ``endian``, or a Stokes list that
            cannot be read or disagrees with ``ns``.
        """
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

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The LP cube (``*.fcube``, ``*.icube``, or their ``_sp`` companions).

    Returns
    -------
    `LPHeader`
        The header: frame size, number of frames, data type, byte order and Stokes parameters.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file does not start with a valid LP header (see `LPHeader.parse`).

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


def _companion(path: Path) -> Path:
    return path.with_name(path.name + ".wcs.fits")


# ------------------------------------------------------------------------------------------------------ read
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
    # Floats, as read_crisp gives FITS integers (float64 for 32-bit ones); an LP cube has no BSCALE, BZERO or BLANK.
    integer, dtype = head.datatype in (1, 2, 3), np.dtype(np.float64 if head.datatype in (3, 5) else np.float32)
    if integer and lazy == "memmap":
        raise ValueError(f"{path} holds integers, not floats to memory-map; use lazy='dask' or lazy=False")
    lazy = ("dask" if _have_dask() else False) if integer and lazy == "auto" else lazy  # frame by frame, as FITS
    flat = np.memmap(path, dtype=head.dtype, mode="r", offset=_LP_HEADER_BYTES, shape=(head.nt, head.ny, head.nx))
    # Fortran (nx, ny, nt) on disk is C (nt, ny, nx); frame iw + is*nw + it*nw*ns -> (it, is, iw).
    data = flat.reshape(shape5)
    if lazy is False:
        data = np.array(data, dtype=dtype)  # in the machine's byte order
    elif lazy is True or lazy == "dask":
        import dask.array as da

        data = da.from_array(data, chunks=(1, 1, 1, head.ny, head.nx)).astype(dtype)  # frame by frame, as floats
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
    return NDCube(data, wcs=wcs, unit=_unit_from_bunit(unit), meta=meta)


# ----------------------------------------------------------------------------------------------------- write
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


def _int16_frame(f: np.ndarray, path: Path, where: tuple[int, int, int]) -> np.ndarray:
    """A frame for an .icube: integers in the int16 range only. Rounding I/Ic or denoised values would write zeros."""
    f = np.asarray(f)
    rounded = np.rint(f)
    problem = (
        "NaN or infinite values"
        if not np.isfinite(f).all()
        else f"values outside the int16 range ({f.min():.10g} .. {f.max():.10g})"
        if rounded.size and (rounded.min() < -32768 or rounded.max() > 32767)
        else "values that are not integers (I/Ic, or denoised values?)"
        if np.abs(f - rounded).max(initial=0) > 1e-3
        else None
    )
    if problem:
        raise ValueError(
            f"{path}: frame (scan, Stokes, tuning) {where} has {problem}, which an .icube (16-bit integers) cannot "
            "hold; write an .fcube (float32) or a .fits file"
        )
    return rounded


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
        Another extension; an array that is neither 4-D nor 5-D; coordinates the companion cannot hold (see
        `write_crisp`); masked pixels in an ``.icube`` (an LP cube has no mask: in an ``.fcube`` they are written as
        NaN); for an ``.icube`` (16-bit integers, as raw counts), values that are not integers, NaN or infinite, or
        outside the int16 range: write an ``.fcube`` or a FITS file for them. Nothing is left written.
    FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError
        As `write_crisp`. A companion left from an earlier cube of that name is replaced (or refused without
        ``overwrite``), never left to describe the new data.

    Warns
    -----
    sunpy_nn.SunpyNNUserWarning
        The cube has an uncertainty, which an LP cube cannot hold: it is not written (`write_crisp` keeps it).
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
        if cube.uncertainty is not None:
            warnings.warn(
                f"{path.name}: an LP cube has no place for the uncertainty, which is not written; write a .fits file "
                "(write_crisp: an UNCERT extension) to keep it",
                SunpyNNUserWarning,
                stacklevel=2,
            )
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
                    frames[iw + is_ * nw + it * nw * ns] = _int16_frame(f, path, (it, is_, iw)) if integer else f
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
        header["BUNIT"] = _bunit_card(cube.unit)
    _add_history(header, cube.meta)
    for i, n in enumerate(shape5[::-1], 1):
        header[f"LPNAXIS{i}"] = (n, "size of this axis of the LP cube described")
    return fits.HDUList([fits.PrimaryHDU(header=header), tab])
