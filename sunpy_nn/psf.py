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
        Pixel scale: an angle per pixel (e.g. ``0.504 * u.arcsec / u.pix``) or an angle, or a float in arcsec per
        pixel. Its sign is ignored.
    modified : bool
        Use the paper's modified (longer-tailed) parameters.
    shape : tuple of int, optional
        Kernel shape ``(ny, nx)`` in pixels, centred at ``(ny // 2, nx // 2)``. Default: a 4.4 arcsec radius, the
        kernel extent of the original Enhance code (8 x 1.1 arcsec across), with which the paper tuned the
        modified parameters against HMI's power spectrum. The Lorentzian tail falls as ``r^-3`` and holds much of
        the flux beyond that radius; a larger kernel lowers the degraded granulation contrast (3.8 % instead of
        4.0 % for MURaM at 0.504 arcsec/pix with a 66 arcsec kernel).
    diameter : `~astropy.units.Quantity`
        Telescope aperture, a length (default HMI's 14 cm).
    wavelength : `~astropy.units.Quantity`
        Observing wavelength, a length (default HMI's 6173 A).
    params : tuple of float, optional
        ``(e, w, k, W)`` to use instead of the reference or modified values (``modified`` is then ignored), e.g.
        a draw of the randomised degradation of `sunpy_nn.training.DegradationModel`; ``w`` and ``W`` are in
        units of ``r`` (dimensionless).

    Returns
    -------
    `numpy.ndarray`
        The PSF, float64 of shape ``shape``, normalised to unit sum (dimensionless).

    Raises
    ------
    astropy.units.UnitsError
        ``scale`` is a quantity that is not an angle (per pixel), or ``diameter`` or ``wavelength`` is not a
        length.
    TypeError
        ``diameter`` or ``wavelength`` is a plain number instead of a `~astropy.units.Quantity`.
    ValueError
        ``scale`` is zero or not finite.

    References
    ----------
    - Wachter, R., Schou, J., Rabello-Soares, M. C., et al. 2012, "Image Quality of the Helioseismic and Magnetic
      Imager (HMI) Onboard the Solar Dynamics Observatory (SDO)", Sol. Phys., 275, 261: the PSF's form and its
      reference parameters.
    - Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
      doi:10.1051/0004-6361/201731344, Eq. (6): the PSF as Enhance uses it, and the modified parameters.

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
        Telescope aperture, a length (e.g. ``28 * u.cm``).
    wavelength : `~astropy.units.Quantity`
        Wavelength, a length (e.g. ``6173 * u.AA``).
    scale : `~astropy.units.Quantity` or float
        Pixel scale: an angle per pixel or an angle, or a float in arcsec per pixel. Its sign is ignored.
    shape : tuple of int, optional
        Kernel shape ``(ny, nx)`` in pixels, centred at ``(ny // 2, nx // 2)`` (default: a radius of 20 first-zero
        radii).
    oversample : int
        Sub-samples per pixel and axis used to integrate over the pixel area.

    Returns
    -------
    `numpy.ndarray`
        The PSF, float64 of shape ``shape``, normalised to unit sum (dimensionless).

    Raises
    ------
    astropy.units.UnitsError
        ``diameter`` or ``wavelength`` is not a length, or ``scale`` is a quantity that is not an angle (per pixel).
    TypeError
        ``diameter`` or ``wavelength`` is a plain number instead of a `~astropy.units.Quantity`.
    ValueError
        ``scale`` is zero or not finite.

    References
    ----------
    - Born, M., & Wolf, E. 1999, "Principles of Optics", 7th ed. (Cambridge University Press): Fraunhofer
      diffraction at a circular aperture.
    - Diaz Baso, C. J., & Asensio Ramos, A. 2018, A&A, 614, A5, doi:10.1051/0004-6361/201731344: the training
      targets of Enhance are convolved with the Airy pattern of a 28 cm telescope, twice HMI's aperture.

    Examples
    --------
    >>> import astropy.units as u
    >>> from sunpy_nn.psf import airy_psf
    >>> psf = airy_psf(28 * u.cm, 6173 * u.AA, 0.252, shape=(35, 35))
    >>> psf.shape, round(float(psf.sum()), 12), bool(psf[17, 17] == psf.max())
    ((35, 35), 1.0, True)
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
    Matrix of flux-conserving 1-D resampling: each output pixel averages the input pixels it overlaps.

    Each input pixel is weighted by the length of its overlap with the output pixel, so the mean over the covered
    input pixels is conserved. ``M @ x`` resamples a 1-D signal ``x``; ``My @ image @ Mx.T`` a 2-D image.

    Parameters
    ----------
    n_in : int
        Number of input pixels.
    scale_in, scale_out : float
        Input and output pixel sizes, in the same unit (e.g. arcsec per pixel); only their ratio matters.
    offset : float
        Position of the first output pixel's left edge, in input pixels (the sub-pixel sampling phase).
    n_out : int, optional
        Number of output pixels (default: as many whole output pixels as fit in the input from ``offset``).

    Returns
    -------
    `numpy.ndarray`
        Float64 matrix of shape ``(n_out, n_in)``; its rows sum to 1.

    Raises
    ------
    ValueError
        The output pixels would reach outside the input (``offset`` negative, or ``n_out`` too large).

    Examples
    --------
    >>> from sunpy_nn.psf import rebin_matrix
    >>> rebin_matrix(4, 1.0, 2.0)
    array([[0.5, 0.5, 0. , 0. ],
           [0. , 0. , 0.5, 0.5]])
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
    Matrix of a 1-D detector model between point sampling and full pixel-area integration.

    Each output pixel averages the input over an aperture of ``fill`` times its own width, centred on the pixel
    centre. ``fill=1`` integrates over the whole pixel (identical to `rebin_matrix`); ``fill=0`` samples the
    (piecewise-constant) input at the pixel centre, which an aperture one input pixel wide does exactly: it is
    linear interpolation between input pixel centres. Real detectors lie in between (fill factor, charge
    diffusion), which is why the Enhance training draws ``fill`` at random.

    Parameters
    ----------
    n_in : int
        Number of input pixels.
    scale_in, scale_out : float
        Input and output pixel sizes, in the same unit (e.g. arcsec per pixel); only their ratio matters.
    offset : float
        Position of the first output pixel's left edge, in input pixels (the sub-pixel sampling phase).
    n_out : int, optional
        Number of output pixels (default: as many whole output pixels as fit in the input from ``offset``).
    fill : float
        Aperture width as a fraction of the output pixel, from 0 (point sampling) to 1 (pixel area).

    Returns
    -------
    `numpy.ndarray`
        Float64 matrix of shape ``(n_out, n_in)``; its rows sum to 1.

    Raises
    ------
    ValueError
        ``fill`` is outside ``[0, 1]``, or the apertures would reach outside the input.

    Examples
    --------
    >>> from sunpy_nn.psf import sampling_matrix
    >>> sampling_matrix(4, 1.0, 2.0, fill=0.0)  # centres at 1 and 3, on input pixel edges: linear interpolation
    array([[0.5, 0.5, 0. , 0. ],
           [0. , 0. , 0.5, 0.5]])
    >>> sampling_matrix(4, 1.0, 1.0, fill=0.0)[:2]  # point samples on input pixel centres pick the pixel itself
    array([[1., 0., 0., 0.],
           [0., 1., 0., 0.]])
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
    """
    Flux-conserving (area-weighted) resampling of a 2-D image; the mean over covered pixels is conserved.

    Each axis is resampled with `rebin_matrix`.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D image ``(ny, nx)`` at ``scale_in``, any unit.
    scale_in, scale_out : float
        Input and output pixel sizes, in the same unit (e.g. arcsec per pixel); only their ratio matters.
    offset : tuple of float
        Position ``(y, x)`` of the first output pixel's edges, in input pixels (the sub-pixel sampling phase).
    shape : tuple of int, optional
        Output shape ``(ny_out, nx_out)`` (default: as many whole output pixels as fit).

    Returns
    -------
    `numpy.ndarray`
        Float64 image at ``scale_out``, in the unit of ``image``.

    Raises
    ------
    ValueError
        The output pixels would reach outside the image (from `rebin_matrix`).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.psf import resample_flux
    >>> resample_flux(np.arange(16.0).reshape(4, 4), 1.0, 2.0)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
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

    The image formation model of Enhance: ``I = D [P * O] + N``, with ``P`` the PSF, ``D`` the resampling to the
    detector's pixels (`resample_flux`: area-weighted) and ``N`` Gaussian noise.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D image ``(ny, nx)`` at ``scale_in``, any unit (a simulation snapshot: periodic boundaries are assumed).
    scale_in : `~astropy.units.Quantity` or float
        Input pixel scale: an angle per pixel or an angle, or a float in arcsec per pixel.
    psf : `numpy.ndarray`
        The 2-D PSF sampled at ``scale_in`` (e.g. `hmi_psf` or `airy_psf`), centred at ``shape // 2``, unit sum,
        any size (a kernel larger than the image is folded onto it).
    scale_out : `~astropy.units.Quantity` or float
        Output pixel scale, as ``scale_in``.
    noise : float, optional
        Standard deviation of Gaussian noise added after resampling, in the image's units (`None` or 0: none).
    seed : int or `numpy.random.Generator`, optional
        For the noise.
    offset : tuple of float
        Sub-pixel sampling phase: position ``(y, x)`` of the first output pixel's edges in input pixels.
    shape : tuple of int, optional
        Output shape ``(ny_out, nx_out)`` (default: as many whole pixels as fit).

    Returns
    -------
    `numpy.ndarray`
        The degraded float64 image at ``scale_out``, in the unit of ``image``.

    Raises
    ------
    astropy.units.UnitsError
        A scale is a quantity that is not an angle (per pixel).
    ValueError
        A scale is zero or not finite, or the output pixels would reach outside the image.

    References
    ----------
    Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
    doi:10.1051/0004-6361/201731344, Eq. (1): the image formation model.

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
