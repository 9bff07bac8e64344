"""
FITS mechanics of the CRISP readers and writers.

Reading: opening with astropy's own checks, clear errors for truncated and corrupt files (also whole-file compressed
ones), and the data of an HDU as astropy reads them, memory-mapped, as a dask array of frames or in memory.
Writing: a cube's frames in file order, a FITS header from a cube's meta with its HISTORY, and files replaced whole.
Split from `sunpy_nn.io.crisp` (issue #15), which still exports every name.
"""

from __future__ import annotations

import logging
import lzma
import re
import warnings
import zipfile
import zlib
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from ndcube import NDCube

from sunpy_nn.header import PROVENANCE_KEY, append_history, store_provenance

__all__: list[str] = []

# Records keep the logger name of the CRISP reader and writers before the split (users and tests filter on it).
log = logging.getLogger("sunpy_nn.io.crisp")

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".gz", ".fz", ".bz2", ".zip", ".xz", ".z")
# Whole-file compression astropy reads through (its own detection); an LP cube is never compressed.
# zipfile.BadZipFile: a .zip cut short loses its central directory, which zipfile reads first.
_DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)
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


# --------------------------------------------------------------------------------------------- shared by writers
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


def _bunit_card(unit: u.UnitBase) -> str | tuple[str, str]:
    """BUNIT of a cube's unit. FITS writes dimensionless as '' (the comment says so; `_unit_from_bunit` reads it)."""
    text = unit.to_string("fits")
    return text if text else (text, "dimensionless (e.g. I/Ic)")


def _unit_from_bunit(bunit) -> u.UnitBase | None:
    """
    The unit of a BUNIT value: '' is dimensionless (as astropy reads it; how `_bunit_card` writes I/Ic), no value
    none. A string astropy does not know raises its ValueError.
    """
    if bunit is None:
        return None
    if isinstance(bunit, str) and not bunit.strip():
        return u.dimensionless_unscaled
    return u.Unit(bunit)


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
