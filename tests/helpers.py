"""Test helpers: networks with known behaviour and a skip for the shared reference data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sunpy_nn.nn import EnhanceNet

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: Tolerance of `assert_close_ulps`, in float32 units in the last place (ulps) of each output channel's largest
#: magnitude. Results that must not depend on how the work is split (whole image or tiles, batches of 1 or 7, in
#: memory or block by block with dask) still differ by rounding: the convolution kernels that PyTorch and oneDNN
#: pick depend on the CPU (AVX-512, AVX2, SSE, NEON/ACL on aarch64) and on the input's shape, and sum in different
#: orders. Measured: up to 4 ulps on x86-64 with AVX-512, AVX2 and SSE4.1 (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA);
#: 128 leaves room for Winograd kernels (aarch64) and is still 1e-5 of the channel's magnitude, far below any real
#: fault (a seam, a missing halo, a mixed-up tile), which shows at 1e-4 or more.
FLOAT32_ULPS = 128


def shared_file(*parts: str) -> Path:
    """Path of a file in ../shared/data, or skip the test saying why."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"reference data {path} is absent (the ../shared/data folder is only beside a development checkout)"
        )
    return path


def random_enhance_net(depth: int = 2, n_filters: int = 16, seed: int = 0) -> EnhanceNet:
    """An EnhanceNet with random weights and random batch-normalisation statistics, in eval mode."""
    torch.manual_seed(seed)
    net = EnhanceNet(depth=depth, n_filters=n_filters)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net.eval()


def upsampling_enhance_net(depth: int = 1, n_filters: int = 4) -> EnhanceNet:
    """
    An EnhanceNet whose weights make it an exact nearest-neighbour x2 upsampler: out = repeat(in, 2, 2).

    Channel 0 carries +x and channel 1 carries -x so that the ReLUs pass both signs; the residual blocks and the
    long-skip branch are switched off with zero convolutions and zero batch-normalisation gain.
    """
    net = EnhanceNet(depth=depth, n_filters=n_filters)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
        net.head.weight[0, 0, 1, 1] = 1.0
        net.head.weight[1, 0, 1, 1] = -1.0
        net.up_conv.weight[0, 0, 1, 1] = 1.0
        net.up_conv.weight[1, 1, 1, 1] = 1.0
        net.tail.weight[0, 0, 0, 0] = 1.0
        net.tail.weight[0, 1, 0, 0] = -1.0
    return net.eval()


def assert_close_ulps(actual, desired, ulps: int = FLOAT32_ULPS, channel_axis: int | None = None) -> None:
    """
    Assert ``|actual - desired| <= ulps * spacing(max |desired|)``, channel by channel, with NaN at the same places.

    The tolerance of each channel (``channel_axis``; the whole array if None) is in float32 ulps of that channel's
    own largest magnitude, so that a channel far from 0 (a log-variance around -12) is not held to the rounding of
    a channel near 0, nor the other way round.
    """
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired), err_msg="NaN at different places")
    if channel_axis is None:
        actual, desired = actual[None], desired[None]
    else:
        actual, desired = np.moveaxis(actual, channel_axis, 0), np.moveaxis(desired, channel_axis, 0)
    for c, (a, d) in enumerate(zip(actual, desired, strict=True)):
        ok = ~np.isnan(d)
        if not ok.any():
            continue
        scale = np.spacing(np.float32(np.abs(d[ok]).max()))
        err = np.abs(a[ok] - d[ok]).max()
        assert err <= ulps * scale, f"channel {c}: max difference {err:.3g} = {err / scale:.1f} ulps > {ulps} ulps"


def short_denoise_cube_training(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """
    Shorten the training that `sunpy_nn.denoise_cube` runs to one batch of patches per epoch
    (``patches_per_epoch=10``, where the caller does not set it) and return the keyword arguments of each
    `sunpy_nn.Denoiser.fit` call, as it made them.

    For tests of what ``denoise_cube`` passes on, checks and returns, not of what the network learns: its default
    U-Net (32 filters) on the default 1000 patches per epoch took 10-70 s per test on two CPU cores.
    """
    from sunpy_nn import Denoiser

    calls: list[dict] = []
    fit = Denoiser.fit

    def one_batch(self, *args, **kwargs):
        calls.append(dict(kwargs))
        kwargs.setdefault("patches_per_epoch", 10)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Denoiser, "fit", one_batch)
    return calls
