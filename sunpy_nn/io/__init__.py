"""Readers and writers: CRISP cubes (SOLARNET FITS and CRISPEX LP) as NDCubes, and Keras HDF5 weight import."""

from sunpy_nn.io.crisp import LPHeader, TabularWCS, read_crisp, read_lp_header, write_crisp, write_lp
from sunpy_nn.io.keras import keras_to_state_dict, load_keras_enhance, load_keras_unet, read_keras_hdf5

__all__ = [
    "LPHeader",
    "TabularWCS",
    "keras_to_state_dict",
    "load_keras_enhance",
    "load_keras_unet",
    "read_crisp",
    "read_keras_hdf5",
    "read_lp_header",
    "write_crisp",
    "write_lp",
]
