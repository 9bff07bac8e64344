"""Warnings, errors and small helpers shared across sunpy_nn."""

from __future__ import annotations

import hashlib
import math
import numbers
from pathlib import Path

import numpy as np
from scipy import ndimage
from sunpy.util.exceptions import SunpyUserWarning

__all__ = ["SunpyNNUserWarning", "WeightsError", "append_history", "fill_nearest", "provenance_lines", "sha256sum"]


class SunpyNNUserWarning(SunpyUserWarning):
    """Warning about input that sunpy_nn processes but whose result may not be trustworthy."""


class WeightsError(ValueError):
    """A weight file is missing, corrupt, has the wrong hash, or does not fit the network."""


def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def append_history(meta, line: str) -> None:
    """Append a line to a header's HISTORY in place (sunpy keeps it as a string, astropy as cards)."""
    old = meta.get("history", "")
    old = old if isinstance(old, str) else "\n".join(str(h) for h in old)
    meta["history"] = (old + "\n" + line).strip("\n")


def provenance_lines(provenance: dict, width: int = 72) -> list[str]:
    """
    Readable lines for a provenance dict (software, model, SHA-256, settings), at most ``width`` characters each
    (a FITS HISTORY card holds 72).

    Each value is one line ``sunpy_nn key: value``, nested dicts with dotted keys (``sunpy_nn model.file: ...``).
    A line that would be too long is split: ``sunpy_nn key:`` alone, then the value in pieces on the following
    lines, each indented by two spaces; joining the pieces without the indent gives the value back exactly.
    """

    def text(value) -> str:
        if isinstance(value, list | tuple):
            return "[" + ", ".join(text(v) for v in value) + "]"
        if isinstance(value, float | np.floating):
            return repr(float(value))
        return str(value)

    def leaves(d: dict, prefix: str = ""):
        for key, value in d.items():
            if isinstance(value, dict) and value:
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", text(value)

    lines: list[str] = []
    piece = width - 2
    for key, value in leaves(provenance):
        line = f"sunpy_nn {key}: {value}"
        if len(line) <= width:
            lines.append(line)
            continue
        lines.append(f"sunpy_nn {key}:"[:width])
        lines += ["  " + value[i : i + piece] for i in range(0, len(value), piece)]
    return lines


def fill_nearest(data: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """
    Copy of ``data`` whose ``missing`` pixels (last two axes) take the value of the nearest valid pixel.

    Used before convolutions and networks: values come only from valid neighbours, so nothing invalid can spread
    into valid pixels. ``missing`` is a 2-D boolean mask; leading axes of ``data`` (channels) are filled alike.
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
