"""
==============================================
Train Enhance on your own high-resolution data
==============================================

The shipped Enhance weights were trained on a MURaM quiet-Sun simulation. `sunpy_nn.train_enhance` trains a
network with the paper's recipe on any high-resolution images you have (simulation snapshots, or observations
from a larger telescope): it degrades them with HMI's PSF to 0.504 arcsec/pix for the inputs and with a 28 cm
telescope's diffraction pattern to 0.252 arcsec/pix for the targets, holds out the right quarter of every image
for validation, and returns the weights of the best epoch.

This example trains a small network for a few seconds, on the MURaM snapshot when ``../shared/data`` is
present and otherwise on a synthetic granulation (`sunpy_nn.data.synthetic.granulation`), then uses it with
`sunpy_nn.enhance_map`. A real training uses the defaults (depth 5, 64 filters, 50,000 pairs, 20 epochs: hours
on a CPU, minutes on a GPU); see :doc:`../../guide/training`.
"""

import tempfile
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

try:
    DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "enhance"
except NameError:  # no __file__, e.g. in a notebook
    DATA = Path.cwd().resolve().parents[1] / "shared" / "data" / "enhance"

if (DATA / "muram_qs_continuum_1000.npy").exists():
    name, scale = "MURaM", 0.0662
    scene = np.load(DATA / "muram_qs_continuum_1000.npy").astype(np.float64)
    scene /= scene.mean()
else:
    name, scale = "synthetic granulation", 0.063
    scene = granulation((1000, 1000), scale, seed=7).astype(np.float64)
print(f"{name}: {scene.shape} px of {scale} arcsec")

###############################################################################
# Train
# -----
# A deliberately small and short run: depth 2 and 32 filters instead of 5 and 64, 24-pixel input patches, 2,000
# training pairs for 4 epochs with a cosine learning-rate schedule. ``checkpoint_dir=`` would make it resumable.

model, history = train_enhance(
    scene,
    pixel_scale=scale * u.arcsec / u.pix,
    kind="intensity",
    depth=2,
    n_filters=32,
    input_size=24,
    validation_size=16,
    n_patches=2000,
    n_validation=200,
    epochs=4,
    lr=1e-3,
    schedule="cosine",
    seed=0,
    progress=False,
)
print(f"best epoch {history['best_epoch']}, validation loss {min(history['val_loss']):.3g}")

###############################################################################
# Check it on the held-out quarter
# --------------------------------
# The right quarter of the image never reached training. We degrade the whole image as in training and score
# the new network, the shipped one and bicubic interpolation against the 28 cm target there.

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

fig, axes = plt.subplots(1, 5, figsize=(16, 4), layout="constrained", gridspec_kw={"width_ratios": [1.3, 1, 1, 1, 1]})
epochs = np.arange(1, len(history["train_loss"]) + 1)
axes[0].semilogy(epochs, history["train_loss"], "o-", label="training")
axes[0].semilogy(epochs, history["val_loss"], "s-", label="validation (held out)")
axes[0].set_xticks(epochs)
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("MSE [(I/Ic)$^2$]")
axes[0].legend()
vmin, vmax = np.percentile(ref, [0.5, 99.5])
for ax, (title, img) in zip(axes[1:], [*results.items(), ("28 cm target", target)], strict=True):
    ax.imshow(img[held_out][:64, :64], origin="lower", cmap="gray", vmin=vmin, vmax=vmax)
    ax.set_title(f"{title}\n{scores[title]:.2f} dB" if title in scores else title)
    ax.set_axis_off()
fig.suptitle(f"A small Enhance trained for seconds on {name}, scored on its held-out quarter")

###############################################################################
# Save it and use it on a map
# ---------------------------
# `sunpy_nn.data.save_weights` writes the weights and a model card (a JSON file with the training recipe and
# the SHA-256 of the weights). ``enhance_map(..., weights=path)`` loads them, checks the SHA-256 and records it
# in the header of the result.

with tempfile.TemporaryDirectory() as tmp:
    card = {"kind": "intensity", "training_data": name, "training_recipe": history["recipe"]}
    path = save_weights(model, Path(tmp) / "my_enhance.pt", card=card)
    hmi, truth = synthetic_hmi_map((96, 96), seed=5)
    mine = enhance_map(hmi, weights=path, progress=False)
print(mine.meta["snnmodel"], mine.meta["snnsha"][:16], mine.data.shape)

fig = plt.figure(figsize=(12, 4.2), layout="constrained")
for i, (m, title) in enumerate(((hmi, "HMI-like map"), (mine, "enhanced with my_enhance.pt"), (truth, "truth"))):
    ax = fig.add_subplot(1, 3, i + 1, projection=m)
    m.plot(axes=ax, title=title, cmap="gray")
plt.show()
