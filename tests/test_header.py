"""sunpy_nn.header: the one provenance convention of every result, and HISTORY in both kinds of header."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from sunpy.util import MetaDict

import sunpy_nn
from sunpy_nn import Denoiser, denoise_cube, enhance_map
from sunpy_nn.baselines import pca_denoise, richardson_lucy
from sunpy_nn.data import save_weights
from sunpy_nn.header import append_history, provenance, provenance_lines, store_provenance
from sunpy_nn.io import read_crisp, write_crisp
from sunpy_nn.utils import SunpyNNUserWarning, sha256sum

from .helpers import random_enhance_net
from .test_denoise import TRUTH, noisy_cube
from .test_enhance_map import hmi_map


def read_history(lines) -> dict:
    """The record back from HISTORY lines, as documented: ``sunpy_nn key: value``, long values continued."""
    lines = lines.splitlines() if isinstance(lines, str) else [str(h) for h in lines]
    record, key = {}, None
    for line in lines:
        if line.startswith("  ") and key:
            record[key] += line[2:]
        elif line.startswith("sunpy_nn ") and ":" in line and " " not in line[len("sunpy_nn ") :].partition(":")[0]:
            key, _, value = line[len("sunpy_nn ") :].partition(":")
            record[key] = value.strip()
        else:
            key = None  # another sentence (e.g. the one-line summary): not part of the record
    return record


def flat(record: dict, prefix: str = "") -> dict:
    """A record's dict with dotted keys and text values, as its HISTORY lines give it back."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict) and value:
            out |= flat(value, f"{prefix}{key}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out |= flat({str(i): v for i, v in enumerate(value)}, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The results of enhance_map, richardson_lucy, pca_denoise and write_crisp, each with its provenance record."""
    tmp = tmp_path_factory.mktemp("provenance")
    weights = save_weights(random_enhance_net(depth=1, n_filters=8), tmp / "prov_model.pt")
    smap = hmi_map(np.random.default_rng(0).normal(0, 300, (24, 24)), unit=u.G)
    cube = noisy_cube(TRUTH[:2, :, :2, :24, :24])
    cube.wcs.wcs.dateobs = "2020-06-01T08:00:00"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SunpyNNUserWarning)
        enhanced = enhance_map(smap, weights=weights, progress=False)
        deconvolved = richardson_lucy(smap, iterations=2)
    pca = pca_denoise(cube, stokes=("V",))
    pca_header = pca_denoise(type(cube)(cube.data, wcs=cube.wcs, meta=fits.Header({"OBSERVER": "SST"})), stokes=("V",))
    with fits.open(write_crisp(pca, tmp / "pca.fits")) as hdul:
        written = [str(h) for h in hdul[0].header["HISTORY"]]
    den = Denoiser(n_filters=8).fit(cube, epochs=1, patches_per_epoch=20, patch_size=16, seed=0, progress=False)
    den_file = den.save(tmp / "prov_denoiser")
    denoised = denoise_cube(cube, denoiser=Denoiser.load(den_file), progress=False)
    records = {
        "denoise_cube": flat(denoised.meta["sunpy_nn"]),
        "enhance_map": read_history(enhanced.meta["history"]),
        "richardson_lucy": read_history(deconvolved.meta["history"]),
        "pca_denoise": flat(pca.meta["sunpy_nn"]),
        "pca_denoise, FITS header": read_history(pca_header.meta["HISTORY"]),
        "write_crisp": read_history(written),
    }
    return {
        "records": records,
        "weights": weights,
        "enhanced": enhanced,
        "pca": pca,
        "written": written,
        "denoiser_file": den_file,
    }


def test_every_result_records_version_method_and_model_alike(results):
    records = results["records"]
    for name, record in records.items():
        assert list(record)[:2] == ["software", "method"], name  # the same record, in the same order
        assert record["software"] == f"sunpy_nn {sunpy_nn.__version__}", name
        assert record["method"], name
    # a model: its name and SHA-256, under the same keys wherever there is one
    enhance = records["enhance_map"]
    assert enhance["model.name"] == "prov_model" and enhance["model.sha256"] == sha256sum(results["weights"])
    assert enhance["method"].startswith("Enhance") and enhance["kind"] == "blos"
    denoised = records["denoise_cube"]
    assert denoised["model.name"] == "prov_denoiser"
    assert denoised["model.sha256"] == sha256sum(results["denoiser_file"])
    assert denoised["method"].startswith("Noise2Noise") and denoised["denoised_stokes"] == "['Q', 'U', 'V']"
    for name in ("richardson_lucy", "pca_denoise", "pca_denoise, FITS header", "write_crisp"):
        assert not any(key.startswith("model") for key in records[name]), name  # no network, no model entry
    assert records["richardson_lucy"]["iterations"] == "2"
    # the PCA record reads the same from a dict, from HISTORY cards and from the file written
    assert records["pca_denoise"] == records["pca_denoise, FITS header"] == records["write_crisp"]


def test_existing_provenance_is_kept(results):
    enhanced, pca = results["enhanced"], results["pca"]
    # Enhance: its machine-readable keywords, as documented (docs/guide/enhance.rst)
    assert enhanced.meta["snnvers"] == sunpy_nn.__version__ and enhanced.meta["snnmodel"] == "prov_model"
    assert enhanced.meta["snnsha"] == sha256sum(results["weights"])
    assert enhanced.meta["snnkind"] == "blos" and enhanced.meta["snnnorm"] == "kG"
    # PCA: meta["sunpy_nn"] with its method and components
    assert pca.meta["sunpy_nn"]["method"] == "PCA along wavelength" and "pca_components" in pca.meta["sunpy_nn"]
    # write_crisp: the line of the write, then the record
    assert results["written"][0] == f"written by sunpy_nn {sunpy_nn.__version__} write_crisp"
    assert all(len(line) <= 72 for line in results["written"])


def test_an_enhanced_map_history_says_each_thing_once(results):
    # one source: the provenance record is the whole HISTORY (its software and method lines are the summary)
    enhanced = results["enhanced"]
    history = enhanced.meta["history"]
    record = results["records"]["enhance_map"]
    assert history.splitlines() == provenance_lines(
        {
            "software": record["software"],
            "method": record["method"],
            "model": {"name": record["model.name"], "sha256": record["model.sha256"]},
            "kind": record["kind"],
            "normalisation": record["normalisation"],
        }
    )
    for value in (sunpy_nn.__version__, sha256sum(results["weights"]), "prov_model", "kG: divided by 1000"):
        assert history.count(value) == 1, value


def test_each_record_is_written_once(results):
    # read_history would merge a record written twice: count the first line instead
    enhanced = results["enhanced"].meta["history"].splitlines()
    assert sum(line.startswith("sunpy_nn software:") for line in enhanced) == 1
    assert sum(line.startswith("sunpy_nn software:") for line in results["written"]) == 1


def test_enhanced_map_with_its_provenance_saves_and_reads_back(results, tmp_path):
    import sunpy.map

    results["enhanced"].save(tmp_path / "e.fits")
    back = sunpy.map.Map(tmp_path / "e.fits")
    assert read_history(back.meta["history"]) == results["records"]["enhance_map"]


def test_provenance_goes_where_the_meta_holds_it():
    model = {"name": "crisp.pt", "sha256": "ab" * 32, "weights_sha256": "cd" * 32}
    plain, metadict, header = {}, MetaDict({"observer": "SST"}), fits.Header({"OBSERVER": "SST"})
    for meta in (plain, metadict, header):
        provenance(meta, method="Noise2Noise", model_info=model, settings={"temporal": 1})
    assert plain["sunpy_nn"] == {
        "software": f"sunpy_nn {sunpy_nn.__version__}",
        "method": "Noise2Noise",
        "model": model,
        "temporal": 1,
    }
    assert list(plain["sunpy_nn"]["model"]) == ["name", "sha256", "weights_sha256"]
    assert metadict["sunpy_nn"] == plain["sunpy_nn"]  # an NDCube's MetaDict holds the dict too
    # a FITS header: readable cards, the same record
    assert read_history(header["HISTORY"]) == flat(plain["sunpy_nn"])
    # a sunpy Map's meta (history=True): HISTORY lines, which Map.save writes
    map_meta = MetaDict({"history": "an earlier line"})
    provenance(map_meta, method="Noise2Noise", model_info=model, settings={"temporal": 1}, history=True)
    assert "sunpy_nn" not in map_meta and map_meta["history"].startswith("an earlier line\nsunpy_nn software: ")
    assert read_history(map_meta["history"]) == flat(plain["sunpy_nn"])


def test_provenance_refuses_what_it_cannot_record():
    with pytest.raises(ValueError, match="must not hold 'software'"):
        provenance({}, method="x", settings={"software": "other"})
    with pytest.raises(ValueError, match="'sha256'"):
        provenance({}, method="x", model_info={"name": "m"})
    with pytest.raises(TypeError, match="ModelInfo or a mapping"):
        provenance({}, method="x", model_info="m.pt")


def test_append_history_to_both_kinds_of_header():
    header = fits.Header()
    append_history(header, "one")
    append_history(header, "two")
    assert [str(h) for h in header["HISTORY"]] == ["one", "two"]  # one card each, nothing repeated
    meta = MetaDict()
    append_history(meta, "one")
    append_history(meta, "two")
    assert meta["history"] == "one\ntwo"


def test_store_provenance_falls_back_to_history_where_a_dict_is_refused():
    class FitsValuesOnly(dict):
        def __setitem__(self, key, value):
            if isinstance(value, dict):
                raise ValueError("only FITS values")
            super().__setitem__(key, value)

    meta = FitsValuesOnly()
    store_provenance(meta, {"software": "sunpy_nn x", "method": "m"})
    assert meta["history"] == "\n".join(provenance_lines({"software": "sunpy_nn x", "method": "m"}))


def test_read_crisp_of_a_written_file_keeps_the_history(results, tmp_path):
    back = read_crisp(write_crisp(results["pca"], tmp_path / "again.fits"))
    assert read_history(back.meta["HISTORY"]) == results["records"]["write_crisp"]


def test_a_list_of_records_gets_one_card_per_entry():
    # a denoiser's fits: numbered entries, each read back as its own keys, not one Python repr
    record = {"fit": {"fits": [{"epochs": 10, "precision": "float32"}, {"epochs": 1, "precision": "bfloat16"}]}}
    assert provenance_lines(record) == [
        "sunpy_nn fit.fits.0.epochs: 10",
        "sunpy_nn fit.fits.0.precision: float32",
        "sunpy_nn fit.fits.1.epochs: 1",
        "sunpy_nn fit.fits.1.precision: bfloat16",
    ]
    assert read_history(provenance_lines(record)) == flat(record)
    assert provenance_lines({"shifts": [[0.1, 0.2]]}) == ["sunpy_nn shifts: [[0.1, 0.2]]"]  # other lists as before


def test_long_values_break_between_words_and_read_back_exactly(tmp_path):
    value = "limb_darkening: divided by 59982.9 * (1 - 0.4236(1-mu) - 0.1988(1-mu)^2)"
    record = {"software": "sunpy_nn x", "method": "m", "normalisation": value, "sha256": "ab" * 32, "id": "x" * 150}
    lines = provenance_lines(record)
    assert lines[2:5] == [
        "sunpy_nn normalisation:",
        "  limb_darkening: divided by 59982.9 * (1 - 0.4236(1-mu) -",
        "   0.1988(1-mu)^2)",  # the space starts the piece: no number is cut
    ]
    assert all(len(line) <= 72 and not line.endswith(" ") for line in lines)
    # through a FITS file (which drops trailing blanks) the record reads back exactly
    header = fits.Header()
    store_provenance(header, record, history=True)
    fits.PrimaryHDU(header=header).writeto(tmp_path / "p.fits")
    back = read_history(fits.getheader(tmp_path / "p.fits")["HISTORY"])
    assert back == {key: str(v) for key, v in record.items()}
