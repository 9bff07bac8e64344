import logging
import subprocess
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import sunpy.data.test
import sunpy.map
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from sunpy.map.sources import HMIMap

from sunpy_nn import SunpyNNUserWarning, enhance_map
from sunpy_nn.cli import main
from sunpy_nn.data import save_weights

from .helpers import random_enhance_net
from .test_enhance_map import hmi_map


@pytest.fixture
def hmi_file(tmp_path):
    smap = sunpy.map.Map(sunpy.data.test.get_test_filepath("resampled_hmi.fits"))
    path = tmp_path / "hmi.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # the real HMI header's BLANK on float data, kept on purpose
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
    # refuses to overwrite without --overwrite: an error line and exit status 2, as every other error
    capsys.readouterr()
    assert main(["enhance", str(hmi_file), "-o", str(out), "--weights", str(weights)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_enhance_checks_its_output_before_the_map_is_read(tmp_path, hmi_file, capsys, monkeypatch):
    """A new user's -o nodir/out.fits, -o out.png or a folder failed only after the map was enhanced."""
    import sunpy.map as smap_module

    read = []
    monkeypatch.setattr(smap_module, "Map", lambda *a, **k: read.append(a) or pytest.fail("the map was read"))
    (tmp_path / "adir").mkdir()
    for output, message in [
        (tmp_path / "nodir" / "out.fits", "does not exist; create it first"),
        (tmp_path / "out.png", "give it the extension .fits"),
        (tmp_path / "adir", "is a folder: give the output file's name"),
    ]:
        assert main(["enhance", str(hmi_file), "-o", str(output), "--overwrite"]) == 2
        assert message in capsys.readouterr().err
    assert (
        main(["enhance", str(tmp_path / "adir")]) == 2 and "is a folder: give one FITS file" in capsys.readouterr().err
    )
    assert not read


def test_enhance_without_a_wcs_or_a_gpu_is_an_error_line_not_a_traceback(tmp_path, capsys):
    from astropy.io import fits

    plain = tmp_path / "plain.fits"
    fits.writeto(plain, np.ones((32, 32), np.float32))  # no WCS: sunpy's MapMetaValidationError
    assert main(["enhance", str(plain), "-o", str(tmp_path / "o.fits")]) == 2
    assert "sunpy-nn enhance: error:" in capsys.readouterr().err


def test_errors_are_reported_not_raised(tmp_path, hmi_file, capsys, monkeypatch):
    monkeypatch.setenv("SUNPY_NN_WEIGHTS_DIR", str(tmp_path))
    rc = main(["enhance", str(hmi_file), "-o", str(tmp_path / "o.fits"), "--weights", str(tmp_path / "none.pt")])
    assert rc == 2 and "none.pt does not exist" in capsys.readouterr().err


def test_console_script_help():
    res = subprocess.run([sys.executable, "-m", "sunpy_nn.cli", "enhance", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--tile-size" in res.stdout and "--kind" in res.stdout


# ------------------------------------------------------------------------------- warnings and wording (issue 13)
def test_each_warning_printed_once_and_no_blank_warning(tmp_path, hmi_file):
    # The real command, in a fresh interpreter: sunpy's logger and a root logging handler used to print every
    # warning twice, and saving the float output warned about the integer-only BLANK keyword.
    weights = save_weights(random_enhance_net(depth=1, n_filters=8), tmp_path / "w.pt")
    out = tmp_path / "big.fits"
    command = ["enhance", str(hmi_file), "-o", str(out), "--weights", str(weights), "-q"]
    res = subprocess.run(
        [sys.executable, "-m", "sunpy_nn.cli", *command],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("20.66 arcsec/pix") == 1, res.stderr
    assert "sunpy-nn enhance: warning: SunpyNNUserWarning: The pixel scale is 20.66" in res.stderr
    assert "BLANK" not in res.stderr


def continuum_labelled_gauss(path):
    data = 1 + 0.04 * np.random.default_rng(0).standard_normal((40, 40))
    smap = sunpy.map.Map(data, hmi_map(data, unit=u.G).meta)
    smap.save(path)
    return path


def test_messages_name_the_command_line_options(tmp_path, capsys):
    weights = str(save_weights(random_enhance_net(depth=1, n_filters=8), tmp_path / "w.pt"))
    path = str(continuum_labelled_gauss(tmp_path / "c.fits"))
    logger = logging.getLogger("sunpy_nn")
    before = (list(logger.handlers), logger.level, logger.propagate)
    rc = main(["enhance", path, "-o", str(tmp_path / "o.fits"), "--weights", weights, "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "looks like a continuum image" in err and "pass --kind intensity" in err
    assert "kind=" not in err
    # with --kind blos it is the user's word: a warning, printed once, in the command line's words
    rc = main(["enhance", path, "-o", str(tmp_path / "o.fits"), "--weights", weights, "--kind", "blos", "-q"])
    err = capsys.readouterr().err
    assert rc == 0 and err.count("looks like a continuum image") == 1
    assert "sunpy-nn enhance: warning: SunpyNNUserWarning:" in err and "(--kind blos)" in err and "kind=" not in err
    aia = sunpy.data.test.get_test_filepath("aia_171_level1.fits")
    assert main(["enhance", aia, "-o", str(tmp_path / "a.fits"), "--weights", weights, "-q"]) == 2
    err = capsys.readouterr().err
    assert "171 Angstrom" in err and "pass --kind intensity or --kind blos explicitly" in err
    assert (list(logger.handlers), logger.level, logger.propagate) == before  # main() leaves logging as it was


def test_cli_wording():
    from sunpy_nn.cli import _build_parser, _cli_wording, _option_names

    options = _option_names(_build_parser(), "enhance")
    assert options["tile_size"] == "--tile-size" and options["kind"] == "--kind"
    text = "Pass kind='intensity' or kind=\"blos\"; normalisation='quiet_sun'; weights= a file; meta['bunit'] = 'G'"
    assert _cli_wording(text, options) == (
        "Pass --kind intensity or --kind blos; --normalisation quiet_sun; --weights a file; meta['bunit'] = 'G'"
    )
    assert _cli_wording("sigma=3, kind='blos'", {}) == "sigma=3, kind='blos'"


def test_train_refuses_an_output_that_is_not_a_pt_file_before_training(tmp_path, capsys, monkeypatch):
    import sunpy_nn.training

    def no_training(*args, **kwargs):  # the refusal must come first
        raise AssertionError("trained before checking --output")

    monkeypatch.setattr(sunpy_nn.training, "train_enhance", no_training)
    image = tmp_path / "scene.npy"
    np.save(image, np.ones((64, 64), np.float32))
    args = ["train-enhance", str(image), "--kind", "intensity", "--pixel-scale", "0.06"]
    code = main([*args, "-o", str(tmp_path / "weights.h5")])
    assert code == 2
    assert "ends in .h5" in capsys.readouterr().err and not (tmp_path / "weights.h5.pt").exists()


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["demo"], 0),
        (["-v", "demo"], 1),
        (["demo", "-v"], 1),  # the fix: -v after the command was "unrecognized arguments"
        (["denoise", "-vv", "in.fits", "-o", "out.fits"], 2),
        (["-vv", "enhance", "in.fits"], 2),  # a -v before the command is kept
        (["-v", "demo", "-v"], 2),  # and added to one after it
    ],
)
def test_verbose_before_or_after_the_command(argv, level):
    from sunpy_nn.cli import _build_parser

    args = _build_parser().parse_args(argv)
    assert args.verbose + args.verbose_after == level


def test_main_logs_at_the_level_of_every_v(monkeypatch, tmp_path):
    import sunpy_nn.cli as cli

    seen = []
    real = cli._configure_logging
    monkeypatch.setattr(cli, "_configure_logging", lambda verbose: seen.append(verbose) or real(verbose))
    missing = str(tmp_path / "missing.fits")
    assert cli.main(["-v", "enhance", missing, "-o", str(tmp_path / "o.fits"), "-v"]) == 2  # the file is missing
    assert seen == [2]


def test_enhance_names_a_cube_given_as_a_map(tmp_path, capsys):
    # sunpy kept the first frame of a 5-D CRISP file; the error then said only that the kind was unclear
    from sunpy_nn.cli import main
    from sunpy_nn.data.synthetic import synthetic_crisp_cube
    from sunpy_nn.io import write_crisp

    cube, _ = synthetic_crisp_cube(16, n_wavelengths=2, n_scans=2, seed=0)
    path = write_crisp(cube, tmp_path / "crisp.fits")
    assert main(["enhance", str(path), "-o", str(tmp_path / "out.fits")]) == 2
    err = capsys.readouterr().err
    assert "holds an array of 5 dimensions (a cube?)" in err and "use sunpy-nn denoise" in err
    assert not (tmp_path / "out.fits").exists()


def test_enhance_takes_one_image_stored_with_a_length_1_axis(tmp_path, hmi_file):
    # (1, ny, nx): sunpy warns that it truncates, but nothing is lost, so it is not refused as a cube
    with fits.open(hmi_file) as hdul:
        hdu = hdul[-1]
        header = hdu.header.copy()
        data = hdu.data[None]
    header["NAXIS"], header["NAXIS3"] = 3, 1
    fits.writeto(tmp_path / "one.fits", data, header)
    weights = save_weights(random_enhance_net(depth=1, n_filters=8), tmp_path / "w.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["enhance", str(tmp_path / "one.fits"), "-o", str(tmp_path / "out.fits"), "--weights", str(weights)])
    assert rc == 0 and sunpy.map.Map(tmp_path / "out.fits").data.shape == (200, 200)
