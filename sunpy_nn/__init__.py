"""
sunpy_nn: deep-learning enhancement and denoising for SunPy.

* `enhance_map`: Enhance (Diaz Baso & Asensio Ramos 2018), x2 deconvolution and super-resolution of SDO/HMI
  continuum images and magnetograms, Map in, Map out.
"""

try:
    from sunpy_nn._version import __version__
except ImportError:  # pragma: no cover - running from a source tree without an install
    __version__ = "0.0.0+unknown"

from sunpy_nn.enhance import enhance_map
from sunpy_nn.utils import SunpyNNUserWarning, WeightsError

__all__ = ["SunpyNNUserWarning", "WeightsError", "__version__", "enhance_map"]
