"""
The maps of a validation on real HMI data: cut-outs that were saved without a WCS, SHARP files, and where a cut-out
lies in a larger image.

A sibling of `sunpy_nn.validation` (numpy measurements): these build and read `sunpy.map` maps, so that a
validation can run the user path (`sunpy_nn.enhance_map`) on data that did not come as maps.
`hmi_cutout_map` gives a WCS-less HMI cut-out a helioprojective WCS at HMI's pixel scale, `read_sharp` reads a
SHARP CEA file, `disk_geometry` says where a map's disk centre and limb are in its pixels, and `locate_cutout`
finds the window of an image most like a cut-out (normalised cross-correlation). Nothing here imports a network.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits

from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC

if TYPE_CHECKING:
    from sunpy.map import GenericMap

__all__ = ["disk_geometry", "hmi_cutout_map", "locate_cutout", "read_sharp"]

#: Observer date of the WCS that `hmi_cutout_map` builds (it sets the solar radius seen from Earth).
OBSTIME = "2014-01-01T00:00:00"


def hmi_cutout_map(
    data: np.ndarray, unit: u.UnitBase, reference_pixel: tuple[float, float] | None = None, obstime: str = OBSTIME
) -> GenericMap:
    """
    A sunpy map of an HMI cut-out that has no WCS: 0.504"/px, seen from Earth, centred on the disk centre.

    Parameters
    ----------
    data : numpy.ndarray
        The 2-D cut-out.
    unit : astropy.units.UnitBase
        Its unit (``u.G``, ``u.Unit("DN/s")``, ``u.dimensionless_unscaled`` for I/Ic).
    reference_pixel : (float, float), optional
        0-based ``(x, y)`` pixel of the disk centre; by default the array's centre.
    obstime : str
        Observation date of the observer at Earth.

    Returns
    -------
    sunpy.map.GenericMap
        The map (an ``HMIMap``), with `sunpy_nn.psf.HMI_PIXEL_SCALE_ARCSEC` per pixel and the 617.3 nm wavelength.
    """
    import sunpy.map
    from sunpy.coordinates import frames

    centre = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime=obstime, observer="earth", frame=frames.Helioprojective)
    header = sunpy.map.make_fitswcs_header(
        data,
        centre,
        reference_pixel=None if reference_pixel is None else u.Quantity(reference_pixel, u.pix),
        scale=[HMI_PIXEL_SCALE_ARCSEC, HMI_PIXEL_SCALE_ARCSEC] * u.arcsec / u.pix,
        instrument="HMI",
        observatory="SDO",
        wavelength=6173 * u.AA,
        unit=unit,
    )
    return sunpy.map.Map(data, header)


def read_sharp(path: str | Path) -> GenericMap:
    """
    A SHARP file (``hmi.sharp_cea_720s`` segment) as a sunpy map, in float64.

    Parameters
    ----------
    path : str or path
        The FITS file: its image is in HDU 1 (RICE-compressed).

    Returns
    -------
    sunpy.map.GenericMap
        The map, with the file's CEA WCS.

    Raises
    ------
    OSError
        The file cannot be read as FITS.

    Notes
    -----
    One header card of the JSOC files is not FITS-compliant; astropy's ``silentfix`` repairs it before the map reads
    the header.
    """
    import sunpy.map

    with fits.open(path) as hdul:
        hdul.verify("silentfix")
        data, header = hdul[1].data.astype(np.float64), hdul[1].header
    return sunpy.map.Map(data, header)


def disk_geometry(smap: GenericMap) -> tuple[float, tuple[float, float], float]:
    """
    Pixel scale, disk centre and solar radius of a helioprojective map, in its pixels.

    Parameters
    ----------
    smap : sunpy.map.GenericMap
        A helioprojective map with square pixels and an observer.

    Returns
    -------
    scale : float
        Arcsec per pixel (of the first axis).
    centre : (float, float)
        0-based ``(x, y)`` pixel of the disk centre (outside the array for a cut-out off the centre).
    radius : float
        The solar radius seen by the observer, in pixels.
    """
    scale = smap.scale[0].to_value(u.arcsec / u.pix)
    xc, yc = (
        float(c) for c in smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    )
    return scale, (xc, yc), smap.rsun_obs.to_value(u.arcsec) / scale


def locate_cutout(small: np.ndarray, big: np.ndarray) -> dict:
    """
    Where a cut-out lies in a larger image: the window of ``big`` most like ``small``.

    Parameters
    ----------
    small, big : numpy.ndarray
        2-D images; ``small`` fits inside ``big`` and is not constant.

    Returns
    -------
    dict
        ``offset_yx_px``: the ``[row, column]`` of the best window's first pixel, and
        ``normalised_cross_correlation`` there (1 for an exact copy up to a linear change of scale).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.validation_maps import locate_cutout
    >>> big = np.random.default_rng(0).normal(size=(40, 50))
    >>> m = locate_cutout(2 * big[5:20, 7:30] + 1, big)
    >>> m["offset_yx_px"], round(m["normalised_cross_correlation"], 6)
    ([5, 7], 1.0)
    """
    from scipy.signal import fftconvolve

    a = (small - small.mean()) / small.std()
    ones = np.ones_like(a)
    s1 = fftconvolve(big, ones, mode="valid")
    s2 = fftconvolve(big**2, ones, mode="valid")
    std = np.sqrt(np.maximum(s2 / a.size - (s1 / a.size) ** 2, 1e-30))
    ncc = fftconvolve(big, a[::-1, ::-1], mode="valid") / (a.size * std)
    iy, ix = np.unravel_index(np.argmax(ncc), ncc.shape)
    return {"offset_yx_px": [int(iy), int(ix)], "normalised_cross_correlation": float(ncc[iy, ix])}
