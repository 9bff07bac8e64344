"""
Denoiser files (issue 15): the weight format of `sunpy_nn.data`, files of the earlier format 1, bad files.

``tests/data/denoiser_format1.pt`` (and its model card) was written by ``Denoiser.save`` before the registry format:
``Denoiser(n_filters=4, depth=1).fit(format1_cube(), epochs=1, patches_per_epoch=10, patch_size=16, seed=0)``.
``denoiser_format1_v*.npy`` are its Stokes V prediction (data and uncertainty) of scan 1 of that cube, made by the code
that wrote the file.
"""

import builtins
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sunpy_nn import Denoiser, WeightsError
from sunpy_nn.data import load_weights, save_weights
from sunpy_nn.nn import EnhanceNet, UNet
from sunpy_nn.utils import sha256sum

from .test_denoise import TRUTH, noisy_cube

DATA = Path(__file__).parent / "data"
SETTINGS = (
    "mode",
    "n_wavelengths",
    "noise",
    "noise_methods",
    "noise_per_tuning",
    "noise_tunings",
    "temporal",
    "shuffle",
    "calibration",
    "calibration_tunings",
    "history",
)


def format1_cube():
    return noisy_cube(TRUTH[:3, :, :2, :32, :32])


@pytest.fixture
def format1(tmp_path):
    """A copy of the format-1 file and its model card (tests may damage it)."""
    for suffix in (".pt", ".json"):
        shutil.copy(DATA / f"denoiser_format1{suffix}", tmp_path / f"denoiser_format1{suffix}")
    return tmp_path / "denoiser_format1.pt"


@pytest.fixture(scope="module")
def small():
    return Denoiser(n_filters=4, depth=1).fit(
        format1_cube(), epochs=1, patches_per_epoch=10, patch_size=16, seed=0, progress=False
    )


@pytest.fixture
def reads(monkeypatch):
    """The names of the files opened for reading, in order (pathlib opens through io.open, torch through open)."""
    calls = []
    real = builtins.open

    def counting(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and "r" in mode:
            calls.append(Path(file).name)
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    monkeypatch.setattr(io, "open", counting)
    return calls


def predict(den, cube):
    out = den.predict(cube, uncertainty="total", mc_samples=2, seed=0, progress=False)
    return np.asarray(out.data), np.asarray(out.uncertainty.array)


def assert_same_denoiser(a: Denoiser, b: Denoiser) -> None:
    for name in SETTINGS:
        assert getattr(a, name) == getattr(b, name), name
    assert a.fit_settings == b.fit_settings and a.model.config == b.model.config
    for key, value in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[key], value, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ format 1
def test_format1_file_still_loads(format1):
    den = Denoiser.load(format1)
    card = json.loads(format1.with_suffix(".json").read_text())
    assert den.mode == "image" and den.temporal == 0 and den.shuffle == 1 and den.n_wavelengths == 2
    assert den.noise == card["noise"] and den.noise_methods == card["noise_methods"]
    assert den.calibration == card["uncertainty_calibration"] and den.fit_settings == card["training_recipe"]
    assert den.model.config == card["architecture"] and (den.n_filters, den.depth, den.residual) == (4, 1, True)
    assert den.source == {"file": "denoiser_format1.pt", "sha256": card["sha256"]}
    out = den.predict(format1_cube(), stokes=("V",), progress=False)
    # the prediction of the code that wrote the file (to float rounding: another CPU may sum in another order)
    # tolerance: 1e-5 of each output's own range (Stokes V crosses zero, so a relative tolerance alone fails there)
    ref = np.load(DATA / "denoiser_format1_v.npy")
    np.testing.assert_allclose(out.data[1, 3], ref, rtol=0, atol=1e-5 * np.ptp(ref))
    unc = np.load(DATA / "denoiser_format1_v_uncertainty.npy")
    np.testing.assert_allclose(out.uncertainty.array[1, 3], unc, rtol=0, atol=1e-5 * np.ptp(unc) + 1e-6 * unc.max())


def test_format1_file_saved_again_is_the_same_denoiser(format1, tmp_path):
    old = Denoiser.load(format1)
    path = old.save(tmp_path / "again" / "denoiser.pt")
    back = Denoiser.load(path)
    assert_same_denoiser(old, back)
    np.testing.assert_array_equal(predict(back, format1_cube())[0], predict(old, format1_cube())[0])
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == "sunpy_nn-weights" and blob["extra"]["format_version"] == 11


def test_format1_damaged_file_or_card(format1):
    card_path = format1.with_suffix(".json")
    data = bytearray(format1.read_bytes())
    data[len(data) // 2] ^= 0xFF
    format1.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"SHA-256 of .*denoiser_format1\.pt is [0-9a-f]{64}, but its model card"):
        Denoiser.load(format1)
    card_path.unlink()  # without its card, the damage is found when the file is read (or not at all)
    format1.write_bytes(format1.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="Could not read denoiser file"):
        Denoiser.load(format1)
    card_path.write_text("{not json")
    with pytest.raises(WeightsError, match=r"model card .*denoiser_format1\.json .* is not valid JSON"):
        Denoiser.load(format1)


def test_format1_file_of_another_network_is_refused(format1):
    # a tensor of the wrong shape is a WeightsError naming the file, as for every other weight file
    blob = torch.load(format1, weights_only=True)
    key = next(k for k in blob["state_dict"] if k.endswith("weight"))
    blob["state_dict"][key] = torch.zeros(1)
    format1.with_suffix(".json").unlink()
    torch.save(blob, format1)
    with pytest.raises(WeightsError, match=rf"denoiser_format1\.pt does not match UNet.*wrong shapes \['{key}'\]"):
        Denoiser.load(format1)


def test_format1_file_and_card_are_read_once(format1, reads):
    Denoiser.load(format1)
    assert sorted(reads) == ["denoiser_format1.json", "denoiser_format1.pt"]


# ------------------------------------------------------------------------------------------- registry format
def test_round_trip_gives_the_same_denoiser_and_predictions(small, tmp_path):
    path = small.save(tmp_path / "den.pt")
    back = Denoiser.load(path)
    assert_same_denoiser(small, back)
    cube = format1_cube()
    for a, b in zip(predict(small, cube), predict(back, cube), strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.provenance() == small.provenance()  # the same file, its SHA-256 and the weights' hash


def test_the_file_is_a_registry_weight_file(small, tmp_path):
    path = small.save(tmp_path / "den.pt")
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == sha256sum(path) and card["architecture"] == small.model.config
    assert card["format"] == "sunpy_nn-denoiser" and card["format_version"] == 11
    assert card["noise"] == small.noise and card["uncertainty_calibration"] == small.calibration
    assert card["uncertainty_calibration_per_tuning"] == (small.calibration_tunings or None)
    model, info = load_weights(path, architecture=UNet)
    assert isinstance(model, UNet) and info.sha256 == card["sha256"]
    assert info.extra["noise"] == small.noise
    # the losses in the hashed file, the epochs' wall-clock times in the card
    assert info.extra["history"] == {k: v for k, v in small.history.items() if k != "epoch_time"}
    assert card["epoch_time_s"] == small.history["epoch_time"]
    for key, value in small.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


def test_two_seeded_trainings_write_the_same_bytes(tmp_path):
    # The fix: the epochs' wall-clock times were in the hashed file, so the same seeded training gave another SHA-256
    first, again = (
        Denoiser(n_filters=4, depth=1).fit(
            format1_cube(), epochs=1, patches_per_epoch=10, patch_size=16, seed=0, progress=False
        )
        for _ in range(2)
    )
    again.history["epoch_time"] = [t + 1.0 for t in again.history["epoch_time"]]  # a slower machine, same training
    a, b = first.save(tmp_path / "a" / "den.pt"), again.save(tmp_path / "b" / "den.pt")
    assert sha256sum(a) == sha256sum(b)
    assert Denoiser.load(b).history == again.history  # the times come back from the card


def test_save_hashes_the_file_once(small, tmp_path, reads):
    path = small.save(tmp_path / "den.pt")
    assert reads.count("den.pt") == 1  # by save_weights, for the model card; save takes the hash from there
    assert small.source == {"file": "den.pt", "sha256": sha256sum(path)}


@pytest.mark.parametrize("card", [True, False])
def test_load_reads_the_file_and_its_card_once(small, tmp_path, reads, card):
    path = small.save(tmp_path / "den.pt")
    if not card:  # a file without a card is no more read twice (once to look for format 1, once as a weight file)
        path.with_suffix(".json").unlink()
    reads.clear()
    back = Denoiser.load(path)
    assert sorted(reads) == (["den.json", "den.pt"] if card else ["den.pt"])
    assert back.source == {"file": "den.pt", "sha256": sha256sum(path)} and back.noise == small.noise


def test_a_dot_in_the_name_is_kept(small, tmp_path):
    path = small.save(tmp_path / "model.v2")
    assert path == tmp_path / "model.v2.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.v2.json", "model.v2.pt"]
    for name in ("model.v2", "model.v2.pt"):
        assert Denoiser.load(tmp_path / name).source == {"file": "model.v2.pt", "sha256": sha256sum(path)}


def test_a_damaged_file_is_refused(small, tmp_path):
    path = small.save(tmp_path / "den.pt")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"SHA-256 of .*den\.pt is [0-9a-f]{64}, but its model card den\.json says"):
        Denoiser.load(path)
    path.with_suffix(".json").write_text("")
    with pytest.raises(WeightsError, match="not valid JSON"):
        Denoiser.load(path)


def test_files_that_hold_no_denoiser(small, tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        Denoiser.load(tmp_path / "none.pt")
    unet = save_weights(UNet(n_filters=4, variance_head=True), tmp_path / "unet.pt")
    with pytest.raises(WeightsError, match=r"unet\.pt holds a U-Net but no denoiser settings"):
        Denoiser.load(unet)
    enhance = save_weights(EnhanceNet(depth=1, n_filters=4), tmp_path / "enhance.pt")
    with pytest.raises(WeightsError, match="holds a EnhanceNet network, but a UNet is needed"):
        Denoiser.load(enhance)
    with pytest.raises(ValueError, match="Nothing to save"):
        Denoiser().save(tmp_path / "untrained.pt")
    # a denoiser file whose model card was lost still loads (nothing to check its SHA-256 against)
    path = small.save(tmp_path / "den.pt")
    path.with_suffix(".json").unlink()
    assert Denoiser.load(path).noise == small.noise


def test_a_file_without_its_card_keeps_one_time_per_epoch(small, tmp_path):
    path = small.save(tmp_path / "den.pt")
    path.with_suffix(".json").unlink()
    history = Denoiser.load(path).history
    assert len(history["epoch_time"]) == len(history["train_loss"]) and np.isnan(history["epoch_time"]).all()
