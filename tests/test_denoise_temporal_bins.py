"""
Temporal mode's uncertainty (issue 14): the neighbours' propagated noise by a parametric bootstrap, and the variance
head's calibration factors by bins of its own variance (of the propagated variance in files of formats 7-8).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from sunpy_nn import Denoiser
from sunpy_nn.denoise import _calibration
from sunpy_nn.denoise._calibration import (
    _MIN_FACTOR,
    BIN_SIGMAS,
    HEAD_QUANTILES,
    N_BINS,
    _bin_excess,
    _bin_factors,
    _blocks,
    _sum_error,
)

from .test_denoise_temporal_uncertainty import drifting  # noqa: F401 (a fixture)


def _realisations(den, clean: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """The variance of the network's mean over noise realisations on noise-free neighbours (in noise units)."""
    rng = np.random.default_rng(seed)
    runs = [
        den._run(clean + rng.standard_normal(clean.shape).astype(np.float32), "cpu", None, 1)[0] for _ in range(draws)
    ]
    return np.var(runs, axis=0, ddof=1)


def test_bootstrap_measures_the_noise_that_passes_through_the_network(drifting):  # noqa: F811
    """On a weak-signal frame (Stokes Q's continuum) the bootstrap gives the variance of the network's output over
    noise realisations. (This short training leaves the network nearly linear, so the first-order noise injection
    agrees here too; a well-trained one shrinks noise and fools it: ``benchmarks/denoise_propagation.py``.)"""
    _, truth, den = drifting
    sigma = den.noise["Q"]
    clean = (truth[[1, 3], 1, 0] / sigma).astype(np.float32)  # scan 2's neighbours, Q in the continuum
    assert np.abs(clean).max() < 0.2  # weak: below a fifth of the noise
    actual = float(_realisations(den, clean, 16, 1)[:, 4:-4, 4:-4].mean())
    noisy = clean + np.random.default_rng(2).standard_normal(clean.shape).astype(np.float32)
    boot = den._propagated_variance(noisy, 0.0, lambda a: den._run(a, "cpu", None, 1)[0])
    assert boot.shape == (1, 64, 64)
    assert float(boot[:, 4:-4, 4:-4].mean()) == pytest.approx(actual, rel=0.1)


def _pairs(prop: np.ndarray, excess: np.ndarray, seed: int) -> np.ndarray:
    """``(y - p)^2 - 1`` of pairs whose prediction errs with variance ``prop + excess`` (noise units)."""
    rng = np.random.default_rng(seed)
    error = rng.standard_normal(prop.shape) * np.sqrt(prop + excess)
    return (error + rng.standard_normal(prop.shape)) ** 2 - 1


def _added_in_unresolved_bins(bins: dict, r2, head, prop, block) -> list[float]:
    """The head's calibrated variance over the propagated variance, summed over each bin whose excess is not
    resolved (`BIN_SIGMAS` standard errors)."""
    edges, sums = _bin_excess(r2, head, prop, block)
    which = np.digitize(head, edges)
    return [
        f**2 * heads / float(prop[which == b].sum())
        for b, (f, (excess, spread, heads)) in enumerate(zip(bins["factors"], sums, strict=True))
        if not excess > BIN_SIGMAS * spread
    ]


def test_bin_factors_scale_the_head_by_bins_of_its_own_variance_where_the_error_exceeds_the_propagated_noise():
    """Strong, evolving structures: the head ranks them (its variance is largest there) but is far off in size;
    the top bins of the head scale it to the excess there, the others (no excess) add little to the propagated
    noise: their own excess, which is its estimate's scatter."""
    n = 2_000_000
    rng = np.random.default_rng(0)
    prop = rng.uniform(0.002, 0.06, n)
    head = np.exp(rng.normal(np.log(0.02), 0.5, n))
    strong = head > np.quantile(head, 0.95)
    excess = np.where(strong, 4.0 * head, 0.0)  # the strongest 5 %: an error 4x the head's, beyond the noise
    r2 = _pairs(prop, excess, 1)
    bins = _bin_factors(r2, head, prop, np.arange(n))  # independent pixels: one block each
    assert set(bins) == {"head_edges", "factors"}
    assert len(bins["head_edges"]) == N_BINS - 1 and len(bins["factors"]) == N_BINS
    np.testing.assert_allclose(bins["head_edges"], np.quantile(head, HEAD_QUANTILES))
    assert HEAD_QUANTILES[-2:] == (0.95, 0.98)  # the two top bins: the strong pixels alone
    # there the head is scaled to the excess, 4x its variance: a factor of 2, to the bins' sampling error (~4 %)
    assert bins["factors"][-2:] == pytest.approx([2.0, 2.0], rel=0.1)
    # below: the error is the propagated noise alone; the head adds the excess's scatter, at most 2 standard errors
    # (measured: 0.3-25 % of the propagated variance in a bin of 200,000 to 1,000,000 pixels of this draw)
    added = _added_in_unresolved_bins(bins, r2, head, prop, np.arange(n))
    assert len(added) == N_BINS - 2 and max(added) < 0.35
    assert max(bins["factors"][:-2]) < 0.5 < 1.9 < min(bins["factors"][-2:])


def test_top_bins_too_few_squares_to_resolve_keep_the_factor_of_the_resolved_bin_below():
    """A small cube: the strongest 2 % of the pixels lie in fewer squares than a standard error needs, so their bin
    cannot be resolved; the floor there would give the strongest signals the narrowest bars."""
    n = 400_000
    rng = np.random.default_rng(5)
    prop = rng.uniform(0.002, 0.06, n)
    head = np.exp(rng.normal(np.log(0.02), 0.5, n))
    excess = np.where(head > np.quantile(head, 0.8), 4.0 * head, 0.0)  # the strongest 20 %: 4x the head's variance
    r2 = _pairs(prop, excess, 6)
    block = np.arange(n)  # independent pixels: one block each ...
    top = head > np.quantile(head, HEAD_QUANTILES[-1])
    block[top] = n + np.arange(top.sum()) % 5  # ... but the strongest 2 % in 5 squares: fewer than _MIN_BLOCKS
    bins = _bin_factors(r2, head, prop, block)
    assert bins["factors"][-4:-1] == pytest.approx([2.0, 2.0, 2.0], rel=0.1)  # resolved: the excess, a factor of 2
    assert bins["factors"][-1] == bins["factors"][-2]  # not resolved, so the factor below, not the floor
    assert max(bins["factors"][:2]) < 0.5  # below the strong pixels: the head adds little, as above
    # resolved in squares enough, the top bin measures its own factor
    own = _bin_factors(r2, head, prop, np.arange(n))["factors"]
    assert own[-1] != own[-2] and own[-1] == pytest.approx(2.0, rel=0.1)


def test_bin_factors_take_each_unresolved_bins_own_excess():
    """Without excess, each bin's head adds its excess's scatter (the floor where it is negative); with a real excess
    too small to resolve (up to 0.1.dev702: the floor, and bars too narrow), it adds that excess."""
    prop = np.random.default_rng(3).uniform(0.002, 0.06, 200_000)
    head = np.random.default_rng(9).uniform(0.005, 0.05, prop.size)  # every bin holds pixels
    r2 = _pairs(prop, np.zeros_like(prop), 4)
    bins = _bin_factors(r2, head, prop, np.arange(prop.size))
    added = _added_in_unresolved_bins(bins, r2, head, prop, np.arange(prop.size))
    assert len(added) == N_BINS and max(added) < 0.2  # measured: 0.3-15 %
    assert _MIN_FACTOR in bins["factors"] and bins["factors"] != [_MIN_FACTOR] * N_BINS  # negative, positive scatter
    # A real excess, a quarter of the head's variance in every bin, under a scatter that leaves every bin unresolved
    # (squares of 4 px at +-A each, which sum to zero over each bin): each bin's head is scaled to its own excess,
    # where the floor (up to 0.1.dev702) left the bars at the bootstrap's, too narrow.
    n = 80_000  # the bins hold 40,000, 24,000, 8,000, 4,000, 2,400 and 1,600 of the pixels sorted by head: 8 k each
    head = np.linspace(0.005, 0.05, n)
    prop = np.full(n, 0.01)
    scatter = np.where((np.arange(n) // 4) % 2 == 0, 3.0, -3.0)
    block = np.arange(n) // 4
    real = prop + 0.25 * head + scatter
    _, sums = _bin_excess(real, head, prop, block)
    assert not any(e > BIN_SIGMAS * s for e, s, _ in sums)
    assert _bin_factors(real, head, prop, block)["factors"] == pytest.approx([0.5] * N_BINS, rel=1e-6)
    # an error below the propagated variance: the floor
    below = prop - 0.25 * head + scatter
    assert _bin_factors(below, head, prop, block)["factors"] == [_MIN_FACTOR] * N_BINS
    # the same excess spread over too few squares for a standard error (4, below _MIN_BLOCKS: a small lazy cube):
    # its own estimate would be rough, the floor stays
    few = np.arange(n) // 20_000
    assert _bin_factors(real, head, prop, few)["factors"] == [_MIN_FACTOR] * N_BINS
    # nothing to bin (every pixel missing): the floor too, never an error
    empty = np.array([])
    assert _bin_factors(empty, empty, empty, empty.astype(int))["factors"] == [_MIN_FACTOR] * N_BINS


def _correlated_r2(rng: np.random.Generator, scans: int, sigma_px: float) -> np.ndarray:
    """``(y - p)^2 - 1`` where ``y - p`` is noise of unit variance correlated through a Gaussian of ``sigma_px``."""
    eps = rng.standard_normal((scans, 3, 64, 64))
    if not sigma_px:
        return eps**2 - 1
    blur = (0, 0, sigma_px, sigma_px)
    eps = ndimage.gaussian_filter(eps, blur, mode="wrap")
    delta = np.zeros((1, 1, 64, 64))
    delta[..., 32, 32] = 1
    gain = np.sqrt((ndimage.gaussian_filter(delta, blur, mode="wrap") ** 2).sum())  # the filter's noise gain
    return (eps / gain) ** 2 - 1


def test_the_standard_error_of_an_excess_holds_for_noise_correlated_over_pixels():
    """The blocks' scatter gives the spread of the sum over noise realisations; the pixels' understates it where
    the noise is correlated (restored data), which made bins of pure noise count as resolved."""
    rng = np.random.default_rng(5)
    block = np.concatenate([_blocks((3, 64, 64), t) for t in range(4)])
    per_pixel = np.arange(block.size).reshape(block.shape)
    assert np.unique(block).size == 4 * 16 and (block[:3] == block[0]).all()  # a scan's channels share its squares
    for sigma_px in (1.0, 0.0):  # correlated (through a Gaussian of 1 px), then white noise
        sums, by_blocks, by_pixels = [], [], []
        for _ in range(1000):  # the spread of the sums to ~2 %
            r2 = _correlated_r2(rng, 4, sigma_px).reshape(12, 64, 64)
            sums.append(r2.sum())
            by_blocks.append(_sum_error(r2, block))
            by_pixels.append(_sum_error(r2, per_pixel))  # a block per pixel: the pixels' scatter
        actual = float(np.std(sums))
        blocks, pixels = (float(np.sqrt(np.mean(np.square(v)))) / actual for v in (by_blocks, by_pixels))  # ratios
        # the squares miss the pairs across their edges: measured 0.92 of the spread at 1 px, 0.99 for white noise
        assert 0.85 < blocks < 1.05
        assert pixels < 0.45 if sigma_px else 0.93 < pixels < 1.05  # the pixels: 0.38 of it at 1 px
    assert _sum_error(r2[:, :16, :16], block[:, :16, :16]) == np.inf  # 4 blocks: too few for a standard error


def test_bins_of_correlated_noise_alone_are_not_resolved():
    """Zero excess in noise correlated over 1.5 px: no bin is resolved (with the pixels' scatter as the standard
    error, some bins of the same pairs would be, and the top bins would take their noise's factor)."""
    rng = np.random.default_rng(7)  # a draw where the pixels' scatter resolves two bins, at 3.4 and 3.6 of it
    noise = _correlated_r2(rng, 8, 1.5)
    column = np.linspace(0.002, 0.06, 64)[None, None, None, :]
    prop = np.broadcast_to(column, noise.shape)
    head = np.broadcast_to(column, noise.shape)  # bins: columns
    r2 = noise + prop  # the error is the propagated noise: no excess
    block = np.broadcast_to(np.arange(8)[:, None, None, None] * 16, r2.shape) + _blocks((3, 64, 64), 0)
    _, sums = _bin_excess(r2.ravel(), head.ravel(), prop.ravel(), block.ravel())
    assert not any(e > BIN_SIGMAS * s for e, s, _ in sums)
    per_pixel = np.arange(r2.size)
    _, sums = _bin_excess(r2.ravel(), head.ravel(), prop.ravel(), per_pixel)
    assert any(e > BIN_SIGMAS * s for e, s, _ in sums)


def test_prediction_scales_the_head_by_the_bin_of_its_own_variance(drifting, monkeypatch):  # noqa: F811
    cube, _, den = drifting
    prop = np.full((1, 64, 64), 0.01, np.float32)
    monkeypatch.setattr(Denoiser, "_propagated_variance", lambda self, inp, c, run, mean=None, level=1.0: prop)
    sigma = den.noise["V"]
    frames, context = np.asarray(cube.data)[2, 3, 1:2], np.asarray(cube.data)[[1, 3], 3, 1]
    head = np.exp(den._run(context / sigma, "cpu", None, 1)[1])
    middle = float(np.median(head))
    bins = {"head_edges": [middle], "factors": [0.5, 2.0]}
    args = (frames, context, sigma, bins, "cpu", None, 1, den.model, None, 0, "float32", False, 1.0, 0.0)
    sd = den._denoise_frames(*args)[1] / sigma
    v = sd**2 / (1 - sd**2)  # from the combination's v / (v + 1)
    high = head >= middle
    assert 0.3 < high.mean() < 0.7
    np.testing.assert_allclose(v[~high], 0.25 * head[~high] + 0.01, rtol=1e-4)
    np.testing.assert_allclose(v[high], 4.0 * head[high] + 0.01, rtol=1e-4)


@pytest.mark.parametrize("level", [1.0, 4.0])
def test_files_of_formats_7_and_8_keep_their_bins_of_the_propagated_variance(drifting, monkeypatch, level):  # noqa: F811
    """Their bins are of the propagated variance at the training noise: on a cube of other noise (``level`` times its
    variance) the bootstrap draws at that level, and the bin is read at the training's."""
    cube, _, den = drifting
    prop = np.full((1, 64, 64), 0.004, np.float32)  # 4 times it would cross the edge: the bin is read at the training's
    prop[..., 32:] = 0.1  # the right half: strong propagated noise
    monkeypatch.setattr(Denoiser, "_propagated_variance", lambda self, inp, c, run, mean=None, level=1.0: prop * level)
    sigma = den.noise["V"]
    frames, context = np.asarray(cube.data)[2, 3, 1:2], np.asarray(cube.data)[[1, 3], 3, 1]
    bins = {"edges": [0.01], "factors": [0.5, 2.0]}
    args = (frames, context, sigma, bins, "cpu", None, 1, den.model, None, 0, "float32", False, level, 0.0)
    sd = den._denoise_frames(*args)[1] / sigma
    head = np.exp(den._run(context / sigma, "cpu", None, 1)[1])
    v = level * sd**2 / (level - sd**2)  # from the combination's v n / (v + n)
    np.testing.assert_allclose(v[..., :32], 0.25 * head[..., :32] + 0.004 * level, rtol=1e-4)
    np.testing.assert_allclose(v[..., 32:], 4.0 * head[..., 32:] + 0.1 * level, rtol=1e-4)


def test_bins_of_the_propagated_variance_survive_a_save(drifting, tmp_path):  # noqa: F811
    """A denoiser calibrated before format 9 (bins of the propagated variance, ``edges``), saved again, is still
    what it was calibrated for: the same bins, the same uncertainty."""
    cube, _, den = drifting
    old = copy.deepcopy(den)
    old.calibration_bins = {k: {"edges": [0.01], "factors": [0.5, 2.0]} for k in den.calibration_bins}
    sd = old.predict(cube, stokes=["V"], progress=False).uncertainty.array[:, 3]
    again = Denoiser.load(old.save(tmp_path / "old.pt"))
    assert again.calibration_bins == old.calibration_bins
    again_sd = again.predict(cube, stokes=["V"], progress=False).uncertainty.array[:, 3]
    np.testing.assert_allclose(again_sd, sd, rtol=0, atol=1e-5 * float(np.ptp(sd)))


def test_the_head_bins_do_not_depend_on_the_data_unit(drifting):  # noqa: F811
    """The bins part the head's variance in the training noise's units: the same cube in per cent (its noise levels
    converted) lands in the same bins and gets the same uncertainty, scaled by 100."""
    import astropy.units as u
    from ndcube import NDCube

    cube, _, den = drifting
    assert "head_edges" in den.calibration_bins["V"] and u.Unit(den.unit or "") == u.dimensionless_unscaled
    ref = den.predict(cube, stokes=["V"], seed=0, progress=False).uncertainty.array[:, 3]
    percent = NDCube(np.asarray(cube.data) * 100, wcs=cube.wcs, unit=u.percent)
    out = den.predict(percent, stokes=["V"], seed=0, progress=False).uncertainty.array[:, 3] / 100
    # a pixel whose head lies on a bin's edge to rounding may change bins: all but a handful agree to 1e-4
    close = np.isclose(out, ref, rtol=1e-4, atol=0)
    assert close.mean() > 0.999, close.mean()
    np.testing.assert_allclose(np.median(out), np.median(ref), rtol=1e-5)


def test_bins_without_the_propagated_variance_are_refused_not_ignored(drifting):  # noqa: F811
    # bins alone would leave the head unscaled (factor 1) where it was calibrated beside the propagated noise
    cube, _, den = drifting
    frames, context = np.asarray(cube.data)[2, 3, 1:2], np.asarray(cube.data)[[1, 3], 3, 1]
    bins = {"edges": [0.01], "factors": [0.5, 2.0]}
    args = (frames, context, den.noise["V"], bins, "cpu", None, 1, den.model, None, 0, "float32", False, 1.0, None)
    with pytest.raises(ValueError, match="need the neighbours and their correlation"):
        den._denoise_frames(*args)


def test_fit_measures_the_bins_and_they_travel_with_the_weights(drifting, tmp_path):  # noqa: F811
    _, _, den = drifting
    assert set(den.calibration_bins) == {"Q", "U", "V"}
    for bins in den.calibration_bins.values():
        assert len(bins["head_edges"]) == N_BINS - 1 and np.all(np.diff(bins["head_edges"]) >= 0)
        assert all(_MIN_FACTOR <= f <= 20 for f in bins["factors"])
        assert all(type(c) is int and 0 <= c < 3 for c in bins["noise_channels"])
    assert den.calibration_tunings == {}  # single-scan mode's factors per tuning: not in temporal mode
    prov = den.provenance()
    assert prov["uncertainty_calibration_bins"] == den.calibration_bins
    prov["uncertainty_calibration_bins"]["V"]["factors"][0] = -1.0  # a copy
    assert den.calibration_bins["V"]["factors"][0] != -1.0
    path = copy.deepcopy(den).save(tmp_path / "t.pt")  # a copy: saving sets the fixture's source
    again = Denoiser.load(path)
    assert again.calibration_bins == den.calibration_bins and again._propagation == "bootstrap"
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["uncertainty_calibration_bins"] == den.calibration_bins


def test_temporal_denoisers_before_format_7_keep_the_uncertainty_they_were_calibrated_for(drifting, tmp_path):  # noqa: F811
    """Their head was calibrated against the first-order noise injection: they keep it, and no bins."""
    cube, _, den = drifting
    settings = den._settings() | {"format_version": 6}
    settings.pop("calibration_bins"), settings.pop("propagation")  # not in files before format 7
    old = Denoiser._restore(copy.deepcopy(den.model), settings, Path("old.pt"), "0" * 64)  # its own network
    assert old._propagation == "injection" and old.calibration_bins == {}
    inp = np.random.default_rng(5).standard_normal((2, 64, 64)).astype(np.float32)

    def run(a):
        return den._run(a, "cpu", None, 1)[0]

    np.testing.assert_array_equal(old._propagated_variance(inp, 0.0, run), old._injected_variance(inp, 0.0, run))
    # a first-order slope: on a cube of 4 times the training noise variance, 4 times the variance
    np.testing.assert_allclose(  # two runs of the network: not held to the last bit
        old._propagated_variance(inp, 0.0, run, None, 4.0), 4 * old._injected_variance(inp, 0.0, run), rtol=1e-5
    )
    out = old.predict(cube, stokes=["V"], progress=False)
    assert np.isfinite(out.uncertainty.array[:, 3]).all()
    # saved again (format 7), it still is what it was calibrated for
    again = Denoiser.load(old.save(tmp_path / "old.pt"))
    assert again._propagation == "injection" and again.calibration_bins == {}
    sd = out.uncertainty.array[:, 3]
    again_sd = again.predict(cube, stokes=["V"], progress=False).uncertainty.array[:, 3]
    np.testing.assert_allclose(again_sd, sd, rtol=0, atol=1e-5 * float(np.ptp(sd)))  # still the injection's
    # a warm start is calibrated anew, against the bootstrap, with bins
    old.fit(cube, stokes=["V"], epochs=1, patches_per_epoch=20, patch_size=32, seed=0, progress=False)
    assert old._propagation == "bootstrap" and set(old.calibration_bins) == {"V"}


def test_bins_are_measured_in_the_space_prediction_combines_in(monkeypatch, drifting):  # noqa: F811
    """Whole scans (every component of every scan, as prediction combines them), each Stokes parameter once; the
    head's bins on the components that hold signal only."""
    cube, _, _ = drifting
    seen, binned, powers = [], [], []
    real, real_bins = _calibration._temporal_bins, _calibration._bin_factors

    def spy(r2, head, prop, block, chan, y2, ynear):
        assert block.shape == r2.shape == chan.shape == y2.shape == ynear.shape
        seen.append((r2.size, np.unique(block).size, np.bincount(chan).tolist()))
        # scan t times its neighbours' mean measures the signal's power (the scans' noises are independent): in the
        # strongest component it is the mean square less the noise's 1, for scenes that drift slowly
        strong = chan == np.argmax(np.bincount(chan, y2) / np.bincount(chan))
        powers.append((float(ynear[strong].mean()), float(y2[strong].mean()) - 1.0))
        return real(r2, head, prop, block, chan, y2, ynear)

    def spy_bins(r2, head, prop, block):
        binned.append(r2.size)
        return real_bins(r2, head, prop, block)

    monkeypatch.setattr(_calibration, "_temporal_bins", spy)
    monkeypatch.setattr(_calibration, "_bin_factors", spy_bins)
    fresh = Denoiser(n_filters=4, temporal=1).fit(
        cube, epochs=1, patches_per_epoch=20, patch_size=32, seed=0, progress=False
    )
    assert fresh.spectral_basis and len(seen) == 3
    # every scan's 3 components of 64 x 64 px, less the border bands that the alignment of the drifting scans empties
    assert 0.9 * cube.data.shape[0] * 3 * 64 * 64 < seen[0][0] <= cube.data.shape[0] * 3 * 64 * 64
    assert seen[0][1] == cube.data.shape[0] * (64 // _calibration.BLOCK_PX) ** 2  # squares of each scan
    assert len(seen[0][2]) == 3 and min(seen[0][2]) > 0.9 * cube.data.shape[0] * 64 * 64  # each component's pixels
    for (size, _, counts), lab, n in zip(seen, "QUV", binned, strict=True):
        quiet = fresh.calibration_bins[lab]["noise_channels"] + fresh.calibration_bins[lab]["weak_channels"]
        assert n == size - sum(counts[c] for c in quiet)  # the bins: the other components' pixels
    assert all(p > 1 and 0.85 * s < p < 1.05 * s for p, s in powers), powers


def test_noise_only_channels_are_found_by_their_power_and_left_out_of_the_bins():
    """A channel whose mean square stays below 1 + NOISE_ONLY_POWER (noise units) holds noise alone; the bins are
    those of the other channels' pixels alone."""
    rng = np.random.default_rng(0)
    n = 40_000
    chan = np.repeat(np.arange(3), n)
    y = rng.standard_normal(3 * n) * np.sqrt(np.repeat([1.0, 1.5, 1.02], n))  # signal power 0, 0.5, 0.02
    head = rng.uniform(0.01, 0.1, 3 * n)
    prop = np.full(3 * n, 0.005)
    r2 = _pairs(prop, np.where(chan == 1, 4 * head, 0.0), 1)
    block = np.arange(3 * n)
    ynear = y * rng.standard_normal(3 * n)  # neighbours of noise alone: no signal in common with scan t
    bins = _calibration._temporal_bins(r2, head, prop, block, chan, y**2, ynear)
    assert bins["noise_channels"] == [0, 2] and bins["weak_channels"] == [] and bins["weak_factor"] == 1.0
    own = _bin_factors(r2[chan == 1], head[chan == 1], prop[chan == 1], block[chan == 1])
    assert {k: v for k, v in bins.items() if k in own} == own
    assert own["factors"][-1] == pytest.approx(2.0, rel=0.1)  # the signal channel's excess: 4 x the head
    # no channel of noise alone: all pixels binned, as before format 10
    everything = _calibration._temporal_bins(r2, head, prop, block, chan, y**2 + 1, ynear)
    assert (
        everything["noise_channels"] == [] and everything["factors"] == _bin_factors(r2, head, prop, block)["factors"]
    )


def test_weak_signal_in_a_quiet_channel_is_found_by_the_scans_agreement_and_its_error_measured_without_truth():
    """A quiet channel (mean square below 1.05) whose scan t agrees with its neighbours holds weak signal: its
    propagated variance is scaled to the error ``p^2 - 2 y p + y near`` estimates, at least 1; the bins leave it out."""
    rng = np.random.default_rng(1)
    n = 40_000
    chan = np.repeat(np.arange(3), n)
    signal = rng.standard_normal(3 * n) * np.sqrt(np.repeat([0.0, 0.5, 0.02], n))  # power 0, 0.5, 0.02 of the noise
    y = signal + rng.standard_normal(3 * n)  # scan t
    near = signal + 0.5 * rng.standard_normal(3 * n)  # the mean of four neighbouring scans: the same signal
    p = 0.5 * near  # a prediction that misses half of the weak signal and passes on a quarter of the noise
    r2 = (y - p) ** 2 - 1.0
    prop = np.full(3 * n, 0.03)
    head = rng.uniform(0.01, 0.1, 3 * n)
    block = np.arange(3 * n)
    bins = _calibration._temporal_bins(r2, head, prop, block, chan, y**2, y * near)
    assert bins["noise_channels"] == [0] and bins["weak_channels"] == [2]
    true = float(np.mean((p - signal)[chan == 2] ** 2)) / 0.03  # 0.0675 / 0.03: 2.25
    assert bins["weak_factor"] == pytest.approx(true, rel=0.15)
    assert {k: v for k, v in bins.items() if k in ("head_edges", "factors")} == _bin_factors(
        r2[chan == 1], head[chan == 1], prop[chan == 1], block[chan == 1]
    )
    # a propagated variance above the measured error: the factor stays 1 (never narrower than the bootstrap's)
    assert _calibration._temporal_bins(r2, head, 10 * prop, block, chan, y**2, y * near)["weak_factor"] == 1.0


def test_each_pixel_of_a_calibration_frame_has_its_channel():
    one = _calibration._channels((1, 2, 3), 4)  # image mode: a frame of component (or tuning) 4
    assert one.shape == (1, 2, 3) and np.all(one == 4)
    every = _calibration._channels((3, 2, 2), None)  # spectral mode: all channels of a scan
    assert [np.unique(every[c]).tolist() for c in range(3)] == [[0], [1], [2]]


def test_the_quiet_channels_do_not_depend_on_the_data_unit(drifting):  # noqa: F811
    """The channels' power is read in noise units: the same cube in per cent (its noise in per cent) gives the same
    noise-only channels."""
    import astropy.units as u
    from ndcube import NDCube

    cube, _, _ = drifting
    kw = {"epochs": 1, "patches_per_epoch": 20, "patch_size": 32, "seed": 0, "progress": False}
    plain = Denoiser(n_filters=4, temporal=1).fit(cube, **kw)
    percent = NDCube(np.asarray(cube.data) * 100, wcs=cube.wcs, unit=u.percent)
    scaled = Denoiser(n_filters=4, temporal=1).fit(percent, **kw)
    noise = {k: b["noise_channels"] for k, b in plain.calibration_bins.items()}
    assert noise == {k: b["noise_channels"] for k, b in scaled.calibration_bins.items()}
    # and so is the scans' agreement that marks weak signal, and the factor measured there
    for lab, b in plain.calibration_bins.items():
        assert b["weak_channels"] == scaled.calibration_bins[lab]["weak_channels"]
        assert b["weak_factor"] == pytest.approx(scaled.calibration_bins[lab]["weak_factor"], rel=1e-4)
        # and the bins' factors, each bin's own excess in noise units (resolved or not)
        assert b["factors"] == pytest.approx(scaled.calibration_bins[lab]["factors"], rel=1e-3, abs=1e-3)
    assert any(noise.values()) and not all(len(c) == 3 for c in noise.values())  # both kinds of channel occur


def test_prediction_adds_no_head_in_the_noise_only_channels(drifting):  # noqa: F811
    """In a noise-only channel the variance is the propagated noise alone, whatever the head's factors; the other
    channels keep the head. Eager and lazy agree."""
    import dask.array as da
    from ndcube import NDCube

    cube, _, den = drifting
    den = copy.deepcopy(den)
    edges = den.calibration_bins["V"]["head_edges"]

    def sd(bins, lazy=False):
        den.calibration_bins = {"V": bins}
        data = da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 64, 64)) if lazy else cube.data
        out = den.predict(NDCube(data, wcs=cube.wcs, unit=cube.unit), stokes=["V"], progress=False)
        return np.asarray(out.uncertainty.array[:, 3])

    tiny = sd({"head_edges": edges, "factors": [1e-6] * N_BINS})  # the head's share negligible: the propagated noise
    big = {"head_edges": edges, "factors": [3.0] * N_BINS}
    wide = sd(big)
    assert float(np.mean(wide)) > 1.05 * float(np.mean(tiny))
    np.testing.assert_allclose(sd(big | {"noise_channels": [0, 1, 2]}), tiny, rtol=1e-5)
    # one component of noise alone: between the two, at the tunings
    one = sd(big | {"noise_channels": [2]})
    assert float(np.mean(tiny)) < float(np.mean(one)) < float(np.mean(wide))
    np.testing.assert_allclose(
        sd(big | {"noise_channels": [2]}, lazy=True), one, rtol=0, atol=1e-5 * float(np.ptp(one))
    )
    # weak signal: no head either, the propagated noise times weak_factor (1: as noise alone)
    np.testing.assert_allclose(sd(big | {"weak_channels": [0, 1, 2], "weak_factor": 1.0}), tiny, rtol=1e-5)
    weak = sd(big | {"weak_channels": [0, 1, 2], "weak_factor": 4.0})
    # each component's variance v -> 4 v before it meets scan t's (1): 4 v / (4 v + 1) <= 4 v / (v + 1), at the tunings
    ratio = weak**2 / tiny**2
    assert np.all(ratio > 1) and np.all(ratio <= 4 * (1 + 1e-5)) and float(np.median(ratio)) > 2
    np.testing.assert_allclose(
        sd(big | {"weak_channels": [0, 1, 2], "weak_factor": 4.0}, lazy=True), weak, rtol=0, atol=1e-5 * np.ptp(weak)
    )


def test_predict_uses_the_bins(drifting):  # noqa: F811
    """Bins whose factors are all c give the uncertainty of one factor c: prediction applies them, eager and lazy."""
    import dask.array as da
    from ndcube import NDCube

    cube, _, den = drifting
    den = copy.deepcopy(den)
    edges = den.calibration_bins["V"]["head_edges"]
    den.calibration_bins = {"V": {"head_edges": edges, "factors": [3.0] * N_BINS}}
    binned = den.predict(cube, stokes=["V"], progress=False).uncertainty.array[:, 3]
    lazy = NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 64, 64)), wcs=cube.wcs, unit=cube.unit)
    binned_lazy = np.asarray(den.predict(lazy, stokes=["V"], progress=False).uncertainty.array[:, 3])
    den.calibration_bins, den.calibration = {}, {**den.calibration, "V": 3.0}
    one = den.predict(cube, stokes=["V"], progress=False).uncertainty.array[:, 3]
    np.testing.assert_allclose(binned, one, rtol=1e-6)
    np.testing.assert_allclose(binned_lazy, one, rtol=0, atol=1e-5 * float(np.ptp(one)))
    den.calibration["V"] = 0.05
    assert float(np.mean(den.predict(cube, stokes=["V"], progress=False).uncertainty.array[:, 3])) < float(np.mean(one))


def test_a_denoiser_keeps_the_bootstrap_it_was_calibrated_with(drifting, tmp_path):  # noqa: F811
    """Prediction uses the draws and window of the calibration: saved from format 8, (4, 5) for files of format 7."""
    from sunpy_nn.denoise import _frames
    from sunpy_nn.utils import WeightsError

    cube, _, den = drifting
    assert den._bootstrap == (_frames.BOOTSTRAP_DRAWS, _frames.PROPAGATION_WINDOW) == (2, 7)
    path = copy.deepcopy(den).save(tmp_path / "t.pt")
    again = Denoiser.load(path)
    assert again._bootstrap == (2, 7)
    assert json.loads(path.with_suffix(".json").read_text())["propagation_bootstrap"] == [2, 7]  # in the model card
    settings = den._settings() | {"format_version": 7}
    settings.pop("bootstrap")  # not in files of format 7
    old = Denoiser._restore(copy.deepcopy(den.model), settings, Path("old.pt"), "0" * 64)
    assert old._bootstrap == (4, 5) and old._propagation == "bootstrap"
    # fitted again (a warm start), it is calibrated with the current bootstrap
    old.fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, seed=0, progress=False)
    assert old._bootstrap == (2, 7)
    old._bootstrap = (4, 5)
    calls = []

    def run(a):
        calls.append(1)
        return a.mean(axis=0, keepdims=True)

    inp = np.random.default_rng(6).standard_normal((4, 64, 64)).astype(np.float32)
    mean = run(inp)
    old._propagated_variance(inp, 0.0, run, mean)
    assert len(calls) == 1 + 4  # its four draws, not the current two
    for bad in ([1, 7], [2], "2,7", [2.0, 7], [True, 7], [2, 0], [], None):  # None: a format-8 file without it
        with pytest.raises(WeightsError, match="bootstrap setting"):
            Denoiser._restore(copy.deepcopy(den.model), den._settings() | {"bootstrap": bad}, Path("b.pt"), "0" * 64)


@pytest.mark.parametrize("temporal", [0, 1])
def test_the_calibration_takes_the_scans_its_factors_need(monkeypatch, temporal):
    """Factors per tuning want 2^18 px at each tuning, temporal mode's bins 2^17 (half the network runs of its
    bootstrap on a 256^2 cube: two scans, not four)."""
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    seen = []
    original = _calibration._frame_groups

    def spy(combos, basis, rng, n_tunings, need, lazy):
        seen.append((n_tunings, need))
        return original(combos, basis, rng, n_tunings, need, lazy)

    monkeypatch.setattr(_calibration, "_frame_groups", spy)
    cube, _ = synthetic_crisp_cube(32, n_wavelengths=3, n_scans=4, seed=0)
    den = Denoiser(n_filters=4, depth=1, temporal=temporal)
    den.fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, stokes=["V"], seed=0, progress=False)
    want = _calibration._BINNED_PX if temporal else _calibration._TUNING_PX
    assert seen == [(3, -(-want // 32**2))]
