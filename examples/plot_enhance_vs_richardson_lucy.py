"""
===========================================
Enhance against Richardson-Lucy
===========================================

The Enhance paper compares the network with the classical way of sharpening an image whose point spread
function is known: Richardson-Lucy deconvolution (`sunpy_nn.baselines.richardson_lucy`, bilinear x2 upsampling
then iterations with HMI's PSF). Here both restore an HMI-like image whose truth we know, so we can measure
them: the scene is degraded with HMI's PSF to 0.504 arcsec/pix (the input) and with the diffraction pattern of a
28 cm telescope to 0.252 arcsec/pix (the truth Enhance was trained to produce), as in the Enhance paper.

The scene is a synthetic granulation (`sunpy_nn.data.synthetic.granulation`), so the example runs anywhere,
offline.
"""

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter
from scipy import ndimage

from sunpy_nn.baselines import richardson_lucy
from sunpy_nn.data.synthetic import granulation
from sunpy_nn.enhance import enhance_array, load_enhance_model
from sunpy_nn.metrics import azimuthal_power_spectrum, psnr, rms_contrast, ssim
from sunpy_nn.psf import airy_psf, degrade, hmi_psf

###############################################################################
# The scene
# ---------
# 512 x 512 pixels of 0.063 arcsec, eight times finer than HMI's pixel, with periodic boundaries. We compare
# only HMI pixels at least 8 pixels (4") from the edges, away from the wrap-around of the periodic convolutions.

HMI = 0.504  # arcsec/pix
name, scale = "synthetic granulation", 0.063
scene = granulation((512, 512), scale, seed=4).astype(np.float64)
rows = cols = slice(8, 56)

low = degrade(scene, scale, hmi_psf(scale), HMI, noise=1e-3, seed=1)  # the paper's 1e-3 Ic noise
truth = degrade(
    scene, scale, airy_psf(28 * u.cm, 6173 * u.AA, scale), HMI / 2, shape=(2 * low.shape[0], 2 * low.shape[1])
)
inside = (slice(2 * rows.start, 2 * rows.stop), slice(2 * cols.start, 2 * cols.stop))
print(f"{name}: input {low.shape} px, compared region {low[rows, cols].shape} HMI px")

###############################################################################
# Restore it both ways
# --------------------
# `~sunpy_nn.enhance.enhance_array` is the numpy-in, numpy-out form of `~sunpy_nn.enhance_map` for images
# already in I/Ic. Richardson-Lucy has one knob, the number of iterations: too few leave the image blurred, too
# many amplify the noise. We scan it and score everything against the truth.

model, info = load_enhance_model(None, "intensity")
enhanced = enhance_array(low, model, progress=False)
bicubic = ndimage.zoom(low, 2, order=3, grid_mode=True, mode="reflect")  # more pixels, no more resolution

ref = truth[inside]
drange = float(ref.max() - ref.min())
iterations = [2, 5, 10, 20, 30, 50, 100, 200]
rl = {n: richardson_lucy(low, iterations=n, pixel_scale=HMI) for n in iterations}
rl_psnr = {n: psnr(img[inside], ref, drange) for n, img in rl.items()}
best = max(rl_psnr, key=rl_psnr.get)
scores = {
    "bicubic": bicubic,
    "Richardson-Lucy, 20 iterations": rl[20],
    f"Richardson-Lucy, best ({best} it.)": rl[best],
    "Enhance": enhanced,
}
for label, img in scores.items():
    print(
        f"{label:34s} PSNR {psnr(img[inside], ref, drange):6.2f} dB  SSIM {ssim(img[inside], ref, drange):.3f}  "
        f"contrast {100 * rms_contrast(img[inside]):.1f} %"
    )
print(
    f"{'truth (28 cm)':34s} contrast {100 * rms_contrast(ref):.1f} %; input {100 * rms_contrast(low[rows, cols]):.1f} %"
)

###############################################################################
# Images
# ------
# A square part of the compared region, on one intensity scale.

n = min(rows.stop - rows.start, cols.stop - cols.start)
show = (slice(rows.start, rows.start + n), slice(cols.start, cols.start + n))
show2 = tuple(slice(2 * s.start, 2 * s.stop) for s in show)
fig, axes = plt.subplots(2, 3, figsize=(12, 8.6), layout="constrained", sharex=True, sharey=True)
vmin, vmax = np.percentile(ref, [0.5, 99.5])
panels = [("HMI-like input", low[show], HMI)] + [(k, v[show2], HMI / 2) for k, v in scores.items()]
panels.append(("truth: 28 cm telescope", truth[show2], HMI / 2))
for ax, (title, img, s) in zip(axes.flat, panels, strict=True):
    im = ax.imshow(
        img, origin="lower", cmap="gray", vmin=vmin, vmax=vmax, extent=[0, img.shape[1] * s, 0, img.shape[0] * s]
    )
    ax.set_title(title, fontsize=11)
for ax in axes[1]:
    ax.set_xlabel("arcsec")
for ax in axes[:, 0]:
    ax.set_ylabel("arcsec")
fig.colorbar(im, ax=axes, shrink=0.8, label="I / Ic")
fig.suptitle(name)

###############################################################################
# Scores and power spectra
# ------------------------
# Richardson-Lucy has to be stopped at the right iteration; Enhance has no knob to tune. On the left, the PSNR
# of Enhance against Richardson-Lucy's curve; on the right, how far each method restores the power that HMI's
# PSF suppressed, up to HMI's Nyquist frequency (grey line) and beyond. Here Richardson-Lucy is still improving
# at the end of the scan (its best is the last iteration count, printed above), because it deconvolves with
# exactly the PSF that made the input and the noise is low. On real data the PSF is not known that well and
# many iterations amplify the noise (see the magnetogram part of the :ref:`validation report
# <sunpy_nn-validation>`).

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
ax1.semilogx(iterations, [rl_psnr[n] for n in iterations], "o-", label="Richardson-Lucy")
ax1.axhline(psnr(enhanced[inside], ref, drange), color="C3", label="Enhance")
ax1.axhline(psnr(bicubic[inside], ref, drange), color="0.5", ls="--", label="bicubic")
ax1.set_xlabel("Richardson-Lucy iterations")
ax1.set_ylabel("PSNR against the truth [dB]")
ax1.legend()
spectra = [("input", low[rows, cols], HMI, "k:"), ("RL 20 it.", rl[20][inside], HMI / 2, "C0-")]
spectra += [("Enhance", enhanced[inside], HMI / 2, "C3-"), ("truth", ref, HMI / 2, "k-")]
for label, img, s, style in spectra:
    freq, power = azimuthal_power_spectrum(img)
    ax2.loglog(freq[1:] / s, power[1:] * s**2, style, label=label)
ax2.axvline(1 / (2 * HMI), color="0.6", lw=0.8)  # HMI's Nyquist frequency
ax2.xaxis.set_minor_formatter(NullFormatter())
ax2.set_xticks([0.2, 0.5, 1, 2], ["0.2", "0.5", "1", "2"])
ax2.set_xlabel("spatial frequency [1/arcsec]")
ax2.set_ylabel("power [(I/Ic)$^2$ arcsec$^2$]")
ax2.legend()

###############################################################################
# Real data
# ---------
# Earlier versions of this page used the held-out quarter of the MURaM quiet-Sun simulation of the Enhance
# paper (from ``cdiazbas/enhance``) as the scene. That comparison, and the same one on held-out real frames from
# 1-m-class telescopes (an SST/CRISP sunspot, Sunrise/IMaX quiet Sun and a BBSO GST/NIRIS magnetogram), with
# Richardson-Lucy at several iteration counts, is in the :ref:`validation report <sunpy_nn-validation>`. On
# your own HMI data there is no truth to score against, but both methods run on any map; for example on a
# region of a continuum image fetched with `sunpy.net.Fido` (``pip install "sunpy[net]"``):
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
#     from sunpy_nn.baselines import richardson_lucy
#
#     result = Fido.search(
#         a.Time("2014-02-04 00:00:00", "2014-02-04 00:00:45"), a.Instrument.hmi, a.Physobs.intensity
#     )  # the VSO's copy of hmi.Ic_45s
#     hmi = sunpy.map.Map(Fido.fetch(result)[0])
#     region = hmi.submap(
#         SkyCoord(-100 * u.arcsec, -100 * u.arcsec, frame=hmi.coordinate_frame),
#         top_right=SkyCoord(100 * u.arcsec, 100 * u.arcsec, frame=hmi.coordinate_frame),
#     )
#     enhanced = enhance_map(region)
#     deconvolved = richardson_lucy(region, iterations=20)

# sphinx_gallery_thumbnail_number = 1
plt.show()
