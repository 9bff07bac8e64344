"""The calibration of the denoiser's aleatoric uncertainty on Noise2Noise pairs, after training."""

from __future__ import annotations

import copy
import logging
import math

import numpy as np

from sunpy_nn.denoise._spectral import from_basis
from sunpy_nn.nn.lazy import is_dask
from sunpy_nn.training._whole_frames import _calibration_frames, _frame_pair
from sunpy_nn.training.noise2noise import Noise2NoisePairs

log = logging.getLogger(__name__)


class _CalibrationMixin:
    """`Denoiser.calibration`, measured by `Denoiser.fit` with the trained network (``model``)."""

    def _calibrate(
        self, labels, selected, sampler: Noise2NoisePairs, dev
    ) -> tuple[dict[str, float], dict[str, list[float]], dict[str, dict[str, list[float]]]]:
        """
        Factor on the aleatoric standard deviation of each Stokes parameter, of each of its tunings (single-scan
        mode), and by bins of the head's own variance (temporal mode: `_bin_factors`), from Noise2Noise pairs.

        With independent noise, ``E[(y - f(x))^2] = E[(f(x) - s)^2] + v_y`` needs no clean data; the target's
        noise variance ``v_y`` is removed with the pair itself, ``a E[(y - x)^2]`` with ``a = v_y / (v_x + v_y)``,
        so that the global noise estimate does not enter. The factor makes the mean predicted variance equal that
        error. (A factor that makes the rms of error / sigma 1 instead, ``mean(r2 / var) = 1``, came out larger:
        the pair's removal of the target's noise is unbiased over all pixels but not given the input, with which
        the predicted variance varies; measured, rms of z 0.78 on the white cube of
        ``benchmarks/denoise_science.py``.) In temporal mode the target is scan t itself and its noise variance, 1
        in noise units, is subtracted, and so is the neighbours' noise propagated into the prediction
        (`_propagated_variance`), which prediction adds to the head's variance: the factor scales the head to the
        rest of the error. It depends on the noise estimate (0.2 % in the noise moves
        it by ~5 %), but it still corrects a variance head that a short training left far off. Prediction uses the
        factors by bins instead (`_bin_factors`), measured in the components (or tunings) that it combines with
        scan t, on whole scans as the factors per tuning are. With a spectral
        basis (``spectral_pca``) all components of a scan are rotated back and the factor is measured at the
        tunings, where the uncertainty is used.

        Per tuning (image mode, one scan: ``temporal=0``): the same criterion at each tuning, which prediction uses
        instead of the one factor. The head's error varies less across the line than the error does: on the slowly
        evolving cubes of ``benchmarks/denoise_science.py`` the factors per tuning came out 0.59-1.24 times the one
        factor, lowest in the continuum. Its frames are whole scans, enough for 2^18 pixels per tuning (two scans
        at most of a lazy cube); a tuning with fewer than 10^4 valid pixels keeps the one factor.

        Pixels: whole frames of a sample of scans and wavelengths, borders included (the network is worse there,
        and the factor is an average over the field of view). The narrow held-out validation strip lies at the
        right border only and gave factors up to 20 % too large; the network (~1e5 weights) does not fit the
        noise of millions of pixels, so the pairs' own pixels serve: the training ``sampler``'s cube (in noise
        units), as whole-frame pairs of its kind.
        """
        rng = np.random.default_rng(0)
        combos, a = _calibration_frames(sampler, rng)
        n_out = self.model.out_channels
        per_tuning = sampler.mode == "image" and not sampler.temporal
        binned = bool(sampler.temporal)
        frame_px = int(np.prod(sampler.data.shape[-2:]))
        if sampler.self_supervised_single:  # neighbour sub-sampling pairs: a quarter of a (pixel-shuffled) frame
            frame_px //= 4 * sampler.shuffle**2
        lazy = is_dask(sampler.data)

        def run(inp):
            return self._run_one(np.asarray(inp, np.float32), dev, None, n_out, None, "float32", False)

        out, tunings, bins = {}, {}, {}
        for s in selected:
            basis = self.spectral_basis.get(labels[s]) if sampler.mode == "image" else None
            correlation = self.noise_correlation.get(labels[s], 0.0) if sampler.temporal else 0.0
            r2s, heads, props, waves = [], [], [], []
            unrotated = []  # temporal mode: (r2, head, propagated, block, channel, y^2, y near) where p meets scan t
            pairs = sampler
            # each scan of a lazy cube read once, not once per component or tuning
            if lazy and (basis is not None or per_tuning or binned):
                pairs = copy.copy(sampler)
                pairs.data = _ScanCache(sampler.data)
            whole = per_tuning or (binned and sampler.mode == "image")  # whole scans: more pixels per bin
            # whole scans, as many as give _TUNING_PX at each tuning (factors per tuning) or _BINNED_PX (bins)
            need = -(-(_TUNING_PX if per_tuning else _BINNED_PX) // frame_px) if whole else 1
            groups = _frame_groups(combos, basis, rng, sampler.data.shape[2] if whole else 0, need, lazy)
            for frames in groups:
                state = rng.bit_generator.state
                parts = []
                for t, w in frames:
                    rng.bit_generator.state = state  # the same neighbour sub-sampling for every component of a scan
                    inp, y, base = _frame_pair(pairs, t, s, w, rng)
                    f, log_var = run(inp)  # with pixel shuffling the pair is already made of one phase image
                    # the neighbours' noise in f, which prediction adds to the head's variance (temporal mode, where
                    # no pixel shuffling is allowed: _run_mean's _run is _run_one)
                    prop = (
                        self._propagated_variance(inp, correlation, lambda x: self._run_mean(x, dev, None, n_out), f)
                        if binned
                        else 0
                    )
                    head = np.broadcast_to(np.exp(log_var), f.shape)  # one variance for all channels
                    parts.append(
                        [np.broadcast_to(np.asarray(v, np.float64), f.shape) for v in (y, base, f, head, prop)]
                    )
                    if binned:  # the neighbouring scans' mean, whose product with scan t holds the signal's power
                        parts[-1].append(inp.reshape(-1, *f.shape).mean(axis=0).astype(np.float64))
                y, base, f, head, prop, *near = (np.concatenate(v) for v in zip(*parts, strict=True))
                if binned:  # before the rotation: prediction combines the components with scan t's
                    shapes = [part[0].shape for part in parts]  # each frame's (C, Y, X)
                    block = np.concatenate([_blocks(sh, t) for (t, _), sh in zip(frames, shapes, strict=True)])
                    # each pixel's channel: the frame's component (or tuning), or the row of an all-channel frame
                    chan = np.concatenate([_channels(sh, w) for (_, w), sh in zip(frames, shapes, strict=True)])
                    r2 = (y - f) ** 2 - 1.0
                    ynear = y * near[0]
                    ok = np.isfinite(r2) & np.isfinite(head) & np.isfinite(prop) & np.isfinite(ynear)
                    unrotated.append((r2[ok], head[ok], prop[ok], block[ok], chan[ok], y[ok] ** 2, ynear[ok]))
                if basis is not None:  # back at the tunings, where the uncertainty is used: as predict rotates them
                    y, base, f = (from_basis(v[None], basis)[0].astype(np.float64) for v in (y, base, f))
                    head, prop = (from_basis(v[None], basis**2)[0].astype(np.float64) for v in (head, prop))
                # The target's noise variance, removed with the pair; in temporal mode scan t's own, 1 in noise units,
                # cannot be removed with the pair: subtracted.
                target_noise = 1.0 if sampler.temporal else a * (y - base) ** 2
                r2 = (y - f) ** 2 - target_noise
                ok = np.isfinite(r2) & np.isfinite(head) & np.isfinite(prop) & (head + prop > 0)
                r2s.append(r2[ok])
                heads.append(head[ok])
                props.append(prop[ok])
                if per_tuning:  # the tuning of each pixel: the rows of a scan's group, or the frame's own wavelength
                    rows = np.arange(len(frames)) if basis is not None else np.array([w for _, w in frames])
                    waves.append(np.broadcast_to(rows[:, None, None], r2.shape)[ok])
            r2, head, prop = (np.concatenate(v) for v in (r2s, heads, props))
            out[labels[s]] = _factor(r2.sum() - prop.sum(), head.sum())
            log.info("Stokes %s: uncertainty calibration factor %.3f", labels[s], out[labels[s]])
            if per_tuning:  # the same sums, per tuning
                wave, n_w = np.concatenate(waves), sampler.data.shape[2]
                num, den = np.bincount(wave, r2 - prop, n_w), np.bincount(wave, head, n_w)
                count = np.bincount(wave, minlength=n_w)
                tunings[labels[s]] = _tuning_factors(num, den, count, out[labels[s]])
                log.info("Stokes %s: factors per tuning %s", labels[s], np.round(tunings[labels[s]], 3).tolist())
            if binned:
                bins[labels[s]] = _temporal_bins(*(np.concatenate(v) for v in zip(*unrotated, strict=True)))
                log.info("Stokes %s: factors by bins of the head's variance %s", labels[s], bins[labels[s]])
        return out, tunings, bins

    def _head_calibration(self, label: str) -> float | dict[str, list[float]]:
        """What prediction scales Stokes ``label``'s variance head by: its factors by bins (temporal mode,
        `calibration_bins`), or its one factor (`calibration`)."""
        # a temporal file before 0.2: no propagated variance to add beside the bins' factors
        if self.noise_correlation is None:
            return self.calibration.get(label, 1.0)
        return self.calibration_bins.get(label) or self.calibration.get(label, 1.0)

    def _bins_copy(self) -> dict[str, dict[str, list | float]]:
        """A copy of `calibration_bins` with lists of its own (for the provenance)."""
        return {
            k: {n: list(v) if isinstance(v, list) else v for n, v in b.items()}
            for k, b in self.calibration_bins.items()
        }

    def _per_tuning(self, sd, labels, selected):
        """
        The uncertainty at the tunings (canonical ``(time, selected Stokes, wavelength, y, x)``) with each tuning's
        factor (`calibration_tunings`) instead of its Stokes parameter's (`calibration`), which prediction applied.
        With ``uncertainty="total"`` the Monte-Carlo dropout part is scaled by the same ratio.
        """
        if not self.calibration_tunings:
            return sd
        ratio = np.ones((1, len(selected), sd.shape[2], 1, 1), np.float32)
        for k, s in enumerate(selected):
            factors = self.calibration_tunings.get(labels[s])
            if factors is None:
                continue
            if len(factors) != sd.shape[2]:  # a denoiser of the tunings applied to another sampling: one factor
                log.info(
                    "Stokes %s: %d tunings where the factors per tuning are for %d; using its one factor",
                    labels[s],
                    sd.shape[2],
                    len(factors),
                )
                continue
            ratio[0, k, :, 0, 0] = np.asarray(factors) / self.calibration.get(labels[s], 1.0)
        if is_dask(sd):
            return sd * ratio
        sd *= ratio  # prediction's own array
        return sd


#: Temporal mode's bins of the head's variance (`_bin_factors`): the quantiles that part them (finest where the
#: head, and the signal, is strongest), and how many standard errors a bin's excess error must stand above zero for
#: the head to be scaled to it there.
HEAD_QUANTILES = (0.5, 0.8, 0.9, 0.95, 0.98)
N_BINS = len(HEAD_QUANTILES) + 1
BIN_SIGMAS = 2.0
#: A channel (spectral component or tuning) of a Stokes parameter whose mean square, in noise units, stays below
#: ``1 + NOISE_ONLY_POWER`` holds noise alone (`_temporal_bins`).
NOISE_ONLY_POWER = 0.05
#: How many standard errors a quiet channel's agreement between scans must stand above zero to count as weak signal
#: (`_temporal_bins`). At 2, V's weakest signal components of the weak-field cube of ``benchmarks/denoise_science.py``
#: (at 1.6 and 1.7 standard errors) count as noise, and its bars come out narrow; at 1 the correlated cube's V bars
#: come out wide (``python benchmarks/denoise_weak_bars.py``).
WEAK_SIGMAS = BIN_SIGMAS
#: The side (px) of the squares whose sums give the standard error of a bin's excess (`_sum_error`): several times
#: the noise's correlation length on restored data (a Gaussian sigma of ~1 px), and 64 squares per 128^2 frame.
BLOCK_PX = 16
# Fewer blocks in a bin: no standard error. With 2, a bin of noise alone would pass 2 sigma 15 % of the time (a t
# distribution of 1 degree of freedom), with 10 under 4 %.
_MIN_BLOCKS = 10
_MIN_TUNING_PX = 10_000  # fewer valid pixels at a tuning: its own factor would be noisy, the global one is kept
_MAX_FACTOR = 20.0  # the largest factor on a standard deviation
_MIN_FACTOR = 0.05  # the smallest factor: below it the variance head learnt little, or the error is not measured
_TUNING_PX = 2**18  # pixels per tuning wanted: a factor's sampling error falls as 1 / sqrt(pixels)
# Temporal mode's bins pool the tunings (or components) of a Stokes parameter: 2^17 px at each, about 2^14.5 px in
# the smallest bin (2 %, HEAD_QUANTILES) for 9 tunings; its bootstrap runs the network three times per frame: two
# scans of a 256^2 cube, not four
_BINNED_PX = 2**17


def _tuning_factors(num: np.ndarray, den: np.ndarray, count: np.ndarray, pooled: float) -> list[float]:
    """
    The factor of each tuning from its sums (`_factor`), or the Stokes parameter's ``pooled`` one where the tuning's
    own would be unreliable: fewer than `_MIN_TUNING_PX` pixels, or an error variance measured at or below the
    factor's floor (0.05 of the head's: the network's error is not resolved above the pairs' noise there, and the
    floor would make that tuning's sigma far too small; seen after 40 epochs on the white cube of
    ``benchmarks/denoise_science.py``: one tuning of U at the floor, 63 % of its errors beyond 5 sigma).
    """
    out = []
    for w in range(len(num)):
        resolved = count[w] >= _MIN_TUNING_PX and num[w] > _MIN_FACTOR**2 * den[w]
        out.append(_factor(num[w], den[w]) if resolved else pooled)
        if count[w] >= _MIN_TUNING_PX and not resolved:
            log.info("tuning %d: error not resolved above the noise, the pooled factor %.3f is used", w, pooled)
    return out


def _blocks(shape: tuple, scan: int) -> np.ndarray:
    """
    The block of each pixel of a ``(C, Y, X)`` frame of scan ``scan``: squares of `BLOCK_PX` px, one number per
    (scan, square), shared by all channels (the tunings or components of a scan, whose errors go together).
    """
    ny, nx = -(-shape[-2] // BLOCK_PX), -(-shape[-1] // BLOCK_PX)
    yy, xx = np.ogrid[: shape[-2], : shape[-1]]
    square = (yy // BLOCK_PX) * nx + xx // BLOCK_PX
    return np.broadcast_to(scan * ny * nx + square, shape)


def _sum_error(excess: np.ndarray, block: np.ndarray) -> float:
    """
    The standard error of ``excess.sum()``, from the scatter about the mean of the sums over each ``block``
    (`_blocks`; cluster-robust: the noise of a scan is correlated over a few pixels where the restoration spread it,
    and then the pixels are not independent; a block per pixel gives the pixels' scatter). Infinite (nothing
    resolved) with fewer than `_MIN_BLOCKS` blocks, whose sums' scatter is too rough for a test at `BIN_SIGMAS`
    normal deviations. The squares miss the correlated pairs across their edges: for noise through a Gaussian of
    1 px the standard error came out 0.92 of the sums' spread over noise realisations, the pixels' scatter 0.38 of it
    (1000 realisations of 4 scans x 3 channels x 64 x 64 px, ``tests/test_denoise_temporal_bins.py``).
    """
    if excess.size < 2:
        return math.inf
    centred = excess - excess.mean()
    _, which = np.unique(block, return_inverse=True)
    sums = np.bincount(which.ravel(), centred.ravel())
    if sums.size < _MIN_BLOCKS:
        return math.inf
    return math.sqrt(float((sums**2).sum()) * sums.size / (sums.size - 1))


def _channels(shape: tuple, w: int | None) -> np.ndarray:
    """The channel of each pixel of a ``(C, Y, X)`` frame of wavelength (or component) ``w``: ``w`` for a frame of one
    channel, else the row (a frame of all channels: spectral mode, ``w`` `None`)."""
    rows = np.arange(shape[0]) if w is None or shape[0] != 1 else np.array([w])
    return np.broadcast_to(rows[:, None, None], shape)


def _agreement(ynear: np.ndarray, block: np.ndarray) -> float:
    """The scans' agreement ``sum(ynear)`` of a quiet channel in its standard errors (`_sum_error`): the weak-signal
    test's statistic (`_temporal_bins`)."""
    total, error = float(ynear.sum()), _sum_error(ynear, block)
    if error == 0:  # sums that do not scatter: the sign alone
        return math.copysign(math.inf, total) if total else 0.0
    return total / error


def _missed_error(r2: np.ndarray, y2: np.ndarray, ynear: np.ndarray) -> np.ndarray:
    """Each pixel's squared error of the prediction without the truth, ``p^2 - 2 y p + y near`` (`_temporal_bins`):
    ``(y - p)^2 - y^2 = p^2 - 2 y p``, and ``r2`` has scan t's noise variance, 1, subtracted."""
    return r2 + 1.0 - y2 + ynear


def _temporal_bins(r2, head, prop, block, chan, y2, ynear) -> dict[str, list | float]:
    """
    Temporal mode's calibration of a Stokes parameter (`Denoiser.calibration_bins`): the channels (spectral
    components, or tunings) that hold noise alone, ``noise_channels``; those that hold weak signal, ``weak_channels``,
    and the factor on their propagated variance, ``weak_factor``; and the factors by bins of the head's variance
    (`_bin_factors`) of the others. From each valid pixel's ``r2``, ``head``, ``prop`` and ``block`` (as
    `_bin_factors` takes them), its channel ``chan``, scan t's value squared ``y2`` and scan t's value times the mean
    of the neighbouring scans ``ynear`` (in noise units).

    A channel is quiet where its mean square over the calibration's frames stays below ``1 +`` `NOISE_ONLY_POWER`
    (signal power below 5 % of the noise's): most spectral components of Q, U and V, and the continuum tunings. The
    network's error there is mostly the neighbours' noise it passes on, which the bootstrap measures
    (`_propagated_variance`; the error's mean square over the quiet components came out 1.00-1.05 times the
    bootstrap's variance on the white cube of ``benchmarks/denoise_science.py`` and 1.14-1.20 times on the correlated
    one, Q, U and V, against the truth), so prediction adds no head there. Pooled with the signal's channels (before
    format 10), the quiet pixels above the bins' lowest edges took head variance that was no error there (bars ~1.5
    times too wide: mean squared error / variance 0.42-0.48 in Q's quiet components of the white cube), and the
    weakest signal component, whose head is low, got bins sized on noise (mean z^2 2.9-4.0 there, correlated cube).

    A quiet channel still holds weak signal where scan t and its neighbours agree: ``mean(ynear)``, the signal's
    power for a signal that evolves slowly (the scans' noises are independent), stands `WEAK_SIGMAS` standard errors
    (`_sum_error`) above zero. The network misses part of that signal between scans, an error the bootstrap does
    not see: on the weak-field cube of ``benchmarks/denoise_science.py`` (below 1 % of the noise's power there) the
    propagated variance alone gave bars too narrow (rms of error / sigma 1.17 at 0.1.dev683). Those channels' error
    is measured without the truth: as scan t's noise is independent of the prediction p, ``E[(p - s)^2] = E[p^2 -
    2 y p] + E[s^2]``, and ``ynear`` stands for ``s^2``; ``weak_factor`` (at least 1) scales their propagated
    variance to that error, pooled over them. The other quiet channels are ``noise_channels``.
    """
    count = np.bincount(chan)
    power = np.bincount(chan, y2, count.size) / np.maximum(count, 1)
    quiet = [int(c) for c in np.flatnonzero(count) if power[c] < 1 + NOISE_ONLY_POWER]
    weak = []
    for c in quiet:
        mine = chan == c
        if _agreement(ynear[mine], block[mine]) > WEAK_SIGMAS:
            weak.append(c)
    signal = ~np.isin(chan, quiet)
    bins = _bin_factors(r2[signal], head[signal], prop[signal], block[signal])
    factor = 1.0
    if weak:
        w = np.isin(chan, weak)
        error = float(_missed_error(r2[w], y2[w], ynear[w]).sum())
        factor = min(max(error / float(prop[w].sum()), 1.0), _MAX_FACTOR**2) if prop[w].sum() > 0 else 1.0
        log.info("weak signal in quiet channels %s: their propagated variance times %.2f", weak, factor)
    return bins | {"noise_channels": [c for c in quiet if c not in weak], "weak_channels": weak, "weak_factor": factor}


def _bin_factors(r2: np.ndarray, head: np.ndarray, prop: np.ndarray, block: np.ndarray) -> dict[str, list[float]]:
    """
    Temporal mode's factors on the variance head by bins of the head's own variance ``head``: ``head_edges`` (its
    quantiles `HEAD_QUANTILES`) and ``factors`` (one per bin, `numpy.digitize` order), from each valid pixel's
    ``r2 = (y - p)^2 - 1`` (scan t's noise variance subtracted; in noise units) and the neighbours' propagated
    variance ``prop``.

    The prediction's error is a few per cent of scan t's noise variance. Where the signal is weak it is the
    neighbours' noise passed on, which the bootstrap measures (`_propagated_variance`); where the signal is strong
    the network also misses its evolution between scans, an error that the head learns to rank (its variance is
    largest there) but not to size: trained against scan t, whose noise dwarfs that error, it comes out far off
    after a short training. So a bin's head is scaled to the error left over by the propagated noise (its excess;
    the floor `_MIN_FACTOR` where it is not positive), also where that excess does not stand `BIN_SIGMAS` standard
    errors above zero. Up to 0.1.dev702 such a bin's head was put at the floor, as if its excess were noise; but
    the unresolved bins of the cubes of ``benchmarks/denoise_science.py`` held excess of 0.4-1.2 times their
    propagated variance (at 0.5-1.7 standard errors), and the bars came out too narrow: rms of error / sigma 1.13 on
    the weak-field cube, 1.06 with each bin's own excess (1.02 -> 1.00 and 1.05 -> 1.04 on the white and correlated
    cubes; the same fits, 0.1.dev701-702). The price: an excess that is only the estimate's scatter, or a noise level
    estimated too low (a 0.2 % error of the noise level alone shifts ``r2`` by 0.004), widens that bin's bars a
    little. A bin spread over too few squares for a standard error (`_MIN_BLOCKS`: a small lazy cube) keeps the floor,
    as before. Bins above the highest resolved one (excess above `BIN_SIGMAS` standard errors) take its factor
    instead: the top bins may lack squares on a small cube, and their own estimate would be rough. The bins
    are finest where the head is largest (the strongest 2, 5, 10 and 20 % of the pixels), where the signal is and the
    error grows fastest.
    Bins of equal counts of the propagated variance instead (format 7-8 files, ``edges``) mixed the strong pixels
    with weak ones: their bars were 1.2-2.5 times too narrow (rms of error / sigma where the truth exceeds 3 noise;
    ``benchmarks/denoise_seeds.py`` at 0.1.dev645). The standard error comes from the sums of ``block``'s squares
    (`_sum_error`): with noise through a Gaussian of 1 px, the pixels' own scatter understated it about 2.5 times
    (``sqrt(2 pi)``), and bins whose excess was the noise's scatter counted as resolved.
    """
    edges, sums = _bin_excess(r2, head, prop, block)
    # each bin's own excess, resolved or not; the floor for a bin without pixels, or spread over too few squares for
    # a standard error (`_MIN_BLOCKS`), whose estimate is too rough (up to `_MAX_FACTOR` on a few pixels)
    factors = [
        _factor(excess, heads) if heads > 0 and math.isfinite(spread) else _MIN_FACTOR for excess, spread, heads in sums
    ]
    resolved = [excess > BIN_SIGMAS * spread for excess, spread, _ in sums]
    # The head ranks the error highest in the top bins, and they hold the fewest squares (2 % of the pixels): on a
    # small cube they may go unresolved for want of squares (`_MIN_BLOCKS`). Whatever left a bin above a resolved
    # one unresolved, it takes that bin's factor (not the floor, nor a rough estimate of its own).
    if any(resolved):
        top = max(b for b in range(N_BINS) if resolved[b])
        factors[top + 1 :] = [factors[top]] * (N_BINS - 1 - top)
    return {"head_edges": edges.tolist(), "factors": factors}


def _bin_excess(
    r2: np.ndarray, head: np.ndarray, prop: np.ndarray, block: np.ndarray
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """
    The edges of `_bin_factors`' bins of the head's variance (its quantiles `HEAD_QUANTILES`) and, for each bin, the
    sum of its excess ``r2 - prop``, that sum's standard error (`_sum_error`, by ``block``) and the sum of ``head``.
    """
    edges = np.quantile(head, HEAD_QUANTILES) if head.size else np.zeros(N_BINS - 1)
    which = np.digitize(head, edges)
    sums = []
    for b in range(N_BINS):
        mine = which == b
        excess = r2[mine] - prop[mine]
        sums.append((float(excess.sum()), _sum_error(excess, block[mine]), float(head[mine].sum())))
    return edges, sums


def _factor(num: float, den: float) -> float:
    """
    The factor that makes the mean calibrated variance of the head the measured error: ``num``, the sum of the
    squared errors less the propagated noise (the head's share), over ``den``, the sum of the head's variances.
    """
    scale = math.sqrt(max(num, 0.0) / den) if den > 0 else 1.0
    # A factor far from 1 means the variance head learnt little; keep it within a sane range.
    return float(min(max(scale, _MIN_FACTOR), _MAX_FACTOR))


def _frame_groups(combos: list, basis, rng: np.random.Generator, n_tunings: int, need: int, lazy: bool) -> list:
    """
    The frames ``(scan, wavelength)`` to calibrate on, in groups rotated back together: one frame each, or, with a
    spectral basis, all components of a scan (as many scans as keep the number of frames that of ``combos``).

    With ``n_tunings`` (whole scans: the number of wavelengths; else 0), all wavelengths of whole scans of
    ``combos``: ``need`` scans of them (as many as give `_TUNING_PX` pixels per tuning for the factors per tuning,
    `_BINNED_PX` for temporal mode's bins), two at most of a lazy cube, which is read.
    """
    if basis is None and not n_tunings:
        return [[c] for c in combos]
    n_w = len(basis) if basis is not None else n_tunings
    times = sorted({t for t, _ in combos})
    n_pick = len(combos) // n_w
    if n_tunings:
        n_pick = max(n_pick, min(need, 2) if lazy else need)
    picked = sorted(rng.choice(times, max(1, min(len(times), n_pick)), replace=False).tolist())
    if basis is None:
        return [[(t, w)] for t in picked for w in range(n_w)]
    return [[(t, w) for w in range(n_w)] for t in picked]


class _ScanCache:
    """A lazy cube's frames for `_frame_pair`: each (scan, Stokes parameter) computed once, all wavelengths at once."""

    def __init__(self, data) -> None:
        self.data, self.shape, self.cache = data, data.shape, {}

    def __getitem__(self, key):
        t, s, *rest = key
        if (t, s) not in self.cache:
            self.cache[(t, s)] = np.asarray(self.data[t, s])
        return self.cache[(t, s)][tuple(rest)]
