"""
=====================================================
Denoise a CRISP-like cube, with uncertainties
=====================================================

`sunpy_nn.denoise_cube` removes the noise of a spectropolarimetric time series with a U-Net trained on the
observation itself (Noise2Noise, Díaz Baso et al. 2019): consecutive scans show nearly the same Sun with
independent noise, so learning to predict one scan from the other learns the clean signal. It returns an
`~ndcube.NDCube` with the same WCS and an uncertainty.

We use a synthetic SST/CRISP-like Fe I 630.25 nm time series (`sunpy_nn.data.synthetic.synthetic_crisp_cube`)
because its noise-free truth is known, so we can check both the denoised profiles and the uncertainty.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.special import erf

from sunpy_nn import Denoiser, denoise_cube
from sunpy_nn.data.synthetic import synthetic_crisp_cube
from sunpy_nn.denoise import auto_temporal

###############################################################################
# The cube
# --------
# Four scans of 4 Stokes parameters x 7 wavelengths x 80 x 80 pixels, with white noise of 3e-3 of the
# continuum intensity. As in real CRISP data, most of the field of view has polarisation signals at the noise
# level; the strongest Stokes V reaches 15 times the noise. The axes are found from the WCS, in any order.

cube, truth = synthetic_crisp_cube(80, n_wavelengths=7, n_scans=4, noise=3e-3, seed=0)
print(cube)

###############################################################################
# Train on the cube and denoise it
# --------------------------------
# ``denoise_cube(cube)`` trains with the paper's settings (10 epochs of 1,000 patches of 52 pixels; a few minutes
# on a CPU), in temporal mode where the series allows it (`~sunpy_nn.denoise.auto_temporal`: with these four scans,
# each scan is predicted from its two neighbours). To keep this page fast we train a `~sunpy_nn.Denoiser` the
# same way but briefly, on fewer and smaller patches, and pass it in. Stokes Q, U and V are denoised; Stokes I
# passes through unchanged unless ``stokes=`` lists it.

denoiser = Denoiser(mode="image", temporal=auto_temporal(cube)).fit(
    cube, epochs=4, patches_per_epoch=400, patch_size=32, lr=1e-3, seed=0, progress=False
)
clean = denoise_cube(cube, denoiser=denoiser, uncertainty="aleatoric", progress=False)
print(clean.meta["sunpy_nn"]["noise"])  # the noise level per Stokes parameter, estimated from the scans

noisy, den, sigma = cube.data, clean.data, clean.uncertainty.array
for s, label in ((1, "Q"), (2, "U"), (3, "V")):
    before = np.sqrt(np.mean((noisy[:, s] - truth[:, s]) ** 2))
    after = np.sqrt(np.mean((den[:, s] - truth[:, s]) ** 2))
    print(f"Stokes {label}: rms error {before:.2e} -> {after:.2e} ({before / after:.1f}x smaller)")

###############################################################################
# Stokes V images
# ---------------
# At the wavelength where V is strongest. The denoised image keeps the flux concentrations and removes the
# noise around them; the uncertainty is largest where the signal is strong and structured.
# The pixels are SST/CRISP's, 0.059 arcsec.

wl = cube.axis_world_coords("em.wl")[0].to_value("Angstrom")
wl = wl - wl[len(wl) // 2]
w = int(np.argmax(np.abs(truth[0, 3]).mean(axis=(1, 2))))
lim = 12e-3
fig, axes = plt.subplots(2, 2, figsize=(10.5, 9.5), layout="constrained", sharex=True, sharey=True)
for ax, (img, title) in zip(axes.flat[:3], ((noisy, "noisy"), (den, "denoised"), (truth, "truth")), strict=True):
    im = ax.imshow(img[0, 3, w], origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"Stokes V, {title}")
fig.colorbar(im, ax=axes[:, 0], label="V / Ic", shrink=0.85)
im = axes[1, 1].imshow(sigma[0, 3, w], origin="lower", cmap="magma", vmin=0)
axes[1, 1].set_title("1-sigma uncertainty of the denoised V")
fig.colorbar(im, ax=axes[:, 1], label="sigma(V) / Ic", shrink=0.85)
for ax in axes[1]:
    ax.set_xlabel("x [pixel]")
for ax in axes[:, 0]:
    ax.set_ylabel("y [pixel]")
fig.suptitle(f"first scan, {wl[w]:+.2f} Å from the line centre")

###############################################################################
# Stokes profiles with uncertainty bands
# --------------------------------------
# Three pixels: the strongest V, a moderate one and a weak one. The band is the denoised value ± the
# predicted 1-sigma uncertainty.

amp = np.abs(truth[0, 3]).max(axis=0)
order = np.argsort(amp.ravel())
pixels = [np.unravel_index(order[int(q * (order.size - 1))], amp.shape) for q in (1.0, 0.98, 0.6)]
fig, axes = plt.subplots(2, 3, figsize=(14, 6.5), layout="constrained", sharex=True)
for col, (y, x) in enumerate(pixels):
    for row, (s, label) in enumerate(((3, "V"), (1, "Q"))):
        ax = axes[row, col]
        d, e = den[0, s, :, y, x], sigma[0, s, :, y, x]
        ax.fill_between(wl, d - e, d + e, color="C3", alpha=0.25, label="denoised ± 1 sigma")
        ax.plot(wl, d, "C3-", lw=2, label="denoised")
        ax.plot(wl, noisy[0, s, :, y, x], "o", color="0.4", ms=4, label="noisy")
        ax.plot(wl, truth[0, s, :, y, x], "k--", label="truth")
        ax.set_ylabel(f"Stokes {label} / Ic")
        axes[0, col].set_title(f"pixel x={x}, y={y}")
        axes[1, col].set_xlabel("wavelength offset [Å]")
axes[0, 0].legend(fontsize=8)

###############################################################################
# What the uncertainty means
# --------------------------
# The aleatoric uncertainty is the network's estimate of the spread of the error of each denoised value, learnt
# from the data. If it is calibrated, the errors divided by it follow a unit normal distribution, and about 68 %
# of them are within 1 sigma. It is an average statement over many pixels, not a guarantee for each one, and it
# does not include the error of the network itself (add it with ``uncertainty="total"``, Monte-Carlo dropout)
# nor systematic errors such as weak, fine structure that the network smoothed away everywhere.
#
# After training, `~sunpy_nn.Denoiser.fit` calibrates it on Noise2Noise pairs, without clean data. In temporal
# mode, as here, the noise the network passes on from the neighbours is measured apart, and the network's own part
# is scaled in six bins of its size (``denoiser.calibration_bins``; finest where it is largest, where the signal is),
# so that the variance matches the error left over by that noise in each bin (a
# single-scan denoiser, ``temporal=0``, has one factor per Stokes parameter and tuning instead,
# ``denoiser.calibration_tunings``).
# The errors are heavier-tailed than a normal distribution, so the fractions printed below can still differ from
# 68 % and 95 %; check the calibration on synthetic data that resemble yours before you rely on it.

z = ((den[:, 1:] - truth[:, 1:]) / sigma[:, 1:]).ravel()
for stokes, bins in denoiser.calibration_bins.items():
    print(f"Stokes {stokes} calibration factor per bin: {np.round(bins['factors'], 2).tolist()}")
print(f"fraction of errors within 1 sigma: {np.mean(np.abs(z) < 1):.2f} (0.68 if calibrated and Gaussian)")
print(f"fraction of errors within 2 sigma: {np.mean(np.abs(z) < 2):.2f} (0.95 if calibrated and Gaussian)")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
bins = np.linspace(-5, 5, 81)
ax1.hist(z, bins=bins, density=True, histtype="step", lw=2, label="(denoised - truth) / sigma, Q U V")
ax1.plot(bins, np.exp(-(bins**2) / 2) / np.sqrt(2 * np.pi), "k--", label="unit normal")
ax1.set_yscale("log")
ax1.set_ylim(1e-4, 1)
ax1.set_xlabel("normalised error")
ax1.set_ylabel("probability density")
ax1.legend(fontsize=9)
k = np.linspace(0, 4, 41)
ax2.plot(k, [np.mean(np.abs(z) < x) for x in k], "C0-", lw=2, label="denoised, Q U V")
ax2.plot(k, erf(k / np.sqrt(2)), "k--", label="unit normal")
ax2.set_xlabel("k")
ax2.set_ylabel("fraction of errors within k sigma")
ax2.legend(fontsize=9)

# sphinx_gallery_thumbnail_number = 1
plt.show()
