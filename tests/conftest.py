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
