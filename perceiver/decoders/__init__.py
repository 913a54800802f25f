"""Decoders: output queries cross-attend to the latents, one decoder per task."""

from perceiver.decoders.basic import BasicDecoder
from perceiver.decoders.classification import ClassificationDecoder

__all__ = ["BasicDecoder", "ClassificationDecoder"]
