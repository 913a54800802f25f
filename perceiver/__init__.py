"""Perceiver IO in plain PyTorch: attention blocks, position encodings, adapters, decoders.

This package never imports Ray, DeepSpeed or MLflow; ``pipelines`` wraps it from outside.
"""

from perceiver.builders import image_classifier
from perceiver.config import ImageClassifierConfig
from perceiver.encoder import PerceiverEncoder
from perceiver.encoder_iterative import IterativePerceiverEncoder
from perceiver.model import PerceiverIO

__all__ = [
    "ImageClassifierConfig",
    "IterativePerceiverEncoder",
    "PerceiverEncoder",
    "PerceiverIO",
    "image_classifier",
]
