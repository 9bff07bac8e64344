"""
In-package data: the weight registry with model cards (`sunpy_nn.data.registry`).

The synthetic data generators are in `sunpy_nn.data.synthetic`.
"""

from sunpy_nn.data.registry import (
    WEIGHTS_DIR,
    ModelInfo,
    available_models,
    load_weights,
    model_card,
    save_weights,
)

__all__ = ["WEIGHTS_DIR", "ModelInfo", "available_models", "load_weights", "model_card", "save_weights"]
