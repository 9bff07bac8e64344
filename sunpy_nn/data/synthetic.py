"""
Synthetic solar data, for training Enhance on magnetograms, for tests, examples and ``sunpy-nn demo``.

Nothing here needs a download, so the gallery and the demo run offline and from an sdist.

* `granulation`: a periodic, granulation-like continuum scene at high resolution (bright, unequal granules with
  curved dark intergranular lanes, 16 % rms contrast like the MURaM snapshot the shipped continuum weights were
  trained on).
* `synthetic_blos`: a high-resolution line-of-sight magnetogram built on a granulation image. There is no
  public high-resolution magnetogram simulation small enough to ship, so it is made from physically motivated
  ingredients: kG flux concentrations in intergranular lanes (mixed-polarity network and unipolar plage), an
  optional sunspot with a filamentary penumbra, and a weak, mixed-polarity internetwork field.
* `synthetic_hmi_map`: an SDO/HMI-like `~sunpy.map.GenericMap` (continuum or magnetogram, 0.504 arcsec/pix, HMI
  header) made by degrading such a scene with HMI's PSF, with the diffraction-limited truth of a 28 cm
  telescope at 0.252 arcsec/pix that Enhance aims for.
* `synthetic_crisp_cube`: an SST/CRISP-like spectropolarimetric time series as an `~ndcube.NDCube` (time,
  Stokes, wavelength and helioprojective axes in its WCS), with its noise-free truth.
"""

from __future__ import annotations

import math
import warnings

import astropy.units as u
import numpy as np
from scipy import ndimage

from sunpy_nn.data._crisp_wcs import CRISP_SCALE, FE_6302, _crisp_wcs  # noqa: F401 (FE_6302: public before)
from sunpy_nn.noise import _unit_noise
from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC

__all__ = ["granulation", "random_field", "synthetic_blos", "synthetic_crisp_cube", "synthetic_hmi_map"]

#: SDO/HMI pixel scale (arcsec/pix) and the default high-resolution scale of the synthetic scenes: an eighth of it,
#: so that degrading to HMI and to the x2 target bins whole pixels.
HMI_SCALE = HMI_PIXEL_SCALE_ARCSEC
SCENE_SCALE = HMI_SCALE / 8


def random_field(shape, pixel_scale: float, correlation_arcsec: float, rng: np.random.Generator) -> np.ndarray:
    """
    A periodic Gaussian random field with unit rms and a Gaussian correlation length (arcsec).

    Parameters
    ----------
    shape : tuple of int
        Field shape ``(ny, nx)`` in pixels.
    pixel_scale : float
        Pixel scale in arcsec per pixel.
    correlation_arcsec : float
        Standard deviation in arcsec of the Gaussian that smooths white noise (in Fourier space) into the field.
    rng : `numpy.random.Generator`
        Source of the white noise (it is advanced).

    Returns
    -------
    `numpy.ndarray`
        Float64 field of shape ``shape``, zero mean and unit rms (dimensionless), periodic in both directions.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.data.synthetic import random_field
    >>> f = random_field((64, 64), 0.1, 0.5, np.random.default_rng(0))
    >>> f.shape, round(float(f.std()), 6)
    ((64, 64), 1.0)
    """
    ny, nx = shape
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    sigma = correlation_arcsec / pixel_scale
    amp = np.exp(-2 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
    f = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * amp, s=shape)
    return f / f.std()


def _sunspot(shape, pixel_scale: float, rng: np.random.Generator) -> np.ndarray:
    """
    Line-of-sight field of a sunspot seen at disk centre, in kG.

    The umbra has a near-vertical 2.4-3.4 kG field; through the penumbra the field weakens to ~1 kG and
    inclines to 70-80 degrees, with spines (more vertical, stronger) and intraspines (more horizontal) that
    alternate azimuthally every ~0.5-1 arcsec and wiggle with radius.
    """
    ny, nx = shape
    r_umbra = rng.uniform(3.0, 6.0) / pixel_scale
    r_pen = r_umbra * rng.uniform(2.0, 2.6)
    cy, cx = rng.uniform(0.3, 0.7) * ny, rng.uniform(0.3, 0.7) * nx
    y, x = np.indices(shape)
    r = np.hypot(y - cy, x - cx)
    theta = np.arctan2(y - cy, x - cx)
    # Slightly irregular outline
    r_eff = r / (1 + 0.08 * np.cos(3 * theta + rng.uniform(0, 2 * np.pi)) + 0.05 * np.cos(5 * theta + 1.0))
    b0 = rng.uniform(2.4, 3.4)
    s = np.clip(r_eff / r_pen, 0, None)  # 0 at the centre, 1 at the outer penumbral edge
    strength = b0 * (1 - 0.65 * np.clip(s, 0, 1) ** 1.2)
    incl = np.deg2rad(
        np.where(
            r_eff < r_umbra,
            40 * (r_eff / r_umbra) ** 2,
            40 + 35 * np.clip((s - r_umbra / r_pen) / (1 - r_umbra / r_pen), 0, 1),
        )
    )
    n_fil = int(2 * np.pi * r_pen * pixel_scale / rng.uniform(0.5, 1.0))
    fil = np.cos(n_fil * theta + 3 * np.sin(r_eff / (1.5 / pixel_scale)))
    pen = (r_eff >= r_umbra) & (s < 1)
    incl = np.where(pen, incl + np.deg2rad(12) * fil, incl)  # spines vs intraspines
    blos = strength * np.cos(np.clip(incl, 0, np.deg2rad(88)))
    # Smooth decay outside the spot (canopy / moat)
    outside = s >= 1
    blos = np.where(outside, blos * np.exp(-(((r_eff - r_pen) / (0.8 / pixel_scale)) ** 2)), blos)
    return ndimage.gaussian_filter(blos, 0.08 / pixel_scale)


def synthetic_blos(
    intensity: np.ndarray,
    pixel_scale: float = 0.0662,
    *,
    network_fraction: float = 0.04,
    plage: float = 0.3,
    sunspot: bool = False,
    internetwork_rms: float = 0.03,
    seed: int | None = None,
) -> np.ndarray:
    """
    A realistic high-resolution line-of-sight magnetogram (kG) built on a granulation image.

    Ingredients:

    * **Network and plage.** kG flux concentrations (peak 1-2 kG, 0.1-0.3 arcsec wide) placed in the
      intergranular lanes of ``intensity`` (its darkest pixels), with a density that varies smoothly across
      the field. Their polarity follows a smooth random field, so network is mixed-polarity; a fraction
      ``plage`` of the field of view is a unipolar, denser plage region.
    * **Sunspot** (``sunspot=True``). A 2.4-3.4 kG umbra with a filamentary penumbra whose inclination
      alternates between spines and intraspines.
    * **Internetwork.** A weak (``internetwork_rms``, default 30 G, before the lanes' weighting), mixed-polarity
      field on granular scales, also concentrated in the lanes (1.8x there): its rms is about 1.3 ``internetwork_rms``
      (39 G by default).

    Parameters
    ----------
    intensity : `numpy.ndarray`
        A granulation image (e.g. a MURaM continuum snapshot), any normalisation.
    pixel_scale : float
        Its pixel scale in arcsec.
    network_fraction : float
        Fraction of the lane pixels that carry kG flux outside plage.
    plage : float
        Fraction of the field of view covered by unipolar plage (0 for pure quiet Sun).
    sunspot : bool
        Add a sunspot.
    internetwork_rms : float
        Rms of the internetwork field in kG before the intergranular lanes' 1.8x weighting (the field's own rms is
        about 1.3 times this).
    seed : int, optional
        Random seed.

    Returns
    -------
    `numpy.ndarray`
        Float32 line-of-sight field in kG, same shape as ``intensity``.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.data.synthetic import synthetic_blos
    >>> gran = np.random.default_rng(0).random((200, 200))
    >>> b = synthetic_blos(gran, 0.0662, seed=1)
    >>> b.shape, bool(np.abs(b).max() < 2.5)
    ((200, 200), True)
    """
    rng = np.random.default_rng(seed)
    shape = intensity.shape
    img = (intensity - intensity.mean()) / intensity.std()
    lanes = img < np.quantile(img, 0.3)  # intergranular lanes: the darkest 30 %
    # Where flux sits: smoothly varying density; unipolar plage where a smooth field exceeds a threshold.
    large = random_field(shape, pixel_scale, 6.0, rng)
    plage_mask = large > np.quantile(large, 1 - plage) if plage > 0 else np.zeros(shape, bool)
    polarity = np.sign(random_field(shape, pixel_scale, 4.0, rng))
    polarity[plage_mask] = 1.0 if rng.random() < 0.5 else -1.0
    density = np.where(plage_mask, 20 * network_fraction, network_fraction) * np.exp(
        0.5 * random_field(shape, pixel_scale, 3.0, rng)
    )
    seeds = lanes & (rng.random(shape) < density / 25)  # ~25 px per concentration
    field = np.zeros(shape)
    ys, xs = np.nonzero(seeds)
    peaks = rng.uniform(1.0, 2.0, ys.size)
    widths = rng.uniform(0.1, 0.3, ys.size) / pixel_scale
    for w in np.unique(np.round(widths)):  # group by width: one Gaussian filter per width
        sel = np.round(widths) == w
        spikes = np.zeros(shape)
        spikes[ys[sel], xs[sel]] = peaks[sel] * 2 * np.pi * (w / 2.355) ** 2
        field += ndimage.gaussian_filter(spikes, w / 2.355, mode="wrap")
    field = np.minimum(field, 2.0) * polarity
    field *= ndimage.gaussian_filter(lanes.astype(float), 0.05 / pixel_scale, mode="wrap") * 0.7 + 0.3
    weak = internetwork_rms * random_field(shape, pixel_scale, 0.25, rng) * (1 + 0.8 * lanes)
    blos = field + weak
    if sunspot:
        spot = _sunspot(shape, pixel_scale, rng) * (1 if rng.random() < 0.5 else -1)
        # Inside the spot and its surroundings the spot's field replaces the network's.
        blos = blos * (1 - np.minimum(1.0, np.abs(spot) / 0.5)) + spot
    return blos.astype(np.float32)


def granulation(
    shape: tuple[int, int],
    pixel_scale: float = SCENE_SCALE,
    *,
    granule_size: float = 1.6,
    lane_width: float = 0.18,
    contrast: float = 0.16,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """
    A granulation-like continuum intensity scene at high resolution, periodic in both directions.

    Granules are the cells of a power (weighted Voronoi) diagram of random centres, so that they differ in size,
    drawn in warped coordinates so that their edges curve. Each granule is bright with its own brightness and a
    dome-like fall-off towards the edges; the intergranular lanes are dark with an exponential profile of width
    ``lane_width``; a weak small-scale texture and a slight blur complete it. The result has the mean 1 (the
    quiet-Sun level) and the rms contrast ``contrast``.

    This is a picture, not a simulation: no radiative transfer, no velocities, no magnetic bright points. It is
    close enough to the MURaM snapshot the shipped Enhance continuum weights were trained on that Enhance works
    on it as on MURaM: degraded to HMI (`synthetic_hmi_map`), Enhance gains about 6.4 dB in PSNR over bicubic
    interpolation against the 28 cm truth (MURaM: 6.6 dB), and the degraded contrast is 4-5 %, like HMI's.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(ny, nx)``.
    pixel_scale : float
        Pixel scale in arcsec (default 0.063, an eighth of HMI's pixel).
    granule_size : float
        Mean distance between granule centres in arcsec (about the mean granule diameter).
    lane_width : float
        e-folding width of the dark intergranular lanes in arcsec.
    contrast : float
        rms intensity contrast ``std / mean`` of the result (MURaM quiet Sun: 0.163).
    seed : int or `numpy.random.Generator`, optional
        Random seed.

    Returns
    -------
    `numpy.ndarray`
        Float32 intensity in units of the mean (I/Ic), shape ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.data.synthetic import granulation
    >>> scene = granulation((256, 256), seed=0)
    >>> scene.shape, round(float(scene.mean()), 3), round(float(scene.std()), 3)
    ((256, 256), 1.0, 0.16)
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    ny, nx = shape
    ly, lx = ny * pixel_scale, nx * pixel_scale
    n = max(4, round(ly * lx / granule_size**2))
    centres = rng.random((n, 2)) * [ly, lx]
    brightness = rng.normal(0, 1, n)
    weight = rng.uniform(-0.1, 0.1, n) * granule_size**2  # power-diagram weights: granules of unequal size
    y, x = np.indices(shape) * pixel_scale
    warp = 0.3 * granule_size  # smooth displacements curve the otherwise straight Voronoi edges
    y = y + warp * random_field(shape, pixel_scale, 0.8 * granule_size, rng)
    x = x + warp * random_field(shape, pixel_scale, 0.8 * granule_size, rng)
    points = np.stack([(y % ly).ravel(), (x % lx).ravel()], axis=1)
    tree = cKDTree(centres, boxsize=[ly, lx])  # periodic, so the scene tiles like a simulation box
    dist, idx = tree.query(points, k=min(6, n))
    power = dist**2 - weight[idx]
    order = np.argsort(power, axis=1)[:, :2]
    first, second = np.take_along_axis(idx, order, 1).T
    p1, p2 = np.take_along_axis(power, order, 1).T
    sep = centres[second] - centres[first]
    half = np.array([ly / 2, lx / 2])
    sep = (sep + half) % (2 * half) - half  # minimum-image separation
    # Distance to the boundary between the two nearest cells (exact for a power diagram).
    edge_dist = ((p2 - p1) / (2 * np.hypot(sep[:, 0], sep[:, 1]))).reshape(shape)
    radius = np.sqrt(np.maximum(p1 + weight[first], 0)).reshape(shape)
    granule = (1 + 0.25 * brightness[first].reshape(shape)) * (1 - 0.35 * (radius / granule_size) ** 2)
    edge = 1 - np.exp(-edge_dist / lane_width)
    img = -1.0 + (granule + 1.0) * edge
    img += 0.25 * random_field(shape, pixel_scale, 0.2, rng) * edge
    img = ndimage.gaussian_filter(img, 0.06 / pixel_scale, mode="wrap")
    img = (img - img.mean()) / img.std()
    return (1 + contrast * img).astype(np.float32)


def _hmi_meta(data: np.ndarray, scale: float, center: u.Quantity, obstime: str, kind: str, unit: u.Unit) -> dict:
    """An SDO/HMI-like FITS header for a cut-out centred on ``center`` (helioprojective, Earth observer)."""
    import sunpy.map
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import Helioprojective, get_earth

    observer = get_earth(obstime)
    ref = SkyCoord(center[0], center[1], frame=Helioprojective(observer=observer, obstime=obstime))
    ny, nx = data.shape
    meta = sunpy.map.make_fitswcs_header(
        data,
        ref,
        reference_pixel=[(nx - 1) / 2, (ny - 1) / 2] * u.pix,  # the scene centre, whatever the resolution
        scale=[scale, scale] * u.arcsec / u.pix,
        telescope="SDO/HMI",
        instrument="HMI",
        wavelength=6173 * u.AA,
        unit=unit,
    )
    meta.update(
        {
            "telescop": "SDO/HMI",
            "instrume": "HMI_SIDE1" if kind == "intensity" else "HMI_FRONT2",
            "content": "CONTINUUM INTENSITY" if kind == "intensity" else "MAGNETOGRAM",
            "wavelnth": 6173.0,
            "waveunit": "angstrom",
            "origin": "sunpy_nn.data.synthetic (synthetic data, not an observation)",
        }
    )
    return meta


def synthetic_hmi_map(
    shape: tuple[int, int] = (64, 64),
    kind: str = "intensity",
    *,
    center: u.Quantity = (0, 0) * u.arcsec,
    obstime: str = "2024-05-01T12:00:00",
    noise: float | None = None,
    continuum_level: float = 6.0e4,
    sunspot: bool = False,
    seed: int | None = None,
):
    """
    An SDO/HMI-like map made from a synthetic high-resolution scene, and the truth that Enhance aims for.

    A `granulation` scene (``kind="intensity"``), or a `synthetic_blos` magnetogram built on one
    (``kind="blos"``), is made at 0.063 arcsec/pix, eight times finer than HMI's pixel. As in the training of
    Enhance (`sunpy_nn.training.make_enhance_pairs`):

    * the **map** is the scene convolved with HMI's PSF (`sunpy_nn.psf.hmi_psf`, the paper's modified
      parameters), resampled to 0.504 arcsec/pix, with Gaussian noise added;
    * the **truth** is the scene convolved with the Airy pattern of a 28 cm telescope at 6173 Å, resampled to
      0.252 arcsec/pix: what HMI would see with twice its aperture, on pixels half as big.

    Both have HMI-like headers (``TELESCOP = 'SDO/HMI'``, ``CONTENT``, ``BUNIT``, an Earth observer at
    ``obstime``), so `sunpy.map.Map` makes `~sunpy.map.sources.HMIMap` objects, and their pixel edges coincide
    on the Sun (truth pixels ``2j`` and ``2j + 1`` lie inside map pixel ``j``), like the output of
    `sunpy_nn.enhance_map`. ``ORIGIN`` says that the data are synthetic.

    Parameters
    ----------
    shape : tuple of int
        Shape of the HMI-like map ``(ny, nx)``; the truth has twice the pixels along each axis.
    kind : {"intensity", "blos"}
        Continuum image (in DN/s, quiet Sun at ``continuum_level``) or line-of-sight magnetogram (in Gauss).
    center : `~astropy.units.Quantity`
        Helioprojective longitude and latitude of the map centre. The default, disk centre, is where Enhance
        is trustworthy; the scene has no limb darkening or foreshortening.
    obstime : str
        Observation time (for the observer's position).
    noise : float, optional
        Noise added to the map, in units of the quiet-Sun level (continuum, default 1e-3) or in Gauss
        (magnetogram, default 10 G): the levels Enhance was trained with.
    continuum_level : float
        Quiet-Sun continuum level in DN/s (intensity only).
    sunspot : bool
        Add a sunspot to the magnetogram (``kind="blos"`` only).
    seed : int, optional
        Random seed of the scene and the noise.

    Returns
    -------
    hmi_map : `~sunpy.map.GenericMap`
        The HMI-like map at 0.504 arcsec/pix, float32 of shape ``shape``, in DN/s (continuum) or G (magnetogram).
    truth : `~sunpy.map.GenericMap`
        The noise-free 28 cm diffraction-limited truth at 0.252 arcsec/pix, ``(2 ny, 2 nx)`` in the unit of
        ``hmi_map``.

    Raises
    ------
    ValueError
        ``kind`` is not ``"intensity"`` or ``"blos"``, or ``sunspot=True`` with ``kind="intensity"``.

    Examples
    --------
    >>> from sunpy_nn.data.synthetic import synthetic_hmi_map
    >>> hmi, truth = synthetic_hmi_map((32, 32), seed=0)
    >>> type(hmi).__name__, hmi.data.shape, truth.data.shape
    ('HMIMap', (32, 32), (64, 64))
    >>> float(hmi.scale.axis1.value), hmi.unit.to_string(), hmi.meta["content"]
    (0.504, 'DN / s', 'CONTINUUM INTENSITY')
    """
    import sunpy.map

    from sunpy_nn.psf import airy_psf, degrade, hmi_psf

    if kind not in ("intensity", "blos"):
        raise ValueError(f"kind must be 'intensity' or 'blos', not {kind!r}")
    if sunspot and kind != "blos":
        raise ValueError("sunspot=True is only available for kind='blos'")
    rng = np.random.default_rng(seed)
    ny, nx = shape
    scene = granulation((8 * ny, 8 * nx), SCENE_SCALE, seed=rng)
    if kind == "blos":
        scene = synthetic_blos(scene, SCENE_SCALE, sunspot=sunspot, seed=int(rng.integers(2**31))) * 1000.0
        unit, factor = u.G, 1.0
        noise = 10.0 if noise is None else noise
    else:
        unit, factor = u.DN / u.s, continuum_level
        noise = 1e-3 if noise is None else noise
    low = degrade(scene, SCENE_SCALE, hmi_psf(SCENE_SCALE), HMI_SCALE, noise=noise, seed=rng, shape=(ny, nx))
    truth = degrade(scene, SCENE_SCALE, airy_psf(28 * u.cm, 6173 * u.AA, SCENE_SCALE), HMI_SCALE / 2)
    center = u.Quantity(center, u.arcsec)
    maps = []
    for data, scale in ((low, HMI_SCALE), (truth, HMI_SCALE / 2)):
        data = (data * factor).astype(np.float32)
        maps.append(sunpy.map.Map(data, _hmi_meta(data, scale, center, obstime, kind, unit)))
    maps[1].meta["comment"] = "Truth: the scene as a 28 cm telescope would see it at 6173 A"
    return maps[0], maps[1]


# --------------------------------------------------------------------------------------------- CRISP-like cube
def synthetic_crisp_cube(
    size: int = 96,
    *,
    n_wavelengths: int = 7,
    n_scans: int = 4,
    noise: float = 3e-3,
    v_peak: float = 15.0,
    qu_peak: float = 8.0,
    center: tuple[float, float] = (-320.0, 150.0),
    date: str = "2019-04-22T09:00:00",
    cadence: float = 28.0,
    noise_correlation: float = 0.0,
    drift: tuple[float, float] = (0.1, 0.2),
    evolution: float = 0.03,
    photon_noise: bool = False,
    seed: int | None = None,
):
    """
    An SST/CRISP-like spectropolarimetric time series in Fe I 630.25 nm, with its noise-free truth.

    The continuum is a `granulation` scene at CRISP's 0.059 arcsec/pix; the line-of-sight field is a
    `synthetic_blos` magnetogram on it (network and plage, kG). Stokes I is a Gaussian absorption line (depth
    0.65, FWHM 0.15 Å) with granular Doppler shifts (granules blueshifted, lanes redshifted); Stokes V follows
    the weak-field approximation ``V ∝ -B_los dI/dλ``; Q and U are ``∝ -B_perp² (cos 2φ, sin 2φ) d²I/dλ²``
    with a smooth transverse field and azimuth. The amplitudes make the strongest V (99.95th percentile)
    ``v_peak`` times the noise and the strongest Q/U ``qu_peak`` times: most of the field of view is at the
    noise level, as in CRISP data. The scene drifts by 0.1-0.2 px and its Q/U/V amplitudes change by
    3 % rms over the series (``evolution``), so consecutive scans differ as real ones do. Gaussian white noise
    of ``noise`` (units of the continuum) is added to every Stokes parameter, or, with ``photon_noise``, noise that
    scales as the square root of each pixel's Stokes I, as photon noise does.

    Parameters
    ----------
    size : int
        Edge of the field of view in pixels.
    n_wavelengths : int
        Wavelength points, equally spaced over ±0.28 Å around the line centre.
    n_scans : int
        Scans (time steps), ``cadence`` seconds apart.
    noise : float
        Noise standard deviation in units of the continuum intensity.
    v_peak, qu_peak : float
        Strongest Stokes V and Q/U signals in units of the noise.
    center : tuple of float
        Helioprojective longitude and latitude of the first pixel in arcsec.
    date : str
        Start time (DATE-OBS / DATEREF of the WCS).
    cadence : float
        Seconds between scans.
    noise_correlation : float
        Spatial correlation of the noise: white noise convolved (periodically) with a Gaussian of this sigma in
        pixels (0: white), rescaled to ``noise`` rms, the same level at every pixel, as image restoration (MOMFBD)
        leaves it.
    drift : tuple of float
        Range of the scene's random-walk shift between consecutive scans, in pixels: (0.1, 0.2) by default; larger
        values emulate a poor alignment of the scans, or fast evolution that moves the scene.
    evolution : float
        Q/U/V amplitudes ``1 + evolution (f1 cos 0.5t + f2 sin 0.5t)`` (``f1``, ``f2``: unit-rms granulation-scale
        fields, ``t``: scan index). 0.03 by default; 0.3 emulates a field that changes faster than the cadence.
    photon_noise : bool
        Noise of ``noise * sqrt(I / Ic)`` at each pixel, tuning and scan, in all four Stokes parameters (photon
        noise, demodulated alike into Q, U and V): about 0.6 of the continuum's in the line core, ``sqrt(1 - 0.65)``
        for the line depth of 0.65. Default: `False`, the same ``noise`` everywhere.
    seed : int, optional
        Random seed of the scene, its evolution and the noise.

    Returns
    -------
    cube : `~ndcube.NDCube`
        Array axes ``(time, stokes, wavelength, y, x)`` with a FITS WCS (``UTC``, ``STOKES`` = I, Q, U, V,
        ``WAVE`` set in Å, which astropy's WCS reports in m, ``HPLT-TAN``, ``HPLN-TAN``), float32 data in units of
        the continuum intensity, and
        ``meta`` describing the scene.
    truth : `numpy.ndarray`
        The noise-free data, same shape and axis order.

    Raises
    ------
    ValueError
        A negative ``noise_correlation`` or ``evolution``, or a ``drift`` range that is not ``0 <= low <= high``.

    Examples
    --------
    >>> from sunpy_nn.data.synthetic import synthetic_crisp_cube
    >>> cube, truth = synthetic_crisp_cube(32, n_wavelengths=3, n_scans=2, seed=0)
    >>> cube.data.shape, truth.shape
    ((2, 4, 3, 32, 32), (2, 4, 3, 32, 32))
    >>> [t[0] for t in cube.array_axis_physical_types[:3]]
    ['time', 'phys.polarization.stokes', 'em.wl']
    """
    from ndcube import NDCube

    if not noise_correlation >= 0:
        raise ValueError(f"noise_correlation is a Gaussian sigma in pixels, 0 or more, not {noise_correlation!r}")
    if not 0 <= drift[0] <= drift[1]:
        raise ValueError(f"drift must be (low, high) pixels per scan with 0 <= low <= high, not {drift!r}")
    if not evolution >= 0:
        raise ValueError(f"evolution is a relative amplitude, 0 or more, not {evolution!r}")
    rng = np.random.default_rng(seed)
    sigma_line, depth, doppler, half_range = 0.065, 0.65, 0.02, 0.28  # Angstrom, -, Angstrom per rms, Angstrom
    margin = max(8, math.ceil(drift[1] * n_scans) + 4)  # room for the drift; cropped after shifting
    n = size + 2 * margin
    # The magnetic scene varies on scales of several arcsec (network cells, plage): make it on a field of view of
    # at least 24 arcsec and cut the cube's out of it.
    big = max(n, round(24 / CRISP_SCALE))
    crop = np.s_[(big - n) // 2 : (big - n) // 2 + n, (big - n) // 2 : (big - n) // 2 + n]
    ic = granulation((big, big), CRISP_SCALE, seed=rng).astype(np.float64)
    blos = synthetic_blos(ic, CRISP_SCALE, seed=int(rng.integers(2**31))).astype(np.float64)[crop]
    # Transverse field: part of the smoothed |B| (inclined canopies) plus a weak granular horizontal field.
    b_perp = 0.6 * ndimage.gaussian_filter(np.abs(blos), 1.5) + 0.15 * np.abs(
        random_field((big, big), CRISP_SCALE, 0.3, rng)[crop]
    )
    azimuth = np.pi * random_field((big, big), CRISP_SCALE, 1.5, rng)[crop]
    ic = ic[crop]
    contrast = (ic - 1) / ic.std()
    wl = np.linspace(-half_range, half_range, n_wavelengths)
    shift = -doppler * np.clip(contrast, -3, 3)
    x = (wl[:, None, None] - shift[None]) / sigma_line
    g = np.exp(-0.5 * x**2)
    stokes_i = ic * (1 - depth * g)
    d1 = ic * depth * g * x / sigma_line  # dI/dlambda
    d2 = ic * depth * g * (1 - x**2) / sigma_line**2  # d2I/dlambda2
    v = -blos * d1
    q = -(b_perp**2) * np.cos(2 * azimuth) * d2
    uu = -(b_perp**2) * np.sin(2 * azimuth) * d2
    inner = np.s_[:, margin:-margin, margin:-margin]
    v *= v_peak * noise / np.percentile(np.abs(v[inner]).max(axis=0), 99.95)
    qu_scale = qu_peak * noise / np.percentile(np.maximum(np.abs(q[inner]), np.abs(uu[inner])).max(axis=0), 99.95)
    base = np.stack([stokes_i, q * qu_scale, uu * qu_scale, v])  # (4, W, n, n)

    f1 = random_field(ic.shape, CRISP_SCALE, 1.0, rng)
    f2 = random_field(ic.shape, CRISP_SCALE, 1.0, rng)
    truth = np.empty((n_scans, 4, n_wavelengths, size, size), np.float32)
    offset = np.zeros(2)
    for t in range(n_scans):
        if t:
            angle = rng.uniform(0, 2 * math.pi)
            offset = offset + rng.uniform(*drift) * np.array([math.sin(angle), math.cos(angle)])
        amp = 1 + evolution * (f1 * math.cos(0.5 * t) + f2 * math.sin(0.5 * t))
        for s in range(4):
            factor = 1.0 if s == 0 else (amp if s == 3 else amp**2)
            for w in range(n_wavelengths):
                img = ndimage.shift(base[s, w] * factor, offset, order=3, mode="nearest")
                truth[t, s, w] = img[margin:-margin, margin:-margin]
    white = _unit_noise(rng, truth.shape, noise_correlation)  # periodic where correlated (why: _unit_noise)
    if photon_noise:  # each pixel's Stokes I sets the noise of all four Stokes parameters there
        white *= np.sqrt(np.clip(truth[:, :1], 0, None))
    data = (truth + noise * white).astype(np.float32)
    step = float(wl[1] - wl[0]) if n_wavelengths > 1 else 0.01
    wcs = _crisp_wcs(n_wavelengths, step, center, date, cadence)
    meta = {"instrume": "CRISP (synthetic)", "telescop": "SST (synthetic)", "line": "Fe I 630.25 nm", "bunit": "I/Ic"}
    meta |= {"noise": noise, "noise_correlation_px": noise_correlation, "photon_noise": bool(photon_noise)}
    meta["origin"] = "sunpy_nn.data.synthetic.synthetic_crisp_cube (synthetic data, not an observation)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's notes on the non-standard 'UTC' time axis
        cube = NDCube(data, wcs=wcs, unit=u.dimensionless_unscaled, meta=meta)
    return cube, truth
