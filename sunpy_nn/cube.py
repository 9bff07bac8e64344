"""
The axes of spectropolarimetric cubes: `CubeAxes`, `find_axes`, `stokes_labels` and the one Stokes table.

Also the copy of a cube's extra and global coordinates onto a new cube, shared by the denoiser and the PCA baseline.

One concept, one room: which array axis of an `~ndcube.NDCube` is time, Stokes, wavelength, y and x, and which Stokes
parameter each plane holds, is needed by the denoiser (`sunpy_nn.denoise`) and by the CRISP reader and writers
(`sunpy_nn.io.crisp`) alike. It lives here, below both, so that neither imports the other for it.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
from astropy.nddata import StdDevUncertainty
from ndcube import NDCube

log = logging.getLogger(__name__)

__all__ = ["STOKES_CODES", "STOKES_SYMBOLS", "CubeAxes", "find_axes", "stokes_labels"]

#: FITS Stokes codes (``CTYPE = 'STOKES'`` world values) and their symbols: the one table of this package.
STOKES_SYMBOLS = {1: "I", 2: "Q", 3: "U", 4: "V"}
#: Symbol to FITS Stokes code, the inverse of `STOKES_SYMBOLS`.
STOKES_CODES = {symbol: code for code, symbol in STOKES_SYMBOLS.items()}
# WCS physical types of a spectral axis.
_SPECTRAL_TYPES = ("em.wl", "em.freq", "em.wavenumber", "em.energy")


@dataclass(frozen=True)
class CubeAxes:
    """
    Array axes of a spectropolarimetric cube, found from its WCS physical types (`None` where absent).

    `to_canonical` views the data as ``(time, stokes, wavelength, y, x)`` with length-1 axes for the missing ones;
    `from_canonical` goes back. Usually made by `find_axes`; each parameter is kept as the attribute of the same
    name (the object is immutable).

    Parameters
    ----------
    time : int or None
        Array axis of time (`None`: the cube has one scan).
    stokes : int or None
        Array axis of the Stokes parameters (`None`: one, unnamed, plane).
    wavelength : int or None
        Array axis of wavelength (`None`: one wavelength).
    y, x : int
        Array axes of the two spatial dimensions, in the cube's order.
    ndim : int
        Number of array axes of the cube.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.cube import CubeAxes
    >>> axes = CubeAxes(time=None, stokes=0, wavelength=1, y=2, x=3, ndim=4)
    >>> data = np.zeros((4, 7, 32, 30))
    >>> axes.to_canonical(data).shape
    (1, 4, 7, 32, 30)
    >>> axes.from_canonical(axes.to_canonical(data)).shape
    (4, 7, 32, 30)
    """

    time: int | None
    stokes: int | None
    wavelength: int | None
    y: int
    x: int
    ndim: int

    @property
    def _order(self) -> list[int | None]:
        return [self.time, self.stokes, self.wavelength, self.y, self.x]

    def to_canonical(self, data: np.ndarray) -> np.ndarray:
        """
        View cube-ordered data as ``(time, stokes, wavelength, y, x)``.

        Parameters
        ----------
        data : `numpy.ndarray`
            Data in the cube's axis order, ``ndim`` axes.

        Returns
        -------
        `numpy.ndarray`
            A 5-D view (no copy) ``(time, stokes, wavelength, y, x)``, with length-1 axes for those the cube lacks.
        """
        present = [a for a in self._order if a is not None]
        arr = np.transpose(data, [int(a) for a in present])
        for pos, a in enumerate(self._order):
            if a is None:
                arr = np.expand_dims(arr, pos)
        return arr

    def from_canonical(self, arr: np.ndarray) -> np.ndarray:
        """
        Inverse of `to_canonical`: put ``(time, stokes, wavelength, y, x)`` data back in the cube's axis order.

        Parameters
        ----------
        arr : `numpy.ndarray`
            5-D data ``(time, stokes, wavelength, y, x)``; the axes the cube lacks must have length 1.

        Returns
        -------
        `numpy.ndarray`
            A view of ``arr`` with the cube's ``ndim`` axes in the cube's order.
        """
        missing = tuple(pos for pos, a in enumerate(self._order) if a is None)
        arr = np.squeeze(arr, axis=missing) if missing else arr
        present = [a for a in self._order if a is not None]
        return np.transpose(arr, [int(i) for i in np.argsort(present)])


def find_axes(cube: NDCube) -> CubeAxes:
    """
    Find the time, Stokes, wavelength and two spatial array axes of an NDCube from its WCS physical types.

    Any order works, and the wavelength, Stokes and time axes may be absent.

    Parameters
    ----------
    cube : `ndcube.NDCube`
        A cube whose WCS gives each array axis a physical type: two spatial (``pos.*``) axes, and optionally a
        spectral (``em.wl``, ``em.freq``, ...), a Stokes (``phys.polarization.stokes``) and a ``time`` axis.

    Returns
    -------
    `CubeAxes`
        The array axis of each dimension (`None` for those absent).

    Raises
    ------
    ValueError
        The cube does not have exactly two spatial axes, has an axis of another kind, or two axes of one kind
        (Stokes, spectral or time); the message lists the physical types found.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from ndcube import NDCube
    >>> from sunpy_nn.denoise import find_axes
    >>> wcs = WCS(naxis=4)
    >>> wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "WAVE", "STOKES"]
    >>> wcs.wcs.cunit = ["arcsec", "arcsec", "nm", ""]
    >>> find_axes(NDCube(np.zeros((4, 7, 32, 32)), wcs=wcs))
    CubeAxes(time=None, stokes=0, wavelength=1, y=2, x=3, ndim=4)
    """
    # An axis without a physical type (CTYPE '') is None in ndcube's tuples: read it as no type, not a crash.
    types = [tuple(p for p in t if p) for t in cube.array_axis_physical_types]
    found: dict[str, list[int]] = {"stokes": [], "wavelength": [], "time": []}
    spatial, unknown = [], []
    for i, t in enumerate(types):
        joined = " ".join(t)
        if "phys.polarization.stokes" in t:
            found["stokes"].append(i)
        elif any(s in joined for s in _SPECTRAL_TYPES):
            found["wavelength"].append(i)
        elif any(p.startswith("pos.") or ":pos." in p for p in t) and not any(s in t for s in ("time",)):
            spatial.append(i)
        elif "time" in t:
            found["time"].append(i)
        else:
            unknown.append(i)
    twice = [kind for kind, where in found.items() if len(where) > 1]
    if twice:  # e.g. an extra coordinate of a spectral type on the time axis: one axis would be lost
        raise ValueError(
            f"Cannot find the axes of this cube: more than one array axis reads as {' and '.join(twice)} (an extra "
            f"coordinate of that type on another axis?). Its array axes have the physical types {list(types)}."
        )
    found = {kind: where[0] if where else None for kind, where in found.items()}
    if len(spatial) != 2 or unknown:
        raise ValueError(
            "Cannot find the axes of this cube: it needs two spatial (pos.*) axes plus optional em.wl, "
            f"phys.polarization.stokes and time axes. Its array axes have the physical types {list(types)}."
        )
    return CubeAxes(found.get("time"), found.get("stokes"), found.get("wavelength"), spatial[0], spatial[1], len(types))


def stokes_labels(cube: NDCube, axes: CubeAxes) -> list[str]:
    """
    The Stokes parameter of each plane along the cube's Stokes axis: ``"I"``, ``"Q"``, ``"U"``, ``"V"``.

    Read from the WCS values along the Stokes axis (FITS codes 1-4, `STOKES_SYMBOLS`); a non-standard WCS falls
    back to the FITS order I, Q, U, V.

    Parameters
    ----------
    cube : `ndcube.NDCube`
        The cube.
    axes : `CubeAxes`
        Its axes, from `find_axes`.

    Returns
    -------
    list of str
        One symbol per plane along the Stokes axis, in array order (a WCS value outside 1-4 is given as its number,
        as a string). Without a Stokes axis: the one the cube was sliced to, when its WCS kept it (``cube[:, 3]``
        of a CRISP cube gives ``["V"]``), else ``["?"]``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from ndcube import NDCube
    >>> from sunpy_nn.cube import find_axes, stokes_labels
    >>> wcs = WCS(naxis=3)
    >>> wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "STOKES"]
    >>> wcs.wcs.cunit = ["arcsec", "arcsec", ""]
    >>> wcs.wcs.crpix, wcs.wcs.crval = [1, 1, 1], [0, 0, 2]  # Q first
    >>> cube = NDCube(np.zeros((3, 16, 16)), wcs=wcs)
    >>> stokes_labels(cube, find_axes(cube))
    ['Q', 'U', 'V']
    """
    if axes.stokes is None:  # a cube sliced to one Stokes parameter (cube[:, 3]) keeps its value as a dropped axis
        dropped = getattr(cube.wcs.low_level_wcs, "dropped_world_dimensions", None) or {}
        for ptype, value in zip(dropped.get("world_axis_physical_types", ()), dropped.get("value", ()), strict=False):
            if ptype == "phys.polarization.stokes":
                return [STOKES_SYMBOLS.get(round(float(value)), str(value))]
        return ["?"]
    n = cube.data.shape[axes.stokes]
    try:  # world values along the Stokes axis only, through the low-level WCS (cheap, no time conversions)
        llw = cube.wcs.low_level_wcs
        pix = [np.zeros(n) for _ in range(llw.pixel_n_dim)]
        pix[llw.pixel_n_dim - 1 - axes.stokes] = np.arange(n, dtype=float)
        world = llw.pixel_to_world_values(*pix)
        world = [world] if llw.world_n_dim == 1 else world
        values = world[list(llw.world_axis_physical_types).index("phys.polarization.stokes")]
        return [STOKES_SYMBOLS.get(round(float(v)), str(v)) for v in np.atleast_1d(values)]
    except (ValueError, IndexError):  # non-standard WCS: fall back to the FITS convention 1..4 = I, Q, U, V
        return [STOKES_SYMBOLS.get(i + 1, str(i + 1)) for i in range(n)]


def _copy_coords(cube: NDCube, out: NDCube) -> NDCube:
    """Give ``out`` copies of ``cube``'s extra and global coordinates, bound to ``out`` (nothing shared)."""
    memo = {id(cube): out}
    if getattr(cube, "_extra_coords", None) is not None and len(cube.extra_coords.keys()):
        out._extra_coords = copy.deepcopy(cube._extra_coords, memo)
    if getattr(cube, "_global_coords", None) is not None:
        out._global_coords = copy.deepcopy(cube._global_coords, memo)
    return out


def _stddev(cube: NDCube, axes: CubeAxes):
    """The cube's own uncertainty as a standard deviation in the data's unit (canonical order), or None."""
    unc = cube.uncertainty
    if unc is None:
        return None
    try:
        std = unc if isinstance(unc, StdDevUncertainty) else unc.represent_as(StdDevUncertainty)
    except Exception as exc:  # e.g. an UnknownUncertainty: nothing to convert
        log.info("the cube's %s cannot be a standard deviation (%s); not kept", type(unc).__name__, exc)
        return None
    array = std.array
    if std.unit is not None and cube.unit is not None and std.unit != cube.unit:
        array = (array * std.unit).to_value(cube.unit)
    return axes.to_canonical(array)
