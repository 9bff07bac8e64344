"""
=====================================================
Enhance an HMI continuum image and a magnetogram
=====================================================

`sunpy_nn.enhance_map` deconvolves an SDO/HMI map and doubles its pixels along each axis. This example
enhances a continuum image of a sunspot and a line-of-sight magnetogram of an active region, shows them beside
the originals, and compares their azimuthal power spectra (`sunpy_nn.metrics.azimuthal_power_spectrum`): Enhance
restores power at the small scales that HMI's point spread function suppresses.

The data are real HMI cut-outs from ``../shared/data`` when that folder is present (beside a development
checkout), and otherwise synthetic HMI-like maps from `sunpy_nn.data.synthetic.synthetic_hmi_map`.
"""

from pathlib import Path

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits
from matplotlib.colors import Normalize
from sunpy.coordinates import Helioprojective, get_earth

from sunpy_nn import enhance_map
from sunpy_nn.data.synthetic import synthetic_hmi_map
from sunpy_nn.metrics import azimuthal_power_spectrum

###############################################################################
# Get the maps
# ------------
# The real cut-outs have no WCS in their headers (the continuum is already divided by the quiet-Sun level,
# the magnetogram is in Gauss), so we give them an HMI-like one: 0.504 arcsec/pix, an Earth observer, and the
# ``CONTENT`` keyword from which `~sunpy_nn.enhance_map` tells a continuum image from a magnetogram.

try:
    DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "enhance"
except NameError:  # no __file__, e.g. in a notebook: look beside the working directory
    DATA = Path.cwd().resolve().parents[1] / "shared" / "data" / "enhance"


def hmi_map(path, content, unit):
    """A sunpy Map with an HMI-like header for a cut-out near disk centre."""
    data = fits.getdata(path).astype(np.float32)
    obstime = "2014-02-04T00:00:00"
    ref = SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=Helioprojective(observer=get_earth(obstime), obstime=obstime))
    header = sunpy.map.make_fitswcs_header(
        data, ref, scale=[0.504, 0.504] * u.arcsec / u.pix, telescope="SDO/HMI", instrument="HMI", unit=unit
    )
    header.update({"telescop": "SDO/HMI", "content": content})
    return sunpy.map.Map(data, header)


if (DATA / "hmi_continuum_sunspot_200.fits").exists():
    source = "real HMI data"
    continuum = hmi_map(DATA / "hmi_continuum_sunspot_200.fits", "CONTINUUM INTENSITY", u.dimensionless_unscaled)
    magnetogram = hmi_map(DATA / "hmi_blos_200.fits", "MAGNETOGRAM", u.G)
else:
    source = "synthetic HMI-like data"
    continuum, _ = synthetic_hmi_map((128, 128), "intensity", seed=0)
    magnetogram, _ = synthetic_hmi_map((128, 128), "blos", sunspot=True, seed=1)
print(source, continuum.data.shape, magnetogram.data.shape)

###############################################################################
# Enhance them
# ------------
# The kind of data comes from the header, and the shipped weights for that kind are used. The result is a new
# map of the same class with twice the pixels, ``CDELT`` halved, and every pixel edge at the same place on the
# Sun; the header records what was done.

big_continuum = enhance_map(continuum, progress=False)
big_magnetogram = enhance_map(magnetogram, progress=False)
print(big_continuum.data.shape, big_continuum.scale)
print(big_continuum.meta["history"].splitlines()[-1][:120], "...")

###############################################################################
# Plot the originals, the enhanced maps and their power spectra
# --------------------------------------------------------------
# The power spectra are on a physical frequency axis (per arcsec), so the 0.504 and 0.252 arcsec/pix maps
# can be compared. HMI has no information beyond its Nyquist frequency, 1 / (2 x 0.504") ≈ 1 per arcsec;
# Enhance extrapolates beyond it with what it learnt from simulations.

fig = plt.figure(figsize=(13, 8.5), layout="constrained")
rows = [
    (continuum, big_continuum, Normalize(*np.nanpercentile(big_continuum.data, [0.5, 99.5])), "continuum"),
    (magnetogram, big_magnetogram, Normalize(-1500, 1500), "magnetogram"),  # G: network visible, umbra saturated
]
for row, (small, big, norm, label) in enumerate(rows):
    for col, (m, title) in enumerate(((small, "HMI"), (big, "Enhance x2"))):
        ax = fig.add_subplot(2, 3, 3 * row + col + 1, projection=m)
        m.plot(axes=ax, title=f"{title} {label}", cmap="gray", norm=norm)
        ax.coords[0].set_axislabel("Solar-X")
        ax.coords[1].set_axislabel("Solar-Y" if col == 0 else " ")
    ax = fig.add_subplot(2, 3, 3 * row + 3)
    for m, name, style_line in ((small, "HMI", "k-"), (big, "Enhance x2", "C3-")):
        scale = abs(m.scale.axis1.to_value(u.arcsec / u.pix))  # a pixel size: CDELT1 < 0 on a mirrored map
        freq, power = azimuthal_power_spectrum(np.nan_to_num(np.asarray(m.data, float)))
        ax.loglog(freq[1:] / scale, power[1:] * scale**2, style_line, label=name)
    ax.axvline(1 / (2 * 0.504), color="0.6", lw=0.8, label="HMI Nyquist")
    ax.set_xlabel("spatial frequency [1/arcsec]")
    unit = small.unit.to_string() or "I/Ic"
    ax.set_ylabel(f"power [({unit})$^2$ arcsec$^2$]")
    ax.set_title(f"{label}: azimuthal power spectrum")
    ax.legend()
fig.suptitle(f"Enhance on {source}")
plt.show()
