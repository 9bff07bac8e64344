"""The U-Net of the Noise2Noise denoiser (Diaz Baso, de la Cruz Rodriguez & Danilovic 2019, A&A 629, A99)."""

from __future__ import annotations

import math
import weakref

import torch
from torch import nn

__all__ = ["UNet"]

PADDINGS = ("reflect", "zeros")
# Each network's view without its variance head (`UNet.mean_network`): one per network, so that the optimised copies
# that `run_tiled` caches per network object are built once.
_MEAN_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Conv(nn.Module):
    """Convolution with explicit padding: 'same' like TensorFlow (for even kernels 0 before, 1 after) or reflect."""

    def __init__(self, n_in: int, n_out: int, kernel: int, padding: str, relu: bool = True, dropout: float = 0.0):
        super().__init__()
        total = kernel - 1
        self.pad = (total // 2, total - total // 2) * 2  # (left, right, top, bottom)
        self.mode = "reflect" if padding == "reflect" else "constant"
        self.conv = nn.Conv2d(n_in, n_out, kernel_size=kernel)
        self.relu = relu
        self.dropout = float(dropout)
        self.mc = False  # Monte-Carlo dropout at inference, independent of train()/eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = nn.functional.pad(x, self.pad, mode=self.mode)
        x = self.conv(x)
        if self.relu:
            x = torch.relu(x)
        if self.dropout > 0 and (self.training or self.mc):
            x = sparse_dropout(x, self.dropout) if x.device.type == "cpu" else nn.functional.dropout(x, self.dropout)
        return x


def sparse_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """
    Inverted dropout on CPU that draws only the dropped positions: each element is zeroed with probability ``p``
    and the others are multiplied by ``1 / (1 - p)``, as `torch.nn.functional.dropout` does.

    At the paper's rate of 0.01, drawing one random number per element made a training step of the U-Net on
    CPU 38 % longer (16 patches of 64 x 64, one thread). Here the gaps between dropped elements are drawn instead: they
    are geometric, ``floor(log(u) / log(1 - p)) + 1`` for uniform ``u``, so the drops are exactly independent
    Bernoulli(``p``) trials, from about ``p`` random numbers per element. The draws come from torch's global
    generator (`torch.manual_seed`). The memory layout of ``x`` is kept (contiguous or channels-last).

    Parameters
    ----------
    x : `torch.Tensor`
        Any shape; contiguous, or 4-D channels-last.
    p : float
        The dropout rate, in (0, 1).

    Returns
    -------
    `torch.Tensor`
        A new tensor like ``x``, differentiable in ``x``.
    """
    out = x * (1.0 / (1.0 - p))
    if out.is_contiguous():
        flat = out
    elif out.dim() == 4 and out.is_contiguous(memory_format=torch.channels_last):
        flat = out.permute(0, 2, 3, 1)  # its storage order
    else:
        return nn.functional.dropout(x, p)
    n, log_keep, start, dropped = out.numel(), math.log1p(-p), 0, []
    while start < n:  # enough gaps for the rest, with a margin of 6 sigma; rarely a second round
        left = (n - start) * p
        u = 1.0 - torch.rand(int(left + 6 * math.sqrt(left) + 16), dtype=torch.float64)  # in (0, 1]
        at = start - 1 + torch.cumsum(torch.floor(torch.log(u) / log_keep).long() + 1, 0)
        dropped.append(at[at < n])
        start = int(at[-1]) + 1
    if dropped:
        flat.view(-1).index_fill_(0, torch.cat(dropped), 0.0)
    return out


VARIANCES = ("abs", "softplus")
#: Smallest variance of the softplus parameterisation, in the units of the data (noise units in the denoiser):
#: keeps the log finite and the Gaussian loss bounded.
VARIANCE_FLOOR = 1e-4
# Lowest raw input of the softplus, and lowest log-variance of the "abs" form: far below the floor they change nothing
# (softplus(-30) = 9e-14), and they keep the backward pass free of subnormal floats. A head driven toward zero variance
# (noise below the level assumed, e.g. a line core under one level per Stokes parameter) otherwise underflows to
# subnormals, which x86 CPUs compute 10-100x slower: a temporal-mode fit ran 6x slower per epoch.
_RAW_MIN, _LOG_VAR_MIN = -30.0, -50.0


def log_variance(raw: torch.Tensor, variance: str, offset: float) -> torch.Tensor:
    """
    The variance head's log-variance from its raw output (shared by `UNet` and its optimised copy).

    Parameters
    ----------
    raw : `torch.Tensor`
        Raw output of the head's 1x1 convolution, ``(N, 1, H, W)``, any float dtype.
    variance : {"abs", "softplus"}
        Parameterisation: ``-abs(raw) + offset`` (the paper's, bounded above by ``offset``), or
        ``log(softplus(raw) + VARIANCE_FLOOR)``.
    offset : float
        Upper bound of the ``"abs"`` parameterisation (-12 in the paper); unused by ``"softplus"``.

    Returns
    -------
    `torch.Tensor`
        Float32 natural log of the variance, shape of ``raw``, in the data's units squared. ``raw`` below -30 counts
        as -30 (softplus adds 9e-14 to the floor there), and the ``"abs"`` form is at least -50: the gradients stay
        normal floats, never subnormal (for losses averaged over up to ~1e15 elements).
    """
    raw = raw.float()
    if variance == "softplus":
        return torch.log(nn.functional.softplus(raw.clamp(min=_RAW_MIN)) + VARIANCE_FLOOR)
    return (-torch.abs(raw) + offset).clamp(min=_LOG_VAR_MIN)


def _mean_of_groups(x: torch.Tensor, n: int) -> torch.Tensor:
    """The mean of the ``C / n`` groups of ``n`` channels of ``x`` (itself when ``C == n``): the residual's base."""
    if x.shape[1] == n:
        return x
    return x.unflatten(1, (-1, n)).mean(dim=1)


def _check_sides(x: torch.Tensor, align: int) -> None:
    """A U-Net (or its optimised copy) input's sides must be multiples of ``align``: else a shape error deep inside."""
    if x.shape[-2] % align or x.shape[-1] % align:
        raise ValueError(
            f"The U-Net needs images whose sides are multiples of {align} (2**depth), not {tuple(x.shape[-2:])}: pad "
            "them (sunpy_nn.nn.run_tiled and Denoiser do), or crop them"
        )


class UNet(nn.Module):
    """
    U-Net of the Noise2Noise denoiser, with an optional variance head for aleatoric uncertainty.

    Each encoder level has two 3x3 convolutions with ReLU and a 2x2 max-pool; the bottom has two 3x3
    convolutions; each decoder level upsamples (nearest, x2), applies a 2x2 convolution with ReLU (as in the
    released code), concatenates the encoder features of the same level, and applies two 3x3 convolutions. A 1x1
    convolution gives ``out_channels`` linear outputs. Filters double at each level: ``n_filters * 2**level``.

    The optional variance head is a separate small network on the input (Table B.2 of the paper): eight 3x3
    convolutions of ``n_filters`` with ReLU and a 1x1 convolution, turned into a log-variance by
    ``-abs(x) - 12``. It is returned as the last output channel.

    Parameters
    ----------
    in_channels, out_channels : int
        Input and output channels (1 and 1 in image mode; n_lambda and n_lambda in spectral mode).
    n_filters : int
        Filters of the first level (32 in the paper).
    depth : int
        Number of pooling levels (2 in the paper). Image sizes must be multiples of ``2**depth``.
    padding : {"reflect", "zeros"}
        Border handling of the convolutions. ``"zeros"`` is TensorFlow's "same" padding of the original code
        (for the 2x2 up-convolutions: nothing before, one pixel after), needed to reproduce its weights exactly;
        ``"reflect"`` avoids dark borders.
    variance_head : bool
        Add the aleatoric-uncertainty network.
    dropout : float
        Monte-Carlo dropout rate after every weight layer but the last ones (0.01 in the paper); active whenever
        the network trains, and at inference after `sunpy_nn.nn.UNet.mc_dropout`.
    log_var_offset : float
        With ``variance="abs"``, the variance head returns ``-abs(x) + log_var_offset``: -12 in the paper (data in
        units of Ic, variances below ~6e-6); 0 for data scaled to unit noise, so that the predicted error never
        exceeds the noise.
    residual : bool
        Predict the correction to the input (``x + net(x)``) instead of the image itself: identity is then the
        easy solution, so strong signals pass through instead of being smoothed toward the mean of the training
        patches. When ``in_channels`` is a multiple of ``out_channels`` (temporal mode: several scans), the base is
        the mean of the groups of ``out_channels`` input channels.
    variance : {"abs", "softplus"}
        Parameterisation of the log-variance: the paper's ``-abs(x) + log_var_offset`` (bounded above), or
        ``log(softplus(x) + VARIANCE_FLOOR)``, which can go both below and above the noise level.
    variance_sees_output : bool
        Feed the variance head the (detached) denoised image besides the input: the error depends on the local
        signal, which the denoised image shows and the noisy input hides.

    Raises
    ------
    ValueError
        ``variance`` or ``padding`` is unknown, ``depth`` or ``n_filters`` is not positive, or ``residual=True``
        with ``in_channels`` not a multiple of ``out_channels``; when called, an image whose sides are not
        multiples of `align`.

    Notes
    -----
    ``(N, in_channels, H, W)`` in gives ``(N, out_channels, H, W)`` out, plus one channel of log-variance with the
    variance head, in the units of the input (squared for the variance); ``H`` and ``W`` must be multiples of
    ``2**depth`` (`align`).

    References
    ----------
    - Ronneberger, O., Fischer, P., & Brox, T. 2015, "U-Net: Convolutional Networks for Biomedical Image
      Segmentation", MICCAI, LNCS 9351, 234: the architecture.
    - Diaz Baso, C. J., de la Cruz Rodriguez, J., & Danilovic, S. 2019, "Solar image denoising with convolutional
      neural networks", A&A, 629, A99, doi:10.1051/0004-6361/201936069: the denoiser's U-Net (Sect. 2.2,
      Table B.1), its variance network (Table B.2) and Monte-Carlo dropout (Sect. 3.1.1).
    - Gal, Y., & Ghahramani, Z. 2016, "Dropout as a Bayesian Approximation: Representing Model Uncertainty in
      Deep Learning", ICML: Monte-Carlo dropout.
    - Kendall, A., & Gal, Y. 2017, "What Uncertainties Do We Need in Bayesian Deep Learning for Computer
      Vision?", NeurIPS: the aleatoric variance output.

    Examples
    --------
    >>> import torch
    >>> from sunpy_nn.nn import UNet
    >>> net = UNet(variance_head=True).eval()
    >>> net(torch.zeros(2, 1, 52, 52)).shape  # denoised image and log-variance
    torch.Size([2, 2, 52, 52])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        n_filters: int = 32,
        depth: int = 2,
        padding: str = "reflect",
        variance_head: bool = False,
        dropout: float = 0.0,
        log_var_offset: float = -12.0,
        residual: bool = False,
        variance: str = "abs",
        variance_sees_output: bool = False,
    ) -> None:
        super().__init__()
        if variance not in VARIANCES:
            raise ValueError(f"variance must be one of {VARIANCES}, not {variance!r}")
        if residual and in_channels % out_channels:
            raise ValueError(
                f"residual=True needs in_channels a multiple of out_channels, got {in_channels}, {out_channels}"
            )
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")
        if depth < 1 or n_filters < 1:
            raise ValueError(f"depth and n_filters must be positive, got depth={depth}, n_filters={n_filters}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.n_filters, self.depth, self.padding = int(n_filters), int(depth), padding
        self.variance_head, self.dropout = bool(variance_head), float(dropout)
        self.log_var_offset = float(log_var_offset)
        self.residual, self.variance = bool(residual), variance
        self.variance_sees_output = bool(variance_sees_output)
        f = [n_filters * 2**level for level in range(depth + 1)]
        d = dropout
        self.down = nn.ModuleList()
        n_in = in_channels
        for level in range(depth):
            first = 0.0 if level == 0 else d  # no dropout after the first weight layer (the paper)
            self.down.append(
                nn.Sequential(
                    _Conv(n_in, f[level], 3, padding, dropout=first), _Conv(f[level], f[level], 3, padding, dropout=d)
                )
            )
            n_in = f[level]
        self.bottom = nn.Sequential(
            _Conv(f[depth - 1], f[depth], 3, padding, dropout=d), _Conv(f[depth], f[depth], 3, padding, dropout=d)
        )
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(_Conv(f[level + 1], f[level], 2, padding, dropout=d))
            self.merge.append(
                nn.Sequential(
                    _Conv(2 * f[level], f[level], 3, padding, dropout=d),
                    _Conv(f[level], f[level], 3, padding, dropout=d),
                )
            )
        self.out = nn.Conv2d(f[0], out_channels, kernel_size=1)
        if variance_head:
            var_in = in_channels + (out_channels if variance_sees_output else 0)
            layers = [
                _Conv(var_in if i == 0 else n_filters, n_filters, 3, padding, dropout=d if i else 0.0) for i in range(8)
            ]
            self.var_body = nn.Sequential(*layers)
            self.var_out = nn.Conv2d(n_filters, 1, kernel_size=1)

    @property
    def config(self) -> dict:
        """The constructor arguments, as stored in weight files and model cards."""
        return {
            "architecture": "UNet",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "n_filters": self.n_filters,
            "depth": self.depth,
            "padding": self.padding,
            "variance_head": self.variance_head,
            "dropout": self.dropout,
            "log_var_offset": self.log_var_offset,
            "residual": self.residual,
            "variance": self.variance,
            "variance_sees_output": self.variance_sees_output,
        }

    @property
    def align(self) -> int:
        """Image sizes (and tile offsets) must be multiples of this."""
        return 2**self.depth

    @property
    def receptive_radius(self) -> int:
        """
        A safe halo in input pixels for tiled inference.

        A 3x3 convolution at level ``l`` reaches ``2**l`` input pixels, the 2x2 up-convolution ``2**l`` more;
        pooling misaligns by up to ``2**l - 1``; the variance head needs 8.
        """
        r = 0
        for level in range(self.depth):
            r += 2 * 2**level + 2**level  # encoder convs and the pooling offset
            r += 2 * 2**level + 2 ** (level + 1)  # decoder convs and the up-convolution
        r += 2 * 2**self.depth  # bottom
        if self.variance_head and self.variance_sees_output:
            return r + 8  # the head's eight 3x3 convolutions run on the network's output
        return max(r, 8 if self.variance_head else 0)

    def conv_names(self) -> tuple[list[str], list[str]]:
        """
        Names of the convolutions in forward order, as submodule names of this network.

        Returns
        -------
        main : list of str
            The main network's convolutions, the 1x1 output (``"out"``) last.
        head : list of str
            The variance head's convolutions, its 1x1 output last; empty without a head.
        """
        main = [f"down.{i}.{j}.conv" for i in range(self.depth) for j in (0, 1)] + ["bottom.0.conv", "bottom.1.conv"]
        for i in range(self.depth):
            main += [f"up.{i}.conv", f"merge.{i}.0.conv", f"merge.{i}.1.conv"]
        head = [f"var_body.{i}.conv" for i in range(8)] + ["var_out"] if self.variance_head else []
        return [*main, "out"], head

    def mc_dropout(self, enabled: bool = True) -> UNet:
        """
        Switch Monte-Carlo dropout on or off at inference; ``eval()`` does not turn it off.

        Parameters
        ----------
        enabled : bool
            Drop activations at the rate ``dropout`` in every forward pass, in ``eval()`` mode too.

        Returns
        -------
        `UNet`
            The network itself (modified in place), for chaining.
        """
        for m in self.modules():
            if isinstance(m, _Conv):
                m.mc = enabled
        return self

    def mean_network(self) -> UNet:
        """
        This network without its variance head: the same denoised output, at the cost of the main network alone.

        For runs whose variance is not used (the denoiser's bootstrap of the noise propagated from neighbouring
        scans: by default two of its three network runs per frame; its Monte-Carlo dropout draws). The head of the
        default denoiser, eight full-resolution convolutions, is about 40 % of the network's arithmetic. The view
        shares this network's layers, so it follows what changes inside them (weights trained or loaded,
        `mc_dropout`, ``train``/``eval``), but not a layer replaced by another later; it is built once, without
        drawing random numbers, and returned on later calls (a network without a head returns itself).

        Returns
        -------
        `UNet`
            ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``: this network's first ``out_channels``.

        Examples
        --------
        >>> import torch
        >>> from sunpy_nn.nn import UNet
        >>> net = UNet(variance_head=True).eval()
        >>> x = torch.zeros(1, 1, 52, 52)
        >>> torch.equal(net.mean_network()(x), net(x)[:, :1])
        True
        """
        if not self.variance_head:
            return self
        view = _MEAN_NETWORKS.get(self)
        if view is None:
            # on the meta device: its own layers, replaced below, draw no initial weights from torch's random
            # generator, which would move the seeded draws (dropout) that follow
            with torch.device("meta"):
                view = UNet(
                    self.in_channels,
                    self.out_channels,
                    self.n_filters,
                    self.depth,
                    self.padding,
                    dropout=self.dropout,
                    residual=self.residual,
                )
            for name in ("down", "bottom", "up", "merge", "out"):  # the layers themselves, not copies
                setattr(view, name, getattr(self, name))
            _MEAN_NETWORKS[self] = view
        view.training = self.training  # its own flag only: the shared layers keep theirs
        return view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        ``(N, in_channels, H, W)`` to ``(N, out_channels [+ 1 log-variance], H, W)``.

        Raises
        ------
        ValueError
            ``H`` or ``W`` is not a multiple of `align` (``2**depth``).
        """
        _check_sides(x, self.align)
        skips = []
        y = x
        for block in self.down:
            y = block(y)
            skips.append(y)
            y = nn.functional.max_pool2d(y, 2)
        y = self.bottom(y)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            y = up(nn.functional.interpolate(y, scale_factor=2, mode="nearest"))
            y = merge(torch.cat([skip, y], dim=1))  # encoder features first, as in the released code
        y = self.out(y)
        if self.residual:
            y = y + _mean_of_groups(x, self.out_channels)
        if self.variance_head:
            v_in = torch.cat([x, y.detach()], dim=1) if self.variance_sees_output else x
            y = torch.cat([y, log_variance(self.var_out(self.var_body(v_in)), self.variance, self.log_var_offset)], 1)
        return y
