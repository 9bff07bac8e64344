"""
Image-quality metrics for validating Enhance and other restorations (numpy in, numpy or floats out).

Spatial power spectra (`azimuthal_power_spectrum`) and granulation contrast (`rms_contrast`); the similarity to a
reference (`psnr`, `ssim`); how well an x2 enhanced image, degraded back with HMI's PSF, reproduces the observation
(`forward_consistency`); a denoiser's error by signal strength and the reliability of its error bars, overall and
by signal strength (`binned_rms_error`, `coverage`, `standardised_error`, `binned_standardised_error`; from
``sunpy_nn.error_bars``); the error that an oracle linear filter of a few noisy scans leaves on synthetic data, a
yardstick for a denoiser's (`oracle_wiener_error`); the noise level of a stack of frames, which the denoiser scales
by (`estimate_noise`).

Examples
--------
>>> import numpy as np
>>> from sunpy_nn.metrics import psnr, ssim
>>> ref = np.linspace(0, 1, 100).reshape(10, 10)
>>> round(psnr(ref + 0.01, ref), 6), psnr(ref, ref), ssim(ref, ref)  # an offset of 1 % of the range: MSE = 1e-4
(40.0, inf, 1.0)
>>> noisy = ref + np.random.default_rng(2).normal(0, 0.1, ref.shape)
>>> bool(psnr(noisy, ref) < 40), bool(0 < ssim(noisy, ref) < 1)
(True, True)
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from scipy import signal

# The noise estimation and the error-bar metrics live in their own modules (one job each); they are part of this
# module's public API.
from sunpy_nn.error_bars import (  # noqa: F401
    SIGNAL_BINS,
    binned_rms_error,
    binned_standardised_error,
    coverage,
    standardised_error,
)
from sunpy_nn.noise import NOISE_METHODS, _estimate, _high_pass, _mad_sigma, _scan_differences, estimate_noise  # noqa: F401
from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC, hmi_psf
from sunpy_nn.utils import _in_one_unit, fill_nearest

__all__ = [
    "azimuthal_power_spectrum",
    "binned_rms_error",
    "binned_standardised_error",
    "coverage",
    "estimate_noise",
    "forward_consistency",
    "oracle_wiener_error",
    "psnr",
    "rms_contrast",
    "ssim",
    "standardised_error",
]

#: Fraction of each image axis that the split-cosine-bell (Tukey) apodisation window tapers (both ends together).
APODIZATION_ALPHA = 0.2


def _as_float_image(image, name: str = "image") -> np.ndarray:
    data = np.asarray(image, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"{name} must be a 2-D image, got shape {data.shape}")
    return data


def _finite_pair(estimate, reference) -> tuple[np.ndarray, np.ndarray]:
    est = _as_float_image(estimate, "estimate")
    ref = _as_float_image(reference, "reference")
    if est.shape != ref.shape:
        raise ValueError(f"estimate and reference must have the same shape, got {est.shape} and {ref.shape}")
    return est, ref


def _data_range(reference: np.ndarray, data_range: float | None) -> float:
    if data_range is None:
        finite = reference[np.isfinite(reference)]
        if finite.size == 0:
            raise ValueError("the reference image has no finite pixels")
        data_range = float(finite.max() - finite.min())
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range} (pass data_range= for a constant reference)")
    return float(data_range)


def azimuthal_power_spectrum(image, *, apodize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """
    Azimuthally averaged spatial power spectrum of an image.

    The mean is subtracted, the image is optionally apodised, and ``P(k) = |FFT(w (I - <I>))|^2 / (N <w^2>)``
    (``N = ny nx``, ``w`` the window, 1 without apodisation) is averaged over annuli of width ``1 / min(ny, nx)`` in
    spatial frequency. By Parseval's theorem the mean of the 2-D spectrum is the variance of the image: white noise of
    variance ``s**2`` is flat at ``s**2``, with or without apodisation. On a physical axis (images with different
    pixels), divide ``freq`` by the pixel scale and multiply ``power`` by the pixel area (units**2 arcsec**2).

    Parameters
    ----------
    image : array_like
        2-D image ``(ny, nx)`` with finite values (any units; rectangular images are allowed).
    apodize : bool
        Multiply the mean-subtracted image by a split-cosine-bell (Tukey) window that tapers 10 % of each axis at each
        end: it stops the jump at the borders of a non-periodic image leaking power to high frequencies.

    Returns
    -------
    freq : `numpy.ndarray`
        Spatial frequency of each annulus in cycles per pixel (``pix^-1``), shape ``(n // 2,)``: ``1/n, 2/n, ...,
        (n // 2)/n`` (0.5 for an even ``n``) with ``n = min(ny, nx)`` (the zero frequency left out).
    power : `numpy.ndarray`
        Mean power in each annulus, same shape, in the image's units squared.

    Raises
    ------
    ValueError
        ``image`` is not 2-D, has non-finite values, or is smaller than 4 x 4 pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.metrics import azimuthal_power_spectrum
    >>> noise = np.random.default_rng(0).normal(0, 2.0, (256, 256))  # white noise, variance 4
    >>> freq, power = azimuthal_power_spectrum(noise)
    >>> float(freq[0]), float(freq[-1]), len(freq), bool(abs(power.mean() - 4) < 0.2)
    (0.00390625, 0.5, 128, True)
    """
    data = _as_float_image(image)
    if not np.isfinite(data).all():
        raise ValueError("azimuthal_power_spectrum needs finite values: crop or fill NaN pixels first")
    ny, nx = data.shape
    if min(ny, nx) < 4:
        raise ValueError(f"the image must be at least 4 x 4 pixels, got {data.shape}")
    data = data - data.mean()
    window = np.ones_like(data)
    if apodize:
        window = np.outer(signal.windows.tukey(ny, APODIZATION_ALPHA), signal.windows.tukey(nx, APODIZATION_ALPHA))
    power2d = np.abs(np.fft.fft2(data * window)) ** 2 / (data.size * np.mean(window**2))
    n = min(ny, nx)
    k = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])
    index = np.rint(k * n).astype(int).ravel()
    n_bins = n // 2 + 1
    keep = index < n_bins
    counts = np.bincount(index[keep], minlength=n_bins)
    sums = np.bincount(index[keep], weights=power2d.ravel()[keep], minlength=n_bins)
    freq = np.arange(1, n_bins) / n
    return freq, sums[1:] / np.maximum(counts[1:], 1)


def oracle_wiener_error(truth, noise, n_scans: int = 1, *, transform: str = "cosine") -> float:
    """
    The rms error of the oracle Wiener filter of the mean of ``n_scans`` noisy scans of a static scene.

    For each image of ``truth`` and each spatial frequency :math:`k` of ``transform``, the filter
    :math:`H(k) = S(k) / (S(k) + N(k) / n)` applied to the mean of :math:`n` scans, with :math:`S(k)` the true
    image's own power at :math:`k` (the oracle: known only for synthetic data) and :math:`N(k)` the noise's, leaves
    the error power :math:`S N / n / (S + N / n)` there, in expectation over the noise (Wiener 1949). No filter that
    weighs each frequency of that transform of the scans' mean does better on that image, so this is a yardstick
    for a denoiser tested on synthetic data: how much error such a filter, knowing the truth's spectrum, would
    leave. It is not a bound: a denoiser that uses more than each frequency's power (a network's prior on the
    fields, or an oracle in another basis such as wavelets) may do better, and a scene that changes between scans
    leaves more.

    Parameters
    ----------
    truth : array_like or `~astropy.units.Quantity`
        ``(..., y, x)``: the true images, each over the last two axes (for example scans x spectral components of
        one Stokes parameter); finite.
    noise : float, array_like or `~astropy.units.Quantity`
        The noise of one scan: its standard deviation (white noise), or realisations of it ``(..., y, x)`` (for
        example noisy minus true images), whose mean power at each frequency is :math:`N` (correlated noise; from
        few realisations the estimate of :math:`N` scatters, which biases the error low by a little); finite. In
        the unit of ``truth`` (Quantities are converted to it).
    n_scans : int
        The number of scans with independent noise of that spectrum averaged (the noise's power divided by it).
    transform : {"cosine", "fourier"}
        The frequencies: the orthonormal discrete cosine transform (type II), whose even extension of the images
        adds no jump at their edges, or the discrete Fourier transform, which treats the images as periodic, so
        that a jump between opposite edges counts as signal at high frequencies, where the noise dominates (its
        error is larger on images that are not periodic).

    Returns
    -------
    float
        The expected rms error over all pixels of all images, in the unit of ``truth``.

    Raises
    ------
    ValueError
        ``truth`` or ``noise`` holds NaN or inf values, has fewer than two axes or empty images, or their images
        differ in shape; a negative noise level; ``n_scans`` not a whole number of at least 1; an unknown
        ``transform``.
    astropy.units.UnitConversionError
        ``noise`` in a unit that does not convert to ``truth``'s.

    References
    ----------
    - Wiener, N. 1949, "Extrapolation, Interpolation, and Smoothing of Stationary Time Series", MIT Press: the
      filter :math:`S / (S + N)`.
    - Donoho, D. L., & Johnstone, I. M. 1994, "Ideal spatial adaptation by wavelet shrinkage", Biometrika, 81, 425:
      oracle (ideal) diagonal estimators as yardsticks for denoisers.

    Examples
    --------
    A wave of amplitude 2 along x in white noise of standard deviation 1, four scans: the filter keeps the wave's two
    Fourier frequencies (where its power, 1024 each, dwarfs the noise's 1 / 4) and zeroes the 1022 others, so the
    error is nearly the noise of the mean of four scans at two of 1024 frequencies, :math:`\\sqrt{2 / 4 / 1024}`.

    >>> import numpy as np
    >>> from sunpy_nn.metrics import oracle_wiener_error
    >>> wave = 2 * np.cos(2 * np.pi * 3 * np.arange(32) / 32) * np.ones((32, 1))
    >>> err = oracle_wiener_error(wave, 1.0, n_scans=4, transform="fourier")
    >>> S, M = 2.0 / 2 * 32 * 32, 1.0 / 4  # the wave's power at each of its two frequencies; the noise's at any
    >>> bool(np.isclose(err**2, 2 * S * M / (S + M) / (32 * 32))), round(err, 4), round(float(np.sqrt(2 / 4 / 1024)), 4)
    (True, 0.0221, 0.0221)
    """
    from scipy import fft

    if transform not in ("cosine", "fourier"):
        raise ValueError(f"transform must be 'cosine' or 'fourier', not {transform!r}")
    if isinstance(n_scans, bool) or not float(n_scans).is_integer() or n_scans < 1:
        raise ValueError(f"n_scans must be a whole number of at least 1, not {n_scans!r}")
    truth, noise = _in_one_unit(truth=truth, noise=noise)
    s = np.asarray(truth, dtype=np.float64)
    if s.ndim < 2 or s.shape[-1] * s.shape[-2] == 0:
        raise ValueError(f"truth must be images (..., y, x) of at least one pixel; got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("truth holds NaN or inf values: cut the images to their finite part")

    def power(images: np.ndarray) -> np.ndarray:  # per pixel (Parseval): its mean over frequencies is the mean square
        if transform == "cosine":
            return fft.dctn(images, type=2, norm="ortho", axes=(-2, -1)) ** 2
        return np.abs(fft.fft2(images, norm="ortho")) ** 2

    if np.ndim(noise) == 0:
        sigma = float(noise)
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"noise must be a finite standard deviation of at least 0, not {noise}")
        noise_power = np.full(s.shape[-2:], sigma**2)
    else:
        n = np.asarray(noise, dtype=np.float64)
        if n.ndim < 2 or n.shape[-2:] != s.shape[-2:]:
            raise ValueError(
                f"noise realisations must be images of the truth's shape {s.shape[-2:]}; got shape {n.shape}"
            )
        if not np.isfinite(n).all():
            raise ValueError("noise realisations hold NaN or inf values: cut them to their finite part")
        noise_power = power(n).reshape(-1, *n.shape[-2:]).mean(axis=0)
    signal_power = power(s)
    m = noise_power / int(n_scans)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.where(signal_power + m > 0, signal_power * m / (signal_power + m), 0.0)
    return float(np.sqrt(error.mean()))


def rms_contrast(image, mask=None) -> float:
    """
    Rms contrast of an image, ``std(I) / mean(I)`` (a fraction, not a percentage).

    Over the finite pixels of ``image`` (inside ``mask`` if given), with the population standard deviation
    (``ddof=0``). For a continuum image of the quiet Sun this is the granulation contrast.

    Parameters
    ----------
    image : array_like
        Intensity image of any shape (any positive units: the contrast does not depend on them).
    mask : array_like of bool, optional
        Pixels to use, same shape as ``image``.

    Returns
    -------
    float
        The contrast, dimensionless (0.07 is 7 %).

    Raises
    ------
    ValueError
        ``mask`` has another shape than ``image``, or no finite pixel is left to use.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.metrics import rms_contrast
    >>> img = 1 + 0.05 * np.sin(2 * np.pi * 4 * np.arange(100) / 100) * np.ones((10, 1))  # 4 whole periods along x
    >>> round(rms_contrast(img), 6), round(float(0.05 / np.sqrt(2)), 6)
    (0.035355, 0.035355)
    """
    data = np.asarray(image, dtype=np.float64)
    use = np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the image shape {data.shape}")
        use &= mask
    if not use.any():
        raise ValueError("no finite pixels to compute the contrast on")
    values = data[use]
    return float(values.std() / values.mean())


def psnr(estimate, reference, data_range: float | None = None) -> float:
    """
    Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` of an estimate against a reference image, in dB.

    Parameters
    ----------
    estimate, reference : array_like
        2-D images ``(ny, nx)`` of the same shape and unit; ``MSE`` is their mean squared difference over the pixels
        where both are finite. Quantities (both or none) are converted to ``reference``'s unit.
    data_range : float, optional
        Peak-to-peak range of the signal, in ``reference``'s unit or a Quantity (default: ``max - min`` of the
        reference's finite pixels).

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images.

    Raises
    ------
    ValueError
        An image is not 2-D, the shapes differ, no pixel is finite in both, or the data range is not positive (a
        constant reference without ``data_range``); or some images are Quantities and others not.
    astropy.units.UnitConversionError
        The Quantities' units do not convert to one another.

    References
    ----------
    Huynh-Thu, Q., & Ghanbari, M. 2008, "Scope of validity of PSNR in image/video quality assessment", Electron.
    Lett., 44, 800.
    """
    reference, estimate, data_range = _in_one_unit(reference=reference, estimate=estimate, data_range=data_range)
    est, ref = _finite_pair(estimate, reference)
    use = np.isfinite(est) & np.isfinite(ref)
    if not use.any():
        raise ValueError("no pixels where both images are finite")
    rng = _data_range(ref, data_range)
    if np.array_equal(est[use], ref[use]):
        return float("inf")
    from skimage.metrics import peak_signal_noise_ratio  # imported here: it loads scikit-image

    # scikit-image's PSNR on the pixels where both are finite (it divides by zero for identical images).
    return float(peak_signal_noise_ratio(ref[use], est[use], data_range=rng))


def ssim(
    estimate,
    reference,
    data_range: float | None = None,
    win_size: int = 7,
    *,
    gaussian_weights: bool = False,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """
    Mean structural similarity index (SSIM) of Wang et al. (2004) between two images.

    Local means ``mu``, variances ``s^2`` and covariance ``s_xy`` in a sliding window give, at every pixel,
    ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))`` with ``C1 = (k1 L)^2``,
    ``C2 = (k2 L)^2`` and ``L = data_range``, averaged without a border of ``(win_size - 1) // 2`` pixels. Computed by
    ``skimage.metrics.structural_similarity``: sample (co)variances for the uniform window, weighted moments for the
    Gaussian one (``sigma = 1.5`` pixels, the paper's, truncated at 3.5 sigma: 11 x 11).

    Parameters
    ----------
    estimate, reference : array_like
        2-D images ``(ny, nx)`` of the same shape and unit, finite values, at least ``win_size`` (Gaussian window: 11)
        pixels along each axis. Quantities (both or none) are converted to ``reference``'s unit.
    data_range : float, optional
        Dynamic range ``L`` of the signal, in ``reference``'s unit or a Quantity. Default: ``max - min`` of the
        reference.
    win_size : int
        Odd side of the uniform window (ignored with ``gaussian_weights=True``).
    gaussian_weights : bool
        Use the Gaussian window of Wang et al. (2004) instead of the uniform one.
    k1, k2 : float
        The stabilising constants of Wang et al. (2004).

    Returns
    -------
    float
        Mean SSIM, dimensionless; 1 for identical images, lower for less similar ones (it can be negative).

    Raises
    ------
    ValueError
        An image is not 2-D or not finite, the shapes differ, the data range is not positive, ``win_size`` is not an
        odd integer >= 3, or the images are smaller than the window; or some images are Quantities and others not.
    astropy.units.UnitConversionError
        The Quantities' units do not convert to one another.

    References
    ----------
    Wang, Z., Bovik, A. C., Sheikh, H. R., & Simoncelli, E. P. 2004, "Image quality assessment: from error visibility
    to structural similarity", IEEE Trans. Image Process., 13, 600.
    """
    reference, estimate, data_range = _in_one_unit(reference=reference, estimate=estimate, data_range=data_range)
    est, ref = _finite_pair(estimate, reference)
    if not (np.isfinite(est).all() and np.isfinite(ref).all()):
        raise ValueError("ssim needs finite values in both images: crop or fill NaN pixels first")
    rng = _data_range(ref, data_range)
    odd = isinstance(win_size, int | np.integer) and not isinstance(win_size, bool) and win_size % 2 == 1
    if not gaussian_weights and (not odd or win_size < 3):
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size}")
    from skimage.metrics import structural_similarity  # imported here: it loads scikit-image

    size = 11 if gaussian_weights else win_size  # sigma 1.5 truncated at 3.5 sigma
    if min(est.shape) < size:
        raise ValueError(f"the images ({est.shape}) must be at least win_size={size} pixels along each axis")
    return float(
        structural_similarity(
            ref,
            est,
            data_range=rng,
            win_size=None if gaussian_weights else win_size,
            gaussian_weights=gaussian_weights,
            sigma=1.5,
            use_sample_covariance=not gaussian_weights,
            K1=k1,
            K2=k2,
        )
    )


def _scale_arcsec(scale) -> float:
    """A pixel's size in arcsec: positive, also when read from a mirrored map (``CDELT1 < 0``, ``smap.scale``)."""
    if hasattr(scale, "unit"):
        q = u.Quantity(scale)
        value = q.to_value(u.arcsec / u.pix) if q.unit.is_equivalent(u.arcsec / u.pix) else q.to_value(u.arcsec)
        return abs(float(value))
    return abs(float(scale))


def forward_consistency(enhanced, original, *, pixel_scale=HMI_PIXEL_SCALE_ARCSEC, psf=None, mask=None) -> float:
    """
    Mean relative difference between an x2 enhanced image degraded back to the observation and the observation.

    The enhanced image ``E`` is convolved with ``psf`` (mirrored beyond the edges, NaN pixels filled with their
    nearest finite neighbour) and binned 2 x 2 (means) to the grid of the original ``O``, giving ``D``: the result is
    ``mean(|D - O|) / mean(|O|)`` over the pixels inside ``mask`` where ``O`` and the four sub-pixels of ``E`` are
    finite (finite for signed data too; pass e.g. ``abs(original) > 500`` (G) as ``mask`` for strong fields).

    Parameters
    ----------
    enhanced : array_like
        The x2 enhanced image, shape ``(2 ny, 2 nx)``.
    original : array_like
        The observed image, shape ``(ny, nx)``, in the same units (Quantities, both or none, are converted to
        ``original``'s unit).
    pixel_scale : float or `~astropy.units.Quantity`
        Pixel scale of ``original``, for the default ``psf``: an angle per pixel or an angle, or a float in arcsec per
        pixel; its sign is ignored.
    psf : `numpy.ndarray`, optional
        2-D PSF on the enhanced grid (``pixel_scale / 2``), centred at its ``(py // 2, px // 2)``, unit sum. Default:
        the modified HMI PSF, ``hmi_psf(pixel_scale / 2, modified=True)`` (its default 4.4 arcsec kernel).
    mask : array_like of bool, optional
        Pixels of the original grid to compare, shape ``(ny, nx)``.

    Returns
    -------
    float
        The mean relative difference, dimensionless (0.03 is 3 %).

    Raises
    ------
    ValueError
        An image is not 2-D, ``enhanced`` is not twice the size of ``original`` or has no finite pixel, ``mask`` has
        another shape, no pixel is left to compare, ``original`` is zero over them, or the default PSF gets a zero or
        non-finite ``pixel_scale``; or one image is a Quantity and the other not.
    astropy.units.UnitsError
        With the default PSF, ``pixel_scale`` is a quantity that is neither an angle per pixel nor an angle; or the
        images' units do not convert to one another.

    References
    ----------
    Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
    doi:10.1051/0004-6361/201731344: the check, and the modified HMI PSF.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.metrics import forward_consistency
    >>> original, flat = np.ones((40, 40)), np.ones((80, 80))  # a flat field and its x2 version
    >>> round(forward_consistency(flat, original), 12), round(forward_consistency(1.02 * flat, original), 12)
    (0.0, 0.02)
    """
    original, enhanced = _in_one_unit(original=original, enhanced=enhanced)
    enh = _as_float_image(enhanced, "enhanced")
    orig = _as_float_image(original, "original")
    ny, nx = orig.shape
    if enh.shape != (2 * ny, 2 * nx):
        raise ValueError(f"enhanced must be twice the size of original ({2 * ny}, {2 * nx}), got {enh.shape}")
    if psf is None:
        psf = hmi_psf(_scale_arcsec(pixel_scale) / 2, modified=True)
    psf = np.asarray(psf, dtype=np.float64)
    missing = ~np.isfinite(enh)
    if missing.all():
        raise ValueError("the enhanced image has no finite pixels")
    enh = fill_nearest(enh, missing)
    py, px = psf.shape
    # 'valid' convolution of the padded image: with these pads, the PSF's centre pixel (py // 2, px // 2) maps each
    # pixel onto itself, for odd and even kernel sizes.
    pad = ((py - 1 - py // 2, py // 2), (px - 1 - px // 2, px // 2))
    blurred = signal.fftconvolve(np.pad(enh, pad, mode="symmetric"), psf, mode="valid")
    degraded = blurred.reshape(ny, 2, nx, 2).mean(axis=(1, 3))
    use = np.isfinite(orig) & ~missing.reshape(ny, 2, nx, 2).any(axis=(1, 3))
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != orig.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the original's {orig.shape}")
        use &= mask
    if not use.any():
        raise ValueError("no pixels to compare (the mask is empty or all pixels are NaN)")
    denominator = np.abs(orig[use]).mean()
    if denominator == 0:
        raise ValueError("the original image is zero over the compared pixels")
    return float(np.abs(degraded[use] - orig[use]).mean() / denominator)
