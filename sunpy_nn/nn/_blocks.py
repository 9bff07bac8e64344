"""
The building blocks of the optimised networks (`sunpy_nn.nn.optimize`): folded batch normalisation, sub-pixel
kernels, fixed convolutions (with oneDNN's fused ReLU and addition on the CPU, or NNPACK's Winograd convolution on
AVX2 CPUs), and few-channel convolutions as matrix products.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading

import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------------- helpers
def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Weights and bias of ``bn(conv(x))`` as one convolution (eval-mode batch normalisation), on the CPU: the optimised
    copies are built there from a network on any device, then moved.
    """
    w = conv.weight.detach().cpu().double()
    b = conv.bias.detach().cpu().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is not None:
        stats = (bn.weight, bn.bias, bn.running_mean, bn.running_var)
        bn_w, bn_b, mean, var = (t.detach().cpu().double() for t in stats)
        s = bn_w / torch.sqrt(var + bn.eps)
        w = w * s[:, None, None, None]
        b = (b - mean) * s + bn_b
    return w.float(), b.float()


def _subpixel_weights(w: torch.Tensor) -> torch.Tensor:
    """
    Turn the 3x3 kernel of "nearest x2 upsampling, then 3x3 convolution" into four 2x2 kernels on the input grid.

    Output row ``2i + a`` sees upsampled rows ``2i + a - 1 .. 2i + a + 1``, i.e. input rows ``i - 1, i`` (a = 0,
    kernel rows ``[w0, w1 + w2]``) or ``i, i + 1`` (a = 1, ``[w0 + w1, w2]``); the same along columns. Returns
    ``(4 * C_out, C_in, 2, 2)`` with phase ``2a + b`` in the channel block ``phase * C_out``: 16 instead of 36
    multiply-adds per output channel and input pixel.
    """
    rows = (((0,), (1, 2)), ((0, 1), (2,)))
    blocks = []
    for a in (0, 1):
        for b in (0, 1):
            k = torch.zeros(w.shape[0], w.shape[1], 2, 2, dtype=w.dtype)
            for ky, taps_y in enumerate(rows[a]):
                for kx, taps_x in enumerate(rows[b]):
                    k[:, :, ky, kx] = w[:, :, list(taps_y)][:, :, :, list(taps_x)].sum(dim=(2, 3))
            blocks.append(k)
    return torch.cat(blocks)


def _subpixel_2x2(w: torch.Tensor) -> torch.Tensor:
    """
    Turn the 2x2 kernel of "nearest x2 upsampling, pad one pixel after, then 2x2 convolution" into one 2x2 kernel on
    the coarse grid with ``4 C_out`` output channels, ordered as `torch.nn.functional.pixel_shuffle` reads them
    (channel ``4 c + 2 a + b`` is output phase ``(a, b)`` of channel ``c``): upsampled row ``2 i + a + k`` is
    coarse row ``i + (a + k) // 2``.
    """
    k = torch.zeros(w.shape[0], 2, 2, w.shape[1], 2, 2, dtype=w.dtype)
    for a in (0, 1):
        for b in (0, 1):
            for ky in (0, 1):
                for kx in (0, 1):
                    k[:, a, b, :, (a + ky) // 2, (b + kx) // 2] += w[:, :, ky, kx]
    return k.reshape(4 * w.shape[0], w.shape[1], 2, 2)


#: Whether oneDNN's fused operators compute what the separate operations do, by `_fusion_key` (probed once; turned
#: off for a key when a call raises).
_FUSION_WORKS: dict[tuple, bool] = {}


def _compiling() -> bool:
    """Whether torch's compiler is tracing (it fuses on its own; ``torch.compiler.is_compiling`` is torch >= 2.3)."""
    probe = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if probe is None:  # torch 2.2
        from torch._dynamo import is_compiling as probe
    return bool(probe())


#: Set (`_separate_where_not_finite`) while a network runs on input with a NaN or infinity: no fused operator then.
_SEPARATE = contextvars.ContextVar("sunpy_nn_separate_operations", default=False)


@contextlib.contextmanager
def _separate_where_not_finite(x: torch.Tensor, fuse: bool):
    """
    Run the separate operations instead of the fused ones (`_fusion_key`) inside this block if ``x`` holds a NaN or
    an infinity: oneDNN's fused ReLU gives 0 for a NaN (``max(x, 0)``) where torch's ReLU gives NaN, so a missing
    pixel would come back as a number. One pass over ``x``; per context (thread), so concurrent calls do not mix.
    Not looked at where nothing would fuse anyway (``fuse`` off, not on the CPU, or torch's compiler tracing, which
    cannot guard on the data): no pass, and no wait for a GPU.
    """
    fusing = fuse and x.is_cpu and not _compiling()
    token = _SEPARATE.set(True) if fusing and not bool(torch.isfinite(x).all()) else None
    try:
        yield
    finally:
        if token is not None:
            _SEPARATE.reset(token)


def _fusion_key(kind: str, x: torch.Tensor, *others: torch.Tensor) -> tuple | None:
    """
    What `_fusion_works` is probed for, for a fused operator of ``kind`` (``"conv"`` or ``"linear"``) on ``x``: its
    dtype and, for a convolution, its memory format (oneDNN takes other kernels for each). `None` where none may run:
    not on the CPU, oneDNN switched off (``torch.backends.mkldnn``), a gradient wanted (the fused operators have
    none), other tensors of another dtype or device, torch's compiler tracing (it fuses on its own), or a network
    input with a NaN or infinity (`_separate_where_not_finite`).
    """
    if _compiling():  # first: the compiler cannot trace the checks below
        return None
    if _SEPARATE.get():
        return None
    if not x.is_cpu or not (torch.backends.mkldnn.enabled and torch.backends.mkldnn.is_available()):
        return None
    if any(t.dtype != x.dtype or t.device != x.device for t in others):
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, *others)):
        return None
    return kind, x.dtype, kind == "conv" and x.is_contiguous(memory_format=torch.channels_last)


def _fusion_works(key: tuple) -> bool:
    """
    Whether oneDNN's fused operators for ``key`` (`_fusion_key`) run here and give what the separate operations
    give, on a small probe: ``torch.ops.mkldnn._convolution_pointwise`` (convolution and ReLU) and its ``binary``
    form (convolution, addition and ReLU), or ``torch.ops.mkldnn._linear_pointwise`` (matrix product, bias and ReLU);
    the operators that torch's inductor compiler uses. They are private operators of torch: a build without them, or
    one where they fail or differ, keeps the separate operations.
    """
    if key not in _FUSION_WORKS:
        kind, dtype, channels_last = key
        works = False
        if all(hasattr(torch.ops.mkldnn, op) for op in ("_convolution_pointwise", "_linear_pointwise")):
            g = torch.Generator().manual_seed(0)
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            x, other = (torch.randn(1, 8, 12, 12, generator=g).to(dtype, memory_format=fmt) for _ in range(2))
            w = torch.randn(8, 8, 3, 3, generator=g).to(dtype, memory_format=fmt)
            b = torch.randn(8, generator=g).to(dtype)
            tol = 1e-5 if dtype == torch.float32 else 1e-2
            try:
                with torch.no_grad():
                    if kind == "conv":
                        pairs = [
                            ((F.conv2d(x, w, b, padding=1) + other).relu(), _fused(x, w, b, 1, other, True)),
                            (F.conv2d(x, w, b, padding=1) + other, _fused(x, w, b, 1, other, False)),
                            (F.conv2d(x, w, b, padding=1).relu(), _fused(x, w, b, 1)),
                        ]
                    else:
                        a, m = x.reshape(-1, 8), w[:, :, 0, 0].t()  # (a transposed view, as `_shifted_matmul` has)
                        pairs = [(torch.addmm(b, a, m.t()).relu(), _linear(a, m, b))]
                works = all(
                    torch.allclose(got.float(), ref.float(), rtol=tol, atol=tol * float(ref.float().abs().max()))
                    for ref, got in pairs
                )
            except Exception as exc:
                log.debug("fused operators unavailable for %s: %s", key, exc)
        _FUSION_WORKS[key] = works
    return _FUSION_WORKS[key]


def _fused_or_none(key: tuple | None, call):
    """``call()`` where the fused operators work for ``key`` (`_fusion_works`), else `None`; a call that raises (a
    shape the probe did not see) turns them off for ``key`` and returns `None`: the caller runs the separate
    operations."""
    if key is None or not _fusion_works(key):
        return None
    try:
        return call()
    except RuntimeError as exc:
        log.debug("fused operator failed for %s, running the separate operations from now on: %s", key, exc)
        _FUSION_WORKS[key] = False
        return None


def _fused(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, pad: int, other: torch.Tensor | None = None, relu=True
) -> torch.Tensor:
    """ReLU(conv(x)), or ``conv(x) + other`` with the ReLU if ``relu``, in one oneDNN call (no pass over the output
    for the ReLU or the addition)."""
    args = ([pad, pad], [1, 1], [1, 1], 1)
    if other is None:
        return torch.ops.mkldnn._convolution_pointwise(x, w, b, *args, "relu", [], "")
    unary = "relu" if relu else None
    return torch.ops.mkldnn._convolution_pointwise.binary(x, other, w, b, *args, "add", 1.0, unary, [], "")


def _linear(rows: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """ReLU(rows @ weight_t.T + bias) in one oneDNN call (``weight_t``: ``(C_out, K)``, as `torch.nn.Linear`)."""
    return torch.ops.mkldnn._linear_pointwise(rows, weight_t, bias, "relu", [], "")


# ---------------------------------------------------------------------------------------------------- Winograd
#: Smallest channel count (in and out) of a 3x3 convolution that NNPACK runs: its Winograd transforms cost passes
#: over the data that few channels do not repay (``python benchmarks/winograd.py --isa avx2``, one thread of a Xeon
#: with its kernels capped to AVX2, NNPACK's time over oneDNN's: 32 channels 0.96-1.00, 64 channels 0.66-0.75 at
#: 48-400 px, 128 channels 0.50 at 200 px).
_WINOGRAD_MIN_CHANNELS = 64
#: Smallest image side that NNPACK runs (64 channels, the same run: 1.12x oneDNN's time at 32 px, 0.72x at 48 px).
_WINOGRAD_MIN_SIDE = 48
#: NNPACK's state: whether it runs and agrees with the float64 convolution here (probed once; off after a failing
#: call), torch's thread count at our first call (NNPACK's thread pool is made then, with that count), and whether a
#: later change of that count was logged.
_WINOGRAD: dict[str, bool | int] = {}


@functools.cache  # ATen picks its kernels once, when it starts
def _aten_avx2() -> bool:
    """Whether ATen dispatches AVX2 kernels: an x86-64 CPU without AVX-512, or one capped by ``ATEN_CPU_CAPABILITY``."""
    with contextlib.suppress(AttributeError, RuntimeError):
        return torch.backends.cpu.get_cpu_capability() == "AVX2"
    return False


def _winograd_usable(x: torch.Tensor, forced: bool) -> bool:
    """
    Whether a float32 3x3 convolution of ``x`` may run as NNPACK's Winograd convolution
    (``torch._nnpack_spatial_convolution``): on the CPU, a non-empty batch of images of at least `_WINOGRAD_MIN_SIDE`
    pixels a side, no gradient wanted, not traced by torch's compiler, NNPACK built, switched on
    (``torch.backends.nnpack``) and agreeing with the float64 convolution (`_winograd_works`), and unless ``forced``,
    where ATen runs AVX2 kernels (`_aten_avx2`: with AVX-512 oneDNN's direct convolution was as fast). Only from the
    main thread, at the thread count of NNPACK's first call: its one thread pool is made then and serves concurrent
    callers one at a time (a dask or batch worker thread keeps oneDNN).
    """
    if not x.is_cpu or x.dtype != torch.float32 or x.shape[0] == 0 or x.requires_grad or _compiling():
        return False
    if min(x.shape[2:]) < _WINOGRAD_MIN_SIDE:
        return False
    if threading.current_thread() is not threading.main_thread() or not (forced or _aten_avx2()):
        return False
    if not getattr(torch._C, "_get_nnpack_enabled", lambda: True)():
        return False
    if not _winograd_works():
        return False
    if _WINOGRAD.get("threads") != torch.get_num_threads():
        if not _WINOGRAD.get("told"):  # once: the thread count changed after NNPACK's pool was made
            _WINOGRAD["told"] = True
            log.debug(
                "NNPACK's thread pool has %s threads, torch now %s: oneDNN's direct convolution from now on",
                _WINOGRAD.get("threads"),
                torch.get_num_threads(),
            )
        return False
    return True


def _winograd_works() -> bool:
    """Whether NNPACK runs here and its Winograd convolution agrees with the float64 convolution within 1e-4 of the
    output's range on a small probe (its transforms round more than the direct convolution: about 5e-6 measured);
    probed once, on the first call."""
    if "works" not in _WINOGRAD:
        _WINOGRAD["threads"] = torch.get_num_threads()
        works = False
        try:
            if torch.backends.nnpack.is_available():  # also initialises NNPACK: its convolution fails before
                g = torch.Generator().manual_seed(0)
                x = torch.randn(1, _WINOGRAD_MIN_CHANNELS, 20, 20, generator=g)
                w = torch.randn(_WINOGRAD_MIN_CHANNELS, _WINOGRAD_MIN_CHANNELS, 3, 3, generator=g) / 24
                b = torch.randn(_WINOGRAD_MIN_CHANNELS, generator=g)
                with torch.no_grad():
                    ref = F.conv2d(x.double(), w.double(), b.double(), padding=1)
                    got = _winograd(x, w, b, 1).double()
                works = bool((got - ref).abs().max() <= 1e-4 * (ref.max() - ref.min()))
        except (RuntimeError, AttributeError) as exc:
            log.debug("NNPACK unavailable: %s", exc)
        _WINOGRAD["works"] = works
    return bool(_WINOGRAD["works"])


def _winograd(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, pad: int) -> torch.Tensor:
    """
    The convolution of an NCHW float32 ``x`` by NNPACK (Winograd's algorithm for 3x3 kernels on AVX2), one image at
    a time: torch gives a batch of more to NNPACK's training-oriented routine, which took 0.95-1.31x oneDNN's time
    where one image took 0.65-0.75x (64 channels, 48-256 px, the run of `_WINOGRAD_MIN_CHANNELS`).
    """
    if x.shape[0] == 1:
        return torch._nnpack_spatial_convolution(x, w, b, [pad, pad], [1, 1])
    return torch.cat([torch._nnpack_spatial_convolution(x[i : i + 1], w, b, [pad, pad], [1, 1]) for i in range(len(x))])


class _Fusing:
    """The ``fuse`` and ``winograd`` switches of an optimised network: set on every `_Conv` it holds."""

    _fuse = True
    _winograd_switch: bool | None = None

    @property
    def fuse(self) -> bool:
        """Whether ReLUs and additions run inside oneDNN's convolutions on the CPU (`_fusion_works`)."""
        return self._fuse

    @fuse.setter
    def fuse(self, value: bool) -> None:
        self._fuse = bool(value)
        self._set_on_convs("fuse", self._fuse)

    def _set_on_convs(self, name: str, value: bool | None) -> None:
        for m in self.modules():
            if isinstance(m, _Conv):
                setattr(m, name, value)

    @property
    def winograd(self) -> bool | None:
        """
        Whether float32 3x3 convolutions of 64 channels or more run as NNPACK's Winograd convolution on the CPU
        (fewer multiply-adds; within about 1e-5 of the output's range of oneDNN's): `None` where ATen runs AVX2
        kernels, `True` on any CPU where NNPACK works, `False` never (`_winograd_usable`).
        """
        return self._winograd_switch

    @winograd.setter
    def winograd(self, value: bool | None) -> None:
        self._winograd_switch = None if value is None else bool(value)
        self._set_on_convs("winograd", self._winograd_switch)


class _Conv(nn.Module):
    """
    A fixed convolution in a given dtype; 3x3 with reflection or zero padding, or unpadded. With ``winograd`` (see
    `_winograd_usable`) a float32 3x3 convolution of NCHW input runs through NNPACK. With ``fuse``, `relu`
    and `plus` run as one oneDNN call on the CPU where `_fusion_works` (the ReLU and the addition then cost no pass
    over the output: 4-5 % of a 32-channel 3x3 convolution and its ReLU at 800 px, two runs on one thread of a Xeon
    with the kernels capped to AVX2; exact in float32).
    """

    fuse = True  # switched by the network that holds it (`_Fusing`)
    winograd: bool | None = False  # likewise: NNPACK only where a network asks (`FastEnhance`)

    def __init__(self, w: torch.Tensor, b: torch.Tensor, pad: int, mode: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("weight", w.to(dtype))
        self.register_buffer("bias", b.to(dtype))
        self.pad, self.mode = pad, mode

    def _input(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        if self.pad and self.mode == "reflect":
            # Zero padding is fused into the convolution; reflection needs the copy (recomputing only the border
            # from thin reflected strips was tried: the strip operations cost more than the copy in NHWC).
            return F.pad(x, (self.pad,) * 4, mode="reflect"), 0
        return x, self.pad

    def _key(self, x: torch.Tensor, *others: torch.Tensor) -> tuple | None:
        return _fusion_key("conv", x, *others) if self.fuse else None

    def takes_nchw(self, x: torch.Tensor) -> bool:
        """Whether this convolution would run through NNPACK (`_winograd_usable`) on ``x`` in NCHW layout: the
        network then hands it NCHW activations (NNPACK reads no other)."""
        w = self.weight
        if self.winograd is False or w.dtype != torch.float32 or tuple(w.shape[2:]) != (3, 3):
            return False
        return min(w.shape[:2]) >= _WINOGRAD_MIN_CHANNELS and _winograd_usable(x, self.winograd is True)

    def _nnpack(self, x: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor | None:
        """The convolution of the unpadded NCHW ``x`` through NNPACK where it runs (`takes_nchw`), else `None`.
        Channels-last input keeps oneDNN: copying it to NCHW and back cost more than Winograd saved (the U-Net at
        800 px took 1.06-1.08x longer that way; the copy to NCHW alone 82 ms of 64 channels at 400 px)."""
        if not (x.is_contiguous() and self.takes_nchw(x)):
            return None
        try:
            y = _winograd(x, self.weight, b, self.pad)
        except RuntimeError as exc:
            log.debug("NNPACK failed, oneDNN from now on: %s", exc)
            _WINOGRAD["works"] = False
            return None
        if self.pad and self.mode == "reflect":
            # NNPACK pads with zeros: the one-pixel ring is recomputed from reflected strips (cheaper than a padded
            # copy of the input in NCHW).
            _reflect_ring(y, x, self.weight, b)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self.bias)

    def relu(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU(conv(x))."""
        return self._conv(x, self.bias, relu=True)

    def plus(self, x: torch.Tensor, other: torch.Tensor, relu: bool, bias: bool = True) -> torch.Tensor:
        """``conv(x) + other`` (without this convolution's bias unless ``bias``), then ReLU if ``relu``."""
        return self._conv(x, self.bias if bias else None, other, relu)

    def _conv(
        self, x: torch.Tensor, b: torch.Tensor | None, other: torch.Tensor | None = None, relu: bool = False
    ) -> torch.Tensor:
        """``conv(x)``, plus ``other``, then ReLU: through NNPACK where it runs (`_nnpack`), else in one oneDNN call
        where there is a ReLU or an addition to fuse and the fused operator works, else as separate operations."""
        y = self._nnpack(x, b)
        if y is None:
            x, pad = self._input(x)
            if relu or other is not None:
                key = self._key(x) if other is None else self._key(x, other)
                fused = _fused_or_none(key, lambda: _fused(x, self.weight, b, pad, other, relu))
                if fused is not None:
                    return fused
            y = F.conv2d(x, self.weight, b, padding=pad)
        if other is not None:
            y = y.add_(other)
        return torch.relu_(y) if relu else y


def _reflect_ring(y: torch.Tensor, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> None:
    """Overwrite the outer ring of ``y``, a zero-padded 3x3 convolution of NCHW ``x``, with that of the
    reflection-padded one: two strips of three rows and two of three columns, reflected, convolved."""
    n, c, h, wd = x.shape
    rows = F.pad(x[:, :, [1, 0, 1, h - 2, h - 1, h - 2]], (1, 1, 0, 0), mode="reflect")
    rows = rows.view(n, c, 2, 3, wd + 2).transpose(1, 2).reshape(2 * n, c, 3, wd + 2)
    r = F.conv2d(rows, w, b).view(n, 2, -1, wd)
    y[:, :, 0], y[:, :, -1] = r[:, 0], r[:, 1]
    cols = F.pad(x[:, :, :, [1, 0, 1, wd - 2, wd - 1, wd - 2]], (0, 0, 1, 1), mode="reflect")
    cols = cols.view(n, c, h + 2, 2, 3).permute(0, 3, 1, 2, 4).reshape(2 * n, c, h + 2, 3)
    k = F.conv2d(cols, w, b).view(n, 2, -1, h)
    y[:, :, :, 0], y[:, :, :, -1] = k[:, 0], k[:, 1]


#: Largest input channel count whose 3x3 convolution runs as a matrix product on shifted copies (`_shifted_matmul`).
_MATMUL_MAX_CHANNELS = 8


def _matmul_weight(w: torch.Tensor) -> torch.Tensor:
    """A ``(C_out, C_in, 3, 3)`` kernel as the ``(9 C_in, C_out)`` matrix that `_shifted_matmul` multiplies by."""
    return w.permute(2, 3, 1, 0).reshape(9 * w.shape[1], w.shape[0]).contiguous()


def _shifted_matmul(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, mode: str, fuse: bool, nchw: bool = False
) -> torch.Tensor:
    """
    ReLU(3x3 "same" convolution) of a few-channel ``x`` as (9 shifted copies) @ (9 C_in x C_out).

    oneDNN runs convolutions with 1-8 input channels far below peak (a 1 -> 32 convolution at 800 px took as long
    as a 32 -> 32 one); the matrix product writes channels-last output directly, or with ``nchw`` contiguous NCHW
    output (the transposed product: a copy from channels-last to NCHW took longer than a 64-channel convolution).
    """
    n, c, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect" if mode == "reflect" else "constant").permute(0, 2, 3, 1)
    shifts = torch.cat([xp[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], dim=-1)
    if nchw:
        rows = shifts.reshape(n, h * w, 9 * c).transpose(1, 2)
        y = torch.baddbmm(bias.view(1, -1, 1), weight.t().expand(n, -1, -1), rows)
        return torch.relu_(y).view(n, weight.shape[1], h, w)
    rows = shifts.reshape(-1, 9 * c)
    # bias and ReLU inside oneDNN's product: addmm first copies the bias into every row, then a ReLU pass
    y = _fused_or_none(_fusion_key("linear", rows) if fuse else None, lambda: _linear(rows, weight.t(), bias))
    if y is None:
        y = torch.relu_(torch.addmm(bias, rows, weight))
    # NHWC memory seen as NCHW: channels-last (the channel count given: -1 is ambiguous for an empty batch)
    return y.reshape(n, h, w, weight.shape[1]).permute(0, 3, 1, 2)


def _to_layout(module: nn.Module, channels_last: bool) -> nn.Module:
    if channels_last:
        for buf in module.buffers():
            if buf.ndim == 4:
                buf.data = buf.data.contiguous(memory_format=torch.channels_last)
    return module
