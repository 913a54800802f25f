"""Input adapters: turn one modality's raw tensor into a (B, M, C) array of input positions."""

from perceiver.adapters.audio import AudioInputAdapter
from perceiver.adapters.base import InputAdapter
from perceiver.adapters.frame_stack import FrameStackInputAdapter
from perceiver.adapters.image import ImageAdapterBase, ImageInputAdapter
from perceiver.adapters.image_variants import (
    Conv1x1ImageInputAdapter,
    ConvImageInputAdapter,
    PatchImageInputAdapter,
)
from perceiver.adapters.text import TextInputAdapter
from perceiver.adapters.video import VideoInputAdapter

__all__ = [
    "AudioInputAdapter",
    "Conv1x1ImageInputAdapter",
    "ConvImageInputAdapter",
    "FrameStackInputAdapter",
    "ImageAdapterBase",
    "ImageInputAdapter",
    "InputAdapter",
    "PatchImageInputAdapter",
    "TextInputAdapter",
    "VideoInputAdapter",
]
