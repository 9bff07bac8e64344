"""
Self-supervised denoising of spectropolarimetric cubes (Noise2Noise, Diaz Baso et al. 2019) on NDCubes.

The NDCube-level layer: it finds the time, Stokes, wavelength and spatial axes from the WCS physical types, scales
each Stokes parameter by a robust estimate of its noise, trains a `~sunpy_nn.nn.UNet` on pairs of consecutive scans
(their solar signal is nearly the same, their noise independent), and returns a cube with the same WCS, unit, mask
and metadata and a per-pixel uncertainty.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from astropy.nddata import StdDevUncertainty
from ndcube import NDCube
from tqdm.auto import tqdm

from sunpy_nn.cube import CubeAxes, _copy_coords, find_axes, stokes_labels
from sunpy_nn.data.registry import load_weights, save_weights, weight_path
from sunpy_nn.header import provenance
from sunpy_nn.metrics import NOISE_METHODS, _estimate, estimate_noise  # noqa: F401
from sunpy_nn.nn import PRECISIONS, UNet, resolve_device, run_tiled
from sunpy_nn.nn.lazy import is_dask, lazy_tiled
from sunpy_nn.training.noise2noise import (
    Noise2NoisePairs,
    _check_training_args,
    _neighbour_pair,
    temporal_neighbours,
    train_noise2noise,
)
from sunpy_nn.utils import SunpyNNUserWarning, WeightsError, _check_int, _check_real, fill_nearest, sha256sum

__all__ = [
    "CubeAxes",
    "Denoiser",
    "auto_temporal",
    "denoise_cube",
    "estimate_noise",
    "find_axes",
    "temporal_neighbours",
]

log = logging.getLogger(__name__)

# The cube axes moved to sunpy_nn.cube and the noise estimates to sunpy_nn.metrics (estimate_noise,
# NOISE_METHODS); they stay importable from here, and so does the old private name of stokes_labels.
_stokes_labels = stokes_labels
#: Marks the denoiser's settings in a weight file (`Denoiser.save`). Version 1 was a layout of its own, written before
#: issue 15 and still read; version 2 stores them as the ``extra`` of a `sunpy_nn.data` weight file.
FORMAT = "sunpy_nn-denoiser"
FORMAT_VERSION = 2


def _assemble(planes: list, dtype, lazy: bool):
    """Stack Stokes planes ``(T, W, Y, X)`` into a canonical ``(T, S, W, Y, X)`` array of ``dtype``."""
    if lazy:
        import dask.array as da

        return da.stack([da.asarray(p).astype(dtype) for p in planes], axis=1)
    out = np.empty((planes[0].shape[0], len(planes), *planes[0].shape[1:]), dtype)
    for s, p in enumerate(planes):
        out[:, s] = p  # values converted exactly: the output type holds the input's
    return out


def _full(shape, value: float, dtype, lazy: bool):
    if lazy:
        import dask.array as da

        return da.full(shape, value, dtype=dtype)
    return np.full(shape, value, dtype=dtype)


def _stddev(cube: NDCube, axes: CubeAxes):
    """The cube's own uncertainty as a standard deviation in the data's unit (canonical order), or None."""
    unc = cube.uncertainty
    if unc is None:
        return None
    try:
        std = unc if isinstance(unc, StdDevUncertainty) else unc.represent_as(StdDevUncertainty)
    except Exception as exc:  # e.g. an UnknownUncertainty: nothing to convert
        log.info("the cube's %s cannot be a standard deviation (%s); not kept", type(unc).__name__, exc)
        return None
    array = std.array
    if std.unit is not None and cube.unit is not None and std.unit != cube.unit:
        array = (array * std.unit).to_value(cube.unit)
    return axes.to_canonical(array)


def _weights_sha256(model) -> str:
    """SHA-256 of a network's weights (names, shapes and values in order): the same for any copy of them."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


# Smallest training patch: the U-Net's bottom level needs 2 x 2 pixels (2 * 2**depth), the paper's is 52.
_PAPER_PATCH = 52
# A reused denoiser warns when a cube's noise differs from the noise it was trained at by more than this factor.
NOISE_MISMATCH = 2.0


# -------------------------------------------------------------------------------------------------------- Denoiser
class Denoiser:
    """
    A Noise2Noise denoiser for spectropolarimetric cubes that learns from the observation itself.

    Parameters
    ----------
    mode : {"image", "spectral"}
        ``"image"`` denoises each monochromatic image on its own (the paper's main method, independent of the
        spectral line and sampling); ``"spectral"`` takes all wavelengths of a Stokes parameter as channels
        (smoother profiles, but tied to one line and sampling).
    n_filters, depth : int
        U-Net width and depth (32 and 2 in the paper).
    dropout : float
        Monte-Carlo dropout rate for the epistemic uncertainty (0.01 in the paper).
    padding : {"reflect", "zeros"}
        Border handling of the U-Net.
    residual : bool, optional
        The U-Net predicts a correction to its input, so that strong signals pass through; `False` is the paper's
        network, which predicts the image. Default: `True` in image mode, `False` in spectral mode (where the
        residual form was measured to train more slowly).
    temporal : int
        Temporal mode: scan t is predicted from the ``2 temporal`` scans around it (t excluded), and that
        prediction is combined with scan t by inverse-variance weighting. 0 (default): single-scan mode.
    shuffle : int
        Pixel-shuffle down-sampling for single scans with spatially correlated noise: the network trains on and
        denoises each of the ``shuffle x shuffle`` phase images (pixels ``shuffle`` apart), whose noise is nearly
        white. 1 (default): none. On a real MOMFBD-restored CRISP image it removed solar structure with the noise
        (the denoising guide): use it only where the scene is oversampled well beyond the noise correlation.

    Raises
    ------
    ValueError
        An unknown mode or padding, a non-positive size, a dropout outside [0, 1), or ``temporal`` and
        ``shuffle`` together.

    Notes
    -----
    **Pairs.** With a time axis, the input is a patch of scan t and the target the mean of the same patch in
    scans t-1 and t+1 (with two scans: the other scan): their solar signal is nearly the same and their noise
    independent, so the L2 loss has the same minimiser as with clean targets. In temporal mode the input is the
    neighbouring scans and the target scan t. Rotations, flips, time reversal and sign changes (not for Stokes
    I), and in spectral mode wavelength reversal, are the augmentations. Half of the pairs are drawn among
    patches whose pair-averaged, 3x3-smoothed signal exceeds twice the noise somewhere, so that the rare strong
    signals are learnt.

    **One scan.** Without a time axis (or with a single scan), pairs come from neighbour sub-sampling
    (Neighbor2Neighbor, Huang et al. 2021): two half-resolution images made of adjacent pixels of each 2x2 cell.
    It needs no masking, trains with the same loss and loop, and works for noise that is independent from pixel
    to pixel; spatially correlated noise (e.g. after MOMFBD) is partly kept, so prefer a time series then.

    **Scaling.** Each Stokes parameter is divided by its noise level (`estimate_noise`: temporal for Q, U, V,
    cross-calibrated for I, spatial for one scan), stored with the model and multiplied back on output.

    **Uncertainty.** The variance head (softplus, fed the input and the detached denoised image) learns the
    aleatoric error of the denoised value with the loss of the paper, ``(f - y)^2 / (2 s^2) + log(s^2) / 2`` with
    ``s^2 = s_net^2 + s_noise^2`` (on a detached ``f``, so the denoised image keeps its Noise2Noise optimum). After
    training, one factor per Stokes parameter (``calibration``) matches it to the error measured on Noise2Noise
    pairs. The epistemic part comes from Monte-Carlo dropout.

    References
    ----------
    C. J. Díaz Baso, J. de la Cruz Rodríguez, S. Danilovic, "Solar image denoising with convolutional neural
    networks", A&A 629, A99 (2019). J. Lehtinen et al., "Noise2Noise", ICML (2018). T. Huang et al.,
    "Neighbor2Neighbor", CVPR (2021). Y. Zhou et al., "When AWGN-based denoiser meets real noises" (pixel-shuffle
    down-sampling), AAAI (2020).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from ndcube import NDCube
    >>> from sunpy_nn import Denoiser
    >>> wcs = WCS(naxis=3)
    >>> wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "WAVE"]
    >>> wcs.wcs.cunit = ["arcsec", "arcsec", "nm"]
    >>> cube = NDCube(np.random.default_rng(0).normal(0, 1e-3, (3, 48, 48)), wcs=wcs)  # one scan, 3 wavelengths
    >>> den = Denoiser(n_filters=8).fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, seed=0, progress=False)
    >>> den.fit_settings["pairs"]  # one scan: neighbour sub-sampling
    'neighbour sub-sampling'
    >>> clean = den.predict(cube, uncertainty="total", mc_samples=2, progress=False)
    >>> clean.data.shape, type(clean.uncertainty).__name__
    ((3, 48, 48), 'StdDevUncertainty')

    With real data: ``den = Denoiser().fit(crisp_cube, epochs=10)``, ``den.save("crisp_8542.pt")``, and later
    ``Denoiser.load("crisp_8542.pt").predict(other_cube)``.
    """

    def __init__(
        self,
        mode: str = "image",
        n_filters: int = 32,
        depth: int = 2,
        *,
        dropout: float = 0.01,
        padding: str = "reflect",
        residual: bool | None = None,
        temporal: int = 0,
        shuffle: int = 1,
    ) -> None:
        if mode not in ("image", "spectral"):
            raise ValueError(f"mode must be 'image' or 'spectral', not {mode!r}")
        n_filters, depth = _check_int("n_filters", n_filters, 1), _check_int("depth", depth, 1)
        dropout = _check_real("dropout", dropout, 0.0, 1.0)
        if padding not in ("reflect", "zeros"):
            raise ValueError(f"padding must be 'reflect' or 'zeros', not {padding!r}")
        self.mode, self.n_filters, self.depth, self.dropout, self.padding = mode, n_filters, depth, dropout, padding
        # Measured: the residual form keeps strong signals in image mode (V error 0.45 -> 0.31 of the noise on a
        # kG cube) but trains more slowly in spectral mode (0.54 against 0.24 after 1,600 patches), so it is the
        # default of image mode only.
        self.residual = (mode == "image") if residual is None else bool(residual)
        self.temporal = _check_int("temporal", temporal, 0)
        self.shuffle = _check_int("shuffle", shuffle, 1)
        if self.temporal and self.shuffle > 1:
            raise ValueError("shuffle is for single scans (neighbour sub-sampling); temporal mode needs no shuffle")
        #: Factor on the aleatoric uncertainty of each Stokes parameter, from held-out Noise2Noise pairs (`fit`).
        self.calibration: dict[str, float] = {}
        self.model: UNet | None = None
        self.noise: dict[str, float] = {}
        #: How each noise level was estimated (`estimate_noise`'s method).
        self.noise_methods: dict[str, str] = {}
        self.n_wavelengths: int | None = None
        self.history: dict = {"train_loss": [], "val_loss": [], "epoch_time": []}
        self.fit_settings: dict = {}
        #: The file the weights were loaded from or saved to, and its SHA-256 (None once training changes them).
        self.source: dict | None = None

    # ------------------------------------------------------------------ helpers
    def _build(self, n_wavelengths: int) -> UNet:
        channels = n_wavelengths if self.mode == "spectral" else 1
        # Temporal mode: the 2k neighbouring scans as input channels; the residual's base is their mean.
        n_in = channels * (2 * self.temporal if self.temporal else 1)
        # Softplus variance (in noise units): free to go below and above the noise level, where the paper's
        # -abs(x) - offset is capped at the offset and has vanishing gradients near it. Starts at 0.1.
        net = UNet(
            n_in,
            channels,
            self.n_filters,
            self.depth,
            padding=self.padding,
            variance_head=True,
            dropout=self.dropout,
            log_var_offset=0.0,
            residual=self.residual,
            variance="softplus",
            variance_sees_output=True,
        )
        with torch.no_grad():
            net.var_out.bias.fill_(math.log(math.expm1(0.1)))
        return net

    def _prepare(self, cube: NDCube, stokes):
        if not isinstance(cube, NDCube):
            raise TypeError(f"Denoiser works on ndcube.NDCube objects, not {type(cube).__name__}")
        axes = find_axes(cube)
        if is_dask(cube.data):
            import dask.array as da

            # Lazy: nothing is read here; frames are read (and checked for infinities) when they are used.
            data = cube.data.astype(np.float32)
            if cube.mask is not None and np.any(cube.mask):
                data = da.where(cube.mask, np.nan, data)
        else:
            data = np.asarray(cube.data, dtype=np.float32)
            if cube.mask is not None and np.any(cube.mask):
                data = np.where(np.asarray(cube.mask, bool), np.nan, data)
            if np.isinf(data).any():
                raise ValueError(
                    f"The cube has {int(np.isinf(data).sum())} infinite values: replace them with NaN or mask them"
                )
        canon = axes.to_canonical(data)
        labels = stokes_labels(cube, axes)
        if axes.stokes is None:
            selected = [0]
        else:
            stokes = tuple(labels) if stokes is None else tuple(stokes)
            unknown = [s for s in stokes if s not in labels]
            if unknown:
                raise ValueError(f"Stokes {unknown} not in this cube, which has {labels}; choose from these")
            selected = [labels.index(s) for s in stokes]
        return axes, canon, labels, selected

    def _noise_levels(self, canon, labels, selected, sampled=False) -> tuple[dict, dict]:
        """
        Noise level of every Stokes parameter, and the method of each; a
        `ValueError` when a denoised one (``selected``) has none, e.g. a constant image. Pass-through Stokes
        parameters may have zero noise.

        With two or more scans, polarisation parameters (Q, U, V) use the temporal estimate and Stokes I the
        cross-calibrated one (`estimate_noise`), so that the evolution of granulation does not bias it; with one
        scan, all use the spatial one.

        A lazy cube (or ``sampled=True``) is sampled: a few pairs of scans at a few wavelengths, the same frames
        whether the data are in memory or not, so eager and lazy results agree.
        """
        n_t = canon.shape[0]

        cache = {}

        def stacks(s):
            if s not in cache:
                cache[s] = _stacks(s)
            return cache[s]

        def _stacks(s):
            if not (sampled or is_dask(canon)):
                return [canon[:, s]]
            # A lazy cube: 4 pairs of consecutive scans at 3 wavelengths (or 8 frames of one scan), spread over
            # the cube: millions of pixels, a few frames read.
            waves = np.unique(np.linspace(0, canon.shape[2] - 1, min(3, canon.shape[2])).round().astype(int))
            if n_t < 2:
                return [np.asarray(canon[:, s, :8])]
            starts = np.unique(np.linspace(0, n_t - 2, min(4, n_t - 1)).round().astype(int))
            return [np.asarray(canon[t : t + 2, s][:, waves]) for t in starts]

        polarisation = [s for s, lab in enumerate(labels) if lab in ("Q", "U", "V")]
        out, methods = {}, {}
        for s in range(canon.shape[1]):
            refs = [r for r in polarisation if r != s]
            if n_t < 2:
                method, sigma = "spatial", _estimate(stacks(s), "spatial")
            elif labels[s] in ("Q", "U", "V") or not refs:
                method, sigma = "temporal", _estimate(stacks(s), "temporal")
            else:  # Stokes I: its evolution biases the temporal estimate
                try:
                    method, sigma = (
                        "cross-calibrated",
                        _estimate(stacks(s), "cross-calibrated", [stacks(r) for r in refs]),
                    )
                except ValueError:  # no usable (non-constant) reference
                    method, sigma = "temporal", _estimate(stacks(s), "temporal")
            if s in selected and not sigma > 0:
                raise ValueError(f"The noise level of Stokes {labels[s]} is {sigma}: is the cube constant?")
            out[labels[s]], methods[labels[s]] = sigma, method
        return out, methods

    # ---------------------------------------------------------------------- fit
    def fit(
        self,
        cube: NDCube,
        *,
        epochs: int = 10,
        patches_per_epoch: int = 1000,
        patch_size: int | None = None,
        batch_size: int = 10,
        lr: float = 1e-3,
        loss: str = "l2",
        stokes=("Q", "U", "V"),
        val_fraction: float = 0.1,
        pairs: str = "auto",
        seed: int | None = None,
        device=None,
        progress: bool = True,
    ) -> Denoiser:
        """
        Train on the cube itself (or continue training a loaded denoiser: a warm start).

        The cube is scaled to units of its noise, and `~sunpy_nn.training.train_noise2noise` trains the network on
        `~sunpy_nn.training.Noise2NoisePairs` of it; the uncertainty is calibrated afterwards.

        Parameters
        ----------
        cube : `ndcube.NDCube`
            The observation, with two spatial axes and optional wavelength, Stokes and time axes. Masked and NaN
            pixels are never used. A dask-backed cube is not loaded: training reads a random pool of whole frames
            (256 MB) anew each epoch, and the noise levels come from a few pairs of scans.
        epochs, patches_per_epoch, batch_size, lr
            Training length (epochs of ``patches_per_epoch`` patches, at least one batch) and the paper's
            settings (batches of 10 and Adam; the paper's learning rate is 1e-4). The default 1e-3, cosine-annealed
            to zero over the training, converges within the default 10,000 patches, which 1e-4 does not (rms
            error 0.25 against 0.22 x the noise for Q, measured in ``benchmarks/denoise_science.py``).
        patch_size : int, optional
            Edge of the training patches, a multiple of ``2**depth`` (4). Default: the paper's 52, or the largest
            that fits a smaller image (said in the log; with neighbour sub-sampling a patch needs twice its size).
        loss : {"l2", "l1"}
            Loss of the denoised image (the paper: L2, whose minimiser with noisy targets is the clean image).
        stokes : tuple of str or None
            Stokes parameters to train on (`None`: all).
        val_fraction : float
            Fraction of the field of view (its right edge) held out for the validation loss.
        pairs : {"auto", "time", "neighbour"}
            Training pairs: scans (``"time"``, Noise2Noise: scan t against the mean of scans t-1 and t+1, or the
            other scan of two; in temporal mode the neighbouring scans against scan t), neighbour sub-sampling of
            single scans (``"neighbour"``), or ``"auto"``: scans when there are two or more, else neighbour
            sub-sampling.
        seed : int, optional
            Seeds the weights, the pairs and the batch order.
        device : str, optional
            ``"cpu"``, ``"cuda"`` or `None` for the best available.
        progress : bool
            Show a progress bar.

        Returns
        -------
        `Denoiser`
            ``self``, trained; ``history`` holds the losses per epoch, ``calibration`` the factor of each Stokes
            parameter's uncertainty (measured on Noise2Noise pairs after training) and ``noise_methods`` how each
            noise level was estimated.

        Raises
        ------
        ValueError
            An argument out of range (checked before anything is read), a patch size that does not fit the image,
            a cube without the needed axes or scans, or a constant Stokes parameter to denoise.
        """
        epochs, patches_per_epoch, batch_size, lr = _check_training_args(
            epochs, patches_per_epoch, batch_size, lr, loss
        )
        if pairs not in ("auto", "time", "neighbour"):
            raise ValueError(f"pairs must be 'auto', 'time' or 'neighbour', not {pairs!r}")
        if patch_size is not None:
            patch_size = _check_int("patch_size", patch_size, 2 * 2**self.depth)
            if patch_size % 2**self.depth:
                raise ValueError(
                    f"patch_size must be a multiple of {2**self.depth} (the U-Net of depth {self.depth} halves it "
                    f"{self.depth} times), not {patch_size}"
                )
        val_fraction = _check_real("val_fraction", val_fraction, 0.0, 1.0)
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        dev = resolve_device(device)
        axes, canon, labels, selected = self._prepare(cube, stokes)
        if pairs == "time" and canon.shape[0] < 2:
            raise ValueError(
                "pairs='time' (Noise2Noise) needs a time axis with at least 2 scans; this cube has "
                f"{canon.shape[0] if axes.time is not None else 'no time axis'}. Use pairs='neighbour' or 'auto'."
            )
        if self.temporal and canon.shape[0] < 2 * self.temporal + 1:
            raise ValueError(
                f"temporal={self.temporal} takes the {2 * self.temporal} neighbouring scans as input and needs at "
                f"least {2 * self.temporal + 1} scans; this cube has {canon.shape[0]}. Use a smaller temporal, or "
                "temporal=0 (single-scan mode)"
            )
        if (self.temporal or self.shuffle > 1) and is_dask(canon):
            raise ValueError(
                f"{'temporal mode' if self.temporal else 'pixel shuffling'} needs the cube in memory (the lazy path "
                "works frame by frame): compute it first (cube.data.compute()), or use "
                f"{'temporal=0' if self.temporal else 'shuffle=1'}"
            )
        if self.temporal and pairs == "neighbour":
            raise ValueError("pairs='neighbour' is for single scans; temporal mode trains on the scans themselves")
        neighbour = not self.temporal and (pairs == "neighbour" or canon.shape[0] < 2)
        if self.shuffle > 1 and not neighbour:
            raise ValueError(
                f"shuffle={self.shuffle} (pixel-shuffle down-sampling) is for single scans, which train on neighbour "
                "sub-sampling pairs; this cube has several scans, whose pairs need no shuffle: use shuffle=1, or "
                "pairs='neighbour'"
            )
        n_w = canon.shape[2]
        if self.model is not None:
            self._check_compatible(n_w)
        nx = canon.shape[4]
        x_split = round(nx * (1 - val_fraction)) if val_fraction > 0 else nx
        patch_size = self._patch_size(patch_size, canon.shape[3], x_split, neighbour)
        noise, noise_methods = self._noise_levels(canon, labels, selected)
        sigma = np.array([noise[lab] or 1.0 for lab in labels], dtype=np.float32)  # (0: a constant pass-through)
        normed = canon / sigma[None, :, None, None, None]
        rng = np.random.default_rng(seed)
        signed = [lab != "I" for lab in labels]
        train = Noise2NoisePairs(
            normed,
            selected,
            signed,
            self.mode,
            patch_size,
            (0, x_split),
            rng,
            neighbour,
            temporal=self.temporal,
            shuffle=self.shuffle,
        )
        val = None
        # Validation patches are smaller when the held-out strip is narrow (multiples of the U-Net's alignment).
        align = 2**self.depth
        val_size = min(patch_size, (nx - x_split) // (2 * self.shuffle if neighbour else 1) // align * align)
        if val_fraction > 0 and val_size >= 16:
            val = Noise2NoisePairs(
                normed,
                selected,
                signed,
                self.mode,
                val_size,
                (x_split, nx),
                np.random.default_rng(None if seed is None else seed + 1),
                neighbour,
                temporal=self.temporal,
                shuffle=self.shuffle,
            )
        if train.self_supervised_single:
            log.info("Training with neighbour sub-sampling pairs (Neighbor2Neighbor)")
        val_pairs = [val.draw() for _ in range(max(batch_size, patches_per_epoch // 10))] if val else []
        # Everything checked: only now does the denoiser change (a failed fit leaves it as it was).
        self.source = None  # the weights will differ from any file
        if self.model is None:
            if seed is not None:
                torch.manual_seed(seed)
            self.model = self._build(n_w)
            self.n_wavelengths = n_w
        self.noise, self.noise_methods = noise, noise_methods
        history = train_noise2noise(
            self.model,
            train,
            epochs=epochs,
            patches_per_epoch=patches_per_epoch,
            batch_size=batch_size,
            lr=lr,
            loss=loss,
            validation=val_pairs,
            progress=progress,
            device=dev,
        )
        for key, values in history.items():
            self.history.setdefault(key, []).extend(values)
        self.model = self.model.cpu()
        self.fit_settings = {
            "epochs": len(self.history["train_loss"]),
            "patches_per_epoch": patches_per_epoch,
            "patch_size": patch_size,
            "batch_size": batch_size,
            "lr": lr,
            "loss": loss,
            "stokes": [labels[s] for s in selected],
            "val_fraction": val_fraction,
            "seed": seed,
            "pairs": train.description,
            "temporal": self.temporal,
            "shuffle": self.shuffle,
        }
        self.calibration = self._calibrate(normed, labels, selected, train, dev)
        self.fit_settings["calibration"] = dict(self.calibration)
        return self

    def _calibrate(self, normed, labels, selected, sampler, dev) -> dict[str, float]:
        """
        Factor on the aleatoric standard deviation of each Stokes parameter, from Noise2Noise pairs.

        With independent noise, ``E[(y - f(x))^2] = E[(f(x) - s)^2] + v_y`` needs no clean data; the target's
        noise variance ``v_y`` is removed with the pair itself, ``a E[(y - x)^2]`` with ``a = v_y / (v_x + v_y)``,
        so that the global noise estimate does not enter. The factor makes the mean predicted variance equal that
        error. In temporal mode the target is scan t itself and its noise variance, 1 in noise units, is
        subtracted: the factor then depends on the noise estimate (0.2 % in the noise moves it by ~5 %), but it
        still corrects a variance head that a short training left far off.

        Pixels: whole frames of a sample of scans and wavelengths, borders included (the network is worse there,
        and the factor is an average over the field of view). The narrow held-out validation strip lies at the
        right border only and gave factors up to 20 % too large; the network (~1e5 weights) does not fit the
        noise of millions of pixels, so the pairs' own pixels serve.
        """
        n_t, n_w = normed.shape[0], normed.shape[2]
        if sampler.symmetric:
            times, a = list(range(1, n_t - 1)), 1 / 3
        elif sampler.temporal or sampler.self_supervised_single:
            times, a = list(range(n_t)), 0.5
        else:
            times, a = [0, 1], 0.5
        rng = np.random.default_rng(0)
        waves = [None] if self.mode == "spectral" else list(range(n_w))
        # A sample of frames, enough for millions of pixels yet a small part of a long series (or of a lazy cube)
        combos = [(t, w) for t in times for w in waves]
        n_pick = min(len(combos), 2 if is_dask(normed) else 24)
        combos = [combos[i] for i in sorted(rng.choice(len(combos), n_pick, replace=False))]
        n_out = self.model.out_channels
        out = {}
        for s in selected:
            num = den = 0.0
            for t, w in combos:
                ws = slice(None) if w is None else slice(w, w + 1)
                x = np.asarray(normed[t, s, ws])
                if sampler.temporal:
                    inp = np.concatenate(
                        [np.asarray(normed[u, s, ws]) for u in temporal_neighbours(t, n_t, self.temporal)]
                    )
                    y = x
                elif sampler.self_supervised_single:
                    d = self.shuffle  # the network sees one phase of the pixel-shuffled image
                    sub = x[:, ::d, ::d]
                    inp, y = _neighbour_pair(sub[:, : sub.shape[1] // 2 * 2, : sub.shape[2] // 2 * 2], rng)
                    a_t = a
                else:
                    if sampler.symmetric:
                        y = 0.5 * (np.asarray(normed[t - 1, s, ws]) + np.asarray(normed[t + 1, s, ws]))
                    else:
                        y = np.asarray(normed[1 - t, s, ws])
                    inp, a_t = x, a
                # _run_one: with pixel shuffling the pair is already made of one phase image
                f, log_var = self._run_one(np.asarray(inp, np.float32), dev, None, n_out, None, "float32", False)
                if sampler.temporal:
                    # Scan t's own noise variance, 1 in noise units, cannot be removed with the pair: subtracted.
                    r2 = (y - f) ** 2 - 1.0
                else:
                    base = x if not sampler.self_supervised_single else inp
                    r2 = (y - f) ** 2 - a_t * (y - base) ** 2
                var = np.broadcast_to(np.exp(log_var), f.shape)  # one variance for all channels
                ok = np.isfinite(r2) & np.isfinite(var)
                num += float(r2[ok].sum())
                den += float(var[ok].sum())
            scale = math.sqrt(max(num, 0.0) / den) if den > 0 else 1.0
            # A factor far from 1 means the variance head learnt little; keep it within a sane range.
            out[labels[s]] = float(min(max(scale, 0.05), 20.0))
            log.info("Stokes %s: uncertainty calibration factor %.3f", labels[s], out[labels[s]])
        return out

    def _patch_size(self, patch_size: int | None, ny: int, width: int, neighbour: bool) -> int:
        """The training patch edge: as given, or the paper's 52 or the largest that fits the training region."""
        if patch_size is not None:
            return patch_size  # checked against the image by Noise2NoisePairs, with the same message for both APIs
        align = 2**self.depth
        largest = min(ny, width) // (2 * self.shuffle if neighbour else 1) // align * align
        if largest < 2 * align:
            raise ValueError(
                f"The image ({ny} x {width} px for training, after the validation strip) is too small to train on: "
                f"{'neighbour sub-sampling needs patches of twice ' if neighbour else 'it needs patches of '}"
                f"at least {2 * align} px. Use a larger field of view, val_fraction=0 (all of it for training), or "
                "train on a larger cube of the same instrument and apply the denoiser to this one."
            )
        size = min(_PAPER_PATCH, largest)
        if size < _PAPER_PATCH:
            log.info(
                "patch_size=%d: the paper's %d-pixel patches%s do not fit the %d x %d px training region",
                size,
                _PAPER_PATCH,
                " (twice that for neighbour sub-sampling)" if neighbour else "",
                ny,
                width,
            )
        return size

    def _check_compatible(self, n_w: int) -> None:
        if self.mode == "spectral" and self.n_wavelengths != n_w:
            raise ValueError(
                f"This spectral-mode denoiser was trained on {self.n_wavelengths} wavelengths, the cube has {n_w}: "
                "use an image-mode denoiser or train a new one"
            )

    # ------------------------------------------------------------------ predict
    def _run(
        self, frame: np.ndarray, dev, tile_size, n_out, model: UNet | None = None, precision="float32", compile=False
    ):
        """Denoise one (C, Y, X) normalised frame: returns (mean, log_var), NaN where the input was."""
        d = self.shuffle
        if d == 1 or min(frame.shape[1:]) < 2 * d:
            return self._run_one(frame, dev, tile_size, n_out, model, precision, compile)
        # Pixel-shuffle down-sampling: each of the d x d phases is an image whose noise is nearly white
        mean = np.empty((n_out, *frame.shape[1:]), np.float32)
        log_var = np.empty((1, *frame.shape[1:]), np.float32)
        for py in range(d):
            for px in range(d):
                phase = np.ascontiguousarray(frame[:, py::d, px::d])
                mean[:, py::d, px::d], log_var[:, py::d, px::d] = self._run_one(
                    phase, dev, tile_size, n_out, model, precision, compile
                )
        return mean, log_var

    def _run_one(self, frame, dev, tile_size, n_out, model, precision, compile):
        """`_run` on one image, without pixel shuffling."""
        model = self.model if model is None else model
        missing = ~np.isfinite(frame).all(axis=0)
        if missing.all():
            return np.full((n_out, *frame.shape[1:]), np.nan, frame.dtype), np.full_like(frame[:1], np.nan)
        frame = fill_nearest(frame, missing)
        a = model.align
        ny, nx = frame.shape[1:]
        py, px = (-ny) % a, (-nx) % a
        padded = np.pad(frame, ((0, 0), (0, py), (0, px)), mode="reflect") if (py or px) else frame
        out = run_tiled(
            model,
            padded,
            halo=model.receptive_radius,
            tile_size=tile_size,
            align=a,
            device=dev,
            progress=False,
            precision=precision,
            compile=compile,
        )[:, :ny, :nx]
        if missing.any():
            out[:, missing] = np.nan
        return out[:n_out], out[n_out:]

    def predict(
        self,
        cube: NDCube,
        *,
        stokes=("Q", "U", "V"),
        tile_size: int | None = None,
        uncertainty: str | None = "aleatoric",
        mc_samples: int = 20,
        device=None,
        seed: int | None = None,
        precision: str | None = "float32",
        compile: bool = False,
        progress: bool = True,
    ) -> NDCube:
        """
        Denoise a cube with the trained network.

        Parameters
        ----------
        cube : `ndcube.NDCube`
            The cube (the one trained on, or another of the same instrument setup). When its data is a dask
            array, the result is lazy: its data and uncertainty are dask arrays computed frame by frame (and,
            with ``tile_size``, in overlapping spatial tiles), equal to the in-memory result.
        stokes : tuple of str or None
            Stokes parameters to denoise (`None`: all); the others are returned as they are, bit for bit.
        tile_size : int, optional
            Tile edge for large frames (the result does not depend on it). Tiles hold the network's receptive
            radius on each side plus a core: below 4 radii (152 px for the default network) the value is raised
            to that, with a log line.
        uncertainty : {None, "aleatoric", "total"}
            `None`: no uncertainty. ``"aleatoric"``: the variance head's error of the denoised value.
            ``"total"``: also the epistemic part from ``mc_samples`` Monte-Carlo dropout passes, added in
            quadrature (needs a network with dropout). Stokes parameters that are not denoised keep the cube's
            own uncertainty, or, when it has none, get the noise level estimated on this cube (`estimate_noise`).
        mc_samples : int
            Forward passes for the epistemic uncertainty (at least 2 for ``"total"``).
        device : str, optional
            ``"cpu"``, ``"cuda"`` or `None` for the best available.
        seed : int, optional
            Seeds the Monte-Carlo dropout.
        precision : {"float32", "bfloat16", "auto", None}
            Arithmetic of the network, as for `~sunpy_nn.enhance_map` (default: an optimised float32 copy, equal
            to the plain network to about 1e-5 of the data range).
        compile : bool
            Compile the network with `torch.compile` (where that fails, a warning is logged and the network runs
            uncompiled).
        progress : bool
            Show a progress bar over frames.

        Returns
        -------
        `ndcube.NDCube`
            A new cube with the same WCS, unit, mask, ``psf``, ``extra_coords``, ``global_coords`` and metadata
            (a deep copy of the same type, plus provenance under ``meta["sunpy_nn"]``, or as HISTORY cards when
            the meta is a `~astropy.io.fits.Header`), and the uncertainty as `~astropy.nddata.StdDevUncertainty`.
            The data type is that of the input when it is floating point (float32 at least; integers become
            floats that hold them exactly), so Stokes parameters not denoised come back bit for bit, masked
            pixels included. Denoised Stokes parameters are NaN where the input is NaN or masked.

        Raises
        ------
        ValueError
            An argument out of range (checked before any work), a cube the denoiser cannot apply to (other
            Stokes parameters, or another number of wavelengths in spectral mode), or infinite values.

        Warns
        -----
        SunpyNNUserWarning
            The cube's noise differs from the noise the denoiser was trained at by more than a factor of 2
            (``NOISE_MISMATCH``) for a Stokes parameter it denoises: the network expects that noise; refit it.
        """
        return self._predict(
            cube, stokes, tile_size, uncertainty, mc_samples, device, seed, precision, compile, progress
        )

    def _check_predict_args(self, uncertainty, mc_samples, tile_size, seed, precision, *, trained=True) -> None:
        """Prediction arguments, checked before any work (``trained=False``: before training, too)."""
        if trained and self.model is None:
            raise ValueError("This Denoiser is not trained: call fit(cube) or Denoiser.load(path) first")
        if uncertainty not in (None, "aleatoric", "total"):
            raise ValueError(f"uncertainty must be None, 'aleatoric' or 'total', not {uncertainty!r}")
        _check_int("mc_samples", mc_samples, 2 if uncertainty == "total" else 1)
        if uncertainty == "total" and not self.dropout > 0:
            raise ValueError(
                "uncertainty='total' needs Monte-Carlo dropout, and this denoiser has dropout=0: use "
                "uncertainty='aleatoric', or train a Denoiser(dropout=0.01)"
            )
        if tile_size is not None:
            _check_int("tile_size", tile_size, 1)
        if seed is not None:
            _check_int("seed", seed, 0)
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"precision must be None or one of {PRECISIONS}, not {precision!r}")

    def _predict(
        self, cube, stokes, tile_size, uncertainty, mc_samples, device, seed, precision, compile, progress, noise=None
    ) -> NDCube:
        """`predict`; ``noise``: this cube's noise levels when already estimated (by `fit` on the same cube)."""
        self._check_predict_args(uncertainty, mc_samples, tile_size, seed, precision)
        tile_size = self._tile_size(tile_size)
        dev = resolve_device(device)
        axes, canon, labels, selected = self._prepare(cube, stokes)
        self._check_compatible(canon.shape[2])
        if self.temporal and canon.shape[0] < 2 * self.temporal + 1:
            raise ValueError(
                f"This temporal-mode denoiser (temporal={self.temporal}) predicts each scan from its "
                f"{2 * self.temporal} neighbours and needs at least {2 * self.temporal + 1} scans; this cube has "
                f"{canon.shape[0]}. Use a single-scan denoiser (temporal=0) for it"
            )
        missing_noise = [labels[s] for s in selected if labels[s] not in self.noise]
        if missing_noise:
            raise ValueError(
                f"The denoiser has no noise level for Stokes {missing_noise} (trained on {list(self.noise)}): "
                "denoise only those it was trained on (stokes=...), or fit it on this cube"
            )
        if noise is None:  # this cube's noise: for the warning, and the uncertainty of what is not denoised
            noise = self._noise_levels(canon, labels, (), sampled=True)[0]
        self._warn_noise_mismatch(noise, labels, selected)
        if is_dask(canon):
            if self.temporal or self.shuffle > 1:
                raise ValueError(
                    f"A {'temporal-mode' if self.temporal else 'pixel-shuffling'} denoiser needs "
                    f"{'the neighbouring scans of every frame' if self.temporal else 'whole frames'}, which the lazy "
                    "(dask) path does not gather: compute the cube first (cube.data.compute()), or use "
                    f"{'temporal=0' if self.temporal else 'shuffle=1'} for lazy cubes"
                )
            den, sd = self._predict_lazy(
                canon, labels, selected, uncertainty, mc_samples, tile_size, dev, seed, precision, compile
            )
            return self._result(cube, axes, den, sd, labels, selected, uncertainty, noise)
        if seed is not None:
            torch.manual_seed(seed)
        n_t, _, n_w, ny, nx = canon.shape
        den = np.empty((n_t, len(selected), n_w, ny, nx), np.float32)
        sd = np.empty_like(den)
        n_out = self.model.out_channels
        frames = [
            (t, k, w)
            for t in range(n_t)
            for k in range(len(selected))
            for w in (range(n_w) if self.mode == "image" else [None])
        ]
        mc_net = self.model if uncertainty == "total" else None
        for t, k, w in tqdm(frames, desc="denoising", unit="frame", disable=not progress):
            s = selected[k]
            sel, out_sel = (np.s_[t, s], np.s_[t, k]) if w is None else (np.s_[t, s, w : w + 1], np.s_[t, k, w : w + 1])
            context = None
            if self.temporal:
                waves = slice(None) if w is None else slice(w, w + 1)
                context = np.concatenate([canon[u, s, waves] for u in temporal_neighbours(t, n_t, self.temporal)])
            den[out_sel], sd[out_sel] = self._denoise_frames(
                canon[sel],
                context,
                self.noise[labels[s]],
                self.calibration.get(labels[s], 1.0),
                dev,
                tile_size,
                n_out,
                self.model,
                mc_net,
                mc_samples,
                precision,
                compile,
                # scan t's own noise variance in the network's units (the training noise): 1 on the fitted cube
                (noise[labels[s]] / self.noise[labels[s]]) ** 2 if noise.get(labels[s]) else 1.0,
            )
        return self._result(cube, axes, den, sd, labels, selected, uncertainty, noise)

    def _tile_size(self, tile_size: int | None) -> int | None:
        """A tile edge the network can use: tiles need its receptive radius on each side plus a core."""
        if tile_size is None:
            return None
        # A tile is its core plus the receptive radius on each side: below 2 * radius + 2 * align it has no core,
        # and near that, tiny cores make thousands of tiles. The smallest used has a core as wide as both halos.
        align, radius = self.model.align, self.model.receptive_radius
        smallest = -(-(4 * radius + align) // align) * align
        if tile_size < smallest:
            log.info(
                "tile_size=%d is too small for this network's tiles (its receptive radius of %d px on each side "
                "plus a core as wide): using %d (the result does not depend on it)",
                tile_size,
                radius,
                smallest,
            )
            return smallest
        return int(tile_size)

    def _warn_noise_mismatch(self, noise: dict, labels, selected) -> None:
        """Warn when a Stokes parameter to denoise has a noise far from the one the network was trained at."""
        for s in selected:
            lab = labels[s]
            trained, here = self.noise[lab], noise.get(lab)
            if here is None or not trained > 0:
                continue
            ratio = here / trained if here > 0 else math.inf
            if ratio > NOISE_MISMATCH or ratio < 1 / NOISE_MISMATCH:
                warnings.warn(
                    f"Stokes {lab}: this cube's noise ({here:.3g}) differs from the noise the denoiser was trained "
                    f"at ({trained:.3g}) by a factor of {max(ratio, 1 / ratio) if ratio > 0 else math.inf:.3g} "
                    f"(more than {NOISE_MISMATCH:g}): the network expects its training noise and may remove signal "
                    "or leave noise. Refit it on this cube: Denoiser().fit(cube), or denoiser.fit(cube) to continue "
                    "from its weights (sunpy-nn denoise without --denoiser).",
                    SunpyNNUserWarning,
                    stacklevel=4,
                )

    def _denoise_frames(
        self,
        frames,
        context,
        sigma,
        scale,
        dev,
        tile_size,
        n_out,
        model,
        mc_net,
        mc_samples,
        precision,
        compile,
        frame_var: float = 1.0,
    ):
        """
        Denoised value and uncertainty (in data units) of ``(C, Y, X)`` frames of one Stokes parameter, of noise
        ``sigma``; ``scale`` is the calibration factor of the aleatoric uncertainty (`Denoiser.calibration`).

        With ``mc_net`` (a network whose dropout may be switched on), the epistemic variance of ``mc_samples``
        Monte-Carlo dropout passes is added to the aleatoric one. In temporal mode, ``context`` holds the ``2k``
        neighbouring scans ``(2k C, Y, X)``: the network predicts the frames from them alone, and that prediction
        ``p`` (variance ``v``) is combined with the frames themselves by their inverse variances:
        ``p + v / (v + n) (x - p)``, of variance ``v n / (v + n)``, where ``n`` (``frame_var``) is the frames' own
        noise variance in units of ``sigma``: 1 on the cube the denoiser was fitted on, ``(noise here / sigma)^2``
        on another cube.
        """
        x = frames / sigma
        inp = x
        if context is not None:
            # A pixel missing in one neighbouring scan takes the mean of the others there (scan t's value where all
            # are missing), so that a hole in one scan does not spread to its neighbours.
            inp = context / sigma
            groups = inp.reshape(-1, *x.shape)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: the mean is NaN, filled below
                fill = np.nanmean(groups, axis=0)
            fill = np.where(np.isfinite(fill), fill, x)
            inp = np.where(np.isfinite(groups), groups, fill[None]).reshape(inp.shape)
        mean, log_var = self._run(inp, dev, tile_size, n_out, model, precision, compile)
        var = np.exp(log_var) * scale**2 * np.ones_like(mean)
        if mc_net is not None:
            mc_net.mc_dropout(True)
            try:
                draws = [
                    self._run(inp, dev, tile_size, n_out, mc_net, precision, compile)[0] for _ in range(mc_samples)
                ]
            finally:
                mc_net.mc_dropout(False)
            var = var + np.stack(draws).var(axis=0)
        if context is not None:  # NaN where scan t is NaN: missing pixels stay missing
            gain = var / (var + frame_var)
            mean, var = mean + gain * (x - mean), gain * frame_var + 0 * x
        return mean * sigma, np.sqrt(var) * sigma

    def provenance(self) -> dict:
        """What made a result: software, model (file and SHA-256), noise levels and training settings."""
        from sunpy_nn import __version__

        model = {"weights_sha256": _weights_sha256(self.model)}
        if self.source is not None:
            model = {"file": self.source["file"], "file_sha256": self.source["sha256"], **model}
        else:
            model = {"file": None, **model}
        return {
            "software": f"sunpy_nn {__version__}",
            "method": "Noise2Noise (Diaz Baso et al. 2019)",
            "mode": self.mode,
            "model": model,
            "architecture": dict(self.model.config),
            "noise": dict(self.noise),
            "noise_methods": dict(self.noise_methods),
            "temporal": self.temporal,
            "shuffle": self.shuffle,
            "uncertainty_calibration": dict(self.calibration),
            "fit": dict(self.fit_settings),
        }

    def _result(self, cube, axes, den, sd, labels, selected, uncertainty, noise) -> NDCube:
        """
        The output cube: denoised Stokes parameters from ``den``/``sd`` (canonical, selected Stokes only), the
        others and everything else (mask, meta and its type, psf, extra and global coordinates) from ``cube``.
        """
        lazy = is_dask(den)
        n_s = len(labels)
        index = {s: k for k, s in enumerate(selected)}
        dtype = np.result_type(np.dtype(cube.data.dtype), np.float32)
        original = axes.to_canonical(cube.data)
        data = _assemble([den[:, index[s]] if s in index else original[:, s] for s in range(n_s)], dtype, lazy)
        unc = None
        if uncertainty:
            given = _stddev(cube, axes)
            planes = []
            for s in range(n_s):
                if s in index:
                    planes.append(sd[:, index[s]])
                elif given is not None:
                    planes.append(given[:, s])
                else:
                    planes.append(_full(original[:, s].shape, noise[labels[s]], dtype, lazy))
            unc = StdDevUncertainty(axes.from_canonical(_assemble(planes, dtype, lazy)), unit=cube.unit)
        meta = copy.deepcopy(cube.meta) if cube.meta is not None else {}
        # The one provenance convention (sunpy_nn.header): software, method, model name and SHA-256, settings.
        record = self.provenance()
        model = record.pop("model")
        provenance(
            meta,
            method=record.pop("method"),
            # the name as the registry gives it (the file's stem), as for Enhance
            model_info={
                "name": model["file"] and Path(model["file"]).stem,
                "sha256": model.get("file_sha256"),
                **model,
            },
            settings={k: v for k, v in record.items() if k != "software"}
            | {
                "denoised_stokes": [labels[s] for s in selected],
                "noise_of_input": {labels[s]: noise[labels[s]] for s in range(n_s)},
                "uncertainty": uncertainty,
            },
        )
        mask = None if cube.mask is None else copy.deepcopy(cube.mask)
        out = NDCube(
            axes.from_canonical(data),
            wcs=cube.wcs,
            uncertainty=unc,
            mask=mask,
            meta=meta,
            unit=cube.unit,
            psf=copy.deepcopy(cube.psf),
        )
        return _copy_coords(cube, out)

    def _predict_lazy(self, canon, labels, selected, uncertainty, mc_samples, tile_size, dev, seed, precision, compile):
        """
        `predict` of a dask-backed cube: lazy denoised values and uncertainties of the selected Stokes parameters
        (canonical order), computed block by block when used.

        Blocks are one frame (one scan, Stokes parameter and wavelength; all wavelengths in spectral mode) and,
        with ``tile_size``, spatial tiles extended by twice the U-Net's receptive radius, so the result equals the
        in-memory one.
        """
        n_t, _, n_w, ny, nx = canon.shape
        n_sel = len(selected)
        w_chunk = n_w if self.mode == "spectral" else 1
        canon = canon[:, list(selected)].rechunk((1, 1, w_chunk, ny, nx))
        model, n_out = self.model, self.model.out_channels
        noise, mc = dict(self.noise), uncertainty == "total"

        def block(b: np.ndarray, loc: tuple) -> np.ndarray:
            label = labels[selected[loc[1]]]
            sigma, scale = noise[label], self.calibration.get(label, 1.0)
            frames = b[0, 0]  # (W', y, x)
            if np.isinf(frames).any():
                raise ValueError("The cube has infinite values: replace them with NaN or mask them")
            groups = [frames] if self.mode == "spectral" else [frames[i : i + 1] for i in range(len(frames))]
            means, sds = [], []
            net = model
            if mc:  # a private copy: dropout switched on here must not affect blocks running in other threads
                net = copy.deepcopy(model)
                if seed is not None:
                    torch.manual_seed(seed + int(np.ravel_multi_index(loc[:3], (n_t, n_sel, n_w // w_chunk))))
            for g in groups:
                mean, sd = self._denoise_frames(
                    g,
                    None,
                    sigma,
                    scale,
                    dev,
                    tile_size,
                    n_out,
                    model,
                    net if mc else None,
                    mc_samples,
                    precision,
                    compile,
                )
                means.append(mean)
                sds.append(sd)
            return np.stack([np.concatenate(means), np.concatenate(sds)])[:, None, None]

        depth = 2 * model.receptive_radius  # nearest-valid fill of masked pixels needs twice the radius
        result = lazy_tiled(
            canon,
            block,
            depth=depth,
            align=model.align,
            tile=tile_size,
            n_out=2,
            with_location=True,
        )
        log.info("denoising lazily: %d blocks", result.npartitions)
        return result[0], result[1]

    # -------------------------------------------------------------------- files
    def _settings(self) -> dict:
        """What `save` stores besides the network, as plain JSON values (they round-trip exactly)."""
        return json.loads(
            json.dumps(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "mode": self.mode,
                    "n_wavelengths": self.n_wavelengths,
                    "noise": self.noise,
                    "noise_methods": self.noise_methods,
                    "temporal": self.temporal,
                    "shuffle": self.shuffle,
                    "calibration": self.calibration,
                    "history": self.history,
                    "fit_settings": self.fit_settings,
                }
            )
        )

    def save(self, path: str | Path) -> Path:
        """
        Save the network, noise levels and settings in the weight format of `sunpy_nn.data`.

        Two files, as `~sunpy_nn.data.save_weights` writes them for every network of the package:

        * ``<name>.pt``, a `torch.save` dict (read with ``weights_only=True``): ``format`` ``"sunpy_nn-weights"``,
          ``format_version``, ``name``, ``config`` (the `~sunpy_nn.nn.UNet`'s constructor arguments), ``state_dict``,
          and ``extra``, the denoiser's settings that `load` restores: ``format`` ``"sunpy_nn-denoiser"``,
          ``format_version`` 2, ``mode``, ``n_wavelengths``, ``noise`` and ``noise_methods`` (per Stokes
          parameter), ``temporal``, ``shuffle``, ``calibration`` (the uncertainty factors), ``history`` (losses per
          epoch) and ``fit_settings``. Being in this file, they are covered by its SHA-256.
        * ``<name>.json``, the model card: the SHA-256 of the ``.pt`` file, the architecture, the number of
          parameters, the sunpy_nn version, the denoiser's ``format`` and ``format_version`` as above, and the
          settings again to read (``kind``, ``mode``, ``noise``, ``noise_methods``, ``temporal``, ``shuffle``,
          ``uncertainty_calibration``, ``training_recipe``, ``validation``).

        Parameters
        ----------
        path : str or `pathlib.Path`
            The ``.pt`` file; ``.pt`` is added to a name that does not end in it (``"crisp.v2"`` writes
            ``crisp.v2.pt`` and ``crisp.v2.json``).

        Returns
        -------
        `pathlib.Path`
            The ``.pt`` file.

        Raises
        ------
        ValueError
            The denoiser is not trained.
        """
        if self.model is None:
            raise ValueError("Nothing to save: the Denoiser is not trained")
        settings = self._settings()
        card = {
            "kind": "Noise2Noise denoiser",
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "mode": self.mode,
            "noise": settings["noise"],
            "noise_methods": settings["noise_methods"],
            "temporal": self.temporal,
            "shuffle": self.shuffle,
            "uncertainty_calibration": settings["calibration"],
            "training_recipe": settings["fit_settings"],
            "validation": {"val_loss_per_epoch": settings["history"]["val_loss"]},
        }
        path = save_weights(self.model, weight_path(path), card=card, extra=settings)
        self.source = {"file": path.name, "sha256": sha256sum(path)}
        return path

    @classmethod
    def load(cls, path: str | Path) -> Denoiser:
        """
        Load a denoiser written by `save`, or by sunpy_nn versions before the registry format (format 1).

        Parameters
        ----------
        path : str or `pathlib.Path`
            The ``.pt`` file (``.pt`` may be left out, as for `save`). A model card ``.json`` beside it is checked
            against the file's SHA-256.

        Returns
        -------
        `Denoiser`
            The trained denoiser, with the noise levels, calibration, history and settings it was saved with.

        Raises
        ------
        sunpy_nn.WeightsError
            The file is missing, corrupt or does not match its model card's SHA-256, holds no denoiser (e.g. an
            Enhance network), or its network does not fit its settings.

        Notes
        -----
        The format is described in `save`. Format 1, written before, is one `torch.save` dict: ``format``
        ``"sunpy_nn-denoiser"``, ``format_version`` 1, ``config``, ``state_dict`` and the settings at its top level
        (``history`` and ``fit_settings`` as JSON strings); its model card has no ``format`` entry.
        """
        path = Path(path).expanduser()
        if not path.exists() and weight_path(path).exists():
            path = weight_path(path)
        if not path.exists():
            raise WeightsError(f"Denoiser file {path} does not exist")
        card_path = path.with_suffix(".json")
        card = {}
        if card_path.exists():
            try:
                card = json.loads(card_path.read_text())
            except (ValueError, UnicodeDecodeError) as exc:
                raise WeightsError(
                    f"The model card {card_path} of {path.name} is not valid JSON ({exc}): restore it, or save the "
                    "denoiser again"
                ) from exc
        if card.get("format") != FORMAT:  # no card, or one of format 1
            legacy = cls._load_format1(path, card)
            if legacy is not None:
                return legacy
        model, info = load_weights(path, architecture=UNet)  # checks the SHA-256 against the card
        if info.extra.get("format") != FORMAT:
            raise WeightsError(
                f"{path} holds a U-Net but no denoiser settings: it is not a Denoiser file (save one with "
                "Denoiser.save)"
            )
        return cls._restore(model, info.extra, path, info.sha256)

    @classmethod
    def _load_format1(cls, path: Path, card: dict) -> Denoiser | None:
        """A denoiser from a file of format 1 (see `load`), or None when the file is of another format."""
        digest = sha256sum(path)
        if card.get("sha256") and card["sha256"] != digest:
            raise WeightsError(
                f"SHA-256 of {path} is {digest}, but its model card {path.with_suffix('.json').name} says "
                f"{card['sha256']}: the file is corrupt or was replaced. Restore it, or save the denoiser again."
            )
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"Could not read denoiser file {path}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            return None
        from sunpy_nn.data.registry import _build, _load_state

        # the registry's checks: a wrong architecture, key or tensor shape is a WeightsError naming the file
        model = _build({"architecture": "UNet", **dict(blob["config"])}, UNet, path)
        _load_state(model, blob["state_dict"], path)
        settings = {
            "mode": blob["mode"],
            "n_wavelengths": blob["n_wavelengths"],
            "noise": blob["noise"],
            "noise_methods": blob.get("noise_methods", {}),
            "temporal": blob.get("temporal", 0),
            "shuffle": blob.get("shuffle", 1),
            "calibration": blob.get("calibration", {}),  # older files: not calibrated (factor 1)
            "history": json.loads(blob["history"]),
            "fit_settings": json.loads(blob["fit_settings"]),
        }
        return cls._restore(model, settings, path, digest)

    @classmethod
    def _restore(cls, model: UNet, settings: dict, path: Path, sha256: str) -> Denoiser:
        """A trained denoiser from its network and the settings `save` stores."""
        config = model.config
        den = cls(
            settings["mode"],
            config["n_filters"],
            config["depth"],
            dropout=config["dropout"],
            padding=config["padding"],
            residual=config["residual"],  # format 1 files before the residual form: False, the U-Net's default
            temporal=int(settings.get("temporal", 0)),
            shuffle=int(settings.get("shuffle", 1)),
        )
        den.model = model.eval()
        den.noise, den.n_wavelengths = dict(settings["noise"]), settings["n_wavelengths"]
        den.noise_methods = dict(settings.get("noise_methods", {}))
        den.calibration = dict(settings.get("calibration", {}))
        den.history, den.fit_settings = settings["history"], settings["fit_settings"]
        den.source = {"file": path.name, "sha256": sha256}
        return den


def auto_temporal(cube: NDCube, *, in_memory: bool | None = None) -> int:
    """
    The temporal half-window of ``denoise_cube(temporal="auto")``: 2 for five or more scans, 1 for three or
    four, 0 (single-scan mode) for fewer, or when the cube is dask-backed (the lazy path works scan by scan).

    Parameters
    ----------
    cube : `ndcube.NDCube`
        The cube to denoise.
    in_memory : bool, optional
        Whether the cube will be denoised in memory (`None`: as it is now; `True`: the command line reads a
        dask-backed file into memory for temporal mode).

    Returns
    -------
    int
        The half-window ``k`` of ``Denoiser(temporal=k)``.

    Raises
    ------
    ValueError
        The cube's axes cannot be identified (`find_axes`).
    """
    axes = find_axes(cube)
    n_t = 1 if axes.time is None else cube.data.shape[axes.time]
    lazy = is_dask(cube.data) if in_memory is None else not in_memory
    if lazy or n_t < 3:
        return 0
    return 1 if n_t < 5 else 2


def denoise_cube(
    cube: NDCube,
    *,
    denoiser: Denoiser | None = None,
    mode: str | None = None,
    temporal: int | str | None = None,
    epochs: int | None = None,
    patch_size: int | None = None,
    uncertainty: str | None = "aleatoric",
    stokes=("Q", "U", "V"),
    device=None,
    seed: int | None = None,
    precision: str | None = "float32",
    compile: bool = False,
    progress: bool = True,
) -> NDCube:
    """
    Remove the noise of a spectropolarimetric cube with a network trained on the cube itself (Noise2Noise).

    Parameters
    ----------
    cube : `ndcube.NDCube`
        E.g. a CRISP time series (time x Stokes x wavelength x y x x, in any order; wavelength, Stokes and time
        axes are optional), e.g. from `sunpy_nn.io.read_crisp`. NaN and masked pixels are not used for training
        and stay NaN in the denoised Stokes parameters. A dask-backed cube gives a lazy result (see
        `Denoiser.predict`).
    denoiser : `Denoiser`, optional
        A trained denoiser to use instead of training one (``mode``, ``epochs`` and ``patch_size`` then do not
        apply and are refused). It warns when this cube's noise differs from its training noise by more than 2x.
    mode : {"image", "spectral"}, optional
        See `Denoiser` (default ``"image"``).
    temporal : int or "auto", optional
        Temporal mode (`Denoiser`): the ``2 temporal`` neighbouring scans predict each scan, for well-aligned
        series whose scenes change little from scan to scan (it lowered the error by 25-40 % on such cubes, but
        raised it for Q and U and gave error bars far too narrow where the scene moved 0.5-1 px per scan; see the
        denoising guide). ``"auto"``: `auto_temporal`. Default (`None`): 0, single-scan mode.
    epochs : int, optional
        Training epochs of 1,000 patches (default 10).
    patch_size : int, optional
        Training patch edge (default: the paper's 52 pixels, or the largest that fits a smaller image); see
        `Denoiser.fit`.
    uncertainty : {None, "aleatoric", "total"}
        See `Denoiser.predict`.
    stokes : tuple of str or None
        Stokes parameters to denoise; the others (Stokes I unless listed) are returned bit for bit.
    device : str, optional
        ``"cpu"``, ``"cuda"`` or `None` for the best available.
    seed : int, optional
        For reproducible training.
    precision, compile
        Arithmetic and compilation of the network for prediction; see `Denoiser.predict`.
    progress : bool
        Show progress bars.

    Returns
    -------
    `ndcube.NDCube`
        A new cube with identical WCS, unit, mask, metadata (same type), extra and global coordinates, the
        denoised data and its uncertainty, a `~astropy.nddata.StdDevUncertainty` in the cube's unit (see
        `Denoiser.predict`). The input cube is not modified.

    Raises
    ------
    ValueError
        An argument out of range, or a training option given with ``denoiser``; all checked before training.

    Warns
    -----
    SunpyNNUserWarning
        With ``denoiser``: this cube's noise differs from the denoiser's training noise by more than a factor 2.

    References
    ----------
    C. J. Díaz Baso, J. de la Cruz Rodríguez, S. Danilovic, "Solar image denoising with convolutional neural
    networks", A&A 629, A99 (2019): the method, network and uncertainty loss (their Sect. 3 and Appendix B).
    The residual form, the symmetric and temporal Noise2Noise pairs and the calibration are this package's (see
    the denoising guide).

    Examples
    --------
    >>> from sunpy_nn import denoise_cube
    >>> from sunpy_nn.data.synthetic import synthetic_crisp_cube
    >>> cube, truth = synthetic_crisp_cube(32, n_wavelengths=3, n_scans=3, seed=0)
    >>> clean = denoise_cube(cube, temporal="auto", epochs=1, seed=0, progress=False)  # short, for the example
    >>> clean.meta["sunpy_nn"]["temporal"]  # three scans: each predicted from its two neighbours
    1
    """
    predict_args = (stokes, None, uncertainty, 20, device, seed, precision, compile, progress)
    if denoiser is not None:
        given = {"epochs": epochs, "patch_size": patch_size, "temporal": temporal}
        given = [k for k, v in given.items() if v is not None]
        if mode is not None and mode != denoiser.mode:
            given.append(f"mode={mode!r} (the denoiser's is {denoiser.mode!r})")
        if given:
            raise ValueError(
                f"{', '.join(given)} apply only when training, and denoiser= is given: it is used as it is. "
                "Leave them out, or continue its training first: denoiser.fit(cube, epochs=...)"
            )
        return denoiser.predict(
            cube,
            stokes=stokes,
            uncertainty=uncertainty,
            device=device,
            seed=seed,
            precision=precision,
            compile=compile,
            progress=progress,
        )
    if temporal is None:
        temporal = 0
    elif temporal == "auto":
        temporal = auto_temporal(cube)
    denoiser = Denoiser(mode="image" if mode is None else mode, temporal=temporal)
    # the prediction's arguments are checked before the (long) training
    denoiser._check_predict_args(uncertainty, 20, None, seed, precision, trained=False)  # before training
    denoiser.fit(
        cube,
        epochs=10 if epochs is None else epochs,
        patch_size=patch_size,
        stokes=stokes,
        seed=seed,
        device=device,
        progress=progress,
    )
    # the noise levels fit just estimated on this very cube
    return denoiser._predict(cube, *predict_args, noise=dict(denoiser.noise))
