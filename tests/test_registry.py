import json

import numpy as np
import pytest
import torch

from sunpy_nn.data import available_models, load_weights, model_card, save_weights
from sunpy_nn.enhance import load_enhance_model
from sunpy_nn.nn import EnhanceNet
from sunpy_nn.utils import WeightsError, sha256sum

from .helpers import random_enhance_net


def test_save_load_round_trip(tmp_path):
    net = random_enhance_net(depth=1, n_filters=8)
    path = save_weights(net, tmp_path / "mine.pt", card={"training_data": "test", "validation": {"mse": 0.1}})
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == sha256sum(path)
    assert card["architecture"] == {"architecture": "EnhanceNet", "depth": 1, "n_filters": 8}
    assert card["validation"] == {"mse": 0.1} and card["n_parameters"] == net.n_parameters
    back, info = load_weights(path, architecture=EnhanceNet)
    assert info.sha256 == card["sha256"] and info.name == "mine" and info.card["training_data"] == "test"
    x = torch.randn(1, 1, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)


def test_hash_mismatch_names_the_file(tmp_path):
    path = save_weights(random_enhance_net(depth=1, n_filters=8), tmp_path / "w.pt")
    card = json.loads(path.with_suffix(".json").read_text())
    card["sha256"] = "0" * 64
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=r"SHA-256 of .*w\.pt is [0-9a-f]{64}, but its model card"):
        load_weights(path, architecture=EnhanceNet)


def test_architecture_mismatch_lists_keys(tmp_path):
    net = random_enhance_net(depth=2, n_filters=8)
    path = tmp_path / "bare.pt"
    torch.save(net.state_dict(), path)  # a bare state_dict: the default architecture (depth 5, 64) is assumed
    with pytest.raises(WeightsError, match=r"bare\.pt does not match .*unexpected keys \[\].*wrong shapes") as err:
        load_weights(path, architecture=EnhanceNet)
    assert "blocks.2.conv1.weight" in str(err.value)  # a missing key is named


def test_corrupt_file(tmp_path):
    path = save_weights(random_enhance_net(depth=1, n_filters=8), tmp_path / "w.pt")
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(WeightsError, match="SHA-256"):
        load_weights(path, architecture=EnhanceNet)
    with pytest.raises(WeightsError, match=r"Could not read weight file .*corrupt"):
        load_weights(path, architecture=EnhanceNet, verify=False)


def test_missing_file_and_wrong_module():
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights("/nonexistent/w.pt", architecture=EnhanceNet)
    with pytest.raises(WeightsError, match="Linear"):
        load_weights(torch.nn.Linear(2, 2), architecture=EnhanceNet)


def test_no_registered_weights_gives_clear_error(monkeypatch, tmp_path):
    # An install without weight files (e.g. a stripped-down HPC install) must say what to do.
    monkeypatch.delenv("SUNPY_NN_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr("sunpy_nn.data.registry.WEIGHTS_DIR", tmp_path)
    assert available_models() == []
    with pytest.raises(WeightsError, match=r"ships no trained Enhance weights for kind='intensity'.*weights="):
        load_enhance_model(None, "intensity")


def test_weights_dir_override_registers_models(monkeypatch, tmp_path):
    net = random_enhance_net(depth=1, n_filters=8)
    save_weights(net, tmp_path / "enhance_blos.pt", card={"kind": "blos"})
    monkeypatch.setenv("SUNPY_NN_WEIGHTS_DIR", str(tmp_path))
    assert "enhance_blos" in available_models()
    assert model_card("enhance_blos")["kind"] == "blos"
    model, info = load_enhance_model(None, "blos")
    assert info.name == "enhance_blos" and info.sha256 == sha256sum(tmp_path / "enhance_blos.pt")
    x = torch.randn(1, 1, 12, 12)
    with torch.inference_mode():
        np.testing.assert_array_equal(model(x).numpy(), net(x).numpy())
    # tampering with a registered file is always caught
    (tmp_path / "enhance_blos.pt").write_bytes((tmp_path / "enhance_blos.pt").read_bytes() + b"x")
    with pytest.raises(WeightsError, match="SHA-256"):
        load_weights("enhance_blos", architecture=EnhanceNet, verify=False)


def test_unet_and_extra_settings_round_trip(tmp_path):
    from sunpy_nn.nn import UNet

    torch.manual_seed(0)
    net = UNet(2, 2, n_filters=4, depth=1, variance_head=True, residual=True, variance="softplus", dropout=0.01)
    extra = {"noise": {"Q": 0.1 + 0.2}, "history": [1.5, None], "name": "x"}
    path = save_weights(net, tmp_path / "unet.pt", extra=extra)
    back, info = load_weights(path, architecture=UNet)
    assert isinstance(back, UNet) and back.config == net.config and info.extra == extra
    x = torch.randn(1, 2, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(back(x), net.eval()(x), rtol=0, atol=0)
    # a file without extra settings (every Enhance file) gives an empty dict
    assert load_weights(save_weights(net, tmp_path / "plain.pt"), architecture=UNet)[1].extra == {}


def test_a_dot_in_the_weight_file_name_is_kept(tmp_path):
    path = save_weights(random_enhance_net(depth=1, n_filters=8), tmp_path / "enhance.v2")
    assert path == tmp_path / "enhance.v2.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enhance.v2.json", "enhance.v2.pt"]
    assert model_card(path)["file"] == "enhance.v2.pt"
