"""Test helpers: networks with known behaviour and a skip for the shared reference data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sunpy_nn.nn import EnhanceNet

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
