"""run_tiled's optimised CPU path keeps freed memory for reuse, for a single tile too (issue #16)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from sunpy_nn.nn import UNet, run_tiled, runner


@pytest.mark.parametrize(
    ("size", "tile_size", "precision", "entered"),
    [(64, None, "float32", 1), (160, 80, "float32", 1), (64, None, None, 0)],  # one tile, several, not optimised
)
def test_freed_memory_is_reused_whenever_the_optimised_path_runs(monkeypatch, size, tile_size, precision, entered):
    calls = []

    @contextlib.contextmanager
    def recording():
        calls.append(1)
        yield

    net = UNet(1, 1, 4, 2, padding="zeros").eval()
    img = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    kw = {"halo": net.receptive_radius, "align": net.align, "precision": precision, "progress": False}
    reference = run_tiled(net, img, **kw)
    monkeypatch.setattr(runner, "_reuse_freed_memory", recording)
    out = run_tiled(net, img, tile_size=tile_size, **kw)
    assert len(calls) == entered  # a single tile too since issue #16, not only several
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-6 * np.ptp(reference))


def test_reuse_context_restores_and_changes_nothing():
    net = UNet(1, 1, 4, 2, padding="zeros").eval()
    img = np.random.default_rng(1).standard_normal((32, 32)).astype(np.float32)
    kw = {"halo": net.receptive_radius, "align": net.align, "precision": "float32", "progress": False}
    before = run_tiled(net, img, **kw)
    with runner._reuse_freed_memory():  # nested inside run_tiled's own: still the same result
        inside = run_tiled(net, img, **kw)
    # same path, same tiling; a tolerance of the output's range all the same (CPUs here differ)
    np.testing.assert_allclose(inside, before, rtol=0, atol=1e-6 * np.ptp(before))


class _FakeLibc:
    """Records the mallopt/malloc_trim calls `keep_freed_memory` makes, instead of changing this process's heap."""

    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("trim", pad))
        return 1


def test_keep_freed_memory_is_counted_over_nesting_and_threads(monkeypatch):
    import threading

    fake = _FakeLibc()
    monkeypatch.setattr(runner, "_glibc", lambda: fake)
    inner_open, release = threading.Event(), threading.Event()

    def worker():
        with runner.keep_freed_memory():
            inner_open.set()
            release.wait(10)

    with runner.keep_freed_memory():
        with runner.keep_freed_memory():
            pass
        t = threading.Thread(target=worker)
        t.start()
        inner_open.wait(10)
    # the first context closed while the thread's is open: nothing restored yet
    assert fake.calls == [("mallopt", runner._M_MMAP_MAX, 0), ("mallopt", runner._M_TRIM_THRESHOLD, 1 << 30)]
    release.set()
    t.join(10)
    # restored once, when the last one closed, to the values glibc's adaptive threshold settles at, then trimmed
    assert fake.calls[2:] == [("mallopt", p, v) for p, v in runner._GLIBC_AFTER.items()] + [("trim", 0)]
    assert runner._GLIBC_AFTER[runner._M_MMAP_THRESHOLD] == 32 << 20  # not glibc's fixed 128 KiB start value
    assert runner._HeapKeeper.depth == 0


def test_denoiser_keeps_one_heap_over_all_frames(monkeypatch):
    """Every frame's run_tiled runs inside the series' context, so the heap is not trimmed between frames."""
    from sunpy_nn.data.synthetic import synthetic_crisp_cube
    from sunpy_nn.denoise import Denoiser

    cube = synthetic_crisp_cube(32, n_scans=3, n_wavelengths=2, seed=0)[0]  # (noisy, truth)
    den = Denoiser(n_filters=4, depth=1).fit(
        cube, stokes="V", epochs=1, patches_per_epoch=20, patch_size=16, seed=0, progress=False
    )
    depths = []
    keep = runner.keep_freed_memory

    @contextlib.contextmanager
    def recording():
        depths.append(runner._HeapKeeper.depth)  # open contexts when a frame's network starts
        with keep():
            yield

    monkeypatch.setattr(runner, "_reuse_freed_memory", recording)
    den.predict(cube, stokes="V", progress=False)
    assert len(depths) >= 6 and min(depths) >= 1, depths  # 3 scans x 2 tunings, each inside the outer context
    assert runner._HeapKeeper.depth == 0
