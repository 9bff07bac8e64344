"""The registration of the scans onto one another (``Denoiser(align=True)``): shifts, the shift itself, its use."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
from ndcube import NDCube
from scipy import ndimage

from sunpy_nn import Denoiser
from sunpy_nn.data.synthetic import synthetic_crisp_cube
from sunpy_nn.denoise import _align, _fit
from sunpy_nn.denoise._align import EDGE_PX, align_scans, cube_shifts, scan_shifts, shift_frames
from sunpy_nn.training.noise2noise import temporal_neighbours

QUICK = {"epochs": 1, "patches_per_epoch": 20, "patch_size": 16, "seed": 0, "progress": False}
# (y, x) px that move each scan of the scene: registering scan t onto the middle one (index 2) undoes it
MOVES = np.array([[0.0, 0.0], [0.3, -0.2], [0.9, 0.4], [1.6, -0.7], [2.05, 0.15]])


def _scene(size: int = 96, seed: int = 0) -> np.ndarray:
    """A granulation-like smooth random scene, larger than ``size`` by a border that shifting needs."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.standard_normal((size + 32, size + 32)), 2.0) * 20


def _moved_scans(noise: float = 0.01, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Scans ``(5, size, size)`` of one scene moved by `MOVES` plus white noise, and the noise-free scans."""
    scene = _scene(size)
    clean = np.stack([ndimage.shift(scene, m, order=5, mode="nearest")[16:-16, 16:-16] for m in MOVES])
    noisy = clean + noise * np.random.default_rng(1).standard_normal(clean.shape)
    return noisy, clean


def test_scan_shifts_find_the_motion_to_a_hundredth_of_a_pixel():
    images, _ = _moved_scans()
    found = scan_shifts(images)
    assert found.shape == (5, 2)
    np.testing.assert_allclose(found, MOVES[2] - MOVES, atol=0.02)
    np.testing.assert_array_equal(found[2], 0.0)  # the middle scan is the reference


def test_scan_shifts_leave_out_nan_pixels_and_empty_scans():
    images, _ = _moved_scans()
    images[1, 10:30, 10:40] = np.nan
    images[4] = np.nan  # no valid pixel: no shift to measure, 0 from the one before
    found = scan_shifts(images)
    np.testing.assert_allclose(found[:4], (MOVES[2] - MOVES)[:4], atol=0.04)  # a hole in one scan: 0.03 off
    np.testing.assert_allclose(found[4], found[3], atol=1e-12)


def test_a_lost_frame_inside_the_series_is_bridged():
    """A scan without data (a lost frame) between two scans: those two are measured against each other, so the
    scans before the gap keep their shifts onto the middle one (with steps of 0 they were off by the drift)."""
    images, _ = _moved_scans()
    images[1] = np.nan
    found = scan_shifts(images)
    expected = MOVES[2] - MOVES
    np.testing.assert_allclose(found[[0, 2, 3, 4]], expected[[0, 2, 3, 4]], atol=0.03)
    np.testing.assert_allclose(found[1], found[0], atol=1e-12)  # the lost frame's own: that of the scan before it


@pytest.mark.parametrize("lost", [[1], [2, 3]])
def test_a_lazy_registration_bridges_lost_frames_as_in_memory(lost):
    """`StackRegistration` (dask cubes, read step by step) bridges lost frames as `scan_shifts` does, however the
    steps are batched: the shifts over the gap are those of the scans with data."""
    images, _ = _moved_scans()
    images[lost] = np.nan
    canon = np.repeat(images[:, None, None], 2, axis=2)  # (scan, Stokes I, 2 tunings, y, x)
    lazy = da.from_array(canon, chunks=(1, 1, 1, 48, 48))
    expected = scan_shifts(images)
    for batch in (1, 8):
        register = _align.StackRegistration(lazy, 0, all_tunings=True)
        register.BATCH = batch
        np.testing.assert_allclose(register.shifts(0, 5), expected, atol=1e-9)
    ok = [t for t in range(5) if t not in lost]  # the scans with data lie on one another as the scene moved
    np.testing.assert_allclose(expected[ok] - expected[ok[0]], MOVES[ok[0]] - MOVES[ok], atol=0.04)


def test_shifted_scans_lie_on_the_reference():
    """Shifting each noise-free scan by its measured shift puts it on the middle scan (away from the border)."""
    images, clean = _moved_scans(noise=0.0)
    aligned = np.stack([shift_frames(c, s) for c, s in zip(clean, scan_shifts(images), strict=True)])
    core = np.s_[:, 8:-8, 8:-8]
    span = np.ptp(clean[2])
    before = np.abs(clean - clean[2])[core].max()
    after = np.abs(aligned - clean[2])[core].max()  # NaN only in the bands the shifts brought in (< 3 px)
    assert after < 0.02 * span < before


def test_the_shift_keeps_white_noise_white_and_of_its_variance():
    noise = np.random.default_rng(3).standard_normal((200, 64, 64)).astype(np.float32)
    out = shift_frames(noise, (0.5, -0.3))
    inner = out[:, 3:-3, 3:-3]
    assert inner.dtype == np.float32
    assert abs(inner.var() - 1) < 0.02  # unitary, away from the reflected border
    lag = np.mean(inner[:, :, 1:] * inner[:, :, :-1]) / inner.var()
    assert abs(lag) < 0.02  # still white: no interpolation smoothing


def test_the_shift_runs_its_transforms_on_the_networks_threads_with_the_same_result(policy, monkeypatch):
    """The FFTs take the count the thread's networks run on (the package's thread policy: here 3 in the main thread,
    1 in a pool thread such as a block of a lazy prediction, the user's count everywhere once chosen), and the frames
    come out the same whatever the count (each transform is computed whole by one thread)."""
    from concurrent.futures import ThreadPoolExecutor

    import scipy.fft

    from sunpy_nn.nn import configure_threads

    seen = []
    rfft2 = scipy.fft.rfft2
    monkeypatch.setattr(scipy.fft, "rfft2", lambda *a, **kw: seen.append(kw.get("workers")) or rfft2(*a, **kw))
    frames = np.random.default_rng(4).standard_normal((6, 40, 40)).astype(np.float32)

    def shifted():
        return shift_frames(frames, (0.4, -1.3))

    main = shifted()
    assert seen == [3, 3]  # the periodic part's decomposition and its shift
    with ThreadPoolExecutor(1) as pool:
        pooled = pool.submit(shifted).result()
    assert seen[2:] == [1, 1]
    configure_threads(2)  # the user's count, in every thread
    with ThreadPoolExecutor(1) as pool:
        pool.submit(shifted).result()
    assert seen[4:] == [2, 2]
    configure_threads()
    np.testing.assert_allclose(main, pooled, rtol=0, atol=4 * np.spacing(np.float32(np.nanmax(np.abs(main)))))


def test_a_zero_shift_is_a_copy_and_nan_moves_with_the_frame():
    frames = np.random.default_rng(0).standard_normal((2, 32, 32)).astype(np.float32)
    same = shift_frames(frames, (0.0, 0.0))
    np.testing.assert_array_equal(same, frames)
    assert same is not frames
    frames[0, 10:12, 5:9] = np.nan
    kept = frames.copy()
    out = shift_frames(frames, (3.0, 0.0))
    np.testing.assert_array_equal(frames, kept)  # the caller's frames untouched
    assert np.isnan(out[:, :3]).all()  # the rows the shift brought in from the other border
    rows = np.where(np.isnan(out[0, 3:]).any(axis=1))[0] + 3
    assert set(rows) >= {13, 14} and rows.min() >= 12 and rows.max() <= 15
    assert np.isfinite(out[1, 3:]).all()  # another channel's pixels are not lost ...
    alone = shift_frames(frames[1:], (3.0, 0.0))  # ... nor changed: plane 1 shifts as if plane 0 had no hole
    np.testing.assert_allclose(out[1], alone[0], rtol=0, atol=1e-5 * np.nanmax(np.abs(alone)))
    small = shift_frames(frames[1], (0.04, -0.3))
    assert np.isfinite(small[:, :-1]).all() and np.isnan(small[:, -1]).all()  # below 0.05 px: no band


@pytest.mark.parametrize("shape", [(17, 18), (3, 17, 18), (2, 1, 17, 18)])
@pytest.mark.parametrize("order", [1, 3])
def test_each_image_is_shifted_as_the_n_dimensional_spline_shifts_it(shape, order):
    frames = np.cumsum(np.random.default_rng(7).standard_normal(shape), axis=-1)
    shift = np.array([0.37, -1.23])
    out = _align._shift_planes(frames, shift, order)
    reference = ndimage.shift(frames, (0,) * (len(shape) - 2) + tuple(shift), order=order, mode="nearest")
    assert out.shape == frames.shape and out.dtype == frames.dtype
    assert np.abs(out - reference).max() < 1e-12 * np.ptp(reference)


@pytest.mark.parametrize("shift", [(0.6, -1.4), (-1.7, 1.2), (1.3, 0.3), (-0.4, -2.0)])
def test_narrow_bands_take_the_frames_own_border_values(shift):
    frames = np.random.default_rng(4).standard_normal((2, 40, 40)).astype(np.float32)
    plain = shift_frames(frames, shift)
    np.testing.assert_array_equal(plain, shift_frames(frames, shift, edge=0))  # edge=0: the default
    out = shift_frames(frames, shift, edge=2)
    bands = [int(np.ceil(abs(s) - 0.05)) for s in shift]
    # the band of each axis: at the start for a positive shift, at the end for a negative one
    outer = [slice(0, b) if s > 0 else slice(40 - b, 40) for s, b in zip(shift, bands, strict=True)]
    inner = [slice(b, 40) if s > 0 else slice(0, 40 - b) for s, b in zip(shift, bands, strict=True)]
    assert np.isnan(plain[:, outer[0]]).all() and np.isnan(plain[:, :, outer[1]]).all()
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, inner[0], inner[1]], plain[:, inner[0], inner[1]])  # brought in: unchanged
    # the bands (corners included): the frame's value at the shifted position, held at its border beyond it
    held = np.stack([ndimage.shift(f, shift, order=1, mode="nearest") for f in frames])
    band = np.zeros(frames.shape, bool)
    band[:, outer[0]] = band[:, :, outer[1]] = True
    np.testing.assert_allclose(out[band], held[band], rtol=0, atol=1e-6 * np.ptp(frames))
    # independently: with no shift along the border a band row is the border row itself, and a corner the corner pixel
    # (to float32 rounding: the spline's weights on the held border row sum to 1 in floating point)
    ulps = 1e-6 * np.ptp(frames)
    along = shift_frames(frames, (shift[0], 0.0), edge=2)
    border = np.broadcast_to(frames[:, [0 if shift[0] > 0 else -1]], along[:, outer[0]].shape)
    np.testing.assert_allclose(along[:, outer[0]], border, rtol=0, atol=ulps)
    corner = (0 if shift[0] > 0 else -1, 0 if shift[1] > 0 else -1)
    np.testing.assert_allclose(out[:, corner[0], corner[1]], frames[:, corner[0], corner[1]], rtol=0, atol=ulps)


@pytest.mark.parametrize("shift", [(0.07, 0.0), (-0.3, 0.0), (0.0, 0.45), (-1.6, 0.0)])
def test_a_narrow_band_of_a_smooth_field_errs_by_the_shift_not_by_a_pixel(shift):
    """The band's farthest pixel lies ``|shift|`` px beyond the frame's last row, whose value it takes: for a field of
    constant gradient the error is at most that distance times the gradient, under the whole pixel further in of
    the nearest row the shift brought in (the fill before 0.1.dev662, which fails the bound at every shift here)."""
    yy, xx = np.mgrid[:48, :48].astype(np.float64)
    slope = (0.8, -0.5)

    def field(y, x):
        return slope[0] * y + slope[1] * x + np.sin(x / 9.0)  # a ramp: its shift is known exactly

    frames = field(yy, xx)[None].astype(np.float32)
    out = shift_frames(frames, shift, edge=2)[0]
    exact = field(yy - shift[0], xx - shift[1])  # what the shifted frame holds where the data extend beyond
    axis = 0 if shift[0] else 1
    s = shift[axis]
    band = int(np.ceil(abs(s) - 0.05))
    rows = slice(0, band) if s > 0 else slice(48 - band, 48)
    region = out[rows] if axis == 0 else out[:, rows]
    truth = exact[rows] if axis == 0 else exact[:, rows]
    beyond = abs(s)  # the farthest band pixel's distance beyond the border, in px
    gradient = abs(slope[axis]) + (1 / 9.0 if axis == 1 else 0.0)
    assert np.abs(region - truth).max() <= beyond * gradient + 1e-4


def test_wide_bands_and_holes_at_the_border_stay_nan():
    frames = np.random.default_rng(5).standard_normal((1, 40, 40)).astype(np.float32)
    wide = shift_frames(frames, (2.5, 0.0), edge=2)  # a 3-px band: no edge to repeat that far
    assert np.isnan(wide[:, :3]).all() and np.isfinite(wide[:, 3:]).all()
    holed = frames.copy()
    holed[0, 0, 10] = np.nan  # a hole in the row next to the band: repeated as a hole, never filled with data
    out = shift_frames(holed, (0.6, 0.0), edge=2)
    assert np.isnan(out[0, :2, 10]).all() and np.isfinite(out[0, :, 20]).all()
    tiny = shift_frames(frames[:, :2, :8], (-2.0, 0.0), edge=2)  # the band is the whole frame: nothing to repeat
    assert np.isnan(tiny).all()
    huge = shift_frames(frames[:, :4, :8], (-6.0, 0.0))  # a band wider than the frame: all of it NaN
    assert np.isnan(huge).all()


def test_a_lazy_cubes_shifts_are_those_of_the_cube_in_memory():
    images, _ = _moved_scans(size=32)
    data = np.repeat(images[:, None, None], 2, axis=1).repeat(3, axis=2)  # (scan, I/V, 3 tunings, y, x)
    eager = cube_shifts(data, ["I", "V"])
    assert np.abs(eager).max() > 1  # there is a motion to find
    # measured step by step on Stokes I, all tunings: the same numbers
    np.testing.assert_array_equal(cube_shifts(da.from_array(data, chunks=(1, 1, 1, 32, 32)), ["I", "V"]), eager)


def test_align_scans_shifts_each_scan_in_place():
    cube = np.random.default_rng(0).standard_normal((3, 2, 2, 40, 40)).astype(np.float32)
    shifts = np.array([[0.4, -0.1], [0.0, 0.0], [-1.3, 0.6]])
    expected = [shift_frames(cube[t], shifts[t]) for t in range(3)]
    out = align_scans(cube, shifts)
    assert out is cube
    for t in range(3):
        np.testing.assert_array_equal(out[t], expected[t])


def test_the_shifts_do_not_depend_on_the_unit_of_the_data():
    images, _ = _moved_scans()
    data = np.repeat(images[:, None, None], 2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(cube_shifts(1000 * data, ["I", "V"]), cube_shifts(data, ["I", "V"]))


def test_cube_shifts_need_stokes_i_and_two_scans():
    images, _ = _moved_scans(size=32)
    data = np.repeat(images[:3, None, None], 2, axis=1).repeat(2, axis=2)  # (3, 2, 2, 32, 32)
    assert cube_shifts(data, ["Q", "V"]) is None
    assert cube_shifts(data[:1], ["I", "V"]) is None
    assert cube_shifts(data, ["I", "V"]).shape == (3, 2)


@pytest.fixture(scope="module")
def drifting():
    """A CRISP-like cube whose scene drifts by 1-1.5 px per scan (a poor alignment), and its noise-free scans."""
    return synthetic_crisp_cube(48, n_wavelengths=3, n_scans=5, seed=2, drift=(1.0, 1.5))


def test_fit_trains_on_the_aligned_scans(drifting, monkeypatch):
    cube, truth = drifting
    seen = []
    real = _fit.Noise2NoisePairs
    monkeypatch.setattr(_fit, "Noise2NoisePairs", lambda data, *a, **k: seen.append(data) or real(data, *a, **k))
    den = Denoiser(n_filters=4, depth=1).fit(cube, **QUICK)
    shifts = np.array(den.fit_settings["scan_shifts"])
    expected = scan_shifts(truth[:, 0].mean(axis=1))  # those of the noise-free Stokes I
    assert np.abs(shifts).max() > 1.5  # the drift is there to find
    np.testing.assert_allclose(shifts, expected, atol=0.03)
    assert den.provenance()["align"] is True
    off = Denoiser(n_filters=4, depth=1, align=False).fit(cube, **QUICK)
    assert off.fit_settings["scan_shifts"] is None and off.provenance()["align"] is False

    def change(data):  # Stokes I (granulation, in noise units) from one scan to the next, inside the NaN bands
        return np.nanstd(np.diff(data[:, 0], axis=0)[..., 6:-6, 6:-6])

    aligned, raw = seen[0], seen[-1]  # the pairs' cube of each fit
    assert np.isnan(aligned[..., :1, :]).any() or np.isnan(aligned[..., -1:, :]).any()  # bands brought in
    assert change(aligned) < 0.3 * change(raw)  # the pairs' scans lie on one another
    np.testing.assert_array_equal(np.asarray(cube.data), np.asarray(drifting[0].data))  # the caller's cube kept


def test_temporal_predict_registers_each_neighbour_onto_scan_t(drifting, monkeypatch):
    cube, truth = drifting
    den = Denoiser(n_filters=4, depth=1, temporal=1, spectral_pca=False).fit(cube, **QUICK)
    clean = NDCube(truth, wcs=cube.wcs, unit=cube.unit)  # noise-free: neighbours differ by the drift alone
    seen = []
    real = Denoiser._denoise_frames

    def spy(self, frames, context, *args, **kw):
        seen.append((frames, context))
        return real(self, frames, context, *args, **kw)

    monkeypatch.setattr(Denoiser, "_denoise_frames", spy)

    def mismatch():  # rms of neighbour - scan t, V, away from the bands
        d = [c - f for f, c in seen]
        return np.sqrt(np.nanmean(np.square(np.stack(d)[..., 6:-6, 6:-6])))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the noise-free cube's noise is far from the training noise
        den.predict(clean, stokes=("V",), progress=False)
        aligned = mismatch()
        seen.clear()
        den.align = False
        den.predict(clean, stokes=("V",), progress=False)
    assert aligned < 0.2 * mismatch()


def test_temporal_neighbours_keep_their_border_where_the_shift_is_small(drifting, monkeypatch):
    """A neighbour shifted onto scan t by up to EDGE_PX px fills its band from its own edge: those border pixels
    are predicted from the neighbours, not returned with scan t's full noise (which raised the benchmark's error)."""
    cube, _ = drifting
    den = Denoiser(n_filters=4, depth=1, temporal=2, spectral_pca=False).fit(cube, **QUICK)
    shifts = np.array(den.fit_settings["scan_shifts"])
    contexts = []
    real = Denoiser._denoise_frames

    def spy(self, frames, context, *args, **kw):
        contexts.append(context)
        return real(self, frames, context, *args, **kw)

    monkeypatch.setattr(Denoiser, "_denoise_frames", spy)
    den.predict(cube, stokes=("V",), progress=False)
    n_t, n_w = cube.data.shape[0], 3
    narrow = []
    for t in range(n_t):
        bands = [np.ceil(np.abs(shifts[u] - shifts[t]) - 0.05).max() for u in temporal_neighbours(t, n_t, 2)]
        finite = all(np.isfinite(contexts[t * n_w + w]).all() for w in range(n_w))
        assert finite == (max(bands) <= EDGE_PX), (t, bands)
        narrow.append(finite)
    assert any(narrow) and not all(narrow)  # the drift gives both kinds of scans


def test_temporal_mode_returns_scan_t_where_no_neighbour_has_data(drifting):
    cube, _ = drifting
    den = Denoiser(n_filters=4, depth=1, temporal=1).fit(cube, **QUICK)
    data = np.array(cube.data)
    data[1:3, 3, :, 20:30, 20:30] = np.nan  # scan 0's neighbours (1 and 2) miss this patch of V
    out = den.predict(NDCube(data, wcs=cube.wcs, unit=cube.unit), stokes=("V",), progress=False)
    patch = np.s_[0, 3, :, 22:28, 22:28]
    np.testing.assert_allclose(out.data[patch], data[patch], rtol=0, atol=1e-5 * np.ptp(data[0, 3]))
    sd = out.uncertainty.array[patch]  # the noise of V in this cube (estimated anew: 1 % from the training's)
    np.testing.assert_allclose(sd, sd.flat[0], rtol=1e-5)
    assert sd.flat[0] == pytest.approx(den.noise["V"], rel=0.02)
    assert np.isfinite(out.data[0, 3]).all()


def test_align_is_saved_and_older_files_read_as_not_aligned(drifting, tmp_path):
    cube, _ = drifting
    den = Denoiser(n_filters=4, depth=1, align=False).fit(cube, **QUICK)
    assert Denoiser.load(den.save(tmp_path / "off")).align is False
    den.align = True
    assert Denoiser.load(den.save(tmp_path / "on")).align is True
    settings = den._settings()
    del settings["align"]  # as files before format 5 were written
    restored = Denoiser._restore(den.model, settings, tmp_path / "old.pt", "0" * 64)
    assert restored.align is False


def test_align_must_be_a_bool():
    with pytest.raises(ValueError, match="align must be True or False"):
        Denoiser(align="yes")


def test_structureless_stokes_i_is_not_aligned(caplog):
    """Noise alone correlates by chance: its 'shifts' would move the scans at random. They are taken as 0."""
    images = np.random.default_rng(5).standard_normal((4, 64, 64))
    images[2:] += _scene(64)[16:-16, 16:-16]  # scans 2 and 3 show the Sun
    with caplog.at_level("WARNING", logger="sunpy_nn.denoise._align"):
        found = scan_shifts(images)
    assert "Scans [1, 2] were not aligned" in caplog.text
    np.testing.assert_array_equal(found[:3], 0.0)
    np.testing.assert_allclose(found[3], 0.0, atol=0.1)  # scan 3 is scan 2 moved by nothing (noise of 1 here)
    flat = np.ones((3, 2, 2, 32, 32)) + 0.01 * np.random.default_rng(0).standard_normal((3, 2, 2, 32, 32))
    assert cube_shifts(flat, ["I", "V"]) is None  # nothing measured: not aligned at all


def test_predict_estimates_a_drifting_cubes_noise_on_aligned_scans(monkeypatch):
    """`predict` on a cube it was not given the noise of estimates it, as `fit` does, on the aligned scans: a drift of
    1-1.5 px per scan between strong fields reads as noise in all pixels' scan differences (4-11 % too much here).
    Q, U and V count their weakly polarised pixels only, where the drift barely enters. A lazy cube's fit samples
    the same pairs."""
    cube, _ = synthetic_crisp_cube(48, n_wavelengths=3, n_scans=5, seed=3, drift=(1.0, 1.5), v_peak=60, qu_peak=30)
    injected = cube.meta["noise"]
    measured = {}
    for align in (True, False):
        den = Denoiser(n_filters=4, depth=1, align=align).fit(cube, **QUICK)
        out = den.predict(cube, stokes=("V",), progress=False)
        measured[align] = out.meta["sunpy_nn"]["noise_of_input"]
        with monkeypatch.context() as m:  # all pixels, where the alignment is what removes the drift
            m.setattr("sunpy_nn.denoise._noise._weak_signal_mask", lambda frames, d: None)
            every = den.predict(cube, stokes=("V",), progress=False).meta["sunpy_nn"]["noise_of_input"]
        for label in "QUV":
            if align:
                assert every[label] == pytest.approx(injected, rel=0.025)
            else:
                assert every[label] > 1.035 * injected  # the drift, read as noise
    lazy = NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 48, 48)), wcs=cube.wcs, unit=cube.unit)
    measured["lazy"] = den.predict(lazy, stokes=("V",), progress=False).meta["sunpy_nn"]["noise_of_input"]
    den.align = True
    measured["lazy aligned"] = den.predict(lazy, stokes=("V",), progress=False).meta["sunpy_nn"]["noise_of_input"]
    for label in "IQUV":
        # Over 10 seeds of this cube, aligned: Stokes I 0.990 +- 0.011 of the injected noise (1.001 +- 0.014 with
        # all pixels of its references), Q/U/V 0.993-0.996 +- 0.005-0.010; seed 3 gives I 0.973
        tolerance = 0.035 if label == "I" else 0.025
        assert measured[True][label] == pytest.approx(injected, rel=tolerance)
        assert measured[False][label] == pytest.approx(injected, rel=tolerance)  # the drift barely enters
        assert measured[False][label] != measured[True][label]  # the scans were aligned first
        # the same sampled frames and pair shifts in memory or not
        assert measured["lazy"][label] == pytest.approx(measured[False][label], rel=1e-6)
        assert measured["lazy aligned"][label] == pytest.approx(measured[True][label], rel=1e-6)
    in_mjy = NDCube(np.asarray(cube.data) * 1e3, wcs=cube.wcs, unit="1e-3")  # another unit: the same registration
    scaled = den.predict(in_mjy, stokes=("V",), progress=False).meta["sunpy_nn"]["noise_of_input"]
    assert scaled == pytest.approx({k: 1e3 * v for k, v in measured[True].items()}, rel=1e-4)
    lazy_fit = Denoiser(n_filters=4, depth=1).fit(lazy, **QUICK)  # a lazy fit samples the same aligned pairs
    assert lazy_fit.noise == pytest.approx(measured["lazy aligned"], rel=1e-6)


@pytest.mark.parametrize("spectral_pca", [False, True])
def test_a_lazy_fit_registers_the_stacks_of_scans_it_reads(drifting, monkeypatch, caplog, spectral_pca):
    """A dask-backed cube is not aligned whole (`cube_shifts` would read all of Stokes I): the stacks of scans that
    its training reads (the pool, the validation pairs, the calibration pairs; whole spectra with ``spectral_pca``)
    are registered as they are read, on the shifts of the noise-free scenes, and its pairs' scans lie on one
    another as an aligned cube's do, up to the border of their columns."""
    from sunpy_nn.training._whole_frames import _frame_pair

    cube, truth = drifting
    lazy = NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 48, 48)), wcs=cube.wcs, unit=cube.unit)
    seen = []
    real = _fit.Noise2NoisePairs
    monkeypatch.setattr(_fit, "Noise2NoisePairs", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    fits = {}
    for align in (True, False):
        kw = QUICK | {"stokes": ("I", "V"), "patch_size": 16, "val_fraction": 0.45}
        fits[align] = Denoiser(n_filters=4, depth=1, align=align, spectral_pca=spectral_pca).fit(lazy, **kw)
    (train, val), (raw, raw_val) = seen[:2], seen[2:]
    assert train.register is not None and val.register is train.register and raw.register is None
    # the steps measured (scan t onto t + 1) are those of the noise-free Stokes I, at the tunings used
    steps = fits[True].fit_settings["scan_steps"]
    expected = -np.diff(scan_shifts(truth[:, 0].mean(axis=1)), axis=0)
    assert len(steps) >= 2 and "scan_steps" not in fits[False].fit_settings
    for t, step in steps.items():
        np.testing.assert_allclose(step, expected[int(t)], atol=0.05)
    assert "were not aligned" not in caplog.text  # every step measured

    def change(pairs):  # Stokes I (in noise units) from one scan to the next in the pool, inside the bands
        stacks = [st for s, st, _ in pairs.pool if s == 0]
        return np.sqrt(np.nanmean([np.nanmean(np.diff(st, axis=0)[..., 6:-6, 6:-6] ** 2) for st in stacks]))

    assert change(train) < 0.5 * change(raw)
    assert change(val) < 0.5 * change(raw_val)
    # the columns beyond the crop were read, so its inner border holds data, as in memory (the frame's own border,
    # x = 0 for the training columns and the last one for the validation strip, has the bands a shift brings in)
    for pairs, inner_border in ((train, -1), (val, 0)):
        x0, x1 = pairs.x_range
        stacks = [st for _, st, _ in pairs.pool]
        assert all(st.shape[-1] == x1 - x0 and np.isfinite(st[..., 6:-6, inner_border]).all() for st in stacks)
    if spectral_pca:
        return
    rng = np.random.default_rng(0)  # the calibration's whole-frame pairs: scan t against its neighbours' mean
    x, y, _ = _frame_pair(train, 2, 0, 1, rng)
    x_raw, y_raw, _ = _frame_pair(raw, 2, 0, 1, rng)
    inner = np.s_[..., 6:-6, 6:-6]
    # the pair's noise (variance 1 + 1/2 in noise units) aside, what is left of the scans' difference is the drift
    excess = np.nanvar((x - y)[inner]) - 1.5, np.nanvar((x_raw - y_raw)[inner]) - 1.5
    assert excess[0] < 0.05 * excess[1]
    # scan t itself stays where it is (in the noise units of each fit: the aligned one's noise is lower)
    np.testing.assert_allclose(x * fits[True].noise["I"], x_raw * fits[False].noise["I"], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(lazy.data), np.asarray(cube.data))  # the caller's cube kept


def test_stack_registration_composes_the_steps_as_scan_shifts_does():
    from sunpy_nn.denoise._align import StackRegistration

    images, _ = _moved_scans(size=48)
    data = np.repeat(images[:, None, None], 4, axis=2)  # (scan, Stokes I, 4 tunings, y, x)
    register = StackRegistration(da.from_array(data, chunks=(1, 1, 1, 48, 48)), 0)
    assert register.waves == [0, 2, 3]  # up to 3 tunings spread over the line
    for t, n in ((0, 3), (1, 3), (2, 3), (1, 2), (0, 5)):
        np.testing.assert_allclose(register.shifts(t, n), scan_shifts(images[t : t + n]), atol=1e-9)
    stack = np.asarray(data[1:4, 0])
    (moved,) = register([1], [stack])
    np.testing.assert_array_equal(moved[1], stack[1].astype(np.float32))  # the middle scan is the reference
    np.testing.assert_allclose(moved[0], shift_frames(stack[0], register.shifts(1, 3)[0]))
    assert register([], []) == []
    in_mjy = StackRegistration(da.from_array(data * 1e3, chunks=(1, 1, 1, 48, 48)), 0)  # another unit
    np.testing.assert_allclose(in_mjy.shifts(0, 5), register.shifts(0, 5), atol=1e-9)


def test_stack_registration_warns_once_for_the_steps_it_could_not_measure(caplog):
    from sunpy_nn.denoise._align import StackRegistration

    flat = np.random.default_rng(0).standard_normal((6, 1, 3, 32, 32))  # noise alone: no step to measure
    register = StackRegistration(da.from_array(flat, chunks=(1, 1, 1, 32, 32)), 0)
    with caplog.at_level("WARNING", logger="sunpy_nn.denoise._align"):
        register.measure([0, 3], 3)
    assert [r.getMessage().split(" were")[0] for r in caplog.records] == ["Scans [1, 2, 4, 5]"]
    assert all(not step.any() for step in register.steps.values())  # taken as 0


@pytest.mark.parametrize(("mode", "spectral_pca"), [("image", False), ("image", True), ("spectral", None)])
def test_a_lazy_cube_is_denoised_in_temporal_mode_as_in_memory(drifting, mode, spectral_pca):
    """A temporal-mode denoiser (trained in memory) predicts a dask-backed series lazily, scan by scan, with each
    neighbour registered onto scan t by the shifts of the cube in memory: the same values and uncertainties, NaN
    where the input is, and seeded Monte-Carlo dropout reproducible."""
    cube, _ = drifting
    den = Denoiser(mode, n_filters=4, depth=1, temporal=1, spectral_pca=spectral_pca).fit(cube, **QUICK)
    assert np.abs(den.fit_settings["scan_shifts"]).max() > 1.5  # the neighbours must be moved
    data = np.asarray(cube.data).copy()
    data[2, 3, 1, 10:14, 20:25] = np.nan  # a masked patch of Stokes V
    eager = den.predict(NDCube(data, wcs=cube.wcs, unit=cube.unit), progress=False)
    lazy_cube = NDCube(da.from_array(data, chunks=(1, 1, 1, 48, 48)), wcs=cube.wcs, unit=cube.unit)
    lazy = den.predict(lazy_cube, progress=False)
    assert isinstance(lazy.data, da.Array) and isinstance(lazy.uncertainty.array, da.Array)
    for got, want in ((lazy.data, eager.data), (lazy.uncertainty.array, eager.uncertainty.array)):
        got = np.asarray(got)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        scale = np.nanmax(np.abs(want[:, 1:]))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale)  # ulps of the output's range
    assert np.isnan(np.asarray(lazy.data)[2, 3, 1, 10:14, 20:25]).all()
    if spectral_pca is not False:
        return
    draws = [den.predict(lazy_cube, stokes=("V",), uncertainty="total", mc_samples=2, seed=4, progress=False)]
    draws.append(den.predict(lazy_cube, stokes=("V",), uncertainty="total", mc_samples=2, seed=4, progress=False))
    total = [np.asarray(d.uncertainty.array)[:, 3] for d in draws]
    np.testing.assert_array_equal(*total)
    aleatoric = np.asarray(lazy.uncertainty.array)[:, 3]
    ratio = total[0] / aleatoric  # the dropout's spread added to the aleatoric error, in quadrature
    # (small: dropout at rate 0.01 and one epoch; 2.7e-4 at most here, as in memory)
    assert np.nanmin(ratio) > 1 - 1e-5 and np.nanmax(ratio) > 1 + 5e-5, (np.nanmin(ratio), np.nanmax(ratio))


def test_a_lazy_cube_trains_in_temporal_mode_on_registered_stacks(drifting, monkeypatch):
    """Temporal mode trains on a dask-backed cube too: the pool holds scan t between its neighbours, registered onto
    it, and the calibration's whole-frame pairs register the neighbours onto scan t (at the ends of the series
    too, where the window is shifted inward)."""
    from sunpy_nn.training._whole_frames import _frame_pair

    cube, _ = drifting
    lazy = NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 48, 48)), wcs=cube.wcs, unit=cube.unit)
    seen = []
    real = _fit.Noise2NoisePairs
    monkeypatch.setattr(_fit, "Noise2NoisePairs", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    kw = QUICK | {"stokes": ("I", "V"), "val_fraction": 0}
    den = Denoiser(n_filters=4, depth=1, temporal=1, spectral_pca=False).fit(lazy, **kw)
    Denoiser(n_filters=4, depth=1, temporal=1, spectral_pca=False, align=False).fit(lazy, **kw)
    pairs, raw_pairs = seen
    assert den.fit_settings["pairs"].startswith("temporal") and all(st.shape[0] == 3 for _, st, _ in pairs.pool)

    def mismatch(x, y):  # neighbours - scan t, Stokes I in noise units, inside the bands, less the pair's noise
        return np.nanvar((x.reshape(-1, *y.shape) - y)[..., 6:-6, 6:-6]) - 2.0

    x, y = pairs.draw()
    assert x.shape[0] == 2 * y.shape[0]

    def change(p):  # Stokes I from one scan to the next in the pool, inside the bands
        stacks = [st for s, st, _ in p.pool if s == 0]
        return np.sqrt(np.nanmean([np.nanmean(np.diff(st, axis=0)[..., 6:-6, 6:-6] ** 2) for st in stacks]))

    assert change(pairs) < 0.5 * change(raw_pairs)
    for t in (0, 2, 4):  # the first scan's neighbours are scans 1 and 2
        rng = np.random.default_rng(0)
        registered, unregistered = _frame_pair(pairs, t, 0, 1, rng)[:2], _frame_pair(raw_pairs, t, 0, 1, rng)[:2]
        assert mismatch(*registered) < 0.05 * mismatch(*unregistered)
        np.testing.assert_array_equal(registered[1], np.asarray(pairs.data[t, 0, 1:2]))  # onto scan t, unmoved
    out = den.predict(lazy, stokes=("V",), progress=False)
    assert np.isfinite(np.asarray(out.data)).all()


def test_a_lazy_temporal_pool_draws_every_scan_as_target_between_its_neighbours():
    """The pool's pairs are those of a cube in memory: scan t the target, its neighbours (the window shifted inward
    at the ends of the series) the input in time order or reversed; the first and last scans are targets too."""
    from sunpy_nn.training.noise2noise import Noise2NoisePairs

    n_t = 7
    cube = np.broadcast_to(np.arange(n_t, dtype=np.float32)[:, None, None, None, None], (n_t, 1, 2, 16, 16)).copy()
    lazy = da.from_array(cube, chunks=(1, 1, 1, 16, 16))
    pairs = Noise2NoisePairs(
        lazy, [0], [True], "image", 8, (0, 16), np.random.default_rng(0), False, temporal=2, signal_fraction=0
    )
    targets = set()
    for _ in range(10):
        pairs.refresh()
        for _ in range(20):
            x, y = pairs.draw()
            t = abs(float(y.flat[0]))  # signs may be flipped (an augmentation), the same for x and y
            near = [abs(float(c.flat[0])) for c in x]
            assert near in (temporal_neighbours(int(t), n_t, 2), temporal_neighbours(int(t), n_t, 2)[::-1])
            targets.add(int(t))
    assert targets == set(range(n_t))


def test_a_series_with_a_lost_frame_is_aligned_across_it_and_the_frame_stays_nan():
    """A scan without data inside an 8-scan series: the fit registers the scans on either side of it onto one
    another (as the noise-free scans lie), the lost scan comes back all NaN and no NaN reaches the others."""
    cube, truth = synthetic_crisp_cube(48, n_wavelengths=3, n_scans=8, seed=2, drift=(1.0, 1.5))
    data = np.array(cube.data)
    data[2] = np.nan
    lost = NDCube(data, wcs=cube.wcs, unit=cube.unit)
    den = Denoiser(n_filters=4, depth=1, temporal=2).fit(lost, **QUICK)
    shifts = np.array(den.fit_settings["scan_shifts"])
    expected = scan_shifts(truth[:, 0].mean(axis=1))
    ok = [0, 1, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(shifts[ok] - shifts[ok][0], expected[ok] - expected[ok][0], atol=0.1)
    out = np.asarray(den.predict(lost, progress=False).data)
    assert np.isnan(out[2]).all() and np.isfinite(out[ok]).all()


@pytest.mark.parametrize("lazy", [False, True])
def test_lost_frames_that_leave_no_pair_are_named(lazy):
    """In memory and as a dask array (read lazily, from a pool of stacks), the error names the lost scan."""
    cube, _ = synthetic_crisp_cube(48, n_wavelengths=3, n_scans=5, seed=2)
    data = np.array(cube.data)
    data[2] = np.nan  # every scan's pairing (t - 1, t + 1 for t = 1..3) needs scan 2
    data[3, ..., :10] = np.nan  # a scan with a masked band is not lost
    if lazy:
        data = da.from_array(data, chunks=(1, 1, 1, 48, 48))
    with pytest.raises(ValueError, match=r"scans \[2\] hold no data \(lost frames\)"):
        Denoiser(n_filters=4, depth=1, temporal=0).fit(NDCube(data, wcs=cube.wcs, unit=cube.unit), **QUICK)


def test_a_narrow_validation_strip_leaves_out_the_band_the_alignment_made_nan():
    """The held-out strip at the frame's right border is as wide as the patches here: the column that the scans'
    shifts left NaN there was in every validation patch, and the fit failed for want of a pair."""
    cube, _ = synthetic_crisp_cube(160, n_wavelengths=2, n_scans=3, seed=0)
    den = Denoiser(n_filters=4, depth=1, temporal=0).fit(cube, **QUICK)
    assert np.abs(np.array(den.fit_settings["scan_shifts"])[:, 1]).max() > 0  # shifted: a NaN band
    assert len(den.history["train_loss"]) == 1  # trained; validated only where a NaN-free patch fits the strip
    wide = Denoiser(n_filters=4, depth=1, temporal=0).fit(cube, **QUICK | {"val_fraction": 0.2})
    assert len(wide.history["val_loss"]) == 1 and np.isfinite(wide.history["val_loss"]).all()
