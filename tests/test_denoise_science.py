"""
The science of the denoiser (issue 14): noise estimates that granulation does not bias, strong signals kept,
an uncertainty calibrated on held-out Noise2Noise pairs, and the temporal mode.

The quality targets themselves (rms error at most 0.2 x the noise, coverage 68 / 95 %) are measured at full
training length by ``benchmarks/denoise_science.py``; these tests use short trainings and check the mechanisms.
"""

import json
import sys

import numpy as np
import pytest
import torch
from ndcube import NDCube
from scipy import ndimage

from sunpy_nn import Denoiser
from sunpy_nn.data.synthetic import synthetic_crisp_cube
from sunpy_nn.denoise import estimate_noise, temporal_neighbours
from sunpy_nn.nn import UNet
from sunpy_nn.nn.optimize import FastUNet

from .helpers import short_denoise_cube_training

NOISE = 3e-3


@pytest.fixture(scope="module")
def strong_cube():
    """A CRISP-like series with kG fields: Stokes V above 3 sigma in about a fifth of the pixels."""
    return synthetic_crisp_cube(64, n_wavelengths=5, n_scans=6, v_peak=60, qu_peak=30, seed=3)


def correlated(truth: np.ndarray, seed: int = 5) -> np.ndarray:
    """Noise of rms NOISE correlated over ~1 px (a Gaussian of sigma 1 px), as after image restoration."""
    n = ndimage.gaussian_filter(np.random.default_rng(seed).normal(0, 1, truth.shape), (0, 0, 0, 1, 1))
    return truth + NOISE * n / n.std()


@pytest.mark.parametrize("noise", ["white", "correlated"])
def test_stokes_i_noise_is_not_biased_by_granulation_evolution(strong_cube, noise):
    cube, truth = strong_cube
    data = np.asarray(cube.data, np.float64) if noise == "white" else correlated(truth)
    temporal = estimate_noise(data[:, 0], method="temporal")
    spatial = estimate_noise(data[:, 0], method="spatial")
    crossed = estimate_noise(data[:, 0], method="cross-calibrated", reference=data[:, 1])
    # scan differences see the evolving granulation (the issue measured 4.8e-3 for 3e-3)
    assert temporal > 1.2 * NOISE
    assert crossed == pytest.approx(NOISE, rel=0.1)
    if noise == "correlated":  # a purely spatial estimate misses correlated noise; the cross-calibration does not
        assert spatial < 0.5 * NOISE
    # polarisation: the plain temporal estimate is right
    assert estimate_noise(data[:, 1]) == pytest.approx(NOISE, rel=0.05)


def test_denoiser_uses_the_cross_calibrated_stokes_i_noise(strong_cube):
    cube, _ = strong_cube
    den = Denoiser(n_filters=4).fit(cube, epochs=1, patches_per_epoch=20, patch_size=16, seed=0, progress=False)
    assert den.noise_methods == {"I": "cross-calibrated", "Q": "temporal", "U": "temporal", "V": "temporal"}
    assert den.noise["I"] == pytest.approx(NOISE, rel=0.1)
    assert den.provenance()["noise_methods"]["I"] == "cross-calibrated"


@pytest.mark.parametrize("sampled", [False, True])
def test_each_scan_difference_is_computed_once(strong_cube, monkeypatch, sampled):
    # Q, U and V's scan differences give their temporal estimates and are Stokes I's references: computed once
    # (they were computed again for Stokes I), with the values of estimate_noise to the last bit.
    import sunpy_nn.metrics
    from sunpy_nn.metrics import _estimate

    cube, _ = strong_cube
    canon = np.array(cube.data, np.float32)  # a copy: the cube is shared by the tests of this module
    canon[2, 1, 0, 5:9, 5:9] = np.nan
    labels = ["I", "Q", "U", "V"]
    calls = []
    real = sunpy_nn.metrics._scan_differences

    def counting(stacks):
        calls.append(len(stacks))
        return real(stacks)

    for module in (sunpy_nn.metrics, sys.modules.get("sunpy_nn.denoise._noise")):
        if module is not None:  # (metrics: where the estimates of the module before issue 15 computed them)
            monkeypatch.setattr(module, "_scan_differences", counting)
    noise, methods = Denoiser()._noise_levels(canon, labels, [1, 2, 3], sampled=sampled)
    assert methods == {"I": "cross-calibrated", "Q": "temporal", "U": "temporal", "V": "temporal"}
    assert len(calls) == 4
    monkeypatch.undo()
    if sampled:  # the frames the noise levels of a lazy cube are sampled from: 4 pairs of scans at 3 wavelengths
        stacks = {s: [canon[t : t + 2, s][:, [0, 2, 4]] for t in (0, 1, 3, 4)] for s in range(4)}
    else:
        stacks = {s: [canon[:, s]] for s in range(4)}
    for s in (1, 2, 3):
        assert noise[labels[s]] == _estimate(stacks[s], "temporal", polarisation=True)
    assert noise["I"] == _estimate(stacks[0], "cross-calibrated", [stacks[1], stacks[2], stacks[3]])
    if not sampled:  # the public function, reference by reference
        crossed = [estimate_noise(canon[:, 0], method="cross-calibrated", reference=canon[:, r]) for r in (1, 2, 3)]
        assert noise["I"] == float(np.median(crossed))
    # no Stokes I to take the references first: each parameter's level and correlation from one computation
    calls.clear()
    for module in (sunpy_nn.metrics, sys.modules.get("sunpy_nn.denoise._noise")):
        if module is not None:
            monkeypatch.setattr(module, "_scan_differences", counting)
    Denoiser()._noise_levels(canon[:, 1:], ["Q", "U", "V"], [0, 1, 2], sampled=sampled, correlation={})
    assert len(calls) == 3


def test_polarisation_noise_is_not_biased_by_changing_fields():
    """Field amplitudes that change ~15 % from scan to scan entered Q/U/V's scan differences: 4-9 % too much noise
    (1.04 on the evolving cube of benchmarks/denoise_science.py, whose bars came out too narrow in both modes). Counted
    over the weakly polarised pixels, the estimate is the noise's own."""
    cube, truth = synthetic_crisp_cube(64, n_wavelengths=5, n_scans=6, v_peak=60, qu_peak=30, seed=3, evolution=0.3)
    data = np.asarray(cube.data, np.float64)
    for s in (1, 2, 3):
        own = estimate_noise(data[:, s] - truth[:, s])  # the noise realisation itself
        assert estimate_noise(data[:, s]) > 1.03 * own  # 1.04-1.08
        assert estimate_noise(data[:, s], polarisation=True) == pytest.approx(own, rel=0.01)
    noise, methods = Denoiser()._noise_levels(np.asarray(cube.data, np.float32), ["I", "Q", "U", "V"], [1, 2, 3])
    assert methods["Q"] == "temporal"
    for label in "IQUV":  # Stokes I: cross-calibrated on those references
        assert noise[label] == pytest.approx(NOISE, rel=0.02 if label == "I" else 0.01)


def test_weakly_polarised_pixels_leave_pure_noise_unbiased():
    """Choosing pixels by the mean of the other scans cannot bias the level of the difference of two scans, whatever
    the noise's distribution; a pair of scans chooses by its own mean, independent of the difference for Gaussian
    noise. It costs little precision where there is no signal: the pixels within 2 sigma of the mean's noise are 95 %
    of them (the weaker half alone scattered the level of a 32 x 32 px frame 1.5 times as much)."""
    rng = np.random.default_rng(0)
    pairs = rng.normal(0, NOISE, (300, 2, 1, 32, 32))
    weak = np.array([estimate_noise(f, polarisation=True) for f in pairs]) / NOISE
    every = np.array([estimate_noise(f) for f in pairs]) / NOISE
    assert weak.mean() == pytest.approx(1.0, abs=3 * weak.std() / np.sqrt(len(weak)))
    assert weak.std() < 1.15 * every.std()
    # Laplace noise over 6 scans (its own mean would choose it 3.4 % low), and tunings of unequal noise (one
    # threshold for both put the level 0.9 % low): the same level as from all pixels, to 0.5 %
    laplace = rng.laplace(0, NOISE / np.sqrt(2), (6, 2, 128, 128))
    assert estimate_noise(laplace, polarisation=True) == pytest.approx(estimate_noise(laplace), rel=0.005)
    profile = rng.normal(0, NOISE, (6, 2, 128, 128)) * np.array([1.0, 0.6])[:, None, None]
    assert estimate_noise(profile, polarisation=True) == pytest.approx(estimate_noise(profile), rel=0.005)
    lost = rng.normal(0, NOISE, (4, 1, 64, 64))
    lost[1, 0, :16] = np.nan  # a scan that lost rows: there the mean of the other scans is over fewer
    assert estimate_noise(lost, polarisation=True) == pytest.approx(estimate_noise(lost), rel=0.03)
    tiny = pairs[0, :, :, :4, :4]  # too few pixels to choose from: all count
    assert estimate_noise(tiny, polarisation=True) == estimate_noise(tiny)
    # the choice depends on the data's unit no more than the level does (I/Ic or percent of it)
    assert estimate_noise(100 * laplace, polarisation=True) == pytest.approx(
        100 * estimate_noise(laplace, polarisation=True), rel=1e-9
    )


def test_stokes_i_noise_without_a_usable_reference():
    rng = np.random.default_rng(2)
    canon = rng.normal(0, NOISE, (3, 4, 2, 24, 24)).astype(np.float32)
    canon[:, 0] += 1.0
    constant_q = canon.copy()
    constant_q[:, 1] = 0.5  # a constant reference cannot calibrate: the others do
    noise, methods = Denoiser()._noise_levels(constant_q, ["I", "Q", "U", "V"], [2, 3])
    assert methods["I"] == "cross-calibrated" and noise["Q"] == 0.0
    crossed = [estimate_noise(canon[:, 0], method="cross-calibrated", reference=canon[:, r]) for r in (2, 3)]
    assert noise["I"] == float(np.median(crossed))
    constant_qu_v = canon.copy()
    constant_qu_v[:, 1:] = 0.0  # none: Stokes I's temporal estimate
    noise, methods = Denoiser()._noise_levels(constant_qu_v, ["I", "Q", "U", "V"], [0])
    assert methods["I"] == "temporal" and noise["I"] == estimate_noise(canon[:, 0], method="temporal")


def test_noise_estimate_arguments():
    frames = np.random.default_rng(0).normal(0, NOISE, (1, 2, 32, 32))
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_noise(frames, method="wavelet")
    with pytest.raises(ValueError, match="at least 2 scans"):
        estimate_noise(frames, method="temporal")
    with pytest.raises(ValueError, match="needs reference"):
        estimate_noise(np.concatenate([frames, frames]), method="cross-calibrated")
    assert estimate_noise(frames) == pytest.approx(NOISE, rel=0.1)  # one scan: spatial


@pytest.mark.parametrize(
    "config",
    [
        {"residual": True, "variance_head": True, "variance": "softplus", "variance_sees_output": True},
        {"in_channels": 4, "out_channels": 1, "residual": True, "variance_head": True, "variance": "softplus"},
        {"in_channels": 6, "out_channels": 3, "residual": True},
    ],
)
def test_optimised_unet_equals_the_network(config):
    torch.manual_seed(0)
    net = UNet(n_filters=8, **config).eval()
    x = torch.randn(2, net.in_channels, 32, 32)
    with torch.inference_mode():
        ref, out = net(x), FastUNet(net)(x)
    span = float(ref.amax() - ref.amin())
    assert float((ref - out).abs().max()) < 1e-5 * span


def test_residual_network_starts_as_the_identity_plus_a_small_correction():
    # A residual U-Net whose last convolution is zero returns its input (the mean of the scans in temporal
    # mode): strong signals pass by default instead of being learnt back from nothing.
    net = UNet(in_channels=4, out_channels=2, n_filters=8, residual=True).eval()
    torch.nn.init.zeros_(net.out.weight)
    torch.nn.init.zeros_(net.out.bias)
    x = torch.randn(1, 4, 16, 16)
    with torch.inference_mode():
        np.testing.assert_allclose(net(x), 0.5 * (x[:, :2] + x[:, 2:]), atol=1e-6)
    with pytest.raises(ValueError, match="multiple of out_channels"):
        UNet(in_channels=3, out_channels=2, residual=True)


def test_softplus_variance_goes_above_and_below_the_noise():
    net = UNet(n_filters=4, variance_head=True, variance="softplus", log_var_offset=0.0).eval()
    x = torch.randn(1, 1, 16, 16)
    for bias, above in ((5.0, True), (-5.0, False)):
        torch.nn.init.constant_(net.var_out.bias, bias)
        with torch.inference_mode():
            log_var = net(x)[:, 1]
        assert bool((log_var > 0).all()) is above  # variance 1 = the noise level, in noise units
    with pytest.raises(ValueError, match="variance must be one of"):
        UNet(variance="exp")


@pytest.fixture(scope="module")
def trained_strong(strong_cube):
    cube, _ = strong_cube
    den = Denoiser(n_filters=16).fit(cube, epochs=6, patches_per_epoch=400, patch_size=32, seed=0, progress=False)
    return den, den.predict(cube, progress=False)


def test_strong_signals_are_kept(strong_cube, trained_strong):
    cube, truth = strong_cube
    _, out = trained_strong
    # the paper's form (the network predicts the image), trained the same way
    paper = Denoiser(n_filters=16, residual=False).fit(
        cube, epochs=6, patches_per_epoch=400, patch_size=32, seed=0, progress=False
    )
    strong = np.abs(truth[:, 3]) > 3 * NOISE

    def error(data):
        return np.sqrt(np.mean((np.asarray(data)[:, 3] - truth[:, 3])[strong] ** 2))

    den_err, paper_err = error(out.data), error(paper.predict(cube, progress=False).data)
    # before issue 14 the denoiser's error in this bin was larger than the input's (3.6e-3 for 3e-3)
    assert den_err < 0.9 * error(cube.data)
    assert den_err < paper_err


def test_uncertainty_is_calibrated_on_held_out_pairs(strong_cube, trained_strong, tmp_path):
    cube, truth = strong_cube
    den, out = trained_strong
    assert set(den.calibration) == {"Q", "U", "V"}
    assert all(0.05 < c < 20 for c in den.calibration.values())
    z = (np.asarray(out.data)[:, 1:] - truth[:, 1:]) / out.uncertainty.array[:, 1:]
    within1 = float((np.abs(z) < 1).mean())
    # a short training: looser than the benchmark's 0.63-0.73, but an uncalibrated sigma at the noise level
    # (the old cap) would put ~95 % of the errors within 1 sigma
    assert 0.55 < within1 < 0.85
    # each tuning's factor is what scales the network's own sigma there: without them, the variance head's alone
    assert {lab: len(f) for lab, f in den.calibration_tunings.items()} == dict.fromkeys("QUV", cube.data.shape[2])
    raw = Denoiser.load(den.save(tmp_path / "raw.pt"))
    raw.calibration, raw.calibration_tunings = {}, {}
    raw_sd = raw.predict(cube, progress=False).uncertainty.array
    for k, lab in ((1, "Q"), (2, "U"), (3, "V")):
        ratio = out.uncertainty.array[:, k] / raw_sd[:, k]
        want = np.asarray(den.calibration_tunings[lab])[None, :, None, None]
        np.testing.assert_allclose(ratio, np.broadcast_to(want, ratio.shape), rtol=1e-4)
    # Per tuning, the calibrated sigma matches the error there (truth); one factor per Stokes parameter did not: the
    # head's error varies less across the line than the error (measured: mean |log| 0.02-0.10 against 0.12-0.22).
    err = np.asarray(out.data) - truth
    for k, lab in ((1, "Q"), (2, "U"), (3, "V")):
        one = raw_sd[:, k] * den.calibration[lab]

        def miss(sd, k=k):
            return np.abs(np.log(np.sqrt((err[:, k] ** 2).mean(axis=(0, 2, 3)) / (sd**2).mean(axis=(0, 2, 3))))).mean()

        assert miss(out.uncertainty.array[:, k]) < 0.75 * miss(one), lab
    # the factors travel with the weights and are used after loading
    again = Denoiser.load(den.save(tmp_path / "strong.pt"))
    assert again.calibration == den.calibration and again.calibration_tunings == den.calibration_tunings
    np.testing.assert_allclose(
        again.predict(cube, progress=False).uncertainty.array, out.uncertainty.array, rtol=1e-5, atol=0
    )


def test_temporal_neighbours_exclude_the_scan_itself():
    assert temporal_neighbours(3, 10, 2) == [1, 2, 4, 5]
    assert temporal_neighbours(0, 10, 2) == [1, 2, 3, 4]  # shifted inward at the ends
    assert temporal_neighbours(9, 10, 2) == [5, 6, 7, 8]
    for t in range(5):
        assert t not in temporal_neighbours(t, 5, 2)


def test_temporal_mode(strong_cube):
    cube, truth = strong_cube
    den = Denoiser(n_filters=8, temporal=1).fit(
        cube, epochs=2, patches_per_epoch=200, patch_size=32, lr=1e-3, seed=0, progress=False
    )
    assert den.model.in_channels == 2  # the two neighbouring scans, not scan t
    assert den.fit_settings["temporal"] == 1
    out = den.predict(cube, progress=False)
    err = np.asarray(out.data)[:, 1:] - truth[:, 1:]
    assert np.sqrt(np.mean(err**2)) < 0.8 * NOISE
    # NaN in scan t stays NaN, even though the neighbours could fill it
    holed = np.asarray(cube.data).copy()
    holed[2, 3, 1, 10:14, 10:14] = np.nan
    again = den.predict(NDCube(holed, wcs=cube.wcs), stokes=["V"], progress=False)
    assert np.isnan(again.data[2, 3, 1, 10:14, 10:14]).all()
    assert np.isfinite(again.data[1, 3, 1]).all() and np.isfinite(again.data[3, 3, 1]).all()
    # Scan t is weighed by its own noise: on a cube twice as noisy (variance 4 in the network's units) the
    # combination trusts the neighbours more, and its variance is v n / (v + n) instead of v / (v + 1).
    sigma = den.noise["V"]
    frames, context = np.asarray(cube.data)[2, 3, 1:2], np.asarray(cube.data)[[1, 3], 3, 1]
    n_out = den.model.out_channels
    args = (frames, context, sigma, den.calibration["V"], "cpu", None, n_out, den.model, None, 0, "float32", False)
    _, sd1 = den._denoise_frames(*args, 1.0)
    _, sd4 = den._denoise_frames(*args, 4.0)
    v = (sd1 / sigma) ** 2 / (1 - (sd1 / sigma) ** 2)  # the prediction's variance, from the first combination
    np.testing.assert_allclose((sd4 / sigma) ** 2, 4 * v / (v + 4), rtol=1e-4)
    noisier = np.asarray(cube.data) + np.random.default_rng(5).normal(0, np.sqrt(3) * NOISE, cube.data.shape)
    noisier = NDCube(noisier, wcs=cube.wcs)
    sd_noisier = den.predict(noisier, stokes=["V"], progress=False).uncertainty.array
    # scan t taken at the training noise (as before the fix): the same cube's noise levels passed as the trained
    as_trained = den._predict(
        noisier, ["V"], None, "aleatoric", 1, None, None, "float32", False, False, dict(den.noise)
    )
    ratio = np.median(sd_noisier[1:-1, 3]) / np.median(as_trained.uncertainty.array[1:-1, 3])
    assert ratio > 1.05  # measured 1.11: the noisier scan t gets less weight, the combination a larger sigma
    with pytest.raises(ValueError, match="needs at least 7 scans"):
        Denoiser(temporal=3).fit(cube, progress=False)


def test_denoise_cube_is_temporal_by_default_where_the_scans_allow(strong_cube, monkeypatch, caplog):
    import logging

    from sunpy_nn import denoise_cube

    short_denoise_cube_training(monkeypatch)
    cube, _ = strong_cube
    small = NDCube(np.asarray(cube.data)[:, :, :1, :32, :32], wcs=cube.wcs[:, :, :1, :32, :32])
    with caplog.at_level(logging.INFO, logger="sunpy_nn.denoise._denoise_cube"):
        out = denoise_cube(small, epochs=1, patch_size=16, seed=0, progress=False)
    assert out.meta["sunpy_nn"]["temporal"] == 2  # six scans: the default is auto_temporal's
    assert "temporal=0 asks for single-scan mode" in caplog.text  # the user is told what it costs
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sunpy_nn.denoise._denoise_cube"):
        out = denoise_cube(small, temporal=0, epochs=1, patch_size=16, seed=0, progress=False)
    assert out.meta["sunpy_nn"]["temporal"] == 0  # single-scan mode when asked
    assert "asks for single-scan mode" not in caplog.text
    with pytest.raises(TypeError, match="NDCube"):  # before auto_temporal reads the axes of what is not a cube
        denoise_cube(np.asarray(cube.data), epochs=1)
    one_scan = NDCube(np.asarray(cube.data)[:1, :, :1, :32, :32], wcs=cube.wcs[:1, :, :1, :32, :32])
    # one scan: neighbour sub-sampling, whose window is twice the patch
    assert denoise_cube(one_scan, epochs=1, patch_size=8, seed=0, progress=False).meta["sunpy_nn"]["temporal"] == 0


def test_auto_temporal_follows_the_series():
    from sunpy_nn.denoise import auto_temporal

    for n_scans, k in ((1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (8, 2)):
        cube, _ = synthetic_crisp_cube(16, n_wavelengths=1, n_scans=n_scans, seed=0)
        assert auto_temporal(cube) == k
    import dask.array as da

    cube, _ = synthetic_crisp_cube(16, n_wavelengths=1, n_scans=6, seed=0)
    lazy = NDCube(da.from_array(np.asarray(cube.data)), wcs=cube.wcs)
    assert auto_temporal(lazy) == 2  # temporal mode works on dask-backed cubes too


def test_temporal_and_shuffle_are_refused_where_they_cannot_work(strong_cube):
    import dask.array as da

    cube, _ = strong_cube
    with pytest.raises(ValueError, match="temporal mode needs no shuffle"):
        Denoiser(temporal=1, shuffle=2)
    with pytest.raises(ValueError, match="for single scans"):
        Denoiser(shuffle=2).fit(cube, progress=False)
    single = Denoiser(n_filters=4, shuffle=2).fit(cube[0], epochs=1, patches_per_epoch=10, patch_size=8, progress=False)
    with pytest.raises(ValueError, match="pixel-shuffling denoiser needs whole frames"):
        single.predict(NDCube(da.from_array(np.asarray(cube.data[0])), wcs=cube[0].wcs), progress=False)


def test_pixel_shuffle_single_scan_round_trip(tmp_path):
    cube, _ = synthetic_crisp_cube(64, n_wavelengths=2, n_scans=1, seed=4, noise_correlation=1.0)
    den = Denoiser(n_filters=4, shuffle=2).fit(cube, epochs=1, patches_per_epoch=20, patch_size=8, progress=False)
    assert den.fit_settings["shuffle"] == 2 and den.fit_settings["pairs"] == "neighbour sub-sampling"
    out = den.predict(cube, progress=False)
    assert np.isfinite(out.data).all() and out.data.shape == cube.data.shape
    again = Denoiser.load(den.save(tmp_path / "pd.pt"))
    assert again.shuffle == 2
    np.testing.assert_allclose(again.predict(cube, progress=False).data, out.data, rtol=0, atol=1e-6)


def test_files_saved_before_issue_14_load_as_the_papers_network(tmp_path):
    # the older layout of format 1 (the Denoiser's own before issue 15), written by hand: no residual, temporal,
    # shuffle or calibration keys; the paper's -abs() variance
    den = Denoiser(n_filters=4, residual=False)
    cube, _ = synthetic_crisp_cube(32, n_wavelengths=1, n_scans=3, seed=0)
    den.fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, progress=False)
    config = dict(den.model.config)
    for key in ("residual", "variance", "variance_sees_output"):
        config.pop(key)
    config["log_var_offset"] = 0.0
    old_net = UNet(**{k: v for k, v in config.items() if k != "architecture"})
    blob = {
        "format": "sunpy_nn-denoiser",
        "format_version": 1,
        "mode": den.mode,
        "config": config,
        "state_dict": old_net.state_dict(),
        "noise": den.noise,
        "n_wavelengths": den.n_wavelengths,
        "history": json.dumps(den.history),
        "fit_settings": json.dumps(den.fit_settings),
    }
    old = tmp_path / "old.pt"
    torch.save(blob, old)
    loaded = Denoiser.load(old)
    assert not loaded.residual and loaded.temporal == 0 and loaded.calibration == {}
    assert loaded.model.variance == "abs" and not loaded.model.variance_sees_output
    assert np.isfinite(loaded.predict(cube, progress=False).data).all()


def test_synthetic_cube_noise_correlation_and_drift():
    white, truth = synthetic_crisp_cube(64, n_wavelengths=2, n_scans=2, seed=0)
    corr, truth_c = synthetic_crisp_cube(64, n_wavelengths=2, n_scans=2, seed=0, noise_correlation=1.0)
    np.testing.assert_array_equal(truth, truth_c)  # the same scene, only the noise differs
    for cube in (white, corr):
        assert np.std(np.asarray(cube.data) - truth) == pytest.approx(NOISE, rel=0.02)
    # correlated noise: adjacent pixels share it; white noise: they do not
    n_w, n_c = np.asarray(white.data) - truth, np.asarray(corr.data) - truth
    assert abs(np.corrcoef(n_w[..., 1:].ravel(), n_w[..., :-1].ravel())[0, 1]) < 0.02
    assert np.corrcoef(n_c[..., 1:].ravel(), n_c[..., :-1].ravel())[0, 1] > 0.6
    # the same level at the border as inside (reflection at the border made it 1.3x there, 0.96x inside)
    edge, inside = np.std(n_c[..., :, [0, -1]]), np.std(n_c[..., 4:-4, 4:-4])
    assert edge == pytest.approx(NOISE, rel=0.1) and inside == pytest.approx(NOISE, rel=0.01)  # 2048 edge values
    with pytest.raises(ValueError, match="noise_correlation"):
        synthetic_crisp_cube(16, noise_correlation=-1.0)
    with pytest.raises(ValueError, match="drift"):
        synthetic_crisp_cube(16, drift=(1.0, 0.5))


def test_the_network_sees_the_same_numbers_whatever_the_data_scale(strong_cube):
    # Data in I/Ic or in counts (x 1000): every Stokes parameter is divided by its own noise level, so the network
    # trains on and denoises the same numbers, and the result scales with the data.
    cube, _ = strong_cube
    fit = {"epochs": 1, "patches_per_epoch": 40, "patch_size": 16, "seed": 0, "progress": False}
    a = Denoiser(n_filters=4).fit(cube, **fit)
    counts = NDCube(np.asarray(cube.data) * 1000.0, wcs=cube.wcs)
    b = Denoiser(n_filters=4).fit(counts, **fit)
    assert b.noise["Q"] == pytest.approx(1000 * a.noise["Q"], rel=1e-5)
    out_a, out_b = a.predict(cube, progress=False), b.predict(counts, progress=False)
    span = np.ptp(out_b.data[:, 1:])
    np.testing.assert_allclose(out_b.data[:, 1:], 1000 * out_a.data[:, 1:], rtol=0, atol=1e-4 * span)
    np.testing.assert_allclose(
        out_b.uncertainty.array[:, 1:], 1000 * out_a.uncertainty.array[:, 1:], rtol=0, atol=1e-4 * span
    )
    # the calibration factors, per tuning too (4 scans x 64^2 px: measured, not the one factor), have no unit
    assert a.calibration_tunings and set(a.calibration_tunings) == set(b.calibration_tunings)
    for lab, factors in a.calibration_tunings.items():
        np.testing.assert_allclose(b.calibration_tunings[lab], factors, rtol=1e-3)
