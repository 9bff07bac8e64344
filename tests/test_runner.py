import itertools

import numpy as np
import pytest
import torch

from sunpy_nn.nn import default_tile_size, prepare_model, resolve_device, run_tiled, tile_windows

from .helpers import assert_close_ulps, random_enhance_net

NET = random_enhance_net(depth=2, n_filters=16)


def _whole(net, img):
    with torch.inference_mode():
        return net(torch.from_numpy(img.astype(np.float32))[None, None])[0, 0].numpy()


@pytest.mark.parametrize(
    ("shape", "tile"),
    [
        ((97, 61), 40),  # odd sizes, several tiles
        ((131, 127), 48),  # primes
        ((13, 17), 64),  # smaller than one tile
        ((64, 200), 30),  # wide, many small tiles
        ((31, 30), 30),  # tile equal to the image edge
    ],
)
def test_tiled_equals_whole_image(shape, tile):
    img = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    ref = _whole(NET, img)
    out = run_tiled(NET, img, scale=2, halo=NET.receptive_radius, tile_size=tile, batch_size=3, progress=False)
    assert out.shape == (2 * shape[0], 2 * shape[1])
    assert_close_ulps(out, ref)


def test_halo_smaller_than_receptive_field_shows_seams():
    # The equality above is due to the halo: one pixel less and the tile borders show.
    img = np.random.default_rng(2).normal(size=(97, 61)).astype(np.float32)
    ref = _whole(NET, img)
    out = run_tiled(NET, img, scale=2, halo=NET.receptive_radius - 1, tile_size=40, progress=False)
    assert np.abs(out - ref).max() > 1e-4 * np.ptp(ref)


def test_batch_size_does_not_change_result():
    img = np.random.default_rng(3).normal(size=(90, 77)).astype(np.float32)
    kw = {"scale": 2, "halo": NET.receptive_radius, "tile_size": 40, "progress": False}
    # Not bit for bit: a batch of 7 may take another convolution kernel than a batch of 1 (1 ulp apart with AVX2).
    assert_close_ulps(run_tiled(NET, img, batch_size=1, **kw), run_tiled(NET, img, batch_size=7, **kw))


def test_preallocated_output_and_channels():
    img = np.random.default_rng(4).normal(size=(1, 50, 45)).astype(np.float32)
    out = np.full((1, 100, 90), np.nan, dtype=np.float32)
    res = run_tiled(NET, img, scale=2, halo=NET.receptive_radius, tile_size=32, out=out, progress=False)
    assert res is out and np.isfinite(out).all()
    assert_close_ulps(out[0], _whole(NET, img[0]))


@pytest.mark.parametrize("align", [1, 4])
@pytest.mark.parametrize("size", [1, 7, 40, 41, 100, 257, 1000])
def test_tile_windows_cover_axis_with_halo(size, align):
    size = max(align, size - size % align)
    window, halo = 64, 9
    wins = tile_windows(size, window, halo, align)
    cores = [(a, b) for _, a, b in wins]
    assert cores[0][0] == 0 and cores[-1][1] == size
    assert all(b0 == a1 for (_, b0), (a1, _) in itertools.pairwise(cores))  # contiguous, no overlap
    for w0, a, b in wins:
        n = min(window, size)
        assert w0 >= 0 and w0 + n <= size and w0 % align == 0
        assert w0 == 0 or a - w0 >= halo  # halo on the left unless at the border
        assert w0 + n == size or w0 + n - b >= halo


def test_tile_too_small_for_halo():
    with pytest.raises(ValueError, match="too small"):
        tile_windows(100, 20, 10)


def test_unaligned_image_is_rejected():
    with pytest.raises(ValueError, match="multiple of align"):
        tile_windows(101, 64, 4, align=4)


def test_memory_is_bounded_by_tile_not_image():
    # The network only ever sees tiles of the requested size, however large the image.
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return x

    run_tiled(Spy(), np.zeros((500, 700), np.float32), scale=1, halo=5, tile_size=64, batch_size=2, progress=False)
    assert max(s[0] for s in seen) <= 2
    assert {s[2:] for s in seen} == {(64, 64)}


def test_default_tile_size_is_sane():
    cpu = default_tile_size(torch.device("cpu"), n_filters=64, scale=2)
    assert cpu == 256  # the fastest CPU setting measured for Enhance (benchmarks/README.rst)
    assert default_tile_size(torch.device("cpu"), 64, 2, batch_size=4) == 128  # memory follows the batch
    assert default_tile_size(torch.device("cuda"), 64, 2) > cpu


def test_tiles_without_valid_pixels_are_skipped():
    calls = []

    class Count(torch.nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return NET(x)

    img = np.random.default_rng(6).normal(size=(120, 120)).astype(np.float32)
    valid = np.zeros(img.shape, bool)
    valid[:30, :30] = True  # only the top-left corner is wanted
    kw = {"scale": 2, "halo": NET.receptive_radius, "tile_size": 40, "batch_size": 1, "progress": False}
    out = run_tiled(Count(), img, valid=valid, **kw)
    n_skipped = len(calls)
    calls.clear()
    full = run_tiled(Count(), img, **kw)
    assert n_skipped < len(calls) / 4
    assert_close_ulps(out[:60, :60], full[:60, :60])
    assert np.isnan(out[120:, 120:]).all()


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            resolve_device("cuda")
    # a name torch does not know (a common slip: "gpu"), or no name at all: the usual names, not torch's dozen
    for bad in ("gpu", 3.5):
        with pytest.raises(ValueError, match=r"is not a device torch knows: use 'cpu', 'cuda', 'mps' or None"):
            resolve_device(bad)


def test_bad_image_dimensions():
    with pytest.raises(ValueError, match="2-D"):
        run_tiled(NET, np.zeros((2, 3, 20, 20)), scale=2, halo=7, progress=False)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; torch sees none on this machine")
def test_cuda_matches_cpu():
    img = np.random.default_rng(5).normal(size=(150, 133)).astype(np.float32)
    kw = {"scale": 2, "halo": NET.receptive_radius, "tile_size": 64, "progress": False}
    cpu = run_tiled(NET, img, device="cpu", **kw)
    gpu = run_tiled(random_enhance_net(depth=2, n_filters=16), img, device="cuda", **kw)
    assert np.abs(cpu - gpu).max() <= 1e-4 * np.ptp(cpu)  # float32, not cuDNN's TF32 (~2e-3 of the range off)


@pytest.mark.parametrize("tile", [0, 1, 16])
def test_a_tile_size_without_a_useful_core_is_raised_not_run_pixel_by_pixel(tile, caplog):
    """tile_size=16 with a 7 px halo once meant a 2 px core (2500 tiles for 100 x 100 px); 0 or 1 meant 10,000."""
    import logging

    from sunpy_nn.nn.runner import smallest_tile

    calls = []
    hook = NET.register_forward_pre_hook(lambda _, args: calls.append(args[0].shape[0]))
    img = np.random.default_rng(1).normal(size=(100, 100)).astype(np.float32)
    halo = NET.receptive_radius
    try:
        with caplog.at_level(logging.INFO, logger="sunpy_nn.nn.runner"):
            out = run_tiled(NET, img, scale=2, halo=halo, tile_size=tile, progress=False)
    finally:
        hook.remove()
    n_tiles = len(tile_windows(100, smallest_tile(halo), halo)) ** 2
    assert sum(calls) == n_tiles == 49 and f"using {smallest_tile(halo)}" in caplog.text  # a 15 px core
    assert_close_ulps(out, _whole(NET, img), 64)


def test_monte_carlo_dropout_switched_around_each_frame_keeps_both_optimised_copies(monkeypatch):
    # Denoiser.predict(uncertainty="total") switches dropout on and off around every frame of the same network:
    # the optimised copy with dropout off (and its compilation) must be built once, not once per frame.
    import sunpy_nn.nn.runner as runner
    from sunpy_nn.nn import UNet

    built = []
    real = runner.prepare_model

    def counting(model, **kwargs):
        built.append(any(getattr(m, "mc", False) for m in model.modules()))
        return real(model, **kwargs)

    monkeypatch.setattr(runner, "prepare_model", counting)
    net = UNet(n_filters=4, depth=1, dropout=0.1).eval()
    image = np.random.default_rng(0).normal(size=(1, 32, 32)).astype(np.float32)
    outs = []
    for _ in range(3):
        outs.append(run_tiled(net, image, halo=8, align=2, precision="float32"))
        net.mc_dropout(True)
        run_tiled(net, image, halo=8, align=2, precision="float32")
        net.mc_dropout(False)
    assert built == [False, True]
    assert_close_ulps(outs[2], outs[0], ulps=4)  # the cached copy gives the same output
    with torch.no_grad():
        net.out.bias.add_(1.0)  # an in-place update invalidates the copy
    run_tiled(net, image, halo=8, align=2, precision="float32")
    assert built == [False, True, False]


def test_tests_not_marked_cuda_see_no_gpu():
    """tests/conftest.py: a GPU would change what the CPU tests assert; subprocesses inherit the hiding."""
    import os

    assert os.environ.get("CUDA_VISIBLE_DEVICES") == "" and not torch.cuda.is_available()
    assert resolve_device(None).type != "cuda"


def test_a_network_elsewhere_runs_through_one_cached_copy_and_stays_put():
    """The copy branch, on the meta device (no GPU needed): the caller's network stays on the CPU, the copy is made
    once per device and weights (not once per frame), and rebuilt after an in-place update of the weights."""
    from sunpy_nn.nn.runner import _eager_on

    net = random_enhance_net(depth=1, n_filters=8)
    meta = torch.device("meta")
    first = _eager_on(net, meta)
    assert first is not net and next(first.parameters()).device.type == "meta"
    assert next(net.parameters()).device.type == "cpu"
    assert _eager_on(net, meta) is first
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    assert _eager_on(net, meta) is not first
    assert _eager_on(net, torch.device("cpu")) is net


def test_exact_float32_switches_tf32_off_on_cuda_only_and_restores_it(tf32_settings):
    # The switches are plain settings, so this runs without a GPU; test_cuda checks a forward pass under them.
    from sunpy_nn.nn.prepared import _exact_float32

    cudnn = torch.backends.cudnn
    cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")  # TF32 for matrix products
    with _exact_float32(torch.device("cpu")):
        assert (cudnn.allow_tf32, torch.get_float32_matmul_precision()) == (True, "high")
    inside = []

    def fails_inside():
        with _exact_float32(torch.device("cuda", 0)):
            inside.append((cudnn.allow_tf32, torch.get_float32_matmul_precision()))
            raise KeyError("a failure inside")

    with pytest.raises(KeyError):
        fails_inside()
    assert inside == [(False, "highest")]
    assert (cudnn.allow_tf32, torch.get_float32_matmul_precision()) == (True, "high")


def test_cuda_and_cuda_0_share_one_cached_copy(monkeypatch):
    """The cache key names the device with its index: ``"cuda"`` (the current device) and ``"cuda:0"`` built two
    optimised copies before. Without a GPU: the current device is faked."""
    import sunpy_nn.nn.runner as runner
    from sunpy_nn.nn.prepared import _indexed

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert _indexed(torch.device("cuda")) == _indexed(torch.device("cuda:0")) == torch.device("cuda", 0)
    assert _indexed(torch.device("cuda:1")) == torch.device("cuda", 1)
    assert _indexed(torch.device("cpu")) == torch.device("cpu")
    built = []
    monkeypatch.setattr(runner, "_on_device", lambda model, dev: built.append(str(dev)) or torch.nn.Identity())
    net = random_enhance_net(depth=1, n_filters=8)
    first = runner._eager_on(net, torch.device("cuda"))
    assert runner._eager_on(net, torch.device("cuda:0")) is first and built == ["cuda"]  # one copy, built once


def test_every_forward_pass_goes_through_the_float32_switch(monkeypatch):
    """run_tiled and a prepared network's forward pass run under _exact_float32 (a no-op on
    the CPU; on a GPU it switches TF32 off): recorded here without a GPU."""
    import contextlib

    import sunpy_nn.nn.optimize as optimize
    import sunpy_nn.nn.prepared as prepared
    import sunpy_nn.nn.runner as runner

    seen = []

    @contextlib.contextmanager
    def recorder(dev):
        seen.append(dev.type)
        yield

    for module in (runner, prepared, optimize):
        monkeypatch.setattr(module, "_exact_float32", recorder)
    net = random_enhance_net(depth=1, n_filters=8)
    run_tiled(net, np.ones((24, 24), np.float32), scale=2, halo=net.receptive_radius, progress=False)
    assert seen == ["cpu"]
    fast = prepare_model(net, device="cpu", precision="float32")
    fast(torch.ones(1, 1, 24, 24))
    assert seen == ["cpu", "cpu"]


def test_exact_float32_is_one_switch_for_threads_and_reads_torchs_newer_settings(tf32_settings):
    import threading

    from sunpy_nn.nn.prepared import _exact_float32, _tf32_allowed

    cudnn, matmul, cuda = torch.backends.cudnn, torch.backends.cuda.matmul, torch.device("cuda", 0)
    # two threads of a dask scheduler: the first to leave must not switch TF32 back on under the other
    cudnn.allow_tf32 = True
    entered, leave = threading.Event(), threading.Event()

    def other():
        with _exact_float32(cuda):
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert entered.wait(10)
    with _exact_float32(cuda):
        leave.set()
        thread.join(10)
        assert not thread.is_alive()
        assert not cudnn.allow_tf32  # the other thread left; this one is still inside
        assert _tf32_allowed() == (False, False)
    assert cudnn.allow_tf32 and _tf32_allowed()[0]
    # a caller's "medium" matrix products (no yes/no flag holds it) come back as they were
    torch.set_float32_matmul_precision("medium")
    with _exact_float32(cuda):
        assert torch.get_float32_matmul_precision() == "highest"
    assert torch.get_float32_matmul_precision() == "medium"
    if not tf32_settings:
        return  # torch before 2.9 has only the settings above
    # a caller who set the newer settings unevenly, after which torch refuses to read the older ones
    cudnn.conv.fp32_precision, matmul.fp32_precision = "ieee", "tf32"
    with pytest.raises(RuntimeError):
        _ = cudnn.allow_tf32
    assert _tf32_allowed() == (False, True)  # what benchmarks/gpu.py records, read from the newer settings
    cudnn.conv.fp32_precision = "none"  # inherits cuDNN's, then torch's setting: none set, cuDNN's default (TF32)
    assert _tf32_allowed() == (True, True)
    cudnn.fp32_precision = "ieee"
    assert _tf32_allowed() == (False, True)
    cudnn.conv.fp32_precision = "ieee"
    with _exact_float32(cuda):
        assert (cudnn.conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    assert (cudnn.conv.fp32_precision, matmul.fp32_precision) == ("ieee", "tf32")


def _run(net, img, **kw):
    kw = {"halo": net.receptive_radius, "progress": False, "device": "cpu"} | kw
    return run_tiled(net, img, **kw)


def test_optimised_copies_follow_weights_changed_without_a_version_bump():
    """The cache of optimised copies keyed on version counters: edits through ``.data`` (and assign-loads) left the
    old copy in use, 0.45 of the output's range off the network that is there now."""
    net = random_enhance_net(depth=1, n_filters=8)
    img = np.random.default_rng(0).random((40, 48)).astype(np.float32)
    run = lambda: _run(net, img, scale=2, precision="float32")  # noqa: E731
    before = run()
    net.tail.weight.data.mul_(3.0)  # no version bump
    after = run()
    assert not np.allclose(after, before)
    assert_close_ulps(after, _whole(net, img), ulps=64)
    net.load_state_dict({k: v * 0.5 for k, v in net.state_dict().items()}, assign=True)
    assert_close_ulps(run(), _whole(net, img), ulps=64)


def test_optimised_u_net_copies_follow_its_settings():
    from sunpy_nn.nn import UNet

    torch.manual_seed(0)
    net = UNet(1, 1, n_filters=4, depth=2, variance_head=True).eval()
    img = np.random.default_rng(1).standard_normal((32, 32)).astype(np.float32)
    _run(net, img, align=net.align, precision="float32")
    net.log_var_offset, net.residual = 0.0, not net.residual  # settings, not tensors
    with torch.inference_mode():
        ref = net(torch.from_numpy(img)[None, None])[0].numpy()
    assert_close_ulps(_run(net, img, align=net.align, precision="float32"), ref, ulps=256, channel_axis=0)


def test_auto_precision_decides_again_for_an_input_of_another_magnitude():
    """precision="auto" kept the bfloat16 it chose on a first, benign image for an image with an offset of 3000,
    8e-3 of the range off float32 (the bound is 1e-3). On a CPU without native bfloat16 it is float32 anyway."""
    from sunpy_nn.nn import UNet
    from sunpy_nn.nn.optimize import ACCURACY_BOUND

    torch.manual_seed(0)
    net = UNet(1, 1, n_filters=8, depth=2, residual=True).eval()
    benign = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32) * 3
    _run(net, benign, align=net.align, precision="auto")
    img = benign + 3000
    auto, exact = (_run(net, img, align=net.align, precision=p) for p in ("auto", "float32"))
    assert np.abs(auto - exact).max() / np.ptp(exact) <= ACCURACY_BOUND


def test_skipped_tiles_of_a_deep_u_net():
    """With ``valid`` leaving tiles out, the number of output channels was probed on an 8 x 8 crop, which a U-Net of
    depth 4 (sides multiples of 16) refused."""
    from sunpy_nn.nn import UNet

    torch.manual_seed(0)
    net = UNet(1, 1, n_filters=2, depth=4).eval()
    img = np.random.default_rng(2).random((1600, 64)).astype(np.float32)
    valid = np.zeros(img.shape, bool)
    valid[:100] = True
    out = _run(net, img, align=net.align, valid=valid, tile_size=256)
    assert out.shape == img.shape and np.isfinite(out[:100]).all() and np.isnan(out[-100:]).all()


class _Blockwise(torch.nn.Module):
    """Works within aligned 4 x 4 blocks: exact with a halo of 1 px (or none)."""

    def forward(self, x):
        return torch.nn.functional.pixel_shuffle(torch.nn.functional.pixel_unshuffle(x, 4) * 2.0, 4)


def test_a_raised_tile_size_always_tiles():
    """A tile_size raised to `smallest_tile` was still too small to tile where the halo is small against the
    alignment (halo 1, align 4: a tile of 8 px has no core once its start is aligned)."""
    from sunpy_nn.nn.runner import smallest_tile

    img = np.random.default_rng(3).random((32, 32)).astype(np.float32)
    out = run_tiled(_Blockwise(), img, halo=1, align=4, tile_size=4, progress=False, device="cpu")
    np.testing.assert_array_equal(out, 2 * img)
    for align, halo in itertools.product([1, 2, 4, 8, 16], range(0, 12)):
        window = smallest_tile(halo, align)
        cores = tile_windows(8 * window, window, halo, align)  # raises if the window holds no core
        assert cores[0][1] == 0 and cores[-1][2] == 8 * window


def test_weights_fixed_takes_the_fingerprint_once_and_a_changed_network_is_seen_after(monkeypatch):
    from sunpy_nn.nn import runner

    net = random_enhance_net(depth=1, n_filters=8)
    img = np.random.default_rng(4).random((40, 48)).astype(np.float32)
    calls = []
    real = runner._fingerprint
    monkeypatch.setattr(runner, "_fingerprint", lambda m: calls.append(1) or real(m))
    with runner.weights_fixed(net), runner.weights_fixed(net):  # nested: one fingerprint
        outs = [_run(net, img, scale=2, precision="float32") for _ in range(3)]
    assert len(calls) == 1 and all(np.array_equal(o, outs[0]) for o in outs)
    net.tail.weight.data.mul_(2.0)  # after the block: checked again at every call
    assert_close_ulps(_run(net, img, scale=2, precision="float32"), _whole(net, img), ulps=64)
    assert len(calls) == 2 and not getattr(runner._FIXED, "held", {})


def test_weights_fixed_in_one_thread_does_not_hide_a_change_from_another():
    import threading

    from sunpy_nn.nn import runner

    net = random_enhance_net(depth=1, n_filters=8)
    img = np.random.default_rng(6).random((40, 48)).astype(np.float32)
    entered, done, out = threading.Event(), threading.Event(), {}

    def hold():
        with runner.weights_fixed(net):
            _run(net, img, scale=2, precision="float32")
            entered.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(30)
    net.tail.weight.data.mul_(2.0)  # changed by this thread while the other holds its weights fixed
    out["here"] = _run(net, img, scale=2, precision="float32")
    done.set()
    holder.join()
    assert_close_ulps(out["here"], _whole(net, img), ulps=64)


def test_a_network_made_in_inference_mode_runs():
    """Inference tensors have no version counter, which the fingerprint read."""
    with torch.inference_mode():
        net = random_enhance_net(depth=1, n_filters=8)
        img = np.random.default_rng(7).random((24, 24)).astype(np.float32)
        out = _run(net, img, scale=2, precision="float32")
    assert_close_ulps(out, _whole(net, img), ulps=64)


def test_a_network_with_a_non_contiguous_buffer_runs():
    """The fingerprint viewed each tensor's bytes, which a strided buffer refused."""
    net = random_enhance_net(depth=1, n_filters=8)
    net.register_buffer("strided", torch.arange(6.0)[::2])
    img = np.random.default_rng(5).random((24, 24)).astype(np.float32)
    assert_close_ulps(_run(net, img, scale=2, precision="float32"), _whole(net, img), ulps=64)
