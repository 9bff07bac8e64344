"""Training: patch datasets and augmentation for Enhance, and the training loop."""

from sunpy_nn.training.enhance import EnhancePairs, make_enhance_pairs, train_enhance

__all__ = ["EnhancePairs", "make_enhance_pairs", "train_enhance"]
