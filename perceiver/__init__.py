"""Perceiver IO in plain PyTorch: attention blocks, position encodings, adapters, decoders.

This package never imports Ray, DeepSpeed or MLflow; ``pipelines`` wraps it from outside.
"""

from perceiver.builders import image_classifier
from perceiver.config import ImageClassifierConfig
from perceiver.model import PerceiverIO

__all__ = ["ImageClassifierConfig", "PerceiverIO", "image_classifier"]
