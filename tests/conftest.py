"""Fixtures shared by the test modules."""

import dataclasses
import os

import pytest
import torch

from sunpy_nn.nn import device


@pytest.fixture
def policy(monkeypatch):
    """A clean policy state and no thread variables in the environment; torch's count and the state put back."""
    before, state = torch.get_num_threads(), dataclasses.replace(device._STATE)
    for var in device.THREAD_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    device._STATE.explicit = device._STATE.scoped = device._STATE.choice = device._STATE.worker = None
    device._STATE.pooled = False
    device._STATE.applied = before  # as if the package had set torch's current count: nobody chose
    calls = []

    def fake_choice(cpus=None, busy=None):
        calls.append(os.getpid())
        return 3

    monkeypatch.setattr(device, "choose_threads", fake_choice)
    yield calls
    torch.set_num_threads(before)
    device._STATE.__dict__.update(dataclasses.asdict(state))


# Only the tests marked ``cuda`` see a GPU. The others assert CPU behaviour (results to a few ulps, bit-identical
# files, glibc's heap, the CPU thread policy), and ``device=None`` would pick the GPU: on an NVIDIA H200 that made 43
# of them fail without any bug (TF32 rounding, non-deterministic kernels). Decided per test before its fixtures are
# set up, so that module-scoped ones (a fitted denoiser, a dask cluster's worker processes) run on the CPU too.
_REAL_CUDA_AVAILABLE = torch.cuda.is_available
_GPU_ALLOWED = [True]  # collection sees the real answer (the cuda tests' skipif)
_USER_VISIBLE = os.environ.get("CUDA_VISIBLE_DEVICES")  # the caller's own choice, put back for the cuda tests
torch.cuda.is_available = lambda: _GPU_ALLOWED[0] and _REAL_CUDA_AVAILABLE()
if _REAL_CUDA_AVAILABLE():
    # CUDA reads CUDA_VISIBLE_DEVICES once, when it starts: started lazily after a CPU test hid the GPU, it saw no
    # device, and a later cuda test in the same process failed ("Invalid device id"). Started now, it keeps the GPU.
    try:
        torch.cuda.init()
    except RuntimeError as err:  # a broken driver fails the cuda tests, not the whole session
        import warnings

        warnings.warn(f"CUDA did not start ({err}); the cuda tests will fail", stacklevel=1)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _GPU_ALLOWED[0] = item.get_closest_marker("cuda") is not None
    if not _GPU_ALLOWED[0]:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # subprocesses and worker processes started now inherit it
    elif _USER_VISIBLE is None:
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = _USER_VISIBLE


@pytest.fixture
def tf32_settings():
    """torch's process-wide TF32 settings, put back after the test: old and new ones, as they were."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    newer = hasattr(getattr(cudnn, "conv", None), "fp32_precision")  # torch 2.9 and later
    levels = (torch.backends.fp32_precision, cudnn.fp32_precision) if newer else None  # what "none" inherits
    before = (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, matmul.fp32_precision) if newer else None
    legacy = cudnn.allow_tf32, torch.get_float32_matmul_precision()
    yield newer
    cudnn.allow_tf32 = legacy[0]
    torch.set_float32_matmul_precision(legacy[1])
    if newer:
        torch.backends.fp32_precision, cudnn.fp32_precision = levels
        cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, matmul.fp32_precision = before
