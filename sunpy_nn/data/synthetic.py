"""
Synthetic high-resolution solar scenes, for training Enhance on magnetograms and for tests and examples.

There is no public high-resolution line-of-sight magnetogram simulation small enough to ship, so
`synthetic_blos` builds one from physically motivated ingredients: kG flux concentrations in intergranular
lanes (mixed-polarity network and unipolar plage), an optional sunspot with a filamentary penumbra, and a weak,
mixed-polarity internetwork field.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["random_field", "synthetic_blos"]


def random_field(shape, pixel_scale: float, correlation_arcsec: float, rng: np.random.Generator) -> np.ndarray:
    """A periodic Gaussian random field with unit rms and a Gaussian correlation length (arcsec)."""
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
    * **Internetwork.** A weak (``internetwork_rms``, default 30 G), mixed-polarity field on granular scales,
      also concentrated in the lanes.

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
        Rms of the internetwork field in kG.
    seed : int, optional
        Random seed.

    Returns
    -------
    `numpy.ndarray`
        Line-of-sight field in kG, same shape as ``intensity``.

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
