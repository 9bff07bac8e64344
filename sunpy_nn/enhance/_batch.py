"""
Enhance over many maps: the weights resolved once, and the worker task handed to `sunpy_nn.batch.run_batch`.

Private to `sunpy_nn.enhance`: `enhance_map` runs a list of maps through ``_enhance_maps``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sunpy.map import GenericMap, Map
from torch import nn

from sunpy_nn.batch import _check_errors, _source_name, run_batch
from sunpy_nn.enhance._checks import KINDS, detect_kind
from sunpy_nn.enhance._core import _enhance_one, _Options
from sunpy_nn.enhance._models import _load, _resolve


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


def _resolve_kinds(weights: str | Path | nn.Module | None, kind: str | None) -> dict:
    """
    ``weights=`` resolved once for a whole batch: for the given kind, or for each of `KINDS` when every map's own
    kind is detected (``weights=None`` means a registered model per kind).

    A kind whose weights cannot be resolved maps to the error, raised for the maps of that kind only (as when each
    map resolved its own), so that a batch of continuum images runs where no magnetogram model is installed.
    """
    resolved: dict = {}
    for k in (kind,) if kind is not None else KINDS:
        try:
            resolved[k] = _resolve(weights, k)
        except Exception as exc:  # each map that needs these weights fails with it
            resolved[k] = exc
    return resolved


@dataclass
class _EnhanceTask:
    """
    The Enhance worker task: one map (a file or a Map) in, the enhanced Map (or the file written) out.

    Handed to `sunpy_nn.batch.run_batch`, which sends it once to each worker (with the network when ``weights`` is
    one). The weights were resolved once for the batch (``weights``: kind -> `._models._Weights`, or the error that
    resolving them raised); the worker loads each network once, into the one model cache of `sunpy_nn.enhance`, and
    finds it there for every later map without looking up the registry or the file again.
    """

    options: _Options
    weights: dict
    output_dir: str | None = None
    overwrite: bool = False

    def __call__(self, item, index: int):
        path = None if self.output_dir is None else Path(self.output_dir) / _output_name(item, index)
        if path is not None and path.exists() and not self.overwrite:  # before reading and enhancing, not after
            raise FileExistsError(f"{path} exists: pass overwrite=True to replace it")
        smap = Map(item) if isinstance(item, str | Path) else item
        if not isinstance(smap, GenericMap):
            raise TypeError(f"{_source_name(item, index)} is not one 2-D map but {type(smap).__name__}")
        kind = self.options.kind or detect_kind(smap)
        weights = self.weights[kind]
        if isinstance(weights, Exception):
            raise weights.with_traceback(None)  # a fresh traceback for each map that meets it
        model, info = _load(weights)
        out = _enhance_one(smap, kind, model, info, self.options, False)
        if path is None:
            return out
        out.save(path, overwrite=self.overwrite)
        return str(path)


def _enhance_maps(
    items: list,
    weights: str | Path | nn.Module | None,
    options: _Options,
    *,
    scheduler,
    num_workers: int | None,
    output_dir: str | Path | None,
    overwrite: bool,
    errors: str,
    progress: bool,
) -> list:
    """
    Enhance many maps (files or Maps) serially or on dask: `enhance_map` of a list.

    Returns the results in input order: Maps, or the paths written when ``output_dir`` is given. The weights are
    resolved here, once; `sunpy_nn.batch.run_batch` runs the maps.
    """
    _check_errors(errors)  # before output_dir is created: nothing is made for a call that is refused
    if output_dir is not None:
        # Inputs with the same file name (a/hmi.fits, b/hmi.fits, x.fits and x.fits.gz) would write one file, the
        # last map's, under both names: refused before any work.
        names: dict[str, list] = {}
        for i, item in enumerate(items):
            names.setdefault(_output_name(item, i), []).append(str(item) if isinstance(item, str | Path) else i)
        clashes = {name: given for name, given in names.items() if len(given) > 1}
        if clashes:
            raise ValueError(
                f"These inputs would be written to the same file in {output_dir}: {clashes}. Give them different "
                "file names, or enhance them in separate calls with different output_dir"
            )
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    if options.device is not None:
        options = replace(options, device=str(options.device))  # a worker builds its own torch.device
    task = _EnhanceTask(
        options, _resolve_kinds(weights, options.kind), None if output_dir is None else str(output_dir), overwrite
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
