"""The Enhance weights that ship with sunpy_nn: registry, model cards, and behaviour on real HMI data."""

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits
from sunpy.coordinates import frames

from sunpy_nn import enhance_map
from sunpy_nn.data import WEIGHTS_DIR, available_models, model_card
from sunpy_nn.metrics import forward_consistency, rms_contrast
from sunpy_nn.utils import sha256sum

from .helpers import shared_file


@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_registered_with_model_card(kind):
    name = f"enhance_{kind}"
    assert {name, f"{name}_v1", f"{name}_v2"} <= set(available_models())
    assert model_card(name) == model_card(f"{name}_v2")  # the bare name is the newest version
    for version in (1, 2):
        card = model_card(f"{name}_v{version}")
        assert card["version"] == version
        assert card["sha256"] == sha256sum(WEIGHTS_DIR / f"{name}_v{version}.pt")
        assert card["architecture"] == {"architecture": "EnhanceNet", "depth": 5, "n_filters": 64}  # the paper's
        assert card["n_parameters"] == 445_249
        recipe = card["training_recipe"]
        assert (
            recipe["optimizer"] == "Adam"
            and recipe["loss"] == "MSE"
            and recipe["l2"] == {"intensity": 1e-6, "blos": 1e-5}[kind]
        )
        assert card["validation"]["best_val_mse"] > 0
    v1, v2 = model_card(f"{name}_v1"), model_card(f"{name}_v2")
    assert v1["training_recipe"]["train_pairs"]["region"] == [0.0, 0.75]
    # v2: real frames with held-out quarters, the randomised degradation and its ranges, fine-tuned from v1.
    assert {s["name"] for s in v2["training_data"]} >= (
        {"sst_sunspot", "imax_quiet_sun", "muram_quiet_sun"} if kind == "intensity" else {"gst_niris"}
    )
    assert v2["degradation"]["fill"] == [0.0, 1.0] and v2["degradation"]["psf_w"] == [1.8, 2.2]
    assert "v1" in v2["training_recipe"]["fine_tuned_from"] or "v2" in v2["training_recipe"]["fine_tuned_from"]


def hmi_map(data, unit):
    obs = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime="2014-03-01", observer="earth", frame=frames.Helioprojective)
    header = sunpy.map.make_fitswcs_header(
        data, obs, scale=[0.504, 0.504] * u.arcsec / u.pix, telescope="SDO/HMI", instrument="HMI_SIDE1", unit=unit
    )
    return sunpy.map.Map(data, header)


def test_real_quiet_sun_contrast_doubles():
    # The paper: HMI granulation contrast ~3.7 % rises to ~7 % after Enhance (target 6-8 %).
    qs = np.load(shared_file("enhance", "hmi_qs_continuum_130.npy")).astype(float)
    out = enhance_map(hmi_map(qs, u.ct / u.s), kind="intensity", normalisation="quiet_sun", progress=False)
    before, after = rms_contrast(qs), rms_contrast(out.data)
    assert before == pytest.approx(0.0375, abs=0.002)
    assert 0.06 <= after <= 0.08
    # The level and unit are kept: v2 changes the quiet-Sun mean by 0.003 % (v1 raises it by 0.26 %; the first v2,
    # fine-tuned with batch statistics, by 1.03 %).
    assert np.nanmean(out.data) == pytest.approx(qs.mean(), rel=0.002)
    assert out.meta["snnsha"] == model_card("enhance_intensity")["sha256"]


def test_real_sunspot_forward_consistency():
    ic = fits.getdata(shared_file("enhance", "hmi_continuum_sunspot_200.fits")).astype(float)
    out = enhance_map(hmi_map(ic, u.dimensionless_unscaled), kind="intensity", progress=False)
    mask = np.zeros(ic.shape, bool)
    mask[9:-9, 9:-9] = True
    assert forward_consistency(out.data, ic, mask=mask) < 0.03  # degraded back, it matches HMI to < 3 %


def test_real_magnetogram_flux_and_polarity():
    b = fits.getdata(shared_file("enhance", "hmi_blos_200.fits")).astype(float)
    out = enhance_map(hmi_map(b, u.G), progress=False)
    assert out.unit == u.G
    flux_ratio = np.abs(out.data).sum() / 4 / np.abs(b).sum()  # output pixels have a quarter of the area
    assert 0.9 <= flux_ratio <= 1.1
    strong = np.repeat(np.repeat(np.abs(b) > 500, 2, 0), 2, 1)
    same_sign = np.sign(out.data) == np.sign(np.repeat(np.repeat(b, 2, 0), 2, 1))
    assert same_sign[strong].mean() > 0.999  # no polarity flips in kG regions


def test_real_umbra_comes_out_darker():
    # Stray light from HMI's PSF wings fills umbrae; deconvolution must darken them, as Richardson-Lucy does
    # (issue 12: v1 brightened the darkest 1 % of this cut-out, 0.266 -> 0.272 I/Ic; v2 gives 0.246, RL 0.237).
    ic = fits.getdata(shared_file("enhance", "hmi_continuum_sunspot_200.fits")).astype(float)
    out = enhance_map(hmi_map(ic, u.dimensionless_unscaled), kind="intensity", normalisation="none", progress=False)
    up = np.repeat(np.repeat(ic, 2, 0), 2, 1)
    for q in (1.0, 0.1):
        darkest = up <= np.percentile(ic, q)
        assert out.data[darkest].mean() < up[darkest].mean() - 0.01


def test_flat_fields_keep_their_level():
    # A uniform scene is a fixed point of the degradation (unit-sum PSF): the network must return its level, at
    # umbral intensities too (the first v2 stage returned 0.294 for 0.2; the shipped v2 0.2003, 0.5002, 0.9997).
    from sunpy_nn.enhance import enhance_array, load_enhance_model

    net, _ = load_enhance_model(None, "intensity")
    for level in (0.2, 0.5, 1.0):
        out = enhance_array(np.full((40, 40), level), net, progress=False)
        assert out[20:60, 20:60].mean() == pytest.approx(level, abs=0.005)
