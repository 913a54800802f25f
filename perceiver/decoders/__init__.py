"""Decoders: output queries cross-attend to the latents, one decoder per task."""

from perceiver.decoders.basic import BasicDecoder
from perceiver.decoders.classification import ClassificationDecoder
from perceiver.decoders.input_query import InputQueryDecoder
from perceiver.decoders.tied_embedding import TiedEmbeddingHead

__all__ = ["BasicDecoder", "ClassificationDecoder", "InputQueryDecoder", "TiedEmbeddingHead"]
