"""Training in bfloat16 mixed precision (issue #16): the convolutions in bfloat16, a float32 network out."""

import logging

import numpy as np
import pytest
import torch
from astropy.io import fits

import sunpy_nn.denoise._fit
import sunpy_nn.training._precision as precision_module
from sunpy_nn import Denoiser, denoise_cube
from sunpy_nn.cli import main
from sunpy_nn.training import train_noise2noise
from sunpy_nn.training._precision import check_precision_on_device

from .helpers import short_denoise_cube_training
from .test_cli_denoise import TRAIN, crisp_fits  # noqa: F401 (a fixture)
from .test_denoise import TRUTH, noisy_cube
from .test_noise2noise import mse, pairs, unet

FIT = {"epochs": 1, "patches_per_epoch": 10, "patch_size": 16, "seed": 0, "progress": False, "device": "cpu"}


def _conv_dtypes(model):
    """The dtypes the model's convolutions compute in, recorded while it runs."""
    seen = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    return seen


def test_bfloat16_runs_the_convolutions_in_bfloat16_and_trains_a_float32_network(monkeypatch):
    val = [pairs(1).draw() for _ in range(50)]
    trained = {}
    losses = set()
    plain = torch.nn.functional.mse_loss

    def recording(a, b, *args, **kwargs):  # the data loss sees the float32 output
        losses.add(a.dtype)
        return plain(a, b, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "mse_loss", recording)
    for precision in ("float32", "bfloat16"):
        model = unet()
        before = mse(model, val)
        losses.clear()
        seen = _conv_dtypes(model)
        history = train_noise2noise(
            model, pairs(0), epochs=3, patches_per_epoch=100, seed=0, progress=False, device="cpu", precision=precision
        )
        assert seen == {getattr(torch, precision)} and losses == {torch.float32}
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert np.isfinite(history["train_loss"]).all()
        trained[precision] = (mse(model, val), model.state_dict())
        assert trained[precision][0] < 0.92 * before  # it learns, as in test_training_lowers_the_loss
    # both learn alike (the bfloat16 run is not the float32 one: its weights differ)
    assert trained["bfloat16"][0] == pytest.approx(trained["float32"][0], rel=0.05)
    w32, w16 = trained["float32"][1], trained["bfloat16"][1]
    assert any(not torch.allclose(w32[k], w16[k]) for k in w32 if w32[k].is_floating_point())


@pytest.mark.parametrize("precision", ["float16", "bf16", None, 32])
def test_an_unknown_precision_is_refused_before_training(precision):
    model = unet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'bfloat16' for training, not"):
        train_noise2noise(model, pairs(0), progress=False, device="cpu", precision=precision)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    den = Denoiser(n_filters=4, depth=1)
    with pytest.raises(ValueError, match="precision must be one of"):
        den.fit(noisy_cube(TRUTH[:3, :, :1, :32, :32]), precision=precision, **FIT)
    assert den.model is None  # nothing trained


def test_emulated_bfloat16_is_said_and_a_gpu_without_it_refused(monkeypatch, caplog):
    monkeypatch.setattr(precision_module, "bf16_is_native", lambda dev: False)
    monkeypatch.setattr(precision_module, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="sunpy_nn.training._precision"):
        check_precision_on_device("bfloat16", torch.device("cpu"))
        check_precision_on_device("bfloat16", torch.device("cpu"))  # once per device and process
    assert caplog.text.count("bfloat16 is not native on cpu") == 1 and "precision='float32'" in caplog.text
    caplog.clear()
    check_precision_on_device("float32", torch.device("cpu"))  # float32 needs nothing
    assert not caplog.text
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ValueError, match=r"cuda cannot run bfloat16 at all: use precision='float32'"):
        check_precision_on_device("bfloat16", torch.device("cuda"))


def test_denoiser_fit_trains_in_its_precision_and_saves_it(tmp_path, monkeypatch):
    cube = noisy_cube(TRUTH[:3, :, :1, :32, :32])
    seen = []

    def recording(model, *args, **kwargs):
        seen.append(_conv_dtypes(model))
        return train_noise2noise(model, *args, **kwargs)

    monkeypatch.setattr(sunpy_nn.denoise._fit, "train_noise2noise", recording)
    den = Denoiser(n_filters=4, depth=1).fit(cube, precision="bfloat16", **FIT)
    assert torch.bfloat16 in seen[0]  # the training's convolutions (calibration then runs the network in float32)
    assert den.fit_settings["precision"] == "bfloat16"
    assert all(p.dtype == torch.float32 for p in den.model.parameters())
    assert Denoiser.load(den.save(tmp_path / "d.pt")).fit_settings["precision"] == "bfloat16"
    assert den.provenance()["fit"]["precision"] == "bfloat16"
    assert Denoiser(n_filters=4, depth=1).fit(cube, **FIT).fit_settings["precision"] == "float32"


def test_denoise_cube_trains_in_train_precision_and_refuses_it_with_a_denoiser(monkeypatch):
    cube = noisy_cube(TRUTH[:3, :, :1, :32, :32])
    den = Denoiser(n_filters=4, depth=1).fit(cube, **FIT)
    calls = short_denoise_cube_training(monkeypatch)
    out = denoise_cube(cube, epochs=1, patch_size=16, train_precision="bfloat16", seed=0, progress=False)
    assert [c["precision"] for c in calls] == ["bfloat16"]
    assert out.meta["sunpy_nn"]["fit"]["precision"] == "bfloat16"
    denoise_cube(cube, epochs=1, patch_size=16, seed=0, progress=False)
    assert calls[-1]["precision"] == "float32"  # the default
    with pytest.raises(ValueError, match=r"^train_precision applies only when training"):
        denoise_cube(cube, denoiser=den, train_precision="bfloat16")


def test_the_command_line_trains_in_train_precision(tmp_path, crisp_fits, capsys):  # noqa: F811
    out = tmp_path / "out.fits"
    assert main(["denoise", str(crisp_fits), "-o", str(out), *TRAIN, "--train-precision", "bfloat16"]) == 0
    history = "\n".join(str(h) for h in fits.getheader(out)["HISTORY"])
    assert "sunpy_nn fit.precision: bfloat16" in history, history
    den = Denoiser(n_filters=4, depth=1).fit(noisy_cube(TRUTH[:3, :, :1, :32, :32]), **FIT)
    den_path = den.save(tmp_path / "d.pt")
    args = ["denoise", str(crisp_fits), "-o", str(tmp_path / "o2.fits"), "--denoiser", str(den_path)]
    code = main([*args, "--train-precision", "bfloat16"])
    assert code != 0 and "--train-precision applies only when training" in capsys.readouterr().err
