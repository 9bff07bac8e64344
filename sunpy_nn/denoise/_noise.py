"""The noise level of every Stokes parameter of a cube, and the warning when it is not the training noise."""

from __future__ import annotations

import logging
import math
import warnings

import astropy.units as u
import numpy as np

from sunpy_nn.denoise._align import intensity_index, registration, scan_shifts, shift_frames
from sunpy_nn.nn.lazy import is_dask
from sunpy_nn.noise import (
    _estimate,
    _filtered_sigma,
    _gaussian_correlation,
    _scan_differences,
    _temporal_sigma,
    _weak_signal_mask,
)
from sunpy_nn.utils import SunpyNNUserWarning

log = logging.getLogger(__name__)

__all__ = ["NOISE_MISMATCH", "NOISE_TUNING_SPREAD"]

# A reused denoiser warns when a cube's noise differs from the noise it was trained at by more than this factor.
NOISE_MISMATCH = 2.0

# ``noise_per_tuning=None``: a Stokes parameter's tunings get noise levels of their own where these differ by more
# than this factor (largest over smallest). On the uniform-noise cubes of benchmarks/denoise_science.py the estimates
# spread by up to 1.09 (strong, changing signals in the scan differences); photon noise differs 1.5-2x between the
# continuum and the core of a deep line.
NOISE_TUNING_SPREAD = 1.25


def _tuning_sigma(stacks, weak: bool) -> float:
    """The robust std of the Immerkaer-filtered scan differences of one tuning's stacks; of Q, U and V (``weak``)
    over their weakly polarised pixels, where changing fields, strongest in the line core, barely enter."""
    d = _scan_differences(stacks)
    return _filtered_sigma(d, _weak_signal_mask(stacks, d) if weak else None)


class _NoiseMixin:
    """`Denoiser`'s noise levels (``self.noise``: the training noise of each Stokes parameter)."""

    noise: dict[str, float]

    def _noise_levels(
        self, canon, labels, selected, sampled=False, correlation=None, align=False, steps=None
    ) -> tuple[dict, dict]:
        """
        Noise level of every Stokes parameter, and the method of each; a
        `ValueError` when a denoised one (``selected``) has none, e.g. a constant image. Pass-through Stokes
        parameters may have zero noise.

        ``correlation``: a dict that, with two or more scans, receives the spatial correlation of each selected
        Stokes parameter's noise (`sunpy_nn.noise._gaussian_correlation`, a Gaussian sigma in px) from the same
        statistics of the scan differences: for Q, U and V their own; for Stokes I the median of the references',
        because the evolution of granulation inflates its plain differences and would read as correlation.

        With two or more scans, polarisation parameters (Q, U, V) use the temporal estimate over their weakly
        polarised pixels (`estimate_noise` with ``polarisation=True``), so that changing fields do not bias it, and
        Stokes I the cross-calibrated one, so that the evolution of granulation does not; with one scan, all use
        the spatial one.

        A lazy cube (or ``sampled=True``) is sampled: a few pairs of scans at a few wavelengths, the same frames
        whether the data are in memory or not, so eager and lazy results agree. With ``align`` (and ``sampled``),
        the first scan of each sampled pair is first registered onto the second (`scan_shifts` on their Stokes I at
        the sampled wavelengths, read for this), as `fit` estimates on the aligned scans: a drift between the scans
        of a pair would read as noise. ``steps``: a dict that receives those shifts (scan t onto scan t + 1, by t),
        for a lazy fit's `StackRegistration`, which measures its steps on the same wavelengths.

        The scan differences of each Stokes parameter are computed once: the temporal estimates of Q, U and V and
        their high-pass filtered statistics, the references of Stokes I's cross-calibrated estimate, come from the
        same differences (the arithmetic of `estimate_noise`, term for term).
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
            pairs = read_pairs(s, starts, waves)
            if intensity is None:
                return pairs
            if not shift_cache:  # registers scan t onto scan t + 1, for each pair: on their Stokes I
                for t, pair in zip(starts, read_pairs(intensity, starts, waves), strict=True):
                    shift_cache[t] = scan_shifts(pair.astype(np.float64).mean(axis=1))[0]
            return [np.stack([shift_frames(p[0], shift_cache[t]), p[1]]) for t, p in zip(starts, pairs, strict=True)]

        # the sampled pairs are registered on Stokes I (a cube without a Stokes axis: its own), if at all
        intensity = intensity_index(labels) if align and n_t >= 2 and (sampled or is_dask(canon)) else None
        shift_cache, read = ({} if steps is None else steps), {}

        def read_pairs(s, starts, waves):  # Stokes I's pairs serve its own estimate and the shifts: read once
            if s not in read:
                read[s] = [np.asarray(canon[t : t + 2, s][:, waves]) for t in starts]
            return read.pop(s) if s != intensity else read[s]

        # Statistics of the scan differences, kept (a number each) so that no difference is computed twice; the
        # differences themselves are dropped at once (as large as the cube's frames of one Stokes parameter).
        temporal, high_pass = {}, {}

        def differences(s):  # and, for Q, U and V, their weakly polarised pixels (estimate_noise's polarisation)
            frames = [np.asarray(st, dtype=np.float64) for st in stacks(s)]
            d = _scan_differences(frames)
            return d, (_weak_signal_mask(frames, d) if s in polarisation else None)

        def temporal_sigma(s, d=None):
            if s not in temporal:
                temporal[s] = _temporal_sigma(*(differences(s) if d is None else d))
            return temporal[s]

        def high_pass_sigma(s):  # a reference's: its temporal estimate comes from the same differences
            if s not in high_pass:
                d = differences(s)
                high_pass[s] = _filtered_sigma(*d)
                temporal_sigma(s, d)
            return high_pass[s]

        polarisation = [s for s, lab in enumerate(labels) if lab in ("Q", "U", "V")]
        out, methods = {}, {}
        for s in range(canon.shape[1]):
            refs = [r for r in polarisation if r != s]
            if n_t < 2:
                method, sigma = "spatial", _estimate(stacks(s), "spatial")
            elif s in polarisation or not refs:
                if correlation is not None and s in selected:  # both statistics of one computation of its differences
                    high_pass_sigma(s)
                method, sigma = "temporal", temporal_sigma(s)
            else:  # Stokes I: its evolution biases the temporal estimate
                d = differences(s)
                try:
                    # estimate_noise(method="cross-calibrated"): the median over the usable references
                    own = _filtered_sigma(*d)
                    estimates = []
                    for r in refs:
                        ref_hp = high_pass_sigma(r)
                        if ref_hp > 0:  # a constant reference cannot calibrate
                            estimates.append(temporal_sigma(r) * own / ref_hp)
                    if not estimates:
                        raise ValueError("no usable reference")
                    method, sigma = "cross-calibrated", float(np.median(estimates))
                except ValueError:  # no usable (non-constant) reference
                    method, sigma = "temporal", temporal_sigma(s, d)
            if s in selected and not sigma > 0:
                raise ValueError(f"The noise level of Stokes {labels[s]} is {sigma}: is the cube constant?")
            out[labels[s]], methods[labels[s]] = sigma, method
        if correlation is not None and n_t >= 2:
            for s in selected:
                usable = [r for r in polarisation if r != s and high_pass_sigma(r) > 0] if labels[s] == "I" else []
                ratios = [high_pass[r] / temporal[r] for r in usable] or [high_pass_sigma(s) / temporal_sigma(s)]
                correlation[labels[s]] = _gaussian_correlation(float(np.median(ratios)))
        return out, methods

    def _tuning_profile(self, canon, labels, selected, register=None) -> dict[str, list[float]]:
        """The profiles of the selected Stokes parameters of `_tuning_profiles` (``noise_tunings``)."""
        return self._tuning_profiles(canon, labels, selected, register, others=False)[0]

    def _tuning_profiles(self, canon, labels, selected, register=None, others=True) -> tuple[dict, dict]:
        """
        The noise of each tuning relative to its median tuning, as `_relative_noise` measures it, where it spreads by
        more than `NOISE_TUNING_SPREAD` (``noise_per_tuning=None``) or always (``True``); none with ``False``: of
        each selected Stokes parameter (``noise_tunings``, see `Denoiser`'s ``noise_per_tuning``), and of each of the
        others, whose noise levels it makes the median tuning's too. A warm start (a trained network) keeps the
        profile it learnt in, as it keeps the spectral basis.
        """
        if self.noise_per_tuning is False:
            return {}, {}
        others = [s for s in range(len(labels)) if s not in selected] if others else []
        warm = self.model is not None
        measured = self._relative_noise(canon, labels, others if warm else [*selected, *others], register)
        profile, passing, other_labels = {}, {}, {labels[s] for s in others}
        for lab, values in measured.items():
            if self.noise_per_tuning or values.max() / values.min() > NOISE_TUNING_SPREAD:
                (passing if lab in other_labels else profile)[lab] = [float(v) for v in values]
                log.info("Stokes %s: noise per tuning, relative %s", lab, np.round(values, 3).tolist())
        if warm:
            stored = self.noise_tunings
            profile = {labels[s]: list(stored[labels[s]]) for s in selected if labels[s] in stored}
        return profile, passing

    @staticmethod
    def _relative_noise(canon, labels, selected, register=None) -> dict[str, np.ndarray]:
        """
        The noise of each tuning of each selected Stokes parameter relative to its median tuning: the robust std of
        Immerkaer-filtered differences of consecutive scans at each tuning (none for one scan or one tuning). The
        filter keeps the noise and drops most of the solar signal, so that signals that change from scan to scan,
        strongest in the line core, do not read as noise there; of Q, U and V, only the weakly polarised pixels count
        (`_tuning_sigma`). Q, U and V share one profile, the median of theirs:
        demodulated from the same exposures, their photon noise follows ``sqrt(I)`` alike, and the median is less
        noisy. Stokes I takes that profile too where the cube has Q, U or V (measured for it): its own differences
        hold the evolution of granulation, which the filter does not remove entirely (10 % too high in a line wing
        of a small synthetic cube).

        4 pairs of consecutive scans spread over the series, at all wavelengths, in memory and lazily alike, each
        registered by ``register`` (a `StackRegistration`, which keeps the steps it measures) where given; `fit`
        has aligned a cube in memory already.
        """
        n_t, n_w = canon.shape[0], canon.shape[2]
        if n_w < 2 or n_t < 2:
            return {}
        starts = np.unique(np.linspace(0, n_t - 2, min(4, n_t - 1)).round().astype(int)).tolist()
        polarisation = [s for s, lab in enumerate(labels) if lab in ("Q", "U", "V")]
        wanted = [labels[s] for s in selected]
        if "I" in wanted and polarisation:  # Stokes I shares the polarisation parameters' profile
            selected = [s for s in selected if labels[s] != "I"] + [s for s in polarisation if s not in selected]
        relative = {}
        for s in selected:
            stacks = [np.asarray(canon[t : t + 2, s], np.float32) for t in starts]
            if register is not None:
                stacks = register(starts, stacks)
            weak = s in polarisation
            try:
                sigma = np.array(
                    [_tuning_sigma([np.asarray(st[:, w], np.float64) for st in stacks], weak) for w in range(n_w)]
                )
            except ValueError:  # a tuning without finite pixels: one level
                continue
            if np.all(sigma > 0):  # (a constant tuning: one level)
                relative[labels[s]] = sigma / np.median(sigma)
        measured = [lab for lab in relative if lab in ("Q", "U", "V")]
        if measured:
            shared = np.median([relative[lab] for lab in measured], axis=0)
            relative |= dict.fromkeys(measured, shared / np.median(shared))
            if "I" in wanted:
                relative["I"] = relative[measured[0]]
        return {lab: relative[lab] for lab in wanted if lab in relative}

    def _cube_profiles(self, canon, labels, selected, reused: bool, passing) -> dict[str, list[float]]:
        """
        What prediction needs of a cube's own noise profile (``canon``: the cube as it came, its sampled pairs
        registered on Stokes I with ``align``), measured once: for a ``reused`` denoiser, a warning where the profile
        of a Stokes parameter it denoises differs from its training cube's (`_warn_profile_mismatch`); and the
        profiles of the Stokes parameters ``passing`` through (not denoised), returned where they spread by more than
        `NOISE_TUNING_SPREAD` (always with ``noise_per_tuning=True``), for their uncertainty. Nothing with
        ``noise_per_tuning=False``, one scan or one tuning.
        """
        indices = [*(selected if reused else []), *passing]
        if self.noise_per_tuning is False or not indices or canon.shape[0] < 2 or canon.shape[2] < 2:
            return {}
        # (without Stokes I the pairs stay as they are, as the noise levels' do)
        register = registration(canon, labels) if self.align and intensity_index(labels) is not None else None
        measured = self._relative_noise(canon, labels, indices, register)
        if reused:
            self._warn_profile_mismatch(measured, labels, selected)
        passing_labels = {labels[s] for s in passing}
        return {
            lab: [float(v) for v in values]
            for lab, values in measured.items()
            if lab in passing_labels and (self.noise_per_tuning or values.max() / values.min() > NOISE_TUNING_SPREAD)
        }

    def _warn_profile_mismatch(self, measured: dict, labels, selected) -> None:
        """
        Warn when a reused denoiser meets a cube whose noise varies across the tunings (``measured``, by
        `_relative_noise`) otherwise than its training cube's (``noise_tunings``, or one level): by more than
        `NOISE_TUNING_SPREAD` in their ratio. Its uncertainty per tuning, and the network's input scale at each
        tuning, assume the training cube's profile.
        """
        for lab in [labels[s] for s in selected if labels[s] in measured]:
            measured_here, stored = measured[lab], self.noise_tunings.get(lab)
            if stored is not None and len(stored) != len(measured_here):
                continue  # another number of tunings: the stored profile is not applied (logged)
            ratio = measured_here / (1.0 if stored is None else np.asarray(stored))
            if ratio.max() / ratio.min() > NOISE_TUNING_SPREAD:
                trained = "one level" if stored is None else f"{np.round(stored, 2).tolist()}"
                warnings.warn(
                    f"Stokes {lab}: this cube's noise varies across its tunings as "
                    f"{np.round(measured_here, 2).tolist()} (relative to its median tuning), and the denoiser was "
                    f"trained with {trained}: the network's scale and the uncertainty at each tuning assume the "
                    "training cube's. Train a denoiser on this cube: Denoiser().fit(cube) (a warm start keeps the "
                    "profile it was trained with).",
                    SunpyNNUserWarning,
                    stacklevel=5,
                )

    def _tuning_factors(self, labels, indices, n_w: int, profile: dict | None = None) -> np.ndarray | None:
        """
        ``(1, len(indices), n_w, 1, 1)`` float32 factors of the Stokes parameters ``indices`` (of ``labels``): each
        one's relative noise in ``profile`` (default ``noise_tunings``; 1 where it has none), or `None` where no
        factor differs from 1. A profile for another number of tunings is not used (logged).
        """
        profile = self.noise_tunings if profile is None else profile
        factors = np.ones((1, len(indices), n_w, 1, 1), np.float32)
        for k, s in enumerate(indices):
            relative = profile.get(labels[s])
            if relative is None:
                continue
            if len(relative) != n_w:
                log.info(
                    "Stokes %s: %d tunings where the noise profile is for %d; using one noise level",
                    labels[s],
                    n_w,
                    len(relative),
                )
                continue
            factors[0, k, :, 0, 0] = relative
        return factors if (factors != 1).any() else None

    def _trained_noise(self, unit) -> dict[str, float]:
        """
        The training noise levels in ``unit`` (a cube's; `None` reads as dimensionless): the network's scale. Where
        the training unit is unknown (files saved before it was kept) they are used as they are; where it does not
        convert, too, with a warning: the denoiser cannot know this cube's scale.
        """
        if self.unit is None:
            return dict(self.noise)
        here, there = (u.dimensionless_unscaled if x is None else u.Unit(x) for x in (unit, self.unit))
        try:
            factor = there.to(here)
        except u.UnitConversionError:
            warnings.warn(
                f"This cube is in {here.to_string() or 'no unit (dimensionless)'} and the denoiser was trained on a "
                f"cube in {there.to_string() or 'no unit (dimensionless)'}, "
                "which does not convert: it scales the data by its training noise levels as they are, so the result "
                "is only right if both cubes are normalised alike. Convert the cube to the training cube's unit, or "
                "refit: Denoiser().fit(cube), or denoiser.fit(cube) to continue from its weights.",
                SunpyNNUserWarning,
                stacklevel=4,
            )
            return dict(self.noise)
        return {lab: sigma * factor for lab, sigma in self.noise.items()}

    def _warn_noise_mismatch(self, noise: dict, labels, selected, trained_noise: dict) -> None:
        """
        Warn when a Stokes parameter to denoise has a noise far from the one the network was trained at
        (``trained_noise``: in this cube's unit, `_trained_noise`).
        """
        for s in selected:
            lab = labels[s]
            trained, here = trained_noise[lab], noise.get(lab)
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
