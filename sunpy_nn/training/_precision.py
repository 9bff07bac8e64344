"""
The arithmetic of a training step: float32, or bfloat16 mixed precision (`torch.autocast`).

Under autocast the convolutions and matrix products run in bfloat16, which CPUs with AMX or AVX512-BF16 and recent
GPUs compute several times faster than float32; the weights, the optimiser's state, the loss and its reduction stay
float32 (the network's output is cast back before the loss), so the trained network is a float32 network.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from sunpy_nn.nn.device import bf16_is_native

log = logging.getLogger(__name__)

_WARNED: set[str] = set()  # devices already warned about emulated bfloat16: once per process, not per call
#: The arithmetic a training step may run in: ``"float32"`` (the default) or ``"bfloat16"`` autocast.
TRAINING_PRECISIONS = ("float32", "bfloat16")


def check_training_precision(precision: object) -> str:
    """``precision`` if it is one of `TRAINING_PRECISIONS`; a `ValueError` that names them otherwise."""
    if not isinstance(precision, str) or precision not in TRAINING_PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(map(repr, TRAINING_PRECISIONS))} for training, not {precision!r}"
        )
    return precision


def check_precision_on_device(precision: str, dev: torch.device) -> None:
    """
    Before training: bfloat16 on a GPU that cannot run it at all (an error) or on a device that only emulates it (a
    log warning, once per device and process: it runs, likely slower than float32).
    """
    if precision != "bfloat16" or bf16_is_native(dev):
        return
    if dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"{dev} cannot run bfloat16 at all: use precision='float32'")
    if str(dev) in _WARNED:
        return
    _WARNED.add(str(dev))
    log.warning(
        "bfloat16 is not native on %s (no AMX or AVX512-BF16 on this CPU, or a GPU older than compute capability 8.0): "
        "training in it is emulated and likely slower than precision='float32'",
        dev,
    )


def training_autocast(precision: str, dev: torch.device) -> contextlib.AbstractContextManager:
    """The context a training step's forward pass runs in: nothing for float32, bfloat16 autocast otherwise."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype=torch.bfloat16)
