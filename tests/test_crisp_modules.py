"""
The split of ``sunpy_nn.io.crisp`` (issue #15) into ``io.lp``, ``io.fitsfile``, ``io.wcs`` and the crisp front.

Every name the module had stays importable from it (the same object), pickles keep naming the old class path, and
log records keep the old logger name.
"""

import importlib
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest

import sunpy_nn.io.crisp as crisp

# Every name of sunpy_nn.io.crisp before the split (1467 lines, one module), dunders left out.
OLD_NAMES = [
    "LPHeader",
    "NDCube",
    "PROVENANCE_KEY",
    "Path",
    "STOKES_CODES",
    "STOKES_SYMBOLS",
    "StdDevUncertainty",
    "SunpyNNUserWarning",
    "TabularWCS",
    "Time",
    "WCS",
    "_COMPRESSED_MAGIC",
    "_COORDINATE_KEYS",
    "_DECOMPRESSION_ERRORS",
    "_FITS_SUFFIXES",
    "_FitsSection",
    "_LP_DTYPES",
    "_LP_HEADER_BYTES",
    "_LP_SUFFIXES",
    "_LP_TYPE_NAMES",
    "_OBSERVER_KEYS",
    "_OBSGEO_KEYS",
    "_SPECTRAL_PHYSICAL",
    "_STRUCTURAL",
    "_UNCERTAINTY_NAMES",
    "_WCS_COLUMNS",
    "_WRITE_FITS_SUFFIXES",
    "_add_history",
    "_as_seconds",
    "_canonical_shape",
    "_check_fits_size",
    "_check_lazy",
    "_check_output",
    "_check_stream_end",
    "_companion",
    "_companion_hdul",
    "_coordinate_header",
    "_corrupt_compressed",
    "_dask_frames",
    "_date_from_header_like",
    "_dropped_coords",
    "_fits_array",
    "_fits_wcs",
    "_frame_getter",
    "_have_dask",
    "_header_from_meta",
    "_is_spectral",
    "_isot",
    "_lp_wcs_hdus",
    "_mask_array",
    "_observer_at_earth",
    "_observer_cards",
    "_open_fits",
    "_read_lp",
    "_read_solarnet",
    "_replacing",
    "_sp_path",
    "_stokes_first",
    "_stream_compression",
    "_table_bytes",
    "_tabulated_wcs_hdus",
    "_unpickle_quietly",
    "_user_coords",
    "_wcs",
    "_world",
    "_write_hdu_frame",
    "annotations",
    "append_history",
    "dataclass",
    "find_axes",
    "fits",
    "io",
    "log",
    "logging",
    "lzma",
    "np",
    "re",
    "read_crisp",
    "read_lp_header",
    "stokes_labels",
    "store_provenance",
    "u",
    "warnings",
    "write_crisp",
    "write_lp",
    "zlib",
]
SUBMODULES = ("sunpy_nn.io.lp", "sunpy_nn.io.fitsfile", "sunpy_nn.io.wcs")


@pytest.mark.parametrize("name", OLD_NAMES)
def test_every_old_name_is_still_importable_from_crisp(name):
    obj = getattr(crisp, name)
    for module in map(importlib.import_module, SUBMODULES):
        if name in vars(module):
            assert vars(module)[name] is obj  # a re-export, not a copy


def test_public_names_unchanged():
    import sunpy_nn.io as io

    assert crisp.__all__ == ["LPHeader", "TabularWCS", "read_crisp", "read_lp_header", "write_crisp", "write_lp"]
    for name in crisp.__all__:
        assert getattr(io, name) is getattr(crisp, name)


def test_tabular_wcs_pickles_under_its_old_path(tmp_path):
    from sunpy_nn.io import read_crisp, write_lp
    from sunpy_nn.io.wcs import TabularWCS

    from .test_crisp_io import lp_cube

    assert TabularWCS is crisp.TabularWCS
    # pickle finds a class (and the rebuild function) by module and name: both still resolve to these objects
    for obj in (TabularWCS, crisp._unpickle_quietly):
        assert obj.__module__ == "sunpy_nn.io.crisp"
        assert getattr(importlib.import_module(obj.__module__), obj.__qualname__) is obj

    cube = lp_cube(tmp_path, np.ones((3, 4, 5, 16, 24), np.float32), False)
    write_lp(cube, tmp_path / "again.fcube")
    wcs = read_crisp(tmp_path / "again.fcube").wcs
    assert isinstance(wcs, TabularWCS)
    data = pickle.dumps(wcs)
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name in ("SHORT_BINUNICODE", "BINUNICODE")}
    assert {"sunpy_nn.io.crisp", "TabularWCS", "_unpickle_quietly"} <= names  # what pickles made before the split
    assert not any(str(n).startswith(("sunpy_nn.io.wcs", "sunpy_nn.io.lp", "sunpy_nn.io.fitsfile")) for n in names)
    back = pickle.loads(data)
    assert type(back) is TabularWCS and list(back.wcs.ctype) == list(wcs.wcs.ctype)


def test_log_records_keep_the_crisp_logger_name():
    for name in ("sunpy_nn.io.crisp", *SUBMODULES):
        module = importlib.import_module(name)
        if hasattr(module, "log"):  # (io.wcs logs nothing)
            assert module.log.name == "sunpy_nn.io.crisp"


def test_io_modules_are_at_most_600_lines():
    folder = Path(crisp.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in folder.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 600} == {}
