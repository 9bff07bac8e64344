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

This module is the front: `read_crisp`, `write_crisp` and the SOLARNET reader. The LP format lives in
`sunpy_nn.io.lp`, FITS access and the writers' shared pieces in `sunpy_nn.io.fitsfile`, and the world coordinates
(`TabularWCS`, the tabulated WCS) in `sunpy_nn.io.wcs`; every name this module had before that split (issue #15) is
still importable from it.
"""

from __future__ import annotations

import io  # noqa: F401 (a name of this module before the split)
import logging
import lzma  # noqa: F401
import re  # noqa: F401
import warnings
import zlib  # noqa: F401
from dataclasses import dataclass  # noqa: F401
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from astropy.time import Time  # noqa: F401
from astropy.wcs import WCS  # noqa: F401
from ndcube import NDCube

from sunpy_nn.cube import STOKES_CODES, STOKES_SYMBOLS, find_axes, stokes_labels  # noqa: F401
from sunpy_nn.header import PROVENANCE_KEY, append_history, store_provenance  # noqa: F401
from sunpy_nn.io.fitsfile import (  # noqa: F401 (and every name this module had before the split)
    _COMPRESSED_MAGIC,
    _COORDINATE_KEYS,
    _DECOMPRESSION_ERRORS,
    _FITS_SUFFIXES,
    _STRUCTURAL,
    _add_history,
    _bunit_card,
    _canonical_shape,
    _check_fits_size,
    _check_lazy,
    _check_stream_end,
    _corrupt_compressed,
    _dask_frames,
    _fits_array,
    _FitsSection,
    _frame_getter,
    _have_dask,
    _header_from_meta,
    _mask_array,
    _open_fits,
    _replacing,
    _stream_compression,
    _unit_from_bunit,
    _write_hdu_frame,
)
from sunpy_nn.io.lp import (  # noqa: F401 (and every name this module had before the split)
    _LP_DTYPES,
    _LP_HEADER_BYTES,
    _LP_SUFFIXES,
    _LP_TYPE_NAMES,
    _WRITE_FITS_SUFFIXES,
    LPHeader,
    _check_output,
    _companion,
    _companion_hdul,
    _lp_wcs_hdus,
    _read_lp,
    _sp_path,
    read_lp_header,
    write_lp,
)
from sunpy_nn.io.wcs import (  # noqa: F401 (and every name this module had before the split)
    _OBSERVER_KEYS,
    _OBSGEO_KEYS,
    _SPECTRAL_PHYSICAL,
    _WCS_COLUMNS,
    TabularWCS,
    _as_seconds,
    _coordinate_header,
    _date_from_header_like,
    _dropped_coords,
    _fits_wcs,
    _is_spectral,
    _isot,
    _observer_at_earth,
    _observer_cards,
    _stokes_first,
    _table_bytes,
    _tabulated_wcs_hdus,
    _unpickle_quietly,
    _user_coords,
    _wcs,
    _world,
)
from sunpy_nn.utils import SunpyNNUserWarning

__all__ = ["LPHeader", "TabularWCS", "read_crisp", "read_lp_header", "write_crisp", "write_lp"]

log = logging.getLogger(__name__)

_UNCERTAINTY_NAMES = ("UNCERT", "UNCERTAINTY", "ERROR", "ERRORS", "STDDEV")


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
        ``"auto"`` (default) memory-maps float data (FITS, ``.fcube``) and wraps integer data (e.g. FITS
        BITPIX=16 with BSCALE/BZERO, an ``.icube``) and tile-compressed HDUs in a dask array that scales, converts
        or decompresses frame by frame, so a 20 GB cube does not enter memory on open. ``"dask"`` (or `True`)
        always returns a dask array with one chunk per frame; `False` reads everything into memory. A whole-file
        compressed FITS (``.fits.gz``) cannot be memory-mapped or read frame by frame: astropy decompresses it
        into memory in every mode (the log says so; ``"dask"`` wraps the array). Whatever the mode, the values are
        those astropy reads.
    wavelengths, times, pixel_scale, center, date_ref
        LP cubes only, which store no coordinates: wavelengths (`~astropy.units.Quantity` in any spectral unit,
        e.g. nm, Angstrom or Hz, one per tuning), times of the scans (`~astropy.time.Time`, or times since
        ``date_ref`` as a Quantity of time or plain seconds; shape ``(n_scans,)`` or ``(n_scans, n_wavelengths)``),
        pixel scale (a Quantity in ``arcsec/pix`` or in arcsec, or a plain number of arcsec per pixel) and the
        helioprojective centre of the field (two angles, plain numbers in arcsec; default ``(0, 0)`` arcsec). A
        Quantity in a unit that does not fit is a `~astropy.units.UnitConversionError` (a `ValueError`) naming the
        parameter. When none is given, the companion ``<cube>.wcs.fits`` written by `write_lp` is used if present.
    unit : str or `~astropy.units.Unit`, optional
        Data unit; default BUNIT (FITS, or the LP cube's companion ``<cube>.wcs.fits``), else none. An empty BUNIT
        (or ``unit=""``) is dimensionless, as FITS writes I/Ic.
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
        An unknown ``lazy``, or ``"memmap"`` for uncompressed integer data (FITS or ``.icube``: they are not
        floating-point values on disk); a truncated file (astropy's size check) or a truncated or corrupt
        compressed file; a FITS file without an image of two or more axes, or whose ``-TAB`` axes lack their
        ``WCS-TAB`` table; an ``UNCERT`` or ``MASK`` extension of another shape than the data; a header that is
        not an LP or FITS header, sizes that disagree with the ``_sp`` cube, or LP coordinates of the wrong length
        or unit (wavelengths without a spectral unit; times, pixel scale or centre in a unit that does not fit: a
        `~astropy.units.UnitConversionError`).
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
    if bunit is not None:
        try:
            parsed = _unit_from_bunit(bunit)  # '' (how FITS writes I/Ic) is dimensionless, not "no unit"
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


# ----------------------------------------------------------------------------------------------------- write
def _check_writable(cube: NDCube) -> None:
    """What `write_crisp` needs of a cube's axes and coordinates, checked without writing: before minutes of work."""
    axes = find_axes(cube)
    _coordinate_header(cube, axes, _canonical_shape(cube, axes))


def write_crisp(cube: NDCube, path: str | Path, *, overwrite: bool = False, dtype=None, progress: bool = False) -> Path:
    """
    Write an `~ndcube.NDCube` as a SOLARNET FITS cube in SSTRED's layout.

    The data go in the primary HDU in numpy order ``(scan, stokes, tuning, y, x)``; the helioprojective,
    wavelength and time coordinates of the four field-of-view corners of every tuning and scan go in a
    ``WCS-TAB`` table (as SSTRED writes them), the uncertainty (if any) in an ``UNCERT`` image extension. Frames
    are written one scan and Stokes parameter (all its tunings) at a time, so memory-mapped and dask-backed cubes
    are never loaded whole, and a lazy result whose tunings come from one computation is computed once. The file reads
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
        Data type of the written values, float32 or float64: by default float64 for float64 data (its values
        unchanged), else float32.
    progress : bool
        Show a progress bar over frames.

    Returns
    -------
    `~pathlib.Path`
        The file written.

    Raises
    ------
    TypeError
        ``cube`` is not an `~ndcube.NDCube` (for a FITS output; `write_lp` also writes arrays).
    ValueError
        A coordinate the file cannot hold (a spatial frame other than helioprojective, Stokes parameters out of
        I, Q, U, V order, user-added ``extra_coords``/``global_coords``), no wavelength or time, axes that cannot be
        identified (`~sunpy_nn.cube.find_axes`), an output name that is not an uncompressed FITS or LP file, a
        ``dtype`` other than float32 or float64, fewer than 2 pixels along a spatial axis, or an uncertainty in a
        unit that cannot be converted to the data's. Nothing is written then.
    FileExistsError, FileNotFoundError, PermissionError
        The output exists (without ``overwrite``), its folder does not exist or cannot be written.
    NotADirectoryError, IsADirectoryError
        The output's folder is a file, or the output is a folder.

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
    if min(ny, nx) < 2:  # a one-pixel axis's WCS crashed astropy on reading it back
        raise ValueError(f"write_crisp needs at least 2 x 2 spatial pixels; this cube has {ny} x {nx}")
    if dtype is not None and not (np.dtype(dtype).kind == "f" and np.dtype(dtype).itemsize in (4, 8)):  # ints lost NaN
        raise ValueError(f"dtype must be float32 or float64 (NaN marks missing data), not {np.dtype(dtype)}")
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
        header["BUNIT"] = _bunit_card(cube.unit)
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

    uheader = mheader = unc = None
    if cube.uncertainty is not None:
        unc = _uncertainty_in_data_unit(cube)  # before anything is written
        uheader = image_header("UNCERT", header["BITPIX"])
        uheader["UTYPE"] = ("StdDevUncertainty", "one standard deviation of the data")
        if cube.unit is not None:
            uheader["BUNIT"] = _bunit_card(cube.unit)
    mask = _mask_array(cube)
    if mask is not None:
        mheader = image_header("MASK", 8)
        mheader["COMMENT"] = "1 where the data are masked (invalid), 0 elsewhere"
    # The file's layout first (headers, space for the data, the table), then the frames in place. The frames of one
    # scan and Stokes parameter (all its wavelengths: data, uncertainty, mask) are computed together: a lazy result
    # whose wavelengths come from one computation (a denoised scan's spectral components rotated back, a temporal
    # block) is computed once, not once per wavelength, and the cube is never held whole.
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
            getters.append(_frame_getter(unc, axes, cube.data.ndim, False))
        if mask_offset is not None:
            outs.append(np.memmap(tmp, dtype="u1", mode="r+", offset=mask_offset, shape=shape5))
            getters.append(_frame_getter(mask, axes, cube.data.ndim, False))
        from tqdm.auto import tqdm

        bar = tqdm(total=nt * ns * nw, desc="write_crisp", unit="frame", disable=not progress)
        for it in range(nt):
            for is_ in range(ns):
                parts = [get(it, is_, iw) for iw in range(nw) for get in getters]
                if any(hasattr(p, "compute") for p in parts):
                    import dask

                    parts = dask.compute(*parts)
                for k, part in enumerate(parts):
                    outs[k % len(outs)][it, is_, k // len(outs)] = part
                bar.update(nw)
        bar.close()
        for out in outs:
            out.flush()
        del outs
    log.info("wrote %s: %s frames of %dx%d", path, nt * ns * nw, nx, ny)
    return path


def _uncertainty_in_data_unit(cube):
    """The cube's standard deviations in the unit of its data (the file holds one ``BUNIT`` for both)."""
    unc = cube.uncertainty.represent_as(StdDevUncertainty)
    if unc.unit is None or cube.unit is None or unc.unit == cube.unit:
        return unc.array
    try:
        factor = unc.unit.to(cube.unit)
    except u.UnitConversionError as exc:
        raise ValueError(f"The cube's uncertainty is in {unc.unit}, not a unit of its data ({cube.unit})") from exc
    return unc.array * factor
