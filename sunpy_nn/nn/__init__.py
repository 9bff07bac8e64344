"""
Torch modules and the tiled inference runner.

Nothing here imports sunpy or astropy: these are plain ``torch.nn.Module`` objects and numpy-in,
numpy-out helpers that can be used on their own.
"""

from sunpy_nn.nn.device import PRECISIONS, bf16_is_native, configure_threads, resolve_device
from sunpy_nn.nn.enhance_net import EnhanceNet
from sunpy_nn.nn.heap import keep_freed_memory, release_freed_memory
from sunpy_nn.nn.optimize import ACCURACY_BOUND, FastEnhance, FastUNet, PreparedModel, prepare_model, relative_error
from sunpy_nn.nn.runner import (
    default_batch_size,
    default_tile_size,
    optimized_tile_size,
    run_tiled,
    tile_windows,
)
from sunpy_nn.nn.unet import UNet

__all__ = [
    "ACCURACY_BOUND",
    "PRECISIONS",
    "EnhanceNet",
    "FastEnhance",
    "FastUNet",
    "PreparedModel",
    "UNet",
    "bf16_is_native",
    "configure_threads",
    "default_batch_size",
    "default_tile_size",
    "keep_freed_memory",
    "optimized_tile_size",
    "prepare_model",
    "relative_error",
    "release_freed_memory",
    "resolve_device",
    "run_tiled",
    "tile_windows",
]
