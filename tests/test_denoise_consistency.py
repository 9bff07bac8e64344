"""
A denoiser's consistency with what it was trained on: the Stokes parameters it calibrated, a file whose settings do
not fit its network, a tuning missing in spectral mode, seeded warm starts, and an empty choice of Stokes parameters.
"""

import hashlib

import numpy as np
import pytest
import torch
from ndcube import NDCube

from sunpy_nn import Denoiser, WeightsError, denoise_cube

from .test_denoise import CUBE

QUICK = {"epochs": 1, "patches_per_epoch": 10, "patch_size": 16, "seed": 0, "progress": False}


@pytest.fixture(scope="module")
def v_only():
    return Denoiser(n_filters=4, depth=1, spectral_pca=False).fit(CUBE, stokes=("V",), **QUICK)


def test_stokes_parameters_not_trained_on_are_refused(v_only):
    # the noise levels of every Stokes parameter are measured; only V was trained on and calibrated
    assert set(v_only.noise) >= {"Q", "U", "V"}
    with pytest.raises(ValueError, match=r"trained and calibrated on Stokes \['V'\], not \['Q', 'U'\]"):
        v_only.predict(CUBE, progress=False)
    out = v_only.predict(CUBE, stokes=("V",), progress=False)
    assert np.array_equal(out.data[:, :3], CUBE.data[:, :3])  # the others come back as they were


@pytest.mark.parametrize("stokes", [(), ("V", "V")])
def test_an_empty_or_repeated_choice_of_stokes_is_refused_before_training(stokes):
    den = Denoiser(n_filters=4, depth=1)
    with pytest.raises(ValueError, match="stokes must name each Stokes parameter to denoise once"):
        den.fit(CUBE, stokes=stokes, **QUICK)
    assert den.model is None and den.noise == {}  # left as it was
    with pytest.raises(ValueError, match="stokes must name each Stokes parameter"):
        denoise_cube(CUBE, stokes=stokes, temporal=0, epochs=1, progress=False)


def _weights(den: Denoiser) -> str:
    return hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in den.model.state_dict().values())).hexdigest()


def test_a_seeded_warm_start_is_reproducible(v_only, tmp_path):
    path = tmp_path / "v.pt"
    v_only.save(path)
    runs = []
    for junk in (1, 2):
        torch.manual_seed(junk)  # torch's global random state differs before each warm start
        den = Denoiser.load(path).fit(CUBE, stokes=("V",), **QUICK)
        runs.append(_weights(den))
    assert runs[0] == runs[1]
    assert runs[0] != _weights(v_only)  # it did train


def _edited(den: Denoiser, tmp_path, name: str, **changes) -> str:
    """``den`` saved after ``changes`` to its settings (as an edited or corrupt file would hold them)."""
    den = Denoiser.load(_saved(den, tmp_path))
    for key, value in changes.items():
        setattr(den, key, value)
    path = tmp_path / f"{name}.pt"
    den.save(path)
    return path


def _saved(den, tmp_path):
    path = tmp_path / "original.pt"
    if not path.exists():
        den.save(path)
    return path


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("temporal", {"temporal": 2}, r"its network takes 1 and gives 1 channels, where .*temporal=2.* need 4 and 1"),
        ("spectral", {"mode": "spectral"}, r"mode='spectral'.* need 3 and 3"),
        ("noise", {"noise": {"I": 1.0, "Q": 3e-3, "U": 3e-3, "V": float("nan")}}, r"Stokes \['V'\] are not finite"),
        ("calibration", {"calibration": {"V": -1.0}}, r"Stokes \['V \(calibration\)'\]"),
        ("basis", {"spectral_basis": {"V": np.eye(2)}}, r"spectral basis of Stokes V is not a finite 3 x 3"),
        ("bins", {"calibration_bins": {"V": {"edges": [0.1, 0.2], "factors": [1.0]}}}, "calibration bins of Stokes V"),
        (
            "noise-channels",
            {"calibration_bins": {"V": {"head_edges": [0.1], "factors": [1.0, 1.0], "noise_channels": [3]}}},
            r"noise-only channels of Stokes V are not channel numbers below 3: \[3\]",
        ),
        (
            "weak-channels",
            {"calibration_bins": {"V": {"head_edges": [0.1], "factors": [1.0, 1.0], "weak_channels": [-1]}}},
            r"weak-signal channels of Stokes V are not channel numbers below 3: \[-1\]",
        ),
        (
            "both-kinds-of-quiet-channel",
            {
                "calibration_bins": {
                    "V": {"head_edges": [0.1], "factors": [1, 1], "noise_channels": [1], "weak_channels": [1]}
                }
            },
            "channels of Stokes V are both noise-only and weak-signal ones",
        ),
        (
            "weak-factor",
            {"calibration_bins": {"V": {"head_edges": [0.1], "factors": [1.0, 1.0], "weak_factor": 0.5}}},
            r"weak-signal factor of Stokes V is not a finite number of at least 1: 0.5",
        ),
        (
            "two-kinds-of-bins",
            {"calibration_bins": {"V": {"edges": [0.1], "head_edges": [0.1], "factors": [1.0, 1.0]}}},
            "calibration bins of Stokes V are not one set",
        ),
    ],
)
def test_a_file_whose_settings_do_not_fit_is_refused_at_load(v_only, tmp_path, name, changes, message):
    path = _edited(v_only, tmp_path, name, **changes)
    with pytest.raises(WeightsError, match=message):
        Denoiser.load(path)
    Denoiser.load(_saved(v_only, tmp_path))  # the file before the edit loads


def test_spectral_mode_keeps_the_tunings_a_missing_one_leaves():
    data = np.array(CUBE.data, copy=True)
    data[2, 3, 1, 10:14, 20:24] = np.nan  # V, one tuning of one scan
    cube = NDCube(data, wcs=CUBE.wcs, unit=CUBE.unit)
    den = Denoiser("spectral", n_filters=4, depth=1).fit(cube, **QUICK)
    out = den.predict(cube, progress=False)
    sd = out.uncertainty.array
    assert np.array_equal(np.isnan(out.data), np.isnan(data))  # NaN exactly where the input is
    assert np.array_equal(np.isnan(sd), np.isnan(data))
    # the valid tunings there are denoised (the missing one filled from its nearest valid pixels for the network)
    assert np.isfinite(out.data[2, 3, [0, 2], 10:14, 20:24]).all()


def test_spectral_mode_fills_a_missing_tuning_the_same_in_tiles_of_a_lazy_cube():
    da = pytest.importorskip("dask.array", reason="dask is an optional dependency: pip install 'sunpy-nn[dask]'")
    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    cube = synthetic_crisp_cube(size=256, n_wavelengths=3, n_scans=2, seed=0, drift=(0.0, 0.0))[0]
    den = Denoiser("spectral", n_filters=4, depth=1, align=False)
    den.fit(cube, **{**QUICK, "stokes": ("V",)}, val_fraction=0)
    data = np.array(cube.data, copy=True)
    data[:, 3, 1, :, :180] = np.nan  # one tuning of V missing over many tiles: a tile sees it missing throughout
    whole = den.predict(NDCube(data, wcs=cube.wcs, unit=cube.unit), stokes=("V",), progress=False)
    lazy = NDCube(da.from_array(data, chunks=(1, 1, 3, 256, 256)), wcs=cube.wcs, unit=cube.unit)
    tiled = den.predict(lazy, stokes=("V",), tile_size=32, progress=False)
    assert np.array_equal(np.isnan(np.asarray(tiled.data)), np.isnan(data))
    # to 1e-3 of the noise (3e-3): filled from each tile's own view, the tiles differed from the frame by 0.02 of it
    np.testing.assert_allclose(np.asarray(tiled.data)[:, 3], whole.data[:, 3], rtol=0, atol=3e-6)
