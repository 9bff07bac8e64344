"""
Enhance on sunpy Maps: deconvolution and x2 super-resolution of SDO/HMI continuum images and magnetograms.

The Map-level layer of the package: it finds the data kind from the metadata, normalises the data to the units
the network was trained in (continuum intensity over the quiet-Sun level or a fitted limb-darkening profile; the
line-of-sight field in kG), fills missing pixels, runs `~sunpy_nn.nn.EnhanceNet` tile by tile, undoes the
normalisation, and writes a header whose WCS keeps every pixel edge where it was on the Sun.

The code lives in private modules (issue #15); every name importable from ``sunpy_nn.enhance`` before the split
is importable from here: ``_checks`` (the data kinds, the input checks and `detect_kind`), ``_normalise``
(`normalise`), ``_models`` (the one model cache and `load_enhance_model`), ``_core`` (`enhance_array` and one map),
``_batch`` (the weights resolved once per batch, and the worker task) and ``_map`` (`enhance_map`).
"""

# Names written "x as x" are private names of sunpy_nn.enhance before its split, importable from here as they were.
from sunpy_nn.enhance._batch import _EnhanceTask as _EnhanceTask
from sunpy_nn.enhance._batch import _output_name as _output_name
from sunpy_nn.enhance._checks import (
    HMI_PIXEL_SCALE,
    KINDS,
    MAX_FIELD,
    MAX_NEGATIVE_FRACTION,
    MIN_FIELD,
    PHOTOSPHERIC_WAVELENGTHS,
    detect_kind,
)
from sunpy_nn.enhance._checks import MIN_SIZE as MIN_SIZE
from sunpy_nn.enhance._checks import _check_map as _check_map
from sunpy_nn.enhance._checks import _check_values as _check_values
from sunpy_nn.enhance._checks import _instrument_name as _instrument_name
from sunpy_nn.enhance._core import _METHOD as _METHOD
from sunpy_nn.enhance._core import _enhance_lazy as _enhance_lazy
from sunpy_nn.enhance._core import _enhance_one as _enhance_one
from sunpy_nn.enhance._core import enhance_array
from sunpy_nn.enhance._map import enhance_batch as enhance_batch  # also sunpy_nn.parallel.enhance_batch
from sunpy_nn.enhance._map import enhance_map
from sunpy_nn.enhance._models import _MAX_MODELS as _MAX_MODELS
from sunpy_nn.enhance._models import _MODELS as _MODELS
from sunpy_nn.enhance._models import _MODELS_LOCK as _MODELS_LOCK
from sunpy_nn.enhance._models import _weights_file as _weights_file
from sunpy_nn.enhance._models import load_enhance_model
from sunpy_nn.enhance._normalise import LIMB_DARKENING_600NM, NORMALISATIONS, RELATIVE_MEDIAN, Normalisation, normalise
from sunpy_nn.enhance._normalise import _apply_profile as _apply_profile
from sunpy_nn.enhance._normalise import _mirrored_axis as _mirrored_axis
from sunpy_nn.enhance._normalise import _robust_level as _robust_level
from sunpy_nn.header import _disk_geometry as _disk_geometry
from sunpy_nn.header import pixel_scale_arcsec, superres_meta

__all__ = [
    "HMI_PIXEL_SCALE",
    "KINDS",
    "LIMB_DARKENING_600NM",
    "MAX_FIELD",
    "MAX_NEGATIVE_FRACTION",
    "MIN_FIELD",
    "NORMALISATIONS",
    "PHOTOSPHERIC_WAVELENGTHS",
    "RELATIVE_MEDIAN",
    "Normalisation",
    "detect_kind",
    "enhance_array",
    "enhance_map",
    "load_enhance_model",
    "normalise",
    "superres_meta",
]

_pixel_scale_arcsec = pixel_scale_arcsec  # its name here before it moved to sunpy_nn.header (issue #15)

_MODEL_LOADS = 0  # networks loaded from a file by this process (counted by ._models, read by tests)
