"""Keras HDF5 import: round trip through a file written independently with h5py, and the real denoiser files."""

import h5py
import numpy as np
import pytest
import torch

from sunpy_nn.io.keras import keras_to_state_dict, load_keras_enhance, read_keras_hdf5
from sunpy_nn.utils import WeightsError

from .helpers import random_enhance_net, shared_file


def write_keras_enhance(net, path, shuffle_names=False):
    """Write an EnhanceNet as Keras 2.2 would (layer groups, 'layer_names', (kh, kw, in, out) kernels)."""
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # Keras creation order: conv2d_1, conv2d_2, batch_normalization_1, conv2d_3, batch_normalization_2, ...
    order = [("conv2d", convs[0])]
    for b in range(net.depth):
        order += [("conv2d", convs[1 + 2 * b]), ("batch_normalization", bns[2 * b])]
        order += [("conv2d", convs[2 + 2 * b]), ("batch_normalization", bns[2 * b + 1])]
    order += [("conv2d", convs[-3]), ("batch_normalization", bns[-1]), ("conv2d", convs[-2]), ("conv2d", convs[-1])]
    names, counters = [b"input_1", b"gaussian_noise_1"], {"conv2d": 0, "batch_normalization": 0}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        for name in names:
            f.create_group(name.decode())
        for kind, mod in order:
            counters[kind] += 1
            name = f"{kind}_{counters[kind]}"
            names.append(name.encode())
            g = f.create_group(name).create_group(name)
            if kind == "conv2d":
                g["kernel:0"] = mod.weight.detach().numpy().transpose(2, 3, 1, 0)
                g["bias:0"] = mod.bias.detach().numpy()
            else:
                g["gamma:0"] = mod.weight.detach().numpy()
                g["beta:0"] = mod.bias.detach().numpy()
                g["moving_mean:0"] = mod.running_mean.numpy()
                g["moving_variance:0"] = mod.running_var.numpy()
            names.append(f"reflection_padding2d_{len(names)}".encode())  # weightless layers are listed too
            f.create_group(names[-1].decode())
        if shuffle_names:
            names = names[::-1]
        f.attrs["layer_names"] = np.array(names)


@pytest.mark.parametrize(("depth", "n_filters"), [(5, 64), (1, 32), (2, 8)])
def test_keras_round_trip_is_exact(tmp_path, depth, n_filters):
    net = random_enhance_net(depth=depth, n_filters=n_filters, seed=depth)
    path = tmp_path / "keepsize.h5"
    write_keras_enhance(net, path)
    back = load_keras_enhance(path)
    assert (back.depth, back.n_filters) == (depth, n_filters)
    ref, got = net.state_dict(), back.state_dict()
    for key in ref:
        if key.endswith("num_batches_tracked"):
            continue
        torch.testing.assert_close(got[key], ref[key], rtol=0, atol=0, msg=key)
    x = torch.randn(1, 1, 24, 31)
    with torch.inference_mode():
        torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)


def test_layer_order_comes_from_names_not_file_order(tmp_path):
    net = random_enhance_net(depth=2, n_filters=8)
    path = tmp_path / "shuffled.h5"
    write_keras_enhance(net, path, shuffle_names=True)
    x = torch.randn(1, 1, 20, 20)
    with torch.inference_mode():
        torch.testing.assert_close(load_keras_enhance(path)(x), net(x), rtol=0, atol=0)


def test_real_keras_file_is_read(tmp_path):
    layers = read_keras_hdf5(shared_file("denoise", "keras_simulation_bayes_weights.hdf5"))
    assert layers["conv2d_1"]["kernel"].shape == (3, 3, 1, 32)
    assert layers["conv2d_21"]["kernel"].shape == (1, 1, 32, 1)
    assert set(layers["conv2d_1"]) == {"kernel", "bias"}
    assert len([k for k in layers if k.startswith("conv2d_")]) == 21 and "linear_output" in layers


def test_a_denoiser_file_is_not_an_enhance_network():
    with pytest.raises(WeightsError, match="Enhance"):
        load_keras_enhance(shared_file("denoise", "keras_sst_bayes_weights.hdf5"))


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a readable HDF5"):
        read_keras_hdf5(bad)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightsError, match="layer_names"):
        read_keras_hdf5(plain)


def test_shape_mismatch_is_named(tmp_path):
    net = random_enhance_net(depth=1, n_filters=8)
    path = tmp_path / "w.h5"
    write_keras_enhance(net, path)
    layers = read_keras_hdf5(path)
    other = random_enhance_net(depth=1, n_filters=16)
    convs = sorted(k for k in layers if k.startswith("conv2d"))
    bns = sorted(k for k in layers if k.startswith("batch"))
    tconvs = [n for n, m in other.named_modules() if isinstance(m, torch.nn.Conv2d)]
    tbns = [n for n, m in other.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    mapping = dict(zip(convs, tconvs, strict=True)) | dict(zip(bns, tbns, strict=True))
    with pytest.raises(WeightsError, match=r"head\.weight has shape \(8, 1, 3, 3\) in the file"):
        keras_to_state_dict(layers, mapping, other, source="w.h5")
