"""
How a map is scaled into the network's units and back: `Normalisation` and `normalise`.

Private to `sunpy_nn.enhance`, which re-exports the public names (`Normalisation`, `normalise`,
`LIMB_DARKENING_600NM`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.stats import sigma_clipped_stats
from sunpy.map import GenericMap

from sunpy_nn.header import _disk_geometry

log = logging.getLogger(__name__)

#: Quadratic limb-darkening law near 600 nm, I(mu)/I(1) = 1 - u2 (1 - mu) - v2 (1 - mu)^2 (Allen's
#: Astrophysical Quantities, 4th ed., Table 14.17): the shape used when a map covers too small a range of mu
#: to fit one.
LIMB_DARKENING_600NM = (0.88, -0.23)


# -------------------------------------------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class Normalisation:
    """
    How a map was scaled into the network's units, and back.

    ``normalised = data / (scale * profile)``, where ``profile`` is 1 except for limb-darkening normalisation,
    in which case ``profile(x, y)`` is evaluated at (0-based) input pixel coordinates. Made by `normalise`; each
    parameter is kept as the attribute of the same name (the object is immutable).

    Parameters
    ----------
    kind : {"intensity", "blos"}
        Data kind.
    method : {"quiet_sun", "limb_darkening", "limb_darkening_fixed_shape", "kG", "none"}
        How the divisor was found (see `normalise`).
    scale : float
        Constant divisor, in the map's unit: the quiet-Sun or disk-centre intensity, or 1 kG in the map's unit
        (1000 for Gauss).
    coeffs : tuple of float, optional
        ``(u2, v2)`` of the quadratic limb-darkening law ``I(mu) / I(1) = 1 - u2 (1 - mu) - v2 (1 - mu)^2``
        (dimensionless), or `None` without limb darkening.
    centre : tuple of float, optional
        Disk centre ``(x, y)`` in 0-based input pixels (with ``coeffs``).
    radius : float, optional
        Solar radius in input pixels (with ``coeffs``).

    Examples
    --------
    >>> from sunpy_nn.enhance import Normalisation
    >>> norm = Normalisation("intensity", "limb_darkening", 5.2e4, (0.88, -0.23), (100.0, 100.0), 90.0)
    >>> norm.describe()
    'limb_darkening: divided by 52000 * (1 - 0.8800(1-mu) + 0.2300(1-mu)^2)'
    >>> float(norm.profile(100.0, 100.0))  # 1 at disk centre
    1.0
    """

    kind: str
    method: str
    scale: float
    coeffs: tuple[float, float] | None = None
    centre: tuple[float, float] | None = None
    radius: float | None = None

    def profile(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
        """
        Limb-darkening factor I(mu)/I(1) at input pixel coordinates (1 where there is none).

        Off the disk and within ``sqrt(0.01)`` of the limb, ``mu`` is held at 0.1, so that the factor stays positive
        and the normalisation invertible there.

        Parameters
        ----------
        x, y : `numpy.ndarray` or float
            0-based input pixel coordinates (column, row), broadcastable against each other (e.g. shapes
            ``(1, nx)`` and ``(ny, 1)``).

        Returns
        -------
        `numpy.ndarray` or float
            The dimensionless factor ``1 - u2 (1 - mu) - v2 (1 - mu)^2``, broadcast to the shape of ``x`` and ``y``;
            the float 1.0 without limb darkening (``coeffs`` `None`).
        """
        if self.coeffs is None:
            return 1.0
        rho2 = ((x - self.centre[0]) ** 2 + (y - self.centre[1]) ** 2) / self.radius**2
        # Clamp just inside the limb: off-disk pixels (NaN in HMI) must still map invertibly.
        one_minus_mu = 1.0 - np.sqrt(np.clip(1.0 - rho2, 0.01, 1.0))
        u2, v2 = self.coeffs
        return 1.0 - u2 * one_minus_mu - v2 * one_minus_mu**2

    def describe(self) -> str:
        """
        One line for HISTORY and logs.

        Returns
        -------
        str
            The method and the divisor, e.g. ``"quiet_sun: divided by 52100"``, with the limb-darkening law
            written out where there is one.
        """
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


#: The choices of ``normalisation`` (`normalise`).
NORMALISATIONS = ("auto", "quiet_sun", "limb_darkening", "none")
#: The range of the median of a continuum image that ``normalisation="none"`` takes as I/Ic: the quiet Sun is 1, an
#: umbra at 617.3 nm about 0.1-0.3; data in DN/s (about 5e4 for HMI) or in percent are far outside.
RELATIVE_MEDIAN = (0.02, 5.0)


def _check_relative(data: np.ndarray) -> None:
    """``normalisation="none"``: the data must be I/Ic already, or the network sees intensities it never saw."""
    median = float(np.nanmedian(data[:: max(1, data.shape[0] // 512), :: max(1, data.shape[1] // 512)]))
    low, high = RELATIVE_MEDIAN
    if not low <= median <= high:
        raise ValueError(
            f"normalisation='none' takes the continuum image as I/Ic already, but its median is {median:.4g} (I/Ic "
            f"is about 1 on the quiet Sun; {low:g}-{high:g} accepted): use normalisation='auto' or 'quiet_sun' to "
            "bring it to I/Ic, or divide it by its quiet-Sun level first"
        )


def check_normalisation(method) -> None:
    """A `ValueError` naming ``method`` unless it is one of `NORMALISATIONS`: for magnetograms too, so that a typo
    does not pass until the first continuum image (`enhance_map` checks it before any map is read)."""
    if method not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, not {method!r} (for magnetograms too)")


def normalise(smap: GenericMap, data: np.ndarray, kind: str, method: str = "auto") -> Normalisation:
    """
    Work out the normalisation that brings a map into the network's units.

    The continuum levels are robust: sigma clipping (3 sigma) drops umbrae, penumbrae and faculae, so that what
    remains is the quiet Sun's granulation.

    Parameters
    ----------
    smap : `~sunpy.map.GenericMap`
        The map (for its unit and coordinates).
    data : `numpy.ndarray`
        Its data ``(ny, nx)`` (the shape of ``smap.data``) as float, in the map's unit, NaN where missing.
    kind : {"intensity", "blos"}
        Data kind.
    method : {"auto", "quiet_sun", "limb_darkening", "none"}
        For continuum images: ``"quiet_sun"`` divides by one robust quiet-Sun level; ``"limb_darkening"`` divides
        by a quadratic limb-darkening law fitted to the quiet Sun (all three coefficients when the map spans
        mu from below 0.5 to above 0.9, as a full disk does; otherwise only the level, with the law's shape
        fixed to `LIMB_DARKENING_600NM`). ``"auto"`` uses limb darkening where the map has helioprojective
        coordinates and observer information, and a quiet-Sun level otherwise. ``"none"`` leaves the data as
        they are (already I/Ic: a median outside `RELATIVE_MEDIAN` is refused). Magnetograms are always converted to
        kG.

    Returns
    -------
    `Normalisation`
        The divisor and, for limb darkening, the law, its disk centre and radius: ``data / (norm.scale *
        norm.profile(x, y))`` is in the network's units (I/Ic for continuum images, kG for magnetograms). The data
        are not changed.

    Raises
    ------
    ValueError
        A magnetogram whose unit is not a magnetic field (Gauss, Mx/cm^2, kG...) or a continuum image in one, or in
        a temperature or velocity unit; an unknown ``method``; ``"none"`` for a continuum image whose median is not
        that of I/Ic (`RELATIVE_MEDIAN`); ``"limb_darkening"`` for a map without
        helioprojective coordinates, square pixels or observer information; fewer than 16 valid on-disk pixels; a
        quiet-Sun or disk-centre level that is not positive.

    References
    ----------
    - Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
      doi:10.1051/0004-6361/201731344: the network's units, continuum images divided by the average intensity of
      the quiet Sun (I/Ic) and magnetograms in kG.
    - Cox, A. N. (ed.) 2000, "Allen's Astrophysical Quantities", 4th ed. (New York: AIP Press, Springer): the
      quadratic limb-darkening law and the fixed shape `LIMB_DARKENING_600NM`.

    Examples
    --------
    >>> import numpy as np, sunpy.map, sunpy.data.test
    >>> from sunpy_nn.enhance import normalise
    >>> hmi = sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))
    >>> norm = normalise(hmi, np.array(hmi.data, float), "intensity", "quiet_sun")
    >>> norm.method, norm.scale > 0
    ('quiet_sun', True)
    """
    check_normalisation(method)
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
    for other, what in ((u.K, "a temperature (brightness temperature?)"), (u.m / u.s, "a velocity (Dopplergram?)")):
        if smap.unit is not None and smap.unit.is_equivalent(other, equivalencies=u.temperature()):  # K, deg_C
            # a brightness temperature is not proportional to intensity (Planck): a 4000 K umbra would reach the
            # network at 0.67 of a 6000 K quiet Sun instead of its 0.14 I/Ic at 617.3 nm
            raise ValueError(
                f"kind='intensity' but the map is in {smap.unit}, {what}, not an intensity: convert it to an "
                "intensity first (for a brightness temperature, through the Planck function at the map's "
                "wavelength), or set smap.meta['bunit'] if the data are intensities in another unit"
            )
    if method == "none":
        _check_relative(data)
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
