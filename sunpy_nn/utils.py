"""Warnings, errors and small helpers shared across sunpy_nn."""

from __future__ import annotations

import hashlib
import math
import numbers
from pathlib import Path

import astropy.units as u
import numpy as np
from scipy import ndimage
from sunpy.util.exceptions import SunpyUserWarning

__all__ = ["SunpyNNUserWarning", "WeightsError", "fill_nearest", "sha256sum", "upsample_nearest"]


def __getattr__(name: str):
    # append_history and provenance_lines moved to sunpy_nn.header (issue #15) and are documented there; they stay
    # importable from here, imported on first use so that `import sunpy_nn` does not load sunpy.coordinates.
    if name in ("append_history", "provenance_lines"):
        from sunpy_nn import header

        return getattr(header, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SunpyNNUserWarning(SunpyUserWarning):
    """Warning about input that sunpy_nn processes but whose result may not be trustworthy."""


class WeightsError(ValueError):
    """A weight file is missing, corrupt, has the wrong hash, or does not fit the network."""


def _in_one_unit(**values):
    """
    ``values`` (arrays, or scalars such as ``sigma``) as plain numbers in one unit: where any array is a
    `~astropy.units.Quantity`, all arrays must be, and are converted to the first one's unit (scalars given as
    Quantities too; plain scalars are taken to be in that unit already), so that images in G and kG compare.
    """
    arrays = {k: v for k, v in values.items() if v is not None and np.ndim(v) > 0}
    with_unit = [k for k, v in arrays.items() if isinstance(v, u.Quantity)]
    if not with_unit:
        if any(isinstance(v, u.Quantity) for v in values.values()):
            raise ValueError(
                f"{', '.join(k for k, v in values.items() if isinstance(v, u.Quantity))} has a unit but the "
                f"arrays ({', '.join(arrays)}) have none: give them as Quantities too, or all without units"
            )
        return tuple(values.values())
    if len(with_unit) < len(arrays):
        raise ValueError(
            f"{', '.join(k for k in arrays if k not in with_unit)} has no unit while {', '.join(with_unit)} has: "
            "give all as Quantities (converted to one unit), or none"
        )
    unit = arrays[with_unit[0]].unit
    out = []
    for k, v in values.items():
        if isinstance(v, u.Quantity):
            try:
                v = v.to_value(unit)
            except u.UnitConversionError as err:
                raise u.UnitConversionError(
                    f"{k} is in {v.unit}, which does not convert to {with_unit[0]}'s {unit}"
                ) from err
        out.append(v)
    return tuple(out)


def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """
    SHA-256 hex digest of a file, read in chunks.

    Parameters
    ----------
    path : str or `pathlib.Path`
        The file.
    chunk : int
        Bytes read at a time (1 MiB by default), so that large files are not held in memory.

    Returns
    -------
    str
        The 64-character lower-case hexadecimal digest.

    Raises
    ------
    OSError
        The file cannot be opened or read (e.g. `FileNotFoundError`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sunpy_nn.utils import sha256sum
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = Path(d) / "empty.bin"
    ...     _ = path.write_bytes(b"")
    ...     sha256sum(path)
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fill_depth(radius: int) -> int:
    """
    Pixels a block of an image must extend beyond its core so that `fill_nearest` on the block fills every missing
    pixel within ``radius`` (a network's receptive radius) of a valid core pixel as on the whole image: such a pixel
    is at most ``radius sqrt(2)`` from that valid pixel, so its nearest valid pixel is within ``(1 + sqrt(2))
    radius`` of the core.

    Examples
    --------
    >>> from sunpy_nn.utils import fill_depth
    >>> fill_depth(13), fill_depth(37)
    (32, 90)
    """
    return math.ceil((1 + math.sqrt(2)) * int(radius))


def fill_nearest(data: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """
    Copy of ``data`` whose ``missing`` pixels (last two axes) take the value of the nearest valid pixel.

    Used before convolutions and networks: values come only from valid neighbours, so nothing invalid can spread
    into valid pixels. Leading axes of ``data`` (channels) are filled alike.

    Parameters
    ----------
    data : `numpy.ndarray`
        Array ``(..., ny, nx)``, any unit and dtype.
    missing : `numpy.ndarray`
        Boolean mask ``(ny, nx)``, true where ``data`` is to be replaced; it must leave at least one valid pixel.

    Returns
    -------
    `numpy.ndarray`
        A new array of the shape, dtype and unit of ``data`` with the missing pixels filled; ``data`` itself (not a
        copy) when nothing is missing.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.utils import fill_nearest
    >>> data = np.array([[1.0, np.nan, np.nan, 4.0]])
    >>> fill_nearest(data, np.isnan(data))
    array([[1., 1., 4., 4.]])
    """
    if not missing.any():
        return data
    iy, ix = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
    return data[..., iy, ix]


# Argument checks of the denoiser and its training loop: a ValueError that names the argument.
def _check_int(name: str, value, minimum: int) -> int:
    """An integer argument of at least ``minimum``; a `ValueError` that names it otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, not {value!r}")
    return int(value)


def _check_real(name: str, value, low: float, high: float, *, low_open: bool = False, high_open: bool = True):
    """A real argument in ``[low, high)`` (ends open or closed as given); a `ValueError` that names it otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, not {value!r}")
    return float(value)


def upsample_nearest(mask: np.ndarray, factor: int = 2) -> np.ndarray:
    """
    Repeat each pixel of a 2-D array into a ``factor x factor`` block: an input-grid mask on the output grid.

    Parameters
    ----------
    mask : `numpy.ndarray`
        2-D array ``(ny, nx)`` (any dtype).
    factor : int
        The output pixels per input pixel along each axis.

    Returns
    -------
    `numpy.ndarray`
        ``(factor * ny, factor * nx)``, the dtype of ``mask``.
    """
    return np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
