"""The calibration of the denoiser's aleatoric uncertainty on Noise2Noise pairs, after training."""

from __future__ import annotations

import logging
import math

import numpy as np

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
        error. In temporal mode the target is scan t itself and its noise variance, 1 in noise units, is
        subtracted, and so is the neighbours' noise propagated into the prediction (`_propagated_variance`), which
        prediction adds to the head's variance: the factor scales the head to the rest of the error. It depends on
        the noise estimate (0.2 % in the noise moves it by ~5 %), but it still corrects a variance head that a short
        training left far off.

        Pixels: whole frames of a sample of scans and wavelengths, borders included (the network is worse there,
        and the factor is an average over the field of view). The narrow held-out validation strip lies at the
        right border only and gave factors up to 20 % too large; the network (~1e5 weights) does not fit the
        noise of millions of pixels, so the pairs' own pixels serve: the training ``sampler``'s cube (in noise
        units), as whole-frame pairs of its kind.
        """
        rng = np.random.default_rng(0)
        combos, a = _calibration_frames(sampler, rng)
        n_out = self.model.out_channels
        out = {}
        for s in selected:
            num = den = 0.0
            for t, w in combos:
                inp, y, base = _frame_pair(sampler, t, s, w, rng)
                # _run_one: with pixel shuffling the pair is already made of one phase image
                f, log_var = self._run_one(np.asarray(inp, np.float32), dev, None, n_out, None, "float32", False)
                # The target's noise variance, removed with the pair; in temporal mode scan t's own, 1 in noise units,
                # cannot be removed with the pair: subtracted.
                target_noise = 1.0 if sampler.temporal else a * (y - base) ** 2
                r2 = (y - f) ** 2 - target_noise
                if sampler.temporal:  # the neighbours' noise in f, which prediction adds to the head's variance
                    r2 = r2 - self._propagated_variance(
                        np.asarray(inp, np.float32),
                        self.noise_correlation.get(labels[s], 0.0),
                        lambda a: self._run_one(a, dev, None, n_out, None, "float32", False)[0],
                    )
                var = np.broadcast_to(np.exp(log_var), f.shape)  # one variance for all channels
                ok = np.isfinite(r2) & np.isfinite(var)
                num += float(r2[ok].sum())
                den += float(var[ok].sum())
            scale = math.sqrt(max(num, 0.0) / den) if den > 0 else 1.0
            # A factor far from 1 means the variance head learnt little; keep it within a sane range.
            out[labels[s]] = float(min(max(scale, 0.05), 20.0))
            log.info("Stokes %s: uncertainty calibration factor %.3f", labels[s], out[labels[s]])
        return out
