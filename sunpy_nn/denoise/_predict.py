"""`Denoiser.predict`: its checks, and the cube denoised frame by frame, in memory or lazily (dask)."""

from __future__ import annotations

import contextlib
import copy
import logging
import threading

import numpy as np
import torch
from ndcube import NDCube
from tqdm.auto import tqdm

from sunpy_nn.denoise._align import EDGE_PX, cube_shifts, shift_frames
from sunpy_nn.denoise._result import _stddev
from sunpy_nn.nn import PRECISIONS, UNet, keep_freed_memory, resolve_device
from sunpy_nn.nn.lazy import is_dask, lazy_tiled
from sunpy_nn.nn.runner import _workspace_bytes, smallest_tile, weights_fixed
from sunpy_nn.training.noise2noise import temporal_neighbours
from sunpy_nn.utils import _check_int, fill_depth

log = logging.getLogger(__name__)

# Dropout draws from torch's one global generator. Seeded Monte-Carlo blocks of a lazy cube that dask runs in several
# threads at once would draw from each other's seeds, so they take turns: each block's draws are its own seed's.
_SEEDED_MC = threading.Lock()


def _seeded_mc_turn() -> threading.Lock:
    """The lock of seeded Monte-Carlo blocks, through a module function: a block shipped to a dask worker process
    (pickled by value) refers to it by name and takes that process's lock, instead of trying to pickle this one."""
    return _SEEDED_MC


class _PredictMixin:
    """
    `Denoiser.predict`'s work, with the trained network and settings (``model``, ``mode``, ``noise``,
    ``calibration``, ``calibration_tunings``, ``calibration_bins``, ``temporal``, ``shuffle``, ``dropout``).
    """

    model: UNet | None

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

    def _predict(self, *args, **kwargs) -> NDCube:
        """`_predict_fixed` with the network's weights taken as fixed while it runs (`weights_fixed`)."""
        # the head-less view of the bootstrap's and the dropout's draws (`_run_mean`) too: its fingerprint once, not
        # per draw
        view = None if self.model is None else self.model.mean_network()  # (untrained: refused inside)
        with weights_fixed(self.model), weights_fixed(view):
            return self._predict_fixed(*args, **kwargs)

    def _predict_fixed(
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
        self._check_basis(labels, selected, "denoise only those (stokes=...)")
        # the last fit's Stokes parameters: the ones calibrated (files without the record: not checked)
        trained_on = self.fit_settings.get("stokes")
        untrained = [labels[s] for s in selected if trained_on is not None and labels[s] not in trained_on]
        if untrained:
            raise ValueError(
                f"The denoiser was trained and calibrated on Stokes {list(trained_on)}, not {untrained}: denoise only "
                f"those (stokes={tuple(trained_on)!r}), or fit it on the others too"
            )
        raw = canon
        reused = noise is None  # (fit passes the noise levels it measured on this very cube)
        # this cube's own noise profiles, on the cube as it came: a reused denoiser's check, and the uncertainty per
        # tuning of the Stokes parameters not denoised
        given = _stddev(cube, axes) if uncertainty else None  # the cube's own, kept as it is: converted once
        through = [s for s in range(len(labels)) if s not in selected] if uncertainty and given is None else []
        passing = self._cube_profiles(raw, labels, selected, reused, through)
        # each denoised Stokes parameter's tunings divided by their relative noise, as in training (noise_tunings),
        # and those passing through by theirs, so that their noise levels are their median tuning's
        profile = {labels[s]: self.noise_tunings[labels[s]] for s in selected if labels[s] in self.noise_tunings}
        factors = self._tuning_factors(labels, range(len(labels)), canon.shape[2], profile | passing)
        profile = {lab: p for lab, p in profile.items() if len(p) == canon.shape[2]}  # those applied
        if factors is not None:
            canon = canon / factors  # a new array: the caller's cube stays as it is
        if reused:  # this cube's noise: for the warnings, and the uncertainty of what is not denoised
            noise = self._noise_levels(canon, labels, (), sampled=True, align=self.align)[0]
        trained = self._trained_noise(cube.unit)  # the training noise in this cube's unit
        self._warn_noise_mismatch(noise, labels, selected, trained)
        work = self._to_components(canon, labels, selected)  # spectral components, when the denoiser has a basis
        # temporal mode: each neighbouring scan is registered onto scan t, as in training
        shifts = cube_shifts(raw, labels) if self.temporal and self.align else None
        if is_dask(canon):
            if self.shuffle > 1:
                raise ValueError(
                    "A pixel-shuffling denoiser needs whole frames, which the lazy (dask) path does not gather: "
                    "compute the cube first (cube.data.compute()), or use shuffle=1 for lazy cubes"
                )
            args = (work, labels, selected, uncertainty, mc_samples, tile_size, dev, seed, precision, compile, trained)
            if self.temporal:
                den, sd = self._predict_lazy_temporal(*args, shifts, noise)
            else:
                den, sd = self._predict_lazy(*args)
            den, sd = self._from_components(den, sd, canon, labels, selected)
            sd = self._per_tuning(sd, labels, selected)
            den, sd = _scaled_back(den, sd, None if factors is None else factors[:, selected])
            return self._result(cube, axes, den, sd, labels, selected, uncertainty, noise, profile, passing, given)
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
        moved: dict[tuple, list] = {}
        # One heap for the whole series: not trimmed and faulted in again between frames (issue #16).
        with keep_freed_memory():
            for t, k, w in tqdm(frames, desc="denoising", unit="frame", disable=not progress):
                s = selected[k]
                waves = slice(None) if w is None else slice(w, w + 1)
                sel, out_sel = np.s_[t, s, waves], np.s_[t, k, waves]
                context = None
                if self.temporal:
                    near = temporal_neighbours(t, n_t, self.temporal)
                    if shifts is None:
                        context = np.concatenate([work[u, s, waves] for u in near])
                    else:  # all wavelengths of a neighbour at once, kept for the frames of this scan
                        if (t, s) not in moved:
                            moved.clear()
                            moved[t, s] = [shift_frames(work[u, s], shifts[u] - shifts[t], EDGE_PX) for u in near]
                        context = np.concatenate([m[waves] for m in moved[t, s]])
                den[out_sel], sd[out_sel] = self._denoise_frames(
                    work[sel],
                    context,
                    trained[labels[s]],
                    self._head_calibration(labels[s]),
                    dev,
                    tile_size,
                    n_out,
                    self.model,
                    mc_net,
                    mc_samples,
                    precision,
                    compile,
                    # scan t's own noise variance in the network's units (the training noise): 1 on the fitted cube
                    (noise[labels[s]] / trained[labels[s]]) ** 2 if noise.get(labels[s]) else 1.0,
                    None if self.noise_correlation is None else self.noise_correlation.get(labels[s], 0.0),
                    range(n_w)[waves],
                )
        den, sd = self._from_components(den, sd, canon, labels, selected)
        sd = self._per_tuning(sd, labels, selected)
        den, sd = _scaled_back(den, sd, None if factors is None else factors[:, selected])
        return self._result(cube, axes, den, sd, labels, selected, uncertainty, noise, profile, passing, given)

    def _tile_size(self, tile_size: int | None) -> int | None:
        """A tile edge the network can use: tiles need its receptive radius on each side plus a core."""
        if tile_size is None:
            return None
        # A tile is its core plus the receptive radius on each side: tiny cores make thousands of tiles. The
        # lazy path cuts its chunks with it too, so it follows run_tiled's rule here.
        radius = self.model.receptive_radius
        smallest = smallest_tile(radius, self.model.align)
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

    def _predict_lazy_temporal(
        self,
        work,
        labels,
        selected,
        uncertainty,
        mc_samples,
        tile_size,
        dev,
        seed,
        precision,
        compile,
        trained,
        shifts,
        noise,
    ):
        """
        Temporal `predict` of a dask-backed cube: lazy denoised values and uncertainties of the selected Stokes
        parameters (canonical order), one block per scan and Stokes parameter (all wavelengths), each computed from
        the frames of scan t and of its ``2 temporal`` neighbours when used, as in memory: the neighbours shifted
        onto scan t by ``shifts`` (`cube_shifts`, the same as in memory; `None`: not aligned), so the result equals
        the in-memory one. Each scan's frames are one task, which its neighbours' blocks share.
        """
        import dask
        import dask.array as da

        n_t, _, n_w, ny, nx = work.shape
        mc = uncertainty == "total"
        n_out, model = self.model.out_channels, self.model
        waves = [slice(w, w + 1) for w in range(n_w)] if self.mode == "image" else [slice(None)]

        def block(t: int, k: int, frames: np.ndarray, *near: np.ndarray) -> np.ndarray:
            frames, near = frames[0], [m[0] for m in near]  # (W, y, x) each: a scan's chunk
            if np.isinf(frames).any():
                raise ValueError("The cube has infinite values: replace them with NaN or mask them")
            label = labels[selected[k]]
            if shifts is not None:  # each neighbour registered onto scan t, as in training
                near = [
                    shift_frames(m, shifts[u] - shifts[t], EDGE_PX) for u, m in zip(neighbours[t], near, strict=True)
                ]
            net = copy.deepcopy(model) if mc else None  # dropout switched on in a private copy
            seeded = mc and seed is not None
            out = np.empty((2, n_w, ny, nx), np.float32)
            with _seeded_mc_turn() if seeded else contextlib.nullcontext():
                if seeded:
                    torch.manual_seed(seed + t * len(selected) + k)
                for ws in waves:
                    out[0, ws], out[1, ws] = self._denoise_frames(
                        np.asarray(frames[ws], np.float32),
                        np.concatenate([m[ws] for m in near]),
                        trained[label],
                        self._head_calibration(label),
                        dev,
                        tile_size,
                        n_out,
                        model,
                        net,
                        mc_samples,
                        precision,
                        compile,
                        (noise[label] / trained[label]) ** 2 if noise.get(label) else 1.0,
                        None if self.noise_correlation is None else self.noise_correlation.get(label, 0.0),
                        range(n_w)[ws],
                    )
            return out

        neighbours = [temporal_neighbours(t, n_t, self.temporal) for t in range(n_t)]
        # one task per scan's frames, shared by the blocks of its neighbours: each scan read (and rotated) once
        scans = {s: work[:, s].rechunk((1, n_w, ny, nx)).to_delayed().ravel() for s in selected}
        frames = [
            [
                da.from_delayed(
                    dask.delayed(block)(t, k, scans[s][t], *[scans[s][u] for u in neighbours[t]]),
                    (2, n_w, ny, nx),
                    np.float32,
                )
                for k, s in enumerate(selected)
            ]
            for t in range(n_t)
        ]
        result = da.stack([da.stack(row, axis=1) for row in frames], axis=1)  # (2, time, Stokes, wavelength, y, x)
        log.info("denoising lazily in temporal mode: %d blocks", n_t * len(selected))
        return result[0], result[1]

    def _predict_lazy(
        self, canon, labels, selected, uncertainty, mc_samples, tile_size, dev, seed, precision, compile, trained
    ):
        """
        `predict` of a dask-backed cube: lazy denoised values and uncertainties of the selected Stokes parameters
        (canonical order), computed block by block when used.

        Blocks are one frame (one scan, Stokes parameter and wavelength; all wavelengths in spectral mode) and,
        with ``tile_size`` (or, without MC dropout, where large frames are fewer than the CPUs: `lazy_tiled`'s
        ``fill_cpus``), spatial tiles extended by `fill_depth` of the U-Net's receptive radius, so the result equals the
        in-memory one.
        """
        n_t, _, n_w, ny, nx = canon.shape
        n_sel = len(selected)
        w_chunk = n_w if self.mode == "spectral" else 1
        canon = canon[:, list(selected)].rechunk((1, 1, w_chunk, ny, nx))
        model, n_out = self.model, self.model.out_channels
        noise, mc = dict(trained), uncertainty == "total"

        def block(b: np.ndarray, loc: tuple) -> np.ndarray:
            label = labels[selected[loc[1]]]
            sigma, scale = noise[label], self.calibration.get(label, 1.0)
            frames = b[0, 0]  # (W', y, x)
            if np.isinf(frames).any():
                raise ValueError("The cube has infinite values: replace them with NaN or mask them")
            groups = [frames] if self.mode == "spectral" else [frames[i : i + 1] for i in range(len(frames))]
            means, sds = [], []
            net = model
            seeded = contextlib.nullcontext()
            if mc:  # a private copy: dropout switched on here must not affect blocks running in other threads
                net = copy.deepcopy(model)
                if seed is not None:
                    seeded = _seeded_mc_turn()
            with seeded:
                if mc and seed is not None:
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

        depth = fill_depth(model.receptive_radius)  # nearest-valid fill of masked pixels reaches 2.4 radii
        result = lazy_tiled(
            canon,
            block,
            depth=depth,
            align=model.align,
            tile=tile_size,
            n_out=2,
            with_location=True,
            fill_cpus=not mc,  # MC dropout draws per block: its result must not depend on the machine's CPUs
            workspace=lambda h, w: _workspace_bytes(
                model, (h, w), tile_size=tile_size, device=dev, optimised=precision is not None or compile
            ),
        )
        log.info("denoising lazily: %d blocks", result.npartitions)
        return result[0], result[1]


def _scaled_back(den, sd, factors):
    """The denoised values and uncertainties (selected Stokes parameters) times each tuning's relative noise level
    (``factors``, `Denoiser._tuning_factors`; `None`: one level), by which prediction divided the cube."""
    if factors is None:
        return den, sd
    if is_dask(den):
        return den * factors, sd * factors
    den *= factors  # prediction's own arrays
    sd *= factors
    return den, sd
