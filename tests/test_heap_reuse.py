"""run_tiled's optimised CPU path keeps freed memory for reuse, for a single tile too (issue #16)."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

from sunpy_nn.nn import UNet, heap, release_freed_memory, run_tiled, runner


@pytest.fixture(autouse=True)
def _no_linger_across_tests():
    """A linger left by another test would keep its (real or fake) glibc settings into this one."""
    release_freed_memory()
    yield
    release_freed_memory()


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
    # a few float32 ulps of the values: tilings (and buffer alignment) pick other oneDNN kernels
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-5 * np.ptp(reference))


def test_reuse_context_restores_and_changes_nothing():
    net = UNet(1, 1, 4, 2, padding="zeros").eval()
    img = np.random.default_rng(1).standard_normal((32, 32)).astype(np.float32)
    kw = {"halo": net.receptive_radius, "align": net.align, "precision": "float32", "progress": False}
    before = run_tiled(net, img, **kw)
    with runner._reuse_freed_memory():  # nested inside run_tiled's own: still the same result
        inside = run_tiled(net, img, **kw)
    # same path, same tiling; a tolerance of the output's range all the same (CPUs here differ)
    np.testing.assert_allclose(inside, before, rtol=0, atol=1e-5 * np.ptp(before))


def _fake_glibc(monkeypatch, linger: float) -> _FakeLibc:
    """A recording glibc in place of this process's, and the linger of the test."""
    fake = _FakeLibc()
    monkeypatch.setattr(heap, "_glibc", lambda: fake)
    monkeypatch.setattr(heap, "HEAP_LINGER_S", linger)
    return fake


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

    fake = _fake_glibc(monkeypatch, 0.0)  # restored as the last context closes
    inner_open, release = threading.Event(), threading.Event()

    def worker():
        with heap.keep_freed_memory():
            inner_open.set()
            release.wait(10)

    with heap.keep_freed_memory():
        with heap.keep_freed_memory():
            pass
        t = threading.Thread(target=worker)
        t.start()
        inner_open.wait(10)
    # the first context closed while the thread's is open: nothing restored yet
    assert fake.calls == [("mallopt", heap._M_MMAP_MAX, 0), ("mallopt", heap._M_TRIM_THRESHOLD, 1 << 30)]
    release.set()
    t.join(10)
    # restored once, when the last one closed, to the values glibc's adaptive threshold settles at, then trimmed
    assert fake.calls[2:] == [("mallopt", p, v) for p, v in heap._GLIBC_AFTER.items()] + [("trim", 0)]
    assert heap._GLIBC_AFTER[heap._M_MMAP_THRESHOLD] == 32 << 20  # not glibc's fixed 128 KiB start value
    assert heap._HeapKeeper.depth == 0


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
        depths.append(heap._HeapKeeper.depth)  # open contexts when a frame's network starts
        with keep():
            yield

    monkeypatch.setattr(runner, "_reuse_freed_memory", recording)
    den.predict(cube, stokes="V", progress=False)
    assert len(depths) >= 6 and min(depths) >= 1, depths  # 3 scans x 2 tunings, each inside the outer context
    assert heap._HeapKeeper.depth == 0


_KEEP = [("mallopt", heap._M_MMAP_MAX, 0), ("mallopt", heap._M_TRIM_THRESHOLD, 1 << 30)]
_RESTORE = [("mallopt", p, v) for p, v in heap._GLIBC_AFTER.items()] + [("trim", 0)]


def test_freed_memory_lingers_after_the_last_context_for_the_next_call(monkeypatch):
    """Consecutive calls (maps of a loop) reuse the kept memory: restored only HEAP_LINGER_S after the last one."""
    fake = _fake_glibc(monkeypatch, 0.3)
    with heap.keep_freed_memory():
        pass
    pending = heap._HeapKeeper.timer
    assert fake.calls == _KEEP and pending is not None  # kept past the close
    with heap.keep_freed_memory():  # the next call, within the linger: no new settings, the pending release cancelled
        assert heap._HeapKeeper.timer is None
    second = heap._HeapKeeper.timer  # taken at once: it may fire (and clear the attribute) before the joins
    assert fake.calls == _KEEP
    pending.join(2)  # the cancelled release ran out without restoring
    assert fake.calls == _KEEP
    second.join(2)  # the second close's release restores, once
    assert fake.calls == _KEEP + _RESTORE
    assert heap._HeapKeeper.libc is None and heap._HeapKeeper.timer is None


def test_only_a_cpu_device_keeps_memory(monkeypatch):
    """A GPU's activations are not in this heap: keep_freed_memory("cuda") leaves glibc alone."""
    import torch

    fake = _fake_glibc(monkeypatch, 0.0)
    for device in ("cuda", "cuda:1", torch.device("mps")):
        with heap.keep_freed_memory(device):
            assert heap._HeapKeeper.depth == 0
    assert fake.calls == []
    for device in ("cpu", torch.device("cpu"), None):
        with heap.keep_freed_memory(device):
            assert heap._HeapKeeper.depth == 1
    assert fake.calls == 3 * (_KEEP + _RESTORE)


def test_a_stale_release_restores_nothing(monkeypatch):
    """A release scheduled before a context opened again does nothing, even if that context already closed."""
    fake = _fake_glibc(monkeypatch, 60.0)
    with heap.keep_freed_memory():
        pass
    stale = heap._HeapKeeper.generation
    with heap.keep_freed_memory():
        pass
    heap._release(stale)  # as the first close's timer would, had its cancel come too late
    assert fake.calls == _KEEP
    heap._release(heap._HeapKeeper.generation)
    assert fake.calls == _KEEP + _RESTORE
    release_freed_memory()  # nothing left to restore: no second restore, only a trim
    assert fake.calls == _KEEP + _RESTORE + [("trim", 0)]


def test_release_freed_memory_restores_at_once(monkeypatch):
    fake = _fake_glibc(monkeypatch, 60.0)
    with heap.keep_freed_memory():
        with heap.keep_freed_memory():
            release_freed_memory()  # contexts open: nothing to release yet
        assert fake.calls == _KEEP
    pending = heap._HeapKeeper.timer
    release_freed_memory()
    assert fake.calls == _KEEP + _RESTORE and heap._HeapKeeper.timer is None
    pending.join(2)  # cancelled: it ends without a second restore
    release_freed_memory()  # nothing kept: only a trim of what the heap holds free
    assert fake.calls == _KEEP + _RESTORE + [("trim", 0)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork: POSIX only")
@pytest.mark.parametrize("open_at_fork", [False, True])
def test_a_forked_child_gets_glibc_settings_back(monkeypatch, open_at_fork):
    """
    A child forked during the linger, or while another thread's context is open (that thread does not exist in
    the child, so its context never closes there), restores glibc's settings at once and counts afresh.
    """
    import threading

    fake = _fake_glibc(monkeypatch, 60.0)
    opened, done = threading.Event(), threading.Event()

    def worker():
        with heap.keep_freed_memory():
            opened.set()
            done.wait(10)

    t = threading.Thread(target=worker)
    if open_at_fork:
        t.start()
        opened.wait(10)
    else:
        with heap.keep_freed_memory():
            pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, without pytest's exit handlers
        try:
            state = [heap._HeapKeeper.depth, heap._HeapKeeper.libc is None, fake.calls[len(_KEEP) :] == _RESTORE]
            os.write(write, repr(state).encode())
        finally:
            os._exit(0)
    os.close(write)
    report = os.read(read, 1000).decode()
    os.close(read)
    os.waitpid(pid, 0)
    done.set()
    if open_at_fork:
        t.join(10)
    assert report == "[0, True, True]", report
    # the parent is untouched: still kept (the linger, or the thread's context until it closed)
    assert heap._HeapKeeper.depth == 0 and heap._HeapKeeper.libc is fake and fake.calls == _KEEP


_FAULTS_SCRIPT = """
import json, resource
import numpy as np
from sunpy_nn.nn import UNet, release_freed_memory, run_tiled

net = UNet(1, 1, 8, 2, padding="zeros").eval()
img = np.random.default_rng(2).standard_normal((512, 512)).astype(np.float32)
kw = {"halo": net.receptive_radius, "align": net.align, "precision": "float32", "progress": False}


def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    run_tiled(net, img, **kw)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


run_tiled(net, img[:64, :64], **kw)  # imports, the optimised copy, torch's one-time buffers
release_freed_memory()
first = faults()
later = [faults() for _ in range(4)]
release_freed_memory()
print(json.dumps({"first": first, "later": later, "released": faults()}))
"""


def _thp_always() -> bool:
    try:
        return "[always]" in open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return False


@pytest.mark.skipif(heap._glibc() is None, reason="glibc's heap only: elsewhere keep_freed_memory does nothing")
@pytest.mark.skipif(_thp_always(), reason="transparent huge pages 'always': the heap faults in 2 MiB pages, far fewer")
def test_a_second_call_within_the_linger_faults_in_no_new_pages():
    """
    The measurable effect on a real heap: calls within the linger reuse the first call's pages. In a fresh process,
    so that the free memory other tests left in this one's heap does not serve the first call.
    """
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], capture_output=True, text=True, check=True)
    f = json.loads(out.stdout.strip().splitlines()[-1])
    # 8 x 512^2 float32 activations: 8 MiB each, ~2,000 pages each (measured: 14,000-18,500 for the first call)
    assert f["first"] > 5_000, f
    # each later call as many as the first if the memory were given back after each call; the median, because now
    # and then glibc grows the heap by a block or two (seen: 4,600 of a first call's 14,000)
    assert np.median(f["later"]) < 0.2 * f["first"], f
    assert f["released"] > 0.3 * f["first"], f  # given back: faulted in again


def test_training_keeps_one_heap_over_all_its_steps(monkeypatch):
    """Every training step of both networks runs inside a kept heap (no activation faulted in again per step)."""
    from sunpy_nn.data.synthetic import synthetic_crisp_cube
    from sunpy_nn.denoise import Denoiser
    from sunpy_nn.nn import EnhanceNet
    from sunpy_nn.training import train_enhance

    depths = []

    def record(module, args):
        if module.training:
            depths.append(heap._HeapKeeper.depth)

    net = EnhanceNet(depth=1, n_filters=4)
    net.register_forward_pre_hook(record)
    img = np.random.default_rng(3).standard_normal((640, 640)).astype(np.float32) * 0.05 + 1
    kw = {
        "n_patches": 8,
        "n_validation": 4,
        "input_size": 16,
        "validation_size": 16,
        "batch_size": 4,
        "pixel_scale": 0.0662,
    }
    train_enhance(img, kind="intensity", epochs=2, model=net, seed=0, progress=False, **kw)
    assert len(depths) >= 4 and min(depths) >= 1, depths  # 2 epochs x 2 batches, each inside the context

    depths.clear()
    forward = UNet.forward

    def recorded(self, x):
        record(self, (x,))
        return forward(self, x)

    monkeypatch.setattr(UNet, "forward", recorded)
    cube = synthetic_crisp_cube(32, n_scans=3, n_wavelengths=2, seed=0)[0]
    Denoiser(n_filters=4, depth=1).fit(
        cube, stokes="V", epochs=2, patches_per_epoch=20, patch_size=16, seed=0, progress=False
    )
    assert len(depths) >= 4 and min(depths) >= 1, depths  # the Noise2Noise steps of Denoiser.fit
