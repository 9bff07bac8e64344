"""
Training sources for Enhance: real high-resolution frames turned into HMI-like truth.

A `TrainingSource` is one high-resolution image in the network's units (continuum I/Ic at 617.3 nm, or the
line-of-sight field in kG), with its pixel scale, the part of it that may be trained on, and a fixed held-out
region that never is. `load_reference_sources` builds the four real scenes that sunpy_nn's Enhance v2 weights
were trained and validated on from the files in ``../shared/data`` (which are never copied into the package).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.constants import c, h, k_B
from astropy.stats import sigma_clipped_stats

__all__ = [
    "HMI_CONTINUUM_WAVELENGTH",
    "TrainingSource",
    "convert_continuum_wavelength",
    "load_reference_sources",
]

log = logging.getLogger(__name__)

#: Wavelength of HMI's continuum (Fe I 617.3 nm line wing), the one Enhance's intensity network works at.
HMI_CONTINUUM_WAVELENGTH = 617.3 * u.nm
#: Brightness temperature of the quiet-Sun continuum at disk centre used by `convert_continuum_wavelength`
#: (6300 K lies within the 6200-6400 K of the visible and near-infrared continuum; the umbral I/Ic that results at
#: 617.3 nm changes by less than 0.01 between 6100 and 6500 K for the SST frame).
QUIET_SUN_TEMPERATURE = 6300 * u.K
#: Held-out validation region of every frame: the right quarter of its valid area (x fraction 0.75-1.0).
HELD_OUT = (0.75, 1.0)


@dataclass
class TrainingSource:
    """
    One high-resolution image for Enhance training.

    Each parameter is kept as the attribute of the same name; ``image`` converted to float64, ``valid`` filled in.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D image ``(ny, nx)`` in network units: I/Ic at 617.3 nm (``kind="intensity"``) or kG (``kind="blos"``);
        finite inside ``valid``.
    pixel_scale : float
        Arcsec per pixel.
    kind : {"intensity", "blos"}
        Data kind.
    name : str
        Short name used in logs, model cards and reports.
    wavelength : `~astropy.units.Quantity`, optional
        Wavelength the image was observed at (before any conversion).
    valid : tuple of int, optional
        ``(y0, y1, x0, x1)``: the usable part of the image (e.g. inside an apodised border); default the whole image.
    held_out : tuple of float
        Fractions ``(start, stop)`` of the valid width held out for validation; training pairs never touch it,
        PSF footprints included. ``(1.0, 1.0)`` holds nothing out.
    weight : float
        Relative probability of drawing a training pair from this source.
    note : str
        What was done to the data (normalisation, conversion), for the model card.
    stats : dict
        Statistics of the data for the model card (e.g. contrast, darkest percentile).

    Raises
    ------
    ValueError
        ``kind`` is unknown, ``image`` is not 2-D, or its valid part is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.training import TrainingSource
    >>> source = TrainingSource(np.ones((100, 200)), 0.0662, "intensity", "flat")
    >>> source.columns("train"), source.columns("validation"), source.held_out_image().shape
    ((0, 150), (150, 200), (100, 50))
    """

    image: np.ndarray
    pixel_scale: float
    kind: str
    name: str
    wavelength: u.Quantity | None = None
    valid: tuple[int, int, int, int] | None = None
    held_out: tuple[float, float] = HELD_OUT
    weight: float = 1.0
    note: str = ""
    stats: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in ("intensity", "blos"):
            raise ValueError(f"kind must be 'intensity' or 'blos', not {self.kind!r}")
        self.image = np.asarray(self.image, dtype=np.float64)
        if self.image.ndim != 2:
            raise ValueError(f"a training image must be 2-D, got shape {self.image.shape}")
        if self.valid is None:
            self.valid = (0, self.image.shape[0], 0, self.image.shape[1])
        y0, y1, x0, x1 = self.valid
        if not np.isfinite(self.image[y0:y1, x0:x1]).all():
            raise ValueError(f"{self.name}: the valid part of a training image must be finite (no NaN/inf)")

    def columns(self, split: str) -> tuple[int, int]:
        """
        Column range of the validation region or of the largest training region, in image pixels.

        Parameters
        ----------
        split : {"train", "validation"}
            ``"validation"``: the held-out columns; any other value: the wider of the training regions on either side
            of them.

        Returns
        -------
        tuple of int
            ``(x_lo, x_hi)``, the half-open column range ``[x_lo, x_hi)``.
        """
        x0, x1 = self.valid[2:]
        lo = x0 + round(self.held_out[0] * (x1 - x0))
        hi = x0 + round(self.held_out[1] * (x1 - x0))
        if split == "validation":
            return lo, hi
        return max(((x0, lo), (hi, x1)), key=lambda r: r[1] - r[0])

    def held_out_image(self) -> np.ndarray:
        """
        The held-out part of the valid image.

        Returns
        -------
        `numpy.ndarray`
            A view of ``image``: the valid rows and the validation columns (`columns`), in network units.
        """
        y0, y1 = self.valid[:2]
        lo, hi = self.columns("validation")
        return self.image[y0:y1, lo:hi]


def _planck(wavelength: u.Quantity, temperature: u.Quantity) -> np.ndarray:
    x = (h * c / (wavelength * k_B * temperature)).decompose().value
    return 1.0 / np.expm1(x)  # the factor 2hc^2/lambda^5 cancels in every ratio used here


def convert_continuum_wavelength(
    contrast: np.ndarray,
    wavelength_obs: u.Quantity,
    wavelength_new: u.Quantity = HMI_CONTINUUM_WAVELENGTH,
    *,
    quiet_sun_temperature: u.Quantity = QUIET_SUN_TEMPERATURE,
) -> np.ndarray:
    """
    Convert a continuum contrast ``I / I_QS`` from one wavelength to another through the brightness temperature.

    Each pixel's brightness temperature follows from Planck's law, ``I / I_QS = B(lambda, T) / B(lambda, T_QS)``,
    and gives ``B(lambda_new, T) / B(lambda_new, T_QS)``. Contrasts shrink towards the red: an umbra at 0.36 of
    the quiet Sun at 854 nm is at 0.25 at 617.3 nm.

    Parameters
    ----------
    contrast : `numpy.ndarray` or float
        Intensity normalised to the quiet Sun at ``wavelength_obs`` (dimensionless), any shape; must be positive.
    wavelength_obs : `~astropy.units.Quantity`
        Observed wavelength, a length.
    wavelength_new : `~astropy.units.Quantity`
        Target wavelength, a length (default HMI's continuum, 617.3 nm).
    quiet_sun_temperature : `~astropy.units.Quantity`
        Brightness temperature of the quiet Sun, a temperature (default 6300 K).

    Returns
    -------
    `numpy.ndarray`
        Float64 ``I / I_QS`` at ``wavelength_new``, shape of ``contrast``.

    Raises
    ------
    ValueError
        A contrast is zero or negative.
    astropy.units.UnitsError
        A wavelength is not a length (a plain number included).

    Examples
    --------
    >>> import astropy.units as u
    >>> from sunpy_nn.training.sources import convert_continuum_wavelength
    >>> round(float(convert_continuum_wavelength(0.36, 854.2 * u.nm)), 3)
    0.254
    """
    contrast = np.asarray(contrast, dtype=np.float64)
    if np.any(contrast <= 0):
        raise ValueError("continuum contrasts must be positive to have a brightness temperature")
    hc_k = (h * c / k_B).to_value(u.m * u.K)
    lam_o = u.Quantity(wavelength_obs).to_value(u.m)
    lam_n = u.Quantity(wavelength_new).to_value(u.m)
    b_qs = _planck(u.Quantity(wavelength_obs), u.Quantity(quiet_sun_temperature))
    temperature = hc_k / lam_o / np.log1p(1.0 / (contrast * b_qs))
    return 1.0 / np.expm1(hc_k / (lam_n * temperature)) / _planck(u.Quantity(wavelength_new), quiet_sun_temperature)


def _quiet_sun_level(values: np.ndarray) -> float:
    # Sigma clipping drops umbra, penumbra and bright points; what remains is the granulation around the QS level.
    return float(sigma_clipped_stats(values, sigma=3.0, maxiters=20)[1])


def _dark_percentile(image: np.ndarray, q: float = 1.0) -> float:
    return float(np.percentile(image, q))


def load_reference_sources(data_dir: str | Path, kind: str, *, synthetic_blos_images: int = 4, seed: int = 0):
    """
    The real scenes of ``../shared/data`` as training sources for ``kind``.

    Intensity: the SST/CRISP sunspot (854 nm wideband, converted to 617.3 nm), the Sunrise/IMaX quiet Sun
    (525 nm, converted, apodised border excluded) and the MURaM quiet-Sun snapshot (taken as 617.3 nm).
    Magnetogram: the GST/NIRIS line-of-sight magnetogram (G -> kG), plus ``synthetic_blos_images`` synthetic
    magnetograms built on the MURaM granulation outside its held-out quarter (kG network, plage, sunspots), so
    that the weights also see field geometries the one real magnetogram lacks.

    The right quarter of every real frame is held out (`HELD_OUT`).

    Parameters
    ----------
    data_dir : str or `pathlib.Path`
        The shared data folder, with the frames under ``hires/`` and the MURaM snapshot under ``enhance/``.
    kind : {"intensity", "blos"}
        Which sources to build.
    synthetic_blos_images : int
        Number of synthetic magnetograms added for ``kind="blos"`` (0 for none).
    seed : int
        Seed of the synthetic magnetograms.

    Returns
    -------
    list of `TrainingSource`
        The sources, in network units (I/Ic at 617.3 nm, or kG), with their notes and statistics.

    Raises
    ------
    FileNotFoundError
        If a file is missing from ``data_dir``.
    ValueError
        ``kind`` is unknown.
    """
    from astropy.io import fits

    d = Path(data_dir)
    out: list[TrainingSource] = []
    if kind == "intensity":
        sst = fits.getdata(d / "hires" / "sst_crisp_wb_sunspot_2020-07-27.fits").astype(np.float64)
        level = _quiet_sun_level(sst)
        sst_854 = sst / level
        sst_617 = convert_continuum_wavelength(sst_854, 854.2 * u.nm)
        out.append(
            TrainingSource(
                sst_617,
                0.059,
                "intensity",
                "sst_sunspot",
                854.2 * u.nm,
                weight=1.5,
                note=f"SST/CRISP wideband 854.2 nm sunspot, divided by its quiet-Sun level {level:.2f} counts, "
                "converted to 617.3 nm through the brightness temperature (T_QS 6300 K)",
                stats={
                    "darkest_1pct_854nm": _dark_percentile(sst_854),
                    "darkest_1pct_617nm": _dark_percentile(sst_617),
                },
            )
        )
        imax = fits.getdata(d / "hires" / "imax_qs_focus.fits").astype(np.float64)
        border = 64  # apodised border of ~60 px, plus a margin
        valid = (border, imax.shape[0] - border, border, imax.shape[1] - border)
        inner = imax[valid[0] : valid[1], valid[2] : valid[3]]
        imax_617 = np.array(imax)
        imax_617[valid[0] : valid[1], valid[2] : valid[3]] = convert_continuum_wavelength(
            inner / _quiet_sun_level(inner), 525.0 * u.nm
        )
        out.append(
            TrainingSource(
                imax_617,
                0.055,
                "intensity",
                "imax_quiet_sun",
                525.0 * u.nm,
                valid=valid,
                note="Sunrise/IMaX 525 nm quiet Sun, apodised border (64 px) excluded, divided by its quiet-Sun level, "
                "converted to 617.3 nm through the brightness temperature",
            )
        )
        muram = np.load(d / "enhance" / "muram_qs_continuum_1000.npy").astype(np.float64)
        out.append(
            TrainingSource(
                muram / muram.mean(),
                0.0662,
                "intensity",
                "muram_quiet_sun",
                HMI_CONTINUUM_WAVELENGTH,
                note="MURaM quiet-Sun continuum snapshot, divided by its mean (quiet Sun only), taken as 617.3 nm",
            )
        )
        for s in out:
            s.stats["rms_contrast_held_out"] = float(np.std(s.held_out_image()) / np.mean(s.held_out_image()))
            s.stats.setdefault(
                "darkest_1pct", _dark_percentile(s.image[s.valid[0] : s.valid[1], s.valid[2] : s.valid[3]])
            )
            log.info("source %s: %s, stats %s", s.name, s.note, s.stats)
        return out
    if kind != "blos":
        raise ValueError(f"kind must be 'intensity' or 'blos', not {kind!r}")
    gst = fits.getdata(d / "hires" / "gst_niris_blos_2017-07-13T162012.fits").astype(np.float64)
    out.append(
        TrainingSource(
            gst / 1000.0,
            0.083,
            "blos",
            "gst_niris",
            1564.8 * u.nm,
            weight=2.0,
            note="BBSO GST/NIRIS line-of-sight magnetogram of AR 12665 (penumbra, plage, pores), G -> kG",
        )
    )
    if synthetic_blos_images:
        from sunpy_nn.data.synthetic import synthetic_blos

        muram = np.load(d / "enhance" / "muram_qs_continuum_1000.npy").astype(np.float64)
        gran = muram[:, : round(HELD_OUT[0] * muram.shape[1])]  # never the MURaM held-out quarter
        rng = np.random.default_rng(seed)
        for i in range(synthetic_blos_images):
            g = np.rot90(gran, i % 4)
            field = synthetic_blos(
                np.ascontiguousarray(g),
                0.0662,
                plage=float(rng.uniform(0.0, 0.5)),
                sunspot=i % 2 == 0,
                network_fraction=float(rng.uniform(0.02, 0.06)),
                seed=int(rng.integers(1 << 31)),
            )
            out.append(
                TrainingSource(
                    field,
                    0.0662,
                    "blos",
                    f"synthetic_blos_{i}",
                    held_out=(1.0, 1.0),
                    weight=1.0 / synthetic_blos_images,
                    note="sunpy_nn.data.synthetic.synthetic_blos on MURaM granulation outside its held-out quarter",
                )
            )
    return out
