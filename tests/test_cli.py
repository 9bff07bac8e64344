import subprocess
import sys
import warnings

import astropy.units as u
import numpy as np
import pytest
import sunpy.data.test
import sunpy.map
from sunpy.map.sources import HMIMap

from sunpy_nn import SunpyNNUserWarning, enhance_map
from sunpy_nn.cli import main
from sunpy_nn.data import save_weights

from .helpers import random_enhance_net


@pytest.fixture
def hmi_file(tmp_path):
    smap = sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))
    path = tmp_path / "hmi.fits"
    smap.save(path)
    return path


def test_enhance_fits_round_trip(tmp_path, hmi_file, capsys):
    net = random_enhance_net(depth=1, n_filters=8)
    weights = save_weights(net, tmp_path / "w.pt")
    out = tmp_path / "big.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SunpyNNUserWarning)  # the test map is 20 arcsec/pix
        rc = main(["enhance", str(hmi_file), "-o", str(out), "--weights", str(weights), "--tile-size", "64", "-q"])
        expected = enhance_map(sunpy.map.Map(hmi_file), weights=weights, progress=False)
    assert rc == 0 and "100x100" in capsys.readouterr().out
    back = sunpy.map.Map(out)
    assert isinstance(back, HMIMap) and back.measurement == "continuum"
    assert back.data.shape == (200, 200)
    np.testing.assert_allclose(back.data, expected.data, rtol=1e-6, equal_nan=True)
    src = sunpy.map.Map(hmi_file)
    for x, y in [(-0.5, -0.5), (99.5, 99.5), (12.3, 80.1)]:
        sep = src.wcs.pixel_to_world(x, y).separation(back.wcs.pixel_to_world(2 * x + 0.5, 2 * y + 0.5))
        assert sep < 1e-6 * u.arcsec
    assert back.meta["snnmodel"] == "w" and back.meta["snnsha"] == expected.meta["snnsha"]
    # refuses to overwrite without --overwrite
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["enhance", str(hmi_file), "-o", str(out), "--weights", str(weights)])


def test_errors_are_reported_not_raised(tmp_path, hmi_file, capsys, monkeypatch):
    monkeypatch.setenv("SUNPY_NN_WEIGHTS_DIR", str(tmp_path))
    rc = main(["enhance", str(hmi_file), "-o", str(tmp_path / "o.fits"), "--weights", str(tmp_path / "none.pt")])
    assert rc == 2 and "none.pt does not exist" in capsys.readouterr().err


def test_console_script_help():
    res = subprocess.run([sys.executable, "-m", "sunpy_nn.cli", "enhance", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--tile-size" in res.stdout and "--kind" in res.stdout
