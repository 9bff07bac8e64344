"""
Enhance on a numpy (or dask) array in network units, and on one map: `enhance_array` and ``_enhance_one``.

Private to `sunpy_nn.enhance`, which re-exports `enhance_array`; `enhance_map` and the batch task both run
``_enhance_one``.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sunpy.map import GenericMap
from torch import nn

from sunpy_nn.data.registry import ModelInfo
from sunpy_nn.enhance._checks import KINDS, MIN_SIZE, _check_map, _check_values, detect_kind
from sunpy_nn.enhance._normalise import (
    _apply_profile,
    _mirrored_axis,
    check_normalisation,
    normalise,
)
from sunpy_nn.header import _off_disk_zeros, _update_stats, provenance, superres_meta
from sunpy_nn.nn import PRECISIONS, resolve_device, run_tiled
from sunpy_nn.nn.lazy import is_dask, lazy_tiled
from sunpy_nn.nn.runner import _workspace_bytes
from sunpy_nn.utils import SunpyNNUserWarning, WeightsError, fill_depth, fill_nearest, upsample_nearest

# What Enhance does, as its results' provenance records it.
_METHOD = "Enhance (Diaz Baso & Asensio Ramos 2018)"


# ---------------------------------------------------------------------------------------------------------- array
def enhance_array(
    image: np.ndarray,
    model: nn.Module,
    *,
    device: str | torch.device | None = None,
    tile_size: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    precision: str | None = "float32",
    compile: bool = False,
) -> np.ndarray:
    """
    Run Enhance on a plain array already in network units (I/Ic, or kG); numpy in, numpy out.

    NaN pixels are filled with the nearest valid value for the network and set back to NaN (all four pixels
    of their 2 x 2 block) in the output. Because the fill comes from valid neighbours, nothing invalid can reach a
    valid output pixel.

    Parameters
    ----------
    image : `numpy.ndarray` or `dask.array.Array`
        2-D image ``(ny, nx)`` of real numbers in the network's units: continuum intensity over the quiet-Sun level
        (I/Ic, dimensionless) for a continuum network, the line-of-sight field in kG for a magnetogram network;
        NaN where missing; at least 8 x 8 pixels, sampled at (about) HMI's 0.504 arcsec/pix. A dask array gives a
        lazy dask array, computed block by block with overlap (equal to the in-memory result).
    model : `torch.nn.Module`
        An `~sunpy_nn.nn.EnhanceNet` (see `load_enhance_model`).
    device : str or `torch.device`, optional
        ``"cpu"``, ``"cuda"``, or `None` for the best available (as `~sunpy_nn.nn.run_tiled`).
    tile_size : int, optional
        Tile edge in input pixels, halo included (as `~sunpy_nn.nn.run_tiled`); the result does not depend on it.
    batch_size : int, optional
        Tiles per forward pass (as `~sunpy_nn.nn.run_tiled`).
    progress : bool
        Show a progress bar over tiles.
    precision : {"float32", "bfloat16", "auto", None}
        Arithmetic of the network, as for `~sunpy_nn.enhance_map` and `~sunpy_nn.nn.run_tiled`.
    compile : bool
        Compile the network with `torch.compile` (where that fails, a warning is logged and it runs uncompiled).

    Returns
    -------
    `numpy.ndarray` or `dask.array.Array`
        Float32 image ``(2 ny, 2 nx)`` in the units of ``image``, at half its pixel size; all four output pixels of a
        missing input pixel are NaN. Lazy (dask) for a dask ``image``.

    Raises
    ------
    ValueError
        ``image`` is not 2-D, is smaller than 8 x 8 pixels, holds infinities or only NaN; an unknown
        ``precision``.
    TypeError
        ``image`` does not hold real numbers (e.g. complex or object data).
    RuntimeError
        ``device="cuda"`` where torch sees no CUDA GPU.

    References
    ----------
    Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
    doi:10.1051/0004-6361/201731344: the network and what it inverts (the image formation model of their Eq. 1,
    with HMI's PSF of their Eq. 6), and its units (I/Ic for continuum images, kG for magnetograms).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.nn import EnhanceNet
    >>> from sunpy_nn.enhance import enhance_array
    >>> img = np.ones((32, 40)); img[:5, :5] = np.nan
    >>> out = enhance_array(img, EnhanceNet(depth=1, n_filters=8), progress=False)
    >>> out.shape, bool(np.isnan(out[:10, :10]).all()), bool(np.isfinite(out[10:]).all())
    ((64, 80), True, True)
    """
    # How the network runs, written once: for run_tiled here and for each block of a dask image.
    run = {
        "device": device,
        "tile_size": tile_size,
        "batch_size": batch_size,
        "precision": precision,
        "compile": compile,
    }
    if is_dask(image):
        return _enhance_lazy(image, model, run)
    data = np.asarray(image)
    if data.ndim != 2:
        raise ValueError(f"Enhance works on 2-D images; got {data.ndim}-D data of shape {data.shape}")
    if min(data.shape) < MIN_SIZE:
        raise ValueError(
            f"The image is {data.shape[0]}x{data.shape[1]} px; Enhance needs at least {MIN_SIZE}x{MIN_SIZE} "
            "(its receptive field is 27 px across). Use a larger cut-out."
        )
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise TypeError(f"Enhance needs real numbers; got dtype {data.dtype}")
    data = data.astype(np.float32)  # a copy: integer data become float, the caller's array is untouched
    if np.isinf(data).any():
        raise ValueError(
            f"The image has {int(np.isinf(data).sum())} infinite pixels. Replace them with NaN to mark them "
            "as missing (np.where(np.isinf(a), np.nan, a))."
        )
    missing = np.isnan(data)
    if missing.all():
        raise ValueError("The image is all NaN: there is nothing to enhance")
    data = fill_nearest(data, missing)
    radius = getattr(model, "receptive_radius", 16)
    out = run_tiled(
        model,
        data,
        valid=~missing if missing.any() else None,  # tiles wholly off the disk are not computed
        scale=2,
        halo=radius,
        progress=progress,
        desc="Enhance",
        **run,
    )
    if missing.any():
        out[upsample_nearest(missing)] = np.nan
    return out


def _enhance_lazy(image, model: nn.Module, run: dict):
    """Enhance of a dask image: block by block, each block extended by `fill_depth` of the receptive radius
    (``run``: how the network runs, the keyword arguments of `enhance_array`)."""
    if image.ndim != 2:
        raise ValueError(f"Enhance works on 2-D images; got {image.ndim}-D data of shape {image.shape}")
    if min(image.shape) < MIN_SIZE:
        raise ValueError(f"The image is {image.shape[0]}x{image.shape[1]} px; Enhance needs at least {MIN_SIZE}")
    radius = getattr(model, "receptive_radius", 16)

    def block(b: np.ndarray) -> np.ndarray:
        if np.isnan(b).all():  # off the disk: nothing to compute
            return np.full((2 * b.shape[0], 2 * b.shape[1]), np.nan, np.float32)
        return enhance_array(b, model, progress=False, **run)

    def workspace(h: int, w: int) -> int:  # what a block holds while it runs: the cut stays within the memory
        optimised = run["precision"] is not None or run["compile"]
        settings = {k: run[k] for k in ("tile_size", "batch_size", "device")}
        return _workspace_bytes(model, (h, w), scale=2, optimised=optimised, **settings)

    # Missing pixels are filled from their nearest valid pixel: a block reaches far enough for the fill, and so the
    # output, to match in memory (`fill_depth`, 2.4 radii). The same values for any blocks, so cut to fill the CPUs.
    return lazy_tiled(image, block, depth=fill_depth(radius), scale=2, fill_cpus=True, workspace=workspace)


# ------------------------------------------------------------------------------------------------------------ map
@dataclass(frozen=True)
class _Options:
    """
    How each map is enhanced: the arguments of `enhance_map` that reach one map, written once.

    Built by `enhance_map` for one map and handed, inside the batch task, to the workers for many.
    """

    kind: str | None = None  # as given; None: each map's own, from its metadata
    device: str | torch.device | None = None
    tile_size: int | None = None
    normalisation: str = "auto"
    precision: str | None = "float32"
    compile: bool = False

    def __post_init__(self) -> None:
        """The options checked once, before any map is read (a batch's typo found after normalising every map)."""
        check_normalisation(self.normalisation)
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be None or one of {PRECISIONS}, not {self.precision!r}")
        if self.device is not None:  # parsed only: a batch's workers may have the GPU its client lacks
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError, ValueError) as exc:
                raise ValueError(f"device must be None, 'cpu', 'cuda' or 'cuda:N', not {self.device!r}") from exc


def _enhance_one(
    smap: GenericMap, kind: str, model: nn.Module, info: ModelInfo, options: _Options, progress: bool
) -> GenericMap:
    """Enhance one map of ``kind`` (given, or detected by the caller to choose ``model``) with its network."""
    device = resolve_device(options.device)
    _check_map(smap)
    kind_given = options.kind is not None and kind is not None
    kind = kind or detect_kind(smap)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    trained_for = info.card.get("kind")  # the model card's data kind (files without one: not checked)
    if trained_for is not None and trained_for != kind:
        raise WeightsError(
            f"The weights {info.name} were trained on {trained_for!r} data, and this map is {kind!r}: pass weights "
            f"for {kind!r} (weights=None takes the registered enhance_{kind}), or kind= if the map's kind was "
            "detected wrongly"
        )
    data = np.array(smap.data, dtype=np.float64)  # a copy; integers become float
    if smap.mask is not None and np.any(smap.mask):
        data[np.asarray(smap.mask, bool)] = np.nan
    if np.isinf(data).any():
        raise ValueError(
            f"The map has {int(np.isinf(data).sum())} infinite pixels. Replace them with NaN to mark them as "
            "missing: sunpy.map.Map(np.where(np.isinf(m.data), np.nan, m.data), m.meta)."
        )
    if np.isnan(data).all():
        raise ValueError("The map is all NaN: there is nothing to enhance")
    zeros = _off_disk_zeros(smap, data, kind)
    if zeros is not None:
        where = "in this continuum image" if kind == "intensity" else "off the solar disk"
        warnings.warn(
            f"{int(zeros.sum())} pixels are exactly 0 {where}: they are taken as missing data (off-limb or not "
            "observed), not passed to the network as intensities or fields, and returned as 0. Mark missing pixels "
            "with NaN to silence this warning.",
            SunpyNNUserWarning,
            stacklevel=3,
        )
        data[zeros] = np.nan
        if np.isnan(data).all():
            raise ValueError("The map has no valid pixel (all NaN or off-disk zeros): there is nothing to enhance")
    _check_values(data, kind, smap.unit, kind_given)
    norm = normalise(smap, data, kind, options.normalisation)
    if norm.coeffs is not None:
        ny, nx = data.shape
        data /= norm.scale * norm.profile(np.arange(nx)[None, :], np.arange(ny)[:, None])
    else:
        data /= norm.scale
    # A mirrored map (e.g. CDELT1 < 0) is shown to the network the standard way round, so that it gives exactly
    # the result of the unmirrored map, mirrored back.
    flip = _mirrored_axis(smap)
    out = enhance_array(
        data if flip is None else np.flip(data, axis=flip),
        model,
        device=device,
        tile_size=options.tile_size,
        progress=progress,
        precision=options.precision,
        compile=options.compile,
    )
    if flip is not None:
        out = np.ascontiguousarray(np.flip(out, axis=flip))
    _apply_profile(out, norm, 2.0)
    if np.issubdtype(smap.data.dtype, np.floating) and smap.data.dtype.itemsize > 4:
        out = out.astype(smap.data.dtype)
    if zeros is not None:
        out[upsample_nearest(zeros)] = 0

    from sunpy_nn import __version__

    meta = superres_meta(smap, 2)
    _update_stats(meta, out)
    settings = {"kind": kind, "normalisation": norm.describe()}
    if zeros is not None:
        settings["zero_pixels_kept_as_missing"] = int(zeros.sum())
    # HISTORY says it once: the record every sunpy_nn result has (software, method, model and SHA-256, settings),
    # as readable lines, since Map.save writes the meta as a FITS header. The SNN* keywords below are the
    # machine-readable record documented for Enhance (docs/guide/enhance.rst, docs/citing.rst).
    provenance(meta, method=_METHOD, model_info=info, settings=settings, history=True)
    meta["snnvers"] = __version__
    meta["snnmodel"] = info.name
    meta["snnsha"] = info.sha256 or "none"
    meta["snnkind"] = kind
    meta["snnnorm"] = norm.method
    comments = dict(meta.get("keycomments", {}))
    comments.pop("SNNSHA", None)  # a 64-character value leaves no room for a comment: saving warned and cut it to "S"
    comments.update(
        SNNVERS="sunpy_nn version that enhanced the data",
        SNNMODEL="Enhance model name",
        SNNKIND="Enhance data kind",
        SNNNORM="normalisation applied for the network",
    )
    meta["keycomments"] = comments
    mask = None
    if smap.mask is not None:
        mask = upsample_nearest(np.asarray(smap.mask, bool))
    return smap._new_instance(out, meta, plot_settings=copy.deepcopy(smap.plot_settings), mask=mask)
