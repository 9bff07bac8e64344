"""
The coordinates of a CRISPEX "LP" cube given as keywords to `~sunpy_nn.io.read_crisp` (wavelengths, times, pixel
scale, centre): checked, then tabulated as the WCS of the cube. Split from `sunpy_nn.io.lp` (at its size limit).
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.time import Time

from sunpy_nn.io.wcs import _SPECTRAL_PHYSICAL, _as_seconds, _tabulated_wcs_hdus


def _arcsec(value, name: str, *, per_pixel: bool = False) -> np.ndarray:
    """
    An angle in arcsec, from a Quantity in any angle unit or from plain numbers (arcsec, the documented convention).

    With ``per_pixel`` (a pixel scale), an angle per pixel (``arcsec/pix``, sunpy's unit of a pixel scale) is taken
    too. Any other unit is a `~astropy.units.UnitConversionError` (a `ValueError`) that names the parameter and the
    units it takes.
    """
    if per_pixel and isinstance(value, u.Quantity) and value.unit.is_equivalent(u.arcsec / u.pix):
        value = value * u.pix
    try:
        return u.Quantity(value, u.arcsec).to_value(u.arcsec)
    except u.UnitConversionError:
        takes = "an angle per pixel (e.g. 0.059 * u.arcsec / u.pix) or an angle" if per_pixel else "an angle"
        unit = value.unit.to_string() or "no unit"
        raise u.UnitConversionError(
            f"{name} must be {takes} (plain numbers are arcsec), not a Quantity in {unit}"
        ) from None


def _lp_wcs_hdus(
    shape5: tuple[int, ...],
    stokes_first: int,
    wavelengths,
    times,
    pixel_scale,
    center,
    date_ref,
) -> tuple[dict, fits.BinTableHDU]:
    """
    Tabulated WCS for an LP cube from wavelengths, times and a pixel scale given as keywords: a `ValueError` that
    names the keyword where one is missing, not finite, of the wrong shape or unit, or wavelengths that repeat or
    are out of order (one tuning, one wavelength), and for frames under 2 x 2 px.
    """
    nt, _, nw, ny, nx = shape5
    missing = [
        n for n, v in (("wavelengths", wavelengths), ("times", times), ("pixel_scale", pixel_scale)) if v is None
    ]
    if missing:
        raise ValueError(
            f"An LP cube stores no coordinates: pass {', '.join(f'{m}=' for m in missing)} to read_crisp "
            "(wavelengths: Quantity of length n_wavelengths; times: astropy Time, or seconds with date_ref=, of "
            "length n_scans or shape (n_scans, n_wavelengths); pixel_scale: arcsec per pixel), or keep the "
            "companion '<cube>.wcs.fits' that write_crisp/write_lp writes beside the cube."
        )
    if not isinstance(wavelengths, u.Quantity) or wavelengths.unit.physical_type not in _SPECTRAL_PHYSICAL:
        raise ValueError(
            f"wavelengths must be a Quantity with a spectral unit, e.g. [630.15, 630.25] * u.nm, not {wavelengths!r} "
            "(plain numbers could be nm or Angstrom)"
        )
    if nx < 2 or ny < 2:  # a tabulated WCS of one pixel crashed astropy (a double free) on reading
        raise ValueError(f"The LP cube's frames are {nx} x {ny} px: a cube needs at least 2 x 2 px for its WCS")
    wave = wavelengths.to_value(u.nm, equivalencies=u.spectral()).astype(float)
    if wave.shape != (nw,):
        raise ValueError(f"wavelengths has shape {wave.shape}, but the cube has {nw} wavelengths")
    steps = np.diff(wave)
    if not np.isfinite(wave).all() or not (np.all(steps > 0) or np.all(steps < 0)):
        # the tabulated spectral axis must map one tuning to one wavelength (world -> pixel inverts it)
        raise ValueError(
            f"wavelengths must be finite and distinct, in the cube's order of tunings, increasing or decreasing; "
            f"got {wavelengths!r}"
        )
    if isinstance(times, u.Quantity) and not times.unit.is_equivalent(u.s):
        raise u.UnitConversionError(
            f"times must be an astropy Time, or times since date_ref= as a Quantity of time (e.g. [0, 20] * u.s) or "
            f"plain seconds, not a Quantity in {times.unit.to_string() or 'no unit'}"
        )
    time_s, ref = _as_seconds(times, None if date_ref is None else Time(date_ref), "times")
    if time_s.shape == (nt,):
        time_s = np.repeat(time_s[:, None], nw, axis=1)
    if time_s.shape != (nt, nw):
        raise ValueError(f"times has shape {time_s.shape}; the cube needs ({nt},) or ({nt}, {nw}) (scan, wavelength)")
    if not np.isfinite(time_s).all():
        raise ValueError("times must be finite (a NaN or masked time has no place on the time axis)")
    scale = _arcsec(pixel_scale, "pixel_scale", per_pixel=True)
    if np.shape(scale) != () or not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"pixel_scale must be one positive, finite angle per pixel, not {pixel_scale!r}")
    center_arcsec = (0.0, 0.0) if center is None else _arcsec(center, "center")
    if np.shape(center_arcsec) != (2,) or not np.isfinite(center_arcsec).all():
        raise ValueError(f"center must be the finite (x, y) of the frame's centre, not {center!r}")
    cx, cy = center_arcsec
    xs = cx + scale * (np.array([0, nx - 1]) - (nx - 1) / 2)
    ys = cy + scale * (np.array([0, ny - 1]) - (ny - 1) / 2)
    lon = np.broadcast_to(xs[None, :], (nt, nw, 2, 2)).copy()
    lat = np.broadcast_to(ys[:, None], (nt, nw, 2, 2)).copy()
    return _tabulated_wcs_hdus(nx, ny, lon, lat, np.broadcast_to(wave, (nt, nw)), time_s, ref, stokes_first)
