"""
The prepared network that `sunpy_nn.nn.prepare_model` returns: the optimised module, optionally compiled, whose
compiled output is checked against eager mode; and the accuracy measure of the optimised modes.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["ACCURACY_BOUND", "PreparedModel", "relative_error"]

log = logging.getLogger(__name__)

#: Largest difference from float32 eager inference, as a fraction of the reference output's range, that an
#: optimised mode may make (the accuracy guard of ``precision="auto"`` and of the tests).
ACCURACY_BOUND = 1e-3


def _draws_at_random(module: nn.Module) -> bool:
    """Whether the forward pass drops activations at random: Monte-Carlo dropout, or dropout in training mode."""
    for m in module.modules():
        rate = getattr(m, "dropout", 0.0)
        if getattr(m, "mc", False) and isinstance(rate, (int, float)) and rate > 0:
            return True
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0:
            return True
    return False


def _on_device(model: nn.Module, dev: torch.device) -> nn.Module:
    """
    ``model`` itself where all its tensors are on ``dev``, else a copy there: a caller's network is never moved
    (a CPU network moved to the GPU in place fails at the caller's next CPU call).
    """
    return model if _is_on(model, dev) else copy.deepcopy(model).to(dev)


def _indexed(dev: torch.device) -> torch.device:
    """``dev`` with its index: ``"cuda"`` is the current CUDA device (so that it and ``"cuda:0"`` are one device)."""
    if dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return dev


def _is_on(model: nn.Module, dev: torch.device) -> bool:
    """Whether all of ``model``'s tensors are on ``dev`` (``"cuda"``: the current CUDA device)."""
    dev = _indexed(dev)
    tensors = (*model.parameters(), *model.buffers())
    return all(t.device.type == dev.type and (dev.index is None or t.device.index == dev.index) for t in tensors)


# Process-wide TF32 switches, shared by the threads of a dask scheduler: off from the first entry to the last exit.
_TF32_LOCK = threading.Lock()
_TF32_STATE: dict = {"depth": 0, "saved": None}


def _tf32_off() -> tuple:
    """Switch TF32 off for float32 convolutions and matrix products; returns what `_tf32_restore` puts back."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    try:  # matrix products by their precision, which "medium" (not a yes/no flag) needs to come back as it was
        saved = ("allow_tf32", cudnn.allow_tf32, torch.get_float32_matmul_precision())
    except RuntimeError:  # the caller used torch's newer fp32_precision settings, which forbid reading the old ones
        saved = ("fp32_precision", cudnn.conv.fp32_precision, matmul.fp32_precision)
        cudnn.conv.fp32_precision = matmul.fp32_precision = "ieee"
        return saved
    cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return saved


def _tf32_allowed() -> tuple[bool, bool]:
    """Whether float32 convolutions and matrix products may use TF32 now, read from torch's older flags or, where a
    caller set the newer ``fp32_precision`` settings unevenly (torch then refuses to read the older ones), those."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    try:
        return bool(cudnn.allow_tf32), bool(matmul.allow_tf32)
    except RuntimeError:
        pass
    # "none" inherits from the level above (cuDNN's, then torch's); all "none": torch's defaults (convolutions TF32)
    overall = torch.backends.fp32_precision
    conv = next((v for v in (cudnn.conv.fp32_precision, cudnn.fp32_precision, overall) if v != "none"), "tf32")
    mm = next((v for v in (matmul.fp32_precision, overall) if v != "none"), "ieee")
    return conv == "tf32", mm == "tf32"


def _tf32_restore(saved: tuple) -> None:
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if saved[0] == "allow_tf32":
        cudnn.allow_tf32 = saved[1]
        torch.set_float32_matmul_precision(saved[2])
    else:
        cudnn.conv.fp32_precision, matmul.fp32_precision = saved[1:]


@contextlib.contextmanager
def _exact_float32(dev: torch.device) -> Iterator[None]:
    """
    float32 convolutions and matrix products in float32 on a CUDA device, not TF32 (cuDNN's default rounds their
    inputs to 10 mantissa bits: 2e-3 of the range off on real HMI, above `ACCURACY_BOUND`); a no-op elsewhere.
    The settings are process-wide: threads inside share one switch, and the caller's come back when the last leaves.
    """
    if dev.type != "cuda":
        yield
        return
    with _TF32_LOCK:
        if _TF32_STATE["depth"] == 0:
            _TF32_STATE["saved"] = _tf32_off()
        _TF32_STATE["depth"] += 1
    try:
        yield
    finally:
        with _TF32_LOCK:
            _TF32_STATE["depth"] -= 1
            if _TF32_STATE["depth"] == 0:
                _tf32_restore(_TF32_STATE["saved"])


#: How far compiled bfloat16 may be from eager bfloat16 (of the range): rounding differs, a miscompilation is caught.
_COMPILED_BF16_BOUND = 0.05


class PreparedModel(nn.Module):
    """
    The network returned by `prepare_model`: an optimised module, optionally compiled.

    The attributes the tiled runner needs (``receptive_radius``, ``scale``, ``align``, ``n_filters``, ``depth``,
    ``out_channels``) are copied from the original where it has them. Use `prepare_model` rather than building one.

    Parameters
    ----------
    module : `torch.nn.Module`
        The optimised network that computes the forward pass (kept as ``module``).
    original : `torch.nn.Module`
        The network it was built from; only its attributes above are read.
    precision : str
        The precision actually used, ``"float32"`` or ``"bfloat16"`` (what ``"auto"`` resolved to); kept as
        ``precision``.
    max_error : float or None
        The error of the chosen precision against float32 eager inference on the probe, as a fraction of the
        reference output's range (only measured by ``precision="auto"`` on hardware with native bfloat16); kept as
        ``max_error``.

    Attributes
    ----------
    compiled : bool
        Whether the forward pass runs through `torch.compile` (false until `enable_compile`, and after a fallback:
        when compilation fails, or when the first compiled output of any input shape is farther from the eager
        network's than the accuracy guard, ``ACCURACY_BOUND`` of the range in float32; always false with
        Monte-Carlo dropout, whose random draws cannot be checked).
    """

    def __init__(self, module: nn.Module, original: nn.Module, precision: str, max_error: float | None) -> None:
        super().__init__()
        self.module = module
        self.precision, self.max_error = precision, max_error
        self.compiled, self._compiled_forward = False, None
        self._verified: set = set()  # input signatures whose compiled output matched the eager module
        for name in ("receptive_radius", "scale", "align", "n_filters", "depth", "out_channels"):
            if hasattr(original, name):
                setattr(self, name, getattr(original, name))

    def enable_compile(self) -> None:
        """
        Run the forward pass through `torch.compile`; failures fall back to eager mode with a logged warning.

        A network that draws random numbers in its forward pass (Monte-Carlo dropout, `sunpy_nn.nn.UNet.mc_dropout`)
        stays eager, with a logged note: its compiled output cannot be checked against eager mode, whose draws differ.
        """
        if _draws_at_random(self.module):
            log.info("torch.compile is not used with Monte-Carlo dropout (its draws cannot be checked): running eager")
            self._compiled_forward, self.compiled = None, False
            return
        try:
            self._compiled_forward, self._verified = torch.compile(self.module, dynamic=False), set()
            self.compiled = True
        except Exception as err:  # any failure of the optional compiler means eager mode
            log.warning("torch.compile is not available (%s: %s); running eagerly", type(err).__name__, err)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _exact_float32(x.device):
            return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._compiled_forward is not None and not bool(torch.isfinite(x).all()):
            # Input with a NaN or inf runs eagerly: the optimised copy keeps NaN NaN (its separate operations), which
            # compiled kernels need not, and a NaN reference would fail the check below and drop the compiled ones.
            return self.module(x)
        if self._compiled_forward is not None:
            try:
                out = self._compiled_forward(x)
            except Exception as err:  # e.g. no C++ compiler: inductor fails at the first call
                log.warning("torch.compile failed (%s: %s); falling back to eager mode", type(err).__name__, err)
                self._compiled_forward, self.compiled = None, False
            else:
                if (key := (tuple(x.shape), x.stride(), x.dtype, x.device)) in self._verified:
                    return out
                # Each shape compiles its own kernels (dynamic=False): its first output is checked against eager
                # (inductor under an AVX2 cap on an AVX-512 CPU returned 0.8 of the range off, and NaN).
                ref = self.module(x)
                bound = ACCURACY_BOUND if self.precision == "float32" else _COMPILED_BF16_BOUND
                error = relative_error(out.float(), ref.float())
                if error <= bound:  # False for NaN too
                    self._verified.add(key)
                    return out
                log.warning("torch.compile is %.3g of the range off eager (bound %g): running eagerly", error, bound)
                self._compiled_forward, self.compiled = None, False
                return ref
        return self.module(x)


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    """
    Largest absolute difference between ``output`` and ``reference`` as a fraction of the reference's range.

    For ``(N, C, H, W)`` tensors the range is taken per channel (a denoised image and its log-variance have very
    different ranges) and the largest of the per-channel fractions is returned.

    Parameters
    ----------
    output : `torch.Tensor`
        The tensor to judge, e.g. an optimised network's output; same shape as ``reference``.
    reference : `torch.Tensor`
        The reference, e.g. float32 eager inference: ``(N, C, H, W)``, or any shape (one range over all of it).

    Returns
    -------
    float
        ``max |output - reference| / (max(reference) - min(reference))`` (dimensionless), the largest over channels;
        compare it with `ACCURACY_BOUND`.

    Examples
    --------
    >>> import torch
    >>> from sunpy_nn.nn import relative_error
    >>> reference = torch.tensor([0.0, 1.0, 2.0])
    >>> round(relative_error(reference + 0.01, reference), 6)  # 0.01 off a range of 2
    0.005
    """
    out, ref = output.float(), reference.float()
    if ref.ndim == 4:
        out, ref = out.transpose(0, 1).flatten(1), ref.transpose(0, 1).flatten(1)
    else:
        out, ref = out.reshape(1, -1), ref.reshape(1, -1)
    span = (ref.max(dim=1).values - ref.min(dim=1).values).clamp_min(torch.finfo(torch.float32).tiny)
    return float(((out - ref).abs().max(dim=1).values / span).max())
