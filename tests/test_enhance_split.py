"""sunpy_nn.enhance as a package (issue #15): old names, the batch's weights resolved once, the lazy parallel shim."""

import importlib
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest

from sunpy_nn import SunpyNNUserWarning, enhance, enhance_map
from sunpy_nn.data import registry, save_weights
from sunpy_nn.enhance import _models

from .helpers import random_enhance_net
from .test_enhance_map import hmi_map

NET = random_enhance_net(depth=1, n_filters=4)


def blos_map(seed: int = 0):
    return hmi_map(np.random.default_rng(seed).normal(0, 300, (24, 24)), unit=u.G)


def continuum_map(seed: int = 0):
    return hmi_map(np.random.default_rng(seed).uniform(4e4, 6e4, (24, 24)), unit=u.DN / u.s)


# ------------------------------------------------------------------------------------------------------- old names
@pytest.mark.parametrize(
    "name",
    [
        *enhance.__all__,
        "enhance_batch",
        "MIN_SIZE",
        "_METHOD",
        "_MODELS",
        "_MAX_MODELS",
        "_MODELS_LOCK",
        "_MODEL_LOADS",
        "_EnhanceTask",
        "_apply_profile",
        "_check_map",
        "_check_values",
        "_disk_geometry",
        "_enhance_lazy",
        "_enhance_one",
        "_instrument_name",
        "_mirrored_axis",
        "_output_name",
        "_pixel_scale_arcsec",
        "_robust_level",
        "_weights_file",
    ],
)
def test_every_old_name_is_importable_from_sunpy_nn_enhance(name):
    assert hasattr(importlib.import_module("sunpy_nn.enhance"), name)


def test_the_model_cache_counts_loads_where_they_were_read():
    # tests and dask workers read and reset sunpy_nn.enhance._MODEL_LOADS; the cache's module counts there
    enhance._MODELS.clear()
    enhance._MODEL_LOADS = 0
    try:
        _models._count_load()
        assert enhance._MODEL_LOADS == 1
    finally:
        enhance._MODEL_LOADS = 0


def test_no_module_of_the_enhance_package_is_over_600_lines():
    package = Path(enhance.__file__).parent
    lengths = {p.name: len(p.read_text().splitlines()) for p in package.glob("*.py")}
    assert lengths and max(lengths.values()) <= 600, lengths


# ------------------------------------------------------------------------------------------ weights once per batch
def weights_io(monkeypatch, n_maps: int, weights, kind=None) -> Counter:
    """Registry look-ups and stat() calls on the weights while enhance_map runs a batch of ``n_maps`` maps."""
    counts: Counter = Counter()
    available, find, stat = _models.available_models, registry._find, Path.stat

    def counting_stat(self, *args, **kwargs):
        if self.suffix == ".pt":
            counts["stat"] += 1
        return stat(self, *args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(_models, "available_models", lambda: counts.update(["available_models"]) or available())
        mp.setattr(registry, "_find", lambda name: counts.update(["_find"]) or find(name))
        mp.setattr(Path, "stat", counting_stat)
        enhance._MODELS.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SunpyNNUserWarning)
            out = enhance_map(
                [blos_map(i) for i in range(n_maps)], weights=weights, kind=kind, scheduler="serial", progress=False
            )
    assert len(out) == n_maps
    return counts


def test_a_batch_resolves_registered_weights_once(monkeypatch, tmp_path):
    monkeypatch.setenv("SUNPY_NN_WEIGHTS_DIR", str(tmp_path))
    save_weights(NET, tmp_path / "enhance_blos.pt")
    two, six = weights_io(monkeypatch, 2, None), weights_io(monkeypatch, 6, None)
    assert two == six  # nothing per map: no registry glob, no _find, no stat of the file
    assert two["available_models"] <= len(enhance.KINDS) and two["_find"] <= len(enhance.KINDS)


def test_a_batch_stats_a_weight_file_once(monkeypatch, tmp_path):
    weights = save_weights(NET, tmp_path / "blos.pt")
    two, six = weights_io(monkeypatch, 2, weights, kind="blos"), weights_io(monkeypatch, 6, weights, kind="blos")
    assert two == six and two["available_models"] == two["_find"] == 0


def test_a_kind_without_weights_fails_only_its_maps(monkeypatch, tmp_path):
    # kind and weights from each map: the registered model of a kind that is missing fails that kind's maps alone
    monkeypatch.delenv("SUNPY_NN_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    save_weights(NET, tmp_path / "enhance_intensity.pt")
    with pytest.warns(SunpyNNUserWarning, match=r"WeightsError: .*no trained Enhance weights for kind='blos'"):
        out = enhance_map(
            [continuum_map(), blos_map(), continuum_map(1), blos_map(1)],
            scheduler="serial",
            errors="warn",
            progress=False,
        )
    assert [o.meta["snnkind"] for o in out] == ["intensity", "intensity"]


def test_enhance_batch_is_enhance_map_of_a_list(tmp_path):
    weights = save_weights(NET, tmp_path / "w.pt")
    maps = [blos_map(0), blos_map(1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SunpyNNUserWarning)
        batch = enhance.enhance_batch(iter(maps), weights=weights, device="cpu", progress=False)
        one = [enhance_map(m, weights=weights, device="cpu", progress=False) for m in maps]
    assert isinstance(batch, list) and enhance.enhance_batch([]) == []
    for a, b in zip(batch, one, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        assert a.meta == b.meta


# ------------------------------------------------------------------------------------------------------ detect_kind
def test_detect_kind_reads_the_wavelength_once(monkeypatch):
    from sunpy.map.sources import HMIMap

    smap = continuum_map()
    reads = Counter()
    wavelength = HMIMap.wavelength

    def counting(self):
        reads["wavelength"] += 1
        return wavelength.fget(self)

    monkeypatch.setattr(HMIMap, "wavelength", property(counting))
    assert enhance.detect_kind(smap) == "intensity"
    assert reads["wavelength"] == 1


# -------------------------------------------------------------------------------------------------- parallel shim
def test_importing_the_parallel_shim_loads_neither_torch_nor_sunpy_map():
    code = (
        "import sys, sunpy_nn.parallel as p\n"
        "assert 'torch' not in sys.modules and 'sunpy.map' not in sys.modules, 'eager import'\n"
        "assert {'BatchError', 'enhance_batch', 'is_dask', 'lazy_tiled', 'SCHEDULERS'} <= set(dir(p))\n"
        "p.BatchError\n"
        "assert 'torch' not in sys.modules, 'BatchError pulled in torch'\n"
        "from sunpy_nn.parallel import enhance_batch\n"
        "import sunpy_nn.enhance\n"
        "assert enhance_batch is sunpy_nn.enhance.enhance_batch\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_the_parallel_shim_refuses_unknown_names():
    from sunpy_nn import parallel

    with pytest.raises(AttributeError, match="no attribute 'run_tiled'"):
        parallel.run_tiled


def test_map_check_warnings_point_at_the_caller():
    import warnings

    from sunpy_nn import enhance_map
    from sunpy_nn.data.synthetic import synthetic_hmi_map

    smap = synthetic_hmi_map((32, 32), seed=0)[0]
    meta = smap.meta.copy()
    meta["cdelt1"] = meta["cdelt2"] = 1.0  # 1 arcsec/pix: far from HMI's 0.504, a _check_map warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enhance_map(smap._new_instance(smap.data, meta), progress=False)
    scale = [w for w in caught if "pixel scale" in str(w.message)]
    assert scale and scale[0].filename == __file__
