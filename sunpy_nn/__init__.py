"""
sunpy_nn: deep-learning enhancement and denoising for SunPy.

* `enhance_map`: Enhance (Diaz Baso & Asensio Ramos 2018), x2 deconvolution and super-resolution of SDO/HMI
  continuum images and magnetograms, Map in, Map out.
* `denoise_cube` and `Denoiser`: the Noise2Noise denoiser (Diaz Baso et al. 2019) for spectropolarimetric
  NDCubes, trained on the observation itself.
* `train_enhance`: train Enhance on your own high-resolution images.
"""

try:
    from sunpy_nn._version import __version__
except ImportError:  # pragma: no cover - running from a source tree without an install
    __version__ = "0.0.0+unknown"

from sunpy_nn.utils import SunpyNNUserWarning, WeightsError

__all__ = [
    "Denoiser",
    "SunpyNNUserWarning",
    "WeightsError",
    "__version__",
    "denoise_cube",
    "enhance_map",
    "train_enhance",
]

_LAZY = {
    "enhance_map": "sunpy_nn.enhance",
    "denoise_cube": "sunpy_nn.denoise",
    "Denoiser": "sunpy_nn.denoise",
    "train_enhance": "sunpy_nn.training",
}


def __getattr__(name: str):
    # Imported on first use, so that `import sunpy_nn.nn` (plain torch modules) does not load sunpy.map.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sunpy_nn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
