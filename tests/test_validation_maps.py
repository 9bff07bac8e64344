"""
The maps of the validation (`sunpy_nn.validation_maps`) and the training-checkpoint loader of `sunpy_nn.enhance`,
on inputs with known answers: a WCS built for a known disk centre, a SHARP-like compressed file written here, a
cut-out taken from a known place, a checkpoint saved here.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.io import fits

from sunpy_nn.enhance._models import load_training_checkpoint
from sunpy_nn.nn import EnhanceNet
from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC
from sunpy_nn.utils import WeightsError
from sunpy_nn.validation_maps import disk_geometry, hmi_cutout_map, locate_cutout, read_sharp


def test_hmi_cutout_map_puts_the_disk_centre_where_it_is_told():
    data = np.ones((40, 60))
    smap = hmi_cutout_map(data, u.dimensionless_unscaled, reference_pixel=(10.0, -500.0))
    scale, (xc, yc), radius = disk_geometry(smap)
    assert scale == pytest.approx(HMI_PIXEL_SCALE_ARCSEC)
    assert (xc, yc) == (pytest.approx(10.0), pytest.approx(-500.0))
    # the solar radius seen from Earth on 2014-01-01 (perihelion): about 975.9 arcsec
    assert radius * scale == pytest.approx(975.9, abs=0.5)
    assert smap.instrument.startswith("HMI") and smap.unit == u.dimensionless_unscaled
    centred = hmi_cutout_map(data, u.G)  # default: the array's centre, 0-based (29.5, 19.5)
    assert disk_geometry(centred)[1] == (pytest.approx(29.5), pytest.approx(19.5))


def test_read_sharp_reads_hdu_1_of_a_compressed_file(tmp_path):
    data = np.arange(12 * 16, dtype=np.float32).reshape(12, 16)
    header = hmi_cutout_map(data.astype(np.float64), u.G).wcs.to_header()
    path = tmp_path / "sharp.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)]).writeto(path)
    smap = read_sharp(path)
    assert smap.data.dtype == np.float64
    np.testing.assert_allclose(smap.data, data, atol=0.5)  # RICE quantises floats
    assert smap.scale[0].to_value(u.arcsec / u.pix) == pytest.approx(HMI_PIXEL_SCALE_ARCSEC)


def test_locate_cutout_finds_a_scaled_copy_and_its_place():
    big = np.random.default_rng(3).normal(size=(60, 70))
    m = locate_cutout(3.0 * big[17:41, 9:50] - 2.0, big)
    assert m["offset_yx_px"] == [17, 9]
    assert m["normalised_cross_correlation"] == pytest.approx(1.0, abs=1e-9)
    noisy = locate_cutout(big[17:41, 9:50] + np.random.default_rng(4).normal(size=(24, 41)), big)
    assert noisy["offset_yx_px"] == [17, 9]
    assert noisy["normalised_cross_correlation"] == pytest.approx(1 / np.sqrt(2), abs=0.05)  # signal = noise


def test_load_training_checkpoint_returns_the_best_state_and_its_history(tmp_path):
    torch.manual_seed(0)
    best = EnhanceNet(depth=5, n_filters=64)
    history = {"train_loss": [3.0, 2.0, 1.0], "val_loss": [2.5, 1.5, 1.8], "best_epoch": 2}
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "best_state": best.state_dict(), "history": history, "best_val": 1.5}, path)
    net, info = load_training_checkpoint(path)
    assert info == {"best_epoch": 2, "epochs_done": 3, "val_loss": [2.5, 1.5, 1.8]}
    assert not net.training
    for a, b in zip(net.state_dict().values(), best.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    torch.save(best.state_dict(), tmp_path / "weights.pt")  # a plain weight file is not a checkpoint
    with pytest.raises(WeightsError, match="best_state"):
        load_training_checkpoint(tmp_path / "weights.pt")
