"""
A denoiser's errors against a known truth (a synthetic cube): the rms error by the signal's strength, and the
reliability of its error bars (`coverage`, `standardised_error`, and both by the signal's strength). Numpy arrays or
Quantities in; floats, lists and dicts of floats out. `sunpy_nn.metrics` imports them, which is where users find them.

Examples
--------
>>> import numpy as np
>>> from sunpy_nn.metrics import coverage
>>> err = np.random.default_rng(0).normal(0, 1.0, 100_000)
>>> [round(c, 2) for c in coverage(err, np.zeros_like(err), np.ones_like(err))]
[0.68, 0.95]
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from sunpy_nn.utils import _in_one_unit

__all__ = ["SIGNAL_BINS", "binned_rms_error", "binned_standardised_error", "coverage", "standardised_error"]

#: Bins of ``|truth| / sigma`` of issue 14's strong-signal report: below the noise, 1-3, 3-10 and above 10 sigma.
SIGNAL_BINS = (0.0, 1.0, 3.0, 10.0, np.inf)


def _noise_level(sigma) -> float:
    """``sigma`` (already in the truth's unit) as a finite, positive float, or a ValueError that names it."""
    a = np.asarray(sigma)
    value = float(a) if a.ndim == 0 and a.dtype.kind in "iuf" else math.nan  # no bool, string or array
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"sigma must be a positive, finite number (the noise level), not {sigma!r}")
    return value


def _strength_bins(strength: np.ndarray, bins) -> list[tuple[float, float, np.ndarray]]:
    """``(low, high, mask)`` of each bin ``[low, high)`` of ``strength`` (``|truth| / sigma``)."""
    return [(float(lo), float(hi), (strength >= lo) & (strength < hi)) for lo, hi in itertools.pairwise(bins)]


def binned_rms_error(estimate, truth, sigma: float, bins=SIGNAL_BINS) -> list[dict]:
    """
    Rms error of a denoised array, in units of the noise, in bins of the true signal's strength ``|truth| / sigma``.

    Parameters
    ----------
    estimate, truth : array_like
        The denoised (or noisy, or baseline) values and the noise-free truth, same shape and unit. Quantities (both
        or none) are converted to ``truth``'s unit.
    sigma : float or `~astropy.units.Quantity`
        The noise standard deviation, in the unit of ``truth`` if a float.
    bins : sequence of float
        Bin edges of ``|truth| / sigma`` (default ``SIGNAL_BINS``: 0, 1, 3, 10, inf), each bin ``[low, high)``.

    Returns
    -------
    list of dict
        One per bin: ``low``, ``high``, ``n`` (finite pixels in it) and ``rms`` (rms error over ``sigma``, NaN for
        an empty bin).

    Raises
    ------
    ValueError
        Shapes differ, or ``sigma`` is not a positive, finite number; or some images are Quantities and others not.
    astropy.units.UnitConversionError
        The Quantities' units do not convert to one another.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.metrics import binned_rms_error
    >>> truth = np.repeat([0.0, 20.0], 5000)
    >>> noisy = truth + np.random.default_rng(0).normal(0, 1, truth.shape)
    >>> [round(b["rms"], 1) for b in binned_rms_error(noisy, truth, 1.0)]
    [1.0, nan, nan, 1.0]
    """
    truth, estimate, sigma = _in_one_unit(truth=truth, estimate=estimate, sigma=sigma)
    est, ref = np.asarray(estimate, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if est.shape != ref.shape:
        raise ValueError(f"estimate shape {est.shape} differs from the truth shape {ref.shape}")
    sigma = _noise_level(sigma)
    ok = np.isfinite(est) & np.isfinite(ref)
    strength, err = np.abs(ref[ok]) / sigma, (est[ok] - ref[ok]) / sigma
    return [
        {"low": lo, "high": hi, "n": int(m.sum()), "rms": float(np.sqrt(np.mean(err[m] ** 2))) if m.any() else math.nan}
        for lo, hi, m in _strength_bins(strength, bins)
    ]


def coverage(estimate, truth, uncertainty, k=(1.0, 2.0)) -> list[float]:
    """
    Fraction of errors within ``k`` standard uncertainties: the reliability of an error bar.

    For Gaussian errors and a calibrated uncertainty, 68.3 % fall within 1 sigma and 95.4 % within 2 sigma;
    larger fractions mean error bars that are too wide, smaller ones too narrow.

    Parameters
    ----------
    estimate, truth, uncertainty : array_like
        Estimated values, true values and the standard uncertainty of the estimate, same shape and unit.
        Quantities (all three or none) are converted to ``truth``'s unit.
    k : sequence of float
        Multiples of the uncertainty.

    Returns
    -------
    list of float
        ``mean(|estimate - truth| < k * uncertainty)`` over the finite pixels, for each ``k``.

    Raises
    ------
    ValueError
        Shapes differ, or no pixel is finite in all three; or some images are Quantities and others not.
    astropy.units.UnitConversionError
        The Quantities' units do not convert to one another.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.metrics import coverage
    >>> err = np.random.default_rng(0).normal(0, 2.0, 100_000)
    >>> [round(c, 2) for c in coverage(err, np.zeros_like(err), np.full_like(err, 2.0))]
    [0.68, 0.95]
    """
    err, unc = _errors_and_uncertainties(estimate, truth, uncertainty)
    return [float(np.mean(np.abs(err) < kk * unc)) for kk in np.atleast_1d(k)]


def _errors_and_uncertainties(estimate, truth, uncertainty, positive: bool = False, truth_too: bool = False):
    """
    The errors and uncertainties (float64) of the pixels finite in all three (and ``positive`` uncertainty), and
    with ``truth_too`` their true values.
    """
    ref, est, unc = _in_one_unit(truth=truth, estimate=estimate, uncertainty=uncertainty)
    est, ref, unc = (np.asarray(a, dtype=np.float64) for a in (est, ref, unc))
    if not est.shape == ref.shape == unc.shape:
        raise ValueError(f"shapes differ: estimate {est.shape}, truth {ref.shape}, uncertainty {unc.shape}")
    ok = np.isfinite(est) & np.isfinite(ref) & np.isfinite(unc) & ((unc > 0) if positive else True)
    if not ok.any():
        raise ValueError(
            "no pixel is finite in estimate, truth and uncertainty"
            + (" with a positive uncertainty" if positive else "")
        )
    return (est[ok] - ref[ok], unc[ok], ref[ok]) if truth_too else (est[ok] - ref[ok], unc[ok])


def standardised_error(estimate, truth, uncertainty) -> dict[str, float]:
    """
    Moments of the standardised error ``z = (estimate - truth) / uncertainty``: whether an error bar is a standard
    deviation, and how far the errors are from Gaussian.

    ``rms`` is 1 when the uncertainty is the standard deviation of the errors (variance-calibrated: larger means
    error bars too narrow, smaller too wide). ``kurtosis`` is 3 for Gaussian errors. `coverage` depends on both:
    for errors with heavier tails than a Gaussian (kurtosis above 3), a variance-calibrated uncertainty holds
    *more* than 68.3 % of them within 1 sigma. For Laplace errors (kurtosis 6), 75.7 % fall within 1 sigma and
    94.1 % within 2, so a coverage above 68 % alone does not mean that the error bars are too wide.

    Parameters
    ----------
    estimate, truth, uncertainty : array_like
        Estimated values, true values and the standard uncertainty of the estimate, same shape and unit.
        Quantities (all three or none) are converted to ``truth``'s unit.

    Returns
    -------
    dict
        ``rms``: ``sqrt(mean(z^2))``; ``kurtosis``: ``mean(z^4) / mean(z^2)^2``; over the finite pixels with a
        positive uncertainty.

    Raises
    ------
    ValueError
        Shapes differ, or no pixel is finite in all three with a positive uncertainty; or some arrays are Quantities
        and others not.
    astropy.units.UnitConversionError
        The Quantities' units do not convert to one another.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.metrics import coverage, standardised_error
    >>> err = np.random.default_rng(0).laplace(0, 2.0 / np.sqrt(2), 200_000)  # standard deviation 2
    >>> sd = np.full_like(err, 2.0)
    >>> z = standardised_error(err, np.zeros_like(err), sd)
    >>> round(z["rms"], 2), round(z["kurtosis"])  # a standard deviation; Laplace errors
    (1.0, 6)
    >>> [round(c, 2) for c in coverage(err, np.zeros_like(err), sd)]  # a standard deviation, yet not 0.68
    [0.76, 0.94]
    """
    err, unc = _errors_and_uncertainties(estimate, truth, uncertainty, positive=True)
    z2 = (err / unc) ** 2
    m2 = float(np.mean(z2))
    return {"rms": math.sqrt(m2), "kurtosis": float(np.mean(z2**2)) / m2**2 if m2 > 0 else math.nan}


def binned_standardised_error(estimate, truth, uncertainty, sigma: float, bins=SIGNAL_BINS, k=(1.0, 2.0)) -> list[dict]:
    """
    The reliability of error bars by the true signal's strength ``|truth| / sigma``: `standardised_error`'s rms
    and the `coverage` in each bin.

    Over all pixels of a Stokes cube, the quiet Sun outnumbers the strong signals many times, so a coverage near
    68 % within 1 sigma can hide error bars that are too narrow exactly where the signal is strong, which is where a
    Stokes inversion leans on them. In each bin, an rms of ``z = (estimate - truth) / uncertainty`` of 1 means the
    error bars are standard deviations there; above 1 they are too narrow, below 1 too wide. Unlike `coverage`,
    which counts a pixel of zero uncertainty as not covered, pixels without a positive uncertainty are left out (as
    by `standardised_error`), so the bins' coverages weighted by ``n`` equal the pooled `coverage` only when every
    uncertainty is positive.

    Parameters
    ----------
    estimate, truth, uncertainty : array_like
        Estimated values, true values and the standard uncertainty of the estimate, same shape and unit.
        Quantities (all three or none) are converted to ``truth``'s unit.
    sigma : float or `~astropy.units.Quantity`
        The noise standard deviation that scales the signal's strength, in the unit of ``truth`` if a float.
    bins : sequence of float
        Bin edges of ``|truth| / sigma`` (default ``SIGNAL_BINS``: 0, 1, 3, 10, inf), each bin ``[low, high)``.
    k : sequence of float
        Multiples of the uncertainty for the coverage.

    Returns
    -------
    list of dict
        One per bin: ``low``, ``high``, ``n`` (pixels in it, finite in all three with a positive uncertainty, as
        for `standardised_error`), ``rms`` (the rms of ``z``) and ``coverage`` (the fraction with ``|z| < k``, for
        each ``k``, as `coverage` counts); NaN for an empty bin.

    Raises
    ------
    ValueError
        Shapes differ, no pixel is finite in all three with a positive uncertainty, or ``sigma`` is not a positive,
        finite number; or some arrays are Quantities and others not.
    astropy.units.UnitConversionError
        The Quantities' units do not convert to one another.

    Examples
    --------
    Error bars right in the quiet Sun and half the error's size where the signal exceeds 10 sigma:

    >>> import numpy as np
    >>> from sunpy_nn.metrics import binned_standardised_error
    >>> truth = np.repeat([0.0, 20.0], 50_000)
    >>> err = np.random.default_rng(0).normal(0, 0.3, truth.shape)
    >>> sd = np.where(truth > 10, 0.15, 0.3)
    >>> bins = binned_standardised_error(truth + err, truth, sd, sigma=1.0)
    >>> [(round(b["rms"], 1), round(b["coverage"][0], 2)) for b in bins]
    [(1.0, 0.68), (nan, nan), (nan, nan), (2.0, 0.38)]
    """
    truth, estimate, uncertainty, sigma = _in_one_unit(
        truth=truth, estimate=estimate, uncertainty=uncertainty, sigma=sigma
    )
    sigma = _noise_level(sigma)
    err, unc, ref = _errors_and_uncertainties(estimate, truth, uncertainty, positive=True, truth_too=True)
    z, strength, ks = err / unc, np.abs(ref) / sigma, np.atleast_1d(k)
    out = []
    for low, high, m in _strength_bins(strength, bins):
        zm = np.abs(z[m])
        rms = float(np.sqrt(np.mean(zm**2))) if m.any() else math.nan
        cover = [float(np.mean(zm < kk)) if m.any() else math.nan for kk in ks]
        out.append({"low": low, "high": high, "n": int(m.sum()), "rms": rms, "coverage": cover})
    return out
