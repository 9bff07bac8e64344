"""
The public functions end to end on a CUDA GPU: what ``benchmarks/gpu.py`` runs first (``pytest -m cuda``).

Skipped, saying why, where torch sees no GPU. cuDNN may run float32 convolutions in TF32 (10 mantissa bits), so
GPU and CPU agree to a fraction of the output range, not to rounding.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch

from sunpy_nn import denoise_cube, enhance_map
from sunpy_nn.data.synthetic import synthetic_crisp_cube, synthetic_hmi_map

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; torch sees none on this machine"),
]


def test_enhance_map_on_the_gpu_matches_the_cpu():
    hmi, _ = synthetic_hmi_map((96, 96), seed=3)
    cpu = enhance_map(hmi, device="cpu", progress=False)
    gpu = enhance_map(hmi, device="cuda", progress=False)
    assert gpu.wcs.wcs.compare(cpu.wcs.wcs) and gpu.unit == cpu.unit
    assert np.abs(gpu.data - cpu.data).max() <= 5e-3 * np.ptp(cpu.data)
    assert (gpu.bottom_left_coord.separation(cpu.bottom_left_coord)).to(u.arcsec) < 1e-6 * u.arcsec


def test_denoise_cube_trains_and_predicts_on_the_gpu():
    cube, _ = synthetic_crisp_cube(64, n_wavelengths=3, n_scans=4, seed=0)
    out = denoise_cube(cube, epochs=1, seed=0, device="cuda", progress=False)
    assert out.data.shape == cube.data.shape and out.wcs.pixel_n_dim == cube.wcs.pixel_n_dim
    assert np.isfinite(out.data).all() and np.isfinite(out.uncertainty.array).all()
    assert (out.uncertainty.array > 0).all()
    # Stokes I is returned bit for bit (only Q, U, V were asked for).
    np.testing.assert_array_equal(out.data[:, 0], cube.data[:, 0])
