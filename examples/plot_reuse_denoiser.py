"""
=================================================
Fit a Denoiser once, reuse it on another cube
=================================================

Training is most of the cost of Noise2Noise denoising. For a series of observations with the same instrument
setup (same line, same noise level), train a `~sunpy_nn.Denoiser` once, save it, and denoise the other cubes
without training, or with a short warm start.

Both cubes here are synthetic SST/CRISP-like observations (`sunpy_nn.data.synthetic.synthetic_crisp_cube`) of
different patches of the Sun, with the same noise, so that the result can be checked against the truth.
"""

import json
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sunpy_nn import Denoiser, denoise_cube
from sunpy_nn.data.synthetic import synthetic_crisp_cube

###############################################################################
# Train on a first observation and save the denoiser
# --------------------------------------------------
# `~sunpy_nn.Denoiser.save` writes the network, the mode, the noise level of each Stokes parameter and the
# training settings and losses (``.pt``), and a model card (``.json``) with the SHA-256 of the weights.
# (A short training, to keep this page fast; see :doc:`../../guide/denoise` for real settings.)

cube_a, truth_a = synthetic_crisp_cube(64, n_wavelengths=7, n_scans=4, seed=1)
cube_b, truth_b = synthetic_crisp_cube(64, n_wavelengths=7, n_scans=4, seed=2, center=(200.0, -80.0))

t0 = time.perf_counter()
den = Denoiser(mode="image").fit(
    cube_a, epochs=4, patches_per_epoch=400, patch_size=32, lr=1e-3, seed=0, progress=False
)
fit_time = time.perf_counter() - t0

tmp = tempfile.TemporaryDirectory()
path = den.save(Path(tmp.name) / "crisp_6302.pt")
card = json.loads(path.with_suffix(".json").read_text())
print(path.name, {k: card[k] for k in ("mode", "noise", "sha256")})

###############################################################################
# Load it and denoise the second observation
# ------------------------------------------
# `~sunpy_nn.Denoiser.load` checks the file against the SHA-256 of its model card. Prediction uses the stored
# noise levels, so the new cube should have the same noise as the training cube. ``denoise_cube(cube,
# denoiser=...)`` does the same as ``Denoiser.predict`` and trains nothing.

loaded = Denoiser.load(path)
t0 = time.perf_counter()
clean_b = denoise_cube(cube_b, denoiser=loaded, progress=False)
predict_time = time.perf_counter() - t0
print(f"training took {fit_time:.1f} s, denoising the second cube {predict_time:.1f} s")

###############################################################################
# A warm start
# ------------
# ``fit`` on a loaded denoiser continues training from its weights on the new cube (and re-estimates the noise
# levels), here for one short epoch. Compare the rows printed below: whether a warm start lowers the error
# depends on how much the new cube differs from the training cube; here both share the instrument setup.

warm = Denoiser.load(path).fit(cube_b, epochs=1, patches_per_epoch=400, patch_size=32, lr=1e-3, seed=1, progress=False)
clean_warm = warm.predict(cube_b, progress=False)
tmp.cleanup()


def rms_error(data, truth, s):
    return float(np.sqrt(np.mean((np.asarray(data)[:, s] - truth[:, s]) ** 2)))


rows = {
    "noisy": cube_b.data,
    "reused (no training)": clean_b.data,
    "reused + 1 warm epoch": clean_warm.data,
}
for label, data in rows.items():
    print(
        f"{label:24s}"
        + "  ".join(f"{st}: {rms_error(data, truth_b, s):.2e}" for s, st in ((1, "Q"), (2, "U"), (3, "V")))
    )

###############################################################################
# Plot
# ----
fig, axes = plt.subplots(2, 2, figsize=(11, 9.5), layout="constrained")
x = np.arange(3)
ax = axes[0, 0]
for i, (label, data) in enumerate(rows.items()):
    ax.bar(x + (i - 1) * 0.27, [rms_error(data, truth_b, s) for s in (1, 2, 3)], 0.27, label=label)
ax.set_xticks(x, ["Q", "U", "V"])
ax.set_ylabel("rms error against the truth [Ic]")
ax.set_title("second cube: error per Stokes parameter")
ax.legend(fontsize=9)
w = int(np.argmax(np.abs(truth_b[0, 3]).mean(axis=(1, 2))))
panels = (("noisy", cube_b.data), ("denoised by the reused model", clean_b.data), ("truth", truth_b))
for ax, (title, data) in zip(axes.flat[1:], panels, strict=True):
    im = ax.imshow(np.asarray(data)[0, 3, w], origin="lower", cmap="RdBu_r", vmin=-0.012, vmax=0.012)
    ax.set_title(f"Stokes V, {title}", fontsize=11)
fig.colorbar(im, ax=list(axes.flat[1:]), label="V / Ic", shrink=0.85)

# sphinx_gallery_thumbnail_number = 1
plt.show()
