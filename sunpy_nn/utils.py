"""Warnings, errors and small helpers shared across sunpy_nn."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from scipy import ndimage
from sunpy.util.exceptions import SunpyUserWarning

__all__ = ["SunpyNNUserWarning", "WeightsError", "append_history", "fill_nearest", "sha256sum"]


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
