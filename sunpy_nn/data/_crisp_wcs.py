"""The FITS WCS of the synthetic SST/CRISP cubes of `sunpy_nn.data.synthetic.synthetic_crisp_cube`."""

from __future__ import annotations

import math

CRISP_SCALE = 0.059  # arcsec/pix of SST/CRISP
FE_6302 = 6302.4932  # Angstrom, Fe I 630.25 nm (Lande g = 2.5)


def _crisp_wcs(n_wave: int, step: float, center: tuple[float, float], date: str, cadence: float):
    """5-D FITS WCS for numpy axes (time, stokes, wavelength, y, x): FITS axes are the reverse."""
    from astropy.time import Time
    from astropy.wcs import WCS

    w = WCS(naxis=5)
    w.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "WAVE", "STOKES", "UTC"]
    w.wcs.cunit = ["arcsec", "arcsec", "Angstrom", "", "s"]
    w.wcs.cdelt = [CRISP_SCALE, CRISP_SCALE, step, 1, cadence]
    w.wcs.crval = [center[0], center[1], FE_6302 - step * (n_wave - 1) / 2, 1, 0]
    w.wcs.crpix = [1, 1, 1, 1, 1]
    w.wcs.dateobs = w.wcs.dateref = date
    mjd = Time(date, scale="utc").mjd
    w.wcs.mjdref = [math.floor(mjd), mjd - math.floor(mjd)]  # the time axis counts seconds from ``date``
    w.wcs.mjdobs = mjd
    w.wcs.timesys = "UTC"
    w.wcs.specsys = "TOPOCENT"
    # An Earth observer, so that the spatial axes become helioprojective coordinates with an observer.
    w.wcs.aux.hgln_obs = 0.0
    w.wcs.aux.hglt_obs = -5.0
    w.wcs.aux.dsun_obs = 1.5e11
    w.wcs.set()
    return w
