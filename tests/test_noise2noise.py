"""The Noise2Noise pairs and training loop of `sunpy_nn.training.noise2noise`, and how `Denoiser.fit` uses them."""

import warnings

import numpy as np
import pytest
import torch

from sunpy_nn import Denoiser
from sunpy_nn.data.synthetic import synthetic_crisp_cube
from sunpy_nn.nn import UNet
from sunpy_nn.training import Noise2NoisePairs, temporal_neighbours, train_noise2noise
from sunpy_nn.utils import SunpyNNUserWarning

from .test_denoise import TRUTH, noisy_cube

NOISE = 3e-3
CUBE, _ = synthetic_crisp_cube(32, n_wavelengths=2, n_scans=4, noise=NOISE, seed=0)
DATA = np.asarray(CUBE.data) / NOISE  # (time, Stokes, wavelength, y, x) in units of the noise
SIGNED = [False, True, True, True]


def pairs(seed, data=DATA, patch_size=16, **kwargs):
    rng = np.random.default_rng(seed)
    return Noise2NoisePairs(data, [1, 2, 3], SIGNED, "image", patch_size, (0, data.shape[4]), rng, False, **kwargs)


def unet(seed=0, variance_head=True):
    torch.manual_seed(seed)
    return UNet(1, 1, n_filters=8, variance_head=variance_head, residual=True, variance="softplus", dropout=0.01)


def mse(model, batch):
    model.eval()
    with torch.inference_mode():
        x, y = (torch.from_numpy(np.stack([p[k] for p in batch])) for k in (0, 1))
        return float(torch.nn.functional.mse_loss(model(x)[:, :1], y))


def test_training_lowers_the_loss():
    val = [pairs(1).draw() for _ in range(50)]
    model = unet()
    before = mse(model, val)
    history = train_noise2noise(
        model, pairs(0), epochs=3, patches_per_epoch=100, validation=val, seed=0, progress=False, device="cpu"
    )
    assert len(history["train_loss"]) == len(history["val_loss"]) == len(history["epoch_time"]) == 3
    assert history["val_loss"][-1] < 0.92 * before
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_loss"][-1] == pytest.approx(mse(model, val))  # measured on the model it returns
    assert not model.training


def test_the_same_seed_gives_the_same_history_and_weights():
    val = [pairs(1).draw() for _ in range(10)]
    runs = []
    for sampler_seed in (0, 0, 2):
        model = unet()
        kwargs = {"epochs": 2, "patches_per_epoch": 30, "validation": val, "seed": 0, "progress": False}
        history = train_noise2noise(model, pairs(sampler_seed), device="cpu", **kwargs)
        runs.append((history, model.state_dict()))
    (h0, w0), (h1, w1), (h2, _) = runs
    assert h0["train_loss"] == h1["train_loss"] and h0["val_loss"] == h1["val_loss"]
    for key, value in w0.items():
        torch.testing.assert_close(w1[key], value, rtol=0, atol=0)
    assert h2["train_loss"] != h0["train_loss"]  # other pairs


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "l3"}, "loss must be 'l2' or 'l1'"),
        ({"epochs": 0}, "epochs must be an integer of at least 1"),
        ({"batch_size": 20, "patches_per_epoch": 10}, "patches_per_epoch must be an integer of at least 20"),
        ({"lr": 0.0}, r"lr must be a finite number in \(0, inf\)"),
        ({"seed": -1}, "seed must be an integer of at least 0"),
    ],
)
def test_arguments_are_checked_before_training(kwargs, match):
    model = unet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        train_noise2noise(model, pairs(0), progress=False, device="cpu", **kwargs)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


class CountingPairs:
    """Any object with draw() (and optionally refresh() and target_noise_var) can be the pairs."""

    def __init__(self):
        self.rng, self.refreshed = np.random.default_rng(0), 0

    def draw(self):
        clean = np.zeros((1, 8, 8), np.float32)
        return (clean + self.rng.normal(size=clean.shape)).astype(np.float32), clean

    def refresh(self):
        self.refreshed += 1


def test_any_pairs_object_and_a_network_without_variance_head():
    source = CountingPairs()
    model = unet(variance_head=False)
    history = train_noise2noise(model, source, epochs=3, patches_per_epoch=10, batch_size=5, progress=False)
    assert source.refreshed == 2  # before every epoch but the first
    assert len(history["train_loss"]) == 3 and history["val_loss"] == []
    assert all(np.isfinite(history["train_loss"]))


def test_the_kinds_of_pairs():
    assert pairs(0).description == "symmetric: scan t -> mean of scans t-1 and t+1"
    assert pairs(0).target_noise_var == 0.5
    two = pairs(0, data=DATA[:2])
    assert two.description == "consecutive scans" and two.target_noise_var == 1.0
    temporal = pairs(0, temporal=1)
    x, y = temporal.draw()
    assert x.shape == (2, 16, 16) and y.shape == (1, 16, 16)
    rng = np.random.default_rng(0)
    single = Noise2NoisePairs(DATA[:1], [1, 2, 3], SIGNED, "spectral", 8, (0, 32), rng, True, shuffle=2)
    x, y = single.draw()  # a 32-pixel window, one phase of the 2x2 shuffle (16 px), then 2x2 sub-sampling
    assert single.description == "neighbour sub-sampling" and x.shape == y.shape == (2, 8, 8)
    with pytest.raises(ValueError, match="larger than the image region"):
        pairs(0, patch_size=40)


def test_temporal_neighbours():
    assert temporal_neighbours(0, 5, 1) == [1, 2]  # the window shifted inward at the ends
    assert temporal_neighbours(2, 5, 1) == [1, 3]
    assert temporal_neighbours(4, 5, 2) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="temporal=2 needs at least 5 scans"):
        temporal_neighbours(0, 4, 2)


def test_denoiser_fit_is_train_noise2noise_on_its_pairs():
    cube = noisy_cube(TRUTH[:3, :, :1, :32, :32])
    fit = {"epochs": 2, "patches_per_epoch": 20, "patch_size": 16, "val_fraction": 0, "seed": 0, "progress": False}
    den = Denoiser(n_filters=4, depth=1).fit(cube, device="cpu", **fit)
    # by hand: the cube in noise units, the pairs seeded as fit seeds them, the network built after torch's seed
    sigma = np.array([den.noise[s] for s in "IQUV"], np.float32)[None, :, None, None, None]
    normed = np.asarray(cube.data, np.float32) / sigma
    sampler = Noise2NoisePairs(normed, [1, 2, 3], SIGNED, "image", 16, (0, 32), np.random.default_rng(0), False)
    torch.manual_seed(0)
    model = Denoiser(n_filters=4, depth=1)._build(1)
    history = train_noise2noise(model, sampler, epochs=2, patches_per_epoch=20, progress=False, device="cpu")
    assert history["train_loss"] == den.history["train_loss"]
    for key, value in den.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


def test_a_validation_strip_too_narrow_for_patches_is_said_not_skipped_silently():
    # The fix: val_fraction=0.1 of a 32 px field (3 columns) trained without validation and said nothing
    cube = noisy_cube(TRUTH[:3, :, :1, :32, :32])
    fit = {"epochs": 1, "patches_per_epoch": 10, "patch_size": 16, "seed": 0, "progress": False}
    narrow = r"without validation: val_fraction=0.1 holds out 3 of 32 columns.* need 16"
    with pytest.warns(SunpyNNUserWarning, match=narrow):
        den = Denoiser(n_filters=4, depth=1).fit(cube, device="cpu", val_fraction=0.1, **fit)
    assert den.history["val_loss"] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", SunpyNNUserWarning)  # a strip that holds patches validates, silently
        den = Denoiser(n_filters=4, depth=1).fit(cube, device="cpu", val_fraction=0.5, **fit)
    assert len(den.history["val_loss"]) == 1
    with pytest.warns(SunpyNNUserWarning, match=r"cannot exceed patch_size=8, below their 16 px"):  # not the strip
        Denoiser(n_filters=4, depth=1).fit(cube, device="cpu", val_fraction=0.5, **(fit | {"patch_size": 8}))
