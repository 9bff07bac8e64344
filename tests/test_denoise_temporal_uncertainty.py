"""
Temporal mode's uncertainty (issue 14): the noise that the neighbouring scans propagate into the prediction,
measured (by a parametric bootstrap) with the noise's own spatial correlation, is added to the variance head's.
"""

from __future__ import annotations

import numpy as np
import pytest
from ndcube import NDCube
from scipy import ndimage

import sunpy_nn.denoise._frames as frames
from sunpy_nn import Denoiser
from sunpy_nn.data.synthetic import synthetic_crisp_cube
from sunpy_nn.noise import _gaussian_correlation, _high_pass, _mad_sigma, _unit_noise

from .helpers import assert_close_ulps

NOISE = 3e-3


def _noise(shape, correlation: float = 0.0, seed: int = 0) -> np.ndarray:
    white = np.random.default_rng(seed).standard_normal(shape)
    if correlation:
        white = ndimage.gaussian_filter(white, (0,) * (len(shape) - 2) + (correlation, correlation))
        white /= white.std()
    return white


@pytest.mark.parametrize("correlation", [0.0, 0.7, 1.0, 2.0])
def test_noise_correlation_is_read_from_the_scan_differences(correlation):
    # the synthetic cube's correlated noise: white noise through a Gaussian of this sigma, rescaled
    frames = _noise((6, 96, 96), correlation)
    ratio = _mad_sigma(_high_pass(frames)) / _mad_sigma(frames)
    assert _gaussian_correlation(ratio) == pytest.approx(correlation, abs=0.1)


@pytest.mark.parametrize("correlation", [0.0, 1.0])
def test_noise_correlation_of_every_stokes_parameter(correlation):
    """Stokes I's own scan differences carry the evolution of granulation: it takes the references' correlation."""
    cube, _ = synthetic_crisp_cube(64, n_wavelengths=3, n_scans=6, noise_correlation=correlation, seed=3)
    canon = np.asarray(cube.data, np.float64)
    found: dict[str, float] = {}
    Denoiser()._noise_levels(canon, list("IQUV"), [0, 1, 2, 3], correlation=found)
    assert set(found) == set("IQUV")
    for lab in "IQUV":
        assert found[lab] == pytest.approx(correlation, abs=0.35), (lab, found)
    own_i = _gaussian_correlation(
        _mad_sigma(_high_pass(np.diff(canon[:, 0], axis=0))) / _mad_sigma(np.diff(canon[:, 0], axis=0))
    )
    assert found["I"] < own_i  # the evolution would read as correlation (0.48 px for white noise)
    # nothing is asked, nothing is filled; one scan: no scan differences, no correlation
    none: dict[str, float] = {}
    Denoiser()._noise_levels(canon[:1], list("IQUV"), [1], correlation=none)
    assert none == {}


def _box(a: np.ndarray) -> np.ndarray:
    return ndimage.uniform_filter(a[:1], size=(1, 3, 3), mode="reflect")


@pytest.mark.parametrize(
    ("run", "correlation", "expected"),
    [
        (lambda a: a[:1], 0.0, 1.0),  # the input itself: the input's noise variance, white or not
        (lambda a: a[:1], 1.0, 1.0),
        (lambda a: a.mean(axis=0, keepdims=True), 0.0, 0.25),  # the mean of 4 scans with independent noise
        (_box, 0.0, 1 / 9),  # a 3 x 3 mean of white noise
        (_box, 1.0, float(_box(_noise((1, 512, 512), 1.0, seed=9)).var())),  # correlated: far more than 1/9
    ],
)
def test_propagated_variance_of_linear_networks(run, correlation, expected):
    inp = np.random.default_rng(1).normal(0, 3, (4, 128, 128)).astype(np.float32)  # the signal does not matter
    var = Denoiser()._propagated_variance(inp, correlation, run)
    assert var.shape == (1, 128, 128)
    assert float(var[:, 8:-8, 8:-8].mean()) == pytest.approx(expected, rel=0.06)
    # a fixed seed: the same input gives the same uncertainty
    np.testing.assert_array_equal(var, Denoiser()._propagated_variance(inp, correlation, run))


@pytest.mark.parametrize("draws", [2, 4])
def test_propagated_variance_runs_the_network_once_per_draw(draws):
    """Each bootstrap draw is one run of the network per frame (what temporal mode costs); with the prediction given,
    no other run."""
    calls = []

    def run(a):
        calls.append(a.shape)
        return a.mean(axis=0, keepdims=True)  # the mean of 4 scans with independent noise: variance 1/4

    inp = np.random.default_rng(1).normal(0, 3, (4, 128, 128)).astype(np.float32)
    mean = run(inp)
    den = Denoiser()
    den._bootstrap = (draws, frames.PROPAGATION_WINDOW)
    var = den._propagated_variance(inp, 0.0, run, mean)
    assert len(calls) == 1 + draws
    assert float(var[:, 8:-8, 8:-8].mean()) == pytest.approx(0.25, rel=0.06)


def test_propagated_variance_keeps_missing_pixels_missing():
    inp = np.zeros((2, 64, 64), np.float32)
    inp[:, 20:24, 30:34] = np.nan
    var = Denoiser()._propagated_variance(inp, 0.0, lambda a: a[:1])
    assert np.isnan(var[0, 20:24, 30:34]).all()
    assert np.isfinite(np.delete(var[0].ravel(), np.flatnonzero(np.isnan(inp[0]).ravel()))).all()


@pytest.fixture(scope="module")
def drifting():
    """A series that evolves fast (1-2 px per scan), white noise: where temporal mode's head alone failed."""
    cube, truth = synthetic_crisp_cube(64, n_wavelengths=3, n_scans=6, v_peak=60, qu_peak=30, drift=(1, 2), seed=4)
    den = Denoiser(n_filters=8, temporal=1).fit(
        cube, epochs=3, patches_per_epoch=300, patch_size=32, lr=1e-3, seed=0, progress=False
    )
    return cube, truth, den


def test_temporal_uncertainty_includes_the_propagated_noise(drifting, tmp_path):
    cube, truth, den = drifting
    assert set(den.noise_correlation) == {"Q", "U", "V"}  # the Stokes parameters it denoises
    assert all(c < 0.5 for c in den.noise_correlation.values())  # white noise (drift biases it a little)
    out = den.predict(cube, progress=False)
    z = (np.asarray(out.data)[:, 1:] - truth[:, 1:]) / out.uncertainty.array[:, 1:]
    z_rms = float(np.sqrt(np.mean(z**2)))
    # the head's variance alone, as temporal denoisers saved before 0.2 are still predicted: far too narrow
    old = Denoiser.load(den.save(tmp_path / "t.pt"))
    old.noise_correlation = None
    old_out = old.predict(cube, progress=False)
    z_old = (np.asarray(old_out.data)[:, 1:] - truth[:, 1:]) / old_out.uncertainty.array[:, 1:]
    z_old_rms = float(np.sqrt(np.mean(z_old**2)))
    assert z_old_rms > 1.5 * z_rms
    assert 0.7 < z_rms < 1.3, (z_rms, z_old_rms)
    assert 0.55 < float((np.abs(z) < 1).mean()) < 0.85


def test_noise_correlation_travels_with_the_weights(drifting, tmp_path):
    cube, _, den = drifting
    again = Denoiser.load(den.save(tmp_path / "t.pt"))
    assert again.noise_correlation == den.noise_correlation
    assert den.provenance()["noise_correlation"] == den.noise_correlation
    np.testing.assert_allclose(
        again.predict(cube, stokes=["V"], progress=False).uncertainty.array,
        den.predict(cube, stokes=["V"], progress=False).uncertainty.array,
        rtol=1e-5,
    )


def _record_propagation(monkeypatch, argument: str) -> list:
    """The ``argument`` (``"correlation"`` or ``"level"``) of every `Denoiser._propagated_variance` call from now on,
    which still runs as it did."""
    seen, original = [], Denoiser._propagated_variance

    def spy(self, inp, correlation, run, mean=None, level=1.0):
        seen.append({"correlation": correlation, "level": level}[argument])
        return original(self, inp, correlation, run, mean, level)

    monkeypatch.setattr(Denoiser, "_propagated_variance", spy)
    return seen


def test_correlated_noise_is_drawn_correlated(drifting, monkeypatch):
    """A cube with spatially correlated noise: the fitted correlation is what calibration and prediction draw."""
    cube, truth, _ = drifting
    data = truth + NOISE * _noise(truth.shape, 1.0, seed=2)
    cube = NDCube(data.astype(np.float32), wcs=cube.wcs)
    seen = _record_propagation(monkeypatch, "correlation")
    den = Denoiser(n_filters=4, temporal=1).fit(
        cube, epochs=1, patches_per_epoch=20, patch_size=32, seed=0, progress=False
    )
    assert all(0.8 < den.noise_correlation[s] < 1.3 for s in "QUV")  # white noise through a Gaussian of 1 px
    assert set(seen) == {den.noise_correlation[s] for s in "QUV"}  # the calibration's
    seen.clear()
    den.predict(cube, stokes=["V"], progress=False)
    assert seen and set(seen) == {den.noise_correlation["V"]}


def test_propagated_noise_is_drawn_at_the_noise_of_the_cube(drifting, monkeypatch):
    """On a cube noisier than the training one, the bootstrap draws the neighbours' noise at this cube's level, and
    its variance is added to the head's as it comes."""
    cube, _, den = drifting
    levels = []

    def prop(self, inp, c, run, mean=None, level=1.0):
        levels.append(level)
        return np.full((1, *inp.shape[1:]), 0.3 * level**1.5, np.float32)  # not linear in the level

    monkeypatch.setattr(Denoiser, "_propagated_variance", prop)
    sigma = den.noise["V"]
    frames, context = np.asarray(cube.data)[2, 3, 1:2], np.asarray(cube.data)[[1, 3], 3, 1]
    args = (frames, context, sigma, den.calibration["V"], "cpu", None, 1, den.model, None, 0, "float32", False)
    sd1 = den._denoise_frames(*args, 1.0, 0.0)[1] / sigma
    sd4 = den._denoise_frames(*args, 4.0, 0.0)[1] / sigma
    assert levels == [1.0, 4.0]
    head = sd1**2 / (1 - sd1**2) - 0.3  # v = head + propagated, from v / (v + 1)
    v4 = head + 0.3 * 8.0
    np.testing.assert_allclose(sd4**2, 4 * v4 / (v4 + 4), rtol=1e-4)


def test_the_level_drawn_does_not_depend_on_the_cubes_unit(drifting, monkeypatch):
    """The same cube in percent: the bootstrap draws at the same level (noise and training noise in one unit), and
    the uncertainty is the same, in percent."""
    import astropy.units as u

    cube, _, den = drifting
    levels = _record_propagation(monkeypatch, "level")
    ref = den.predict(cube, stokes=["V"], progress=False)
    n = len(levels)
    unit = u.dimensionless_unscaled if cube.unit is None else cube.unit
    percent = NDCube(np.asarray(cube.data) * unit.to(u.percent), wcs=cube.wcs, unit=u.percent)
    out = den.predict(percent, stokes=["V"], progress=False)
    assert n and len(levels) == 2 * n
    np.testing.assert_allclose(levels[n:], levels[:n], rtol=1e-5)
    sd = ref.uncertainty.array[:, 3]
    np.testing.assert_allclose(out.uncertainty.array[:, 3] / unit.to(u.percent), sd, rtol=1e-4)


def _clipped_variance(std: float) -> float:
    """Variance of Gaussian noise of standard deviation ``std`` clipped to [-1, 1]."""
    from scipy.stats import norm

    a = 1 / std
    inside = std**2 * ((2 * norm.cdf(a) - 1) - 2 * a * norm.pdf(a))
    return float(inside + 2 * norm.sf(a))


def test_propagated_variance_is_drawn_at_the_level_asked():
    """A network that is not linear in its input (here it clips at 1): the variance that noise of 4 times the
    training variance propagates is measured at that level, not 4 times the variance at the training level; at
    level 1 the draws are those of the calibration, bit for bit."""
    run = lambda a: np.clip(a[:1], -1, 1)  # noqa: E731
    inp = np.zeros((4, 128, 128), np.float32)
    mean = np.zeros((1, 128, 128), np.float32)  # the bootstrap's proxy of the signal
    den = Denoiser()
    one, four = (den._propagated_variance(inp, 0.0, run, mean, level) for level in (1.0, 4.0))
    assert float(one[:, 8:-8, 8:-8].mean()) == pytest.approx(_clipped_variance(1.0), rel=0.06)  # 0.52
    assert float(four[:, 8:-8, 8:-8].mean()) == pytest.approx(_clipped_variance(2.0), rel=0.06)  # 0.74, not 2.1
    # the fitted cube's draws, written out as they were before the level (the calibration's, bit for bit)
    rng = np.random.default_rng(0)
    proxy = mean.repeat(4, axis=0)
    before = [run(proxy + _unit_noise(rng, inp.shape, 0.0, inp.dtype)) for _ in range(frames.BOOTSTRAP_DRAWS)]
    np.testing.assert_array_equal(one, frames._window_mean(np.var(before, axis=0, ddof=1), frames.PROPAGATION_WINDOW))
    # a linear network (the mean of the four scans): the level's variance passes through as it is
    linear = den._propagated_variance(inp, 1.0, lambda a: a.mean(axis=0, keepdims=True), mean, 2.0)
    assert float(linear[:, 8:-8, 8:-8].mean()) == pytest.approx(2.0 / 4, rel=0.06)


@pytest.mark.parametrize("correlation", [0.0, 1.0])
def test_correlated_noise_of_any_rank_is_filtered_over_each_image_alone(correlation):
    """The synthetic cube (4-D) and the bootstrap (3-D) draw it alike: the leading axes only count images."""

    four = _unit_noise(np.random.default_rng(1), (2, 3, 32, 32), correlation)
    three = _unit_noise(np.random.default_rng(1), (6, 32, 32), correlation)
    np.testing.assert_array_equal(four.reshape(three.shape), three)
    if correlation:  # rescaled to unit variance; neighbouring pixels of an image go together
        assert four.std() == pytest.approx(1.0, rel=1e-12)
        assert np.corrcoef(four[..., :-1].ravel(), four[..., 1:].ravel())[0, 1] > 0.5
    else:  # white: the draw itself, so the synthetic cube's noise is the one it drew before
        np.testing.assert_array_equal(four, np.random.default_rng(1).standard_normal((2, 3, 32, 32)))


def test_the_injected_correlated_noise_has_one_level_at_every_pixel():
    """The noise of the propagation's draws, like the synthetic cube's, was filtered with reflection at the border:
    1.3x its level in the border columns and 1.3 % below it inside (1 px), so the propagated variance was off there."""

    eps = _unit_noise(np.random.default_rng(0), (64, 128, 128), 1.0, np.float64)
    assert eps[:, :, [0, -1]].std() == pytest.approx(1.0, rel=0.03)
    assert eps[:, 4:-4, 4:-4].std() == pytest.approx(1.0, rel=0.003)


def test_bootstrap_draws_run_the_network_without_its_variance_head(drifting, monkeypatch):
    """The draws' variance head was computed and thrown away (about 40 % of a run): the same prediction without."""
    cube, _, den = drifting
    heads = []
    original = frames._FramesMixin._run_one

    def spy(self, frame, dev, tile_size, n_out, model, *args):
        heads.append((self.model if model is None else model).variance_head)
        return original(self, frame, dev, tile_size, n_out, model, *args)

    monkeypatch.setattr(frames._FramesMixin, "_run_one", spy)
    fast = den.predict(cube, stokes=["V"], progress=False)
    # one run with the head per frame (the prediction), BOOTSTRAP_DRAWS without (scans x tunings frames)
    n_frames = cube.data.shape[0] * cube.data.shape[2]
    assert heads.count(True) == n_frames and heads.count(False) == frames.BOOTSTRAP_DRAWS * n_frames
    # as before: the draws through the whole network, its mean taken
    monkeypatch.setattr(
        frames._FramesMixin,
        "_run_mean",
        lambda self, frame, dev, tile_size, n_out, model=None, precision="float32", compile=False: self._run(
            frame, dev, tile_size, n_out, model, precision, compile
        )[0],
    )
    heads.clear()
    whole = den.predict(cube, stokes=["V"], progress=False)
    assert heads.count(False) == 0
    for a, b in ((fast.data, whole.data), (fast.uncertainty.array, whole.uncertainty.array)):
        assert_close_ulps(np.asarray(a), np.asarray(b))
