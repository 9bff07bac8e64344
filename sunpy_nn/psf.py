"""
Point spread functions and image degradation for Enhance.

Numpy in, numpy out. Angles are `~astropy.units.Quantity` (or floats in arcsec); images are sampled on square
pixels.
"""

import astropy.units as u
import numpy as np
import torch
from scipy import special

__all__ = [
    "HMI_PIXEL_SCALE_ARCSEC",
    "airy_psf",
    "degrade",
    "hmi_psf",
    "rebin_matrix",
    "resample_flux",
    "sampling_matrix",
]

#: SDO/HMI's pixel scale in arcsec/pix, the scale Enhance works at: the one value of it in the package (the
#: constants of `sunpy_nn.enhance`, `sunpy_nn.data.synthetic` and `sunpy_nn.training` refer to it).
HMI_PIXEL_SCALE_ARCSEC = 0.504
HMI_DIAMETER = 0.14 * u.m
HMI_WAVELENGTH = 6173 * u.AA
#: Wachter et al. (2012) HMI PSF parameters (e, w, k, W), and the longer-tailed version of Diaz Baso & Asensio
#: Ramos (2018), with which degraded MURaM matches HMI's power spectrum.
HMI_PSF_REFERENCE = (0.1, 1.8, 3.0, 3.0)
HMI_PSF_MODIFIED = (0.1, 2.0, 3.0, 3.4)
#: Default kernel radius of `hmi_psf` in arcsec (see its ``shape`` parameter).
HMI_PSF_RADIUS = 4.4


def _arcsec(x, name: str = "scale") -> float:
    """
    Arcsec (per pixel) from a float, an angle or an angle per pixel: a pixel's size, so positive.

    The sign is dropped: a scale read from a map with a mirrored axis (``CDELT1 < 0``, ``smap.scale``) is negative,
    but its pixels are as large as the unmirrored map's. A plain number is taken as arcsec (per pixel), the
    documented convention; any other unit, a zero or a non-finite value raises an error that names ``name``.
    """
    if isinstance(x, (int, float, np.floating, np.integer)):
        value = abs(float(x))
    else:
        q = u.Quantity(x)
        if q.unit.is_equivalent(u.arcsec / u.pix):
            q = q * u.pix
        if not q.unit.is_equivalent(u.arcsec) or q.size != 1:
            raise u.UnitsError(
                f"{name} must be one angle per pixel (e.g. 0.504 * u.arcsec / u.pix, or a plain number in arcsec), "
                f"got {x!r}"
            )
        value = abs(float(q.to_value(u.arcsec)))
    if not np.isfinite(value) or value == 0:
        raise ValueError(f"{name} must be a finite, non-zero pixel scale, got {x!r}")
    return value


def _radius_grid(shape: tuple[int, int], scale: float) -> np.ndarray:
    """Distance from the central pixel, in arcsec, on a grid of ``shape`` (centre at index n // 2)."""
    ny, nx = shape
    y = (np.arange(ny) - ny // 2) * scale
    x = (np.arange(nx) - nx // 2) * scale
    return np.hypot(y[:, None], x[None, :])


def _default_shape(scale: float, radius_arcsec: float) -> tuple[int, int]:
    n = 2 * round(radius_arcsec / scale) + 1
    return n, n


@u.quantity_input(diameter=u.m, wavelength=u.m)
def hmi_psf(
    scale,
    modified: bool = True,
    shape: tuple[int, int] | None = None,
    *,
    diameter=HMI_DIAMETER,
    wavelength=HMI_WAVELENGTH,
    params: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """
    The SDO/HMI point spread function of Wachter et al. (2012), sampled on pixels of ``scale``.

    ``PSF(r) = (1 - e) exp(-(r / w)^2) + e / (1 + (r / W)^k)`` with ``r = pi D theta / lambda`` (``theta`` in
    radians, ``D = 14 cm``, ``lambda = 6173 A``). The reference parameters are ``e=0.1, w=1.8, k=3, W=3``; the
    modified PSF of Diaz Baso & Asensio Ramos (2018) has ``w=2.0, W=3.4``.

    Parameters
    ----------
    scale : `~astropy.units.Quantity` or float
        Pixel scale (arcsec per pixel if a float).
    modified : bool
        Use the paper's modified (longer-tailed) parameters.
    shape : tuple of int, optional
        Kernel shape, centred at ``(ny // 2, nx // 2)``. Default: a 4.4 arcsec radius, the kernel extent of
        the original Enhance code (8 x 1.1 arcsec across), with which the paper tuned the modified parameters
        against HMI's power spectrum. The Lorentzian tail falls as ``r^-3`` and holds much of the flux beyond
        that radius; a larger kernel lowers the degraded granulation contrast (3.8 % instead of 4.0 % for
        MURaM at 0.504 arcsec/pix with a 66 arcsec kernel).
    params : tuple of float, optional
        ``(e, w, k, W)`` to use instead of the reference or modified values (``modified`` is then ignored), e.g.
        a draw of the randomised degradation of `sunpy_nn.training.DegradationModel`.

    Returns
    -------
    `numpy.ndarray`
        The PSF, normalised to unit sum.

    Examples
    --------
    >>> from sunpy_nn.psf import hmi_psf
    >>> psf = hmi_psf(0.0662)
    >>> round(float(psf.sum()), 12), psf.shape
    (1.0, (133, 133))
    """
    scale = _arcsec(scale)
    shape = shape or _default_shape(scale, HMI_PSF_RADIUS)
    e, w, k, big_w = params if params is not None else (HMI_PSF_MODIFIED if modified else HMI_PSF_REFERENCE)
    theta = np.deg2rad(_radius_grid(shape, scale) / 3600)
    r = np.pi * u.Quantity(diameter, u.m).value * theta / u.Quantity(wavelength, u.m).value
    psf = (1 - e) * np.exp(-((r / w) ** 2)) + e / (1 + (r / big_w) ** k)
    return psf / psf.sum()


@u.quantity_input(diameter=u.m, wavelength=u.m)
def airy_psf(
    diameter: u.Quantity, wavelength: u.Quantity, scale, shape: tuple[int, int] | None = None, oversample: int = 5
) -> np.ndarray:
    """
    Diffraction pattern of a clear circular aperture, integrated over square pixels.

    ``I(theta) = [2 J1(x) / x]^2`` with ``x = pi D theta / lambda``; the first dark ring is at
    ``theta = 1.22 lambda / D``.

    Parameters
    ----------
    diameter : `~astropy.units.Quantity`
        Telescope aperture (e.g. ``28 * u.cm``).
    wavelength : `~astropy.units.Quantity`
        Wavelength.
    scale : `~astropy.units.Quantity` or float
        Pixel scale (arcsec per pixel if a float).
    shape : tuple of int, optional
        Kernel shape (default: 20 first-zero radii).
    oversample : int
        Sub-samples per pixel and axis used to integrate over the pixel area.

    Returns
    -------
    `numpy.ndarray`
        The PSF, normalised to unit sum.
    """
    scale = _arcsec(scale)
    lam_d = (u.Quantity(wavelength) / u.Quantity(diameter)).decompose().value  # radians
    first_zero = np.rad2deg(1.2196698912665045 * lam_d) * 3600
    shape = shape or _default_shape(scale, 20 * first_zero)
    ny, nx = shape
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    y = ((np.arange(ny) - ny // 2)[:, None] + sub[None, :]).ravel() * scale
    x = ((np.arange(nx) - nx // 2)[:, None] + sub[None, :]).ravel() * scale
    theta = np.deg2rad(np.hypot(y[:, None], x[None, :]) / 3600)
    arg = np.pi * theta / lam_d
    with np.errstate(invalid="ignore", divide="ignore"):
        psf = np.where(arg > 0, (2 * special.j1(arg) / arg) ** 2, 1.0)
    psf = psf.reshape(ny, oversample, nx, oversample).mean(axis=(1, 3))
    return psf / psf.sum()


def rebin_matrix(n_in: int, scale_in: float, scale_out: float, offset: float = 0.0, n_out: int | None = None):
    """
    Matrix ``(n_out, n_in)`` of flux-conserving 1-D resampling: each output pixel averages the input pixels it
    overlaps, weighted by the overlap length.

    ``offset`` is the position of the first output pixel's left edge, in input pixels (the sub-pixel sampling
    phase). Output pixels must lie inside the input.
    """
    ratio = scale_out / scale_in  # output pixel length in input pixels
    if n_out is None:
        n_out = int(np.floor((n_in - offset) / ratio + 1e-9))
    edges = offset + ratio * np.arange(n_out + 1)
    if edges[0] < -1e-9 or edges[-1] > n_in + 1e-9:
        raise ValueError(f"{n_out} output pixels of {ratio:.4g} input pixels from {offset} exceed {n_in} pixels")
    lo = np.clip(
        np.minimum(edges[1:, None], np.arange(1, n_in + 1)[None, :])
        - np.maximum(edges[:-1, None], np.arange(n_in)[None, :]),
        0,
        None,
    )
    return lo / ratio


def sampling_matrix(
    n_in: int, scale_in: float, scale_out: float, offset: float = 0.0, n_out: int | None = None, fill: float = 1.0
) -> np.ndarray:
    """
    Matrix ``(n_out, n_in)`` of a 1-D detector model between point sampling and full pixel-area integration.

    Each output pixel averages the input over an aperture of ``fill`` times its own width, centred on the pixel
    centre. ``fill=1`` integrates over the whole pixel (identical to `rebin_matrix`); ``fill=0`` samples the
    (piecewise-constant) input at the pixel centre, which an aperture one input pixel wide does exactly: it is
    linear interpolation between input pixel centres. Real detectors lie in between (fill factor, charge
    diffusion), which is why the Enhance training draws ``fill`` at random.

    ``offset`` is the position of the first output pixel's left edge, in input pixels.
    """
    ratio = scale_out / scale_in  # output pixel length in input pixels
    if n_out is None:
        n_out = int(np.floor((n_in - offset) / ratio + 1e-9))
    if not 0.0 <= fill <= 1.0:
        raise ValueError(f"fill must be between 0 (point sampling) and 1 (pixel area), not {fill}")
    centre = offset + ratio * (np.arange(n_out) + 0.5)
    half = max(fill * ratio, 1.0) / 2
    lo_edge, hi_edge = centre - half, centre + half
    if lo_edge[0] < -1e-9 or hi_edge[-1] > n_in + 1e-9:
        raise ValueError(f"{n_out} output pixels of {ratio:.4g} input pixels from {offset} exceed {n_in} pixels")
    j = np.arange(n_in)
    w = np.clip(np.minimum(hi_edge[:, None], j[None, :] + 1) - np.maximum(lo_edge[:, None], j[None, :]), 0, None)
    return w / (2 * half)


def resample_flux(image: np.ndarray, scale_in: float, scale_out: float, offset=(0.0, 0.0), shape=None) -> np.ndarray:
    """Flux-conserving (area-weighted) resampling of a 2-D image; the mean over covered pixels is conserved."""
    ny, nx = image.shape
    my = rebin_matrix(ny, scale_in, scale_out, offset[0], None if shape is None else shape[0])
    mx = rebin_matrix(nx, scale_in, scale_out, offset[1], None if shape is None else shape[1])
    return _sandwich(my, image, mx)


def _sandwich(my: np.ndarray, image: np.ndarray, mx: np.ndarray) -> np.ndarray:
    """``my @ image @ mx.T`` through torch: multithreaded OpenBLAS was measured 60x slower on 2 busy cores."""
    t = torch.from_numpy
    return (t(np.asarray(my, np.float64)) @ t(np.ascontiguousarray(image, np.float64)) @ t(mx).T).numpy()


def _fft_convolve_periodic(image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    ny, nx = image.shape
    kernel = np.zeros((ny, nx))
    py, px = psf.shape
    # Wrap the centred kernel onto the image grid (periodic boundaries, as in simulation boxes); larger kernels
    # are folded, which keeps their full flux.
    yy = (np.arange(py) - py // 2) % ny
    xx = (np.arange(px) - px // 2) % nx
    np.add.at(kernel, (yy[:, None], xx[None, :]), psf)
    return np.fft.irfft2(np.fft.rfft2(image) * np.fft.rfft2(kernel), s=(ny, nx))


def degrade(
    image: np.ndarray,
    scale_in,
    psf: np.ndarray,
    scale_out,
    noise: float | None = None,
    seed: int | np.random.Generator | None = None,
    *,
    offset=(0.0, 0.0),
    shape=None,
) -> np.ndarray:
    """
    Convolve an image with a PSF (by FFT, periodic boundaries) and resample it, conserving flux.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D image at ``scale_in`` (a simulation snapshot: periodic boundaries are assumed).
    scale_in, scale_out : `~astropy.units.Quantity` or float
        Input and output pixel scales (arcsec per pixel if floats).
    psf : `numpy.ndarray`
        The PSF sampled at ``scale_in`` (e.g. `hmi_psf` or `airy_psf`), centred, any size.
    noise : float, optional
        Standard deviation of Gaussian noise added after resampling, in the image's units.
    seed : int or `numpy.random.Generator`, optional
        For the noise.
    offset : tuple of float
        Sub-pixel sampling phase: position of the first output pixel's edges in input pixels ``(y, x)``.
    shape : tuple of int, optional
        Output shape (default: as many whole pixels as fit).

    Returns
    -------
    `numpy.ndarray`
        The degraded image at ``scale_out``.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.psf import degrade, hmi_psf
    >>> img = np.random.default_rng(0).random((200, 200))
    >>> low = degrade(img, 0.0662, hmi_psf(0.0662, shape=(200, 200)), 0.504)
    >>> low.shape, bool(abs(low.mean() - img[:, :197].mean()) < 1e-3)
    ((26, 26), True)
    """
    s_in, s_out = _arcsec(scale_in), _arcsec(scale_out)
    smooth = _fft_convolve_periodic(np.asarray(image, dtype=np.float64), np.asarray(psf, dtype=np.float64))
    out = resample_flux(smooth, s_in, s_out, offset, shape)
    if noise:
        rng = np.random.default_rng(seed)
        out = out + rng.normal(0.0, noise, out.shape)
    return out
