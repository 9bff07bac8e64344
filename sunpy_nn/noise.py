"""
The noise level of a stack of frames of one Stokes parameter (`estimate_noise`): temporal (scan differences),
spatial (Immerkaer 1996) and cross-calibrated, which the denoiser scales its cube by. Its functions are also
`sunpy_nn.metrics`'s, where the public one is documented.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import ndimage

__all__ = ["NOISE_METHODS", "estimate_noise"]

# Immerkaer (1996)'s kernel, the difference of two Laplacians, scaled to unit gain on white noise (its norm is 6).
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64) / 6
NOISE_METHODS = ("auto", "temporal", "spatial", "cross-calibrated")


#: The fewest finite values a robust noise level is taken from (a 3 x 3 image's Immerkaer filter leaves one, whose
#: spread is 0: a level of 0 that later divisions would turn into infinities).
MIN_NOISE_SAMPLES = 10

#: The difference of two scans of a polarisation parameter counts where the mean of the other scans is at most this
#: many standard deviations of that mean's noise (`_weak_pixels`): 95 % of the pixels where there is no signal.
WEAK_SIGNAL = 2.0


def _mad_sigma(d: np.ndarray) -> float:
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise ValueError("Cannot estimate the noise: no finite pixels")
    if d.size < MIN_NOISE_SAMPLES:
        raise ValueError(
            f"Cannot estimate the noise from {d.size} values (at least {MIN_NOISE_SAMPLES} are needed): give larger "
            "frames or more scans"
        )
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


def _high_pass(images: np.ndarray) -> np.ndarray:
    """Immerkaer's filter on every image of a (..., y, x) stack, border pixels dropped."""
    flat = np.asarray(images, dtype=np.float64).reshape(-1, *images.shape[-2:])
    return np.stack([ndimage.convolve(f, _IMMERKAER, mode="reflect")[1:-1, 1:-1] for f in flat])


@functools.lru_cache(maxsize=1)
def _correlation_table() -> tuple[np.ndarray, np.ndarray]:
    """Gaussian correlation sigmas (px) and the ratio of Immerkaer-filtered to plain noise std that each gives."""
    sigmas = np.linspace(0.0, 4.0, 161)
    delta = np.zeros((49, 49))
    delta[24, 24] = 1.0
    ratios = []
    for s in sigmas:
        kernel = ndimage.gaussian_filter(delta, s) if s > 0 else delta  # white noise through it: correlated noise
        ratios.append(math.sqrt((ndimage.convolve(kernel, _IMMERKAER) ** 2).sum() / (kernel**2).sum()))
    return sigmas, np.array(ratios)


def _unit_noise(rng: np.random.Generator, shape: tuple, correlation: float, dtype=np.float64) -> np.ndarray:
    """
    Gaussian noise of unit variance and ``shape`` (any rank, images on the last two axes), white or, with
    ``correlation`` > 0, through a Gaussian of that sigma (px) over each image and rescaled to unit variance: the
    spatially correlated noise of restored data (the model of `_gaussian_correlation`), as the synthetic CRISP cube
    draws it and temporal mode's bootstrap does.
    """
    eps = rng.standard_normal(shape)
    # periodic: reflection fed mirrored copies into the filter, 1.3x the level in the border columns and, after
    # rescaling, 1.4 % below it inside (at 1 px)
    if correlation > 0:
        eps = ndimage.gaussian_filter(eps, (0,) * (len(shape) - 2) + (correlation, correlation), mode="grid-wrap")
        eps /= eps.std()
    return eps.astype(dtype, copy=False)


def _gaussian_correlation(ratio: float) -> float:
    """
    The spatial correlation of noise, as the sigma (px) of a Gaussian through which white noise would have passed,
    from ``ratio``, the Immerkaer-filtered over the plain robust std of its scan differences (1 for white noise,
    0.08 for a Gaussian of 1 px): the two statistics of the cross-calibrated estimate. 0 for white noise.
    """
    sigmas, ratios = _correlation_table()
    if not ratio < ratios[0]:
        return 0.0
    return float(np.interp(ratio, ratios[::-1], sigmas[::-1]))  # the ratio falls as the correlation grows


def _scan_differences(stacks) -> np.ndarray:
    """Differences of consecutive scans over sqrt(2) (unit gain on white noise) of (time, ..., y, x) stacks."""
    return np.concatenate(
        [((st[1:] - st[:-1]) / math.sqrt(2)).reshape(-1, *st.shape[-2:]) for st in stacks if len(st) >= 2]
    )


def _weak_signal_mask(stacks, d: np.ndarray) -> np.ndarray:
    """
    For each value of ``d``, the `_scan_differences` of ``stacks``, whether its pixel is weakly polarised in its frame
    (`_weak_pixels`): a boolean array of ``d``'s shape.
    """
    masks, start = [], 0
    for st in stacks:
        if len(st) < 2:  # (no differences)
            continue
        frames = st.reshape(len(st), -1, *st.shape[-2:])  # (scan, frame, y, x)
        n = (len(st) - 1) * frames.shape[1]
        block = d[start : start + n].reshape(len(st) - 1, *frames.shape[1:])
        start += n
        mask = np.empty(block.shape, bool)
        for f in range(frames.shape[1]):
            mask[:, f] = _weak_pixels(frames[:, f], block[:, f])
        masks.append(mask.reshape(-1, *st.shape[-2:]))
    return np.concatenate(masks)


def _weak_pixels(scans: np.ndarray, d: np.ndarray) -> np.ndarray:
    """
    Whether each of ``d``, the scan differences ``(scan - 1, y, x)`` of one frame's ``scans`` ``(scan, y, x)``, lies
    at a weakly polarised pixel: where the absolute mean of the other scans is at most `WEAK_SIGNAL` standard
    deviations of that mean's noise.

    A polarisation signal (Q, U, V) is near zero in most pixels, and where it is weak so is its change between scans:
    there the scan differences hold the noise alone (changing fields made Q/U's 1.04 times the noise on the evolving
    cube of ``benchmarks/denoise_science.py``; their weak pixels' 1.00). The pixels of the difference of scans t and
    t + 1 are chosen by the mean of the other scans, whose noise is independent of theirs: the choice cannot bias the
    noise level, whatever the noise's distribution. A pair of scans has no other scan: its own mean chooses, which is
    independent of the difference for Gaussian noise of equal variance in both (heavy-tailed noise comes out low). The
    noise of the mean comes from a first pass over the weaker half of the pixels (a mean at most its median), which
    alone would leave half of them: a noise level 1.5 times as scattered on a small frame. A mean over fewer scans
    (a pixel lost in some) has more noise. A frame too small to choose from counts all its pixels; where too few are
    weak (a fully polarised frame), the weaker half counts.
    """
    finite = np.isfinite(scans)
    values = np.where(finite, scans, 0.0)
    total, count = values.sum(axis=0), finite.sum(axis=0)

    def level(t):  # the signal at the pixels of difference t, and the number of scans it is the mean of
        n = count if len(scans) == 2 else count - finite[t] - finite[t + 1]
        sums = total if len(scans) == 2 else total - values[t] - values[t + 1]
        return np.abs(np.divide(sums, n, out=np.full(n.shape, np.inf), where=n > 0)), n  # no scan: never chosen

    def usable(mask):  # finite differences at the mask's pixels inside the border (what the filtered statistic sees)
        return int(np.isfinite(d[:, 1:-1, 1:-1][mask[:, 1:-1, 1:-1]]).sum())

    half = np.zeros(d.shape, bool)
    for t in range(len(d)):
        lv, n = level(t)
        if (n > 0).any():
            half[t] = lv <= np.median(lv[n > 0])
    if usable(half) < MIN_NOISE_SAMPLES:
        return np.ones(d.shape, bool)
    threshold = WEAK_SIGNAL * _mad_sigma(d[half])
    weak = np.empty(d.shape, bool)
    for t in range(len(d)):
        lv, n = level(t)
        weak[t] = lv <= threshold / np.sqrt(np.maximum(n, 1))
    return weak if usable(weak) >= MIN_NOISE_SAMPLES else half


def _temporal_sigma(d: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The robust std of scan differences ``d`` (``(n, y, x)``), over the pixels of ``mask`` where given."""
    return _mad_sigma(d if mask is None else d[mask])


def _filtered_sigma(d: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The robust std of Immerkaer-filtered scan differences, at the pixels of ``mask`` (its inner part) if given."""
    filtered = _high_pass(d)
    return _mad_sigma(filtered if mask is None else filtered[mask[:, 1:-1, 1:-1]])


def _estimate(stacks, method: str, references=None, polarisation: bool = False) -> float:
    """
    `estimate_noise` on a list of (time, wavelength, y, x) stacks (pairs of scans sampled from a lazy cube).

    ``references``: a list of references (each a list of stacks) for ``"cross-calibrated"``: the median of the usable
    ones (a constant one is skipped), with the frames' filtered statistic computed once. ``polarisation``: the
    frames are a polarisation parameter's, whose scan differences count in their weakly polarised pixels only
    (`_weak_signal_mask`); a reference's always do.
    """
    stacks = [np.asarray(st, dtype=np.float64) for st in stacks]
    n_t = max(len(st) for st in stacks)
    if method == "auto":
        method = "spatial" if n_t < 2 else ("cross-calibrated" if references else "temporal")
    if method in ("temporal", "cross-calibrated") and n_t < 2:
        raise ValueError(f"method={method!r} needs at least 2 scans; use method='spatial' for a single scan")
    if method == "spatial":
        return _mad_sigma(_high_pass(np.concatenate([st.reshape(-1, *st.shape[-2:]) for st in stacks])))
    d = _scan_differences(stacks)
    mask = _weak_signal_mask(stacks, d) if polarisation else None
    if method == "temporal":
        return _temporal_sigma(d, mask)
    if not references:
        raise ValueError("method='cross-calibrated' needs reference= frames of a polarisation Stokes parameter")
    own_hp = _filtered_sigma(d, mask)
    estimates = []
    for reference in references:
        if max(len(st) for st in reference) < 2:
            raise ValueError("method='cross-calibrated' needs at least 2 scans of the reference too")
        reference = [np.asarray(st, dtype=np.float64) for st in reference]
        d_ref = _scan_differences(reference)
        ref_mask = _weak_signal_mask(reference, d_ref)
        ref_hp = _filtered_sigma(d_ref, ref_mask)
        if ref_hp > 0:  # a constant reference cannot calibrate
            estimates.append(_temporal_sigma(d_ref, ref_mask) * own_hp / ref_hp)
    if not estimates:
        raise ValueError("No reference is usable for method='cross-calibrated': their scan differences are constant")
    return float(np.median(estimates))


def estimate_noise(
    frames: np.ndarray, *, method: str = "auto", reference: np.ndarray | None = None, polarisation: bool = False
) -> float:
    """
    Robust noise standard deviation of a stack of frames ``(time, wavelength, y, x)`` of one Stokes parameter.

    All estimates are ``1.4826 MAD`` (the standard deviation of Gaussian noise, robust to the few pixels where the
    signal dominates). NaN pixels are ignored.

    Parameters
    ----------
    frames : array_like
        Frames of one Stokes parameter, ``(time, wavelength, y, x)`` (or any ``(..., y, x)`` for ``"spatial"``).
    method : {"auto", "temporal", "spatial", "cross-calibrated"}
        ``"temporal"``: the differences of consecutive scans over ``sqrt(2)``; exact for white and correlated noise
        where the signal barely changes between scans, biased high where it evolves (granulation makes Stokes I's
        ~1.5 times too large at a 28 s cadence; changing fields made Q/U's 1.04 times too large on a synthetic cube,
        which ``polarisation=True`` undoes). ``"spatial"``: Immerkaer (1996)'s Laplacian-difference filter on
        each image; one scan suffices, but it assumes white noise (correlated, e.g. MOMFBD-restored, noise comes out
        too low). ``"cross-calibrated"``, for a parameter that evolves (I): the scan differences of ``frames`` and of
        ``reference`` are high-pass filtered with Immerkaer's kernel, where the evolution of granulation has little
        power, and the ratio of the two filtered estimates scales the temporal estimate of ``reference`` (over its
        weakly polarised pixels, as ``polarisation=True``): unbiased for white and correlated noise alike, as long as
        both share the spatial noise correlation (the same camera and restoration). ``"auto"``: cross-calibrated
        with ``reference`` and two or more scans, else temporal with two or more scans, spatial with one.
    reference : array_like, optional
        Frames of a polarisation Stokes parameter of the same cube (same time axis), for ``"cross-calibrated"``.
    polarisation : bool, optional
        ``frames`` are a polarisation Stokes parameter (Q, U or V), whose signal is near zero in most pixels: the
        difference of scans t and t + 1 counts only at the weakly polarised pixels of its frame, where a changing
        field barely enters it: where the absolute mean of the other scans is at most twice that mean's noise (which
        a first pass over the weaker half gives). The other scans' noise is independent of the difference's, so the
        choice leaves the noise level unbiased. With two scans their own mean chooses, unbiased for Gaussian noise of
        equal variance in both; heavy-tailed noise then comes out low (simulated: Student's t of 10 degrees of
        freedom 2.3 % low, Laplace 13 %). With ``"cross-calibrated"`` it applies to ``frames`` too; ignored for
        ``"spatial"``. Not for Stokes I, whose granulation evolves in every pixel. Default False (all pixels).

    Returns
    -------
    float
        The noise standard deviation, in the unit of ``frames``.

    Raises
    ------
    ValueError
        No finite pixel, fewer than 10 finite values, an unknown method, a single scan (of
        ``frames`` or ``reference``) for a temporal method, or ``"cross-calibrated"`` without a usable
        ``reference`` (none given, or its scan differences are constant).

    References
    ----------
    J. Immerkaer, "Fast noise variance estimation", Computer Vision and Image Understanding 64, 300 (1996).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.metrics import estimate_noise
    >>> frames = np.random.default_rng(0).normal(0, 3e-3, (4, 2, 64, 64))
    >>> round(estimate_noise(frames) / 3e-3, 1)
    1.0
    """
    if method not in NOISE_METHODS:
        raise ValueError(f"method must be one of {NOISE_METHODS}, not {method!r}")
    frames = np.asarray(frames, dtype=np.float64)
    if method != "spatial" and frames.ndim < 3:
        frames = frames[None]  # one image: a single scan
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float64)
        if reference.ndim < 3:
            reference = reference[None]
    return _estimate([frames], method, None if reference is None else [[reference]], polarisation)
