"""
==============================================
Train Enhance on your own high-resolution data
==============================================

`sunpy_nn.train_enhance` trains an Enhance network with the recipe of the shipped weights on any
high-resolution images you have (simulation snapshots, or observations from a larger telescope): it degrades
them to HMI-like inputs at 0.504 arcsec/pix (by default under a randomised HMI degradation: PSF, detector,
noise, sampling phase, rotation) and with a 28 cm telescope's diffraction pattern to 0.252 arcsec/pix for the
targets, holds out the right quarter of every image for validation, and returns the weights of the best epoch.

This example trains a small network briefly on a synthetic granulation (`sunpy_nn.data.synthetic.granulation`),
scores it on the held-out quarter and uses it with `sunpy_nn.enhance_map`. A real training uses the defaults
(depth 5, 64 filters, 50,000 pairs, 20 epochs: hours on a CPU, minutes on a GPU); see :doc:`../../guide/training`.
"""

import tempfile
import time
from pathlib import Path

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

from sunpy_nn import enhance_map, train_enhance
from sunpy_nn.data import save_weights
from sunpy_nn.data.synthetic import granulation, synthetic_hmi_map
from sunpy_nn.enhance import enhance_array, load_enhance_model
from sunpy_nn.metrics import psnr
from sunpy_nn.psf import airy_psf, degrade, hmi_psf

###############################################################################
# The high-resolution images
# --------------------------
# Continuum images must be normalised to the quiet Sun (I/Ic); magnetograms must be in kG.

name, scale = "synthetic granulation", 0.063
scene = granulation((1000, 1000), scale, seed=7).astype(np.float64)
print(f"{name}: {scene.shape} px of {scale} arcsec")

###############################################################################
# Train
# -----
# A deliberately small and short run: depth 2 and 16 filters instead of 5 and 64, 24-pixel input patches, 500
# training pairs, flipped and turned at random (``augment=True``), for 8 epochs with a cosine learning-rate
# schedule. ``checkpoint_dir=`` would make it resumable.

t0 = time.perf_counter()
model, history = train_enhance(
    scene,
    pixel_scale=scale * u.arcsec / u.pix,
    kind="intensity",
    depth=2,
    n_filters=16,
    input_size=24,
    validation_size=16,
    n_patches=500,
    n_validation=100,
    epochs=8,
    lr=3e-3,
    schedule="cosine",
    augment=True,
    seed=0,
    progress=False,
)
elapsed = time.perf_counter() - t0
print(f"pairs made and network trained in {elapsed:.0f} s; best epoch {history['best_epoch']}, ", end="")
print(f"validation loss {min(history['val_loss']):.3g}")

###############################################################################
# Check it on the held-out quarter
# --------------------------------
# The right quarter of the image never reached training. We degrade the whole image with the paper's fixed
# operator (HMI's modified PSF, 1e-3 Ic noise) and score the new network, the shipped one and bicubic
# interpolation against the 28 cm target there.

low = degrade(scene, scale, hmi_psf(scale), 0.504, noise=1e-3, seed=3)
target = degrade(
    scene, scale, airy_psf(28 * u.cm, 6173 * u.AA, scale), 0.252, shape=(2 * low.shape[0], 2 * low.shape[1])
)
first = int(np.ceil(0.75 * scene.shape[1] * scale / 0.504)) + 1  # first HMI column wholly held out
held_out = np.s_[16:-16, 2 * first : -8]
results = {
    "bicubic": ndimage.zoom(low, 2, order=3, grid_mode=True, mode="reflect"),
    "this network": enhance_array(low, model, progress=False),
    "shipped weights": enhance_array(low, load_enhance_model(None, "intensity")[0], progress=False),
}
ref = target[held_out]
drange = float(ref.max() - ref.min())
scores = {k: psnr(v[held_out], ref, drange) for k, v in results.items()}
for k, v in scores.items():
    print(f"{k:16s} PSNR {v:.2f} dB")

fig, axes = plt.subplots(2, 3, figsize=(12.5, 8.8), layout="constrained")
epochs = np.arange(1, len(history["train_loss"]) + 1)
axes[0, 0].semilogy(epochs, history["train_loss"], "o-", label="training")
axes[0, 0].semilogy(epochs, history["val_loss"], "s-", label="validation (held out)")
axes[0, 0].set_xticks(epochs)
axes[0, 0].set_xlabel("epoch")
axes[0, 0].set_ylabel("MSE [(I/Ic)$^2$]")
axes[0, 0].set_title("loss")
axes[0, 0].legend()
vmin, vmax = np.percentile(ref, [0.5, 99.5])
n = min(64, ref.shape[1])  # a square part of the held-out strip, in 0.252" pixels
hmi_part = low[held_out[0].start // 2 :, first:][: n // 2, : n // 2]
panels = [("HMI-like input", hmi_part, 0.504)]
panels += [(title, img[held_out][:n, :n], 0.252) for title, img in [*results.items(), ("28 cm target", target)]]
for ax, (title, img, s) in zip(axes.flat[1:], panels, strict=True):
    extent = [0, img.shape[1] * s, 0, img.shape[0] * s]
    im = ax.imshow(img, origin="lower", cmap="gray", vmin=vmin, vmax=vmax, extent=extent)
    ax.set_title(f"{title}, {scores[title]:.2f} dB" if title in scores else title)
    ax.set_xlabel("arcsec")
fig.colorbar(im, ax=axes[:, 1:], label="I / Ic", shrink=0.8)
fig.suptitle(f"A small Enhance trained briefly on a {name}, scored on its held-out quarter")

###############################################################################
# Save it and use it on a map
# ---------------------------
# `sunpy_nn.data.save_weights` writes the weights and a model card (a JSON file with the training recipe and
# the SHA-256 of the weights). ``enhance_map(..., weights=path)`` loads them, checks the SHA-256 and records it
# in the header of the result. The maps are shown divided by the quiet-Sun level of the input.

with tempfile.TemporaryDirectory() as tmp:
    card = {"kind": "intensity", "training_data": name, "training_recipe": history["recipe"]}
    path = save_weights(model, Path(tmp) / "my_enhance.pt", card=card)
    hmi, truth = synthetic_hmi_map((96, 96), seed=5)
    mine = enhance_map(hmi, weights=path, progress=False)
print(mine.meta["snnmodel"], mine.meta["snnsha"][:16], mine.data.shape)

qs = float(np.median(hmi.data))
fig = plt.figure(figsize=(14, 4.6), layout="constrained")
maps = ((hmi, 'HMI-like map, 0.504"/pix'), (mine, "enhanced with my_enhance.pt"), (truth, "truth (28 cm)"))
for i, (m, title) in enumerate(maps):
    ax = fig.add_subplot(1, 3, i + 1, projection=m)
    im = ax.imshow(m.data / qs, origin="lower", cmap="gray", vmin=vmin, vmax=vmax)
    ax.set_title(title)
    ax.coords[0].set_axislabel("Solar-X")
    ax.coords[1].set_axislabel("Solar-Y" if i == 0 else " ")
fig.colorbar(im, ax=fig.axes, label="I / Ic", shrink=0.85)

###############################################################################
# Real data
# ---------
# Earlier versions of this page trained on the MURaM quiet-Sun simulation of the Enhance paper (from
# ``cdiazbas/enhance``). How the shipped weights were trained is in :doc:`../../guide/training` and their model
# cards; the :ref:`validation report <sunpy_nn-validation>` scores them on the held-out quarters of real frames
# from 1-m-class telescopes (an SST/CRISP sunspot, Sunrise/IMaX quiet Sun and a BBSO GST/NIRIS magnetogram) and
# of MURaM, and on real HMI cut-outs. To try your own weights on real HMI data, fetch a map with
# `sunpy.net.Fido` (``pip install "sunpy[net]"``):
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
#         a.jsoc.Series("hmi.Ic_45s"),
#         a.jsoc.Notify("you@example.org"),  # JSOC exports need a registered e-mail address
#     )
#     hmi = sunpy.map.Map(Fido.fetch(result)[0])
#     region = hmi.submap(
#         SkyCoord(-100 * u.arcsec, -100 * u.arcsec, frame=hmi.coordinate_frame),
#         top_right=SkyCoord(100 * u.arcsec, 100 * u.arcsec, frame=hmi.coordinate_frame),
#     )
#     enhanced = enhance_map(region, weights="my_enhance.pt")

# sphinx_gallery_thumbnail_number = 1
plt.show()
