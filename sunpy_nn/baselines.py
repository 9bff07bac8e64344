"""
Classical baselines that the deep-learning methods are compared against.

`richardson_lucy` is the comparison made in the Enhance paper: bilinear x2 upsampling followed by
Richardson-Lucy deconvolution with the HMI PSF resampled to the new pixel.
"""

from __future__ import annotations

import copy

import numpy as np
from scipy import ndimage, signal
from sunpy.map import GenericMap

from sunpy_nn.header import (
    _data_kind,
    _drop_integer_keys,
    _off_disk_zeros,
    _update_stats,
    pixel_scale_arcsec,
    provenance,
    superres_meta,
)
from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC, HMI_PSF_RADIUS, _arcsec, hmi_psf
from sunpy_nn.utils import fill_nearest, upsample_nearest

__all__ = ["pca_denoise", "richardson_lucy"]

# What richardson_lucy does, as its results' provenance records it.
_RL_METHOD = "bilinear upsampling + Richardson-Lucy deconvolution"


def _convolve_symmetric(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """
    ``image`` convolved with ``kernel`` (centre at ``kernel.shape // 2``), same size, with a mirror boundary.

    The image is extended by half-sample symmetric reflection (``np.pad(mode="symmetric")``) by the kernel's reach on
    each side, and only the part whose kernel footprint lies entirely in the extension is kept ('valid'). So a flat
    image stays flat to rounding, however close to the border, with no zero fill darkening it.
    """
    ky, kx = kernel.shape
    pad = ((ky - 1 - ky // 2, ky // 2), (kx - 1 - kx // 2, kx // 2))
    return signal.fftconvolve(np.pad(image, pad, mode="symmetric"), kernel, mode="valid")


def _mirrored(psf: np.ndarray) -> np.ndarray:
    """
    The adjoint of convolving with ``psf`` (centre at ``shape // 2``), as a kernel centred the same way: ``psf``
    flipped, with a zero row (column) in front along an even axis, whose flip moves the centre one pixel back.
    """
    ky, kx = psf.shape
    return np.pad(psf[::-1, ::-1], ((1 - ky % 2, 0), (1 - kx % 2, 0)))


def _rl(image: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
    """
    Richardson-Lucy iterations with a mirror (symmetric) boundary in every convolution.

    ``estimate <- estimate * (psf' * (image / (psf * estimate)))``, where each convolution extends its input by
    reflection at the image border (`_convolve_symmetric`). The blur is then a linear map of the image onto itself
    whose rows sum to 1 everywhere, borders included, and for a centro-symmetric PSF (such as HMI's) it is a symmetric
    matrix, so the mirrored PSF is its exact adjoint and the update is the true Richardson-Lucy step: a flat image is
    a fixed point and flux is conserved, at the border as in the interior.

    This is not `skimage.restoration.richardson_lucy`, whose convolutions fill with zeros ('same' mode): that darkens
    the blurred estimate near the border, and the ratio image then brightens the border a little more at every
    iteration. Running scikit-image inside a mirror extension of the image helps only where the PSF is peaked: with
    HMI's PSF and an extension of twice its size it matches these iterations to 4e-8 of the image's range after 80
    iterations, but with a flat 4 x 6 box PSF a flat field is still off by 6 % at the border after 20 iterations,
    because the zero fill's disturbance travels one PSF radius per iteration (``changelog/15.feature.7.rst``).
    """
    psf_mirror = _mirrored(psf)
    estimate = np.full_like(image, image.mean())
    eps = 1e-12 * image.max()
    for _ in range(iterations):
        blurred = _convolve_symmetric(estimate, psf)
        estimate = estimate * _convolve_symmetric(image / np.maximum(blurred, eps), psf_mirror)
    return estimate


def _richardson_lucy_array(
    data: np.ndarray, psf: np.ndarray, iterations: int, upsample: int, missing: np.ndarray
) -> np.ndarray:
    """
    The numpy core of `richardson_lucy`: bilinear x``upsample`` then Richardson-Lucy, NaN where ``missing``.

    ``data`` is float64 with its ``missing`` pixels already filled; the result is ``upsample`` times larger.
    """
    up = ndimage.zoom(data, upsample, order=1, mode="nearest", grid_mode=True) if upsample > 1 else data
    offset = 0.0
    if up.min() <= 0:
        offset = -up.min() + 0.1 * (np.abs(up).max() or 1.0)  # RL needs positive data
    out = _rl(up + offset, psf, iterations) - offset
    if missing.any():
        out[upsample_nearest(missing, upsample)] = np.nan
    return out


def richardson_lucy(
    map_or_array: GenericMap | np.ndarray,
    psf: np.ndarray | None = None,
    iterations: int = 20,
    upsample: int = 2,
    *,
    pixel_scale: float = HMI_PIXEL_SCALE_ARCSEC,
    modified: bool = True,
) -> GenericMap | np.ndarray:
    """
    Bilinear upsampling plus Richardson-Lucy deconvolution, the baseline of the Enhance paper.

    The image is upsampled by ``upsample`` (bilinear, pixel edges kept in place) and deconvolved with ``psf``
    sampled at the new pixel (default: `~sunpy_nn.psf.hmi_psf` at ``pixel_scale / upsample``). Signed data
    (magnetograms) are shifted to positive values for the iterations and shifted back. NaN pixels are filled
    with their nearest valid neighbour for the deconvolution and set back to NaN; in a map, pixels stored as exactly
    0 off the solar disk (or anywhere in a continuum image) are treated the same way and returned as 0. Every
    convolution of the iterations mirrors the image at its border, so a flat field stays flat to rounding, borders
    included, for any number of iterations.

    Parameters
    ----------
    map_or_array : `~sunpy.map.GenericMap` or `numpy.ndarray`
        The 2-D image ``(ny, nx)``, any unit (e.g. DN/s or Gauss). A map gives a map with the same WCS treatment as
        `~sunpy_nn.enhance_map`.
    psf : `numpy.ndarray`, optional
        2-D PSF sampled at the upsampled pixel scale, centred at ``shape // 2``, unit sum.
    iterations : int
        Richardson-Lucy iterations, at least 1 (the paper used 20-30; more fit the data harder and amplify noise).
    upsample : int
        Integer upsampling factor, at least 1 (1 for plain deconvolution).
    pixel_scale : float or `~astropy.units.Quantity`
        Input pixel scale of arrays, in arcsec per pixel for a float (maps use their own); its sign is ignored.
    modified : bool
        Use the paper's modified HMI PSF for the default ``psf``.

    Returns
    -------
    `~sunpy.map.GenericMap` or `numpy.ndarray`
        The deconvolved image, ``(upsample * ny, upsample * nx)`` float64 in the unit of the input (a map for a map,
        an array for an array). Missing pixels (NaN, masked) are NaN, off-disk zeros are 0. A map's WCS describes
        the new pixels (half the pixel size for ``upsample=2``), its mask is upsampled, and its ``HISTORY`` records
        what made it (`sunpy_nn.header.provenance`: software, method and settings).

    Raises
    ------
    ValueError
        The image is not 2-D or has no valid pixel, ``upsample`` or ``iterations`` is not a positive integer, or
        ``pixel_scale`` is zero or not finite.
    astropy.units.UnitsError
        ``pixel_scale`` is a quantity that is not an angle (per pixel).

    References
    ----------
    - Richardson, W. H. 1972, "Bayesian-Based Iterative Method of Image Restoration", J. Opt. Soc. Am., 62, 55.
    - Lucy, L. B. 1974, "An iterative technique for the rectification of observed distributions", AJ, 79, 745.
    - Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
      doi:10.1051/0004-6361/201731344: the comparison of Enhance with bilinear upsampling plus Richardson-Lucy
      deconvolution with the HMI PSF.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.baselines import richardson_lucy
    >>> img = 1 + 0.04 * np.random.default_rng(0).standard_normal((40, 40))
    >>> richardson_lucy(img, iterations=5).shape
    (80, 80)
    """
    is_map = isinstance(map_or_array, GenericMap)
    data = np.array(map_or_array.data if is_map else map_or_array, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"richardson_lucy works on 2-D images, got shape {data.shape}")
    if int(upsample) != upsample or upsample < 1:
        raise ValueError(f"upsample must be a positive integer, got {upsample!r}")
    if int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    upsample, iterations = int(upsample), int(iterations)
    zeros = mask = None
    if is_map:
        pixel_scale = pixel_scale_arcsec(map_or_array) or pixel_scale
        kind = _data_kind(map_or_array)  # None where the metadata do not tell, or outside the photosphere
        zeros = _off_disk_zeros(map_or_array, data, kind)  # off-limb zeros are missing data, returned as 0
        if zeros is not None:
            data[zeros] = np.nan
        if map_or_array.mask is not None and np.any(map_or_array.mask):
            mask = np.asarray(map_or_array.mask, bool)  # masked pixels are missing data, as in enhance_map
            data[mask] = np.nan
    pixel_scale = _arcsec(pixel_scale)  # a pixel's size: positive even when read from a negative CDELT
    missing = ~np.isfinite(data)
    if missing.all():
        raise ValueError("The image is all NaN (or masked); Richardson-Lucy needs valid pixels")
    psf_given = psf is not None
    if psf is None:
        new_scale = pixel_scale / upsample
        n = 2 * round(HMI_PSF_RADIUS / new_scale) + 1
        psf = hmi_psf(new_scale, modified=modified, shape=(n, n))
    out = _richardson_lucy_array(fill_nearest(data, missing), np.asarray(psf, float), iterations, upsample, missing)
    if zeros is not None:
        out[upsample_nearest(zeros, upsample)] = 0
    if not is_map:
        return out
    smap = map_or_array
    meta = superres_meta(smap, upsample) if upsample > 1 else _drop_integer_keys(copy.deepcopy(smap.meta))
    _update_stats(meta, out)  # as enhance_map: the JSOC statistics of this image, not of its input
    settings = {"upsample": upsample, "iterations": iterations, "pixel_scale_arcsec": pixel_scale}
    settings["psf"] = "given" if psf_given else f"hmi_psf(modified={modified})"
    provenance(meta, method=_RL_METHOD, settings=settings, history=True)  # Map.save writes the meta as FITS
    out_mask = None if smap.mask is None else upsample_nearest(np.asarray(smap.mask, bool), upsample)
    return smap._new_instance(out, meta, plot_settings=copy.deepcopy(smap.plot_settings), mask=out_mask)


def pca_denoise(cube, n_components: int | str = "auto", *, stokes=("Q", "U", "V")):
    """
    PCA denoising along wavelength, for each Stokes parameter and scan: the classical spectral baseline.

    The spectra of each (scan, Stokes) frame form an ``(n_pixels, n_wavelengths)`` matrix; it is projected on its
    leading principal components (of the mean-subtracted spectra) and reconstructed.

    Parameters
    ----------
    cube : `ndcube.NDCube`
        A spectropolarimetric cube with a wavelength axis and two spatial axes, optionally Stokes and time axes, in
        any order and any unit (see `sunpy_nn.cube.find_axes`).
    n_components : int or "auto"
        Components kept (0 to the number of wavelengths). ``"auto"`` keeps those whose eigenvalue exceeds the noise
        floor, the Marchenko-Pastur upper edge ``sigma^2 (1 + sqrt(n_wavelengths / n_pixels))^2`` for white noise of the
        level ``sigma`` estimated per Stokes parameter (`sunpy_nn.metrics.estimate_noise`: from scan differences with
        two or more scans, for Q, U and V over their weakly polarised pixels; spatially with one).
    stokes : tuple of str or None
        Stokes parameters to denoise (symbols ``"I"``, ``"Q"``, ``"U"``, ``"V"``); the others pass through. `None`,
        or a cube without a Stokes axis: all planes.

    Returns
    -------
    `ndcube.NDCube`
        A new cube of the same shape, axis order and unit, in the cube's own float type (float32 or float64), with
        the same WCS, mask, extra and global coordinates and metadata, plus its provenance
        (`sunpy_nn.header.provenance`: software, method and settings) under ``meta["sunpy_nn"]``, or as ``HISTORY``
        cards in a FITS header; ``meta["sunpy_nn"]["pca_components"]`` lists the components kept per (scan,
        Stokes) (0 for a frame without two complete spectra, which comes back as it was). Masked pixels are left
        out of the fit and come back as they were. A cube with an uncertainty keeps it, as a standard deviation in
        the data's unit, for the Stokes parameters passed through; it is NaN for the denoised ones (PCA gives no
        error bar: the input's would be too wide).

    Raises
    ------
    ValueError
        The cube's axes cannot be identified (`sunpy_nn.cube.find_axes`), it has no wavelength axis, a Stokes
        parameter of ``stokes`` is not in it, a denoised Stokes parameter has no finite pixel, or ``n_components``
        is neither ``"auto"`` nor a number of components from 0 to the number of wavelengths.

    References
    ----------
    - Martinez Gonzalez, M. J., Asensio Ramos, A., Carroll, T. A., et al. 2008, "PCA detection and denoising of
      Zeeman signatures in polarised stellar spectra", A&A, 486, 637: PCA denoising of Stokes spectra.
    - Marchenko, V. A., & Pastur, L. A. 1967, "Distribution of eigenvalues for some sets of random matrices",
      Math. USSR Sbornik, 1, 457: the upper edge of the noise eigenvalues used by ``"auto"``.
    - Diaz Baso, C. J., de la Cruz Rodriguez, J., & Danilovic, S. 2019, "Solar image denoising with convolutional
      neural networks", A&A, 629, A99, doi:10.1051/0004-6361/201936069, Sect. 1: PCA denoising of
      spectropolarimetric data, the classical alternative to the Noise2Noise network.

    Examples
    --------
    >>> from sunpy_nn.baselines import pca_denoise
    >>> from sunpy_nn.data.synthetic import synthetic_crisp_cube
    >>> cube, truth = synthetic_crisp_cube(32, n_wavelengths=7, n_scans=2, seed=0)
    >>> out = pca_denoise(cube)
    >>> out.data.shape == cube.data.shape, out.data.dtype
    (True, dtype('float32'))
    """
    from astropy.nddata import StdDevUncertainty
    from ndcube import NDCube

    from sunpy_nn.cube import _copy_coords, _stddev, find_axes, stokes_labels
    from sunpy_nn.metrics import estimate_noise

    axes = find_axes(cube)
    if axes.wavelength is None:
        raise ValueError("pca_denoise needs a wavelength axis; this cube has none")
    given = axes.to_canonical(np.asarray(cube.data, dtype=np.float64))
    canon = given.copy()
    n_w = canon.shape[2]
    if n_components != "auto" and not (isinstance(n_components, int | np.integer) and 0 <= n_components <= n_w):
        raise ValueError(f"n_components must be 'auto' or a number of components from 0 to {n_w}, not {n_components!r}")
    # masked pixels are missing for the fit, and come back as they were
    masked = None if cube.mask is None else axes.to_canonical(np.broadcast_to(np.asarray(cube.mask, bool), cube.shape))
    if masked is not None:
        canon[masked] = np.nan
    labels = stokes_labels(cube, axes)
    chosen = (
        range(len(labels))
        if axes.stokes is None or stokes is None
        else [labels.index(s) for s in stokes if s in labels]
    )
    if axes.stokes is not None and stokes is not None and len(list(chosen)) != len(stokes):
        raise ValueError(f"Stokes {[s for s in stokes if s not in labels]} not in this cube, which has {labels}")
    kept = {}
    for s in chosen:
        sigma = estimate_noise(canon[:, s], polarisation=labels[s] in ("Q", "U", "V"))
        for t in range(canon.shape[0]):
            frame = canon[t, s]  # (W, Y, X)
            nw = frame.shape[0]
            spectra = frame.reshape(nw, -1).T
            good = np.isfinite(spectra).all(axis=1)
            x = spectra[good]
            if len(x) < 2:  # no complete spectra to fit components to (e.g. a scan missing): left as it is
                kept[f"{t},{labels[s]}"] = 0
                continue
            mean = x.mean(axis=0)
            u_, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
            eig = sv**2 / max(len(x) - 1, 1)
            if n_components == "auto":
                k = int((eig > sigma**2 * (1 + np.sqrt(nw / len(x))) ** 2).sum())
            else:
                k = int(n_components)
            rec = mean + (u_[:, :k] * sv[:k]) @ vt[:k]
            spectra = spectra.copy()
            spectra[good] = rec
            canon[t, s] = spectra.T.reshape(frame.shape)
            kept[f"{t},{labels[s]}"] = k
    if masked is not None:
        canon[masked] = given[masked]
    # The meta keeps its type (issue 13, class 7: what was not asked for comes back as it was).
    meta = copy.deepcopy(cube.meta) if cube.meta is not None else {}
    # under meta["sunpy_nn"], or as HISTORY cards in a FITS header
    provenance(meta, method="PCA along wavelength", settings={"pca_components": kept})
    mask = None if cube.mask is None else np.array(cube.mask, copy=True)
    # Computed in float64; returned in the cube's own float type, so what passes through comes back bit for bit.
    dtype = np.result_type(np.asarray(cube.data).dtype, np.float32)
    data = axes.from_canonical(canon.astype(dtype, copy=False))
    # the cube's own error bars for what passed through; none (NaN) for the denoised planes: PCA gives no estimate
    given = _stddev(cube, axes)
    if given is not None:
        given = np.array(given, dtype=np.result_type(given.dtype, np.float32))
        given[:, list(chosen)] = np.nan
        given = StdDevUncertainty(axes.from_canonical(given), unit=cube.unit)
    return _copy_coords(cube, NDCube(data, wcs=cube.wcs, mask=mask, meta=meta, unit=cube.unit, uncertainty=given))
