import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from sunpy_nn.baselines import richardson_lucy
from sunpy_nn.data import load_weights
from sunpy_nn.data.synthetic import synthetic_blos
from sunpy_nn.nn import EnhanceNet
from sunpy_nn.psf import degrade, hmi_psf
from sunpy_nn.training import make_enhance_pairs, train_enhance


def granulation(n=700, seed=0):
    rng = np.random.default_rng(seed)
    f = np.fft.irfft2(
        np.fft.rfft2(rng.standard_normal((n, n)))
        * np.exp(-((np.fft.rfftfreq(n)[None] ** 2 + np.fft.fftfreq(n)[:, None] ** 2) * 400)),
        s=(n, n),
    )
    return 1 + 0.15 * f / f.std()


IMG = granulation()


def test_pairs_shapes_units_and_seed():
    a = make_enhance_pairs(IMG, pixel_scale=0.0662, kind="intensity", n_patches=6, input_size=20, seed=3)
    b = make_enhance_pairs(IMG, pixel_scale=0.0662, kind="intensity", n_patches=6, input_size=20, seed=3)
    assert a.inputs.shape == (6, 1, 20, 20) and a.targets.shape == (6, 1, 40, 40)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    # flux conservation: a 2x-binned target has the input's mean (up to noise and the different PSFs)
    assert np.abs(a.inputs.mean(axis=(1, 2, 3)) - a.targets.mean(axis=(1, 2, 3))).max() < 0.02
    # the target is sharper than the input
    assert a.targets.std() > a.inputs.std()


def test_input_noise_level():
    flat = np.ones((500, 500))
    p = make_enhance_pairs(flat, pixel_scale=0.0662, kind="intensity", n_patches=20, input_size=20, seed=0)
    assert p.inputs.std() == pytest.approx(1e-3, rel=0.1)  # the paper's 1e-3 Ic
    np.testing.assert_allclose(p.targets, 1.0, atol=1e-9)
    pb = make_enhance_pairs(flat * 0, pixel_scale=0.0662, kind="blos", n_patches=20, input_size=20, seed=0)
    assert pb.inputs.std() == pytest.approx(0.01, rel=0.1)  # 10 G in kG


def test_validation_region_never_reaches_training_pairs():
    # With guard=True, changing every pixel of the held-out region leaves the training pairs unchanged.
    other = IMG.copy()
    other[:, int(0.75 * IMG.shape[1]) :] = 5.0
    kw = {"pixel_scale": 0.0662, "kind": "intensity", "n_patches": 10, "input_size": 20, "region": (0, 0.75), "seed": 1}
    np.testing.assert_array_equal(make_enhance_pairs(IMG, **kw).targets, make_enhance_pairs(other, **kw).targets)
    np.testing.assert_array_equal(make_enhance_pairs(IMG, **kw).inputs, make_enhance_pairs(other, **kw).inputs)


def test_magnetogram_sign_flips_and_intensity_range():
    positive = np.ones((500, 500))
    p = make_enhance_pairs(positive, pixel_scale=0.0662, kind="blos", n_patches=40, input_size=20, seed=0)
    means = p.targets.mean(axis=(1, 2, 3))
    assert (means < -0.9).sum() > 5 and (means > 0.9).sum() > 5  # both polarities
    q = make_enhance_pairs(
        positive,
        pixel_scale=0.0662,
        kind="intensity",
        n_patches=40,
        input_size=20,
        intensity_range=(0.2, 0.4),
        intensity_fraction=1.0,
        seed=0,
    )
    assert q.targets.mean(axis=(1, 2, 3)).min() >= 0.2 and q.targets.mean(axis=(1, 2, 3)).max() <= 0.4


def test_bad_training_input():
    with pytest.raises(ValueError, match="pixel_scale"):
        make_enhance_pairs(IMG, kind="intensity", n_patches=2)
    with pytest.raises(ValueError, match="finite"):
        make_enhance_pairs(np.full((500, 500), np.nan), pixel_scale=0.0662, kind="intensity", n_patches=2)
    with pytest.raises(ValueError, match="too small"):
        make_enhance_pairs(IMG[:100, :100], pixel_scale=0.0662, kind="intensity", n_patches=2)


KW = {
    "pixel_scale": 0.0662,
    "kind": "intensity",
    "n_patches": 48,
    "n_validation": 16,
    "input_size": 16,
    "validation_size": 16,
    "depth": 1,
    "n_filters": 8,
    "batch_size": 16,
    "lr": 3e-3,
    "seed": 7,
    "progress": False,
}


def test_training_learns_and_keeps_best_epoch():
    model, hist = train_enhance(IMG, epochs=4, **KW)
    assert len(hist["val_loss"]) == 4 and hist["val_loss"][-1] < hist["val_loss"][0]
    assert hist["best_epoch"] == int(np.argmin(hist["val_loss"])) + 1
    assert hist["recipe"]["l2"] == 1e-6 and hist["recipe"]["optimizer"] == "Adam"
    assert isinstance(model, EnhanceNet) and not model.training
    # trained channels-last (faster on CPU), returned in the standard layout: saved weights and hashes as before
    assert all(p.is_contiguous() for p in model.parameters() if p.ndim == 4)


def test_training_runs_channels_last_with_the_fused_adam(monkeypatch):
    seen = {}
    adam = torch.optim.Adam

    def recording(params, **kw):
        params = list(params)
        if seen:  # torch < 2.4 has no fused CPU step: the fallback's second call is not what was asked for
            return adam(params, **kw)
        seen["fused"] = kw.get("fused")
        # 3x3 kernels of several input channels (a one-channel or 1x1 kernel is in both layouts at once)
        wide = [p for p in params if p.ndim == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
        seen["layout"] = [p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in wide]
        return adam(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", recording)
    train_enhance(IMG, epochs=1, **KW)
    assert seen["fused"] is True and seen["layout"] and all(seen["layout"])


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    full, hist_full = train_enhance(IMG, epochs=3, **KW)
    train_enhance(IMG, epochs=2, checkpoint_dir=tmp_path, **KW)  # "interrupted" after 2 epochs
    assert json.loads((tmp_path / "history.json").read_text())["val_loss"] == pytest.approx(hist_full["val_loss"][:2])
    resumed, hist = train_enhance(IMG, epochs=3, checkpoint_dir=tmp_path, **KW)
    assert hist["val_loss"] == pytest.approx(hist_full["val_loss"], rel=1e-6)
    x = torch.randn(1, 1, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(resumed(x), full(x), rtol=1e-5, atol=1e-6)


def test_frozen_batchnorm_trains_the_evaluated_network(tmp_path):
    # Fine-tuning with frozen statistics: the running statistics stay those of the start, the recorded validation
    # loss is that of the returned network in eval mode, and a resumed augmented run equals an uninterrupted one.
    start, _ = train_enhance(IMG, epochs=1, **KW)
    stats = {k: v.clone() for k, v in start.state_dict().items() if "running" in k}
    kw = KW | {"freeze_batchnorm": True, "augment": True}
    tuned, hist = train_enhance(IMG, epochs=2, model=copy.deepcopy(start), **kw)
    assert hist["recipe"]["freeze_batchnorm"] and hist["recipe"]["augment"]
    # the augmentation acts: without it, the same seed trains other weights
    plain, _ = train_enhance(IMG, epochs=2, model=copy.deepcopy(start), **(kw | {"augment": False}))
    assert any(not torch.allclose(a, b) for a, b in zip(tuned.parameters(), plain.parameters(), strict=True))
    for k, v in stats.items():
        torch.testing.assert_close(tuned.state_dict()[k], v, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(tuned.parameters(), start.parameters(), strict=True))
    pairs = make_enhance_pairs(
        IMG, n_patches=16, region=(0.75, 1.0), input_size=16, guard=False, seed=8, pixel_scale=0.0662, kind="intensity"
    )
    with torch.inference_mode():
        x, y = torch.from_numpy(pairs.inputs), torch.from_numpy(pairs.targets)
        assert float(torch.nn.functional.mse_loss(tuned(x), y)) < float(torch.nn.functional.mse_loss(start(x), y))
    train_enhance(IMG, epochs=1, model=copy.deepcopy(start), checkpoint_dir=tmp_path, **kw)
    resumed, hist_resumed = train_enhance(IMG, epochs=2, model=copy.deepcopy(start), checkpoint_dir=tmp_path, **kw)
    assert hist_resumed["val_loss"] == pytest.approx(hist["val_loss"], rel=1e-6)
    with torch.inference_mode():
        torch.testing.assert_close(resumed(x), tuned(x), rtol=1e-5, atol=1e-6)


def test_cli_train_enhance(tmp_path):
    np.save(tmp_path / "sim.npy", IMG * 7.0)
    out = tmp_path / "mine.pt"
    cmd = [
        sys.executable,
        "-m",
        "sunpy_nn.cli",
        "train-enhance",
        str(tmp_path / "sim.npy"),
        "--kind",
        "intensity",
        "--pixel-scale",
        "0.0662",
        "--normalise",
        "mean",
        "-o",
        str(out),
        "--epochs",
        "1",
        "--patches",
        "16",
        "--validation",
        "8",
        "--input-size",
        "16",
        "--validation-size",
        "16",
        "--depth",
        "1",
        "--filters",
        "4",
        "--seed",
        "0",
        "-q",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    model, info = load_weights(out, architecture=EnhanceNet)
    assert (model.depth, model.n_filters) == (1, 4) and info.card["kind"] == "intensity"


def test_synthetic_blos_is_physical():
    b = synthetic_blos(IMG, 0.0662, plage=0.3, sunspot=True, seed=2)
    assert b.dtype == np.float32 and np.isfinite(b).all()
    assert 2.0 < np.abs(b).max() < 3.5  # sunspot umbra
    plage = synthetic_blos(IMG, 0.0662, plage=0.3, sunspot=False, seed=2)
    lanes = np.quantile(IMG, 0.3) > IMG  # 30 % of the area
    assert lanes[np.abs(plage) > 0.8].mean() > 0.6  # kG flux sits in intergranular lanes
    assert np.median(np.abs(plage)) < 0.1  # most of the area is weak internetwork
    assert np.abs(plage).max() <= 2.3  # 2 kG concentrations plus the weak field


def test_richardson_lucy_sharpens_a_blurred_source():
    truth = np.zeros((60, 60))
    truth[30, 30] = 1.0
    truth += 0.01
    psf = hmi_psf(0.252, shape=(35, 35))
    blurred = degrade(truth, 0.252, psf, 0.252)
    out = richardson_lucy(blurred, psf=psf, iterations=30, upsample=1)
    assert out[30, 30] > 3 * blurred[30, 30]
    assert out.sum() == pytest.approx(blurred.sum(), rel=0.02)  # RL conserves flux


def test_richardson_lucy_signed_and_nan():
    rng = np.random.default_rng(0)
    b = rng.normal(0, 0.3, (40, 40))
    b[:3, :3] = np.nan
    out = richardson_lucy(b, iterations=5)
    assert out.shape == (80, 80) and np.isnan(out[:6, :6]).all() and np.isfinite(out[6:, 6:]).all()
    assert np.nanmean(out) == pytest.approx(np.nanmean(b), abs=0.02)
