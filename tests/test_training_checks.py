"""
train_enhance's checks: settings refused before any pair is made, a checkpoint resumed only into the run that wrote
it, a diverged run said to have diverged, load_training_checkpoint's errors, and the CLI's gauss-to-kg on a map.
"""

import astropy.units as u
import numpy as np
import pytest
import torch

from sunpy_nn import WeightsError
from sunpy_nn.cli import _load_training_image
from sunpy_nn.enhance._models import load_training_checkpoint
from sunpy_nn.training import train_enhance
from sunpy_nn.training.enhance import _as_images

from .test_enhance_map import hmi_map
from .test_training import IMG, KW


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"n_patches": 0}, "n_patches"),
        ({"n_validation": 0}, "n_validation"),
        ({"lr": 0.0}, "lr"),
        ({"input_size": 0}, "input_size"),
        ({"intensity_fraction": 2.0}, "intensity_fraction"),
        ({"schedule": "linear"}, "schedule"),
    ],
)
def test_bad_settings_are_refused_before_any_work(monkeypatch, bad, message):
    import sunpy_nn.training.enhance as enhance

    monkeypatch.setattr(enhance, "make_source_pairs", lambda *a, **k: pytest.fail("pairs were made"))
    state = torch.random.get_rng_state()
    with pytest.raises(ValueError, match=message):
        train_enhance(IMG, **{**KW, "epochs": 1, **bad})
    assert torch.equal(torch.random.get_rng_state(), state)  # refused before torch's random numbers were seeded


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    train_enhance(IMG, epochs=1, checkpoint_dir=tmp_path, **KW)
    for change, differs in (
        ({"lr": 1e-2}, "lr: 0.003 there, 0.01 here"),
        ({"seed": 8}, "seed: 7 there, 8 here"),
        ({"n_filters": 4}, "architecture"),
        ({"images": IMG[::-1].copy()}, "data_sha256"),
        ({"input_size": 24}, "input_size: 16 there, 24 here"),
    ):
        images = change.pop("images", IMG)
        with pytest.raises(ValueError, match=rf"is of another training run \(.*{differs}.*delete"):
            train_enhance(images, epochs=2, checkpoint_dir=tmp_path, **{**KW, **change})
    _, hist = train_enhance(IMG, epochs=2, checkpoint_dir=tmp_path, **KW)  # the same run resumes
    assert len(hist["val_loss"]) == 2
    with pytest.raises(ValueError, match="holds 2 epochs, more than epochs=1"):
        train_enhance(IMG, epochs=1, checkpoint_dir=tmp_path, **KW)


@pytest.mark.parametrize("content", [b"", b"not a torch file", "dict"])
def test_an_unreadable_checkpoint_is_refused(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content == "dict":
        torch.save({"model": {}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=r"(Could not read the checkpoint|checkpoint.*lacks).*delete"):
        train_enhance(IMG, epochs=1, checkpoint_dir=tmp_path, **KW)
    with pytest.raises(WeightsError, match="checkpoint"):
        load_training_checkpoint(path)


def test_load_training_checkpoint_builds_the_recorded_network(tmp_path):
    model, _ = train_enhance(IMG, epochs=1, checkpoint_dir=tmp_path, **KW)
    net, info = load_training_checkpoint(tmp_path / "checkpoint.pt")
    assert (net.depth, net.n_filters) == (1, 8) and info["epochs_done"] == 1
    x = torch.randn(1, 1, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), model(x))


def test_a_diverged_run_says_so():
    with pytest.raises(FloatingPointError, match=r"validation loss of epoch 1 is (nan|inf).*network units"):
        train_enhance(IMG * 1e39, epochs=1, **KW)


def test_gauss_to_kg_converts_a_map_in_gauss_once(tmp_path):
    field = np.random.default_rng(0).normal(0, 300, (64, 64))
    path = tmp_path / "blos.fits"
    hmi_map(field, unit=u.G).save(path)
    smap = _load_training_image(str(path), "gauss-to-kg")
    ((kg, _),) = _as_images(smap, 0.0662, "blos")
    assert smap.unit == u.G and kg.std() == pytest.approx(field.std() / 1000, rel=1e-6)  # 0.3 kG, not 3e-4
    np.save(tmp_path / "blos.npy", field)  # an array has no unit: the option divides it
    assert _load_training_image(str(tmp_path / "blos.npy"), "gauss-to-kg").std() == pytest.approx(field.std() / 1000)


def test_a_training_map_in_a_magnetic_unit_is_not_taken_for_intensity():
    with pytest.raises(ValueError, match=r"kind='intensity' but a training Map is in G.*kind='blos'"):
        _as_images(hmi_map(np.ones((64, 64)), unit=u.G), None, "intensity")


@pytest.mark.parametrize(("patch_size", "x_range"), [(0, (0, 32)), (8, (0, 40)), (8, (20, 10))])
def test_noise2noise_pairs_refuse_a_patch_or_range_outside_the_image(patch_size, x_range):
    from sunpy_nn.training import Noise2NoisePairs

    data = np.zeros((3, 1, 1, 32, 32), np.float32)
    with pytest.raises(ValueError, match=r"x_range .* within the 32 columns"):
        Noise2NoisePairs(data, [0], [True], "image", patch_size, x_range, np.random.default_rng(0), False)


def test_a_run_without_seed_and_with_numpy_settings_resumes(tmp_path):
    kw = {**KW, "seed": None, "lr": np.float64(3e-3)}  # numpy values: kept as plain numbers for weights_only loads
    train_enhance(IMG, epochs=1, checkpoint_dir=tmp_path, **kw)
    _, hist = train_enhance(IMG, epochs=2, checkpoint_dir=tmp_path, **kw)  # its pairs drawn anew, its images the same
    assert len(hist["val_loss"]) == 2
    net, _ = load_training_checkpoint(tmp_path / "checkpoint.pt")
    assert net.n_filters == 8
