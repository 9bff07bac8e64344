"""The denoiser U-Net: architecture, the golden Keras reference, and tiling with pooling."""

import numpy as np
import pytest
import torch

from sunpy_nn.io.keras import load_keras_unet
from sunpy_nn.nn import UNet, prepare_model, run_tiled
from sunpy_nn.utils import WeightsError

from .helpers import assert_close_ulps, shared_file


def test_golden_keras_reference():
    # The original Keras network's output for this input, both the denoised image and the log-variance.
    net = load_keras_unet(shared_file("denoise", "keras_simulation_bayes_weights.hdf5"))
    assert (net.depth, net.n_filters, net.variance_head, net.padding) == (2, 32, True, "zeros")
    x = np.load(shared_file("denoise", "muram_stokesv_noisy_400.npy")).astype(np.float32)
    ref = np.load(shared_file("denoise", "keras_prediction_bayes_simulation.npy"))
    with torch.inference_mode():
        out = net(torch.from_numpy(x)[None, None])[0].numpy()
    assert np.abs(out[0] - ref[1, 0, :, :, 0]).max() <= 1e-5
    assert np.abs(out[1] - ref[0, 0, :, :, 0]).max() <= 1e-5


def test_sst_weights_load():
    net = load_keras_unet(shared_file("denoise", "keras_sst_bayes_weights.hdf5"))
    assert net.variance_head and net.out_channels == 1


def test_enhance_file_is_not_a_unet(tmp_path):
    from .helpers import random_enhance_net
    from .test_keras import write_keras_enhance

    path = tmp_path / "enhance.h5"
    write_keras_enhance(random_enhance_net(depth=1, n_filters=8), path)
    with pytest.raises(WeightsError, match="linear_output"):
        load_keras_unet(path)


@pytest.mark.parametrize(("depth", "variance"), [(2, False), (2, True), (3, False)])
def test_shapes_and_channels(depth, variance):
    net = UNet(in_channels=5, out_channels=5, n_filters=8, depth=depth, variance_head=variance).eval()
    with torch.inference_mode():
        out = net(torch.randn(2, 5, 8 * 2**depth, 4 * 2**depth))
    assert out.shape == (2, 5 + variance, 8 * 2**depth, 4 * 2**depth)
    if variance:
        assert (out[:, -1] <= -12).all()  # log-variance = -|x| - 12


def test_paper_parameter_count():
    # Table B.1 with n = 32, depth 2, 2x2 up-convolutions
    net = UNet(n_filters=32, depth=2)
    convs = [
        (1, 32, 3),
        (32, 32, 3),
        (32, 64, 3),
        (64, 64, 3),
        (64, 128, 3),
        (128, 128, 3),
        (128, 64, 2),
        (128, 64, 3),
        (64, 64, 3),
        (64, 32, 2),
        (64, 32, 3),
        (32, 32, 3),
        (32, 1, 1),
    ]
    assert sum(p.numel() for p in net.parameters()) == sum(i * o * k * k + o for i, o, k in convs)


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
def test_tiled_equals_whole_with_pooling(padding):
    torch.manual_seed(0)
    net = UNet(n_filters=8, depth=2, padding=padding, variance_head=True).eval()
    img = np.random.default_rng(0).normal(size=(260, 196)).astype(np.float32)
    with torch.inference_mode():
        whole = net(torch.from_numpy(img)[None, None])[0].numpy()
    out = run_tiled(net, img, halo=net.receptive_radius, tile_size=96, align=net.align, progress=False)
    assert out.shape == whole.shape
    # Each channel in ulps of its own magnitude: the log-variance sits around -12, where one ulp (1e-6) exceeded the
    # tolerance taken from the range of the image channel.
    assert_close_ulps(out, whole, channel_axis=0)


def test_mc_dropout_varies_only_when_enabled():
    net = UNet(n_filters=8, dropout=0.2).eval()
    x = torch.randn(1, 1, 16, 16)
    with torch.inference_mode():
        assert torch.equal(net(x), net(x))
        net.mc_dropout(True)
        assert not torch.equal(net(x), net(x))
        net.mc_dropout(False)
        assert torch.equal(net(x), net(x))


def test_bad_configuration():
    with pytest.raises(ValueError, match="padding"):
        UNet(padding="same")


@pytest.mark.parametrize("shape", [(30, 32), (32, 18), (33, 33)])
def test_sizes_that_are_not_multiples_of_the_alignment_are_named(shape):
    # was a bare "Sizes of tensors must match" from torch.cat inside the decoder
    net = UNet(1, 1, 4, 2)
    with pytest.raises(ValueError, match=rf"multiples of 4 \(2\*\*depth\), not \({shape[0]}, {shape[1]}\): pad them"):
        net(torch.zeros(1, 1, *shape))
    assert net(torch.zeros(1, 1, 32, 36)).shape == (1, 1, 32, 36)
    fast = prepare_model(net.eval(), device="cpu")  # the optimised copy that run_tiled uses
    with pytest.raises(ValueError, match=r"multiples of 4 \(2\*\*depth\)"):
        fast(torch.zeros(1, 1, *shape))


def _subnormal(t: torch.Tensor) -> bool:
    return bool(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).any())


@pytest.mark.parametrize(
    ("variance", "raw", "bias"), [("softplus", (-110.0, -80.0), -95.0), ("abs", (30.0, 110.0), 70.0)]
)
def test_variance_head_gradients_are_never_subnormal(variance, raw, bias):
    # A head driven far below the noise (a line core under one noise level) made subnormal gradients, which x86 CPUs
    # compute 10-100x slower: a temporal fit ran 6x slower per epoch. The aleatoric loss of `train_noise2noise`, a
    # mean over a training batch (16 patches of 64 x 64), whose 1 / N brings small gradients nearer the subnormals.
    from sunpy_nn.nn.unet import VARIANCE_FLOOR, log_variance

    r = torch.linspace(*raw, 16 * 64 * 64).reshape(16, 1, 64, 64).requires_grad_(True)
    log_var = log_variance(r, variance, -12.0)
    s2 = torch.exp(log_var) + 1.0
    ((0.3 / (2 * s2)) + 0.5 * torch.log(s2)).mean().backward()
    assert not _subnormal(r.grad) and not _subnormal(log_var.detach())
    # the value is the parameterisation's, to float32 precision: the floor there (softplus), or -|raw| - 12 down to
    # -50 (abs), far below any real log-variance (the original Keras network's lowest is -15.6 on its test image)
    if variance == "softplus":
        assert torch.allclose(log_var, torch.full_like(log_var, np.log(VARIANCE_FLOOR)), rtol=1e-6)
    else:
        assert torch.equal(log_var.detach(), torch.clamp(-r.detach() - 12.0, min=-50.0))

    # the whole network: every parameter's gradient in a training step with the head far down
    net = UNet(1, 1, n_filters=4, variance_head=True, residual=True, variance=variance)
    with torch.no_grad():
        net.var_out.weight.zero_()
        net.var_out.bias.fill_(bias)
    out = net(torch.randn(16, 1, 64, 64, generator=torch.Generator().manual_seed(0)))
    s2 = torch.exp(out[:, 1:]) + 1.0
    (((out[:, :1].detach() - 0.5) ** 2) / (2 * s2) + 0.5 * torch.log(s2)).mean().backward()
    assert not any(_subnormal(p.grad) for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_sparse_dropout_is_bernoulli_dropout(layout):
    # The CPU dropout draws the gaps between dropped elements: it must still drop each element independently with
    # probability p and scale the rest by 1 / (1 - p), in the layout it was given, with the gradient of dropout.
    from sunpy_nn.nn.unet import sparse_dropout

    p, shape = 0.01, (8, 32, 64, 64)  # 1,048,576 elements
    x = torch.ones(shape)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.ones(8, 32, 64, 64).transpose(2, 3)  # dense, but neither layout: torch's own dropout
    x.requires_grad_(True)
    torch.manual_seed(3)
    y = sparse_dropout(x, p)
    dropped = (y == 0).detach().flatten()
    n = dropped.numel()
    assert abs(dropped.sum().item() - n * p) < 5 * np.sqrt(n * p * (1 - p))
    assert torch.equal(y[y != 0].detach(), torch.full_like(y[y != 0].detach(), 1 / (1 - p)))
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    if layout != "strided":  # independent trials: pairs of neighbours both dropped p^2 of the time, halves alike
        both = (dropped[1:] & dropped[:-1]).sum().item()
        assert abs(both - n * p**2) < 5 * np.sqrt(n * p**2)
        halves = dropped.view(2, -1).sum(1).double()
        assert abs(halves[0] - halves[1]) < 5 * np.sqrt(n * p)
    y.sum().backward()
    assert torch.equal(x.grad == 0, y.detach() == 0) and torch.allclose(x.grad[x.grad != 0], torch.tensor(1 / (1 - p)))
    # the global generator seeds it: the same seed, the same drops; another seed, others
    torch.manual_seed(3)
    assert torch.equal(sparse_dropout(x.detach(), p) == 0, y.detach() == 0)
    assert not torch.equal(sparse_dropout(x.detach(), p) == 0, y.detach() == 0)


def test_the_network_trains_with_the_sparse_dropout_on_cpu(monkeypatch):
    # every dropout layer of a training U-Net on CPU goes through sparse_dropout (and none in eval mode)
    import sunpy_nn.nn.unet as unet

    calls = []
    monkeypatch.setattr(unet, "sparse_dropout", lambda x, p: calls.append(p) or x)
    net = UNet(1, 1, n_filters=4, depth=2, variance_head=True, dropout=0.01)
    net(torch.zeros(1, 1, 16, 16))
    n_layers = sum(1 for m in net.modules() if isinstance(m, unet._Conv) and m.dropout > 0)
    assert len(calls) == n_layers > 0 and set(calls) == {0.01}
    calls.clear()
    net.eval()(torch.zeros(1, 1, 16, 16))
    assert calls == []
    net.mc_dropout(True)
    net(torch.zeros(1, 1, 16, 16))
    assert len(calls) == n_layers  # Monte-Carlo dropout at inference too


def test_mean_network_is_the_network_without_its_variance_head():
    """The view for runs whose variance is unused (the denoiser's bootstrap): the same output, fewer operations."""
    net = UNet(4, 1, n_filters=8, variance_head=True, residual=True, variance="softplus", variance_sees_output=True)
    net = net.eval()
    view = net.mean_network()
    assert view is net.mean_network()  # one view: run_tiled's optimised copies are cached per network object
    assert not view.variance_head and view.residual and view.in_channels == 4 and view.out_channels == 1
    assert {id(p) for p in view.parameters()} < {id(p) for p in net.parameters()}  # shared, not copied
    assert not any(name.startswith("var_") for name, _ in view.named_parameters())
    x = torch.randn(2, 4, 32, 32)
    with torch.inference_mode():
        assert torch.equal(view(x), net(x)[:, :1])
    with torch.no_grad():  # weights changed later (more training, a load) are the view's too
        net.out.bias.add_(1.0)
    with torch.inference_mode():
        assert torch.equal(view(x), net(x)[:, :1])
    plain = UNet(n_filters=4)
    assert plain.mean_network() is plain


def test_mean_network_follows_the_monte_carlo_switch():
    net = UNet(n_filters=8, dropout=0.2, variance_head=True).eval()
    view, x = net.mean_network(), torch.randn(1, 1, 16, 16)
    with torch.inference_mode():
        net.mc_dropout(True)
        assert not torch.equal(view(x), view(x))
        net.mc_dropout(False)
        assert torch.equal(view(x), view(x))


def test_mean_network_draws_no_random_numbers():
    """Built inside a seeded prediction (its first bootstrap draw): the seeded dropout draws that follow stay put."""
    net = UNet(n_filters=8, variance_head=True)
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    net.mean_network()
    assert torch.equal(torch.rand(4), expected)
    assert all(p.device.type == "cpu" for p in net.mean_network().parameters())  # the shared layers, not meta ones
