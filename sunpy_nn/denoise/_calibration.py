"""The calibration of the denoiser's aleatoric uncertainty on Noise2Noise pairs, after training."""

from __future__ import annotations

import copy
import logging
import math

import numpy as np

from sunpy_nn.denoise._spectral import from_basis
from sunpy_nn.nn.lazy import is_dask
from sunpy_nn.training.noise2noise import Noise2NoisePairs, _calibration_frames, _frame_pair

log = logging.getLogger(__name__)


class _CalibrationMixin:
    """`Denoiser.calibration`, measured by `Denoiser.fit` with the trained network (``model``)."""

    def _calibrate(self, labels, selected, sampler: Noise2NoisePairs, dev) -> dict[str, float]:
        """
        Factor on the aleatoric standard deviation of each Stokes parameter, from Noise2Noise pairs.

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
        it by ~5 %), but it still corrects a variance head that a short training left far off. With a spectral
        basis (``spectral_pca``) all components of a scan are rotated back and the factor is measured at the
        tunings, where the uncertainty is used.

        Pixels: whole frames of a sample of scans and wavelengths, borders included (the network is worse there,
        and the factor is an average over the field of view). The narrow held-out validation strip lies at the
        right border only and gave factors up to 20 % too large; the network (~1e5 weights) does not fit the
        noise of millions of pixels, so the pairs' own pixels serve: the training ``sampler``'s cube (in noise
        units), as whole-frame pairs of its kind.
        """
        rng = np.random.default_rng(0)
        combos, a = _calibration_frames(sampler, rng)
        n_out = self.model.out_channels

        def run(inp):
            return self._run_one(np.asarray(inp, np.float32), dev, None, n_out, None, "float32", False)

        out = {}
        for s in selected:
            basis = self.spectral_basis.get(labels[s]) if sampler.mode == "image" else None
            correlation = self.noise_correlation.get(labels[s], 0.0) if sampler.temporal else 0.0
            r2s, heads, props = [], [], []
            pairs = sampler
            if basis is not None and is_dask(sampler.data):  # each scan's spectra read once, not once per component
                pairs = copy.copy(sampler)
                pairs.data = _ScanCache(sampler.data)
            for frames in _frame_groups(combos, basis, rng):
                state = rng.bit_generator.state
                parts = []
                for t, w in frames:
                    rng.bit_generator.state = state  # the same neighbour sub-sampling for every component of a scan
                    inp, y, base = _frame_pair(pairs, t, s, w, rng)
                    f, log_var = run(inp)  # with pixel shuffling the pair is already made of one phase image
                    # the neighbours' noise in f, which prediction adds to the head's variance (temporal mode)
                    prop = self._propagated_variance(inp, correlation, lambda x: run(x)[0]) if sampler.temporal else 0
                    head = np.broadcast_to(np.exp(log_var), f.shape)  # one variance for all channels
                    parts.append(
                        [np.broadcast_to(np.asarray(v, np.float64), f.shape) for v in (y, base, f, head, prop)]
                    )
                y, base, f, head, prop = (np.concatenate(v) for v in zip(*parts, strict=True))
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
            # the head's share of the measured error, the propagated part being the neighbours' noise
            num = float(sum(r.sum() for r in r2s) - sum(p.sum() for p in props))
            den = float(sum(h.sum() for h in heads))
            scale = math.sqrt(max(num, 0.0) / den) if den > 0 else 1.0
            # A factor far from 1 means the variance head learnt little; keep it within a sane range.
            out[labels[s]] = float(min(max(scale, 0.05), 20.0))
            log.info("Stokes %s: uncertainty calibration factor %.3f", labels[s], out[labels[s]])
        return out


def _frame_groups(combos: list, basis, rng: np.random.Generator) -> list[list]:
    """
    The frames ``(scan, wavelength)`` to calibrate on, in groups rotated back together: one frame each, or, with a
    spectral basis, all components of a scan (as many scans as keep the number of frames that of ``combos``).
    """
    if basis is None:
        return [[c] for c in combos]
    n_w = len(basis)
    times = sorted({t for t, _ in combos})
    n_pick = max(1, min(len(times), len(combos) // n_w))
    picked = sorted(rng.choice(times, n_pick, replace=False).tolist())
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
