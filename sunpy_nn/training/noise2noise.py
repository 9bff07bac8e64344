"""
Noise2Noise training of the denoiser's U-Net: training pairs from a cube in noise units, their augmentations and the
training loop (Lehtinen et al. 2018; Diaz Baso et al. 2019).

Numpy and torch only: `sunpy_nn.Denoiser` prepares the cube (axes, noise levels, normalisation), builds the
pairs here, trains with `train_noise2noise`, and calibrates the uncertainty.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from tqdm.auto import tqdm

from sunpy_nn.nn import resolve_device
from sunpy_nn.nn.device import apply_thread_policy
from sunpy_nn.nn.heap import keep_freed_memory
from sunpy_nn.nn.lazy import is_dask
from sunpy_nn.training._lazy_pool import check_finite_or_nan, lost_frames, read_columns, stack_start, whole_spectra_pool
from sunpy_nn.training._precision import check_precision_on_device, check_training_precision, training_autocast
from sunpy_nn.utils import _check_int, _check_real

__all__ = ["LOSSES", "Noise2NoisePairs", "temporal_neighbours", "train_noise2noise"]

log = logging.getLogger(__name__)

# Memory for the frames a lazy (dask) cube lends to training at a time, per sampler.
_POOL_BYTES = 256 * 2**20
#: Losses of the denoised image: the paper's L2, whose minimiser with noisy targets is the clean image, or L1.
LOSSES = ("l2", "l1")


# ------------------------------------------------------------------------------------------------------- sampling
def _augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, signed: bool, spectral: bool):
    """The same random rotation/flip for input and target (C, P, P); sign flip; wavelength reversal."""
    k = int(rng.integers(0, 4))
    x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k, axes=(1, 2))
    if rng.random() < 0.5:
        x, y = x[:, :, ::-1], y[:, :, ::-1]
    if signed and rng.random() < 0.5:
        x, y = -x, -y
    if spectral and rng.random() < 0.5:
        x, y = x[::-1], y[::-1]
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _neighbour_pair(patch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """
    Neighbour sub-sampling (Huang et al. 2021, "Neighbor2Neighbor"): from each 2x2 cell of a (C, 2P, 2P) patch take
    two different, adjacent pixels, giving two (C, P, P) images of the same scene with independent noise.
    """
    c, h, w = patch.shape
    cells = patch.reshape(c, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 2, 4).reshape(c, h // 2, w // 2, 4)
    # pairs of adjacent positions in a 2x2 cell (0 1 / 2 3)
    pairs = np.array([[0, 1], [1, 0], [0, 2], [2, 0], [1, 3], [3, 1], [2, 3], [3, 2]])
    choice = pairs[rng.integers(0, len(pairs), (h // 2, w // 2))]
    a = np.take_along_axis(cells, choice[None, :, :, :1], axis=3)[..., 0]
    b = np.take_along_axis(cells, choice[None, :, :, 1:], axis=3)[..., 0]
    return a, b


def temporal_neighbours(t: int, n_t: int, k: int) -> list[int]:
    """
    The ``2k`` scans that temporal mode takes as input for scan ``t``, in time order.

    They are ``t-k..t+k`` without ``t``, the window shifted inward at the ends of the series (so it needs
    ``n_t >= 2k + 1``).

    Parameters
    ----------
    t : int
        The scan to predict, ``0 <= t < n_t``.
    n_t : int
        Number of scans in the series.
    k : int
        Temporal half-window (``Denoiser(temporal=k)``).

    Returns
    -------
    list of int
        The ``2k`` scan indices.

    Raises
    ------
    ValueError
        Fewer than ``2k + 1`` scans, or ``t`` outside ``[0, n_t)``.

    Examples
    --------
    >>> from sunpy_nn.training import temporal_neighbours
    >>> temporal_neighbours(5, 10, 2), temporal_neighbours(0, 10, 2)
    ([3, 4, 6, 7], [1, 2, 3, 4])
    """
    if n_t < 2 * k + 1 or not 0 <= t < n_t:
        raise ValueError(f"temporal={k} needs at least {2 * k + 1} scans and 0 <= t < {n_t}; got t={t}, {n_t} scans")
    start = min(max(t - k, 0), n_t - 2 * k - 1)
    return [u for u in range(start, start + 2 * k + 1) if u != t]


class Noise2NoisePairs:
    """
    Draws Noise2Noise training pairs from a cube in noise units: ``draw()`` gives an (input, target) pair.

    The pairs are patches of the same place and wavelength whose solar signal is nearly the same and whose noise is
    independent: scan t against the mean of scans t-1 and t+1 (with three or more scans, the symmetric pair), or
    against the other scan of two; in temporal mode the ``2 temporal`` neighbouring scans against scan t; for single
    scans, two neighbour sub-samplings of one patch (Neighbor2Neighbor). Rotations, flips, time reversal, sign
    changes (not for Stokes parameters that are not ``signed``) and, in spectral mode, wavelength reversal are the
    augmentations; a fraction ``signal_fraction`` of the pairs show structure above twice the noise.

    A lazy (dask) array is never loaded whole: pairs come from a pool of whole frames (a frame and the next scans';
    in temporal mode scan t and its ``2 temporal`` neighbours, the window shifted inward at the ends of the series
    as in memory) that fits in ``pool_bytes`` and is drawn anew by `refresh` (each epoch).

    Parameters
    ----------
    data : array_like
        The cube ``(time, Stokes, wavelength, y, x)`` divided by the noise of each Stokes parameter, NaN where
        masked (NaN or inf pixels never enter a pair); a numpy or a dask array.
    stokes_idx : sequence of int
        Indices of the Stokes parameters to draw from.
    signed : sequence of bool
        For every Stokes parameter: whether its sign may be flipped (False for Stokes I).
    mode : {"image", "spectral"}
        One wavelength per pair (channels ``C = 1``), or all of them as channels.
    patch_size : int
        Edge of the patches, in pixels.
    x_range : tuple of int
        The columns ``[x0, x1)`` to draw from (the rest is held out for validation).
    rng : `numpy.random.Generator`
        Draws everything: the pairs and their augmentations.
    neighbour : bool
        Neighbour sub-sampling of single scans instead of pairs of scans.
    signal_fraction : float
        Fraction of the pairs drawn among patches with structure above twice the noise.
    pool_bytes : int, optional
        Memory for the frames of a lazy cube (default 256 MiB).
    temporal : int
        Temporal mode: the ``2 temporal`` neighbouring scans are the input and scan t the target (0: off).
    shuffle : int
        Pixel-shuffle down-sampling of the neighbour sub-sampling pairs (1: off).
    whole_spectra : bool
        A lazy cube's pool holds all wavelengths of each stack it reads (image mode): for a cube whose wavelength
        axis is computed from all wavelengths at once (spectral principal components), so that each frame read
        serves a pair instead of one wavelength of many reads.
    register : callable, optional
        A lazy cube's registration of its scans (``register(first, stacks)``: the stacks of consecutive scans
        ``(n, ..., y, x)`` read from each scan of ``first``, returned registered onto one another, NaN where a shift
        brings in no data; ``register(first, stacks, crop, reference)`` onto the scan at index ``reference`` of each
        stack instead of the middle one, then cut to the columns ``crop``; `~sunpy_nn.Denoiser` gives one that
        measures the shifts on Stokes I): applied to the frames of the pool and of the calibration pairs. A cube in
        memory comes aligned (`None`).

    Raises
    ------
    ValueError
        A patch (twice ``shuffle`` times its size for neighbour sub-sampling) larger than the image region, a
        patch size below 1, or an ``x_range`` outside the image's columns.

    References
    ----------
    - Lehtinen, J., Munkberg, J., Hasselgren, J., et al. 2018, "Noise2Noise: Learning Image Restoration without
      Clean Data", ICML, PMLR 80, 2965: pairs of noisy images of the same signal.
    - Diaz Baso, C. J., de la Cruz Rodriguez, J., & Danilovic, S. 2019, "Solar image denoising with convolutional
      neural networks", A&A, 629, A99, doi:10.1051/0004-6361/201936069: pairs of consecutive scans of a time
      series (their Sect. 2.1), patches random in time, wavelength and Stokes parameter with their augmentations
      (Sect. 3.2), and a training set balanced towards strong signals (Sect. 3.2.2).
    - Huang, T., Li, S., Jia, X., Lu, H., & Liu, J. 2021, "Neighbor2Neighbor: Self-Supervised Denoising from Single
      Noisy Images", CVPR: the pairs of a single scan.
    - Zhou, Y., Jiao, J., Huang, H., et al. 2020, "When AWGN-based Denoiser Meets Real Noises", AAAI: pixel-shuffle
      down-sampling.

    Attributes
    ----------
    target_noise_var : float
        Noise variance of a target, in units of the noise (0.5 for the symmetric pairs): the aleatoric loss of
        `train_noise2noise` adds it to the predicted variance.
    description : str
        The kind of pairs, as `~sunpy_nn.Denoiser` records it.
    """

    def __init__(
        self,
        data,
        stokes_idx,
        signed,
        mode: str,
        patch_size: int,
        x_range: tuple[int, int],
        rng: np.random.Generator,
        neighbour: bool,
        *,
        signal_fraction: float = 0.5,
        pool_bytes: int | None = None,
        temporal: int = 0,
        shuffle: int = 1,
        whole_spectra: bool = False,
        register=None,
    ) -> None:
        self.register = register
        self.data, self.stokes_idx, self.signed, self.mode = data, stokes_idx, signed, mode
        self.whole_spectra = whole_spectra and mode == "image"
        self.temporal, self.shuffle = temporal, shuffle
        self.p, self.x_range, self.rng, self.signal_fraction = patch_size, x_range, rng, signal_fraction
        self.n_t = data.shape[0]
        # Symmetric Noise2Noise target: the mean of the scans before and after. Its noise variance is half a
        # scan's, and evolution that is linear in time cancels in it, so the target is closer to scan t's signal.
        self.symmetric = not neighbour and not temporal and self.n_t >= 3
        # Noise variance of a target, in units of the noise: for the aleatoric loss.
        self.target_noise_var = 0.5 if self.symmetric else 1.0
        self.description = (
            "neighbour sub-sampling"
            if neighbour
            else f"temporal: scans t-{temporal}..t+{temporal} without t -> scan t"
            if temporal
            else "symmetric: scan t -> mean of scans t-1 and t+1"
            if self.symmetric
            else "consecutive scans"
        )
        self.self_supervised_single = neighbour
        self.span = 2 * shuffle * patch_size if self.self_supervised_single else patch_size
        ny = data.shape[3]
        if int(patch_size) < 1 or not 0 <= x_range[0] < x_range[1] <= data.shape[4]:
            raise ValueError(
                f"patch_size must be positive and x_range (first, last + 1 column) within the {data.shape[4]} "
                f"columns of the image, not {patch_size} and {tuple(x_range)}"
            )
        if self.span > ny or self.span > x_range[1] - x_range[0]:
            raise ValueError(
                f"patch_size={patch_size} (a {self.span}-pixel window) is larger than the image region "
                f"({ny} x {x_range[1] - x_range[0]} px); use a smaller patch_size (--patch-size on the command "
                "line), or leave it unset to fit the image"
            )
        self.pool = None
        if is_dask(data):
            n_frames = self._frames_per_draw()
            n_w = data.shape[2] if mode == "spectral" else 1
            entry = n_frames * n_w * ny * data.shape[4] * 4  # whole frames are read, whatever the x range
            self.pool_entries = min(64, max(2, int((pool_bytes or _POOL_BYTES) // entry)))
            self.refresh()

    def _frames_per_draw(self) -> int:
        """Consecutive scans one training pair is made of."""
        if self.self_supervised_single:
            return 1
        if self.temporal:  # scan t in the middle of its neighbours
            return 2 * self.temporal + 1
        return 3 if self.symmetric else 2

    def refresh(self) -> None:
        """
        Load a new random pool of frames from a lazy cube (nothing to do for an in-memory one).

        The pool holds stacks of consecutive scans (one Stokes parameter, one wavelength or all of them in spectral
        mode, the columns of ``x_range``) drawn with the generator of the pairs, in at most ``pool_bytes``.

        Raises
        ------
        ValueError
            A frame read into the pool holds infinite values.
        """
        if not is_dask(self.data):
            return
        import dask

        rng, d = self.rng, self.data
        n_pairs = self._frames_per_draw()
        if self.whole_spectra:
            self.pool = whole_spectra_pool(self, n_pairs)
        else:
            keys = set()
            for _ in range(4 * self.pool_entries):
                if len(keys) == self.pool_entries:
                    break
                t, target = stack_start(self, n_pairs, rng)
                s = int(self.stokes_idx[rng.integers(0, len(self.stokes_idx))])
                w = None if self.mode == "spectral" else int(rng.integers(0, d.shape[2]))
                keys.add((t, s, w, target))
            keys = sorted(keys, key=lambda k: tuple(-1 if v is None else v for v in k))
            first, targets = [k[0] for k in keys], [k[3] for k in keys]
            a, b, crop = read_columns(self, first, n_pairs, targets)
            stacks = dask.compute(
                *[d[t : t + n_pairs, s, slice(None) if w is None else slice(w, w + 1), :, a:b] for t, s, w, _ in keys]
            )
            for st in stacks:
                check_finite_or_nan(st)
            if self.register is not None:  # a pair's scans registered onto one another, as a cube in memory is
                stacks = self.register(first, list(stacks), crop, targets)
            self.pool = [(k[1], np.ascontiguousarray(st), k[3]) for k, st in zip(keys, stacks, strict=True)]
        log.debug("training pool: %d frame stacks loaded from the lazy cube", len(self.pool))

    def _window(self, t, s, w, y0, x0):
        sl = np.s_[y0 : y0 + self.span, x0 : x0 + self.span]
        if self.mode == "spectral":
            return self.data[t, s][:, sl[0], sl[1]]
        return self.data[t, s, w][None][:, sl[0], sl[1]]

    def _draw_pool(self):
        """A pair from the in-memory pool of a lazy cube: (x, y, s) or None when it holds masked pixels."""
        rng = self.rng
        s, stack, target = self.pool[int(rng.integers(0, len(self.pool)))]
        ny = stack.shape[2]
        y0 = int(rng.integers(0, ny - self.span + 1))
        x0 = int(rng.integers(0, stack.shape[3] - self.span + 1))
        windows = stack[:, :, y0 : y0 + self.span, x0 : x0 + self.span]
        if not np.isfinite(windows).all():
            return None
        if self.self_supervised_single:
            x, y = _neighbour_pair(self._phase(windows[0]), rng)
        elif self.temporal:  # the neighbours in time order (or reversed: the time-reversal augmentation) -> scan t
            near = [u for u in range(len(windows)) if u != target]
            x, y = np.concatenate([windows[u] for u in (near[::-1] if rng.random() < 0.5 else near)]), windows[target]
        elif self.symmetric:
            x, y = windows[1], 0.5 * (windows[0] + windows[2])
        else:
            first = int(rng.random() < 0.5)  # a random direction is the time-reversal augmentation
            x, y = windows[first], windows[1 - first]
        return x, y, s

    def _phase(self, window: np.ndarray) -> np.ndarray:
        """One random phase of the pixel-shuffle down-sampling of a (C, span, span) window (itself without)."""
        if self.shuffle == 1:
            return window
        py, px = (int(v) for v in self.rng.integers(0, self.shuffle, 2))
        return np.ascontiguousarray(window[:, py :: self.shuffle, px :: self.shuffle])

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """
        One augmented training pair ``(input, target)``.

        With probability ``signal_fraction`` the pair is drawn among patches whose pair-averaged, 3x3-smoothed
        signal exceeds twice the noise somewhere; after 50 attempts without one, any pair is taken.

        Returns
        -------
        input : `numpy.ndarray`
            ``(C, P, P)`` (``2 temporal C`` channels in temporal mode), in units of the noise, with ``P`` the
            ``patch_size`` and ``C`` 1 in image mode or the number of wavelengths in spectral mode.
        target : `numpy.ndarray`
            ``(C, P, P)``, in units of the noise.

        Raises
        ------
        ValueError
            No pair without masked (NaN or inf) pixels was found in 200 attempts: too much of the cube is masked for the
            patch size, or lost frames (scans without data) leave too few scans to pair.
        """
        d, rng = self.data, self.rng
        n_w, ny = d.shape[2], d.shape[3]
        want_signal = rng.random() < self.signal_fraction
        for attempt in range(200):
            if attempt == 50:
                want_signal = False  # a signal-poor cube (quiet-Sun Q/U): fall back to unbiased pairs
            if self.pool is not None:
                drawn = self._draw_pool()
                if drawn is None:
                    continue
                x, y, s = drawn
            else:
                t = int(rng.integers(1, self.n_t - 1)) if self.symmetric else int(rng.integers(0, self.n_t))
                s = int(self.stokes_idx[rng.integers(0, len(self.stokes_idx))])
                w = int(rng.integers(0, n_w))
                y0 = int(rng.integers(0, ny - self.span + 1))
                x0 = int(rng.integers(self.x_range[0], self.x_range[1] - self.span + 1))
                a = self._window(t, s, w, y0, x0)
                if self.self_supervised_single:
                    if not np.isfinite(a).all():
                        continue
                    x, y = _neighbour_pair(self._phase(a), rng)
                elif self.temporal:
                    idx = temporal_neighbours(t, self.n_t, self.temporal)
                    if rng.random() < 0.5:  # time reversal
                        idx = idx[::-1]
                    x = np.concatenate([self._window(u, s, w, y0, x0) for u in idx])
                    y = a
                    if not (np.isfinite(x).all() and np.isfinite(y).all()):
                        continue
                elif self.symmetric:
                    b = 0.5 * (self._window(t - 1, s, w, y0, x0) + self._window(t + 1, s, w, y0, x0))
                    if not (np.isfinite(a).all() and np.isfinite(b).all()):
                        continue
                    x, y = a, b
                else:
                    t2 = t + (1 if rng.random() < 0.5 else -1)  # a random direction: the time-reversal augmentation
                    t2 = t2 if 0 <= t2 < self.n_t else 2 * t - t2
                    b = self._window(t2, s, w, y0, x0)
                    if not (np.isfinite(a).all() and np.isfinite(b).all()):
                        continue
                    x, y = a, b
            # Bias toward signal: half the pairs must show structure above 2 sigma in the smoothed mean of the pair.
            if want_signal:
                both = 0.5 * (x.reshape(-1, *y.shape).mean(axis=0) + y)  # temporal mode: x holds 2k scans
                if np.abs(ndimage.uniform_filter(both, size=(1, 3, 3))).max() < 2.0:
                    continue
            return _augment(x, y, rng, self.signed[s], self.mode == "spectral")
        lost = lost_frames(self)
        raise ValueError(
            f"Could not draw a training pair: scans {lost} hold no data (lost frames), and too few scans have data "
            f"at the scans they are paired with ({self.description}); drop the lost scans or denoise a longer series"
            if lost
            else f"Could not draw a training pair of {self.p}-pixel patches without masked (NaN or inf) pixels: too "
            "much of the cube is masked; use a smaller patch_size (--patch-size on the command line)"
        )


# --------------------------------------------------------------------------------------------------- training loop
def _check_training_args(epochs, patches_per_epoch, batch_size, lr, loss) -> tuple[int, int, int, float]:
    """The training length and learning rate, checked (a `ValueError` that names a bad one): (epochs, patches, ...)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be 'l2' or 'l1', not {loss!r}")
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    patches_per_epoch = _check_int("patches_per_epoch", patches_per_epoch, batch_size)
    lr = _check_real("lr", lr, 0.0, math.inf, low_open=True)
    return epochs, patches_per_epoch, batch_size, lr


def _fused_adam(model: nn.Module, lr: float, dev: torch.device) -> torch.optim.Adam:
    """Adam with the fused step where torch has it for this device (CPU and CUDA from torch 2.4), else plain Adam."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=dev.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def train_noise2noise(
    model: nn.Module,
    pairs: Noise2NoisePairs,
    *,
    epochs: int = 10,
    patches_per_epoch: int = 1000,
    batch_size: int = 5,
    lr: float = 1e-3,
    loss: str = "l2",
    validation: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    seed: int | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    precision: str = "float32",
) -> dict[str, list[float]]:
    """
    Train a denoising network on Noise2Noise pairs: noisy inputs against noisy targets of the same signal.

    With independent, zero-mean noise in input and target, the L2 loss has the same minimiser as with clean
    targets (Lehtinen et al. 2018), so the network learns to denoise from the observation itself (Díaz Baso et al.
    2019). Adam, batches of ``batch_size`` pairs drawn from ``pairs``, and a learning rate cosine-annealed from
    ``lr`` to zero over this call. A network with a variance head (`~sunpy_nn.nn.UNet` with ``variance_head=True``,
    whose last output channel is a log-variance) also learns the aleatoric error of its denoised value, with the
    paper's loss ``(f - y)^2 / (2 s^2) + log(s^2) / 2``, ``s^2 = s_net^2 + pairs.target_noise_var`` (data in noise
    units), on a detached ``f`` so that the denoised image keeps its Noise2Noise optimum.

    Parameters
    ----------
    model : `torch.nn.Module`
        The network, e.g. a `~sunpy_nn.nn.UNet` (it needs ``out_channels``): trained in place, from its current
        weights (a warm start when it was trained before).
    pairs : `Noise2NoisePairs`
        The training pairs, in units of the noise: any object whose ``draw()`` returns an (input, target) pair of
        ``(C, P, P)`` arrays, with a ``refresh()`` method called before every epoch but the first (a lazy cube's
        new pool of frames) and a ``target_noise_var`` (1 when absent).
    epochs, patches_per_epoch, batch_size : int
        Training length: ``epochs`` of ``patches_per_epoch`` pairs (at least one batch, rounded up to whole
        batches), in batches of ``batch_size`` (the paper: 10; 5 by default: twice the optimiser steps for the same
        patches, see `~sunpy_nn.Denoiser.fit`).
    lr : float
        Starting learning rate of Adam (1e-4 in the paper; 1e-3 with the cosine annealing converges within 10,000
        patches).
    loss : {"l2", "l1"}
        Loss of the denoised image (the paper: L2, whose minimiser with noisy targets is the clean image).
    validation : sequence of (input, target) pairs
        Held-out pairs whose loss is measured after every epoch (none: no validation loss).
    seed : int, optional
        Seeds torch's random numbers (the dropout of the network) before training; `None` leaves them as they are.
        The pairs are drawn with the generator of ``pairs``.
    progress : bool
        Show a progress bar over the patches.
    device : str or `torch.device`, optional
        ``"cpu"``, ``"cuda"`` or `None` for the best available.
    precision : {"float32", "bfloat16"}
        Arithmetic of the forward and backward passes: float32, or bfloat16 mixed precision (`torch.autocast`; the
        weights, Adam's state and the loss stay float32, so the trained network is a float32 one). bfloat16 is
        faster where it is native (`~sunpy_nn.nn.bf16_is_native`: AMX or AVX512-BF16, a GPU of compute capability
        8.0 or newer) and trains a slightly less accurate denoiser per epoch (``benchmarks/training_precision.py``).

    Returns
    -------
    dict
        ``train_loss`` (mean loss of the denoised image over the batches of each epoch), ``val_loss`` (on
        ``validation`` after each epoch; empty without it) and ``epoch_time`` (seconds), one entry per epoch. The
        model is left in ``eval()`` mode on ``device``.

    Raises
    ------
    ValueError
        An argument out of range, an unknown loss or precision, bfloat16 on a GPU that cannot run it (checked before
        training); a pair that cannot be drawn (too much of the cube masked).

    References
    ----------
    - Lehtinen, J., Munkberg, J., Hasselgren, J., et al. 2018, "Noise2Noise: Learning Image Restoration without
      Clean Data", ICML, PMLR 80, 2965: training on pairs of noisy images.
    - Diaz Baso, C. J., de la Cruz Rodriguez, J., & Danilovic, S. 2019, "Solar image denoising with convolutional
      neural networks", A&A, 629, A99, doi:10.1051/0004-6361/201936069: Noise2Noise on spectropolarimetric time
      series (their Sect. 2.1), and the aleatoric loss of their Eq. (1) (Sect. 3.1.1).
    - Kendall, A., & Gal, Y. 2017, "What Uncertainties Do We Need in Bayesian Deep Learning for Computer Vision?",
      NeurIPS, 30: the aleatoric loss.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.data.synthetic import synthetic_crisp_cube
    >>> from sunpy_nn.nn import UNet
    >>> from sunpy_nn.training import Noise2NoisePairs, train_noise2noise
    >>> cube, truth = synthetic_crisp_cube(32, n_wavelengths=2, n_scans=3, noise=3e-3, seed=0)
    >>> data = np.asarray(cube.data) / 3e-3  # (time, Stokes, wavelength, y, x) in units of the noise
    >>> pairs = Noise2NoisePairs(data, [1, 2, 3], [False, True, True, True], "image", 16, (0, 32),
    ...                          np.random.default_rng(0), neighbour=False)
    >>> net = UNet(1, 1, n_filters=4, variance_head=True, residual=True, variance="softplus")
    >>> history = train_noise2noise(net, pairs, epochs=2, patches_per_epoch=20, seed=0, progress=False)
    >>> len(history["train_loss"]), pairs.description
    (2, 'symmetric: scan t -> mean of scans t-1 and t+1')
    """
    epochs, patches_per_epoch, batch_size, lr = _check_training_args(epochs, patches_per_epoch, batch_size, lr, loss)
    precision = check_training_precision(precision)
    seed = None if seed is None else _check_int("seed", seed, 0)
    dev = resolve_device(device)
    check_precision_on_device(precision, dev)
    if seed is not None:  # after every check: a refused call leaves torch's random numbers alone
        torch.manual_seed(seed)
    if dev.type == "cpu":
        apply_thread_policy()  # the package's one thread policy, as where the networks run
    n_out = model.out_channels
    target_noise_var = getattr(pairs, "target_noise_var", 1.0)
    # channels-last is the layout oneDNN/cuDNN convolutions are fastest in (1.4x measured on CPU)
    model = model.to(dev, memory_format=torch.channels_last)
    opt = _fused_adam(model, lr, dev)
    data_loss = nn.functional.mse_loss if loss == "l2" else nn.functional.l1_loss
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "epoch_time": []}
    n_batches = -(-patches_per_epoch // batch_size)
    bar = tqdm(total=epochs * patches_per_epoch, desc="Noise2Noise", unit="patch", disable=not progress)
    step, n_steps = 0, epochs * n_batches
    # One heap for all steps, as train_enhance: no activation is faulted in again at every step.
    with keep_freed_memory(dev):
        for epoch in range(epochs):
            t0 = time.perf_counter()
            if epoch > 0 and hasattr(pairs, "refresh"):
                pairs.refresh()  # a lazy cube: a new pool of frames each epoch
            model.train()
            total = 0.0
            for _ in range(n_batches):
                batch = [pairs.draw() for _ in range(batch_size)]
                x = torch.from_numpy(np.stack([p[0] for p in batch])).to(dev, memory_format=torch.channels_last)
                y = torch.from_numpy(np.stack([p[1] for p in batch])).to(dev, memory_format=torch.channels_last)
                with training_autocast(precision, dev):
                    out = model(x)
                out = out.float()  # the loss in float32 (a no-op in float32)
                mean, log_var = out[:, :n_out], out[:, n_out:]
                l_data = total_loss = data_loss(mean, y)
                if log_var.shape[1]:
                    # The paper's aleatoric loss, s^2 = s_net^2 + s_noise^2 (s_noise = 1 in noise units), detached mean.
                    s2 = torch.exp(log_var) + target_noise_var
                    l_var = (((mean.detach() - y) ** 2) / (2 * s2) + 0.5 * torch.log(s2)).mean()
                    total_loss = l_data + l_var
                opt.zero_grad(set_to_none=True)
                total_loss.backward()
                opt.step()
                step += 1
                for group in opt.param_groups:  # cosine annealing over this call
                    group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / n_steps))
                total += l_data.item() * batch_size
                bar.update(batch_size)
            history["train_loss"].append(total / (n_batches * batch_size))
            if validation:
                model.eval()
                with torch.inference_mode():
                    vx = torch.from_numpy(np.stack([p[0] for p in validation])).to(dev)
                    vy = torch.from_numpy(np.stack([p[1] for p in validation])).to(dev)
                    history["val_loss"].append(float(data_loss(model(vx)[:, :n_out], vy)))
            history["epoch_time"].append(time.perf_counter() - t0)
            log.info(
                "epoch %d: train loss %.4g, validation loss %s",
                epoch + 1,
                history["train_loss"][-1],
                history["val_loss"][-1] if validation else "n/a",
            )
    bar.close()
    model.eval().to(memory_format=torch.contiguous_format)
    return history
