"""
`enhance_map`, the Map-level entry point of Enhance: one map, a `~sunpy.map.MapSequence` or a list of files.

Private to `sunpy_nn.enhance`, which re-exports `enhance_map` (also `sunpy_nn.enhance_map`) and `enhance_batch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sunpy.map import GenericMap, MapSequence
from torch import nn

from sunpy_nn.enhance._batch import _enhance_maps
from sunpy_nn.enhance._checks import KINDS, detect_kind
from sunpy_nn.enhance._core import _enhance_one, _Options
from sunpy_nn.enhance._models import _load, _resolve


def enhance_map(
    smap: GenericMap | MapSequence | list,
    *,
    kind: str | None = None,
    weights: str | Path | nn.Module | None = None,
    device: str | torch.device | None = None,
    tile_size: int | None = None,
    normalisation: str = "auto",
    scheduler=None,
    num_workers: int | None = None,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
    errors: str = "raise",
    precision: str | None = "float32",
    compile: bool = False,
    progress: bool = True,
) -> GenericMap | MapSequence | list:
    """
    Deconvolve and super-resolve an SDO/HMI map by a factor of two with Enhance.

    Enhance (Diaz Baso & Asensio Ramos 2018) is a convolutional network that undoes HMI's point spread function
    and samples the result on pixels half as big: it returns the image HMI would see with a telescope twice its
    size. The paper trained it on a magnetohydrodynamic (MURaM) simulation degraded with HMI's point spread
    function. The weights this package ships were trained by sunpy_nn under a randomised HMI degradation (PSF,
    detector sampling, noise): the default continuum weights (``enhance_intensity``, version 2) on real
    high-resolution frames (SST/CRISP, Sunrise/IMaX) and a MURaM quiet-Sun snapshot; the default magnetogram
    weights (``enhance_blos``, version 2) on one GST/NIRIS magnetogram and on synthetic magnetograms from
    `sunpy_nn.data.synthetic.synthetic_blos`, the generator on which the version-1 magnetogram weights were
    trained alone. Each model card says what its weights were trained on (`sunpy_nn.data.model_card`).

    Parameters
    ----------
    smap : `~sunpy.map.GenericMap` or `~sunpy.map.MapSequence`
        An HMI continuum image or line-of-sight magnetogram at (about) 0.504 arcsec/pix: a full disk, a
        cut-out, a submap or a SHARP, stored either way round (a mirrored map, e.g. with ``CDELT1 < 0``, gives
        exactly the result of the unmirrored one, mirrored). Off-disk and other missing pixels are NaN (or
        masked); off-disk pixels stored as 0 are recognised as missing too and stay 0.
    kind : {"intensity", "blos"}, optional
        Data kind. By default it comes from the metadata (HMI ``CONTENT``, the measurement, ``BUNIT``); giving it
        overrides the refusal of non-photospheric maps and of continuum-like magnetograms.
    weights : str, path or `~sunpy_nn.nn.EnhanceNet`, optional
        A registered model name, a ``.pt`` weight file, an original Keras ``.h5`` Enhance file, or a network.
        By default the registered model ``enhance_<kind>``.
    device : {"cpu", "cuda", None}, optional
        Where the network runs; `None` picks a GPU when there is one.
    tile_size : int, optional
        Tile edge in input pixels (halo included). Larger tiles are a little faster and use more memory; the
        result does not depend on it. Below `~sunpy_nn.nn.runner.smallest_tile` (53 px for the paper's network) it is
        raised to that.
    normalisation : {"auto", "quiet_sun", "limb_darkening", "none"}
        How continuum images are brought to I/Ic (see `sunpy_nn.enhance.normalise`); magnetograms are always
        converted from Gauss to kG. The normalisation is undone on output.
    scheduler : {None, "threads", "processes", "synchronous", "distributed"} or `distributed.Client`
        For many maps: what runs them. `None` (default) uses the active `distributed.Client` if there is one
        (``Client.current()``), else processes the maps one after the other in this process. Each worker loads
        the model once; each map is one task.
    num_workers : int, optional
        Workers of the ``"threads"`` and ``"processes"`` schedulers (default: one per core).
    output_dir : str or `~pathlib.Path`, optional
        For many maps: write each result to ``output_dir/<input name>_enhanced.fits`` on the worker and return
        the paths, so that the results never all sit in this process's memory. Refused for a single map.
    overwrite : bool
        Replace existing files in ``output_dir``.
    errors : {"raise", "warn"}
        For many maps: a map that fails (unreadable file, bad data) never stops the others. ``"raise"`` raises a
        `~sunpy_nn.batch.BatchError` after all maps are done, listing each failure and holding the
        successful results; ``"warn"`` warns for each failure and returns the successful results.
    precision : {"float32", "bfloat16", "auto", None}
        Arithmetic of the network (see :ref:`sunpy_nn-performance`). ``"float32"`` (default) runs an optimised
        copy (batch normalisation folded into the convolutions, sub-pixel up-sampling, channels-last), equal to
        the plain network to about 1e-6 of the data range; ``"bfloat16"`` is faster where the hardware supports
        it but less accurate; ``"auto"`` uses bfloat16 only where it is native and within 1e-3 of float32 on a
        probe; `None` runs the network exactly as defined.
    compile : bool
        Compile the network with `torch.compile` (where that fails, a warning is logged and it runs uncompiled).
    progress : bool
        Show progress bars (tiles of a full disk, maps of a sequence).

    Returns
    -------
    `~sunpy.map.GenericMap`, `~sunpy.map.MapSequence` or list
        A new map of the input's class with twice the pixels along each axis, in the input's unit and level.
        A `~sunpy.map.MapSequence` gives a `~sunpy.map.MapSequence`, a list of files or maps gives a list of
        maps; with ``output_dir``, a list of the files written.
        ``CDELT`` (and ``CD``) are halved, ``CRPIX' = 2 CRPIX - 0.5``, ``PC`` and ``CRVAL`` unchanged, so every
        pixel edge stays at the same place on the Sun. Missing pixels stay NaN (off-disk zeros stay 0), and
        the integer-only keywords ``BLANK``, ``BZERO`` and ``BSCALE`` are dropped. Provenance is recorded once
        in ``HISTORY``, as the record every sunpy_nn result has (`sunpy_nn.header.provenance`: lines
        ``sunpy_nn key: value`` with the software version, the method, the model's name and SHA-256, the kind and
        the normalisation), and in the machine-readable keywords ``SNNVERS``, ``SNNMODEL``, ``SNNSHA`` (SHA-256 of
        the weights), ``SNNKIND`` and ``SNNNORM``. The input is not modified. A map whose data is a dask array is
        computed (its normalisation needs the whole disk): the result is in memory; for a lazy result of a large
        image, normalise it and use `sunpy_nn.enhance.enhance_array` on the dask array.

    Raises
    ------
    TypeError
        ``smap`` is neither a map, a `~sunpy.map.MapSequence` nor a list (one file path must be given in a list), or
        its data are not real numbers (complex, for example).
    ValueError
        An empty sequence of maps; an unknown ``kind``, ``normalisation``, ``precision``, ``errors`` or
        ``scheduler``; ``num_workers`` below 1; ``output_dir`` with a single map. Data that
        are not 2-D, all NaN, contain infinities, are smaller than 8 x 8 pixels, have the wrong unit for their kind,
        or whose kind cannot be determined. A map observed outside the visible and near infrared
        (`~sunpy_nn.enhance.PHOTOSPHERIC_WAVELENGTHS`: an AIA EUV image, for example) unless ``kind`` is given.
        Values implausible for the kind, checked before the network runs: a "continuum image" with more than
        5 % negative pixels (`~sunpy_nn.enhance.MAX_NEGATIVE_FRACTION`; it looks like a magnetogram), a
        magnetogram whose 99.9th percentile of abs(B) exceeds 10 kG after unit conversion
        (`~sunpy_nn.enhance.MAX_FIELD`; the unit is wrong), or, unless ``kind="blos"`` is given, a "magnetogram"
        without negative pixels whose values cluster more than five robust standard deviations above 0 (it
        looks like a continuum image).
    sunpy_nn.utils.WeightsError
        No weights (also for an unknown ``kind`` when ``weights`` is not given), or weights that are corrupt or do
        not fit the network.
    sunpy_nn.batch.BatchError
        For many maps with ``errors="raise"``: raised after all maps are done when any failed; it lists each
        failure (with the exception that a single map would have raised) and holds the successful results.
    RuntimeError
        ``device="cuda"`` where torch sees no CUDA GPU.

    Warns
    -----
    sunpy_nn.utils.SunpyNNUserWarning
        For non-HMI data, maps observed outside the photosphere's wavelengths (with an explicit ``kind``), pixel
        scales more than 10 % from 0.504 arcsec/pix (resample first), a magnetogram weaker than HMI's noise
        almost everywhere (`~sunpy_nn.enhance.MIN_FIELD`: a wrong unit, e.g. kG labelled G), a continuum-like
        magnetogram given with ``kind="blos"``, and pixels stored as exactly 0 off the disk (or anywhere in a
        continuum image): they are treated as missing data and returned as 0.

    Notes
    -----
    The network is trustworthy on disk away from the limb. Near the limb (low contrast, foreshortening) it is
    known to create artefacts.

    References
    ----------
    - Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
      doi:10.1051/0004-6361/201731344: the method, which inverts the image formation model of their Eq. (1)
      (HMI's PSF of their Eq. 6, the sampling to 0.504 arcsec/pix, noise) towards the image of a 28 cm telescope
      sampled at half HMI's pixel; the network; the units it works in (continuum intensity over the quiet Sun's,
      the line-of-sight field in kG).
    - Cheung, M. C. M., Rempel, M., Title, A. M., & Schussler, M. 2010, "Simulation of the Formation of a Solar
      Active Region", ApJ, 720, 233: the MURaM simulation the paper trained on.

    Examples
    --------
    >>> import sunpy.map, sunpy.data.test
    >>> from sunpy_nn import enhance_map
    >>> from sunpy_nn.nn import EnhanceNet
    >>> hmi = sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))
    >>> net = EnhanceNet(depth=1, n_filters=8)  # an untrained network, for illustration only
    >>> import warnings
    >>> with warnings.catch_warnings():  # this test map is 20 arcsec/pix, not HMI's 0.504: enhance_map warns
    ...     warnings.simplefilter("ignore")
    ...     big = enhance_map(hmi, weights=net, progress=False)
    >>> big.data.shape, type(big).__name__, big.meta["snnkind"]
    ((200, 200), 'HMIMap', 'intensity')
    """
    if kind is not None and kind not in KINDS:  # before the weights are looked up for it
        raise ValueError(
            f"kind must be one of {KINDS} (a continuum image is 'intensity', a line-of-sight magnetogram 'blos'), "
            f"not {kind!r}"
        )
    options = _Options(kind, device, tile_size, normalisation, precision, compile)
    _check_batch_options(scheduler, num_workers, errors)
    if isinstance(smap, MapSequence | list | tuple):
        if len(smap) == 0:
            raise ValueError("enhance_map got an empty sequence of maps")
        out = _enhance_maps(
            list(smap),
            weights,
            options,
            scheduler=scheduler,
            num_workers=num_workers,
            output_dir=output_dir,
            overwrite=overwrite,
            errors=errors,
            progress=progress,
        )
        return MapSequence(out) if isinstance(smap, MapSequence) and output_dir is None and out else out
    if isinstance(smap, str | Path):
        raise TypeError(
            f"enhance_map takes a sunpy Map, a MapSequence or a list of files, not one file path: pass "
            f"sunpy.map.Map({str(smap)!r}) for one map, or [{str(smap)!r}] for a batch of one"
        )
    if not isinstance(smap, GenericMap):
        raise TypeError(f"enhance_map needs a sunpy Map or MapSequence, not {type(smap).__name__}")
    if output_dir is not None:  # silently returning a map where a file was asked for would lose the result
        raise ValueError(
            "output_dir is for many maps (a list of files or maps, or a MapSequence); for one map, save the result "
            "yourself: enhance_map(smap).save(path), or pass [smap] to get the file written"
        )
    kind = kind or detect_kind(smap)
    model, info = _load(_resolve(weights, kind))  # the cache's own network (load_enhance_model hands out copies)
    return _enhance_one(smap, kind, model, info, options, progress)


def _check_batch_options(scheduler, num_workers: int | None, errors: str) -> None:
    """The options of many maps are checked for one map too: a typo must not pass until the first list."""
    from sunpy_nn.batch import _check_errors, resolve_scheduler

    _check_errors(errors)
    resolve_scheduler(scheduler)  # the batch runner's own check of the name (and of a client for "distributed")
    if num_workers is not None and int(num_workers) < 1:
        raise ValueError(f"num_workers must be a positive number of workers, not {num_workers!r}")


def enhance_batch(items: Sequence, **options: Any) -> list:
    """
    Enhance many maps (files or Maps): `enhance_map` of a list, as a list.

    Importable from `sunpy_nn.parallel`, where it was before; the keyword arguments are those of `enhance_map`
    (written there once).

    Parameters
    ----------
    items : sequence of `~sunpy.map.GenericMap`, str or `~pathlib.Path`
        The maps, or their files.
    **options
        The keyword arguments of `enhance_map`.

    Returns
    -------
    list
        The enhanced maps (`~sunpy.map.GenericMap`, each with twice the pixels of its input along each axis, in its
        unit) in input order, or the files written (str) when ``output_dir`` is given.

    Raises
    ------
    ValueError, TypeError, sunpy_nn.utils.WeightsError, sunpy_nn.batch.BatchError
        As `enhance_map`; an empty ``items`` gives an empty list.

    References
    ----------
    Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
    doi:10.1051/0004-6361/201731344: the method (see `enhance_map`).
    """
    items = list(items)
    return enhance_map(items, **options) if items else []
