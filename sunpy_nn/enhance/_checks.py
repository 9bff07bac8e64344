"""
What Enhance accepts: the data kinds, the checks of a map and its values before any work, and `detect_kind`.

Private to `sunpy_nn.enhance`, which re-exports the public names (`KINDS`, `detect_kind`, the thresholds).
"""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
from sunpy.map import GenericMap

from sunpy_nn import header
from sunpy_nn.header import _is_photospheric, _labelled_kind, _observed_wavelength, pixel_scale_arcsec
from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC
from sunpy_nn.utils import SunpyNNUserWarning

#: The data kinds Enhance has a network for.
KINDS = ("intensity", "blos")
#: HMI's pixel scale, the scale Enhance was trained at.
HMI_PIXEL_SCALE = HMI_PIXEL_SCALE_ARCSEC * u.arcsec / u.pix
#: Smallest image edge accepted (pixels).
MIN_SIZE = 8
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
        # skip what the name already says: AIA's instrument "AIA 3" and detector "AIA" made "SDO AIA 3 AIA"
        said = set(" ".join(parts).replace("/", " ").upper().split())
        if text and not set(text.replace("/", " ").upper().split()) <= said:
            parts.append(text)
    return " ".join(parts)


def detect_kind(smap: GenericMap) -> str:
    """
    Find whether a map is a continuum intensity (``"intensity"``) or a line-of-sight magnetogram (``"blos"``).

    Looks at the map's measurement (HMI ``CONTENT``), then its unit (``BUNIT``): Gauss or Mx/cm^2 means a
    magnetogram, DN/s a continuum image. A map observed outside the visible and near infrared
    (`PHOTOSPHERIC_WAVELENGTHS`, e.g. an AIA EUV image) is neither.

    Parameters
    ----------
    smap : `~sunpy.map.GenericMap`
        The map; only its metadata are read (measurement or ``CONTENT``, ``BUNIT``, wavelength), not its data.

    Returns
    -------
    str
        ``"intensity"`` (a continuum image) or ``"blos"`` (a line-of-sight magnetogram).

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
    kind = _labelled_kind(smap)  # the metadata's answer (the wavelength was read above); None if they do not tell
    if kind is None:
        raise ValueError(
            f"Cannot tell whether this {type(smap).__name__} is a continuum image or a magnetogram (measurement "
            f"{getattr(smap, 'measurement', None)!r}, CONTENT {smap.meta.get('content')!r}, unit {smap.unit}). "
            "Pass kind='intensity' or kind='blos'."
        )
    return kind


# --------------------------------------------------------------------------------------------------------- checks
def _check_map(smap: GenericMap) -> None:
    if not isinstance(smap, GenericMap):
        raise TypeError(f"enhance_map needs a sunpy Map or MapSequence, not {type(smap).__name__}")
    if smap.data.ndim != 2:
        raise ValueError(f"Enhance works on 2-D maps; this map's data are {smap.data.ndim}-D {smap.data.shape}")
    if not np.issubdtype(smap.data.dtype, np.number) or np.iscomplexobj(smap.data):  # complex: the real part went in
        raise TypeError(f"Enhance needs real numbers; this map's data are {smap.data.dtype}")
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
            stacklevel=4,  # _check_map < _enhance_one < enhance_map < the caller
        )
    wavelength = _observed_wavelength(smap)
    if wavelength is not None and not _is_photospheric(wavelength):  # only reached with an explicit kind
        warnings.warn(
            f"This map was observed at {wavelength.to(u.AA):.6g}, not in the photosphere's visible or near-infrared "
            "continuum that Enhance was trained on (HMI, 617.3 nm): the result is not validated.",
            SunpyNNUserWarning,
            stacklevel=4,  # _check_map < _enhance_one < enhance_map < the caller
        )
    scale = pixel_scale_arcsec(smap)
    if scale is None:
        warnings.warn(
            "Cannot determine the pixel scale of this map in arcsec; Enhance expects HMI's 0.504 arcsec/pix.",
            SunpyNNUserWarning,
            stacklevel=4,  # _check_map < _enhance_one < enhance_map < the caller
        )
    elif abs(scale / HMI_PIXEL_SCALE.value - 1) > 0.10:
        warnings.warn(
            f"The pixel scale is {scale:.4g} arcsec/pix, more than 10 % from HMI's 0.504 arcsec/pix that Enhance "
            "was trained at. Resample first, e.g. smap.resample(new_dimensions) or smap.superpixel(...).",
            SunpyNNUserWarning,
            stacklevel=4,  # _check_map < _enhance_one < enhance_map < the caller
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
