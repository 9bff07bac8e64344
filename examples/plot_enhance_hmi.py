"""
=====================================================
Enhance an HMI continuum image and a magnetogram
=====================================================

`sunpy_nn.enhance_map` deconvolves an SDO/HMI map and doubles its pixels along each axis. This example
enhances a continuum image of the quiet Sun and a line-of-sight magnetogram with a sunspot, shows them beside
the originals, and compares their azimuthal power spectra (`sunpy_nn.metrics.azimuthal_power_spectrum`) with
those of the truth: Enhance restores power at the small scales that HMI's point spread function suppresses, up
to HMI's Nyquist frequency.

The maps are synthetic (`sunpy_nn.data.synthetic.synthetic_hmi_map`), so the example runs anywhere, offline,
and the truth is known: a high-resolution scene seen through HMI's PSF on 0.504 arcsec pixels (the input), and
through a 28 cm telescope on 0.252 arcsec pixels (the truth Enhance was trained to produce).
"""

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from sunpy_nn import enhance_map
from sunpy_nn.data.synthetic import synthetic_hmi_map
from sunpy_nn.metrics import azimuthal_power_spectrum

###############################################################################
# Get the maps
# ------------
# Both have HMI-like headers (0.504 arcsec/pix, an Earth observer, and the ``CONTENT`` keyword from which
# `~sunpy_nn.enhance_map` tells a continuum image from a magnetogram). The continuum is in DN/s, as HMI's
# ``hmi.Ic_45s`` series; the magnetogram is in Gauss, as ``hmi.M_45s``.

continuum, continuum_truth = synthetic_hmi_map((128, 128), "intensity", seed=0)
magnetogram, magnetogram_truth = synthetic_hmi_map((128, 128), "blos", sunspot=True, seed=1)
print(type(continuum).__name__, continuum.data.shape, continuum.unit, "|", magnetogram.data.shape, magnetogram.unit)

###############################################################################
# Enhance them
# ------------
# The kind of data comes from the header, and the shipped weights for that kind are used. The result is a new
# map of the same class with twice the pixels, ``CDELT`` halved, and every pixel edge at the same place on the
# Sun; the header records what was done.

big_continuum = enhance_map(continuum, progress=False)
big_magnetogram = enhance_map(magnetogram, progress=False)
print(big_continuum.data.shape, big_continuum.scale)
# The provenance record, as HISTORY lines "sunpy_nn key: value": software, method, model and its SHA-256, settings.
# A long value continues on the following lines, indented by two spaces.
print("\n".join(line for line in big_continuum.meta["history"].splitlines() if line.startswith(("sunpy_nn ", "  "))))

###############################################################################
# The originals and the enhanced maps
# -----------------------------------
# The continuum is shown divided by its quiet-Sun level (the median of the input map), in units of the
# continuum intensity Ic, on one scale for both panels; the magnetogram in Gauss, saturated at ±1500 G so that
# the network stays visible.

qs = float(np.nanmedian(continuum.data))
fig = plt.figure(figsize=(11, 9.5), layout="constrained")
continuum_norm = Normalize(*np.nanpercentile(big_continuum.data / qs, [0.5, 99.5]))
rows = [
    (continuum, big_continuum, 1 / qs, continuum_norm, "gray", "continuum", "I / Ic"),
    (magnetogram, big_magnetogram, 1.0, Normalize(-1500, 1500), "RdBu_r", "magnetogram", "B_LOS [G]"),
]
for row, (small, big, factor, norm, cmap, label, unit) in enumerate(rows):
    for col, (m, title) in enumerate(((small, 'HMI, 0.504"/pix'), (big, 'Enhance x2, 0.252"/pix'))):
        ax = fig.add_subplot(2, 2, 2 * row + col + 1, projection=m)
        im = ax.imshow(m.data * factor, origin="lower", cmap=cmap, norm=norm)
        ax.set_title(f"{label}: {title}")
        ax.coords[0].set_axislabel("Solar-X")
        ax.coords[1].set_axislabel("Solar-Y" if col == 0 else " ")
        fig.colorbar(im, ax=ax, label=unit, shrink=0.85)

###############################################################################
# Power spectra
# -------------
# On a physical frequency axis (per arcsec), so that the 0.504 and 0.252 arcsec/pix maps can be compared. HMI
# has no information beyond its Nyquist frequency, 1 / (2 x 0.504") ≈ 1 per arcsec, and its PSF already
# suppresses much of the power below it. The truth shows what a 28 cm telescope would see. The printed ratios
# compare each map's power with the truth's: below HMI's Nyquist frequency (0.3-0.9 per arcsec) Enhance brings
# back most of what HMI lost; above it, Enhance extrapolates with what it learnt in training, and on this
# synthetic scene it has less power than the truth (ratios below 1). On the real high-resolution frames of the
# validation report (below) it instead adds power above the truth's close to the output's Nyquist frequency:
# spurious small-scale structure, which a synthetic scene does not test.

fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
for ax, (small, big, truth, label, unit) in zip(
    axes,
    (
        (continuum, big_continuum, continuum_truth, "continuum", "(I/Ic)$^2$"),
        (magnetogram, big_magnetogram, magnetogram_truth, "magnetogram", "G$^2$"),
    ),
    strict=True,
):
    factor = 1 / qs if label == "continuum" else 1.0
    spectra = {}
    for m, name, style in ((small, "HMI", "k:"), (big, "Enhance x2", "C3-"), (truth, "truth (28 cm)", "k-")):
        scale = abs(m.scale.axis1.to_value(u.arcsec / u.pix))  # a pixel size: CDELT1 < 0 on a mirrored map
        freq, power = azimuthal_power_spectrum(np.nan_to_num(np.asarray(m.data, float)) * factor)
        spectra[name] = (freq[1:] / scale, power[1:] * scale**2)
        ax.loglog(*spectra[name], style, label=name)
    ax.axvline(1 / (2 * 0.504), color="0.6", lw=0.8, label="HMI Nyquist")
    ax.set_xlabel("spatial frequency [1/arcsec]")
    ax.set_ylabel(f"power [{unit} arcsec$^2$]")
    ax.set_title(f"{label}: azimuthal power spectrum")
    ax.legend()
    # Median power ratios to the truth in three bands: below HMI's Nyquist frequency, and two above it.
    f_t, p_t = spectra["truth (28 cm)"]
    for name in ("HMI", "Enhance x2"):
        ratios = []
        for lo, hi in ((0.3, 0.9), (1.0, 1.5), (1.5, 1.95)):
            f, p = spectra[name]
            band = (f >= lo) & (f < hi)
            ratios.append(f"{lo}-{hi}: {np.median(p[band] / np.interp(f[band], f_t, p_t)):.2f}" if band.any() else "")
        print(f"{label:11s} {name:10s} power / truth's, per arcsec  " + "  ".join(r for r in ratios if r))

###############################################################################
# Real HMI data
# -------------
# Earlier versions of this page showed real HMI cut-outs: a sunspot in the continuum and an active region
# magnetogram from the Enhance paper's samples (``cdiazbas/enhance``) and the HelioML book. How the
# shipped weights do on those, and on held-out real high-resolution frames (SST/CRISP, Sunrise/IMaX, BBSO
# GST/NIRIS) and the MURaM simulation of the paper, is measured in the :ref:`validation report
# <sunpy_nn-validation>`. To enhance your own HMI data, fetch a map with `sunpy.net.Fido` (which needs
# ``pip install "sunpy[net]"``; JSOC exports need a registered e-mail address, and ``a.Instrument.hmi`` with
# ``a.Physobs.intensity`` searches the VSO instead) and enhance a region of it:
#
# .. code-block:: python
#
#     import astropy.units as u
#     import sunpy.map
#     from astropy.coordinates import SkyCoord
#     from sunpy.net import Fido
#     from sunpy.net import attrs as a
#
#     from sunpy_nn import enhance_map
#
#     result = Fido.search(
#         a.Time("2014-02-04 00:00:00", "2014-02-04 00:00:45"),
#         a.jsoc.Series("hmi.Ic_45s"),  # or "hmi.M_45s" for a magnetogram
#         a.jsoc.Notify("you@example.org"),
#     )
#     hmi = sunpy.map.Map(Fido.fetch(result)[0])
#     region = hmi.submap(
#         SkyCoord(-100 * u.arcsec, -100 * u.arcsec, frame=hmi.coordinate_frame),
#         top_right=SkyCoord(100 * u.arcsec, 100 * u.arcsec, frame=hmi.coordinate_frame),
#     )
#     enhanced = enhance_map(region)

# sphinx_gallery_thumbnail_number = 1
plt.show()
