"""`Denoiser.fit`: the cube scaled to units of its noise, Noise2Noise pairs of it, training, then calibration."""

from __future__ import annotations

import copy
import logging
import math
import warnings

import astropy.units as u
import numpy as np
import torch
from ndcube import NDCube

from sunpy_nn.denoise import _frames
from sunpy_nn.denoise._align import align_scans, cube_shifts, registration
from sunpy_nn.nn import UNet, resolve_device
from sunpy_nn.nn.lazy import is_dask
from sunpy_nn.nn.runner import weights_fixed
from sunpy_nn.training._precision import check_precision_on_device, check_training_precision
from sunpy_nn.training.noise2noise import Noise2NoisePairs, _check_training_args, train_noise2noise
from sunpy_nn.utils import SunpyNNUserWarning, _check_int, _check_real

log = logging.getLogger(__name__)

# Smallest training patch: the U-Net's bottom level needs 2 x 2 pixels (2 * 2**depth), the paper's is 52.
_PAPER_PATCH = 52
# Smallest validation patch: a narrower held-out strip gives no validation loss.
_MIN_VAL_PATCH = 16


class _FitMixin:
    """
    `Denoiser.fit`'s work. It uses the denoiser's settings (``mode``, ``depth``, ``temporal``, ``shuffle``,
    ``noise_per_tuning``), and sets ``model``, ``n_wavelengths``, ``noise``, ``noise_methods``, ``noise_tunings``,
    ``noise_correlation``, ``history``, ``fit_settings``, ``calibration``, ``calibration_tunings``,
    ``calibration_bins`` and ``source``.
    """

    model: UNet | None

    def _fit(
        self,
        cube: NDCube,
        epochs: int,
        patches_per_epoch: int,
        patch_size: int | None,
        batch_size: int,
        lr: float,
        loss: str,
        precision: str,
        stokes,
        val_fraction: float | None,
        pairs: str,
        seed: int | None,
        device,
        progress: bool,
    ):
        """`fit`, whose arguments it checks first."""
        epochs, patches_per_epoch, batch_size, lr = _check_training_args(
            epochs, patches_per_epoch, batch_size, lr, loss
        )
        precision = check_training_precision(precision)
        if pairs not in ("auto", "time", "neighbour"):
            raise ValueError(f"pairs must be 'auto', 'time' or 'neighbour', not {pairs!r}")
        if patch_size is not None:
            patch_size = _check_int("patch_size", patch_size, 2 * 2**self.depth)
            if patch_size % 2**self.depth:
                raise ValueError(
                    f"patch_size must be a multiple of {2**self.depth} (the U-Net of depth {self.depth} halves it "
                    f"{self.depth} times), not {patch_size}"
                )
        asked_validation = val_fraction is not None  # the default is silent where the strip is too narrow
        val_fraction = 0.1 if val_fraction is None else _check_real("val_fraction", val_fraction, 0.0, 1.0)
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        dev = resolve_device(device)
        check_precision_on_device(precision, dev)
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
        if self.shuffle > 1 and is_dask(canon):
            raise ValueError(
                "pixel shuffling needs the cube in memory (the lazy path works frame by frame): compute it first "
                "(cube.data.compute()), or use shuffle=1"
            )
        if self.temporal and pairs == "neighbour":
            raise ValueError("pairs='neighbour' is for single scans; temporal mode trains on the scans themselves")
        if self.noise_per_tuning and canon.shape[0] < 2:
            raise ValueError(
                "noise_per_tuning=True measures each tuning's noise on the differences of consecutive scans, and this "
                "cube has one scan (a spatial estimate would read the line's structure as noise): use "
                "noise_per_tuning=None or False"
            )
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
        if not asked_validation and not self._fits_patches(patch_size, canon.shape[3], x_split, neighbour):
            x_split, val_fraction = nx, 0.0  # the default strip alone would leave too little: no validation loss
            log.info("No validation strip: the training patches need the whole %d px width", nx)
        patch_size = self._patch_size(patch_size, canon.shape[3], x_split, neighbour, held_out=x_split < nx)
        # Scans registered onto one another (sub-pixel shifts of Stokes I), so that a pair's scans show the same
        # signal at the same pixel; the noise is estimated on them too, where a misalignment would read as noise.
        lazy = is_dask(canon)
        shifts = cube_shifts(canon, labels) if self.align and not neighbour and not lazy else None
        # a lazy cube is not read whole: the stacks of scans its training reads are registered as they are read
        register = registration(canon, labels) if self.align and not neighbour and lazy else None
        if shifts is not None:
            log.info("Scans aligned for the pairs: shifts up to %.2f px", float(np.abs(shifts).max()))
            canon = align_scans(np.array(canon, np.float32), shifts)  # a copy: the caller's cube stays as it is
        # Each tuning divided by its noise relative to the median tuning, where these differ: the network, the
        # spectral basis and the calibration then see noise of one level (noise_per_tuning), and the noise level of
        # every Stokes parameter is its median tuning's (a robust level pooled over unequal tunings is not).
        profile, passing = self._tuning_profiles(canon, labels, selected, register)
        factors = self._tuning_factors(labels, range(len(labels)), canon.shape[2], profile | passing)
        own = shifts is not None  # the aligned copy is this fit's own
        if factors is not None:
            if own:
                canon /= factors
            else:
                canon = canon / factors  # a new array (lazy for a dask cube)
                own = not is_dask(canon)
        # temporal mode draws noise of the cube's spatial correlation to measure the neighbours' propagated noise
        correlation: dict[str, float] = {}
        # in memory the scans are aligned above; a lazy cube's sampled pairs are registered on their Stokes I (align)
        noise, noise_methods = self._noise_levels(
            canon,
            labels,
            selected,
            correlation=correlation if self.temporal else None,
            align=self.align,
            steps=None if register is None else register.steps,  # the sampled pairs' steps serve the registration
        )
        sigma = np.array([noise[lab] or 1.0 for lab in labels], dtype=np.float32)  # (0: a constant pass-through)
        if own:  # one copy of the cube, scaled in place
            canon /= sigma[None, :, None, None, None]
            normed = canon
        else:
            normed = canon / sigma[None, :, None, None, None]
        basis, eigenvalues = self._spectral_fit(normed, labels, selected)
        # a spectrum with a gap is left out of the pairs (NaN in every component): a filled value is no measurement
        normed = self._to_components(normed, labels, selected, basis, fill=False, own=not is_dask(normed))
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
            whole_spectra=bool(basis),
            register=register,
        )
        val = None
        # Validation patches are smaller when the held-out strip is narrow (multiples of the U-Net's alignment).
        align = 2**self.depth
        # the columns that the alignment left NaN at the frame's border (in memory; a lazy cube reads beyond them)
        band = 0 if shifts is None else math.ceil(float(np.abs(shifts[:, 1]).max()))
        val_size = min(patch_size, (nx - x_split - band) // (2 * self.shuffle if neighbour else 1) // align * align)
        if val_fraction > 0 and val_size >= _MIN_VAL_PATCH:
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
                whole_spectra=bool(basis),
                register=register,
            )
        elif val_fraction > 0 and asked_validation:  # asked for, but the strip holds no patch: say so
            per = 2 * self.shuffle if neighbour else 1  # columns per pixel of a pair (neighbour sub-sampling)
            least = _MIN_VAL_PATCH
            why = (
                f"the validation patches cannot exceed patch_size={patch_size}, below their {least} px: use a "
                f"patch_size of at least {least}"
                if patch_size < least
                else f"val_fraction={val_fraction:g} holds out {nx - x_split} of {nx} columns"
                + (f", {band} of them NaN at the border after aligning the scans," if band else "")
                + f" and validation patches of {least} px need {per * -(-least // align) * align}: use a larger "
                "val_fraction"
            )
            warnings.warn(
                f"Training without validation: {why}, or val_fraction=0 to train on the whole field.",
                SunpyNNUserWarning,
                stacklevel=3,
            )
        if train.self_supervised_single:
            log.info("Training with neighbour sub-sampling pairs (Neighbor2Neighbor)")
        val_pairs = [val.draw() for _ in range(max(batch_size, patches_per_epoch // 10))] if val else []
        # Everything checked: only now does the denoiser change (a failed fit leaves it as it was).
        self.source = None  # the weights will differ from any file
        train_seed = seed  # a warm start: seeds the training's dropout
        if self.model is None:
            if seed is not None:
                torch.manual_seed(seed)  # the initial weights, then the training's dropout, from one seed
            train_seed = None
            self.model = self._build(n_w)
            self.n_wavelengths = n_w
        self.noise, self.noise_methods, self.noise_correlation = noise, noise_methods, correlation
        self.noise_tunings = profile
        self.spectral_basis, self.spectral_eigenvalues = basis, eigenvalues
        self.unit = u.dimensionless_unscaled.to_string() if cube.unit is None else u.Unit(cube.unit).to_string()
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
            precision=precision,
            seed=train_seed,
        )
        for key, values in history.items():
            self.history.setdefault(key, []).extend(values)
        self.model = self.model.cpu()
        recipe = {
            "epochs": epochs,
            "patches_per_epoch": patches_per_epoch,
            "patch_size": patch_size,
            "batch_size": batch_size,
            "lr": lr,
            "loss": loss,
            "precision": precision,
            "stokes": [labels[s] for s in selected],
            "val_fraction": val_fraction,
            "seed": seed,
            "pairs": train.description,
        }
        self.fit_settings = {
            **copy.deepcopy(recipe),  # lists of its own: the recipe in "fits" shares none with the top level
            "epochs": len(self.history["train_loss"]),  # all fits of this network together
            # every fit of this network in order, so that a warm start in another precision or with another learning
            # rate is on record, not only the last one's settings
            "fits": [*_earlier_fits(self.fit_settings, recipe.keys()), recipe],
            "temporal": self.temporal,
            "shuffle": self.shuffle,
            "spectral_pca": bool(basis),
            # (y, x) px that registered each scan onto the middle one; None: not aligned
            "scan_shifts": None if shifts is None else np.round(shifts, 3).tolist(),
        }
        self._propagation = "bootstrap"  # a warm start of a file before format 7 is calibrated anew, as now
        # and a file with other draws or window (read now: benchmarks/denoise_bootstrap.py sets them)
        self._bootstrap = (_frames.BOOTSTRAP_DRAWS, _frames.PROPAGATION_WINDOW)
        # trained: fixed while the held-out pairs run through it (and through its head-less view, the draws')
        with weights_fixed(self.model), weights_fixed(self.model.mean_network()):
            self.calibration, self.calibration_tunings, self.calibration_bins = self._calibrate(
                labels, selected, train, dev
            )
        self.fit_settings["calibration"] = dict(self.calibration)
        self.fit_settings["calibration_tunings"] = {k: list(v) for k, v in self.calibration_tunings.items()}
        self.fit_settings["calibration_bins"] = self._bins_copy()
        if register is not None:  # a lazy fit: (y, x) px that registered scan t onto scan t + 1, for the scans read
            self.fit_settings["scan_steps"] = {
                str(t): np.round(v, 3).tolist() for t, v in sorted(register.steps.items())
            }
        return self

    def _channels(self, n_wavelengths: int) -> tuple[int, int]:
        """The network's input and output channels: a tuning's or all tunings' (spectral mode) images, times the 2k
        neighbouring scans in temporal mode (the residual's base is their mean)."""
        channels = n_wavelengths if self.mode == "spectral" else 1
        return channels * (2 * self.temporal if self.temporal else 1), channels

    def _build(self, n_wavelengths: int) -> UNet:
        n_in, channels = self._channels(n_wavelengths)
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

    def _largest_patch(self, ny: int, width: int, neighbour: bool) -> int:
        """The largest training patch (aligned to the U-Net) that a ``ny x width`` px training region holds."""
        align = 2**self.depth
        return min(ny, width) // (2 * self.shuffle if neighbour else 1) // align * align

    def _fits_patches(self, patch_size: int | None, ny: int, width: int, neighbour: bool) -> bool:
        """Whether a ``ny x width`` px training region holds the patches: ``patch_size``, or the smallest default."""
        return self._largest_patch(ny, width, neighbour) >= (patch_size or 2 * 2**self.depth)

    def _patch_size(self, patch_size: int | None, ny: int, width: int, neighbour: bool, held_out: bool) -> int:
        """The training patch edge: as given, or the paper's 52 (aligned to the U-Net) or the largest that fits."""
        if patch_size is not None:
            return patch_size  # checked against the image by Noise2NoisePairs, with the same message for both APIs
        align = 2**self.depth
        largest = self._largest_patch(ny, width, neighbour)
        if largest < 2 * align:
            raise ValueError(
                f"The image ({ny} x {width} px for training{', after the validation strip' if held_out else ''}) is "
                f"too small to train on: "
                f"{'neighbour sub-sampling needs patches of twice ' if neighbour else 'it needs patches of '}"
                f"at least {2 * align} px. Use a larger field of view"
                + (", val_fraction=0 (all of it for training)" if held_out else "")
                + ", or train a Denoiser on a larger cube of the same instrument and apply it to this one "
                "(denoise_cube(cube, denoiser=...))."
            )
        # The paper's 52 px, rounded down to the U-Net's alignment (48 at depth 3 and 4), at least two steps of it.
        paper = max(_PAPER_PATCH // align * align, 2 * align)
        size = min(paper, largest)
        if size < paper:
            log.info(
                "patch_size=%d: the default %d-pixel patches%s do not fit the %d x %d px training region",
                size,
                paper,
                " (twice that for neighbour sub-sampling)" if neighbour else "",
                ny,
                width,
            )
        return size

    def _check_compatible(self, n_w: int) -> None:
        basis = next(iter(self.spectral_basis.values()), None)
        if basis is not None and len(basis) != n_w:
            raise ValueError(
                f"This denoiser works on the spectral principal components of {len(basis)} wavelengths (spectral_pca), "
                f"the cube has {n_w}: train a denoiser on this cube, or one with spectral_pca=False to apply to any "
                "number of wavelengths"
            )
        if self.mode == "spectral" and self.n_wavelengths != n_w:
            raise ValueError(
                f"This spectral-mode denoiser was trained on {self.n_wavelengths} wavelengths, the cube has {n_w}: "
                "use an image-mode denoiser or train a new one"
            )


def _earlier_fits(settings: dict, keys) -> list[dict]:
    """The recipes of the fits before this one: ``settings["fits"]``, or from a file saved before they were kept, its
    one recipe (its entries among ``keys``, those of a recipe: the last fit's settings with all epochs, marked so, as
    it may stand for several fits), or none for an untrained denoiser."""
    if "fits" in settings:
        return copy.deepcopy(settings["fits"])
    if not settings:
        return []
    return [{k: settings[k] for k in keys if k in settings} | {"recorded": _OLD_RECIPE}]


_OLD_RECIPE = "the settings of the last fit with the epochs of all fits (saved before each fit was kept)"
