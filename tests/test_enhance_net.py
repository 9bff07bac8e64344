import numpy as np
import pytest
import torch

from sunpy_nn.nn import EnhanceNet

from .helpers import assert_close_ulps, random_enhance_net, upsampling_enhance_net


def test_paper_parameter_counts():
    net = EnhanceNet()
    assert net.n_parameters == 445_249  # trainable, as in the paper's Keras summary
    buffers = sum(b.numel() for name, b in net.named_buffers() if "running" in name)
    assert net.n_parameters + buffers == 446_657  # the Keras total includes the BN moving statistics


def test_layer_structure_matches_paper():
    net = EnhanceNet()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 14  # conv2d_1 ... conv2d_14 in the Keras summary
    assert len(bns) == 11
    assert all(c.padding_mode == "reflect" for c in convs if c.kernel_size == (3, 3))
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == 1
    # Keras BatchNormalization defaults, needed for exact import of the original weights
    assert all(b.eps == 1e-3 for b in bns)


def test_flops_match_paper():
    # METHODS A: ~553k multiply-adds per input pixel, ~177 GFLOP for 400x400
    net = EnhanceNet()
    assert net.flops_per_pixel == pytest.approx(553e3, rel=0.01)
    assert 2 * net.flops_per_pixel * 400 * 400 / 1e9 == pytest.approx(177, rel=0.01)


@pytest.mark.parametrize(("depth", "n_filters"), [(5, 64), (1, 32), (3, 8)])
def test_output_is_twice_input_size(depth, n_filters):
    net = EnhanceNet(depth=depth, n_filters=n_filters).eval()
    with torch.inference_mode():
        out = net(torch.randn(2, 1, 13, 22))
    assert out.shape == (2, 1, 26, 44)


def test_lite_variant_is_about_40k_parameters():
    assert EnhanceNet(depth=1, n_filters=32).n_parameters == pytest.approx(40_000, rel=0.1)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_receptive_radius_is_exact(depth):
    # A single changed input pixel affects output pixels up to receptive_radius input pixels away, and no further.
    net = random_enhance_net(depth=depth, n_filters=16)
    n = 2 * net.receptive_radius + 21
    x = torch.randn(1, 1, n, n, generator=torch.Generator().manual_seed(1))  # not zeros: ReLUs must be active
    with torch.inference_mode():
        base = net(x)
        x[0, 0, n // 2, n // 2] += 10.0
        diff = (net(x) - base).abs()[0, 0].numpy()
    rows = np.nonzero(diff.max(axis=1) > 0)[0]
    # output row j is computed for input row j // 2; the halo must cover every input row it depends on
    assert np.abs(rows // 2 - n // 2).max() == net.receptive_radius


def test_invalid_configuration():
    with pytest.raises(ValueError, match="positive"):
        EnhanceNet(depth=0)


def test_upsampling_helper_is_exact():
    # Sanity check of the test helper used to verify normalisation round trips.
    x = torch.randn(1, 1, 9, 11)
    with torch.inference_mode():
        out = upsampling_enhance_net()(x)
    # to rounding: a Winograd convolution kernel (aarch64) does not multiply by exactly 1 and 0
    assert_close_ulps(out[0, 0].numpy(), np.repeat(np.repeat(x[0, 0].numpy(), 2, 0), 2, 1), ulps=4)
