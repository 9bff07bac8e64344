"""FITS files that are not one 2-D map: the command line says so in one error line, without a traceback."""

import warnings

import numpy as np
import pytest
import sunpy.data.test
import sunpy.map
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from sunpy_nn.cli import main


@pytest.fixture
def layouts(tmp_path):
    """A file with two 2-D image HDUs (sunpy.map.Map gives a list) and one with a table HDU only."""
    smap = sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # the real HMI header's BLANK on float data
        smap.save(tmp_path / "hmi.fits")
        with fits.open(tmp_path / "hmi.fits") as hdul:
            data, header = hdul[0].data.copy(), hdul[0].header.copy()
        fits.HDUList([fits.PrimaryHDU(data, header), fits.ImageHDU(data, header)]).writeto(tmp_path / "two.fits")
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.arange(3.0))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    return tmp_path


def error_lines(err: str, command: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith(f"sunpy-nn {command}: error: ")]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("two.fits", "holds 2 images; pass one file per image, or extract the HDU you want"),
        ("table.fits", "holds no image (only tables or 1-D data)"),
    ],
)
def test_enhance_reports_a_file_that_is_not_one_map(layouts, capsys, name, says):
    # two images: AttributeError 'list' object has no attribute 'meta'; a table only: sunpy's NoMapsInFileError
    out = layouts / "out.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["enhance", str(layouts / name), "-o", str(out)]) == 2
    lines = error_lines(capsys.readouterr().err, "enhance")
    assert len(lines) == 1 and says in lines[0] and str(layouts / name) in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("two.fits", "holds 2 images; pass one file per image, or extract the HDU you want"),
        ("table.fits", "holds no image (only tables or 1-D data)"),
    ],
)
def test_train_enhance_reports_a_file_that_is_not_one_map(layouts, capsys, monkeypatch, name, says):
    import sunpy_nn.training

    monkeypatch.setattr(sunpy_nn.training, "train_enhance", lambda *a, **k: pytest.fail("trained"))
    args = ["train-enhance", str(layouts / name), "--kind", "intensity", "-o", str(layouts / "w.pt")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 2
    lines = error_lines(capsys.readouterr().err, "train-enhance")
    assert len(lines) == 1 and says in lines[0]


def test_denoise_reports_a_file_without_an_image(layouts, capsys):
    # read_crisp already refuses it with a ValueError: one error line, as for enhance
    assert main(["denoise", str(layouts / "table.fits"), "-o", str(layouts / "out.fits")]) == 2
    lines = error_lines(capsys.readouterr().err, "denoise")
    assert len(lines) == 1 and "has no image HDU with at least two axes" in lines[0]
