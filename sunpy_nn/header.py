"""
The metadata of sunpy_nn's results: resampled map headers, pixel scales and disk geometry, and provenance.

One concept, one room: the header of a map resampled by an integer factor (`superres_meta`, with the HMI and JSOC
keywords it must update or drop), a map's pixel scale on the Sun (`pixel_scale_arcsec`) and what its metadata say
about the data (disk geometry, wavelength, continuum image or magnetogram), and how a result records what made it
(`provenance`, the one convention of Enhance, the denoiser, the baselines and the CRISP writers, which also writes
the processing step's HISTORY record, its summary included). They are needed by Enhance (`sunpy_nn.enhance`), the
baselines (`sunpy_nn.baselines`) and the writers (`sunpy_nn.io`) alike, and live here, below all of them. Nothing
here imports a network, a reader or a writer.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import proj_plane_pixel_scales
from sunpy.coordinates import Helioprojective

if TYPE_CHECKING:
    from sunpy.map import GenericMap

__all__ = [
    "HMI_PIXEL_LENGTH_KEYS",
    "HMI_PIXEL_POSITION_KEYS",
    "INTEGER_ONLY_KEYS",
    "JSOC_STALE_STAT_KEYS",
    "PHOTOSPHERIC_WAVELENGTHS",
    "PROVENANCE_KEY",
    "append_history",
    "pixel_scale_arcsec",
    "provenance",
    "provenance_lines",
    "store_provenance",
    "superres_meta",
]

#: HMI keywords given in pixels, which must follow a resampling like ``CRPIX`` does: lengths (``R_SUN`` and the limb
#: fit's ``RSUN_LF``, the solar radius) and a scale (``IMSCL_MP``, arcsec per pixel), with the factor of their change
#: (2.0: they grow with the number of pixels; 0.5: they shrink).
HMI_PIXEL_LENGTH_KEYS = {"r_sun": 2.0, "rsun_lf": 2.0, "imscl_mp": 0.5}
#: HMI keywords holding 0-based pixel positions (the disk centre, from the mapping and from the limb fit).
HMI_PIXEL_POSITION_KEYS = ("x0_mp", "y0_mp", "x0_lf", "y0_lf")
#: JSOC data statistics that would be stale after resampling and are not recomputed (skew, kurtosis, percentiles...).
JSOC_STALE_STAT_KEYS = (
    "dataskew",
    "datakurt",
    "datamin2",
    "datamax2",
    "datamea2",
    "datamed2",
    "datarms2",
    "dataske2",
    "datakur2",
    "datap01",
    "datap10",
    "datap25",
    "datap75",
    "datap90",
    "datap95",
    "datap98",
    "datap99",
    "satvals",
)
#: Keywords that apply to integer FITS data only, dropped from the header of float results.
INTEGER_ONLY_KEYS = ("blank", "bzero", "bscale")
#: Wavelengths at which a continuum image or a magnetogram shows the photosphere (visible and near infrared).
PHOTOSPHERIC_WAVELENGTHS = (350 * u.nm, 2.5 * u.um)
#: The key of the provenance record in a meta that holds dicts (an NDCube's).
PROVENANCE_KEY = "sunpy_nn"


# -------------------------------------------------------------------------------------------------------- WCS
def superres_meta(smap: GenericMap, factor: int = 2) -> dict:
    """
    Header of ``smap`` resampled by an integer ``factor``, with every pixel edge fixed in world coordinates.

    ``CDELTi`` and the ``CDi_j`` matrix are divided by ``factor``; ``CRPIXi' = factor * (CRPIXi - 0.5) + 0.5``
    (``2 CRPIX - 0.5`` for x2, the same as `sunpy.map.GenericMap.resample`); ``PCi_j``, ``CROTA2`` and
    ``CRVALi`` are unchanged; ``NAXISi`` is multiplied. HMI keywords in pixels (``R_SUN``, ``X0_MP``,
    ``Y0_MP``, ``IMSCL_MP``) follow; JSOC statistics that would be stale (skew, kurtosis, percentiles...)
    are removed, and so are ``BLANK``, ``BZERO`` and ``BSCALE``, which apply to integer data only (resampled data
    are float). Negative ``CDELT`` (a mirrored axis) need no special case.

    Parameters
    ----------
    smap : `~sunpy.map.GenericMap`
        The map before resampling (its metadata, reference pixel and data shape are read; it is not changed).
    factor : int
        Output pixels per input pixel along each axis (2 for Enhance).

    Returns
    -------
    dict
        A new header (a deep copy of ``smap.meta``, of its type), for data of shape ``(factor * ny, factor * nx)``.

    Examples
    --------
    >>> import sunpy.map, sunpy.data.test
    >>> from sunpy_nn.header import superres_meta
    >>> hmi = sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))
    >>> meta = superres_meta(hmi)
    >>> meta["crpix1"], meta["cdelt1"] == hmi.meta["cdelt1"] / 2, meta["naxis1"]
    (100.5, True, 200)
    """
    meta = copy.deepcopy(smap.meta)
    ref = smap.reference_pixel  # 0-based; CRPIX may be absent from the header
    for key in ("cdelt1", "cdelt2", "cd1_1", "cd1_2", "cd2_1", "cd2_2"):
        if key in meta:
            meta[key] = meta[key] / factor
    meta["crpix1"] = float(factor * (ref.x.to_value(u.pix) + 0.5) + 0.5)
    meta["crpix2"] = float(factor * (ref.y.to_value(u.pix) + 0.5) + 0.5)
    ny, nx = smap.data.shape
    meta["naxis1"], meta["naxis2"] = nx * factor, ny * factor
    for key, f in HMI_PIXEL_LENGTH_KEYS.items():
        if isinstance(meta.get(key), (int, float)):
            meta[key] = meta[key] * (factor if f > 1 else 1 / factor)
    for key in HMI_PIXEL_POSITION_KEYS:
        if isinstance(meta.get(key), (int, float)):
            meta[key] = factor * (meta[key] + 0.5) - 0.5
    for key in JSOC_STALE_STAT_KEYS:
        meta.pop(key, None)
    return _drop_integer_keys(meta)


def _drop_integer_keys(meta: dict) -> dict:
    """Remove the keywords that only apply to integer FITS data (BLANK, BZERO, BSCALE) from a float map's header."""
    for key in INTEGER_ONLY_KEYS:
        meta.pop(key, None)
    comments = meta.get("keycomments")
    if isinstance(comments, dict):
        meta["keycomments"] = {k: v for k, v in comments.items() if k.lower() not in INTEGER_ONLY_KEYS}
    return meta


def _update_stats(meta: dict, data: np.ndarray) -> None:
    """Refresh the JSOC data-statistics keywords that the input had."""
    finite = data[np.isfinite(data)]
    stats = {"totvals": data.size, "datavals": finite.size, "missvals": data.size - finite.size}
    if finite.size:
        stats |= {
            "datamin": float(finite.min()),
            "datamax": float(finite.max()),
            "datamean": float(finite.mean()),
            "datamedn": float(np.median(finite)),
            "datarms": float(finite.std()),
        }
    for key, value in stats.items():
        if key in meta:
            meta[key] = value


# --------------------------------------------------------------------------------------------------- geometry
def _pixel_scales_deg(smap: GenericMap) -> tuple[float, float] | None:
    """
    Size of a pixel along each pixel axis (x, y) in degrees, positive, or None for non-angular axes.

    Taken from the full pixel-to-world matrix (``CDELT`` with ``PC``, or ``CD``), so a mirrored axis (negative
    ``CDELT``) and a rotation do not change it; ``smap.scale`` would give signed ``CDELT`` values.
    """
    try:
        wcs = smap.wcs
        units = [u.Unit(wcs.wcs.cunit[i]) for i in range(2)]
        if not all(unit.is_equivalent(u.deg) for unit in units):
            return None
        pixel = proj_plane_pixel_scales(wcs)[:2]
        sx, sy = (float(abs((s * unit).to_value(u.deg))) for s, unit in zip(pixel, units, strict=True))
    except Exception:  # no usable WCS
        return None
    return (sx, sy) if sx > 0 and sy > 0 and np.isfinite(sx + sy) else None


def pixel_scale_arcsec(smap: GenericMap) -> float | None:
    """
    A map's pixel scale in arcsec on the Sun: the mean of its two axes, whatever the signs of ``CDELT``.

    Read from the full pixel-to-world matrix (``CDELT`` with ``PC``, or ``CD``), so a mirrored or rotated map has the
    scale of the unmirrored one. Heliographic (CEA, CAR) degrees are converted to the arc they span on the Sun seen
    from the observer.

    Parameters
    ----------
    smap : `~sunpy.map.GenericMap`
        The map.

    Returns
    -------
    float or None
        Arcsec per pixel, or `None` where the map's axes are not angles or the conversion lacks the observer.

    Examples
    --------
    >>> import sunpy.map, sunpy.data.test
    >>> from sunpy_nn.header import pixel_scale_arcsec
    >>> round(pixel_scale_arcsec(sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))), 2)
    20.66
    """
    scales = _pixel_scales_deg(smap)
    if scales is None:
        return None
    scale = float(np.mean(scales))
    if isinstance(smap.coordinate_frame, Helioprojective):
        return scale * 3600
    try:  # heliographic degrees: arc length on the Sun seen from the observer
        return float(np.deg2rad(scale) * smap.rsun_obs.to_value(u.arcsec))
    except Exception:
        return None


def _disk_geometry(smap: GenericMap) -> tuple[tuple[float, float], float] | None:
    """Disk centre (0-based pixels) and radius (pixels) of a helioprojective map with square pixels, else None."""
    if not isinstance(smap.coordinate_frame, Helioprojective):
        return None
    scales = _pixel_scales_deg(smap)
    if scales is None:
        return None
    sx, sy = (3600 * s for s in scales)  # arcsec per pixel, whatever the sign of CDELT
    if not np.isclose(sx, sy, rtol=1e-4):
        return None
    try:
        centre = smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
        radius = smap.rsun_obs.to_value(u.arcsec) / sx
    except Exception:  # missing observer information: fall back to a constant quiet-Sun level
        return None
    if not (np.isfinite(centre).all() and np.isfinite(radius) and radius > 0):
        return None
    return (float(centre[0]), float(centre[1])), float(radius)


def _off_disk_zeros(smap: GenericMap, data: np.ndarray, kind: str | None) -> np.ndarray | None:
    """
    Pixels stored as exactly 0 where there are no data (some HMI products fill off-disk pixels with 0, not NaN).

    In a continuum image every exact 0 is such a pixel: the photosphere's intensity is never 0, not even in an
    umbra. In other data (a magnetogram, whose field can be 0) only zeros whose pixel centre lies off the solar
    disk according to the map's geometry count. Returns a boolean mask, or None when there are none.
    """
    zero = data == 0  # NaN compares False
    if not zero.any():
        return None
    if kind == "intensity":
        return zero
    geometry = _disk_geometry(smap)
    if geometry is None:
        return None
    (xc, yc), radius = geometry
    iy, ix = np.nonzero(zero)
    off = (ix - xc) ** 2 + (iy - yc) ** 2 > radius**2
    if not off.any():
        return None
    mask = np.zeros(data.shape, bool)
    mask[iy[off], ix[off]] = True
    return mask


# ------------------------------------------------------------------------------------------------------- kind
def _observed_wavelength(smap: GenericMap) -> u.Quantity | None:
    """
    The map's wavelength in nm, from ``smap.wavelength`` or a Quantity-valued ``smap.measurement``; None if unknown.

    sunpy gives both as a `~astropy.units.Quantity` for many instruments (171 Angstrom for AIA), which has no truth
    value; a wavelength without a length unit (HMI files without WAVEUNIT give a bare 6173) counts as unknown.
    """
    for value in (getattr(smap, "wavelength", None), getattr(smap, "measurement", None)):
        if isinstance(value, u.Quantity) and value.isscalar and value.unit.is_equivalent(u.nm, u.spectral()):
            wavelength = value.to(u.nm, u.spectral())
            if np.isfinite(wavelength.value) and wavelength.value > 0:
                return wavelength
    return None


def _is_photospheric(wavelength: u.Quantity) -> bool:
    return bool(PHOTOSPHERIC_WAVELENGTHS[0] <= wavelength <= PHOTOSPHERIC_WAVELENGTHS[1])


def _data_kind(smap: GenericMap) -> str | None:
    """
    ``"intensity"`` (a continuum image) or ``"blos"`` (a line-of-sight magnetogram) as the metadata say, else None.

    None also for a map observed outside `PHOTOSPHERIC_WAVELENGTHS`, which is neither. The measurement (HMI
    ``CONTENT``) is read first, then the unit: Gauss or Mx/cm^2 means a magnetogram, DN/s a continuum image.
    `sunpy_nn.enhance.detect_kind` is this with the errors that say what to do instead.
    """
    wavelength = _observed_wavelength(smap)
    if wavelength is not None and not _is_photospheric(wavelength):
        return None
    return _labelled_kind(smap)


def _labelled_kind(smap: GenericMap) -> str | None:
    """The kind that the measurement (HMI ``CONTENT``), then the unit, name; None if they do not. See `_data_kind`."""
    measurement = getattr(smap, "measurement", None)
    content = smap.meta.get("content", "")
    text = f"{measurement if isinstance(measurement, str) else ''} {content if isinstance(content, str) else ''}"
    text = text.lower()
    if "magnetogram" in text or "magnetic" in text or "blos" in text:
        return "blos"
    if "continuum" in text or "intensity" in text:
        return "intensity"
    unit = smap.unit
    if unit is not None:
        if unit.is_equivalent(u.G):
            return "blos"
        if "DN" in unit.to_string() or unit.is_equivalent(u.ct / u.s) or unit.is_equivalent(u.erg / u.s / u.cm**2):
            return "intensity"
    return None


# ------------------------------------------------------------------------------------------------- provenance
def append_history(meta, line: str) -> None:
    """
    Append a line to a header's HISTORY in place.

    An astropy `~astropy.io.fits.Header` (anything with ``add_history``) gets a HISTORY card; any other mapping (a
    sunpy `~sunpy.util.MetaDict`) a line of its ``history`` string, which sunpy keeps newline-joined.

    Parameters
    ----------
    meta : `~astropy.io.fits.Header` or mapping
        The header, changed in place.
    line : str
        The text.
    """
    if hasattr(meta, "add_history"):
        meta.add_history(line)
        return
    old = meta.get("history", "")
    old = old if isinstance(old, str) else "\n".join(str(h) for h in old)
    meta["history"] = (old + "\n" + line).strip("\n")


def provenance_lines(provenance: dict, width: int = 72) -> list[str]:
    """
    Readable lines for a provenance dict (software, model, SHA-256, settings), at most ``width`` characters each.

    Each value is one line ``sunpy_nn key: value``, nested dicts with dotted keys (``sunpy_nn model.file: ...``),
    and a list of dicts (a denoiser's fits) with numbered ones (``sunpy_nn fit.fits.0.epochs: 10``).
    A line that would be too long is split: ``sunpy_nn key:`` alone, then the value in pieces on the following
    lines, each indented by two spaces; joining the pieces without the indent gives the value back exactly. A piece
    ends before a space where the value has one (the space starts the next piece: FITS drops trailing blanks, not
    leading ones), so that words and numbers are not cut.

    Parameters
    ----------
    provenance : dict
        The record, as `provenance` makes it: values are strings, numbers, lists or nested dicts (an empty dict is
        one value, ``{}``). Floats are written with ``repr``, so they read back exactly.
    width : int
        Longest line, in characters: 72 (default) is what a FITS HISTORY card holds.

    Returns
    -------
    list of str
        The lines, in the order of the record's keys.

    Examples
    --------
    >>> from sunpy_nn.header import provenance_lines
    >>> provenance_lines({"method": "Enhance", "model": {"name": "enhance_intensity_v2", "sha256": "05f5"}})
    ['sunpy_nn method: Enhance', 'sunpy_nn model.name: enhance_intensity_v2', 'sunpy_nn model.sha256: 05f5']
    >>> provenance_lines({"note": "aaaa bbbb cccc dddd"}, width=16)  # the space starts the next piece
    ['sunpy_nn note:', '  aaaa bbbb cccc', '   dddd']
    """

    def text(value) -> str:
        if isinstance(value, list | tuple):
            return "[" + ", ".join(text(v) for v in value) + "]"
        if isinstance(value, float | np.floating):
            return repr(float(value))
        return str(value)

    def leaves(d: dict, prefix: str = ""):
        for key, value in d.items():
            if isinstance(value, dict) and value:
                yield from leaves(value, f"{prefix}{key}.")
            elif isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
                # records such as a denoiser's fits: one card per entry, not a Python repr
                yield from leaves({str(i): v for i, v in enumerate(value)}, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", text(value)

    def pieces(value: str, size: int):
        while len(value) > size:
            cut = value.rfind(" ", 1, size + 1)  # the space at `cut` starts the next piece
            while cut > 0 and value[cut - 1] == " ":  # a piece must not end in a blank either
                cut = value.rfind(" ", 1, cut)
            cut = cut if cut > 0 else size  # no space to break at: cut the word
            yield value[:cut]
            value = value[cut:]
        yield value

    lines: list[str] = []
    for key, value in leaves(provenance):
        line = f"sunpy_nn {key}: {value}"
        if len(line) <= width:
            lines.append(line)
            continue
        lines.append(f"sunpy_nn {key}:"[:width])
        lines += ["  " + piece for piece in pieces(value, width - 2)]
    return lines


def _model_entry(model_info) -> dict:
    """``{"name": ..., "sha256": ..., ...}`` from a `~sunpy_nn.data.ModelInfo` or a mapping that has both keys."""
    if isinstance(model_info, Mapping):
        missing = [k for k in ("name", "sha256") if k not in model_info]
        if missing:
            raise ValueError(f"model_info needs the keys 'name' and 'sha256'; {missing} missing from {model_info!r}")
        return {"name": model_info["name"], "sha256": model_info["sha256"]} | dict(model_info)
    if not (hasattr(model_info, "name") and hasattr(model_info, "sha256")):
        raise TypeError(f"model_info must be a ModelInfo or a mapping with 'name' and 'sha256', not {model_info!r}")
    return {"name": model_info.name, "sha256": model_info.sha256}


def store_provenance(meta, record: Mapping[str, Any], *, history: bool = False) -> None:
    """
    Put a provenance record (as `provenance` makes it) in a result's meta, in place.

    As the entry ``meta["sunpy_nn"]`` where the meta holds a dict; as readable HISTORY lines (`provenance_lines`,
    through `append_history`) with ``history=True``, in a meta that has ``add_history`` (an astropy
    `~astropy.io.fits.Header`), or in one that refuses a dict value.

    Parameters
    ----------
    meta : mapping or `~astropy.io.fits.Header`
        The meta of the result, changed in place.
    record : mapping
        The record: ``software``, ``method``, ``model`` when there is one, and the settings.
    history : bool
        Write HISTORY lines even where a dict would fit: for the metadata of a sunpy Map, which
        `~sunpy.map.GenericMap.save` writes as a FITS header (it refuses dict values).
    """
    if not history and not hasattr(meta, "add_history"):
        try:
            meta[PROVENANCE_KEY] = record
            return
        except (TypeError, ValueError):  # a header-like meta that holds only FITS values
            pass
    for line in provenance_lines(record):
        append_history(meta, line)


def provenance(
    meta,
    *,
    method: str,
    model_info=None,
    settings: Mapping[str, Any] | None = None,
    history: bool = False,
) -> None:
    """
    Record in a result's meta what made it: the one provenance convention of sunpy_nn.

    The record is a dict: ``software`` (``"sunpy_nn <version>"``), ``method``, ``model`` (``name`` and ``sha256``,
    plus whatever else ``model_info`` holds) when there is a model, then the ``settings``. It goes in the meta as
    `store_provenance` puts it: the entry ``meta["sunpy_nn"]`` (an NDCube's meta), or readable HISTORY lines
    ``sunpy_nn key: value`` (a FITS header; a sunpy Map's meta with ``history=True``). The meta is changed in place;
    nothing is returned.

    The record is the whole HISTORY of one processing step: its ``software`` and ``method`` lines are the summary,
    so a caller writes no summary line of its own, and HISTORY says each thing once. A Map-in, Map-out function
    calls it once, on the result's header, with ``history=True``; a result's machine-readable keywords (such as
    Enhance's ``SNN*``) are the caller's.

    Parameters
    ----------
    meta : mapping or `~astropy.io.fits.Header`
        The meta of the result (a copy of the input's), changed in place.
    method : str
        What was done, e.g. ``"PCA along wavelength"``.
    model_info : `~sunpy_nn.data.ModelInfo` or mapping, optional
        The network: a `~sunpy_nn.data.ModelInfo` (its name and SHA-256 are recorded) or a mapping with the keys
        ``name`` and ``sha256`` (`None` for a network without a file) and any others to record.
    settings : mapping, optional
        Everything else that made the result (kind, normalisation, iterations...), recorded after the model.
    history : bool
        Write HISTORY lines even where a dict would fit (see `store_provenance`).

    Raises
    ------
    ValueError
        A setting named ``software``, ``method`` or ``model``, or a ``model_info`` mapping without ``name`` or
        ``sha256``.
    TypeError
        A ``model_info`` that is neither a `~sunpy_nn.data.ModelInfo` nor a mapping.

    Examples
    --------
    >>> from sunpy_nn.header import provenance
    >>> meta = {}
    >>> provenance(meta, method="PCA along wavelength", settings={"pca_components": {"0,V": 2}})
    >>> sorted(meta["sunpy_nn"])
    ['method', 'pca_components', 'software']
    >>> from astropy.io import fits
    >>> header = fits.Header()
    >>> provenance(header, method="Noise2Noise", model_info={"name": "crisp.pt", "sha256": "0f3a"})
    >>> [str(h) for h in header["HISTORY"]][1:]
    ['sunpy_nn method: Noise2Noise', 'sunpy_nn model.name: crisp.pt', 'sunpy_nn model.sha256: 0f3a']
    """
    from sunpy_nn import __version__

    record: dict[str, Any] = {"software": f"sunpy_nn {__version__}", "method": method}
    if model_info is not None:
        record["model"] = _model_entry(model_info)
    for key, value in (settings or {}).items():
        if key in ("software", "method", "model"):
            raise ValueError(f"settings must not hold {key!r}: provenance records it itself")
        record[key] = value
    store_provenance(meta, record, history=history)
