"""The Enhance "keepsize" network (Diaz Baso & Asensio Ramos 2018, A&A 614, A5)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EnhanceNet"]

# Keras 2 BatchNormalization defaults, used by the original Enhance code; keeping them makes imported
# Keras weights reproduce the original network exactly.
KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.01  # torch momentum = 1 - Keras momentum (0.99)


def _conv3x3(n_in: int, n_out: int) -> nn.Conv2d:
    # padding_mode="reflect" is the paper's 1-pixel ReflectionPadding2D before every 3x3 convolution.
    return nn.Conv2d(n_in, n_out, kernel_size=3, padding=1, padding_mode="reflect")


def _bn(n: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(n, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)


class _ResidualBlock(nn.Module):
    """[conv3x3, BN, ReLU, conv3x3, BN] + identity, no activation after the sum (as in the paper)."""

    def __init__(self, n_filters: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(n_filters, n_filters)
        self.bn1 = _bn(n_filters)
        self.conv2 = _conv3x3(n_filters, n_filters)
        self.bn2 = _bn(n_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(y)) + x


class EnhanceNet(nn.Module):
    """
    Deconvolution and x2 super-resolution network of Enhance ("keepsize" architecture).

    Layer for layer the network of Diaz Baso & Asensio Ramos (2018): a 3x3 convolution with ReLU,
    ``depth`` residual blocks, a 3x3 convolution with batch normalisation closed by a long skip connection,
    nearest-neighbour x2 upsampling followed by a 3x3 convolution with ReLU, and a linear 1x1 convolution.
    Every 3x3 convolution is preceded by a 1-pixel reflection padding, so the output is exactly twice the
    input size for any input size.

    Parameters
    ----------
    depth : int
        Number of residual blocks (5 in the paper, 1 in the "lite" variant).
    n_filters : int
        Number of filters of every convolution (64 in the paper, 32 in the "lite" variant).

    Notes
    -----
    The input is one channel in physical, normalised units: continuum intensity divided by the quiet-Sun
    level, or the line-of-sight field in kG. ``(N, 1, H, W)`` in gives ``(N, 1, 2H, 2W)`` out.

    Batch normalisation uses Keras' defaults (``eps=1e-3``, momentum 0.99) so that the original Keras
    weights import exactly.

    Raises
    ------
    ValueError
        ``depth`` or ``n_filters`` is not a positive integer.

    References
    ----------
    - Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
      doi:10.1051/0004-6361/201731344: the architecture (batch normalisation as in their Eq. 5).
    - He, K., Zhang, X., Ren, S., & Sun, J. 2016, "Deep Residual Learning for Image Recognition", CVPR, 770: the
      residual blocks (used without the activation after the sum, as in Enhance).

    Examples
    --------
    >>> import torch
    >>> from sunpy_nn.nn import EnhanceNet
    >>> net = EnhanceNet().eval()
    >>> net.n_parameters
    445249
    >>> net(torch.zeros(1, 1, 20, 30)).shape
    torch.Size([1, 1, 40, 60])
    >>> EnhanceNet(depth=1, n_filters=32).n_parameters  # the "lite" variant
    37537
    """

    #: Output pixels per input pixel along each axis.
    scale: int = 2

    def __init__(self, depth: int = 5, n_filters: int = 64) -> None:
        super().__init__()
        if int(depth) < 1 or int(n_filters) < 1:
            raise ValueError(f"depth and n_filters must be positive integers, got depth={depth}, n_filters={n_filters}")
        self.depth = int(depth)
        self.n_filters = int(n_filters)
        self.head = _conv3x3(1, n_filters)
        self.blocks = nn.Sequential(*[_ResidualBlock(n_filters) for _ in range(depth)])
        self.body_conv = _conv3x3(n_filters, n_filters)
        self.body_bn = _bn(n_filters)
        self.up_conv = _conv3x3(n_filters, n_filters)
        self.tail = nn.Conv2d(n_filters, 1, kernel_size=1)

    @property
    def config(self) -> dict:
        """The constructor arguments, as stored in weight files and model cards."""
        return {"architecture": "EnhanceNet", "depth": self.depth, "n_filters": self.n_filters}

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def receptive_radius(self) -> int:
        """
        Receptive-field radius in input pixels.

        Each 3x3 convolution at input resolution adds one pixel (``2 * depth + 2`` of them); the 3x3
        convolution after upsampling adds half an input pixel, rounded up to one.
        """
        return 2 * self.depth + 2 + 1

    @property
    def flops_per_pixel(self) -> int:
        """Multiply-adds per input pixel (the paper quotes ~553k at depth 5 and 64 filters)."""
        f = self.n_filters
        low = 9 * f + (2 * self.depth + 1) * 9 * f * f
        high = 4 * (9 * f * f + f)  # four output pixels per input pixel after the x2 upsampling
        return low + high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, 1, H, W)`` normalised images to ``(N, 1, 2H, 2W)`` enhanced ones."""
        x0 = torch.relu(self.head(x))
        x = self.body_bn(self.body_conv(self.blocks(x0))) + x0
        x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        x = torch.relu(self.up_conv(x))
        return self.tail(x)
