"""
The public functions end to end on a CUDA GPU: what ``benchmarks/gpu.py`` runs first (``pytest -m cuda``).

Skipped, saying why, where torch sees no GPU. The package runs float32 inference on the GPU without TF32 (cuDNN's
default for float32 convolutions, 10 mantissa bits), so GPU and CPU float32 agree to well under the accuracy guard;
summation order still differs, so not to rounding.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch

from sunpy_nn import Denoiser, denoise_cube, enhance_map
from sunpy_nn.data.synthetic import synthetic_crisp_cube, synthetic_hmi_map
from sunpy_nn.nn import EnhanceNet, prepare_model, run_tiled

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; torch sees none on this machine"),
]


def test_enhance_map_on_the_gpu_matches_the_cpu():
    hmi, _ = synthetic_hmi_map((96, 96), seed=3)
    cpu = enhance_map(hmi, device="cpu", progress=False)
    gpu = enhance_map(hmi, device="cuda", progress=False)
    assert gpu.wcs.wcs.compare(cpu.wcs.wcs) and gpu.unit == cpu.unit
    assert np.abs(gpu.data - cpu.data).max() <= 1e-4 * np.ptp(cpu.data)  # float32 on both, no TF32
    assert (gpu.bottom_left_coord.separation(cpu.bottom_left_coord)).to(u.arcsec) < 1e-6 * u.arcsec


def test_denoise_cube_trains_and_predicts_on_the_gpu():
    cube, _ = synthetic_crisp_cube(64, n_wavelengths=3, n_scans=4, seed=0)
    out = denoise_cube(cube, epochs=1, seed=0, device="cuda", progress=False)
    assert out.data.shape == cube.data.shape and out.wcs.pixel_n_dim == cube.wcs.pixel_n_dim
    assert np.isfinite(out.data).all() and np.isfinite(out.uncertainty.array).all()
    assert (out.uncertainty.array > 0).all()
    # Stokes I is returned bit for bit (only Q, U, V were asked for).
    np.testing.assert_array_equal(out.data[:, 0], cube.data[:, 0])


def _devices(net: torch.nn.Module) -> set[str]:
    return {t.device.type for t in (*net.parameters(), *net.buffers())}


@pytest.mark.parametrize("precision", [None, "float32", "bfloat16"])
def test_run_tiled_on_the_gpu_never_moves_the_callers_network(precision):
    """
    A CPU network run on the GPU stays on the CPU (and still runs there), and a GPU network (one a Denoiser fitted on
    the GPU) runs through the optimised path on either device: the first GPU check found both broken.
    """
    torch.manual_seed(0)
    cpu_net = Denoiser()._build(1).eval()
    img = np.random.default_rng(0).normal(size=(96, 80)).astype(np.float32)
    kw = {"halo": cpu_net.receptive_radius, "align": cpu_net.align, "precision": precision, "progress": False}
    ref = run_tiled(cpu_net, img, device="cpu", **kw)
    gpu = run_tiled(cpu_net, img, device="cuda", **kw)
    assert _devices(cpu_net) == {"cpu"}
    gpu_net = Denoiser()._build(1).eval()
    gpu_net.load_state_dict(cpu_net.state_dict())
    gpu_net = gpu_net.cuda()
    from_gpu = run_tiled(gpu_net, img, device="cuda", **kw)
    back_on_cpu = run_tiled(gpu_net, img, device="cpu", **kw)
    assert _devices(gpu_net) == {"cuda"}
    # TF32 (cuDNN's default for float32) was ~2e-3 of the range off: 1e-4 catches it, float32's order of sums not
    bound = (0.05 if precision == "bfloat16" else 1e-4) * np.ptp(ref)
    for out in (gpu, from_gpu, back_on_cpu):
        assert np.abs(out - ref).max() <= bound


def test_prepare_model_auto_on_the_gpu_leaves_the_network_on_the_cpu():
    torch.manual_seed(0)
    net = EnhanceNet(depth=2, n_filters=16).eval()
    fast = prepare_model(net, device="cuda", precision="auto")
    assert _devices(net) == {"cpu"} and fast.precision in ("float32", "bfloat16")
    x = 1 + 0.1 * torch.rand(1, 1, 40, 40)
    with torch.inference_mode():
        assert (fast(x.cuda()).cpu() - net(x)).abs().max() <= 0.05 * float(net(x).max() - net(x).min())


def test_float32_inference_runs_without_tf32_and_restores_the_callers_setting(tf32_settings):
    seen = []

    class Probe(torch.nn.Module):  # records the TF32 settings the forward pass runs under
        def forward(self, x):
            seen.append((torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()))
            return x

    torch.backends.cudnn.allow_tf32 = True  # a user who asked for TF32
    torch.set_float32_matmul_precision("high")
    run_tiled(Probe(), np.zeros((8, 8), np.float32), halo=0, device="cuda", progress=False)
    assert seen == [(False, "highest")]
    assert (torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()) == (True, "high")
