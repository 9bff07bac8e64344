"""
enhance_map and the weight registry against mismatched or corrupt input: the options of every map checked before
any map is read, normalisation="none" on data that are not I/Ic, weights of the other data kind, corrupt model
cards and weight files, the cache's network handed out, and a caller's network left as it was.
"""

import json

import astropy.units as u
import numpy as np
import pytest
import torch

import sunpy_nn.enhance._core as core
from sunpy_nn import WeightsError, enhance_map
from sunpy_nn.data import load_weights, save_weights
from sunpy_nn.enhance import load_enhance_model
from sunpy_nn.nn import EnhanceNet

from .helpers import assert_close_ulps, random_enhance_net
from .test_enhance_map import hmi_map

NET = random_enhance_net(depth=1, n_filters=8)


def _continuum(level=1.0):
    rng = np.random.default_rng(0)
    unit = u.ct / u.s if level > 10 else u.dimensionless_unscaled
    return hmi_map(level * (1 + 0.04 * rng.standard_normal((24, 24))), unit=unit)


def _field():
    return hmi_map(np.random.default_rng(1).normal(0, 300, (24, 24)), unit=u.G)


@pytest.fixture
def counted(monkeypatch):
    """How many maps reached the normalisation (the first work on a map's values)."""
    calls = []
    original = core.normalise
    monkeypatch.setattr(core, "normalise", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"normalisation": "quite_sun"}, "normalisation must be one of"),
        ({"precision": "fp32"}, "precision must be None or one of"),
        ({"device": "gpu0"}, "device must be None, 'cpu', 'cuda'"),
    ],
)
def test_a_wrong_option_is_refused_before_any_map_is_read(counted, option, message):
    maps = [_field(), _continuum(), _field()]
    for given in (maps, maps[0]):  # a batch, and one magnetogram (where the normalisation is always kG)
        with pytest.raises(ValueError, match=message):
            enhance_map(given, weights=NET, progress=False, **option)
    assert counted == []


def test_normalisation_none_refuses_a_continuum_image_that_is_not_i_over_ic():
    with pytest.raises(ValueError, match=r"takes the continuum image as I/Ic.*median is 5\.19.e\+04"):
        enhance_map(_continuum(52_000.0), kind="intensity", weights=NET, normalisation="none", progress=False)
    out = enhance_map(
        _continuum(), kind="intensity", weights=NET, normalisation="none", progress=False
    )  # I/Ic: accepted
    assert np.isfinite(out.data).all()


def _saved_net(tmp_path, kind, name="net"):
    path = tmp_path / f"{name}.pt"
    save_weights(NET, path, name=name, card={"kind": kind})
    return path


def test_weights_of_the_other_data_kind_are_refused(tmp_path):
    blos = _saved_net(tmp_path, "blos", "enhance_blos_test")
    with pytest.raises(WeightsError, match=r"trained on 'blos' data, and this map is 'intensity'"):
        enhance_map(_continuum(), kind="intensity", weights=blos, progress=False)
    assert enhance_map(_field(), weights=blos, progress=False).unit == u.G  # the right kind runs


@pytest.mark.parametrize(
    ("card_text", "message"),
    [("{not json", "Could not read the model card"), ("[1, 2]", "is not a JSON object but a list")],
)
def test_a_corrupt_model_card_raises_weights_error(tmp_path, card_text, message):
    path = _saved_net(tmp_path, "intensity")
    path.with_suffix(".json").write_text(card_text)
    with pytest.raises(WeightsError, match=message):
        load_weights(path, architecture=EnhanceNet)


@pytest.mark.parametrize("damage", ["no state_dict", "config a list"])
def test_a_weight_file_without_its_parts_raises_weights_error(tmp_path, damage):
    path = _saved_net(tmp_path, "intensity")
    blob = torch.load(path, weights_only=True)
    if damage == "no state_dict":
        del blob["state_dict"]
    else:
        blob["config"] = [1, 2]
    torch.save(blob, path)
    with pytest.raises(WeightsError, match="without a state_dict or with an architecture that is not a dict"):
        load_weights(path, architecture=EnhanceNet, verify=False)


def test_a_registered_model_card_without_its_sha256_is_refused(tmp_path, monkeypatch):
    path = _saved_net(tmp_path, "intensity", "enhance_intensity_v9")
    card = json.loads(path.with_suffix(".json").read_text())
    del card["sha256"]
    path.with_suffix(".json").write_text(json.dumps(card))
    monkeypatch.setenv("SUNPY_NN_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="has no sha256 to check the weights against"):
        load_weights("enhance_intensity_v9", architecture=EnhanceNet)


def test_the_cached_network_is_not_handed_out(tmp_path):
    path = _saved_net(tmp_path, "intensity")
    smap = _continuum()
    before = enhance_map(smap, kind="intensity", weights=path, progress=False)
    model, _ = load_enhance_model(path, "intensity")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)  # a caller's change to the network it was given
    after = enhance_map(smap, kind="intensity", weights=path, progress=False)
    assert_close_ulps(after.data, before.data)  # (halving the weights would move it by far more)
    assert after.meta["snnsha"] == before.meta["snnsha"]


def test_a_callers_network_in_training_mode_is_left_in_training_mode():
    net = random_enhance_net(depth=1, n_filters=8).train()
    model, _ = load_weights(net, architecture=EnhanceNet)
    assert net.training and not model.training
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), model.state_dict().values(), strict=True))
    enhance_map(_continuum(), kind="intensity", weights=net, progress=False)
    assert net.training
