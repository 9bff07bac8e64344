"""
Validation science shared by the benchmarks, the docs and the tests (numpy in, numpy, floats or dicts out).

The image metrics (PSNR, SSIM, power spectra, forward consistency, contrast, coverage) are in `sunpy_nn.metrics`;
these measure what a restoration must keep: regions (`interior_mask`, `held_out_box`, `upsample_nearest`), spatial
frequencies (`band_power_ratio`, `band_mean_power`, `mean_power_spectrum`), magnetogram signs (`sign_flip_fraction`),
the continuum (`quiet_sun_mask`, `darkest_levels`), the limb (`limb_geometry`, `limb_distance`, `off_limb_levels`,
`limb_profile`), denoising errors (`rms`, `stokes_error_summary`). Its siblings: ``sunpy_nn.validation_denoise``
(a denoising benchmark's measurements) and ``sunpy_nn.validation_maps`` (maps of WCS-less cut-outs and SHARP files).

Examples
--------
>>> import numpy as np
>>> from sunpy_nn.validation import held_out_box, interior_mask, rms, upsample_nearest
>>> upsample_nearest(np.array([[1, 0]])).tolist()
[[1, 1, 0, 0], [1, 1, 0, 0]]
>>> int(interior_mask((10, 8), 2).sum())  # 6 x 4
24
>>> held_out_box((50, 40), (300, 400), ratio=10.0, border=4)  # scene columns 300-400 are input columns 30-40
(4, 46, 34, 36)
>>> rms(np.array([3.0, -4.0, 3.0, -4.0], np.float32))  # sqrt(12.5)
3.5355339059327378
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage, optimize

from sunpy_nn.metrics import (
    azimuthal_power_spectrum,
    binned_rms_error,
    binned_standardised_error,
    coverage,
    standardised_error,
)
from sunpy_nn.utils import upsample_nearest

__all__ = [
    "band_mean_power",
    "band_power_ratio",
    "darkest_levels",
    "held_out_box",
    "interior_mask",
    "limb_distance",
    "limb_geometry",
    "limb_profile",
    "mean_power_spectrum",
    "off_limb_levels",
    "quiet_sun_mask",
    "rms",
    "sign_flip_fraction",
    "stokes_error_summary",
]


def interior_mask(shape: tuple[int, int], border: int) -> np.ndarray:
    """
    Pixels at least ``border`` pixels from every edge of an image.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    border : int
        Pixels left out along each edge.

    Returns
    -------
    `numpy.ndarray`
        Boolean, of shape ``shape``: `True` inside.
    """
    m = np.zeros(shape, bool)
    m[border : shape[0] - border, border : shape[1] - border] = True
    return m


def held_out_box(
    input_shape: tuple[int, int], columns: tuple[float, float], ratio: float, border: int
) -> tuple[int, int, int, int]:
    """
    The input pixels that see only held-out scene columns, less a border: where a restoration is scored.

    Input pixel ``k`` covers the scene columns ``[k, k + 1) * ratio``: the box keeps the input columns wholly inside
    the held-out ``columns``, less ``border`` pixels along every edge so that neither the training region nor the
    frame's edges reach the scores (through the PSF or a network's field of view).

    Parameters
    ----------
    input_shape : tuple of int
        ``(ny, nx)`` of the degraded input.
    columns : tuple of float
        First and last (exclusive) held-out scene column, counted from the degraded scene's first column.
    ratio : float
        Scene pixels per input pixel (input pixel scale over scene pixel scale).
    border : int
        Input pixels left out along each edge of the box.

    Returns
    -------
    r0, r1, c0, c1 : int
        Rows ``r0:r1`` and columns ``c0:c1`` of the input (``2 r0 : 2 r1, 2 c0 : 2 c1`` on an x2 output grid).
    """
    lo, hi = columns
    # 1e-9: a column edge that falls on a pixel edge up to rounding counts as that edge
    c0, c1 = math.ceil(lo / ratio - 1e-9), min(math.floor(hi / ratio + 1e-9), input_shape[1])
    return border, input_shape[0] - border, c0 + border, c1 - border


def _band_key(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}"


def band_power_ratio(freq: np.ndarray, power: np.ndarray, reference: np.ndarray, bands: Sequence) -> dict[str, float]:
    """
    Median ratio of a power spectrum to a reference spectrum in frequency bands.

    Above the input's Nyquist frequency a restoration's power is not in its input: a ratio to the truth's near 1
    is restored structure, above 1 spurious (artefacts, amplified noise), below 1 smoothing.

    Parameters
    ----------
    freq, power, reference : `numpy.ndarray`
        Frequencies and the two spectra on them (e.g. from `sunpy_nn.metrics.azimuthal_power_spectrum`).
    bands : sequence of (float, float)
        Bands ``lo <= freq < hi``, in the unit of ``freq``.

    Returns
    -------
    dict
        ``"lo-hi"`` (``:g`` formatted) to the median of ``power / reference`` over the band; bands that hold no
        frequency are left out.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import band_power_ratio
    >>> f = np.linspace(0.1, 2.0, 20)
    >>> band_power_ratio(f, 2 * np.ones(20), np.ones(20), [(1.0, 1.5), (5, 6)])
    {'1-1.5': 2.0}
    """
    out = {}
    for lo, hi in bands:
        m = (freq >= lo) & (freq < hi)
        if m.any():
            out[_band_key(lo, hi)] = float(np.median(power[m] / reference[m]))
    return out


def band_mean_power(freq: np.ndarray, power: np.ndarray, bands: Sequence) -> dict[str, float]:
    """
    Mean power of a spectrum in frequency bands ``lo < freq <= hi``.

    Closed on the right: a band from 0 holds the lowest frequency, a band to 0.5 pix^-1 the Nyquist frequency.

    Parameters
    ----------
    freq, power : `numpy.ndarray`
        Frequencies and the spectrum on them.
    bands : sequence of (float, float)
        ``(lo, hi)`` in the unit of ``freq``.

    Returns
    -------
    dict
        ``"lo-hi"`` (``:g`` formatted) to the mean power (NaN for a band without frequencies).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import band_mean_power
    >>> f = np.arange(1, 65) / 128
    >>> band_mean_power(f, np.where(f > 0.25, 2.0, 1.0), [(0, 0.25), (0.25, 0.5)])
    {'0-0.25': 1.0, '0.25-0.5': 2.0}
    """
    out = {}
    for lo, hi in bands:
        sel = (freq > lo) & (freq <= hi)
        out[_band_key(lo, hi)] = float(power[sel].mean()) if sel.any() else float("nan")
    return out


def mean_power_spectrum(frames: Iterable[ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """
    Azimuthal power spectrum averaged over a stack of 2-D frames of one shape.

    Parameters
    ----------
    frames : iterable of array_like
        2-D images (e.g. every scan of one Stokes parameter at one wavelength).

    Returns
    -------
    freq, power : `numpy.ndarray`
        As `sunpy_nn.metrics.azimuthal_power_spectrum`; ``power`` is the mean over the frames.

    Raises
    ------
    ValueError
        A frame is not 2-D, not finite, or smaller than 4 x 4 pixels (`~sunpy_nn.metrics.azimuthal_power_spectrum`).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import mean_power_spectrum
    >>> frames = np.random.default_rng(0).normal(0, 1.0, (4, 64, 64))
    >>> freq, power = mean_power_spectrum(frames)
    >>> bool(abs(power.mean() - 1) < 0.1)
    True
    """
    spectra = [azimuthal_power_spectrum(f) for f in frames]
    return spectra[0][0], np.mean([p for _, p in spectra], axis=0)


def sign_flip_fraction(estimate: ArrayLike, reference: ArrayLike, threshold: float) -> float:
    """
    Fraction of the pixels where ``|reference| > threshold`` whose sign ``estimate`` changes.

    Against the input magnetogram this counts sign flips of strong fields (polarity inversions a restoration
    makes up or sharpens); against a truth it counts wrong signs.

    Parameters
    ----------
    estimate, reference : array_like
        Same shape, same unit (a zero has sign 0, which differs from both signs).
    threshold : float
        Field strength, in the unit of ``reference``, above which a pixel counts.

    Returns
    -------
    float
        The fraction (NaN, with numpy's warning, when no pixel is above ``threshold``).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import sign_flip_fraction
    >>> ref = np.array([500.0, -500.0, 800.0, 20.0])
    >>> sign_flip_fraction(np.array([450.0, 30.0, 700.0, -20.0]), ref, 100)  # the weak pixel does not count
    0.3333333333333333
    """
    reference = np.asarray(reference)
    return float((np.sign(estimate) != np.sign(reference))[np.abs(reference) > threshold].mean())


def quiet_sun_mask(image: np.ndarray, threshold: float = 0.9, distance: int = 6, border: int = 5) -> np.ndarray:
    """
    The quiet Sun of a continuum image in I/Ic: no darker pixel nearby, away from the edges.

    A pixel is quiet when no pixel with ``I < threshold`` (pores, penumbrae, umbrae) lies within ``distance``
    pixels of it (a binary dilation, city-block steps) and it is at least ``border`` pixels from every edge. The
    granulation contrast (`sunpy_nn.metrics.rms_contrast`) is measured there.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D continuum intensity normalised to the quiet Sun (I/Ic).
    threshold : float
        Intensity below which a pixel is not quiet Sun.
    distance : int
        Pixels kept away from any darker pixel (6 HMI pixels: 3 arcsec).
    border : int
        Pixels left out along each edge.

    Returns
    -------
    `numpy.ndarray`
        Boolean, of the image's shape: `True` on the quiet Sun.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import quiet_sun_mask
    >>> img = np.ones((40, 40))
    >>> img[20, 20] = 0.3  # a pore
    >>> m = quiet_sun_mask(img)
    >>> bool(m[20, 20]), bool(m[20, 27]), bool(m[2, 2])
    (False, True, False)
    """
    return ~ndimage.binary_dilation(image < threshold, iterations=distance) & interior_mask(image.shape, border)


def darkest_levels(
    image: np.ndarray, outputs: dict, level: float = 1.0, percents: Sequence[float] = (1.0, 0.1)
) -> dict:
    """
    Mean intensity over the darkest pixels of an input, before and after each restoration (the same pixels).

    Parameters
    ----------
    image : `numpy.ndarray`
        The input continuum image.
    outputs : dict
        Name to restored image on a grid ``factor`` times finer (each input pixel is a block of output pixels).
    level : float
        The quiet-Sun level the means are divided by (1 for an image in I/Ic).
    percents : sequence of float
        Percentiles of the input that define the darkest pixels.

    Returns
    -------
    dict
        ``"darkest_<q>pct"`` (``q`` with ``:g``) to ``{"pixels": n, "input": mean, <name>: mean, ...}``.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import darkest_levels
    >>> img = np.ones((10, 10))
    >>> img[0, 0] = 0.2
    >>> darkest_levels(img, {"x2": np.ones((20, 20))}, percents=(1,))
    {'darkest_1pct': {'pixels': 1, 'input': 0.2, 'x2': 1.0}}
    """
    res = {}
    for q in percents:
        m = image <= np.percentile(image, q)
        key = f"darkest_{q:g}pct"
        res[key] = {"pixels": int(m.sum()), "input": float(image[m].mean() / level)}
        for name, img in outputs.items():
            res[key][name] = float(img[upsample_nearest(m, img.shape[0] // image.shape[0])].mean() / level)
    return res


def limb_geometry(image: np.ndarray, radius: float, threshold: float = 0.15) -> tuple[float, float, float]:
    """
    Disk centre of a limb cut-out whose disk lies to the right (east limb on the left), from a circle fit.

    Each row's first crossing of ``threshold`` (linearly interpolated) is a limb point; a circle of the known
    ``radius`` is fitted to them by least squares.

    Parameters
    ----------
    image : `numpy.ndarray`
        Intensity with zeros or faint scattered light off the disk (I/Ic).
    radius : float
        The solar radius in pixels.
    threshold : float
        Intensity that marks the limb (about half the jump there).

    Returns
    -------
    x, y : float
        The disk centre (0-based pixel coordinates; outside the image for a cut-out).
    rms : float
        Rms residual of the fit in pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import limb_geometry
    >>> yy, xx = np.mgrid[0:60, 0:40]
    >>> disk = (np.hypot(xx - 230.0, yy - 30.0) < 200).astype(float)
    >>> [round(v) for v in limb_geometry(disk, 200.0)]
    [230, 30, 0]
    """
    pts = []
    for y, row in enumerate(image):
        k = int(np.argmax(row > threshold))
        if k > 0:
            frac = (threshold - row[k - 1]) / (row[k] - row[k - 1])
            pts.append((k - 1 + frac, y))
    px, py = np.array(pts).T

    def resid(c):
        return np.hypot(px - c[0], py - c[1]) - radius

    fit = optimize.least_squares(resid, [px.mean() + radius, py.mean()])
    return float(fit.x[0]), float(fit.x[1]), float(np.sqrt(np.mean(fit.fun**2)))


def limb_distance(shape: tuple[int, int], centre: tuple[float, float], radius: float, factor: int = 1) -> np.ndarray:
    """
    Distance of each pixel inside the limb, in input pixels (negative outside).

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the input image.
    centre : tuple of float
        Disk centre ``(x, y)`` in 0-based input pixels.
    radius : float
        Solar radius in input pixels.
    factor : int
        Output pixels per input pixel: the distances of an x``factor`` output grid, whose pixel ``j`` is centred
        on input coordinate ``(j + 0.5) / factor - 0.5``.

    Returns
    -------
    `numpy.ndarray`
        Float64 ``(factor * ny, factor * nx)``, in input pixels.

    Examples
    --------
    >>> from sunpy_nn.validation import limb_distance
    >>> limb_distance((1, 4), (0.0, 0.0), 2.0).tolist()
    [[2.0, 1.0, 0.0, -1.0]]
    """
    ny, nx = shape
    yy, xx = (np.mgrid[0 : factor * ny, 0 : factor * nx] + 0.5) / factor - 0.5
    return radius - np.hypot(xx - centre[0], yy - centre[1])


def off_limb_levels(
    image: np.ndarray, distance: np.ndarray, bands: Sequence, level: float = 1.0, beyond: float = 2
) -> dict:
    """
    The level of a restored image off the disk, where the input is zero: the mean, 99th percentile and maximum of
    ``|I| / level`` in bands of distance outside the limb.

    Parameters
    ----------
    image : `numpy.ndarray`
        The image (NaN pixels, e.g. masked, are left out).
    distance : `numpy.ndarray`
        `limb_distance` of each pixel (input pixels, negative outside).
    bands : sequence of (float, float or None)
        ``(lo, hi)`` input pixels outside the limb, ``lo < -distance <= hi``; ``hi=None``: no outer edge.
    level : float
        The disk-centre intensity the values are divided by.
    beyond : float
        The summary's distance: its statistics over every pixel more than ``beyond`` pixels outside.

    Returns
    -------
    dict
        ``bands``: ``"lo-hi px outside"`` (or ``"> lo px outside"``) to ``pixels``, ``mean_abs``, ``p99_abs`` and
        ``max_abs`` (bands without a finite pixel left out); ``masked_fraction_beyond_<beyond>px`` (the NaN
        fraction there), ``mean_abs_beyond_<beyond>px`` and ``p99_abs_beyond_<beyond>px`` (None when all are NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import off_limb_levels
    >>> d = np.array([[3.0, 1.0, -1.0, -3.0, -5.0]])
    >>> r = off_limb_levels(np.array([[1.0, 1.0, 0.1, 0.02, 0.0]]), d, [(0, 2), (2, None)])
    >>> r["bands"]["0-2 px outside"]["mean_abs"], r["mean_abs_beyond_2px"]
    (0.1, 0.01)
    """
    v = np.abs(image) / level
    out = {}
    for lo, hi in bands:
        m = (distance < -lo) & (distance >= -(hi or np.inf)) & np.isfinite(v)
        if m.any():
            out[f"{lo:g}-{hi:g} px outside" if hi else f"> {lo:g} px outside"] = {
                "pixels": int(m.sum()),
                "mean_abs": float(v[m].mean()),
                "p99_abs": float(np.percentile(v[m], 99)),
                "max_abs": float(v[m].max()),
            }
    far = distance < -beyond
    shown = far & np.isfinite(v)
    return {
        "bands": out,
        f"masked_fraction_beyond_{beyond:g}px": float(1 - shown.sum() / far.sum()),
        f"mean_abs_beyond_{beyond:g}px": float(v[shown].mean()) if shown.any() else None,
        f"p99_abs_beyond_{beyond:g}px": float(np.percentile(v[shown], 99)) if shown.any() else None,
    }


def limb_profile(image: np.ndarray, distance: np.ndarray, level: float = 1.0, reach: float = 12) -> dict:
    """
    The mean profile across the limb and its ringing: the largest inward drop within ``reach`` pixels.

    Seen through any non-negative PSF (the 28 cm Airy pattern too), a limb-darkened disk has a profile that never
    decreases going inwards: the largest decrease measures ringing, on the disk (a bright rim, oscillations) and
    off it (a dark ring below the level further out). The profile is the mean of ``image / level`` in bins of half
    an input pixel of distance, from ``-12`` to ``24``.

    Parameters
    ----------
    image : `numpy.ndarray`
        The image (NaN pixels left out).
    distance : `numpy.ndarray`
        `limb_distance` of each pixel.
    level : float
        The disk-centre intensity.
    reach : float
        Input pixels inside and outside the limb searched for ringing.

    Returns
    -------
    dict
        ``distance_px`` (bin centres) and ``profile`` (None for empty bins), ``ringing_inside`` and
        ``ringing_outside`` (None when fewer than two bins are finite) with ``ringing_<side>_at_px``, the bin
        where the drop ends.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import limb_profile
    >>> d = np.linspace(-12, 24, 721)[None, :]
    >>> rim = np.where(d > 0, 1.0, 0.0) + 0.1 * ((d > 0) & (d < 1))  # a bright rim just inside the limb
    >>> round(limb_profile(rim, d)["ringing_inside"], 3)
    0.1
    """
    edges = np.arange(-12, 24.001, 0.5)
    idx = np.digitize(distance.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < len(edges) - 1) & np.isfinite(image.ravel())
    counts = np.bincount(idx[ok], None, len(edges) - 1)
    prof = np.bincount(idx[ok], image.ravel()[ok], len(edges) - 1) / np.maximum(counts, 1) / level
    prof[counts == 0] = np.nan
    centres = (edges[:-1] + edges[1:]) / 2
    edge = {"distance_px": centres.tolist(), "profile": [None if np.isnan(x) else float(x) for x in prof]}
    for side, sel in (("inside", (centres > 0) & (centres <= reach)), ("outside", (centres >= -reach) & (centres < 0))):
        sel &= np.isfinite(prof)
        if sel.sum() > 1:
            drop = np.maximum.accumulate(prof[sel]) - prof[sel]
            edge[f"ringing_{side}"] = float(drop.max())
            edge[f"ringing_{side}_at_px"] = float(centres[sel][np.argmax(drop)])
        else:
            edge[f"ringing_{side}"] = None  # masked
    return edge


def rms(a: ArrayLike) -> float:
    """
    Root mean square of an array, accumulated in float64.

    Parameters
    ----------
    a : array_like
        Values of any shape (NaN propagates).

    Returns
    -------
    float
        ``sqrt(mean(a**2))``, in the unit of ``a``.
    """
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


def stokes_error_summary(
    estimate: ArrayLike, truth: ArrayLike, sigma: float, uncertainty: ArrayLike | None = None, *, k=None
) -> dict:
    """
    Errors of a denoised Stokes cube against its truth, in units of the noise: the report of a denoising benchmark.

    Parameters
    ----------
    estimate, truth : array_like
        Canonical ``(time, stokes I/Q/U/V, wavelength, y, x)`` arrays (any axes after Stokes), same shape.
    sigma : float
        The injected noise standard deviation, in the unit of ``truth``.
    uncertainty : array_like, optional
        The estimate's standard uncertainty, same shape.
    k : sequence of float, optional
        Multiples of the uncertainty for a reliability curve.

    Returns
    -------
    dict
        ``rms_Q``, ``rms_U``, ``rms_V`` (rms error over ``sigma``, NaN pixels ignored); ``bins``: the Q/U/V rms
        error by ``|truth| / sigma`` (`sunpy_nn.metrics.binned_rms_error`); with ``uncertainty``: ``coverage``
        (``1sigma`` and ``2sigma``, `sunpy_nn.metrics.coverage`), ``z`` (``rms`` and ``kurtosis`` of the error over
        the uncertainty, `sunpy_nn.metrics.standardised_error`: 1 and 3 for a standard deviation of Gaussian
        errors), ``z_by_strength`` (the rms of that ratio and the coverage within 1 and 2 sigma by ``|truth| /
        sigma``, `sunpy_nn.metrics.binned_standardised_error`: the pooled coverage hides the strong signals), and
        ``reliability`` (the coverage at each ``k``) when ``k`` is given.

    Raises
    ------
    ValueError
        The shapes differ, or ``sigma`` is not a positive number (`~sunpy_nn.metrics.binned_rms_error`).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation import stokes_error_summary
    >>> truth = np.zeros((2, 4, 3, 32, 32))
    >>> noisy = truth + np.random.default_rng(0).normal(0, 0.01, truth.shape)
    >>> r = stokes_error_summary(noisy, truth, 0.01, np.full(truth.shape, 0.01))
    >>> round(r["rms_V"], 1), [round(c, 1) for c in r["coverage"].values()]  # Gaussian: 0.683, 0.954
    (1.0, [0.7, 1.0])
    """
    est, ref = np.asarray(estimate), np.asarray(truth)
    res = {}
    for i, s in ((1, "Q"), (2, "U"), (3, "V")):
        res[f"rms_{s}"] = float(np.sqrt(np.nanmean((est[:, i] - ref[:, i]) ** 2)) / sigma)
    res["bins"] = binned_rms_error(est[:, 1:], ref[:, 1:], sigma)
    if uncertainty is not None:
        unc = np.asarray(uncertainty)[:, 1:]
        # One pass over the errors for the two coverages and the reliability curve.
        fractions = coverage(est[:, 1:], ref[:, 1:], unc, k=[1.0, 2.0, *np.atleast_1d(k if k is not None else [])])
        res["coverage"] = dict(zip(("1sigma", "2sigma"), fractions[:2], strict=True))
        res["z"] = standardised_error(est[:, 1:], ref[:, 1:], unc)
        res["z_by_strength"] = binned_standardised_error(est[:, 1:], ref[:, 1:], unc, sigma)
        if k is not None:
            res["reliability"] = fractions[2:]
    return res
