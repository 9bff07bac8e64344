"""
Where and how the networks run: the device, the precisions, native bfloat16 and torch's CPU threads.

One concept, one room: `resolve_device` (which device), `PRECISIONS` and `bf16_is_native` (which arithmetic), and
`configure_threads` (how many CPU threads: the package's one thread policy) are needed by the tiled runner
(`sunpy_nn.nn.runner`) and by the optimised networks (`sunpy_nn.nn.optimize`) alike. They live here, below both, so
that neither imports the other for them. Nothing here imports sunpy or astropy.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "bf16_is_native", "configure_threads", "resolve_device"]

#: Accepted values of ``precision``.
PRECISIONS = ("float32", "bfloat16", "auto")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """
    Turn a user's ``device`` argument into a `torch.device`.

    ``None`` picks the best available device: CUDA when a GPU is present, else Apple's MPS, else the CPU.
    Asking for ``"cuda"`` on a machine without a usable GPU raises an error that says so.
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but torch sees no CUDA GPU (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda}). Use device='cpu' or device=None to pick what is available."
        )
    return dev


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_is_native(device: str | torch.device = "cpu") -> bool:
    """
    Whether ``device`` computes bfloat16 convolutions natively (faster than float32).

    On the CPU: AVX512-BF16 or AMX-BF16, from ``torch.backends.cpu.get_cpu_capability()`` or ``/proc/cpuinfo``
    (oneDNN emulates bfloat16 elsewhere, which is slower than float32). On CUDA: compute capability 8.0 or newer.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    if dev.type != "cpu":
        return False
    capability = ""
    with contextlib.suppress(AttributeError, RuntimeError):
        capability = torch.backends.cpu.get_cpu_capability()
    if "AMX" in capability.upper() or "BF16" in capability.upper():
        return True
    flags = _cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads(n_threads: int | None = None) -> int:
    """
    Set torch's intra-op threads to ``n_threads``, or to the CPUs this process may run on (its affinity mask).

    torch's own default counts physical cores of the whole machine, which oversubscribes a container or a job
    limited by ``taskset``/cgroups to fewer CPUs. Returns the number set.
    """
    n = int(n_threads) if n_threads else _available_cpus()
    if n < 1:
        raise ValueError(f"n_threads must be positive, got {n_threads}")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
