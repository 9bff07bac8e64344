"""
Denoising measurements shared by the benchmarks and the tests (numpy in, dicts of floats out).

A sibling of `sunpy_nn.validation` (which holds `~sunpy_nn.validation.rms`,
`~sunpy_nn.validation.stokes_error_summary` and the power-spectrum helpers these use): the per-Stokes errors of a
denoiser and a baseline against a known truth (`stokes_errors`) and the quality bars they are judged by
(`denoising_bars`), the calibration of a returned uncertainty (`calibration_summary`), mean power spectra of named
image stacks (`power_spectra`), and the noise and power of a single image before and after (`single_image_noise`).

Examples
--------
>>> import numpy as np
>>> from sunpy_nn.validation_denoise import denoising_bars, stokes_errors
>>> truth = np.zeros((2, 4, 3, 16, 16))
>>> noise = np.random.default_rng(0).normal(0, 0.01, truth.shape)
>>> r = stokes_errors(truth + noise, truth + noise / 20, truth + noise / 2, truth, np.full(truth.shape, 0.001), 0.01)
>>> round(r["V"]["rms_input"] / r["V"]["rms_n2n"], 6), round(r["V"]["residual_std_over_noise"], 2)
(20.0, 0.93)
>>> denoising_bars(r, 0.01)
{'bar_rms_pass': True, 'bar_residual_pass': True, 'bar_beats_pca_pass': True}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from sunpy_nn.metrics import azimuthal_power_spectrum, coverage
from sunpy_nn.validation import band_mean_power, mean_power_spectrum, rms

__all__ = ["calibration_summary", "denoising_bars", "power_spectra", "single_image_noise", "stokes_errors"]

_QUV = ((1, "Q"), (2, "U"), (3, "V"))


def stokes_errors(
    noisy: np.ndarray, denoised: np.ndarray, baseline: np.ndarray, truth: np.ndarray, sigma: np.ndarray, noise: float
) -> dict[str, dict]:
    """
    Errors of a denoised Stokes cube and of a baseline against the truth, for Stokes Q, U and V.

    Parameters
    ----------
    noisy, denoised, baseline, truth : numpy.ndarray
        Canonical ``(time, stokes I/Q/U/V, ...)`` arrays of the same shape: the input, the denoiser's output, a
        baseline's output (PCA in the benchmark) and the noise-free truth.
    sigma : numpy.ndarray
        The denoiser's standard uncertainty, same shape.
    noise : float
        The injected noise standard deviation, in the unit of ``truth``.

    Returns
    -------
    dict
        For ``"Q"``, ``"U"`` and ``"V"``: ``rms_input``, ``rms_n2n``, ``rms_pca`` (rms error of the input, the
        denoiser and the baseline), ``residual_std`` (std of ``noisy - denoised``) and its ratio to ``noise``, the
        rms errors over the "strong" pixels ``|truth| > 3 noise`` (None where there are none) and their fraction,
        ``frac_within_1sigma`` and ``frac_within_2sigma`` (`sunpy_nn.metrics.coverage`), ``median_sigma`` and
        ``frames_averaged_equivalent`` (``(noise / rms_n2n)**2``: the frames one would average for that error).
    """
    res = {}
    for s, name in _QUV:
        err = denoised[:, s] - truth[:, s]
        err_pca = baseline[:, s] - truth[:, s]
        resid = noisy[:, s] - denoised[:, s]
        strong = np.abs(truth[:, s]) > 3 * noise
        within = coverage(denoised[:, s], truth[:, s], sigma[:, s])
        res[name] = {
            "rms_input": rms(noisy[:, s] - truth[:, s]),
            "rms_n2n": rms(err),
            "rms_pca": rms(err_pca),
            "residual_std": float(resid.std()),
            "residual_std_over_noise": float(resid.std() / noise),
            "rms_n2n_strong_pixels": rms(err[strong]) if strong.any() else None,
            "rms_pca_strong_pixels": rms(err_pca[strong]) if strong.any() else None,
            "fraction_strong_pixels": float(strong.mean()),
            "frac_within_1sigma": within[0],
            "frac_within_2sigma": within[1],
            "median_sigma": float(np.median(sigma[:, s])),
            "frames_averaged_equivalent": float((noise / rms(err)) ** 2),
        }
    return res


def denoising_bars(stokes: Mapping[str, Mapping], noise: float) -> dict[str, bool]:
    """
    The quality bars of issue 4 on the per-Stokes errors of `stokes_errors`.

    Parameters
    ----------
    stokes : mapping
        `stokes_errors`'s result (one dict per Stokes parameter).
    noise : float
        The injected noise standard deviation.

    Returns
    -------
    dict
        ``bar_rms_pass``: the worst ``rms_n2n`` is at most ``noise / 5`` (the paper's 6e-4 for 3e-3 noise);
        ``bar_residual_pass``: every ``residual_std_over_noise`` is within 10 % of 1 (the denoiser removes the
        noise and no more); ``bar_beats_pca_pass``: ``rms_n2n < rms_pca`` for every Stokes parameter.

    References
    ----------
    .. [1] Díaz Baso, C. J., de la Cruz Rodríguez, J. and Danilovic, S., "Solar image denoising with convolutional
       neural networks", A&A 629, A99 (2019).
    """
    worst = max(r["rms_n2n"] for r in stokes.values())
    return {
        "bar_rms_pass": worst <= noise / 5,
        "bar_residual_pass": all(abs(r["residual_std_over_noise"] - 1) <= 0.1 for r in stokes.values()),
        "bar_beats_pca_pass": all(r["rms_n2n"] < r["rms_pca"] for r in stokes.values()),
    }


def calibration_summary(
    denoised: np.ndarray,
    truth: np.ndarray,
    sigma: np.ndarray,
    denoised_total: np.ndarray,
    sigma_total: np.ndarray,
    mc_samples: int,
) -> dict[str, dict]:
    """
    Calibration of a denoiser's uncertainty on Stokes Q, U and V: aleatoric on every scan and on the first few,
    and "total" (aleatoric and MC dropout) on those few.

    Parameters
    ----------
    denoised, truth, sigma : numpy.ndarray
        Canonical ``(time, stokes I/Q/U/V, ...)`` output, truth and aleatoric uncertainty, same shape.
    denoised_total, sigma_total : numpy.ndarray
        Output and total uncertainty of the first ``n`` scans (``n = denoised_total.shape[0]``).
    mc_samples : int
        The MC-dropout passes of the total uncertainty (recorded).

    Returns
    -------
    dict
        ``aleatoric_all_scans``, ``aleatoric_2_scans`` (the first ``n`` scans, named for the benchmark's two) and
        ``total_2_scans``: each with ``frac_within_1sigma`` and ``frac_within_2sigma`` (`sunpy_nn.metrics.coverage`,
        ideal 68.3 % and 95.4 %), the last two with ``median_sigma``, the last with ``mc_samples`` first.
    """
    n = denoised_total.shape[0]
    every = coverage(denoised[:, 1:], truth[:, 1:], sigma[:, 1:])
    first = coverage(denoised[:n, 1:], truth[:n, 1:], sigma[:n, 1:])
    total = coverage(denoised_total[:, 1:], truth[:n, 1:], sigma_total[:, 1:])
    return {
        "aleatoric_all_scans": {"frac_within_1sigma": every[0], "frac_within_2sigma": every[1]},
        "aleatoric_2_scans": {
            "frac_within_1sigma": first[0],
            "frac_within_2sigma": first[1],
            "median_sigma": float(np.median(sigma[:n, 1:])),
        },
        "total_2_scans": {
            "mc_samples": mc_samples,
            "frac_within_1sigma": total[0],
            "frac_within_2sigma": total[1],
            "median_sigma": float(np.median(sigma_total[:, 1:])),
        },
    }


def power_spectra(curves: Mapping[str, np.ndarray], pixel_scale: float) -> dict[str, list]:
    """
    Mean azimuthal power spectrum of each named stack of frames (`sunpy_nn.validation.mean_power_spectrum`).

    Parameters
    ----------
    curves : mapping of str to numpy.ndarray
        Stacks ``(n, ny, nx)`` of frames of the same shape.
    pixel_scale : float
        Arcsec per pixel.

    Returns
    -------
    dict
        Each name's mean power, as a list, then ``freq_per_arcsec``: the frequencies in arcsec^-1.
    """
    spectra = {}
    for name, frames in curves.items():
        freq, power = mean_power_spectrum(frames)
        spectra[name] = power.tolist()
    spectra["freq_per_arcsec"] = (freq / pixel_scale).tolist()
    return spectra


def single_image_noise(
    image: np.ndarray,
    denoised: np.ndarray,
    sigma: np.ndarray,
    bands: Sequence[tuple[float, float]],
    estimate: Callable[[np.ndarray], float],
    block: int = 64,
) -> dict:
    """
    Noise and power of one image before and after denoising, where no truth is known.

    Parameters
    ----------
    image, denoised, sigma : numpy.ndarray
        A square 2-D image, its denoised version and the returned standard uncertainty.
    bands : sequence of (float, float)
        Frequency bands in pixel^-1 for the mean power (`sunpy_nn.validation.band_mean_power`).
    estimate : callable
        A noise estimator of a 2-D array (the benchmark passes `sunpy_nn.denoise.estimate_noise`, which this bottom
        layer cannot import).
    block : int
        Side of the blocks whose smallest std is a rough, signal-inclusive upper bound of the noise.

    Returns
    -------
    dict
        ``std_input``, ``std_output``, ``std_residual`` (residual = image - denoised), ``estimate_noise_input``,
        ``..._output``, ``..._residual``, ``median_sigma``, ``std_quietest_64px_block``, ``power_bands_per_pix`` (per
        band: the mean power of input, output and residual) and ``power_spectra`` (``freq_per_pix``, ``input``,
        ``output``, ``residual``).
    """
    resid = image - denoised
    n = image.shape[0]
    f, p_in = azimuthal_power_spectrum(image)
    _, p_out = azimuthal_power_spectrum(denoised)
    _, p_res = azimuthal_power_spectrum(resid)
    means = {key: band_mean_power(f, p, bands) for key, p in (("input", p_in), ("output", p_out), ("residual", p_res))}
    blocks = [
        image[i : i + block, j : j + block].std()
        for i in range(0, n - block + 1, block)
        for j in range(0, n - block + 1, block)
    ]
    return {
        "std_input": float(image.std()),
        "std_output": float(denoised.std()),
        "std_residual": float(resid.std()),
        "estimate_noise_input": estimate(image),
        "estimate_noise_output": estimate(denoised),
        "estimate_noise_residual": estimate(resid),
        "median_sigma": float(np.median(sigma)),
        "std_quietest_64px_block": float(min(blocks)),
        "power_bands_per_pix": {band: {key: m[band] for key, m in means.items()} for band in means["input"]},
        "power_spectra": {
            "freq_per_pix": f.tolist(),
            "input": p_in.tolist(),
            "output": p_out.tolist(),
            "residual": p_res.tolist(),
        },
    }
