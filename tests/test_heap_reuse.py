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
