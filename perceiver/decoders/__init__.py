"""Decoders: one ``PerceiverDecoder`` with injected output queries, heads and postprocessors."""

from perceiver.decoders.decoder import PerceiverDecoder
from perceiver.decoders.heads import ClassificationHead, GridHead, TiedEmbeddingHead
from perceiver.decoders.postprocessors import (
    ClassificationPostprocessor,
    MultimodalPostprocessor,
    PatchPostprocessor,
    ProjectionPostprocessor,
)
from perceiver.decoders.queries import (
    FourierQuery,
    InputQuery,
    MultimodalQuery,
    OutputIndices,
    OutputQuery,
    TrainableQuery,
)

__all__ = [
    "ClassificationHead",
    "ClassificationPostprocessor",
    "FourierQuery",
    "GridHead",
    "InputQuery",
    "MultimodalPostprocessor",
    "MultimodalQuery",
    "OutputIndices",
    "OutputQuery",
    "PatchPostprocessor",
    "PerceiverDecoder",
    "ProjectionPostprocessor",
    "TiedEmbeddingHead",
    "TrainableQuery",
]
