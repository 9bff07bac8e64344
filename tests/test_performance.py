"""
The optimised inference paths (`sunpy_nn.nn.prepare_model`, ``run_tiled(precision=...)``) and their accuracy guard.

No timing here (speed lives in benchmarks/run.py): these tests check that every optimised mode computes the same
function as float32 eager inference, to ``ACCURACY_BOUND`` (1e-3) of the output range, on real HMI and CRISP data
(synthetic stand-ins when ../shared/data is absent), and that the options fail clearly on bad input.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy import ndimage

from sunpy_nn.nn import (
    ACCURACY_BOUND,
    PRECISIONS,
    EnhanceNet,
    FastEnhance,
    FastUNet,
    UNet,
    bf16_is_native,
    prepare_model,
    relative_error,
    run_tiled,
)

from .helpers import SHARED_DATA, assert_close_ulps, random_enhance_net

ENHANCE = random_enhance_net(depth=2, n_filters=16)


def _denoiser_unet(channels: int = 1, padding: str = "reflect", seed: int = 0) -> UNet:
    """The network of sunpy_nn.denoise.Denoiser (variance head, log_var_offset 0), random weights."""
    torch.manual_seed(seed)
    return UNet(channels, channels, 16, 2, padding=padding, variance_head=True, dropout=0.01, log_var_offset=0.0).eval()


def _eager(net, img: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        return net(torch.from_numpy(img)[None] if img.ndim == 3 else torch.from_numpy(img)[None, None])


def _hmi(kind: str) -> np.ndarray:
    """A real HMI cut-out in network units (I/Ic, or kG as enhance_map normalises magnetograms), else synthetic."""
    name = {"intensity": "hmi_continuum_sunspot_200.fits", "blos": "hmi_blos_200.fits"}[kind]
    path = SHARED_DATA / "enhance" / name
    if path.exists():
        from astropy.io import fits

        data = np.asarray(fits.getdata(path), dtype=np.float32)[:64, :96]
        return data / 1000.0 if kind == "blos" else data  # Gauss to kG
    rng = np.random.default_rng(0)
    if kind == "blos":
        return (0.3 * rng.standard_normal((64, 96))).astype(np.float32)
    return (1.0 + 0.04 * rng.standard_normal((64, 96))).astype(np.float32)


def _crisp() -> np.ndarray:
    """A real CRISP polarisation image in units of its standard deviation (the denoiser's units), else noise."""
    path = SHARED_DATA / "denoise" / "crisp_stokes_800.npy"
    if path.exists():
        data = np.load(path).astype(np.float32)[200:264, 300:396]
        return data / data.std()
    return np.random.default_rng(1).standard_normal((64, 96)).astype(np.float32)


@pytest.fixture(scope="module")
def shipped():
    from sunpy_nn.enhance import load_enhance_model

    return {kind: load_enhance_model(None, kind)[0].eval() for kind in ("intensity", "blos")}


# --------------------------------------------------------------------------------------- exactness of float32
@pytest.mark.parametrize("shape", [(1, 1, 37, 41), (3, 1, 20, 9), (1, 1, 8, 8), (2, 1, 130, 67)])
@pytest.mark.parametrize("channels_last", [True, False])
def test_fast_enhance_equals_enhance_net(shape, channels_last):
    # Folded batch normalisation (random running statistics), sub-pixel upsampling with reflection borders,
    # and row strips of the upsampling stage: the same function as EnhanceNet in eval mode.
    x = torch.randn(shape)
    with torch.inference_mode():
        ref = ENHANCE(x)
        out = FastEnhance(ENHANCE, channels_last=channels_last)(x)
    assert out.shape == ref.shape
    assert_close_ulps(out, ref, channel_axis=1)  # measured <= 5.2 ulps (AVX-512, AVX2, SSE4.1)


def test_optimised_networks_take_an_empty_batch():
    # a batch of no frames has the reference's shape (the few-channel product's reshape could not infer it)
    net = _denoiser_unet(1, "zeros")
    x = torch.randn(0, 1, 32, 40)
    with torch.inference_mode():
        for fast, ref in ((FastUNet(net), net), (FastEnhance(ENHANCE), ENHANCE)):
            assert fast(x).shape == ref(x).shape


def test_fast_enhance_does_fewer_flops():
    net = EnhanceNet()
    assert FastEnhance(net).flops_per_pixel < 0.9 * net.flops_per_pixel


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
@pytest.mark.parametrize("channels", [1, 3])
def test_fast_unet_equals_unet(padding, channels):
    net = _denoiser_unet(channels, padding)
    x = torch.randn(2, channels, 48, 64)
    with torch.inference_mode():
        ref = net(x)
        out = FastUNet(net)(x)
    assert out.shape == ref.shape == (2, channels + 1, 48, 64)
    # Per channel, in ulps of each channel's magnitude: the log-variance of a random network spans only ~0.002 of
    # a magnitude ~0.1, so a few ulps of rounding were 2e-5 of its range (measured <= 10 ulps).
    assert_close_ulps(out, ref, channel_axis=1)


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
@pytest.mark.parametrize("channels", [1, 4, 10])  # 10: beyond the matrix-product head (at most 8 channels)
def test_fast_unet_levers_on_the_denoisers_configuration(padding, channels):
    """The three rewrites of issue #16 (few-channel heads as matrix products, sub-pixel up-convolution, fused skip
    concatenation) on the configuration `Denoiser` builds: residual output, softplus variance head seeing the output."""
    torch.manual_seed(1)
    net = UNet(
        channels,
        channels,
        8,
        2,
        padding=padding,
        variance_head=True,
        dropout=0.01,
        log_var_offset=0.0,
        residual=True,
        variance="softplus",
        variance_sees_output=True,
    ).eval()
    x = torch.randn(2, channels, 40, 56)
    with torch.inference_mode():
        ref = net(x)
        fast = FastUNet(net)
        out, plain = fast(x), FastUNet(net, levers=False)(x)
    assert fast.levers and out.shape == ref.shape == (2, channels + 1, 40, 56)
    assert_close_ulps(out, ref, channel_axis=1)
    assert_close_ulps(out, plain, channel_axis=1)
    # every rewritten weight is a registered buffer, so that .to(device) and .to(dtype) take it along (a plain
    # tensor attribute would stay on the CPU when the module moves to a GPU)
    loose = [(type(m).__name__, k) for m in fast.modules() for k, v in vars(m).items() if isinstance(v, torch.Tensor)]
    assert not loose, loose
    names = dict(fast.named_buffers())
    assert "merge.0.0.skip_weight" in names and ("down.0.0.matmul_weight" in names) == (channels <= 8)
    assert ("var_body.0.matmul_weight" in names) == (2 * channels <= 8)  # the head sees input and output


@pytest.mark.parametrize("kind", ["enhance", "unet"])
def test_a_nan_in_the_input_stays_nan_through_the_fused_operators(kind):
    """oneDNN's fused ReLU gives 0 for a NaN: an optimised network runs the separate operations on input with a NaN
    or infinity, so that what the reference network leaves NaN is NaN (never a number), and the rest is as fused."""
    from sunpy_nn.nn import _blocks

    net = ENHANCE if kind == "enhance" else _denoiser_unet(1)
    fast = FastEnhance(ENHANCE, winograd=False) if kind == "enhance" else FastUNet(net)
    x = torch.randn(1, 1, 48, 64)
    holed = x.clone()
    holed[..., 20, 30] = float("nan")
    holed[..., 40, 5] = float("inf")
    calls = []
    fused = _blocks._fused
    with torch.inference_mode(), pytest.MonkeyPatch.context() as mp:
        mp.setattr(_blocks, "_fused", lambda *a, **k: calls.append(1) or fused(*a, **k))
        ref, out = net(holed), fast(holed)
        assert not calls  # the separate operations for this call
        lost = ~torch.isfinite(ref)
        assert lost.any() and not torch.isfinite(out[lost]).any()
        far = torch.from_numpy(~ndimage.binary_dilation(lost[0].any(dim=0).numpy(), iterations=8))
        assert far.sum() > 100  # 8 px from the reference's NaN: the reference's numbers
        assert max(relative_error(out[0, c][far], ref[0, c][far]) for c in range(ref.shape[1])) <= ACCURACY_BOUND
        fast(x)  # the next (finite) call fuses again, where this CPU has the fused operators
        assert bool(calls) == _blocks._fusion_works(("conv", torch.float32, True))


def test_optimised_networks_export_without_a_guard_on_the_data():
    """The look for a NaN (one pass over the input) is skipped where torch's compiler traces: ``torch.export``
    cannot guard on a tensor's values, and the exported program computes what the network does."""
    x = torch.randn(1, 1, 32, 32)
    for fast in (FastEnhance(ENHANCE, winograd=False), FastUNet(_denoiser_unet(1))):
        exported = torch.export.export(fast, (x,))
        with torch.inference_mode():
            assert relative_error(exported.module()(x), fast(x)) <= ACCURACY_BOUND


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
def test_fused_convolutions_compute_what_the_separate_operations_do(monkeypatch, padding):
    """ReLUs, skip sums and residual additions inside oneDNN's convolutions (issue #16): the same networks, and the
    fused operator is what runs wherever this CPU's torch has it and it agrees (`_fusion_works`)."""
    from sunpy_nn.nn import _blocks

    calls = []
    fused = _blocks._fused
    monkeypatch.setattr(_blocks, "_fused", lambda *a, **k: calls.append(1) or fused(*a, **k))
    net = _denoiser_unet(1, padding)
    x, xe = torch.randn(2, 1, 48, 64), torch.randn(1, 1, 37, 41)
    works = _blocks._fusion_works(("conv", torch.float32, True))
    with torch.inference_mode():
        for fast, plain, inp in (
            (FastUNet(net), FastUNet(net, fuse=False), x),
            (FastEnhance(ENHANCE), FastEnhance(ENHANCE, fuse=False), xe),
        ):
            calls.clear()
            out = fast(inp)
            assert bool(calls) == works
            calls.clear()
            assert_close_ulps(out, plain(inp), channel_axis=1)
            assert not calls  # fuse=False: the separate operations
            fast.fuse = False  # switched later: on every convolution
            fast(inp)
            assert not calls
            with torch.backends.mkldnn.flags(enabled=False):  # oneDNN switched off: no oneDNN operator called
                fast.fuse = True
                assert_close_ulps(fast(inp), out, channel_axis=1)
            assert not calls
    # (measured: bit for bit on AVX-512 and with the kernels capped to AVX2)


def test_fused_convolutions_fall_back_where_the_operator_fails(monkeypatch):
    # a torch build without oneDNN's fused operators, or one where they raise or differ: the separate operations
    from sunpy_nn.nn import _blocks

    def broken(*args, **kwargs):
        raise RuntimeError("Binary Fusion behavior undefined.")

    monkeypatch.setattr(_blocks, "_FUSION_WORKS", {})
    monkeypatch.setattr(_blocks, "_fused", broken)
    net = _denoiser_unet(1, "zeros")
    x = torch.randn(1, 1, 40, 40)
    with torch.inference_mode():
        out, ref = FastUNet(net)(x), net(x)
    assert _blocks._FUSION_WORKS[("conv", torch.float32, True)] is False  # the probe failed
    assert_close_ulps(out, ref, channel_axis=1)
    # a probe that passed, then a call that fails (a shape the probe did not see): that call and the later ones
    # run the separate operations
    monkeypatch.setattr(_blocks, "_FUSION_WORKS", {("conv", torch.float32, True): True})
    with torch.inference_mode():
        assert_close_ulps(FastUNet(net)(x), ref, channel_axis=1)
    assert _blocks._FUSION_WORKS[("conv", torch.float32, True)] is False

    # with gradients wanted (the fused operators have none): never called, and the network is differentiable
    def not_wanted(*args, **kwargs):
        raise AssertionError("a fused operator ran where a gradient is wanted")

    monkeypatch.setattr(_blocks, "_fused", not_wanted)
    monkeypatch.setattr(_blocks, "_linear", not_wanted)
    works = {("conv", torch.float32, True): True, ("linear", torch.float32, False): True}
    monkeypatch.setattr(_blocks, "_FUSION_WORKS", works)
    xg = x.clone().requires_grad_()
    FastUNet(net)(xg).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()


# ------------------------------------------------------------------------ Winograd convolution (NNPACK, issue #16)
needs_nnpack = pytest.mark.skipif(not torch.backends.nnpack.is_available(), reason="this torch build has no NNPACK")


def _winograd_calls(monkeypatch) -> list:
    """The image shapes NNPACK convolves from now on (its probe's 20 px ones left out)."""
    from sunpy_nn.nn import _blocks

    calls, real = [], _blocks._winograd
    monkeypatch.setattr(
        _blocks, "_winograd", lambda x, *a: (calls.append(tuple(x.shape)) if x.shape[-1] > 20 else 0) or real(x, *a)
    )
    return calls


def _relative_to(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref).abs().max() / (ref.max() - ref.min()))


@needs_nnpack
@pytest.mark.parametrize("shape", [(1, 1, 61, 50), (2, 1, 49, 64)])
def test_winograd_enhance_computes_the_same_network(monkeypatch, shape):
    # Enhance's residual blocks as NNPACK's Winograd convolution: the same function as the float64 network within
    # 1e-5 of the output's range (reflection borders recomputed, a batch one image at a time), where the direct
    # convolution is within 1e-6; measured about 3e-6 and 1e-6 on the 400 px benchmark image.
    import copy

    calls = _winograd_calls(monkeypatch)
    net = random_enhance_net(depth=2, n_filters=64)
    x = torch.rand(shape)
    with torch.inference_mode():
        ref = copy.deepcopy(net).double()(x.double())
        out = FastEnhance(net, winograd=True)(x)
        direct = FastEnhance(net, winograd=False)(x)
    assert len(calls) == 5 and all(c[:2] == (shape[0], 64) for c in calls)  # 2 blocks x 2 + the closing convolution
    assert _relative_to(out, ref) <= 1e-5 and _relative_to(direct, ref) <= 1e-6


@needs_nnpack
@pytest.mark.parametrize("mode", ["reflect", "zeros"])
@pytest.mark.parametrize("shape", [(1, 64, 49, 53), (2, 64, 48, 50)])
def test_winograd_convolution_pads_as_asked(mode, shape):
    # NNPACK pads with zeros; reflection is recomputed on the one-pixel ring (corners included)
    from torch.nn import functional as F

    from sunpy_nn.nn._blocks import _Conv

    g = torch.Generator().manual_seed(3)
    w, b = torch.randn(64, 64, 3, 3, generator=g) / 24, torch.randn(64, generator=g)
    conv = _Conv(w, b, 1, mode, torch.float32)
    conv.winograd = True
    x = torch.randn(shape, generator=g)
    pad = F.pad(x.double(), (1, 1, 1, 1), mode="reflect" if mode == "reflect" else "constant")
    ref = F.conv2d(pad, w.double(), b.double())
    with torch.inference_mode():
        assert conv._nnpack(x, conv.bias) is not None  # NNPACK ran
        out = conv(x)
    assert _relative_to(out, ref) <= 1e-5


@needs_nnpack
def test_winograd_runs_by_default_only_where_it_pays(monkeypatch):
    import threading

    from sunpy_nn.nn import _blocks

    calls = _winograd_calls(monkeypatch)
    net = random_enhance_net(depth=1, n_filters=64)
    fast, x = FastEnhance(net), torch.rand(1, 1, 64, 64)

    def runs(inp=x, module=fast) -> bool:
        calls.clear()
        with torch.inference_mode():
            module(inp)
        return bool(calls)

    # by default where ATen runs AVX2 kernels (no AVX-512: there oneDNN's direct convolution was as fast)
    for avx2 in (True, False):
        monkeypatch.setattr(_blocks, "_aten_avx2", lambda avx2=avx2: avx2)
        assert runs() == avx2
    fast.winograd = True  # asked for: on any CPU
    assert runs()
    monkeypatch.setattr(_blocks, "_aten_avx2", lambda: True)
    fast.winograd = None
    # never below 64 channels or 48 px a side (slower there), switched off, or with NNPACK switched off in torch
    assert not runs(module=FastEnhance(random_enhance_net(depth=1, n_filters=32)))
    assert not runs(inp=torch.rand(1, 1, 40, 64))
    fast.winograd = False
    assert not runs()
    fast.winograd = None
    with torch.backends.nnpack.flags(enabled=False):
        assert not runs()
    # nor from another thread, or at another torch thread count than NNPACK's first call (its one thread pool)
    worker = threading.Thread(target=runs)
    worker.start()
    worker.join()
    assert not calls
    monkeypatch.setitem(_blocks._WINOGRAD, "threads", torch.get_num_threads() + 1)
    assert not runs()
    monkeypatch.setitem(_blocks._WINOGRAD, "threads", torch.get_num_threads())
    assert runs()
    # nor where a gradient is wanted (NNPACK's has none here): differentiable as before
    xg = x.clone().requires_grad_()
    calls.clear()
    fast(xg).sum().backward()
    assert not calls and xg.grad is not None and torch.isfinite(xg.grad).all()
    # the U-Net never: its activations are channels-last (copies to NCHW cost more than NNPACK saves), and where
    # they are not (NCHW asked for, or the layer-by-layer form of a 1-channel input) it stays on oneDNN too
    for unet, inp in (
        (FastUNet(UNet(1, 1, 64, 1)), torch.rand(1, 1, 64, 64)),
        (FastUNet(UNet(1, 1, 64, 1), levers=False), torch.rand(1, 1, 64, 64)),
        (FastUNet(UNet(12, 1, 64, 1), channels_last=False), torch.rand(1, 12, 64, 64)),
    ):
        assert unet.winograd is False and not runs(inp=inp, module=unet)


@needs_nnpack
def test_winograd_falls_back_where_nnpack_fails(monkeypatch):
    from sunpy_nn.nn import _blocks

    def broken(*args):
        raise RuntimeError("NNPACK SpatialConvolution_updateOutput failed")

    net = random_enhance_net(depth=1, n_filters=64)
    x = torch.rand(1, 1, 56, 56)
    with torch.inference_mode():
        ref = FastEnhance(net, winograd=False)(x)
        for state in ({}, {"works": True, "threads": torch.get_num_threads()}):  # the probe fails; a later call
            monkeypatch.setattr(_blocks, "_WINOGRAD", dict(state))
            monkeypatch.setattr(_blocks, "_winograd", broken)
            assert_close_ulps(FastEnhance(net, winograd=True)(x), ref, channel_axis=1)
            assert _blocks._WINOGRAD["works"] is False


@needs_nnpack
@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_guard_winograd_enhance_real_hmi(monkeypatch, shipped, kind):
    # the shipped weights on real HMI data, Winograd forced (and run): within the guard, and far within it
    calls = _winograd_calls(monkeypatch)
    img = _hmi(kind)
    with torch.inference_mode():
        out = FastEnhance(shipped[kind], winograd=True)(torch.from_numpy(img)[None, None])
    assert calls
    assert relative_error(out, _eager(shipped[kind], img)) <= ACCURACY_BOUND / 20


@pytest.mark.parametrize("channels_last", [True, False])
def test_bfloat16_networks_run_with_fusion_in_either_layout(channels_last):
    # oneDNN's fused convolution plus addition has no bfloat16 kernel for NCHW tensors on some builds: the probe is
    # per dtype and layout, so such a network runs the separate operations instead of failing (9 channels: no
    # matrix-product head, so the activations stay in the layout asked for)
    net = _denoiser_unet(9, "zeros")
    x = torch.randn(1, 9, 32, 40)
    with torch.inference_mode():
        out = FastUNet(net, dtype=torch.bfloat16, channels_last=channels_last)(x)
        plain = FastUNet(net, dtype=torch.bfloat16, channels_last=channels_last, fuse=False)(x)
        ref = net(x)
    assert torch.isfinite(out).all()
    scale = float(ref.abs().max())
    assert float((out - plain).abs().max()) <= 1e-2 * scale  # bfloat16 rounding, not another function
    assert float((out - ref).abs().max()) <= 5e-2 * scale


def test_prepare_model_leaves_the_original_alone():
    net = random_enhance_net(depth=1, n_filters=8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    prepare_model(net, precision="float32")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not net.training


def test_prepare_model_other_modules_run_under_autocast():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1)).eval()
    x = torch.randn(1, 1, 16, 16)
    with torch.inference_mode():
        out = prepare_model(net, precision="float32")(x)
        assert_close_ulps(out, net(x), channel_axis=1)


# ----------------------------------------------------------------------------------------- the accuracy guard
@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_guard_enhance_real_hmi(shipped, kind):
    # Every mode that promises accuracy ("float32", "auto") stays within the guard on real data, with the shipped
    # weights. "auto" may only pick bfloat16 when its measured error passed.
    net = shipped[kind]
    img = _hmi(kind)
    ref = _eager(net, img)
    x = torch.from_numpy(img)[None, None]
    for precision in ("float32", "auto"):
        fast = prepare_model(net, precision=precision, example=x)
        with torch.inference_mode():
            err = relative_error(fast(x), ref)
        assert err <= ACCURACY_BOUND, (precision, fast.precision, err)
        if fast.precision == "bfloat16":
            assert fast.max_error is not None and fast.max_error <= ACCURACY_BOUND / 2


def test_guard_denoiser_real_crisp():
    net = _denoiser_unet()
    img = _crisp()
    ref = _eager(net, img)
    x = torch.from_numpy(img)[None, None]
    for precision in ("float32", "auto"):
        fast = prepare_model(net, precision=precision, example=x)
        with torch.inference_mode():
            assert relative_error(fast(x), ref) <= ACCURACY_BOUND


def test_bfloat16_is_close_but_not_guarded(shipped):
    # Explicit bfloat16 makes no 1e-3 promise (about 1 % on these weights; see the performance guide), but it
    # must still compute the same network: a sanity bound of 5 % of the output range.
    net = shipped["intensity"]
    img = _hmi("intensity")
    x = torch.from_numpy(img)[None, None]
    fast = prepare_model(net, precision="bfloat16")
    assert fast.precision == "bfloat16"
    with torch.inference_mode():
        out = fast(x)
    assert out.dtype == torch.float32
    assert relative_error(out, _eager(net, img)) < 0.05


def test_auto_measures_bfloat16_where_native(monkeypatch):
    # Forcing "native bfloat16" makes auto measure; on this network bfloat16 is far off (coarse weights and a large
    # output scale), so the guard must choose float32 and say what it measured.
    import sunpy_nn.nn.optimize as opt

    monkeypatch.setattr(opt, "bf16_is_native", lambda device="cpu": True)
    net = random_enhance_net(depth=2, n_filters=16)
    x = torch.from_numpy(_hmi("intensity"))[None, None]
    fast = prepare_model(net, precision="auto", example=x)
    assert fast.max_error is not None
    assert fast.precision == ("bfloat16" if fast.max_error <= ACCURACY_BOUND / 2 else "float32")
    with torch.inference_mode():
        assert relative_error(fast(x), _eager(net, x[0, 0].numpy())) <= ACCURACY_BOUND

    monkeypatch.setattr(opt, "bf16_is_native", lambda device="cpu": False)
    assert prepare_model(net, precision="auto").max_error is None  # nothing measured, float32


# ---------------------------------------------------------------------------------------------- run_tiled
@pytest.mark.parametrize("precision", ["float32", "auto"])
def test_run_tiled_precision_matches_default(precision):
    img = _hmi("intensity")
    halo = ENHANCE.receptive_radius
    ref = run_tiled(ENHANCE, img, scale=2, halo=halo, tile_size=64, progress=False)
    out = run_tiled(ENHANCE, img, scale=2, halo=halo, tile_size=64, progress=False, precision=precision)
    assert np.abs(out - ref).max() <= ACCURACY_BOUND * np.ptp(ref)
    if precision == "float32":
        assert_close_ulps(out, ref)  # measured <= 8 ulps


def test_run_tiled_precision_unet_multichannel_and_mask():
    net = _denoiser_unet(2)
    img = np.stack([_crisp(), _crisp()[::-1].copy()])
    valid = np.ones(img.shape[1:], bool)
    valid[:, :40] = False
    kw = {"halo": net.receptive_radius, "align": net.align, "tile_size": 80, "progress": False, "valid": valid}
    ref = run_tiled(net, img, **kw)
    out = run_tiled(net, img, precision="float32", **kw)
    assert out.shape == ref.shape == (3, 64, 96)
    # NaN at the same places; each channel (two images, one log-variance) to rounding of its own magnitude, where
    # one tolerance from the range of all channels together was 1e-5 of the log-variance's (measured <= 10.5 ulps)
    assert_close_ulps(out, ref, channel_axis=0)


def test_run_tiled_prepared_copy_follows_weight_updates():
    # The optimised copy is cached per model; an in-place weight update (training) must invalidate it.
    net = random_enhance_net(depth=1, n_filters=8, seed=3)
    img = _hmi("intensity")[:40, :40]
    kw = {"scale": 2, "halo": net.receptive_radius, "progress": False, "precision": "float32"}
    first = run_tiled(net, img, **kw)
    with torch.no_grad():
        net.tail.bias += 1.0
    second = run_tiled(net, img, **kw)
    assert np.allclose(second, first + 1.0, atol=1e-4)


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="precision must be"):
        prepare_model(ENHANCE, precision="float16")
    with pytest.raises(ValueError, match="precision must be"):
        run_tiled(ENHANCE, np.ones((20, 20), "f4"), scale=2, halo=5, precision="fp32", progress=False)
    assert set(PRECISIONS) == {"float32", "bfloat16", "auto"}


# ----------------------------------------------------------------------------------------------- compile
def test_compile_failure_falls_back_with_a_logged_warning(monkeypatch, caplog):
    def broken_compile(module, **kwargs):
        def run(x):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    net = random_enhance_net(depth=1, n_filters=8)
    fast = prepare_model(net, precision="float32", compile=True)
    assert fast.compiled
    x = torch.randn(1, 1, 20, 20)
    with caplog.at_level(logging.WARNING, logger="sunpy_nn.nn.prepared"), torch.inference_mode():
        out = fast(x)
        assert relative_error(out, net(x)) < 1e-5
    assert not fast.compiled
    assert "falling back to eager" in caplog.text


@pytest.mark.parametrize("wrong", [lambda y: y + 0.5 * (y.amax() - y.amin()), lambda y: y * float("nan")])
def test_a_miscompiled_network_falls_back_to_eager(monkeypatch, caplog, wrong):
    """A compiled network whose output is off (seen: 0.8 of the range, NaN) is dropped on its first call."""

    def miscompile(module, **kwargs):
        return lambda x: wrong(module(x))

    monkeypatch.setattr(torch, "compile", miscompile)
    net = random_enhance_net(depth=1, n_filters=8)
    fast = prepare_model(net, precision="float32", compile=True)
    x = torch.randn(1, 1, 20, 20)
    with caplog.at_level(logging.WARNING, logger="sunpy_nn.nn.prepared"), torch.inference_mode():
        out = fast(x)
        assert relative_error(out, net(x)) < 1e-5  # the eager network's output, not the compiled one
        assert relative_error(fast(x), net(x)) < 1e-5
    assert not fast.compiled
    assert "off eager" in caplog.text


def test_monte_carlo_dropout_is_not_compiled(monkeypatch, caplog):
    """Its compiled draws differ from eager ones, so the accuracy check would always fail: it stays eager."""
    compiled = []

    def recording_compile(module, **kwargs):
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", recording_compile)
    net = UNet(n_filters=4, depth=1, dropout=0.5).eval().mc_dropout()
    with caplog.at_level(logging.INFO, logger="sunpy_nn.nn.prepared"):
        fast = prepare_model(net, precision="float32", compile=True)
    assert compiled == [] and not fast.compiled
    assert "torch.compile is not used with Monte-Carlo dropout" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    x = torch.randn(1, 1, 16, 16)
    with torch.inference_mode():
        torch.manual_seed(3)
        out = fast(x)
        torch.manual_seed(3)
        again = fast(x)
    assert torch.equal(out, again) and not torch.equal(out, fast(x))  # eager draws: seeded, and random
    net.mc_dropout(False)
    assert prepare_model(net, precision="float32", compile=True).compiled and len(compiled) == 1  # deterministic


def test_a_correct_compiled_network_is_checked_once(monkeypatch):
    calls = []

    def counting_compile(module, **kwargs):
        def run(x):
            calls.append("compiled")
            return module(x)

        return run

    monkeypatch.setattr(torch, "compile", counting_compile)
    fast = prepare_model(random_enhance_net(depth=1, n_filters=8), precision="float32", compile=True)
    eager_calls = []
    fast.module.register_forward_hook(lambda *args: eager_calls.append(1))
    x = torch.randn(1, 1, 20, 20)
    with torch.inference_mode():
        for _ in range(3):
            fast(x)
    assert fast.compiled and len(calls) == 3
    assert len(eager_calls) == 3 + 1  # the compiled stand-in runs the module, plus one eager check on the first call
    fast.enable_compile()  # a new compiled function: its outputs are checked again
    with torch.inference_mode():
        fast(x)
    assert len(eager_calls) == 4 + 2


def test_input_with_a_nan_runs_eagerly_and_keeps_the_compiled_network(monkeypatch):
    """A NaN in the first input of a shape made the check against eager NaN, which dropped the compiled network for
    good; and compiled kernels need not keep a NaN NaN. Such input runs the eager optimised copy (NaN stays NaN)."""
    calls = []

    def zeroing_compile(module, **kwargs):  # compiled kernels that, like a fused ReLU, give 0 for a NaN
        return lambda x: calls.append(1) or torch.nan_to_num(module(x), nan=0.0)

    monkeypatch.setattr(torch, "compile", zeroing_compile)
    net = random_enhance_net(depth=1, n_filters=8)
    fast = prepare_model(net, precision="float32", compile=True)
    holed = torch.randn(1, 1, 20, 20)
    holed[..., 10, 10] = float("nan")
    with torch.inference_mode():
        out = fast(holed)
        assert not calls and torch.isnan(out[..., 20, 20]) and torch.isfinite(out[..., :8, :8]).all()
        fast(torch.randn(1, 1, 20, 20))  # finite: compiled, checked and kept
    assert calls and fast.compiled


def test_each_new_shape_is_checked_and_a_miscompiled_one_falls_back(monkeypatch, caplog):
    """dynamic=False compiles new kernels for each input shape (e.g. a tiled run's edge tiles): each is checked."""

    def miscompile_large(module, **kwargs):
        return lambda x: module(x) * (1.0 if x.shape[-1] < 32 else float("nan"))

    monkeypatch.setattr(torch, "compile", miscompile_large)
    net = random_enhance_net(depth=1, n_filters=8)
    fast = prepare_model(net, precision="float32", compile=True)
    eager_calls = []
    fast.module.register_forward_hook(lambda *args: eager_calls.append(1))
    small, large = torch.randn(1, 1, 20, 20), torch.randn(1, 1, 20, 40)
    with caplog.at_level(logging.WARNING, logger="sunpy_nn.nn.prepared"), torch.inference_mode():
        fast(small), fast(small)
        assert fast.compiled and len(eager_calls) == 2 + 1  # one check for the first shape only
        out = fast(large)
        assert torch.isfinite(out).all() and relative_error(out, net(large)) < 1e-5
    assert not fast.compiled
    assert "off eager" in caplog.text


def test_compiled_enhance_within_guard(shipped):
    # The real compiler (inductor): skipped where it cannot build (no C++ compiler), which the fallback covers.
    net = shipped["intensity"]
    img = _hmi("intensity")[:48, :48]
    x = torch.from_numpy(np.ascontiguousarray(img))[None, None]
    fast = prepare_model(net, precision="float32", compile=True)
    with torch.inference_mode():
        out = fast(x)
    if not fast.compiled:
        pytest.skip("torch.compile is not usable here (the fallback ran instead)")
    assert relative_error(out, _eager(net, np.ascontiguousarray(img))) <= ACCURACY_BOUND


# ------------------------------------------------------------------------------------------------ hardware
def test_bf16_is_native_is_a_bool_and_false_for_missing_cuda():
    assert isinstance(bf16_is_native("cpu"), bool)
    if not torch.cuda.is_available():
        assert bf16_is_native("cuda") is False


def test_bf16_is_not_native_where_onednn_is_capped_below_it(monkeypatch):
    """A CPU with AVX512-BF16 whose oneDNN is capped to AVX2 emulates bfloat16: "auto" must not pick it."""
    monkeypatch.setattr("sunpy_nn.nn.device._cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert bf16_is_native("cpu") is True
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert bf16_is_native("cpu") is False
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert bf16_is_native("cpu") is True
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE")  # oneDNN's older name of the variable
    assert bf16_is_native("cpu") is False


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_float32_within_guard():
    x = torch.from_numpy(_hmi("intensity"))[None, None]
    fast = prepare_model(ENHANCE, device="cuda", precision="auto", example=x)
    with torch.inference_mode():
        out = fast(x.cuda()).cpu()
    assert relative_error(out, _eager(ENHANCE, x[0, 0].numpy())) <= ACCURACY_BOUND


@pytest.mark.parametrize(("size", "window", "halo", "align"), [(4096, 624, 13, 1), (1000, 200, 29, 4), (97, 40, 7, 1)])
def test_balanced_window_needs_no_more_tiles(size, window, halo, align):
    from sunpy_nn.nn.runner import _balanced_window, tile_windows

    balanced = _balanced_window(size, window, halo, align)
    assert balanced <= window and balanced % align == 0
    assert len(tile_windows(size, balanced, halo, align)) == len(tile_windows(size, window, halo, align))
    # It is the smallest such window: fewer recomputed pixels than the requested one whenever it shrank.
    assert len(tile_windows(size, balanced - align, halo, align)) > len(tile_windows(size, window, halo, align))


def test_run_tiled_precision_follows_mc_dropout():
    # Monte-Carlo dropout (Denoiser.predict's "total" uncertainty) must stay random on the optimised path.
    net = _denoiser_unet()
    img = _crisp()
    kw = {"halo": net.receptive_radius, "align": net.align, "progress": False, "precision": "float32"}
    plain = run_tiled(net, img, **kw)
    assert np.array_equal(plain, run_tiled(net, img, **kw))
    net.mc_dropout(True)
    try:
        torch.manual_seed(0)
        a = run_tiled(net, img, **kw)
        b = run_tiled(net, img, **kw)
    finally:
        net.mc_dropout(False)
    assert not np.array_equal(a, b)
    assert_close_ulps(run_tiled(net, img, **kw), plain, channel_axis=0)


# ------------------------------------------------------------------------------ the options of the public API
@pytest.mark.parametrize("precision", ["float32", "auto", "bfloat16"])
def test_enhance_map_and_denoiser_precision(shipped, precision):
    """enhance_map and Denoiser.predict pass precision= through: guarded modes match the exact network."""
    import astropy.units as u
    from ndcube import NDCube

    from sunpy_nn import Denoiser, enhance_map

    from .test_denoise import TRUTH, noisy_cube
    from .test_enhance_map import hmi_map

    rng = np.random.default_rng(1)
    smap = hmi_map((5.0e4 * (1 + 0.04 * rng.standard_normal((64, 64)))).astype(np.float32), unit=u.DN / u.s)
    smap.meta["content"] = "CONTINUUM INTENSITY"
    exact = enhance_map(smap, precision=None, progress=False)
    fast = enhance_map(smap, precision=precision, progress=False)

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.nanmax(np.abs(a - b)) / (np.nanmax(b) - np.nanmin(b)))

    err = rel(fast.data, exact.data)
    assert 0 < err <= (ACCURACY_BOUND if precision != "bfloat16" else 0.05), err

    cube = noisy_cube(TRUTH[:2, :, :, :32, :32])
    den = Denoiser(n_filters=8).fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, seed=0, progress=False)
    exact = den.predict(cube, precision=None, progress=False)
    fast = den.predict(cube, precision=precision, progress=False)
    assert isinstance(fast, NDCube)
    err = rel(np.asarray(fast.data)[:, 1:], np.asarray(exact.data)[:, 1:])
    assert err <= (ACCURACY_BOUND if precision != "bfloat16" else 0.2), err
    with pytest.raises(ValueError, match="precision"):
        den.predict(cube, precision="float16", progress=False)
