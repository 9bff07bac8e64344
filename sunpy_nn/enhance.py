"""
Enhance on sunpy Maps: deconvolution and x2 super-resolution of SDO/HMI continuum images and magnetograms.

The Map-level layer of the package: it finds the data kind from the metadata, normalises the data to the units
the network was trained in (continuum intensity over the quiet-Sun level or a fitted limb-darkening profile; the
line-of-sight field in kG), fills missing pixels, runs `~sunpy_nn.nn.EnhanceNet` tile by tile, undoes the
normalisation, and writes a header whose WCS keeps every pixel edge where it was on the Sun.
"""

from __future__ import annotations

import copy
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from astropy.stats import sigma_clipped_stats
from sunpy.map import GenericMap, Map, MapSequence
from torch import nn

from sunpy_nn import header
from sunpy_nn.batch import _check_errors, _source_name, run_batch
from sunpy_nn.data.registry import ModelInfo, available_models, load_weights
from sunpy_nn.header import (
    _data_kind,
    _disk_geometry,
    _is_photospheric,
    _observed_wavelength,
    _off_disk_zeros,
    _update_stats,
    append_history,
    pixel_scale_arcsec,
    provenance,
    superres_meta,
)
from sunpy_nn.nn import EnhanceNet, resolve_device, run_tiled
from sunpy_nn.nn.lazy import is_dask, lazy_tiled
from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC
from sunpy_nn.utils import SunpyNNUserWarning, WeightsError, fill_nearest

__all__ = [
    "HMI_PIXEL_SCALE",
    "KINDS",
    "LIMB_DARKENING_600NM",
    "MAX_FIELD",
    "MAX_NEGATIVE_FRACTION",
    "MIN_FIELD",
    "PHOTOSPHERIC_WAVELENGTHS",
    "Normalisation",
    "detect_kind",
    "enhance_array",
    "enhance_map",
    "load_enhance_model",
    "normalise",
    "superres_meta",
]

log = logging.getLogger(__name__)

_pixel_scale_arcsec = pixel_scale_arcsec  # its name here before it moved to sunpy_nn.header (issue #15)

#: The data kinds Enhance has a network for.
KINDS = ("intensity", "blos")
#: HMI's pixel scale, the scale Enhance was trained at.
HMI_PIXEL_SCALE = HMI_PIXEL_SCALE_ARCSEC * u.arcsec / u.pix
# What Enhance does, as its results' provenance records it.
_METHOD = "Enhance (Diaz Baso & Asensio Ramos 2018)"
#: Smallest image edge accepted (pixels).
MIN_SIZE = 8
#: Quadratic limb-darkening law near 600 nm, I(mu)/I(1) = 1 - u2 (1 - mu) - v2 (1 - mu)^2 (Allen's
#: Astrophysical Quantities, 4th ed., Table 14.17): the shape used when a map covers too small a range of mu
#: to fit one.
LIMB_DARKENING_600NM = (0.88, -0.23)
#: Wavelengths at which a continuum image or a magnetogram shows the photosphere (visible and near infrared;
#: `sunpy_nn.header.PHOTOSPHERIC_WAVELENGTHS`). Maps observed outside this range (EUV, UV, X-rays, radio: AIA 171 or
#: 1700 Angstrom, for example) are refused unless ``kind=`` is given: Enhance was trained on the photosphere at
#: HMI's 617.3 nm.
PHOTOSPHERIC_WAVELENGTHS = header.PHOTOSPHERIC_WAVELENGTHS
#: Line-of-sight fields stronger than this are not solar (the strongest sunspot fields are 4-6 kG): a magnetogram
#: whose 99.9th percentile of \|B\| exceeds it, after unit conversion, has the wrong unit (e.g. Gauss labelled kG).
MAX_FIELD = 10 * u.kG
#: A magnetogram whose 99th percentile of \|B\| is below this is weaker than HMI's noise (about 10 G per pixel)
#: almost everywhere: a warning says its unit is probably wrong (e.g. kG labelled G).
MIN_FIELD = 5 * u.G
#: Fraction of negative pixels above which a "continuum image" is refused as a magnetogram.
MAX_NEGATIVE_FRACTION = 0.05


# ----------------------------------------------------------------------------------------------------------- kind
def _instrument_name(smap: GenericMap) -> str:
    """'SDO HMI ...' from the observatory, instrument and detector (any of which may be missing)."""
    parts = []
    for value in (smap.observatory, smap.instrument, smap.detector):
        text = "" if value is None else str(value).strip()
        if text and text not in parts:
            parts.append(text)
    return " ".join(parts)


def detect_kind(smap: GenericMap) -> str:
    """
    Find whether a map is a continuum intensity (``"intensity"``) or a line-of-sight magnetogram (``"blos"``).

    Looks at the map's measurement (HMI ``CONTENT``), then its unit (``BUNIT``): Gauss or Mx/cm^2 means a
    magnetogram, DN/s a continuum image. A map observed outside the visible and near infrared
    (`PHOTOSPHERIC_WAVELENGTHS`, e.g. an AIA EUV image) is neither.

    Raises
    ------
    ValueError
        If the metadata do not tell; the message says to pass ``kind=``. If the map was observed outside
        `PHOTOSPHERIC_WAVELENGTHS` (an EUV, UV, X-ray or radio image): Enhance is for photospheric continuum images
        and magnetograms, and such a map is processed only when ``kind=`` is given explicitly.

    Examples
    --------
    >>> import sunpy.map, sunpy.data.test
    >>> from sunpy_nn.enhance import detect_kind
    >>> detect_kind(sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits")))
    'intensity'
    """
    wavelength = _observed_wavelength(smap)
    if wavelength is not None and not _is_photospheric(wavelength):
        lo, hi = PHOTOSPHERIC_WAVELENGTHS
        raise ValueError(
            f"This {_instrument_name(smap) or type(smap).__name__} map was observed at {wavelength.to(u.AA):.6g} "
            f"({wavelength:.6g}), outside the visible and near infrared ({lo:g} - {hi.to(u.nm):g}): it is not a "
            "photospheric continuum image or magnetogram. Enhance was trained on HMI continuum images (617.3 nm) "
            "and magnetograms and is not meant for EUV, UV, X-ray or radio images. To run it anyway (the result is "
            "not validated), pass kind='intensity' or kind='blos' explicitly."
        )
    kind = _data_kind(smap)  # the metadata's answer; None when they do not tell
    if kind is None:
        raise ValueError(
            f"Cannot tell whether this {type(smap).__name__} is a continuum image or a magnetogram (measurement "
            f"{getattr(smap, 'measurement', None)!r}, CONTENT {smap.meta.get('content')!r}, unit {smap.unit}). "
            "Pass kind='intensity' or kind='blos'."
        )
    return kind


# -------------------------------------------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class Normalisation:
    """
    How a map was scaled into the network's units, and back.

    ``normalised = data / (scale * profile)``, where ``profile`` is 1 except for limb-darkening normalisation,
    in which case ``profile(x, y)`` is evaluated at (0-based) input pixel coordinates.
    """

    #: Data kind, ``"intensity"`` or ``"blos"``.
    kind: str
    #: ``"quiet_sun"``, ``"limb_darkening"``, ``"limb_darkening_fixed_shape"``, ``"kG"`` or ``"none"``.
    method: str
    #: Constant divisor: the quiet-Sun or disk-centre intensity, or 1 kG in the map's unit (1000 for Gauss).
    scale: float
    #: ``(u2, v2)`` of the quadratic limb-darkening law, or `None`.
    coeffs: tuple[float, float] | None = None
    #: Disk centre in 0-based input pixels ``(x, y)``.
    centre: tuple[float, float] | None = None
    #: Solar radius in input pixels.
    radius: float | None = None

    def profile(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
        """Limb-darkening factor I(mu)/I(1) at input pixel coordinates (1 where there is none)."""
        if self.coeffs is None:
            return 1.0
        rho2 = ((x - self.centre[0]) ** 2 + (y - self.centre[1]) ** 2) / self.radius**2
        # Clamp just inside the limb: off-disk pixels (NaN in HMI) must still map invertibly.
        one_minus_mu = 1.0 - np.sqrt(np.clip(1.0 - rho2, 0.01, 1.0))
        u2, v2 = self.coeffs
        return 1.0 - u2 * one_minus_mu - v2 * one_minus_mu**2

    def describe(self) -> str:
        """One line for HISTORY and logs."""
        if self.coeffs is None:
            return f"{self.method}: divided by {self.scale:.6g}"
        u2, v2 = self.coeffs
        # Signs written out: a negative coefficient reads "+ 0.2300", not "- -0.2300".
        t1 = f"{'-' if u2 >= 0 else '+'} {abs(u2):.4f}(1-mu)"
        t2 = f"{'-' if v2 >= 0 else '+'} {abs(v2):.4f}(1-mu)^2"
        return f"{self.method}: divided by {self.scale:.6g} * (1 {t1} {t2})"


def _mirrored_axis(smap: GenericMap) -> int | None:
    """
    The array axis (1 = x, 0 = y) to flip to see the map the standard way round (not mirrored), or None.

    Solar maps are stored with longitude (west) increasing along x and latitude (north) along y, so the
    pixel-to-world matrix has a positive determinant; a negative one (e.g. ``CDELT1 < 0``) means a mirror image.
    Of the two flips that undo it, the one that leaves the smaller rotation is chosen.
    """
    try:
        wcs = smap.wcs
        matrix = np.array(wcs.pixel_scale_matrix, dtype=float)[:2, :2]
        swapped = wcs.wcs.lng == 1 and wcs.wcs.lat == 0
    except Exception:
        return None
    if matrix.shape != (2, 2) or not np.isfinite(matrix).all():
        return None
    det = np.linalg.det(matrix) * (-1 if swapped else 1)
    if not det < 0:
        return None
    matrix = matrix / np.linalg.norm(matrix, axis=0)  # per-axis unit columns: non-square pixels compare fairly
    # Flipping x negates the first column (trace -m00 + m11), flipping y the second (trace m00 - m11).
    return 1 if matrix[1, 1] >= matrix[0, 0] else 0


def _robust_level(values: np.ndarray) -> float:
    # Sigma clipping drops umbrae, penumbrae and faculae; what remains is granulation around the quiet Sun.
    return float(sigma_clipped_stats(values, sigma=3.0, maxiters=20)[1])


def normalise(smap: GenericMap, data: np.ndarray, kind: str, method: str = "auto") -> Normalisation:
    """
    Work out the normalisation that brings a map into the network's units.

    Parameters
    ----------
    smap : `~sunpy.map.GenericMap`
        The map (for its unit and coordinates).
    data : `numpy.ndarray`
        Its data as float, NaN where missing.
    kind : {"intensity", "blos"}
        Data kind.
    method : {"auto", "quiet_sun", "limb_darkening", "none"}
        For continuum images: ``"quiet_sun"`` divides by one robust quiet-Sun level; ``"limb_darkening"`` divides
        by a quadratic limb-darkening law fitted to the quiet Sun (all three coefficients when the map spans
        mu from below 0.5 to above 0.9, as a full disk does; otherwise only the level, with the law's shape
        fixed to `LIMB_DARKENING_600NM`). ``"auto"`` uses limb darkening where the map has helioprojective
        coordinates and observer information, and a quiet-Sun level otherwise. ``"none"`` leaves the data as
        they are (already I/Ic). Magnetograms are always converted to kG.

    Returns
    -------
    `Normalisation`
    """
    if kind == "blos":
        if smap.unit is None or not smap.unit.is_equivalent(u.G):
            raise ValueError(
                f"A magnetogram must be in Gauss (or Mx/cm^2); this map's unit is {smap.unit}. Set "
                "smap.meta['bunit'] = 'G' if the data are in Gauss, or convert them first."
            )
        # The network sees kG: divide by 1 kG expressed in the map's unit (1000 for G or Mx/cm^2, 1 for kG).
        return Normalisation(kind, "kG", float((1 * u.kG).to_value(smap.unit)))
    if smap.unit is not None and smap.unit.is_equivalent(u.G):
        raise ValueError(f"kind='intensity' but the map is in {smap.unit}, a magnetic field: pass kind='blos'")
    if method not in {"auto", "quiet_sun", "limb_darkening", "none"}:
        raise ValueError(f"normalisation must be 'auto', 'quiet_sun', 'limb_darkening' or 'none', not {method!r}")
    if method == "none":
        return Normalisation(kind, "none", 1.0)
    valid = np.isfinite(data)
    geometry = _disk_geometry(smap) if method != "quiet_sun" else None
    if geometry is None:
        if method == "limb_darkening":
            raise ValueError(
                "Limb-darkening normalisation needs a helioprojective map with square pixels and observer "
                "information (rsun_obs, dsun_obs); use normalisation='quiet_sun'."
            )
        level = _robust_level(data[valid])
        if not level > 0:
            raise ValueError(f"The quiet-Sun level of this continuum image is {level}; the data must be positive")
        return Normalisation(kind, "quiet_sun", level)

    (xc, yc), radius = geometry
    ny, nx = data.shape
    # Subsample large maps for the fit: a few hundred thousand pixels pin three coefficients down.
    step = max(1, int(np.sqrt(data.size / 250_000)))
    yy, xx = np.mgrid[0:ny:step, 0:nx:step]
    sub = data[::step, ::step]
    mu = np.sqrt(np.clip(1 - ((xx - xc) ** 2 + (yy - yc) ** 2) / radius**2, 0, 1))
    use = np.isfinite(sub) & (mu > 0.1)
    if use.sum() < 16:
        raise ValueError("Fewer than 16 valid on-disk pixels: cannot normalise this continuum image")
    x, v = 1 - mu[use], sub[use]
    if mu[use].min() < 0.5 and mu[use].max() > 0.9:
        keep = np.ones(v.size, bool)
        for _ in range(10):
            design = np.stack([np.ones(keep.sum()), x[keep], x[keep] ** 2], axis=1)
            c = np.linalg.lstsq(design, v[keep], rcond=None)[0]
            resid = v / (c[0] + c[1] * x + c[2] * x**2) - 1
            std = 1.4826 * np.median(np.abs(resid[keep]))
            new = np.abs(resid) < 3 * std
            if np.array_equal(new, keep):
                break
            keep = new
        coeffs, method_used = (-c[1] / c[0], -c[2] / c[0]), "limb_darkening"
        level = float(c[0])
    else:
        coeffs, method_used = LIMB_DARKENING_600NM, "limb_darkening_fixed_shape"
        u2, v2 = coeffs
        level = _robust_level(v / (1 - u2 * x - v2 * x**2))
    if not level > 0:
        raise ValueError(f"The fitted disk-centre intensity is {level}; the data must be positive")
    norm = Normalisation(kind, method_used, level, tuple(float(a) for a in coeffs), (xc, yc), radius)
    log.info("Continuum normalisation: %s", norm.describe())
    return norm


def _apply_profile(out: np.ndarray, norm: Normalisation, factor: float, rows: int = 512) -> None:
    """Multiply an enhanced (x``factor``) image in place by scale * profile, in row blocks to bound memory."""
    out *= norm.scale
    if norm.coeffs is None:
        return
    ny, nx = out.shape
    # Output pixel i (0-based) sits at input pixel (i + 0.5) / factor - 0.5.
    x = (np.arange(nx) + 0.5) / factor - 0.5
    for y0 in range(0, ny, rows):
        y = (np.arange(y0, min(y0 + rows, ny)) + 0.5) / factor - 0.5
        out[y0 : y0 + rows] *= norm.profile(x[None, :], y[:, None]).astype(out.dtype)


# -------------------------------------------------------------------------------------------------------- weights
# The one model cache, per process: a registered model or a weight file is loaded once, however many maps this
# process enhances (a dask worker keeps its own). Keyed by the file and its modification time and size, so that a
# rewritten file is loaded again; at most _MAX_MODELS networks, the least recently used dropped first.
_MODELS: OrderedDict = OrderedDict()
_MAX_MODELS = 8
_MODEL_LOADS = 0  # networks loaded from a file by this process (a worker's count shows the cache working)
_MODELS_LOCK = threading.Lock()  # the "threads" scheduler's tasks share this process and its cache


def _weights_file(weights: str | Path) -> Path | None:
    """The file behind a registered name or a path, or None where there is none (load_weights says why)."""
    if isinstance(weights, str) and not Path(weights).suffix:
        from sunpy_nn.data.registry import _find

        return _find(weights)
    path = Path(weights).expanduser()  # as load_weights reads it: "~/w.pt" is cached too
    return path if path.is_file() else None


def load_enhance_model(weights: str | Path | nn.Module | None, kind: str) -> tuple[EnhanceNet, ModelInfo]:
    """
    Resolve the ``weights`` argument of `enhance_map` into a network and its provenance.

    ``None`` means the registered model ``enhance_<kind>``. Registered models and weight files are cached in this
    process, so processing a sequence of maps loads them once (each dask worker process once).
    """
    global _MODEL_LOADS
    if weights is None:
        name = f"enhance_{kind}"
        if name not in available_models():
            raise WeightsError(
                f"This version of sunpy_nn ships no trained Enhance weights for kind={kind!r} (registered models: "
                f"{available_models() or 'none'}). Pass weights= a .pt file saved by sunpy_nn.data.save_weights, "
                "the original Keras .h5 file of the Enhance release, or an EnhanceNet; or put enhance_"
                f"{kind}.pt and its .json model card in the folder named by $SUNPY_NN_WEIGHTS_DIR."
            )
        weights = name
    path = None if isinstance(weights, nn.Module) else _weights_file(weights)
    if path is None:  # a network object (nothing to load), or no such file: load_weights passes it or says why
        return load_weights(weights, architecture=EnhanceNet)
    stat = path.stat()
    key = (str(weights), str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_weights(weights, architecture=EnhanceNet)
            _MODEL_LOADS += 1
            while len(_MODELS) > _MAX_MODELS:
                _MODELS.popitem(last=False)
        _MODELS.move_to_end(key)
        return _MODELS[key]


# ---------------------------------------------------------------------------------------------------------- array
def enhance_array(
    image: np.ndarray,
    model: nn.Module,
    *,
    device: str | torch.device | None = None,
    tile_size: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    precision: str | None = "float32",
    compile: bool = False,
) -> np.ndarray:
    """
    Run Enhance on a plain array already in network units (I/Ic, or kG); numpy in, numpy out.

    NaN pixels are filled with the nearest valid value for the network and set back to NaN (all four pixels
    of their 2 x 2 block) in the output. Because the fill comes from valid neighbours, nothing invalid can reach a
    valid output pixel.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D image, NaN where missing; at least 8 x 8 pixels.
    model : `torch.nn.Module`
        An `~sunpy_nn.nn.EnhanceNet` (see `load_enhance_model`).
    device, tile_size, batch_size, progress, precision, compile
        As for `~sunpy_nn.nn.run_tiled`. A dask array gives a lazy dask array, computed block by block with
        overlap (equal to the in-memory result).

    Returns
    -------
    `numpy.ndarray`
        Float32 image of twice the size along each axis.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.nn import EnhanceNet
    >>> from sunpy_nn.enhance import enhance_array
    >>> img = np.ones((32, 40)); img[:5, :5] = np.nan
    >>> out = enhance_array(img, EnhanceNet(depth=1, n_filters=8), progress=False)
    >>> out.shape, bool(np.isnan(out[:10, :10]).all()), bool(np.isfinite(out[10:]).all())
    ((64, 80), True, True)
    """
    if is_dask(image):
        return _enhance_lazy(
            image,
            model,
            device=device,
            tile_size=tile_size,
            batch_size=batch_size,
            precision=precision,
            compile=compile,
        )
    data = np.asarray(image)
    if data.ndim != 2:
        raise ValueError(f"Enhance works on 2-D images; got {data.ndim}-D data of shape {data.shape}")
    if min(data.shape) < MIN_SIZE:
        raise ValueError(
            f"The image is {data.shape[0]}x{data.shape[1]} px; Enhance needs at least {MIN_SIZE}x{MIN_SIZE} "
            "(its receptive field is 27 px across). Use a larger cut-out."
        )
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise TypeError(f"Enhance needs real numbers; got dtype {data.dtype}")
    data = data.astype(np.float32)  # a copy: integer data become float, the caller's array is untouched
    if np.isinf(data).any():
        raise ValueError(
            f"The image has {int(np.isinf(data).sum())} infinite pixels. Replace them with NaN to mark them "
            "as missing (np.where(np.isinf(a), np.nan, a))."
        )
    missing = np.isnan(data)
    if missing.all():
        raise ValueError("The image is all NaN: there is nothing to enhance")
    data = fill_nearest(data, missing)
    radius = getattr(model, "receptive_radius", 16)
    out = run_tiled(
        model,
        data,
        valid=~missing if missing.any() else None,  # tiles wholly off the disk are not computed
        scale=2,
        halo=radius,
        tile_size=tile_size,
        batch_size=batch_size,
        device=device,
        progress=progress,
        desc="Enhance",
        precision=precision,
        compile=compile,
    )
    if missing.any():
        out[np.repeat(np.repeat(missing, 2, axis=0), 2, axis=1)] = np.nan
    return out


def _enhance_lazy(image, model: nn.Module, *, device=None, tile_size=None, batch_size=None, **run):
    """Enhance of a dask image: block by block, each block extended by twice the receptive radius."""
    if image.ndim != 2:
        raise ValueError(f"Enhance works on 2-D images; got {image.ndim}-D data of shape {image.shape}")
    if min(image.shape) < MIN_SIZE:
        raise ValueError(f"The image is {image.shape[0]}x{image.shape[1]} px; Enhance needs at least {MIN_SIZE}")
    radius = getattr(model, "receptive_radius", 16)

    def block(b: np.ndarray) -> np.ndarray:
        if np.isnan(b).all():  # off the disk: nothing to compute
            return np.full((2 * b.shape[0], 2 * b.shape[1]), np.nan, np.float32)
        return enhance_array(b, model, device=device, tile_size=tile_size, batch_size=batch_size, progress=False, **run)

    # Twice the radius: missing pixels are filled from their nearest valid pixel, which for a pixel that reaches a
    # valid output (within one radius) lies within another radius; so the fill, and the output, match in memory.
    return lazy_tiled(image, block, depth=2 * radius, scale=2)


# --------------------------------------------------------------------------------------------------------- checks
def _check_map(smap: GenericMap) -> None:
    if not isinstance(smap, GenericMap):
        raise TypeError(f"enhance_map needs a sunpy Map or MapSequence, not {type(smap).__name__}")
    if smap.data.ndim != 2:
        raise ValueError(f"Enhance works on 2-D maps; this map's data are {smap.data.ndim}-D {smap.data.shape}")
    if min(smap.data.shape) < MIN_SIZE:
        raise ValueError(
            f"The image is {smap.data.shape[0]}x{smap.data.shape[1]} px; Enhance needs at least {MIN_SIZE}x{MIN_SIZE} "
            "(its receptive field is 27 px across). Use a larger cut-out."
        )
    instrument = _instrument_name(smap)
    if "HMI" not in instrument.upper():
        warnings.warn(
            f"Enhance was trained for SDO/HMI; this map comes from {instrument or 'an unknown instrument'}. "
            "Results on other instruments are not validated: resample to 0.504 arcsec/pix and check them.",
            SunpyNNUserWarning,
            stacklevel=3,
        )
    wavelength = _observed_wavelength(smap)
    if wavelength is not None and not _is_photospheric(wavelength):  # only reached with an explicit kind
        warnings.warn(
            f"This map was observed at {wavelength.to(u.AA):.6g}, not in the photosphere's visible or near-infrared "
            "continuum that Enhance was trained on (HMI, 617.3 nm): the result is not validated.",
            SunpyNNUserWarning,
            stacklevel=3,
        )
    scale = pixel_scale_arcsec(smap)
    if scale is None:
        warnings.warn(
            "Cannot determine the pixel scale of this map in arcsec; Enhance expects HMI's 0.504 arcsec/pix.",
            SunpyNNUserWarning,
            stacklevel=3,
        )
    elif abs(scale / HMI_PIXEL_SCALE.value - 1) > 0.10:
        warnings.warn(
            f"The pixel scale is {scale:.4g} arcsec/pix, more than 10 % from HMI's 0.504 arcsec/pix that Enhance "
            "was trained at. Resample first, e.g. smap.resample(new_dimensions) or smap.superpixel(...).",
            SunpyNNUserWarning,
            stacklevel=3,
        )


def _check_values(data: np.ndarray, kind: str, unit: u.UnitBase | None, kind_given: bool) -> None:
    """
    Refuse (or warn about) values that are physically implausible for ``kind`` in ``unit``, before any work.

    A continuum image is positive; a magnetogram is signed, centred near 0 and weaker than `MAX_FIELD`. The
    thresholds are far from what real HMI data show (see the user guide), so only mislabelled data trip them.
    """
    values = data[np.isfinite(data)]
    if values.size == 0:
        return
    unit_text = "" if unit is None else f" {unit}"
    if kind == "intensity":
        negative = float(np.mean(values < 0))
        if negative > MAX_NEGATIVE_FRACTION:
            raise ValueError(
                f"This map is processed as a continuum image (kind='intensity'), but {negative:.1%} of its valid "
                f"pixels are negative (values from {values.min():.4g} to {values.max():.4g}{unit_text}); a "
                "continuum intensity is positive. It looks like a magnetogram: pass kind='blos' and give the map "
                "its field unit (e.g. smap.meta['bunit'] = 'G'), or fix its BUNIT and CONTENT keywords."
            )
        return
    if unit is None or not unit.is_equivalent(u.G):
        return  # normalise() refuses the unit itself, with its own message
    gauss = values * float((1 * unit).to_value(u.G))
    strongest = float(np.percentile(np.abs(gauss), 99.9))  # the percentile ignores a few bad pixels
    if strongest > MAX_FIELD.to_value(u.G):
        raise ValueError(
            f"This magnetogram's field reaches {strongest / 1000:.4g} kG (99.9th percentile of |B|, with its unit "
            f"{unit}), more than any solar field ({MAX_FIELD:g}): the unit is probably wrong (e.g. a field in G "
            "labelled kG), or this is not a magnetogram. Set the map's unit to the data's (e.g. "
            "smap.meta['bunit'] = 'G'), or, for a continuum image, pass kind='intensity'."
        )
    median = float(np.median(gauss))
    spread = 1.4826 * float(np.median(np.abs(gauss - median)))
    if values.size >= 64 and np.mean(gauss < 0) < 0.001 and median > 5 * spread:
        message = (
            f"This map is processed as a magnetogram (kind='blos'), but it looks like a continuum image: "
            f"{'no' if not (gauss < 0).any() else 'almost no'} negative pixels, and values clustered around "
            f"{median:.4g} G (robust spread {spread:.3g} G) rather than around 0. If it is a continuum image, pass "
            "kind='intensity' and give the map its intensity unit (e.g. smap.meta['bunit'] = 'DN/s')."
        )
        if not kind_given:
            raise ValueError(message)
        warnings.warn(message + " Processing it as a magnetogram as requested.", SunpyNNUserWarning, stacklevel=4)
        return
    weak = float(np.percentile(np.abs(gauss), 99))
    if weak < MIN_FIELD.to_value(u.G):
        warnings.warn(
            f"This magnetogram is weaker than HMI's noise almost everywhere (99 % of |B| below {weak:.3g} G, while "
            f"HMI's noise alone is about 10 G): is its unit ({unit}) right, e.g. kG labelled G? Set "
            "smap.meta['bunit'] to the data's unit.",
            SunpyNNUserWarning,
            stacklevel=4,
        )


# ------------------------------------------------------------------------------------------------------------ map
def _enhance_one(
    smap,
    kind,
    model,
    info,
    device,
    tile_size,
    normalisation,
    progress,
    precision="float32",
    compile=False,
    kind_given=True,
):
    _check_map(smap)
    kind_given = kind_given and kind is not None
    kind = kind or detect_kind(smap)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    data = np.array(smap.data, dtype=np.float64)  # a copy; integers become float
    if smap.mask is not None and np.any(smap.mask):
        data[np.asarray(smap.mask, bool)] = np.nan
    if np.isinf(data).any():
        raise ValueError(
            f"The map has {int(np.isinf(data).sum())} infinite pixels. Replace them with NaN to mark them as "
            "missing: sunpy.map.Map(np.where(np.isinf(m.data), np.nan, m.data), m.meta)."
        )
    if np.isnan(data).all():
        raise ValueError("The map is all NaN: there is nothing to enhance")
    zeros = _off_disk_zeros(smap, data, kind)
    if zeros is not None:
        where = "in this continuum image" if kind == "intensity" else "off the solar disk"
        warnings.warn(
            f"{int(zeros.sum())} pixels are exactly 0 {where}: they are taken as missing data (off-limb or not "
            "observed), not passed to the network as intensities or fields, and returned as 0. Mark missing pixels "
            "with NaN to silence this warning.",
            SunpyNNUserWarning,
            stacklevel=3,
        )
        data[zeros] = np.nan
        if np.isnan(data).all():
            raise ValueError("The map has no valid pixel (all NaN or off-disk zeros): there is nothing to enhance")
    _check_values(data, kind, smap.unit, kind_given)
    norm = normalise(smap, data, kind, normalisation)
    if norm.coeffs is not None:
        ny, nx = data.shape
        data /= norm.scale * norm.profile(np.arange(nx)[None, :], np.arange(ny)[:, None])
    else:
        data /= norm.scale
    # A mirrored map (e.g. CDELT1 < 0) is shown to the network the standard way round, so that it gives exactly
    # the result of the unmirrored map, mirrored back.
    flip = _mirrored_axis(smap)
    out = enhance_array(
        data if flip is None else np.flip(data, axis=flip),
        model,
        device=device,
        tile_size=tile_size,
        progress=progress,
        precision=precision,
        compile=compile,
    )
    if flip is not None:
        out = np.ascontiguousarray(np.flip(out, axis=flip))
    _apply_profile(out, norm, 2.0)
    if np.issubdtype(smap.data.dtype, np.floating) and smap.data.dtype.itemsize > 4:
        out = out.astype(smap.data.dtype)
    if zeros is not None:
        out[np.repeat(np.repeat(zeros, 2, axis=0), 2, axis=1)] = 0

    from sunpy_nn import __version__

    meta = superres_meta(smap, 2)
    _update_stats(meta, out)
    history = (
        f"sunpy_nn {__version__} enhance_map: Enhance x2 deconvolution/super-resolution (Diaz Baso & Asensio "
        f"Ramos 2018), kind={kind}, model={info.name}, sha256={info.sha256 or 'none'}, normalisation {norm.describe()}"
    )
    settings = {"kind": kind, "normalisation": norm.describe()}
    if zeros is not None:
        history += f", {int(zeros.sum())} zero pixels kept as missing"
        settings["zero_pixels_kept_as_missing"] = int(zeros.sum())
    append_history(meta, history)
    # the record every sunpy_nn result has, as HISTORY lines (Map.save writes the meta as a FITS header)
    provenance(meta, method=_METHOD, model_info=info, settings=settings, history=True)
    meta["snnvers"] = __version__
    meta["snnmodel"] = info.name
    meta["snnsha"] = info.sha256 or "none"
    meta["snnkind"] = kind
    meta["snnnorm"] = norm.method
    comments = dict(meta.get("keycomments", {}))
    comments.update(
        SNNVERS="sunpy_nn version that enhanced the data",
        SNNMODEL="Enhance model name",
        SNNKIND="Enhance data kind",
        SNNNORM="normalisation applied for the network",
    )
    meta["keycomments"] = comments
    mask = None
    if smap.mask is not None:
        mask = np.repeat(np.repeat(np.asarray(smap.mask, bool), 2, axis=0), 2, axis=1)
    return smap._new_instance(out, meta, plot_settings=copy.deepcopy(smap.plot_settings), mask=mask)


# ---------------------------------------------------------------------------------------------------------- batch
def _output_name(item, index: int) -> str:
    """File name of an enhanced map written to ``output_dir``: the input's name, or the map's position and date."""
    if isinstance(item, str | Path):
        name = Path(item).name
        for suffix in (".gz", ".fz", ".fits", ".fts", ".fit"):
            name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
        return f"{name}_enhanced.fits"
    date = getattr(item, "date", None)
    stamp = date.strftime("%Y%m%d_%H%M%S") if date is not None else "nodate"
    return f"map{index:05d}_{stamp}_enhanced.fits"


@dataclass
class _EnhanceTask:
    """
    The Enhance worker task: one map (a file or a Map) in, the enhanced Map (or the file written) out.

    Handed to `sunpy_nn.batch.run_batch`, which sends it once to each worker (with the network when ``weights`` is
    one); the worker loads the model once, from the one model cache of this module.
    """

    kind: str | None
    weights: object
    device: str | None
    tile_size: int | None
    normalisation: str
    output_dir: str | None
    overwrite: bool
    precision: str | None = "float32"
    compile: bool = False

    def __call__(self, item, index: int):
        smap = Map(item) if isinstance(item, str | Path) else item
        if not isinstance(smap, GenericMap):
            raise TypeError(f"{_source_name(item, index)} is not one 2-D map but {type(smap).__name__}")
        kind = self.kind or detect_kind(smap)
        model, info = load_enhance_model(self.weights, kind)
        out = _enhance_one(
            smap,
            kind,
            model,
            info,
            resolve_device(self.device),
            self.tile_size,
            self.normalisation,
            False,
            self.precision,
            self.compile,
            kind_given=self.kind is not None,
        )
        if self.output_dir is None:
            return out
        path = Path(self.output_dir) / _output_name(item, index)
        out.save(path, overwrite=self.overwrite)
        return str(path)


def enhance_batch(
    items: Sequence,
    *,
    kind=None,
    weights=None,
    device=None,
    tile_size=None,
    normalisation="auto",
    scheduler=None,
    num_workers: int | None = None,
    output_dir=None,
    overwrite: bool = False,
    errors: str = "raise",
    precision: str | None = "float32",
    compile: bool = False,
    progress: bool = True,
) -> list:
    """
    Enhance many maps (files or Maps) serially or on dask; the engine behind `~sunpy_nn.enhance_map` for lists.

    Returns the results in input order: Maps, or the paths written when ``output_dir`` is given. See
    `~sunpy_nn.enhance_map` for the parameters; `sunpy_nn.batch.run_batch` runs the maps.
    """
    _check_errors(errors)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    task = _EnhanceTask(
        kind,
        weights,
        None if device is None else str(device),
        tile_size,
        normalisation,
        None if output_dir is None else str(output_dir),
        overwrite,
        precision,
        compile,
    )
    return run_batch(
        items,
        task,
        scheduler=scheduler,
        num_workers=num_workers,
        errors=errors,
        progress=progress,
        desc="enhance_map",
        unit="map",
        stacklevel=3,
    )


def enhance_map(
    smap: GenericMap | MapSequence | list,
    *,
    kind: str | None = None,
    weights: str | Path | nn.Module | None = None,
    device: str | torch.device | None = None,
    tile_size: int | None = None,
    normalisation: str = "auto",
    scheduler=None,
    num_workers: int | None = None,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
    errors: str = "raise",
    precision: str | None = "float32",
    compile: bool = False,
    progress: bool = True,
) -> GenericMap | MapSequence | list:
    """
    Deconvolve and super-resolve an SDO/HMI map by a factor of two with Enhance.

    Enhance (Diaz Baso & Asensio Ramos 2018) is a convolutional network trained on magnetohydrodynamic
    simulations degraded with HMI's point spread function: it returns the image HMI would see with a telescope
    twice its size, on pixels half as big.

    Parameters
    ----------
    smap : `~sunpy.map.GenericMap` or `~sunpy.map.MapSequence`
        An HMI continuum image or line-of-sight magnetogram at (about) 0.504 arcsec/pix: a full disk, a
        cut-out, a submap or a SHARP, stored either way round (a mirrored map, e.g. with ``CDELT1 < 0``, gives
        exactly the result of the unmirrored one, mirrored). Off-disk and other missing pixels are NaN (or
        masked); off-disk pixels stored as 0 are recognised as missing too and stay 0.
    kind : {"intensity", "blos"}, optional
        Data kind. By default it comes from the metadata (HMI ``CONTENT``, the measurement, ``BUNIT``); giving it
        overrides the refusal of non-photospheric maps and of continuum-like magnetograms.
    weights : str, path or `~sunpy_nn.nn.EnhanceNet`, optional
        A registered model name, a ``.pt`` weight file, an original Keras ``.h5`` Enhance file, or a network.
        By default the registered model ``enhance_<kind>``.
    device : {"cpu", "cuda", None}, optional
        Where the network runs; `None` picks a GPU when there is one.
    tile_size : int, optional
        Tile edge in input pixels (halo included). Larger tiles are a little faster and use more memory; the
        result does not depend on it.
    normalisation : {"auto", "quiet_sun", "limb_darkening", "none"}
        How continuum images are brought to I/Ic (see `sunpy_nn.enhance.normalise`); magnetograms are always
        converted from Gauss to kG. The normalisation is undone on output.
    scheduler : {None, "threads", "processes", "synchronous", "distributed"} or `distributed.Client`
        For many maps: what runs them. `None` (default) uses the active `distributed.Client` if there is one
        (``Client.current()``), else processes the maps one after the other in this process. Each worker loads
        the model once; each map is one task.
    num_workers : int, optional
        Workers of the ``"threads"`` and ``"processes"`` schedulers (default: one per core).
    output_dir : str or `~pathlib.Path`, optional
        For many maps: write each result to ``output_dir/<input name>_enhanced.fits`` on the worker and return
        the paths, so that the results never all sit in this process's memory.
    overwrite : bool
        Replace existing files in ``output_dir``.
    errors : {"raise", "warn"}
        For many maps: a map that fails (unreadable file, bad data) never stops the others. ``"raise"`` raises a
        `~sunpy_nn.batch.BatchError` after all maps are done, listing each failure and holding the
        successful results; ``"warn"`` warns for each failure and returns the successful results.
    precision : {"float32", "bfloat16", "auto", None}
        Arithmetic of the network (see :ref:`sunpy_nn-performance`). ``"float32"`` (default) runs an optimised
        copy (batch normalisation folded into the convolutions, sub-pixel up-sampling, channels-last), equal to
        the plain network to about 1e-6 of the data range; ``"bfloat16"`` is faster where the hardware supports
        it but less accurate; ``"auto"`` uses bfloat16 only where it is native and within 1e-3 of float32 on a
        probe; `None` runs the network exactly as defined.
    compile : bool
        Compile the network with `torch.compile` (where that fails, a warning is logged and it runs uncompiled).
    progress : bool
        Show progress bars (tiles of a full disk, maps of a sequence).

    Returns
    -------
    `~sunpy.map.GenericMap`, `~sunpy.map.MapSequence` or list
        A new map of the input's class with twice the pixels along each axis, in the input's unit and level.
        A `~sunpy.map.MapSequence` gives a `~sunpy.map.MapSequence`, a list of files or maps gives a list of
        maps; with ``output_dir``, a list of the files written.
        ``CDELT`` (and ``CD``) are halved, ``CRPIX' = 2 CRPIX - 0.5``, ``PC`` and ``CRVAL`` unchanged, so every
        pixel edge stays at the same place on the Sun. Missing pixels stay NaN (off-disk zeros stay 0), and
        the integer-only keywords ``BLANK``, ``BZERO`` and ``BSCALE`` are dropped. Provenance is recorded in
        ``HISTORY`` (a one-line summary, then the record every sunpy_nn result has, see
        `sunpy_nn.header.provenance`) and the keywords ``SNNVERS``, ``SNNMODEL``, ``SNNSHA`` (SHA-256 of the
        weights), ``SNNKIND`` and ``SNNNORM``. The input is not modified.

    Raises
    ------
    ValueError
        Data that are not 2-D, all NaN, contain infinities, are smaller than 8 x 8 pixels, have the wrong unit
        for their kind, or whose kind cannot be determined. A map observed outside the visible and near infrared
        (`~sunpy_nn.enhance.PHOTOSPHERIC_WAVELENGTHS`: an AIA EUV image, for example) unless ``kind`` is given.
        Values implausible for the kind, checked before the network runs: a "continuum image" with more than
        5 % negative pixels (`~sunpy_nn.enhance.MAX_NEGATIVE_FRACTION`; it looks like a magnetogram), a
        magnetogram whose 99.9th percentile of abs(B) exceeds 10 kG after unit conversion
        (`~sunpy_nn.enhance.MAX_FIELD`; the unit is wrong), or, unless ``kind="blos"`` is given, a "magnetogram"
        without negative pixels whose values cluster more than five robust standard deviations above 0 (it
        looks like a continuum image).
    sunpy_nn.utils.WeightsError
        No weights, or weights that are corrupt or do not fit the network.

    Warns
    -----
    sunpy_nn.utils.SunpyNNUserWarning
        For non-HMI data, maps observed outside the photosphere's wavelengths (with an explicit ``kind``), pixel
        scales more than 10 % from 0.504 arcsec/pix (resample first), a magnetogram weaker than HMI's noise
        almost everywhere (`~sunpy_nn.enhance.MIN_FIELD`: a wrong unit, e.g. kG labelled G), a continuum-like
        magnetogram given with ``kind="blos"``, and pixels stored as exactly 0 off the disk (or anywhere in a
        continuum image): they are treated as missing data and returned as 0.

    Notes
    -----
    The network is trustworthy on disk away from the limb. Near the limb (low contrast, foreshortening) it is
    known to create artefacts.

    Examples
    --------
    >>> import sunpy.map, sunpy.data.test
    >>> from sunpy_nn import enhance_map
    >>> from sunpy_nn.nn import EnhanceNet
    >>> hmi = sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))
    >>> net = EnhanceNet(depth=1, n_filters=8)  # an untrained network, for illustration only
    >>> import warnings; warnings.simplefilter("ignore")  # this test map is 20 arcsec/pix, not HMI's 0.504
    >>> big = enhance_map(hmi, weights=net, progress=False)
    >>> big.data.shape, type(big).__name__, big.meta["snnkind"]
    ((200, 200), 'HMIMap', 'intensity')
    """
    if isinstance(smap, MapSequence | list | tuple):
        if len(smap) == 0:
            raise ValueError("enhance_map got an empty sequence of maps")
        out = enhance_batch(
            list(smap),
            kind=kind,
            weights=weights,
            device=device,
            tile_size=tile_size,
            normalisation=normalisation,
            scheduler=scheduler,
            num_workers=num_workers,
            output_dir=output_dir,
            overwrite=overwrite,
            errors=errors,
            precision=precision,
            compile=compile,
            progress=progress,
        )
        return MapSequence(out) if isinstance(smap, MapSequence) and output_dir is None and out else out
    if isinstance(smap, str | Path):
        raise TypeError(f"enhance_map needs a sunpy Map, a MapSequence or a list of files, not one path: [{smap!r}]")
    if not isinstance(smap, GenericMap):
        raise TypeError(f"enhance_map needs a sunpy Map or MapSequence, not {type(smap).__name__}")
    kind_given = kind is not None
    kind = kind or detect_kind(smap)
    model, info = load_enhance_model(weights, kind)
    return _enhance_one(
        smap,
        kind,
        model,
        info,
        resolve_device(device),
        tile_size,
        normalisation,
        progress,
        precision,
        compile,
        kind_given=kind_given,
    )
