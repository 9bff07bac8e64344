"""``sunpy-nn demo`` (quick mode): both methods do what they claim on synthetic data, and the files are usable."""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.io import fits
from astropy.wcs import WCS

import sunpy_nn
from sunpy_nn.demo import run_demo
from sunpy_nn.io import read_crisp


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, quick=True, progress=False, device="cpu"), out


def test_enhance_beats_interpolation_on_the_continuum(demo):
    m = demo[0]["enhance"]["intensity"]
    psnr, ssim = m["psnr_db"], m["ssim"]
    # The shipped weights gain 6.5 dB over bicubic on held-out MURaM; this scene gives a similar gain.
    assert m["gain_db_over_bicubic"] > 4
    assert psnr["enhance"] > psnr["bicubic"] > psnr["nearest"]
    assert ssim["enhance"] > ssim["bicubic"] + 0.2
    c = m["rms_contrast"]
    # Deconvolution restores most of the contrast the PSF took away (about 4.5 % -> 9.5 %), without overshooting.
    assert c["enhance"] > 1.5 * c["input"] and c["enhance"] < 1.1 * c["truth"]
    assert c["bicubic"] < 1.1 * c["input"]


def test_enhance_on_the_magnetogram(demo):
    m = demo[0]["enhance"]["blos"]
    assert m["psnr_db"]["enhance"] > m["psnr_db"]["bicubic"]
    assert m["unsigned_flux_ratio_enhance_over_truth"] == pytest.approx(1.0, abs=0.1)


def test_denoising_reduces_the_error(demo):
    d = demo[0]["denoise"]
    noise = d["noise_injected"]
    for lab in ("Q", "U", "V"):
        assert d["noise_estimated_input"][lab] == pytest.approx(noise, rel=0.05)
        assert d["rms_error_noisy"][lab] == pytest.approx(noise, rel=0.05)
        assert d["error_reduction"][lab] > (2 if lab == "V" else 3)
        # The predicted uncertainty is of the size of the actual error, not of the input noise.
        assert 0.3 * d["rms_error_denoised"][lab] < d["mean_uncertainty"][lab] < 0.7 * noise
        assert 0.5 < d["fraction_within_1_sigma"][lab] < 1.0


def test_files_written_and_readable(demo):
    results, out = demo
    for name in results["files"]:
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["denoise"]["cube_shape"] == [3, 4, 5, 64, 64]
    assert summary["sunpy_nn_version"] == sunpy_nn.__version__  # which code made it (the docs page checks it)
    for name in ("enhance_continuum", "enhance_magnetogram", "denoise_stokes_v", "denoise_profiles"):
        data = (out / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000

    low = sunpy.map.Map(out / "enhance_continuum_input.fits")
    big = sunpy.map.Map(out / "enhance_continuum_enhanced.fits")
    truth = sunpy.map.Map(out / "enhance_continuum_truth.fits")
    assert type(big).__name__ == "HMIMap" and big.data.shape == (128, 128) == truth.data.shape
    assert u.allclose(big.scale.axis1, 0.252 * u.arcsec / u.pix)
    assert big.unit == u.DN / u.s and big.meta["snnkind"] == "intensity"
    # The enhanced map's pixels lie where the truth's do, and its outer edges where the input's do.
    for x, y in ((-0.5, -0.5), (127.5, 127.5), (40.0, 90.0)):
        assert big.wcs.pixel_to_world(x, y).separation(truth.wcs.pixel_to_world(x, y)).to_value(u.arcsec) < 1e-6
    corner = low.wcs.pixel_to_world(63.5, 63.5)
    assert big.wcs.pixel_to_world(127.5, 127.5).separation(corner).to_value(u.arcsec) < 1e-6
    # Round trip: the file holds what the demo measured.
    ref = truth.data[16:-16, 16:-16].astype(float)
    err = np.sqrt(np.mean((big.data[16:-16, 16:-16] - ref) ** 2))
    assert err == pytest.approx(results["enhance"]["intensity"]["rms_error"]["enhance"], rel=1e-4)

    with fits.open(out / "denoise_crisp_denoised.fits") as hdul:  # SSTRED's SOLARNET layout
        assert hdul[0].data.shape == hdul["UNCERT"].data.shape == (3, 4, 5, 64, 64)
        wcs = WCS(hdul[0].header, fobj=hdul)
        assert wcs.naxis == 5 and wcs.wcs.ctype[2] == "WAVE-TAB" and wcs.wcs.ctype[3] == "STOKES"
        assert np.all(hdul["UNCERT"].data[:, 1:] > 0)
    cube = read_crisp(out / "denoise_crisp_denoised.fits", lazy=False)
    assert cube.array_axis_physical_types[:3] == [("time",), ("phys.polarization.stokes",), ("em.wl",)]


def test_cli_passes_options(monkeypatch, tmp_path):
    import sunpy_nn.demo
    from sunpy_nn.cli import main

    seen = {}
    monkeypatch.setattr(sunpy_nn.demo, "run_demo", lambda out, **kw: seen.update(out=out, **kw))
    assert main(["demo", "-o", str(tmp_path), "--seed", "3", "--quick", "--device", "cpu", "-q"]) == 0
    assert seen == {"out": str(tmp_path), "seed": 3, "quick": True, "device": "cpu", "progress": False}


def test_the_report_says_what_its_columns_mean(demo, capsys):
    results, out = demo
    sunpy_nn.demo._print_report(results, out)
    text = capsys.readouterr().out
    # the coverage columns with their Gaussian reference, the unit of the errors, and Stokes I passed through
    assert "68 % and 95 % for Gaussian errors" in text and "units of the continuum intensity Ic" in text
    assert "Stokes I is not denoised" in text
    for lab in "QUV":
        reduction = results["denoise"]["error_reduction"][lab]
        assert f"{reduction:.1f}x" in text
