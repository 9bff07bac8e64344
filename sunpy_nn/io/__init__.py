"""Readers and writers: Keras HDF5 weight import (CRISP cube I/O comes with the data I/O release)."""

from sunpy_nn.io.keras import keras_to_state_dict, load_keras_enhance, load_keras_unet, read_keras_hdf5

__all__ = ["keras_to_state_dict", "load_keras_enhance", "load_keras_unet", "read_keras_hdf5"]
