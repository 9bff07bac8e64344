"""
Enhance over many maps: the worker task handed to `sunpy_nn.batch.run_batch`, and `enhance_batch`.

Private to `sunpy_nn.enhance`, which re-exports `enhance_batch` (also importable from `sunpy_nn.parallel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sunpy.map import GenericMap, Map

from sunpy_nn.batch import _check_errors, _source_name, run_batch
from sunpy_nn.enhance._checks import detect_kind
from sunpy_nn.enhance._core import _enhance_one
from sunpy_nn.enhance._models import load_enhance_model
from sunpy_nn.nn import resolve_device


# ---------------------------------------------------------------------------------------------------------- batch
def _output_name(item, index: int) -> str:
    """File name of an enhanced map written to ``output_dir``: the input's name, or the map's position and date."""
    if isinstance(item, str | Path):
        name = Path(item).name
        for suffix in (".gz", ".fz", ".fits", ".fts", ".fit"):
            name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
        return f"{name}_enhanced.fits"
    date = getattr(item, "date", None)
    stamp = date.strftime("%Y%m%d_%H%M%S") if date is not None else "nodate"
    return f"map{index:05d}_{stamp}_enhanced.fits"


@dataclass
class _EnhanceTask:
    """
    The Enhance worker task: one map (a file or a Map) in, the enhanced Map (or the file written) out.

    Handed to `sunpy_nn.batch.run_batch`, which sends it once to each worker (with the network when ``weights`` is
    one); the worker loads the model once, from the one model cache of this module.
    """

    kind: str | None
    weights: object
    device: str | None
    tile_size: int | None
    normalisation: str
    output_dir: str | None
    overwrite: bool
    precision: str | None = "float32"
    compile: bool = False

    def __call__(self, item, index: int):
        smap = Map(item) if isinstance(item, str | Path) else item
        if not isinstance(smap, GenericMap):
            raise TypeError(f"{_source_name(item, index)} is not one 2-D map but {type(smap).__name__}")
        kind = self.kind or detect_kind(smap)
        model, info = load_enhance_model(self.weights, kind)
        out = _enhance_one(
            smap,
            kind,
            model,
            info,
            resolve_device(self.device),
            self.tile_size,
            self.normalisation,
            False,
            self.precision,
            self.compile,
            kind_given=self.kind is not None,
        )
        if self.output_dir is None:
            return out
        path = Path(self.output_dir) / _output_name(item, index)
        out.save(path, overwrite=self.overwrite)
        return str(path)


def enhance_batch(
    items: Sequence,
    *,
    kind=None,
    weights=None,
    device=None,
    tile_size=None,
    normalisation="auto",
    scheduler=None,
    num_workers: int | None = None,
    output_dir=None,
    overwrite: bool = False,
    errors: str = "raise",
    precision: str | None = "float32",
    compile: bool = False,
    progress: bool = True,
) -> list:
    """
    Enhance many maps (files or Maps) serially or on dask; the engine behind `~sunpy_nn.enhance_map` for lists.

    Returns the results in input order: Maps, or the paths written when ``output_dir`` is given. See
    `~sunpy_nn.enhance_map` for the parameters; `sunpy_nn.batch.run_batch` runs the maps.
    """
    _check_errors(errors)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    task = _EnhanceTask(
        kind,
        weights,
        None if device is None else str(device),
        tile_size,
        normalisation,
        None if output_dir is None else str(output_dir),
        overwrite,
        precision,
        compile,
    )
    return run_batch(
        items,
        task,
        scheduler=scheduler,
        num_workers=num_workers,
        errors=errors,
        progress=progress,
        desc="enhance_map",
        unit="map",
        stacklevel=3,
    )
