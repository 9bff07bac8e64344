"""Warnings, errors and small helpers shared across sunpy_nn."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sunpy.util.exceptions import SunpyUserWarning

__all__ = ["SunpyNNUserWarning", "WeightsError", "append_history", "sha256sum"]


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
