"""Torch DensePose R-CNN, datasets, trainer, evaluator and pseudo-labels built on densemap geometry."""
