"""
Self-supervised denoising of spectropolarimetric cubes (Noise2Noise, Diaz Baso et al. 2019) on NDCubes.

The NDCube-level layer: it finds the time, Stokes, wavelength and spatial axes from the WCS physical types, scales
each Stokes parameter by a robust estimate of its noise, trains a `~sunpy_nn.nn.UNet` on pairs of consecutive scans
(their solar signal is nearly the same, their noise independent), and returns a cube with the same WCS, unit, mask
and metadata and a per-pixel uncertainty.

The private modules hold one job each: ``_denoiser`` (`~sunpy_nn.Denoiser`, its settings and public methods),
``_noise`` (noise levels), ``_fit`` (training), ``_calibration`` (the uncertainty's calibration), ``_predict`` and
``_frames`` (prediction, in memory or lazy, and the network on frames), ``_result`` (the output cube), ``_files``
(save and load) and ``_denoise_cube`` (`~sunpy_nn.denoise_cube`, `auto_temporal`).
"""

from sunpy_nn.cube import CubeAxes, find_axes, stokes_labels
from sunpy_nn.denoise._denoise_cube import auto_temporal, denoise_cube
from sunpy_nn.denoise._denoiser import Denoiser
from sunpy_nn.denoise._files import FORMAT, FORMAT_VERSION  # noqa: F401
from sunpy_nn.denoise._fit import _PAPER_PATCH  # noqa: F401
from sunpy_nn.denoise._noise import NOISE_MISMATCH, NOISE_TUNING_SPREAD  # noqa: F401
from sunpy_nn.denoise._result import _assemble, _full, _stddev, _weights_sha256  # noqa: F401
from sunpy_nn.noise import NOISE_METHODS, _estimate, estimate_noise  # noqa: F401
from sunpy_nn.training.noise2noise import temporal_neighbours

__all__ = [
    "CubeAxes",
    "Denoiser",
    "auto_temporal",
    "denoise_cube",
    "estimate_noise",
    "find_axes",
    "temporal_neighbours",
]

# The cube axes moved to sunpy_nn.cube and the noise estimates to sunpy_nn.metrics (estimate_noise,
# NOISE_METHODS); they stay importable from here, and so does the old private name of stokes_labels. So do the
# names of the module from before it became a package (FORMAT, NOISE_MISMATCH and the private helpers).
_stokes_labels = stokes_labels
