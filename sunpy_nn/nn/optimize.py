"""
Inference-optimised versions of the networks: folded batch normalisation, sub-pixel upsampling, channels-last
memory layout, bfloat16 where the hardware runs it natively and the result stays accurate, and `torch.compile`.

The optimised modules compute the same function as the modules they are built from (float32: to rounding, about
1e-6 of the output range, a few 1e-6 where Enhance runs Winograd convolutions on AVX2 CPUs); they are for inference
only and share no parameters with the original.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.nn import functional as F

from sunpy_nn.nn._blocks import (
    _MATMUL_MAX_CHANNELS,
    _Conv,
    _fold_bn,
    _Fusing,
    _matmul_weight,
    _separate_where_not_finite,
    _shifted_matmul,
    _subpixel_2x2,
    _subpixel_weights,
    _to_layout,
)
from sunpy_nn.nn.device import PRECISIONS, bf16_is_native, configure_threads, resolve_device
from sunpy_nn.nn.enhance_net import EnhanceNet
from sunpy_nn.nn.prepared import (
    ACCURACY_BOUND,
    PreparedModel,
    _draws_at_random,
    _exact_float32,
    _on_device,
    relative_error,
)
from sunpy_nn.nn.unet import UNet, _check_sides, _mean_of_groups, log_variance

__all__ = [
    "ACCURACY_BOUND",
    "PRECISIONS",
    "FastEnhance",
    "FastUNet",
    "PreparedModel",
    "bf16_is_native",
    "configure_threads",
    "prepare_model",
    "relative_error",
]

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------------------------- Enhance
class FastEnhance(_Fusing, nn.Module):
    """
    Inference-only `~sunpy_nn.nn.EnhanceNet`: batch normalisation folded into the convolutions, the "nearest x2
    upsampling + 3x3 convolution" computed as four 2x2 sub-pixel convolutions on the input grid (2.25x fewer
    FLOPs in that layer), and an optional bfloat16 body.

    Parameters
    ----------
    net : `~sunpy_nn.nn.EnhanceNet`
        The network to copy (its batch-normalisation running statistics are used, as in ``eval()``).
    body_dtype : `torch.dtype`
        Dtype of the residual blocks and the closing body convolution (their input, weights and output); the
        residual stream, the first convolution and the upsampling stage stay float32 unless ``tail_dtype`` says
        otherwise. Accumulation is float32 in both cases (oneDNN and cuDNN accumulate bfloat16 products in float32).
    tail_dtype : `torch.dtype`
        Dtype of the upsampling stage (the sub-pixel convolution and the 1x1 output convolution).
    channels_last : bool
        Keep activations in channels-last (NHWC) layout, which oneDNN runs faster on the CPU.
    fuse : bool
        On the CPU, run each ReLU (and, with a float32 body, each residual addition) inside the convolution before
        it, and the first convolution's bias and ReLU inside its matrix product (oneDNN's fused operators, where
        they run and agree with the separate operations on a small probe, for each dtype and memory layout; the
        first convolution's only with channels-last output); ``False``: separately, for comparisons. An attribute
        that can be switched later. A call whose input holds a NaN or infinity runs the separate operations (the
        fused ReLU gives 0 for a NaN), so that the output is NaN wherever `~sunpy_nn.nn.EnhanceNet`'s is.
    winograd : bool or None
        With a float32 body, run the residual blocks' and the closing body convolution as NNPACK's Winograd
        convolution on the CPU (F(6x6, 3x3): about 5x fewer multiply-adds in its product stage than the direct
        convolution, plus its transforms; the body then runs in NCHW layout, whatever ``channels_last``): `None`
        (the default) where ATen runs AVX2 kernels (CPUs without AVX-512, where it is faster than oneDNN's direct
        convolution), `True` wherever NNPACK works, `False` never; see `_winograd_usable` in ``_blocks.py`` for
        when it stays off. It rounds differently: within about 1e-5 of the output's range of the direct
        convolution. A NaN or infinity in the input spreads over NNPACK's 6 x 6 output tiles instead of the 3 x 3
        neighbourhood (`~sunpy_nn.enhance_map` fills missing pixels before the network). An attribute that can be
        switched later.
    """

    scale = 2

    def __init__(
        self,
        net: EnhanceNet,
        body_dtype: torch.dtype = torch.float32,
        tail_dtype: torch.dtype = torch.float32,
        channels_last: bool = True,
        fuse: bool = True,
        winograd: bool | None = None,
    ) -> None:
        super().__init__()
        self.n_filters, self.depth = net.n_filters, net.depth
        self.receptive_radius = net.receptive_radius
        self.body_dtype, self.tail_dtype, self.channels_last = body_dtype, tail_dtype, channels_last
        wh, bh = _fold_bn(net.head, None)
        # The first convolution has one input channel, which oneDNN runs ~50x below peak: as a (9 -> f) matrix
        # product on the 9 shifted copies of the input instead, producing channels-last output directly.
        self.register_buffer("head_weight", _matmul_weight(wh))
        self.register_buffer("head_bias", bh)
        self.blocks = nn.ModuleList()
        for block in net.blocks:
            self.blocks.append(
                nn.ModuleList(
                    [
                        _Conv(*_fold_bn(block.conv1, block.bn1), 1, "reflect", body_dtype),
                        _Conv(*_fold_bn(block.conv2, block.bn2), 1, "reflect", body_dtype),
                    ]
                )
            )
        self.body = _Conv(*_fold_bn(net.body_conv, net.body_bn), 1, "reflect", body_dtype)
        w, b = _fold_bn(net.up_conv, None)
        self.up = _Conv(_subpixel_weights(w), b.repeat(4), 0, "zeros", tail_dtype)
        # The 1x1 output convolution applied to each phase separately: block-diagonal, stored as a dense 1x1
        # convolution (a plain matrix product; groups=4 ran ~10x slower in oneDNN).
        wt, bt = _fold_bn(net.tail, None)
        dense = torch.zeros(4, 4 * wt.shape[1], 1, 1)
        for phase in range(4):
            dense[phase, phase * wt.shape[1] : (phase + 1) * wt.shape[1]] = wt[0]
        self.register_buffer("tail_weight", dense.to(tail_dtype))
        self.register_buffer("tail_bias", bt.repeat(4).to(tail_dtype))
        self.fuse, self.winograd = fuse, winograd
        _to_layout(self, channels_last)

    @property
    def flops_per_pixel(self) -> int:
        """Multiply-adds per input pixel actually computed (the sub-pixel convolution needs fewer)."""
        f = self.n_filters
        return 9 * f + (2 * self.depth + 1) * 9 * f * f + 4 * (4 * f * f + f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` to ``(N, 1, 2H, 2W)``, like `~sunpy_nn.nn.EnhanceNet` (NaN where it gives NaN)."""
        with _separate_where_not_finite(x, self.fuse):
            return self._run_net(x)

    def _run_net(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        bd = self.body_dtype
        # NNPACK's Winograd convolutions (`_Conv.takes_nchw`) read NCHW: the body then runs in it, the rest not.
        x = x.float()
        winograd = bd == torch.float32 and self.body.takes_nchw(x)
        x0 = _shifted_matmul(x, self.head_weight, self.head_bias, "reflect", self.fuse, nchw=winograd)
        if not (self.channels_last or winograd):
            x0 = x0.contiguous()
        # The residual stream stays in float32; only the convolutions' inputs and outputs are in body_dtype.
        y = x0
        if bd == torch.float32:  # the ReLUs and the residual additions inside the convolutions (`_Conv.plus`)
            for conv1, conv2 in self.blocks:
                y = conv2.plus(conv1.relu(y), y, relu=False)
            y = self.body.plus(y, x0, relu=False)
            if self.channels_last:  # the upsampling stage in channels-last (NNPACK or not: the same time)
                y = y.contiguous(memory_format=torch.channels_last)
        else:
            for conv1, conv2 in self.blocks:
                y = conv2(conv1.relu(y.to(bd))).float().add_(y)
            y = self.body(y.to(bd)).float().add_(x0)
        # Reflection padding of the upsampled image equals edge replication before upsampling.
        y = F.pad(y.to(self.tail_dtype), (1, 1, 1, 1), mode="replicate")
        # The upsampling stage has 4x the channels of the body: on the CPU in strips of rows so that its activations
        # stay below glibc's mmap threshold (memory reused, not faulted in per tile); a GPU takes it whole.
        rows = max(8, (16 << 20) // max(1, 4 * self.n_filters * (w + 1) * y.element_size() * n)) if y.is_cpu else h + 1
        z = torch.empty(n, 4, h + 1, w + 1, dtype=self.tail_dtype, device=y.device)
        for r0 in range(0, h + 1, rows):
            r1 = min(r0 + rows, h + 1)
            u = self.up.relu(y[:, :, r0 : r1 + 1])  # (N, 4f, r1 - r0, W + 1): phase 2a + b at offset (a, b)
            z[:, :, r0:r1] = F.conv2d(u, self.tail_weight, self.tail_bias)
        z = z.float()
        phases = [z[:, 2 * a + b, a : a + h, b : b + w] for a in (0, 1) for b in (0, 1)]
        return F.pixel_shuffle(torch.stack(phases, dim=1), 2)


# ----------------------------------------------------------------------------------------------------------- U-Net
class FastUNet(_Fusing, nn.Module):
    """
    Inference-only `~sunpy_nn.nn.UNet`: channels-last layout, zero padding inside the convolution, in-place ReLUs,
    and an optional dtype; with ``levers`` (the default) also the three exact rewrites of issue #16:

    - the first convolutions of the network and of its variance head, which see few channels, as matrix products
      on the 9 shifted copies of their input;
    - "nearest x2 upsampling + 2x2 convolution" as one 2x2 convolution on the coarse grid with four times the output
      channels followed by a pixel shuffle, so that neither the upsampled nor the padded copy is made;
    - the convolution after each skip concatenation as two convolutions summed (its weights split between the skip
      and the upsampled features), so that the concatenated copy is not made.

    On the CPU, the ReLUs and the sum of those two convolutions run inside oneDNN's convolutions (``fuse``).

    Monte-Carlo dropout is not supported (use the original module for that); the output equals ``UNet.eval()(x)``
    to rounding in float32.

    Parameters
    ----------
    net : `~sunpy_nn.nn.UNet`
        The network to copy.
    dtype : `torch.dtype`
        Dtype of all convolutions (their input, weights and output); the output is returned as float32.
    channels_last : bool
        Keep activations in channels-last (NHWC) layout.
    levers : bool
        Use the three rewrites above (``False``: the layer-by-layer form, for comparisons).
    fuse : bool
        On the CPU, run each ReLU (and the sum of the two convolutions after a skip connection) inside the
        convolution before it, as `FastEnhance` does (and, as there, separately for input with a NaN or infinity:
        the output is NaN wherever `~sunpy_nn.nn.UNet`'s is, and at up to a few pixels around it, as with
        ``fuse=False``); ``False``: separately, for comparisons. An attribute that can be switched later.
    """

    def __init__(
        self,
        net: UNet,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = True,
        levers: bool = True,
        fuse: bool = True,
    ) -> None:
        super().__init__()
        self.dtype, self.channels_last, self.levers = dtype, channels_last, levers
        self.depth, self.n_filters = net.depth, net.n_filters
        self.align, self.receptive_radius = net.align, net.receptive_radius
        self.in_channels, self.out_channels = net.in_channels, net.out_channels
        self.variance_head, self.log_var_offset = net.variance_head, net.log_var_offset
        self.residual, self.variance = net.residual, net.variance
        self.variance_sees_output = net.variance_sees_output
        self.padding = net.padding

        def conv(c) -> _Conv:
            k = c.conv.kernel_size[0]
            return _Conv(*_fold_bn(c.conv, None), 1 if k == 3 else 0, net.padding, dtype)

        self.down = nn.ModuleList(nn.ModuleList(conv(c) for c in block) for block in net.down)
        self.bottom = nn.ModuleList(conv(c) for c in net.bottom)
        self.up = nn.ModuleList(conv(c) for c in net.up)
        self.merge = nn.ModuleList(nn.ModuleList(conv(c) for c in block) for block in net.merge)
        self.out = _Conv(*_fold_bn(net.out, None), 0, "zeros", dtype)
        if net.variance_head:
            self.var_body = nn.ModuleList(conv(c) for c in net.var_body)
            self.var_out = _Conv(*_fold_bn(net.var_out, None), 0, "zeros", dtype)
        if levers:  # rewritten from the float32 weights, before any conversion to ``dtype``
            for up, c in zip(self.up, net.up, strict=True):
                w, b = _fold_bn(c.conv, None)
                up.weight, up.bias = _subpixel_2x2(w).to(dtype), b.repeat_interleave(4).to(dtype)
            for merge, block in zip(self.merge, net.merge, strict=True):
                w = _fold_bn(block[0].conv, None)[0]
                n_skip = w.shape[1] // 2  # split at the skip's channels: the encoder features come first
                merge[0].register_buffer("skip_weight", w[:, :n_skip].contiguous().to(dtype))
                merge[0].weight = w[:, n_skip:].contiguous().to(dtype)
            # Few-channel first convolutions (network and variance head) as matrix products: their matrices
            for first in (self.down[0][0], *([self.var_body[0]] if net.variance_head else [])):
                if first.weight.shape[1] <= _MATMUL_MAX_CHANNELS and first.weight.shape[-1] == 3:
                    first.register_buffer("matmul_weight", _matmul_weight(first.weight))
        # oneDNN only: NNPACK reads NCHW, and copying the U-Net's channels-last activations to it and back around
        # each convolution cost more than Winograd saved (the changelog of sunpy_nn 0.2)
        self.fuse, self.winograd = fuse, False
        _to_layout(self, channels_last)

    @staticmethod
    def _chain(convs, y: torch.Tensor) -> torch.Tensor:
        for c in convs:
            y = c.relu(y)
        return y

    def _first(self, conv: _Conv, x: torch.Tensor) -> torch.Tensor:
        """ReLU(conv(x)) for the first convolution of a chain, as a matrix product when it sees few channels."""
        if hasattr(conv, "matmul_weight"):
            return _shifted_matmul(x, conv.matmul_weight, conv.bias, self.padding, conv.fuse)
        return conv.relu(x)

    def _up(self, conv: _Conv, y: torch.Tensor) -> torch.Tensor:
        # The 2x2 "same" convolution pads one pixel after; of the nearest-upsampled image, reflection = replication.
        mode = "replicate" if self.padding == "reflect" else "constant"
        if self.levers:
            return F.pixel_shuffle(conv.relu(F.pad(y, (0, 1, 0, 1), mode=mode)), 2)
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        return conv.relu(F.pad(y, (0, 1, 0, 1), mode=mode))

    def _merge(self, merge, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        if not self.levers:
            return self._chain(merge, torch.cat([skip, up], dim=1))
        c = merge[0]
        skip, pad = c._input(skip)  # (reflection cannot be fused into the convolution: a padded copy)
        # ReLU(conv_skip(skip) + conv_up(up)): the sum and the ReLU inside the second convolution (`_Conv.plus`)
        y = c.plus(up, F.conv2d(skip, c.skip_weight, c.bias, padding=pad), relu=True, bias=False)
        return self._chain(merge[1:], y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W)`` to ``(N, out_channels [+ 1 log-variance], H, W)``, float32 (NaN where the
        reference network gives NaN, and up to a few pixels around it)."""
        with _separate_where_not_finite(x, self.fuse):
            return self._run_net(x)

    def _run_net(self, x: torch.Tensor) -> torch.Tensor:
        _check_sides(x, self.align)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x32 = x.float()  # the residual adds the float32 input, whatever the arithmetic of the convolutions
        x = x.to(self.dtype)
        skips = []
        y = x
        for block in self.down:
            y = self._chain(block[1:], self._first(block[0], y))
            skips.append(y)
            y = F.max_pool2d(y, 2)
        y = self._chain(self.bottom, y)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            y = self._merge(merge, skip, self._up(up, y))
        y = self.out(y).float()
        if self.residual:
            y = y + _mean_of_groups(x32, self.out_channels)
        if self.variance_head:
            v_in = torch.cat([x, y.to(self.dtype)], dim=1) if self.variance_sees_output else x
            v = self._chain(self.var_body[1:], self._first(self.var_body[0], v_in))
            y = torch.cat([y, log_variance(self.var_out(v), self.variance, self.log_var_offset)], dim=1)
        return y.contiguous()


# ---------------------------------------------------------------------------------------------- generic / wrapper
class _Autocast(nn.Module):
    """Any other network under `torch.autocast` in ``dtype`` (float32 output), channels-last."""

    def __init__(self, net: nn.Module, dtype: torch.dtype, channels_last: bool) -> None:
        super().__init__()
        self.net, self.dtype, self.channels_last = net, dtype, channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.dtype == torch.float32:
            return self.net(x)
        with torch.autocast(x.device.type, dtype=self.dtype):
            return self.net(x).float()


def _build(model: nn.Module, dtype: torch.dtype, channels_last: bool) -> nn.Module:
    if isinstance(model, EnhanceNet):
        return FastEnhance(model, body_dtype=dtype, tail_dtype=dtype, channels_last=channels_last)
    if isinstance(model, UNet) and not _draws_at_random(model):  # the optimised U-Net has no Monte-Carlo dropout
        return FastUNet(model, dtype=dtype, channels_last=channels_last)
    net = copy.deepcopy(model).eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return _Autocast(net, dtype, channels_last)


def _probe(model: nn.Module, example: torch.Tensor | None) -> torch.Tensor:
    if example is not None:
        return example[:1, :, :128, :128].float()
    # No example: a smooth random field with some structure, in the networks' units (order 1).
    channels = getattr(model, "in_channels", 1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, 32, 32, generator=g)
    return 1.0 + 0.1 * F.interpolate(x, size=(128, 128), mode="bilinear", align_corners=False)


def prepare_model(
    model: nn.Module,
    *,
    device: str | torch.device | None = None,
    precision: str = "float32",
    compile: bool = False,
    channels_last: bool | None = None,
    example: torch.Tensor | None = None,
) -> PreparedModel:
    """
    Build an inference-optimised copy of a network for ``device``.

    `~sunpy_nn.nn.EnhanceNet` becomes a `FastEnhance` (folded batch normalisation, sub-pixel upsampling),
    `~sunpy_nn.nn.UNet` a `FastUNet`; any other module is copied and run under `torch.autocast`. The original is
    not modified.

    Parameters
    ----------
    model : `torch.nn.Module`
        The network (its ``eval()`` behaviour is what is copied).
    device : str or `torch.device`, optional
        Where it will run (`None`: the best available, as in `~sunpy_nn.nn.resolve_device`).
    precision : {"float32", "bfloat16", "auto"}
        ``"float32"`` computes in float32 (equal to the original to about 1e-6 of the output range; a few 1e-6
        where Enhance runs Winograd convolutions, `FastEnhance`'s ``winograd``).
        ``"bfloat16"`` computes the convolutions in bfloat16 with float32 accumulation and a float32 residual
        stream: faster on hardware with native bfloat16, but about 1 % of the output range off, which fails
        `ACCURACY_BOUND`. ``"auto"`` uses bfloat16 only if the device runs it natively (`bf16_is_native`) *and*
        its error on ``example`` (or a synthetic probe) is within half of `ACCURACY_BOUND`; float32 otherwise.
    compile : bool
        Also run it through `torch.compile` (inductor; needs a C++ compiler on the CPU). The first call compiles
        (tens of seconds), so it pays off for many tiles of one size. Any failure falls back to eager mode with
        a logged warning. Input that holds a NaN or infinity runs eagerly (the output keeps NaN as the
        reference network does; compiled kernels need not).
    channels_last : bool, optional
        Channels-last (NHWC) activations; default: on the CPU, where oneDNN runs them faster.
    example : `torch.Tensor`, optional
        A typical input ``(N, C, H, W)`` for the accuracy check of ``precision="auto"`` (a 128 x 128 crop is used).

    Returns
    -------
    `PreparedModel`
        ``precision`` says what was chosen, ``max_error`` what it measured.

    Raises
    ------
    ValueError
        If ``precision`` is not one of `PRECISIONS`.
    RuntimeError
        ``device="cuda"`` on a machine where torch sees no GPU (`~sunpy_nn.nn.resolve_device`).

    Examples
    --------
    >>> import torch
    >>> from sunpy_nn.nn import EnhanceNet, prepare_model
    >>> net = EnhanceNet(depth=1, n_filters=8).eval()
    >>> fast = prepare_model(net, device="cpu", precision="float32")
    >>> x = torch.rand(1, 1, 24, 24)
    >>> bool((fast(x) - net(x)).abs().max() < 1e-5)
    True
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    dev = resolve_device(device)
    if channels_last is None:
        channels_last = dev.type == "cpu"
    model = model.eval()
    chosen, max_error = precision, None
    if precision == "bfloat16" and not bf16_is_native(dev):
        log.warning("precision='bfloat16' on %s, which has no native bfloat16: expect it to be slower", dev)
    if precision == "auto":
        chosen = "float32"
        if bf16_is_native(dev):
            candidate = _build(model, torch.bfloat16, channels_last).to(dev)
            with torch.inference_mode(), _exact_float32(dev):  # the reference is float32, not TF32
                x = _probe(model, example).to(dev)
                ref = _on_device(model, dev)(x)  # the caller's network stays where it is
                max_error = relative_error(candidate(x), ref)
            if max_error <= ACCURACY_BOUND / 2:
                chosen = "bfloat16"
            log.info(
                "precision='auto': bfloat16 is %.2g of the output range off float32 (bound %.2g): using %s",
                max_error,
                ACCURACY_BOUND,
                chosen,
            )
        else:
            log.info("precision='auto': %s has no native bfloat16, using float32", dev)
    dtype = torch.bfloat16 if chosen == "bfloat16" else torch.float32
    prepared = PreparedModel(_build(model, dtype, channels_last).to(dev), model, chosen, max_error)
    if compile:
        prepared.enable_compile()
    return prepared.eval()
