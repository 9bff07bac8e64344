"""
Training Enhance on high-resolution images: the HMI degradation pipeline and the supervised training loop.

Pairs follow the paper (Diaz Baso & Asensio Ramos 2018): the input is the high-resolution image convolved with
HMI's PSF, resampled to 0.504 arcsec/pix, with Gaussian noise; the target is the same image convolved with the
Airy pattern of a 28 cm telescope and resampled to half HMI's pixel.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sunpy_nn.nn import EnhanceNet, resolve_device
from sunpy_nn.nn.device import apply_thread_policy
from sunpy_nn.nn.heap import keep_freed_memory
from sunpy_nn.psf import (
    HMI_PIXEL_SCALE_ARCSEC,
    _arcsec,
    _fft_convolve_periodic,
    _sandwich,
    airy_psf,
    hmi_psf,
    rebin_matrix,
)
from sunpy_nn.training._enhance_run import (
    _recalibrate_batchnorm,
    check_finite,
    check_settings,
    read_checkpoint,
    recipe_of,
)
from sunpy_nn.training.degradation import PAPER_NOISE, DegradationModel, EnhancePairs, make_source_pairs
from sunpy_nn.training.noise2noise import _fused_adam
from sunpy_nn.training.sources import TrainingSource

__all__ = ["EnhancePairs", "make_enhance_pairs", "train_enhance"]

log = logging.getLogger(__name__)

#: The paper's L2 weight regularisation per kind.
PAPER_L2 = {"intensity": 1e-6, "blos": 1e-5}


def _as_images(images, pixel_scale, kind: str) -> list[tuple[np.ndarray, float]]:
    """
    Accept an array, a Map, or a list of them; return (float64 image in network units, arcsec/pix) pairs.

    A magnetogram Map with a magnetic unit is converted to kG, the unit `enhance_map` feeds the network (1 kG in the
    map's unit as divisor), so a network trained on a Map in G sees what it will see at inference.
    """
    from sunpy.map import GenericMap

    if isinstance(images, (np.ndarray, GenericMap)):
        images = [images]
    out = []
    for img in images:
        if isinstance(img, GenericMap):
            # Signed CDELT: a mirrored map has the same pixel size (issue 13, class 1).
            scale = abs(float(u.Quantity(img.scale[0]).to_value(u.arcsec / u.pix)))
            data = np.asarray(img.data, dtype=np.float64)
            if kind == "blos" and img.unit is not None and img.unit.is_equivalent(u.G):
                data = data / (1 * u.kG).to_value(img.unit)
            elif kind == "blos" and img.unit not in (None, u.dimensionless_unscaled):
                raise ValueError(f"a magnetogram Map for training must be in a magnetic unit (G, kG), not {img.unit}")
            elif kind == "intensity" and img.unit is not None and img.unit.is_equivalent(u.G):
                raise ValueError(f"kind='intensity' but a training Map is in {img.unit}, a magnetic field: kind='blos'")
        else:
            if pixel_scale is None:
                raise ValueError("pixel_scale= is needed for plain arrays (e.g. 0.0662 * u.arcsec / u.pix for MURaM)")
            scale = _arcsec(u.Quantity(pixel_scale) * u.pix if hasattr(pixel_scale, "unit") else pixel_scale)
            data = np.asarray(img, dtype=np.float64)
        if data.ndim != 2:
            raise ValueError(f"training images must be 2-D, got shape {data.shape}")
        if not np.isfinite(data).all():
            raise ValueError("training images must be finite (no NaN/inf): crop or fill them first")
        out.append((data, scale))
    return out


def make_enhance_pairs(
    images,
    *,
    pixel_scale=None,
    kind: str,
    n_patches: int,
    input_size: int = 50,
    scale_in=HMI_PIXEL_SCALE_ARCSEC,
    noise: float | None = None,
    region: tuple[float, float] = (0.0, 1.0),
    guard: bool = True,
    augment: bool = True,
    intensity_range: tuple[float, float] | None = None,
    intensity_fraction: float = 0.5,
    hmi_psf_modified: bool = True,
    target_diameter=28 * u.cm,
    wavelength=6173 * u.AA,
    seed: int | None = None,
) -> EnhancePairs:
    """
    Build Enhance training pairs from high-resolution images.

    Each image is convolved once with HMI's PSF (`~sunpy_nn.psf.hmi_psf`) and once with the Airy pattern of a
    ``target_diameter`` telescope (periodic boundaries, as for simulation boxes). Each patch then gets a random
    position and a random sub-pixel sampling phase, and is resampled flux-conservingly to ``scale_in``
    (input, ``input_size`` pixels) and to ``scale_in / 2`` (target, twice as many pixels covering exactly the same
    area). The target pixel is exactly half the input pixel (0.252 arcsec for HMI), rather than the paper's
    rounded 0.25, so input and target cover the same area to the pixel.

    Parameters
    ----------
    images : `numpy.ndarray`, `~sunpy.map.GenericMap`, or list of them
        2-D high-resolution images in network units: continuum normalised to the quiet Sun (I/Ic), magnetograms in
        kG (a magnetogram map in another magnetic unit, e.g. G, is converted to kG). Finite everywhere.
    pixel_scale : `~astropy.units.Quantity` or float
        Their pixel scale (arcsec/pix) when arrays are given; maps use their own.
    kind : {"intensity", "blos"}
        Sets the default noise (1e-3 Ic or 10 G) and, for ``"blos"``, random sign flips.
    n_patches : int
        Number of pairs N.
    input_size : int
        Input patch edge n in pixels of ``scale_in`` (paper: 50); targets are 2n pixels across.
    scale_in : `~astropy.units.Quantity` or float
        Input pixel scale (default HMI's 0.504 arcsec/pix); the targets have half of it.
    noise : float, optional
        Gaussian noise sigma added to the inputs, in network units (default the paper's: 1e-3 Ic, or 0.01 kG).
    region : tuple of float
        Fraction of each image's width ``(x_start, x_stop)`` that patches come from; use complementary regions
        for training and validation.
    guard : bool
        Keep the PSF footprints of the patches inside ``region`` too, so that no pixel outside it influences the
        pairs (use for training pairs next to a held-out validation region).
    augment : bool
        Apply one of the 8 rotations/flips to each pair (and a sign flip for magnetograms).
    intensity_range : tuple of float, optional
        Intensity-range augmentation for continuum: with probability ``intensity_fraction``, a pair is multiplied
        (before the noise) by a factor drawn uniformly from this range, e.g. ``(0.15, 1.0)``. Convolution and
        resampling are linear, so this is exactly the observation of a darker (umbra-like) scene, and teaches a
        quiet-Sun-only training set that the network must work at umbral intensities too.
    intensity_fraction : float
        Fraction of the pairs that ``intensity_range`` scales.
    hmi_psf_modified : bool
        Degrade with the paper's modified HMI PSF (else Wachter et al.'s reference parameters).
    target_diameter : `~astropy.units.Quantity`
        Aperture of the target telescope, a length (paper: 28 cm, twice HMI's).
    wavelength : `~astropy.units.Quantity`
        Wavelength of the target's Airy pattern, a length (6173 A).
    seed : int, optional
        Random seed: the same seed gives the same pairs.

    Returns
    -------
    `EnhancePairs`
        Float32 ``inputs`` (N, 1, n, n) and ``targets`` (N, 1, 2n, 2n) in network units, and the recipe in ``meta``.

    Raises
    ------
    ValueError
        ``kind`` is unknown; ``pixel_scale`` is missing for arrays; a magnetogram map is not in a magnetic unit; an
        image is not 2-D or not finite, or too small for ``input_size`` patches in ``region``.
    astropy.units.UnitsError
        A pixel scale is a quantity that is not an angle (per pixel).

    References
    ----------
    Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
    doi:10.1051/0004-6361/201731344: the training pairs (inputs convolved with the HMI PSF of Eq. 6, resampled to
    0.504 arcsec/pix, with Gaussian noise; targets convolved with the Airy pattern of a 28 cm telescope).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.training import make_enhance_pairs
    >>> img = 1 + 0.1 * np.random.default_rng(0).standard_normal((400, 400))
    >>> pairs = make_enhance_pairs(img, pixel_scale=0.0662, kind="intensity", n_patches=3, input_size=8, seed=0)
    >>> pairs.inputs.shape, pairs.targets.shape, pairs.inputs.dtype
    ((3, 1, 8, 8), (3, 1, 16, 16), dtype('float32'))
    """
    if kind not in PAPER_NOISE:
        raise ValueError(f"kind must be 'intensity' or 'blos', not {kind!r}")
    rng = np.random.default_rng(seed)
    noise = PAPER_NOISE[kind] if noise is None else noise
    s_in = _arcsec(scale_in)
    s_out = s_in / 2
    imgs = _as_images(images, pixel_scale, kind)
    n_t = 2 * input_size
    inputs = np.empty((n_patches, 1, input_size, input_size), np.float32)
    targets = np.empty((n_patches, 1, n_t, n_t), np.float32)
    prepared = []
    for data, scale in imgs:
        psf_h = hmi_psf(scale, modified=hmi_psf_modified)
        # The Airy kernel is cut at the HMI kernel's radius (4.4 arcsec, 8 dark rings at 28 cm, ~98 % of the
        # energy), so the guard band around a held-out region stays narrow.
        psf_a = airy_psf(target_diameter, wavelength, scale, shape=psf_h.shape)
        margin = max(psf_h.shape[0], psf_a.shape[0]) // 2  # keep PSF footprints inside the region
        span = input_size * s_in / scale  # patch width in high-resolution pixels
        ny, nx = data.shape
        # Both sides: with periodic convolution the left edge of an image touches its right edge.
        margin = margin if guard and tuple(region) != (0.0, 1.0) else 0
        x_lo = int(region[0] * nx) + margin
        x_hi = int(region[1] * nx) - margin
        if x_hi - x_lo < span + 2 or ny < span + 2:
            raise ValueError(
                f"A {data.shape} image at {scale} arcsec/pix is too small for {input_size}-pixel patches at "
                f"{s_in} arcsec/pix in region {region}"
            )
        prepared.append(
            (_fft_convolve_periodic(data, psf_h), _fft_convolve_periodic(data, psf_a), scale, span, x_lo, x_hi)
        )
    which = rng.integers(0, len(prepared), n_patches)
    for i in range(n_patches):
        low, high, scale, span, x_lo, x_hi = prepared[which[i]]
        ny = low.shape[0]
        w = math.ceil(span) + 1
        y0 = rng.integers(0, ny - w + 1)
        x0 = rng.integers(x_lo, x_hi - w + 1)
        ph = rng.uniform(0, 1, 2)  # sub-pixel sampling phase
        my_i = rebin_matrix(w, scale, s_in, ph[0], input_size)
        mx_i = rebin_matrix(w, scale, s_in, ph[1], input_size)
        my_t = rebin_matrix(w, scale, s_out, ph[0], n_t)
        mx_t = rebin_matrix(w, scale, s_out, ph[1], n_t)
        inp = _sandwich(my_i, low[y0 : y0 + w, x0 : x0 + w], mx_i)
        tgt = _sandwich(my_t, high[y0 : y0 + w, x0 : x0 + w], mx_t)
        if kind == "intensity" and intensity_range is not None and rng.random() < intensity_fraction:
            c = rng.uniform(*intensity_range)
            inp, tgt = inp * c, tgt * c
        if augment:
            k, flip = rng.integers(0, 4), rng.random() < 0.5
            inp, tgt = np.rot90(inp, k), np.rot90(tgt, k)
            if flip:
                inp, tgt = inp[:, ::-1], tgt[:, ::-1]
            if kind == "blos" and rng.random() < 0.5:
                inp, tgt = -inp, -tgt
        inputs[i, 0] = inp + rng.normal(0, noise, inp.shape)
        targets[i, 0] = tgt
    meta = {
        "kind": kind,
        "n_patches": n_patches,
        "input": f"{input_size}x{input_size} at {s_in} arcsec/pix, HMI PSF "
        f"({'modified' if hmi_psf_modified else 'Wachter 2012'}) + Gaussian noise {noise}",
        "target": f"{n_t}x{n_t} at {s_out} arcsec/pix, Airy PSF of {u.Quantity(target_diameter).to(u.cm)}",
        "region": list(region),
        "guard": guard,
        "augment": augment,
        "intensity_range": list(intensity_range) if intensity_range else None,
        "seed": seed,
    }
    return EnhancePairs(inputs, targets, meta)


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def _l2_penalty(model: nn.Module) -> torch.Tensor:
    # Keras' kernel_regularizer l2(c) adds c * sum(w^2) for convolution kernels only.
    return sum((m.weight**2).sum() for m in model.modules() if isinstance(m, nn.Conv2d))


def train_enhance(
    images=None,
    *,
    pixel_scale=None,
    kind: str,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 1e-4,
    l2: float | None = None,
    schedule: str = "constant",
    n_patches: int = 50_000,
    n_validation: int = 5_000,
    input_size: int = 50,
    validation_size: int = 30,
    validation_region: tuple[float, float] = (0.75, 1.0),
    intensity_range: tuple[float, float] | None = None,
    intensity_fraction: float = 0.5,
    pairs: tuple[EnhancePairs, EnhancePairs] | None = None,
    model: EnhanceNet | None = None,
    depth: int = 5,
    n_filters: int = 64,
    device=None,
    seed: int | None = None,
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    time_limit: float | None = None,
    degradation: DegradationModel | str = "random",
    freeze_batchnorm: bool = False,
    augment: bool = False,
):
    """
    Train an Enhance network on high-resolution images with the paper's recipe.

    Adam, MSE loss, L2 regularisation of the convolution kernels (``1e-6`` for continuum, ``1e-5`` for
    magnetograms, as in the paper), validation loss every epoch on a held-out region, and a checkpoint after
    each epoch from which an interrupted run resumes.

    Parameters
    ----------
    images : array, Map, or list of them
        High-resolution images in network units (I/Ic, or kG). Training pairs come from the part of each image
        outside ``validation_region``, validation pairs from inside it: the two never share pixels.
    pixel_scale : `~astropy.units.Quantity` or float
        Pixel scale of array images (arcsec/pix).
    kind : {"intensity", "blos"}
        Data kind.
    epochs, batch_size, lr : int, int, float
        Training length, batch size, Adam learning rate (paper: 15-20, 32, 1e-4).
    l2 : float, optional
        Weight regularisation (default: the paper's value for ``kind``).
    schedule : {"constant", "cosine"}
        Learning rate: constant (the paper), or cosine-annealed from ``lr`` to ``lr / 100`` over ``epochs``,
        which allows a larger starting ``lr`` for short CPU runs.
    n_patches, n_validation : int
        Numbers of training and validation pairs (paper: 50,000 and 5,000).
    input_size : int
        Input patch edge in pixels (paper: 50; targets are twice that).
    validation_size : int
        Input edge of validation patches: smaller, so that they fit in a narrow held-out region (a quarter of a
        1000-pixel MURaM snapshot is 33 HMI pixels wide).
    validation_region : tuple of float
        Fractions ``(start, stop)`` of each image's width held out for validation (default the right quarter);
        training pairs come from the wider part outside it.
    intensity_range : tuple of float, optional
        Intensity-range augmentation (see `make_enhance_pairs`).
    intensity_fraction : float
        Fraction of the pairs it scales.
    pairs : tuple of `EnhancePairs`, optional
        Ready-made (training, validation) pairs instead of ``images``.
    model : `~sunpy_nn.nn.EnhanceNet`, optional
        Start from this network (fine-tuning) instead of a new ``EnhanceNet(depth, n_filters)``. It is trained in
        place (pass a ``copy.deepcopy`` to keep the original) and is the network returned.
    depth, n_filters : int
        Residual blocks and filters of a new network (paper: 5 and 64); ignored when ``model`` is given.
    device : str, optional
        ``"cpu"``, ``"cuda"``, or `None` for the best available.
    seed : int, optional
        Seeds the pairs, the initial weights and the batch order.
    progress : bool
        Show a progress bar per epoch.
    checkpoint_dir : path, optional
        Write ``checkpoint.pt`` (model, optimiser, history, and the recipe: the settings, the network and a
        SHA-256 of the images) after every epoch; if it exists, training resumes from it, only into the same run.
    time_limit : float, optional
        Stop after the epoch during which this many seconds have passed.
    degradation : `~sunpy_nn.training.DegradationModel` or {"random", "v1"}
        How training inputs are made from ``images``. ``"random"`` (default) draws every pair's PSF, detector,
        noise, phase, rotation and pixel scale from `~sunpy_nn.training.DegradationModel`'s ranges
        (`~sunpy_nn.training.make_source_pairs`), as the shipped v2 weights were trained; a `DegradationModel`
        sets the ranges (``DegradationModel.paper()`` is the paper's fixed operator); ``"v1"`` is the fixed
        pipeline of `make_enhance_pairs` (modified PSF, pixel-area integration, periodic boundaries) that trained
        the v1 weights. Ignored when ``pairs=`` is given.
    freeze_batchnorm : bool
        Keep the batch-normalisation statistics of ``model`` fixed and train the network exactly as it is evaluated
        (for fine-tuning). With batch statistics in training and running statistics in evaluation, the two
        networks differ: fine-tuning v1 that way on pairs with darkened scenes left a +1 % level offset in quiet
        Sun (measured on the held-out frames), which a frozen fine-tuning removes.
    augment : bool
        Apply one of the eight flips and quarter turns, drawn per batch, to inputs and targets alike; the Sun has no
        preferred orientation, so a fixed set of pairs goes eight times further before the network memorises it.

    Returns
    -------
    model : `~sunpy_nn.nn.EnhanceNet`
        The trained network (eval mode), with the weights of the epoch of lowest validation loss.
    history : dict
        ``train_loss``, ``val_loss`` (MSE per epoch, in network units squared), ``epoch_time`` (seconds per epoch),
        ``best_epoch`` (1-based) and the ``recipe``.

    Raises
    ------
    ValueError
        ``kind``, ``degradation`` or ``schedule`` is unknown; a length, size or rate is out of range (checked before
        anything else); neither ``images`` nor ``pairs`` is given; the pair builders reject the images (see
        `make_enhance_pairs` and `~sunpy_nn.training.make_source_pairs`: missing ``pixel_scale``, images not 2-D or
        not finite, too small for the patches); or the checkpoint in ``checkpoint_dir`` cannot be read, is of another
        run (the message names what differs) or holds more epochs than ``epochs``.
    FloatingPointError
        The validation loss is not finite: the run diverged, or the images overflow float32.
    RuntimeError
        ``device="cuda"`` on a machine where torch sees no GPU (`~sunpy_nn.nn.resolve_device`).

    References
    ----------
    Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
    doi:10.1051/0004-6361/201731344: the network, the training pairs and the recipe (Adam, learning rate 1e-4,
    MSE loss, L2 weight regularisation, 50,000 patches of 50x50 with 5,000 for validation).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.training import train_enhance
    >>> img = 1 + 0.1 * np.random.default_rng(0).standard_normal((800, 800))
    >>> net, hist = train_enhance(img, pixel_scale=0.0662, kind="intensity", epochs=1, n_patches=8,
    ...                           n_validation=4, depth=1, n_filters=4, input_size=8, validation_size=8, seed=0,
    ...                           progress=False)
    >>> len(hist["val_loss"])
    1
    """
    if kind not in PAPER_L2:
        raise ValueError(f"kind must be 'intensity' or 'blos', not {kind!r}")
    if schedule not in {"constant", "cosine"}:
        raise ValueError(f"schedule must be 'constant' or 'cosine', not {schedule!r}")
    lr, l2, seed = check_settings(
        epochs, batch_size, lr, l2, n_patches, n_validation, input_size, validation_size, intensity_fraction, seed
    )
    l2 = PAPER_L2[kind] if l2 is None else l2
    dev = resolve_device(device)
    if dev.type == "cpu":
        apply_thread_policy()  # the package's one thread policy, as where the networks run
    if seed is not None:
        torch.manual_seed(seed)
    if pairs is None:
        if images is None:
            raise ValueError("give images= (high-resolution images) or pairs=")
        lo, hi = validation_region
        train_regions = [r for r in ((0.0, lo), (hi, 1.0)) if r[1] - r[0] > 0]
        # Training pairs from the largest region outside the validation region.
        train_region = max(train_regions, key=lambda r: r[1] - r[0])
        common = {
            "pixel_scale": pixel_scale,
            "kind": kind,
            "intensity_range": intensity_range,
            "intensity_fraction": intensity_fraction,
        }
        if isinstance(degradation, str) and degradation == "v1":
            train = make_enhance_pairs(
                images, n_patches=n_patches, region=train_region, input_size=input_size, seed=seed, **common
            )
            val = make_enhance_pairs(
                images,
                n_patches=n_validation,
                region=validation_region,
                input_size=min(validation_size, input_size),
                guard=False,
                seed=None if seed is None else seed + 1,
                **common,
            )
        else:
            if isinstance(degradation, str):
                if degradation != "random":
                    raise ValueError(f"degradation must be 'random', 'v1' or a DegradationModel, not {degradation!r}")
                degradation = DegradationModel()
            sources = [
                TrainingSource(img, scale, kind, f"image_{i}", held_out=tuple(validation_region))
                for i, (img, scale) in enumerate(_as_images(images, pixel_scale, kind))
            ]
            extra = {"intensity_range": intensity_range, "intensity_fraction": intensity_fraction}
            train = make_source_pairs(
                sources, n_patches=n_patches, input_size=input_size, degradation=degradation, seed=seed, **extra
            )
            val = make_source_pairs(
                sources,
                n_patches=n_validation,
                split="validation",
                input_size=min(validation_size, input_size),
                degradation=degradation,
                seed=None if seed is None else seed + 1,
                **extra,
            )
    else:
        train, val = pairs
    if model is None:
        model = EnhanceNet(depth=depth, n_filters=n_filters)
        with torch.no_grad():  # start at the mean level (1 for I/Ic) rather than spend steps climbing to it
            model.tail.bias.fill_(float(train.targets.mean()))
    # as train_noise2noise: 1.47x the patches/s of NCHW with plain Adam (AMD EPYC, one thread, batch 32 of 50 x 50)
    model = model.to(dev, memory_format=torch.channels_last)
    opt = _fused_adam(model, lr, dev)
    steps_per_epoch = math.ceil(len(train) / batch_size)

    def lr_at(step: int) -> float:
        if schedule == "constant":
            return lr
        return lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / (epochs * steps_per_epoch)))))

    history = {"train_loss": [], "val_loss": [], "epoch_time": [], "best_epoch": None}
    best_state, best_val, start_epoch = None, math.inf, 0
    ckpt = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir else None
    settings = {"kind": kind, "batch_size": batch_size, "lr": lr, "l2": l2, "schedule": schedule, "seed": seed,
        "freeze_batchnorm": freeze_batchnorm, "augment": augment, "epochs": epochs, "degradation": degradation,
        "pixel_scale": pixel_scale, "n_patches": n_patches, "n_validation": n_validation, "input_size": input_size,
        "validation_size": validation_size, "validation_region": validation_region,
        "intensity_range": intensity_range, "intensity_fraction": intensity_fraction}  # fmt: skip
    recipe = recipe_of(settings, model, None if pairs is not None else images, train, val) if ckpt else None
    if ckpt is not None and ckpt.exists():
        blob = read_checkpoint(ckpt, dev, recipe, epochs)  # the same run's, or a ValueError that says what differs
        model.load_state_dict(blob["model"])
        # (a checkpoint of a version before the fused step resumes with plain Adam: its saved settings win)
        opt.load_state_dict(blob["optimizer"])
        history, best_state, best_val = blob["history"], blob["best_state"], blob["best_val"]
        start_epoch = len(history["train_loss"])
        log.info("Resuming from %s at epoch %d", ckpt, start_epoch)
    rng = np.random.default_rng(None if seed is None else seed + 2)
    for _ in range(start_epoch):  # same batch order on resume as without interruption
        rng.permutation(len(train))
    x_val, y_val = torch.from_numpy(val.inputs), torch.from_numpy(val.targets)
    t_start = time.perf_counter()
    # One heap for all steps: a batch's 64-channel activations (82 MB at 32 x 100^2) would otherwise be fresh mmap()s
    # faulted in at every step (0.2-0.8 s of system time per 2-s step, measured on CPU).
    with keep_freed_memory(dev):
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            # Frozen: batch normalisation uses its running statistics, as in evaluation (gradients still flow).
            model.train(not freeze_batchnorm)
            # Per-epoch generator: a resumed run draws the same augmentation as an uninterrupted one.
            aug_rng = np.random.default_rng(None if seed is None else (seed, 3, epoch))
            total, count = 0.0, 0
            bar = tqdm(total=len(train), desc=f"epoch {epoch + 1}/{epochs}", unit="patch", disable=not progress)
            for k, idx in enumerate(_batches(len(train), batch_size, rng)):
                for group in opt.param_groups:
                    group["lr"] = lr_at(epoch * steps_per_epoch + k)
                x = torch.from_numpy(train.inputs[idx]).to(dev)
                y = torch.from_numpy(train.targets[idx]).to(dev)
                if augment:
                    turns, flip = int(aug_rng.integers(0, 4)), bool(aug_rng.integers(0, 2))
                    x, y = torch.rot90(x, turns, (2, 3)), torch.rot90(y, turns, (2, 3))
                    if flip:
                        x, y = x.flip(3), y.flip(3)
                mse = nn.functional.mse_loss(model(x), y)
                loss = mse + l2 * _l2_penalty(model) if l2 else mse
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += mse.item() * len(idx)
                count += len(idx)
                bar.update(len(idx))
                bar.set_postfix(mse=f"{total / count:.3g}")
            bar.close()
            # Exact statistics for the current weights: with Keras' momentum they lag behind (measured: held-out MSE
            # 0.0059 with the running statistics, 0.0023 recalibrated, after two epochs at lr 1e-3).
            if freeze_batchnorm:
                model.eval()
            else:
                _recalibrate_batchnorm(model, train.inputs, batch_size, dev, max_patches=512)
            with torch.inference_mode():
                val_loss = (
                    sum(
                        float(nn.functional.mse_loss(model(x_val[i].to(dev)), y_val[i].to(dev), reduction="sum"))
                        for i in _batches(len(val), batch_size, None)
                    )
                    / y_val.numel()
                )
            check_finite(val_loss, epoch + 1)
            history["train_loss"].append(total / count)
            history["val_loss"].append(val_loss)
            history["epoch_time"].append(time.perf_counter() - t0)
            if val_loss < best_val:
                best_val, history["best_epoch"] = val_loss, epoch + 1
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            log.info("epoch %d: train MSE %.4g, validation MSE %.4g", epoch + 1, total / count, val_loss)
            if ckpt is not None:
                ckpt.parent.mkdir(parents=True, exist_ok=True)
                torch.save(
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "history": history,
                        "best_state": best_state,
                        "best_val": best_val,
                        "recipe": recipe,
                    },
                    ckpt.with_suffix(".tmp"),
                )
                ckpt.with_suffix(".tmp").replace(ckpt)  # atomic: a kill mid-write never corrupts the checkpoint
                (ckpt.parent / "history.json").write_text(json.dumps(history, indent=1))
            if time_limit is not None and time.perf_counter() - t_start > time_limit:
                log.warning("Stopping after epoch %d: time limit of %.0f s reached", epoch + 1, time_limit)
                break
    model.load_state_dict(best_state)  # its batch-normalisation statistics were recalibrated before validation
    history["recipe"] = {
        "kind": kind,
        "epochs": len(history["train_loss"]),
        "batch_size": batch_size,
        "lr": lr,
        "l2": l2,
        "schedule": schedule,
        "optimizer": "Adam",
        "loss": "MSE",
        "freeze_batchnorm": freeze_batchnorm,
        "augment": augment,
        "n_train": len(train),
        "n_validation": len(val),
        "train_pairs": train.meta,
        "validation_pairs": val.meta,
        "seed": seed,
        "device": str(dev),
    }
    return model.eval().cpu().to(memory_format=torch.contiguous_format), history
