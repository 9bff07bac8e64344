"""The uncertainty's calibration factor per tuning (single-scan image mode): fitted, applied, lazy and reused."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from ndcube import NDCube

from sunpy_nn import Denoiser
from sunpy_nn.denoise._calibration import _BINNED_PX, _TUNING_PX, _frame_groups

from .test_denoise import CUBE

QUICK = {"epochs": 1, "patches_per_epoch": 20, "patch_size": 16, "seed": 0, "progress": False}


@pytest.fixture(scope="module")
def tunings_denoiser():
    """A denoiser of the tunings themselves (no spectral basis): its network applies to any number of them."""
    return Denoiser(n_filters=4, depth=1, spectral_pca=False).fit(CUBE, **QUICK)


def test_factors_per_tuning_are_fitted_without_a_basis(tunings_denoiser):
    den = tunings_denoiser
    n_w = CUBE.data.shape[2]
    assert {lab: len(f) for lab, f in den.calibration_tunings.items()} == dict.fromkeys("QUV", n_w)
    assert all(0.05 <= f <= 20 for factors in den.calibration_tunings.values() for f in factors)
    # measured at each tuning, not the one factor copied (4 scans x 64^2 px per tuning: above the 10^4 minimum)
    assert any(len(set(factors)) == n_w for factors in den.calibration_tunings.values())
    prov = den.provenance()
    assert prov["uncertainty_calibration_per_tuning"] == den.calibration_tunings
    prov["uncertainty_calibration_per_tuning"]["Q"][0] = -1.0  # a copy: the denoiser's own lists are untouched
    assert den.calibration_tunings["Q"][0] != -1.0


@pytest.mark.parametrize("kw", [{"temporal": 1}, {"mode": "spectral"}], ids=["temporal", "spectral"])
def test_other_modes_keep_one_factor(kw):
    den = Denoiser(n_filters=4, depth=1, **kw).fit(CUBE, **QUICK)
    assert den.calibration_tunings == {} and set(den.calibration) == {"Q", "U", "V"}
    assert den.provenance()["uncertainty_calibration_per_tuning"] is None


@pytest.mark.parametrize("stokes", [("V",), ("Q", "V")])
def test_each_tuning_gets_its_factor_eager_and_lazy(tunings_denoiser, stokes):
    den = tunings_denoiser
    factors = {lab: [0.5, 1.0, 2.0] for lab in "QUV"}
    den.calibration_tunings, saved = factors, den.calibration_tunings
    try:
        out = den.predict(CUBE, stokes=stokes, progress=False)
        lazy = den.predict(
            NDCube(da.from_array(np.asarray(CUBE.data), chunks=(1, 1, 1, 64, 64)), wcs=CUBE.wcs, unit=CUBE.unit),
            stokes=stokes,
            progress=False,
        )
        den.calibration_tunings = {}
        one = den.predict(CUBE, stokes=stokes, progress=False)
    finally:
        den.calibration_tunings = saved
    assert isinstance(lazy.uncertainty.array, da.Array) and lazy.uncertainty.array.dtype == np.float32
    lazy_sd = lazy.uncertainty.array.compute()
    for lab in stokes:
        s = "IQUV".index(lab)
        want = np.asarray(factors[lab]) / den.calibration[lab]
        ratio = out.uncertainty.array[:, s] / one.uncertainty.array[:, s]
        np.testing.assert_allclose(ratio, np.broadcast_to(want[None, :, None, None], ratio.shape), rtol=1e-6)
        sd = out.uncertainty.array[:, s]
        # lazy and in-memory: the same network on the same frames, to float rounding (1e-5 of the output's range)
        np.testing.assert_allclose(lazy_sd[:, s], sd, rtol=0, atol=1e-5 * float(np.ptp(sd)))
    # the Stokes parameters not denoised keep the uncertainty they had (the noise estimate), at every tuning
    np.testing.assert_array_equal(out.uncertainty.array[:, 0], one.uncertainty.array[:, 0])


def test_another_number_of_tunings_uses_the_one_factor(tunings_denoiser):
    den = tunings_denoiser
    part = CUBE[:, :, :2]  # two of the three tunings: the factors per tuning do not apply
    out = den.predict(part, progress=False)
    saved, den.calibration_tunings = den.calibration_tunings, {}
    try:
        one = den.predict(part, progress=False)
    finally:
        den.calibration_tunings = saved
    np.testing.assert_array_equal(out.uncertainty.array, one.uncertainty.array)


def test_calibration_frames_are_whole_scans_with_enough_pixels():
    rng = np.random.default_rng(0)
    combos = [(1, 0), (2, 2), (3, 1), (4, 0)]
    # factors per tuning, in memory: all tunings of as many scans as give 2^18 px per tuning (here all four)
    groups = _frame_groups(combos, None, rng, 3, -(-_TUNING_PX // 2**16), lazy=False)
    assert groups == [[(t, w)] for t in (1, 2, 3, 4) for w in range(3)]
    # a lazy cube is read: two scans at most
    groups = _frame_groups(combos, None, rng, 3, -(-_TUNING_PX // 2**10), lazy=True)
    assert len(groups) == 6 and len({t for [(t, _)] in groups}) == 2
    # with a spectral basis, one group per scan with all its components, rotated back together
    groups = _frame_groups(combos, np.eye(3), rng, 3, -(-_TUNING_PX // 2**16), lazy=False)
    assert groups == [[(t, w) for w in range(3)] for t in (1, 2, 3, 4)]
    # temporal mode's bins pool the tunings: half the pixels per tuning, two scans of 256^2 px (of four)
    groups = _frame_groups(combos, np.eye(3), rng, 3, -(-_BINNED_PX // 2**16), lazy=False)
    assert len(groups) == 2 and all(len(g) == 3 for g in groups)
    # ... and all scans of a 128^2 cube
    assert len(_frame_groups(combos, np.eye(3), rng, 3, -(-_BINNED_PX // 2**14), lazy=False)) == 4
    # one factor (temporal mode): the sampled frames as they are
    assert _frame_groups(combos, None, rng, 0, 1, lazy=False) == [[c] for c in combos]


def test_lazy_calibration_reads_each_scan_once(monkeypatch):
    """The factors per tuning of a lazy cube: whole scans, each read once for all its tunings."""
    from sunpy_nn.denoise import _calibration

    from .test_dask import CountingArray

    def reads(cache: bool) -> int:
        source = CountingArray(np.asarray(CUBE.data))
        lazy = NDCube(da.from_array(source, chunks=(1, 1, 1, 64, 64), asarray=False), wcs=CUBE.wcs, unit=CUBE.unit)
        den = Denoiser(n_filters=4, depth=1, spectral_pca=False)
        calls = []
        real = _calibration._CalibrationMixin._calibrate

        def counted(self, *args):
            before = source.read
            out = real(self, *args)
            calls.append(source.read - before)
            return out

        monkeypatch.setattr(_calibration._CalibrationMixin, "_calibrate", counted)
        if not cache:
            monkeypatch.setattr(_calibration, "_ScanCache", lambda data: data)
        import dask

        with dask.config.set(scheduler="threads"):  # reads in this process, where they are counted
            den.fit(lazy, **QUICK)
        assert {lab: len(f) for lab, f in den.calibration_tunings.items()} == dict.fromkeys("QUV", 3)
        return calls[0]

    frame = CUBE.data[0, 0, 0].nbytes
    once = reads(cache=True)
    # two scans of 3 tunings, with the scans before and after each (symmetric pairs): at most 4 scans per Stokes
    assert 0 < once <= 3 * 4 * 3 * frame
    assert once < reads(cache=False)  # frame by frame, the neighbouring scans are read again for every tuning


def test_a_tuning_whose_error_is_not_resolved_keeps_the_pooled_factor():
    from sunpy_nn.denoise._calibration import _MIN_TUNING_PX, _tuning_factors

    den = np.full(5, 100.0)  # the head's summed variances
    num = np.array([25.0, -3.0, 0.25, 0.26, 25.0])  # summed error variances: resolved, below zero, at the floor, above
    count = np.array([_MIN_TUNING_PX] * 4 + [_MIN_TUNING_PX - 1])
    factors = _tuning_factors(num, den, count, pooled=0.8)
    assert factors[:2] == [0.5, 0.8] and factors[2] == 0.8  # at the floor (0.05**2 x 100): not resolved
    assert factors[3] == pytest.approx(0.0026**0.5) and factors[4] == 0.8  # just above it; too few pixels
