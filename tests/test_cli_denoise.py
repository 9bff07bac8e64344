"""``sunpy-nn denoise`` reads its cube once, lazily, also in temporal mode (issues 14, 15)."""

import ast
import gzip
import logging

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from ndcube import NDCube

import sunpy_nn.io
from sunpy_nn import Denoiser
from sunpy_nn.cli import main
from sunpy_nn.io import read_crisp, write_crisp

from .test_denoise import TRUTH, noisy_cube

TRAIN = ["--epochs", "1", "--patches", "10", "--patch-size", "16", "--seed", "0", "-q"]


@pytest.fixture
def crisp_fits(tmp_path):
    """Three scans with an uncertainty and a mask, in the SOLARNET layout."""
    cube = noisy_cube(TRUTH[:3, :, :1, :24, :24])
    mask = np.zeros(cube.data.shape, bool)
    mask[:, :, :, 2:4, 5:7] = True
    sigma = np.random.default_rng(3).uniform(2e-3, 4e-3, cube.data.shape).astype(np.float32)
    cube = NDCube(cube.data, wcs=cube.wcs, uncertainty=StdDevUncertainty(sigma), mask=mask, unit=cube.unit)
    cube.wcs.wcs.dateobs = "2020-06-01T08:00:00"
    return write_crisp(cube, tmp_path / "in.fits")


@pytest.fixture
def reads(monkeypatch):
    """The files `read_crisp` is called on (the command line imports it from sunpy_nn.io when it runs)."""
    calls = []

    def counting(path, *args, **kwargs):
        calls.append((str(path), kwargs.get("lazy")))
        return read_crisp(path, *args, **kwargs)

    monkeypatch.setattr(sunpy_nn.io, "read_crisp", counting)
    return calls


@pytest.mark.parametrize(
    ("options", "lazy"),
    [
        (["--temporal", "auto"], "dask"),  # the number of scans decides
        (["--temporal", "1"], "dask"),  # temporal mode trains on stacks of scans and predicts scan by scan
        ([], "dask"),
    ],
)
def test_the_cube_is_read_once(tmp_path, crisp_fits, reads, options, lazy):
    assert main(["denoise", str(crisp_fits), "-o", str(tmp_path / "out.fits"), *TRAIN, *options]) == 0
    assert reads == [(str(crisp_fits), lazy)]


def test_a_trained_temporal_denoiser_predicts_the_cube_lazily(tmp_path, crisp_fits, reads):
    """With ``--denoiser``, temporal mode needs no training, and prediction goes scan by scan: the cube is read
    once, lazily, and the result is the in-memory prediction's."""
    cube = read_crisp(crisp_fits, lazy=False)
    den = Denoiser(n_filters=4, depth=1, temporal=1).fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, seed=0)
    path = den.save(tmp_path / "temporal.pt")
    reads.clear()
    out = tmp_path / "out.fits"
    assert main(["denoise", str(crisp_fits), "-o", str(out), "--denoiser", str(path), "-q"]) == 0
    assert reads == [(str(crisp_fits), "dask")]
    want = den.predict(cube, progress=False)
    got = read_crisp(out, lazy=False)
    scale = np.nanmax(np.abs(want.data))
    np.testing.assert_allclose(got.data, want.data, rtol=0, atol=1e-5 * scale)


def _in_memory(cube):
    """
    A dask-backed cube of `read_crisp` with its data, uncertainty and mask computed: it must be the cube that
    ``read_crisp(lazy=False)`` gives.
    """
    import dask
    import numpy as np
    from ndcube import NDCube

    unc = cube.uncertainty
    data, unc_array, mask = dask.compute(cube.data, None if unc is None else unc.array, cube.mask)
    data = np.asarray(data, dtype=data.dtype.newbyteorder("="))  # as read_crisp: in the machine's byte order
    if unc is not None:
        unc = type(unc)(np.asarray(unc_array, dtype=unc_array.dtype.newbyteorder("=")), unit=unc.unit)
    return cube.to_nddata(data=data, uncertainty=unc, mask=mask, nddata_type=NDCube)


def assert_same_cube(a: NDCube, b: NDCube) -> None:
    for x, y in ((a.data, b.data), (a.uncertainty.array, b.uncertainty.array), (a.mask, b.mask)):
        assert type(x) is type(y) is np.ndarray and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    assert type(a.uncertainty) is type(b.uncertainty) and a.uncertainty.unit == b.uncertainty.unit
    assert a.unit == b.unit and a.meta == b.meta and a.wcs.to_header() == b.wcs.to_header()


@pytest.mark.parametrize("compress", [False, True])
def test_the_lazy_cube_computed_is_the_cube_read_in_memory(tmp_path, crisp_fits, compress):
    path = crisp_fits
    if compress:  # astropy decompresses a .fits.gz into memory, and lazy="dask" wraps that array
        path = tmp_path / "in.fits.gz"
        path.write_bytes(gzip.compress(crisp_fits.read_bytes()))
    assert_same_cube(_in_memory(read_crisp(path, lazy="dask")), read_crisp(path, lazy=False))


def test_a_big_endian_lp_cube_computed_is_the_cube_read_in_memory(tmp_path):
    import dataclasses

    import astropy.units as u
    from astropy.time import Time

    from sunpy_nn.io import read_lp_header, write_lp

    data = np.asarray(noisy_cube(TRUTH[:2, :, :2, :16, :16]).data, dtype=np.float32)
    path = write_lp(data, tmp_path / "c.fcube")
    # the same cube with big-endian values, as an LP header may say (write_lp writes little-endian)
    raw = path.read_bytes()
    header = dataclasses.replace(read_lp_header(path), endian="b")
    values = np.frombuffer(raw[512:], dtype="<f4").astype(">f4")
    path.write_bytes(header.to_bytes() + values.tobytes())
    kw = {"wavelengths": [854.1, 854.2] * u.nm, "times": Time("2020-06-01T08:00:00") + [0, 30] * u.s}
    kw["pixel_scale"] = 0.059 * u.arcsec
    lazy, eager = read_crisp(path, lazy="dask", **kw), read_crisp(path, lazy=False, **kw)
    assert lazy.data.dtype == np.float32 and lazy.data.dtype.isnative  # converted frame by frame as it is read
    computed = _in_memory(lazy)
    assert computed.data.dtype == eager.data.dtype and computed.data.dtype.isnative
    np.testing.assert_array_equal(computed.data, eager.data)
    np.testing.assert_array_equal(computed.data, data)
    assert computed.uncertainty is None and computed.mask is None and computed.meta == eager.meta


def test_the_output_is_the_same_as_from_the_python_api(tmp_path, crisp_fits):
    # --temporal auto (3 scans: temporal=1) against the Python API on the cube read as the command reads it (lazily:
    # a lazy fit draws its patches from a pool, another network than from the cube in memory)
    assert main(["denoise", str(crisp_fits), "-o", str(tmp_path / "out.fits"), *TRAIN, "--temporal", "auto"]) == 0
    cube = read_crisp(crisp_fits, lazy="dask")
    den = Denoiser(temporal=1).fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, seed=0, progress=False)
    expected = den.predict(read_crisp(crisp_fits, lazy=False), seed=0, progress=False)
    with fits.open(tmp_path / "out.fits") as hdul:
        scale = np.nanmax(np.abs(expected.data))
        np.testing.assert_allclose(hdul[0].data, expected.data, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(hdul["UNCERT"].data, expected.uncertainty.array, rtol=1e-6)


def test_the_written_history_says_each_thing_once(tmp_path, crisp_fits, caplog):
    out = tmp_path / "out.fits"
    with caplog.at_level(logging.INFO, logger="sunpy_nn.denoise._denoise_cube"):
        assert main(["denoise", str(crisp_fits), "-o", str(out), *TRAIN]) == 0
    assert "temporal=0 asks for single-scan mode" in caplog.text  # the temporal default's cost is logged, as by the API
    with fits.open(out) as hdul:
        history = [str(card) for card in hdul[0].header.get("HISTORY", [])]
    assert sum("sunpy_nn software:" in line for line in history) == 1
    assert sum("sunpy_nn method: Noise2Noise" in line for line in history) == 1
    assert sum("sunpy_nn mode:" in line for line in history) == 1
    assert "sunpy_nn temporal: 1" in history  # no --temporal: auto_temporal's choice for three scans, as the API's
    assert not any("Noise2Noise denoising (" in line for line in history)  # the CLI's own summary repeated it all


def test_a_cube_the_writer_cannot_write_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """A wideband series (no wavelength axis) trained for minutes, then failed in write_crisp (a new user)."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=3)
    wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "UTC"]
    wcs.wcs.cunit = ["arcsec", "arcsec", "s"]
    wcs.wcs.cdelt = [0.06, 0.06, 20.0]
    wcs.wcs.dateobs = "2020-06-01T08:00:00"
    data = 1 + 3e-3 * np.random.default_rng(0).standard_normal((4, 32, 32)).astype(np.float32)
    fits.writeto(tmp_path / "wb.fits", data, wcs.to_header())
    monkeypatch.setattr(Denoiser, "fit", lambda *a, **k: pytest.fail("trained before the output was known writable"))
    rc = main(["denoise", str(tmp_path / "wb.fits"), "-o", str(tmp_path / "out.fits"), "--stokes", "all", *TRAIN])
    err = capsys.readouterr().err
    assert rc == 2 and "needs the wavelength of every tuning" in err and "add a wavelength axis to the WCS" in err
    assert "sunpy_nn.denoise_cube" in err  # the command line adds the Python way
    assert not (tmp_path / "out.fits").exists()


@pytest.mark.parametrize(
    ("name", "extra", "says"),
    [
        ("out.icube", [], "an .icube holds 16-bit integers and the denoised values are not integers"),
        ("out.fcube", [], "no place for the uncertainty; write a .fits file to keep it, or pass --uncertainty none"),
    ],
)
def test_lp_outputs_that_would_lose_numbers_are_refused_before_training(
    tmp_path, capsys, monkeypatch, name, extra, says
):
    # a new user's .icube came out all zeros (I/Ic rounded), an .fcube without its uncertainty, both after training
    monkeypatch.setattr(Denoiser, "fit", lambda *a, **k: pytest.fail("trained before the output was refused"))
    rc = main(["denoise", str(tmp_path / "missing.fits"), "-o", str(tmp_path / name), *TRAIN])
    assert rc == 2 and says in capsys.readouterr().err


def test_an_fcube_without_uncertainty_and_the_cubes_own_noise_in_the_summary(tmp_path, crisp_fits, capsys):
    # the summary printed the denoiser's training noise: with --denoiser, another cube's levels
    den = Denoiser(n_filters=4, depth=1).fit(
        read_crisp(crisp_fits, lazy=False), epochs=1, patches_per_epoch=10, patch_size=16, seed=0, progress=False
    )
    den.save(tmp_path / "den.pt")
    cube = noisy_cube(TRUTH[:3, :, :1, :24, :24], seed=5)
    louder = NDCube(TRUTH[:3, :, :1, :24, :24] + 3 * (cube.data - TRUTH[:3, :, :1, :24, :24]), wcs=cube.wcs)
    louder.wcs.wcs.dateobs = "2020-06-01T08:00:00"
    loud = write_crisp(louder, tmp_path / "loud.fits")
    out = tmp_path / "out.fcube"
    assert (
        main(["denoise", str(loud), "-o", str(out), "--uncertainty", "none", "--denoiser", str(tmp_path / "den.pt")])
        == 0
    )
    assert read_crisp(out).uncertainty is None
    printed = ast.literal_eval(capsys.readouterr().out.split("noise levels ", 1)[1])  # the dict as printed
    for s in "QUV":
        assert printed[s] == pytest.approx(3 * den.noise[s], rel=0.25)  # this cube's noise, not the denoiser's


def test_spectral_pca_by_default_and_off_on_request(tmp_path, capsys):
    cube = noisy_cube(TRUTH[:3, :, :3, :24, :24])
    cube.wcs.wcs.dateobs = "2020-06-01T08:00:00"
    path = write_crisp(cube, tmp_path / "in3.fits")
    for options, expected in (([], True), (["--no-spectral-pca"], False)):
        out = tmp_path / f"out{len(options)}.fits"
        assert main(["denoise", str(path), "-o", str(out), *TRAIN, *options]) == 0
        with fits.open(out) as hdul:
            history = [str(card) for card in hdul[0].header.get("HISTORY", [])]
        # the eigenvalues of each Stokes parameter's components, or None
        assert any("sunpy_nn spectral_pca.V:" in line for line in history) is expected
        assert any("sunpy_nn spectral_pca: None" in line for line in history) is not expected
    code = main(["denoise", str(path), "-o", str(tmp_path / "x.fits"), "--denoiser", "d.pt", "--no-spectral-pca"])
    assert code != 0 and "--no-spectral-pca applies only when training" in capsys.readouterr().err


def test_no_align_trains_on_the_scans_as_they_are(tmp_path, capsys):
    cube = noisy_cube(TRUTH[:3, :, :3, :24, :24])
    cube.wcs.wcs.dateobs = "2020-06-01T08:00:00"
    path = write_crisp(cube, tmp_path / "in3.fits")
    for options, expected in (([], "True"), (["--no-align"], "False")):
        out = tmp_path / f"out{len(options)}.fits"
        assert main(["denoise", str(path), "-o", str(out), *TRAIN, *options]) == 0
        with fits.open(out) as hdul:
            history = [str(card) for card in hdul[0].header.get("HISTORY", [])]
        assert any(f"sunpy_nn align: {expected}" in line for line in history), [h for h in history if "align" in h]
    code = main(["denoise", str(path), "-o", str(tmp_path / "x.fits"), "--denoiser", "d.pt", "--no-align"])
    assert code != 0 and "--no-align applies only when training" in capsys.readouterr().err
