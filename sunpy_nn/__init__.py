"""
sunpy_nn: deep-learning enhancement and denoising for SunPy.

* `enhance_map`: Enhance (Diaz Baso & Asensio Ramos 2018), x2 deconvolution and super-resolution of SDO/HMI
  continuum images and magnetograms, Map in, Map out.
"""

try:
    from sunpy_nn._version import __version__
except ImportError:  # pragma: no cover - running from a source tree without an install
    __version__ = "0.0.0+unknown"

from sunpy_nn.utils import SunpyNNUserWarning, WeightsError

__all__ = ["SunpyNNUserWarning", "WeightsError", "__version__", "enhance_map"]


def __getattr__(name: str):
    # Imported on first use, so that `import sunpy_nn.nn` (plain torch modules) does not load sunpy.map.
    if name == "enhance_map":
        from sunpy_nn.enhance import enhance_map

        return enhance_map
    raise AttributeError(f"module 'sunpy_nn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
