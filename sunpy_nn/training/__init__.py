"""
Training: real-frame sources, the randomised HMI degradation, patch pairs and the training loop of Enhance, and the
Noise2Noise pairs and training loop of the denoiser.
"""

from sunpy_nn.training.degradation import DegradationModel, degrade_scene, make_source_pairs
from sunpy_nn.training.enhance import EnhancePairs, make_enhance_pairs, train_enhance
from sunpy_nn.training.noise2noise import Noise2NoisePairs, temporal_neighbours, train_noise2noise
from sunpy_nn.training.sources import TrainingSource, convert_continuum_wavelength, load_reference_sources

__all__ = [
    "DegradationModel",
    "EnhancePairs",
    "Noise2NoisePairs",
    "TrainingSource",
    "convert_continuum_wavelength",
    "degrade_scene",
    "load_reference_sources",
    "make_enhance_pairs",
    "make_source_pairs",
    "temporal_neighbours",
    "train_enhance",
    "train_noise2noise",
]
